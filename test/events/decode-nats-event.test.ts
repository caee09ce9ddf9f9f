import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { decodeNatsEvent } from "../../src/events/decode-nats-event.js";
import { toSvixMessage } from "../../src/events/webhook-payload.js";
import { JobEventSchema, JobStatus } from "../../src/gen/jobhooks/v1/webhooks_pb.js";

const STORED_AT = Date.parse("2026-11-27T03:30:00.000Z");
const subject = { tenantId: "acme", jobId: "job_123", status: "completed" };
const text = (s: string) => new TextEncoder().encode(s);
const decode = (data: Uint8Array, contentType?: string, sub = subject) =>
  decodeNatsEvent({ subject: sub, data, contentType, storedAtMs: STORED_AT, maxPayloadBytes: 1_000 });

describe("decodeNatsEvent", () => {
  it("takes missing fields from the subject and the time of storage as occurred_at", () => {
    const r = decode(text('{"sequence":"3","result":{"pages":12}}'));
    expect(r.kind).toBe("event");
    if (r.kind !== "event") return;
    expect(r.event).toMatchObject({
      tenantId: "acme",
      jobId: "job_123",
      status: JobStatus.COMPLETED,
      eventId: "job_123.completed.3",
    });
    expect(toSvixMessage(r.event, 57)).toEqual({
      eventType: "job.completed",
      eventId: "job_123.completed.3",
      payload: {
        type: "job.completed",
        timestamp: "2026-11-27T03:30:00.000Z",
        data: {
          job_id: "job_123",
          revision: 57,
          status: "completed",
          sequence: 3,
          result: { pages: 12 },
          metadata: {},
        },
      },
    });
  });

  it("decodes the binary encoding when the Content-Type says so", () => {
    const bytes = toBinary(JobEventSchema, create(JobEventSchema, { sequence: 4n }));
    const r = decode(bytes, "application/protobuf");
    expect(r.kind === "event" && r.event.eventId).toBe("job_123.completed.4");
  });

  it("is the same event however often it is read (stable id and timestamp)", () => {
    const a = decode(text("{}"));
    const b = decode(text("{}"));
    expect(a.kind === "event" && b.kind === "event" && toSvixMessage(a.event, 9)).toEqual(
      b.kind === "event" && toSvixMessage(b.event, 9),
    );
  });

  it.each([
    ["not JSON", text("{nope"), undefined, "malformed", /not valid JSON/],
    ["a wrongly typed field", text('{"sequence":"x"}'), undefined, "invalid", /^sequence: /],
    [
      "an oversize body",
      text(`{"metadata":{"a":"${"x".repeat(1_000)}"}}`),
      undefined,
      "too_large",
      /over the 1000-byte limit/,
    ],
    ["an unknown content type", text("{}"), "text/plain", "unsupported_content_type", /text\/plain/],
    [
      "garbage protobuf",
      new Uint8Array([0xff, 0xff]),
      "application/protobuf",
      "malformed",
      /binary JobEvent/,
    ],
    [
      "a body disagreeing with the subject",
      text('{"jobId":"other","status":"JOB_STATUS_FAILED"}'),
      undefined,
      "subject_mismatch",
      /job_id: body says other, subject says job_123; status: body says failed/,
    ],
  ])("dead-letters %s with a reason", (_name, data, contentType, reason, detail) => {
    const r = decode(data, contentType);
    expect(r.kind).toBe("dead");
    if (r.kind !== "dead") return;
    expect(r.reason).toBe(reason);
    expect(r.detail).toMatch(detail);
  });

  it("dead-letters an unknown status token and events the validator rejects", () => {
    const unknown = decode(text("{}"), undefined, { ...subject, status: "done" });
    expect(unknown.kind === "dead" && unknown.reason).toBe("bad_subject");
    const failed = decode(text("{}"), undefined, { ...subject, status: "failed" });
    expect(failed.kind === "dead" && failed.reason).toBe("invalid");
    expect(failed.kind === "dead" && failed.detail).toBe("error: is required when status is failed");
  });
});
