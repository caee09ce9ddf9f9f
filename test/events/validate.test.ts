import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { deriveEventId, natsMsgId } from "../../src/events/event-id.js";
import { statusFromName } from "../../src/events/job-status.js";
import { validateJobEvent } from "../../src/events/validate.js";
import { type JobEvent, JobEventSchema, JobStatus } from "../../src/gen/jobhooks/v1/webhooks_pb.js";

const NOW = Date.parse("2026-11-27T03:30:00.000Z");

function event(init: MessageInitShape<typeof JobEventSchema> = {}): JobEvent {
  return create(JobEventSchema, { tenantId: "acme", jobId: "job_123", status: JobStatus.CREATED, ...init });
}

function fieldsOf(e: JobEvent): string[] {
  const r = validateJobEvent(e, { now: () => NOW });
  return r.kind === "valid" ? [] : r.violations.map((v) => v.field);
}

describe("validateJobEvent", () => {
  it("accepts a minimal event and fills in the event id and the time of acceptance", () => {
    const r = validateJobEvent(event(), { now: () => NOW });
    expect(r.kind).toBe("valid");
    if (r.kind !== "valid") return;
    expect(r.event.eventId).toBe("job_123.created");
    expect(r.event.occurredAt).toEqual(timestampFromMs(NOW));
  });

  it("keeps the publisher's own event id and occurred_at", () => {
    const occurredAt = timestampFromMs(NOW - 5_000);
    const r = validateJobEvent(event({ eventId: "evt-1", occurredAt }));
    expect(r.kind === "valid" && r.event.eventId).toBe("evt-1");
    expect(r.kind === "valid" && r.event.occurredAt).toEqual(occurredAt);
  });

  it("derives the same id for the same status change, with the sequence when set", () => {
    expect(deriveEventId("job_9", JobStatus.COMPLETED, undefined)).toBe("job_9.completed");
    expect(deriveEventId("job_9", JobStatus.COMPLETED, 3n)).toBe("job_9.completed.3");
    const a = validateJobEvent(event({ status: JobStatus.PROCESSING, sequence: 2n }));
    const b = validateJobEvent(event({ status: JobStatus.PROCESSING, sequence: 2n }));
    expect(a.kind === "valid" && b.kind === "valid" && a.event.eventId === b.event.eventId).toBe(true);
  });

  it("accepts an event id that is exactly the derived one, as the relay reads stored events back", () => {
    expect(fieldsOf(event({ eventId: "job_123.created" }))).toEqual([]);
    expect(fieldsOf(event({ eventId: "job_123.created.4", sequence: 4n }))).toEqual([]);
    expect(fieldsOf(event({ eventId: "job_123.completed" }))).toEqual(["event_id"]);
  });

  it("scopes JetStream's message id by tenant so two tenants' derived ids never collide", () => {
    expect(natsMsgId("acme", "job_1.created")).not.toBe(natsMsgId("globex", "job_1.created"));
  });

  it("requires tenant_id and job_id", () => {
    expect(fieldsOf(event({ tenantId: "", jobId: "" }))).toEqual(["tenant_id", "job_id"]);
  });

  it.each([
    ["a.b", "tenant_id"],
    ["a b", "tenant_id"],
    ["*", "tenant_id"],
    [">", "tenant_id"],
    ["x".repeat(129), "tenant_id"],
    ["app_123", "tenant_id"],
  ])("rejects the tenant id %j", (tenantId, field) => {
    expect(fieldsOf(event({ tenantId }))).toEqual([field]);
  });

  it.each(["job.1", "job/1", "ü"])("rejects the job id %j", (jobId) => {
    expect(fieldsOf(event({ jobId }))).toEqual(["job_id"]);
  });

  it.each(["auto_1", "msg_1", "has.dot", "x".repeat(129)])("rejects the event id %j", (eventId) => {
    expect(fieldsOf(event({ eventId }))).toEqual(["event_id"]);
  });

  it("accepts identifiers of exactly 128 allowed characters", () => {
    expect(fieldsOf(event({ tenantId: "t".repeat(128), jobId: "J-_9".repeat(32) }))).toEqual([]);
  });

  it("rejects an unspecified or unknown status", () => {
    expect(fieldsOf(event({ status: JobStatus.UNSPECIFIED }))).toEqual(["status"]);
    expect(fieldsOf(event({ status: 42 as JobStatus }))).toEqual(["status"]);
  });

  it("requires an error with a code for a failed job, and allows it only then", () => {
    expect(fieldsOf(event({ status: JobStatus.FAILED }))).toEqual(["error"]);
    expect(fieldsOf(event({ status: JobStatus.FAILED, error: { code: "", message: "x" } }))).toEqual([
      "error.code",
    ]);
    expect(
      fieldsOf(event({ status: JobStatus.FAILED, error: { code: "timeout", message: "took too long" } })),
    ).toEqual([]);
    expect(fieldsOf(event({ status: JobStatus.COMPLETED, error: { code: "x", message: "" } }))).toEqual([
      "error",
    ]);
  });

  it("allows a result only on a completed job", () => {
    const result = { pages: 12 };
    expect(fieldsOf(event({ status: JobStatus.COMPLETED, result }))).toEqual([]);
    expect(fieldsOf(event({ status: JobStatus.CREATED, result }))).toEqual(["result"]);
  });

  it("bounds metadata entries, keys and values", () => {
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]));
    expect(fieldsOf(event({ metadata: many }))).toEqual(["metadata"]);
    expect(fieldsOf(event({ metadata: { ok: "v".repeat(1025) } }))).toEqual(['metadata["ok"]']);
    expect(fieldsOf(event({ metadata: { ["k".repeat(129)]: "v" } }))[0]).toMatch(/^metadata\["k+…"\]$/);
  });

  it("rejects a timestamp outside the representable range", () => {
    expect(fieldsOf(event({ occurredAt: { seconds: 253_402_300_800n, nanos: 0 } }))).toEqual(["occurred_at"]);
  });

  it("reports every violation at once", () => {
    expect(fieldsOf(event({ tenantId: "", jobId: "a.b", status: JobStatus.UNSPECIFIED }))).toEqual([
      "tenant_id",
      "job_id",
      "status",
    ]);
  });
});

describe("statuses", () => {
  it("reads a status from its subject token or its enum name", () => {
    expect(statusFromName("failed")).toBe(JobStatus.FAILED);
    expect(statusFromName("JOB_STATUS_CANCELLED")).toBe(JobStatus.CANCELLED);
    expect(statusFromName("unspecified")).toBeUndefined();
    expect(statusFromName("done")).toBeUndefined();
  });
});
