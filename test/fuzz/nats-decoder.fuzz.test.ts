import { toJsonString } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type DeadReason, decodeNatsEvent } from "../../src/events/decode-nats-event.js";
import { statusName } from "../../src/events/job-status.js";
import { validateJobEvent } from "../../src/events/validate.js";
import { JobEventSchema } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { eventJson, identifier, natsBody } from "./arbitraries.js";

const encode = (e: unknown) => new TextEncoder().encode(JSON.stringify(e));
const tokenOf = (status: unknown) =>
  typeof status === "string" ? status.toLowerCase().replace(/^job_status_/, "") : "created";

/** A message and its subject: mostly the subject a publisher would use for that body. */
const message = fc.oneof(
  {
    weight: 2,
    arbitrary: eventJson.map((e) => ({
      data: encode(e),
      subject: {
        tenantId: typeof e.tenantId === "string" && e.tenantId !== "" ? e.tenantId : "acme",
        jobId: typeof e.jobId === "string" && e.jobId !== "" ? e.jobId : "job_1",
        status: tokenOf(e.status),
      },
    })),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      data: natsBody,
      subject: fc.record({
        tenantId: identifier,
        jobId: identifier,
        status: fc.constantFrom(
          "created",
          "processing",
          "completed",
          "failed",
          "cancelled",
          "done",
          "JOB_STATUS_COMPLETED",
        ),
      }),
    }),
  },
);

const reasons: DeadReason[] = [
  "bad_subject",
  "too_large",
  "unsupported_content_type",
  "malformed",
  "subject_mismatch",
  "invalid",
];

describe("the NATS decoder under 10,000 generated messages", () => {
  it("never throws; accepts only valid events that agree with their subject; names a reason for the rest", () => {
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(
        message,
        fc.constantFrom(
          undefined,
          undefined,
          "application/json",
          "application/json; charset=utf-8",
          "application/protobuf",
          "text/plain",
        ),
        ({ data, subject }, contentType) => {
          const r = decodeNatsEvent({
            subject,
            data,
            contentType,
            storedAtMs: 1_700_000_000_000,
            maxPayloadBytes: 4_096,
          });
          const outcome = r.kind === "event" ? "accepted" : r.reason;
          seen.set(outcome, (seen.get(outcome) ?? 0) + 1);
          if (r.kind === "event") {
            // Never an invalid event accepted: it passes the validator again, as stored, and is
            // the event its subject names.
            expect(validateJobEvent(r.event).kind).toBe("valid");
            expect(r.event.tenantId).toBe(subject.tenantId);
            expect(r.event.jobId).toBe(subject.jobId);
            expect(statusName(r.event.status)).toBe(subject.status.toLowerCase().replace(/^job_status_/, ""));
            expect(() => toJsonString(JobEventSchema, r.event)).not.toThrow();
          } else {
            expect(reasons).toContain(r.reason);
            expect(r.detail.length).toBeGreaterThan(0);
            if (r.reason === "invalid" || r.reason === "subject_mismatch") {
              expect(r.violations?.length).toBeGreaterThan(0);
            }
          }
        },
      ),
      { numRuns: 10_000 },
    );
    console.log("NATS decoder fuzz outcomes:", Object.fromEntries(seen));
    // The generators reach both sides of the decoder, not only its JSON parser.
    expect(seen.get("accepted") ?? 0).toBeGreaterThan(100);
    expect(seen.get("invalid") ?? 0).toBeGreaterThan(100);
  });
});
