import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { JobEventSchema, JobStatus } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { failure, fieldsOf, retryAfterMs } from "../support/rpc-errors.js";
import { bearer, service, startInMemoryService } from "./in-memory-service.js";

// PublishJobEvent and PublishJobEvents through the server's RPC pipeline, in memory: what a
// publisher is told for each kind of input and each answer of the event store. What reaches a
// real JetStream (subjects, headers, de-duplication across replicas) is in
// test/integration/publish-job-event.test.ts and publish-job-events-batch.test.ts.

type EventFields = MessageInitShape<typeof JobEventSchema>;

const event = (fields: EventFields = {}) =>
  create(JobEventSchema, { tenantId: "acme", jobId: "job_1", status: JobStatus.CREATED, ...fields });

/** A result a few hundred KiB long as JSON: over a 256 KiB event limit. */
const bigResult = () => ({ blob: "x".repeat(300_000) });

describe("PublishJobEvent stores a valid event", () => {
  it("answers with the derived event id and the stream sequence, and stores the event's JSON", async () => {
    const svc = await startInMemoryService();
    const res = await svc.client.publishJobEvent(
      { event: event({ status: JobStatus.COMPLETED, sequence: 3n, result: { pages: 12 } }) },
      { headers: service },
    );
    expect(res).toMatchObject({ eventId: "job_1.completed.3", streamSequence: 1n, duplicate: false });
    expect(svc.publisher.stored).toHaveLength(1);
    expect(svc.publisher.stored[0]?.json).toMatchObject({
      eventId: "job_1.completed.3",
      tenantId: "acme",
      jobId: "job_1",
      status: "JOB_STATUS_COMPLETED",
      result: { pages: 12 },
    });
    // A missing occurred_at is the time of acceptance.
    const stored = svc.publisher.stored[0]?.json as { occurredAt?: unknown } | undefined;
    expect(typeof stored?.occurredAt).toBe("string");
  });

  it("a repeated event id answers duplicate = true with the first sequence, and is stored once", async () => {
    const svc = await startInMemoryService();
    const first = await svc.client.publishJobEvent({ event: event() }, { headers: service });
    const again = await svc.client.publishJobEvent({ event: event() }, { headers: service });
    expect(first.duplicate).toBe(false);
    expect(again).toMatchObject({ eventId: first.eventId, duplicate: true, streamSequence: 1n });
    expect(svc.publisher.stored).toHaveLength(1);
    const metrics = await svc.registry.getSingleMetricAsString("jobhooks_events_published_total");
    expect(metrics).toContain('outcome="stored"} 1');
    expect(metrics).toContain('outcome="duplicate"} 1');
  });

  it("the same derived event id for two tenants is two events", async () => {
    const svc = await startInMemoryService();
    await svc.client.publishJobEvent({ event: event({ tenantId: "t-a" }) }, { headers: service });
    const b = await svc.client.publishJobEvent({ event: event({ tenantId: "t-b" }) }, { headers: service });
    expect(b.duplicate).toBe(false);
    expect(svc.publisher.stored).toHaveLength(2);
  });

  it("the store is given less time than the caller's deadline, so the answer arrives in time", async () => {
    const svc = await startInMemoryService({ publishTimeoutMs: 5_000 });
    await svc.client.publishJobEvent({ event: event() }, { headers: service, timeoutMs: 2_000 });
    await svc.client.publishJobEvent({ event: event({ jobId: "job_2" }) }, { headers: service });
    const [withDeadline, without] = svc.publisher.budgets;
    expect(withDeadline).toBeGreaterThan(1_000);
    expect(withDeadline).toBeLessThan(2_000);
    expect(without).toBe(5_000);
  });
});

describe("PublishJobEvent refuses bad input, naming the field, and stores nothing", () => {
  const cases: Array<[string, EventFields | undefined, string[]]> = [
    ["a missing event", undefined, ["event"]],
    ["a missing tenant", { tenantId: "" }, ["event.tenant_id"]],
    ["a tenant id Svix reserves", { tenantId: "app_acme" }, ["event.tenant_id"]],
    ["bad id characters", { jobId: "job.1" }, ["event.job_id"]],
    ["JOB_STATUS_UNSPECIFIED", { status: JobStatus.UNSPECIFIED }, ["event.status"]],
    ["an unknown status number", { status: 42 as JobStatus }, ["event.status"]],
    ["failed without error", { status: JobStatus.FAILED }, ["event.error"]],
    ["an error on a completed job", { status: JobStatus.COMPLETED, error: { code: "x" } }, ["event.error"]],
    ["a result on a created job", { result: { rows: 1 } }, ["event.result"]],
    ["a reserved event id prefix", { eventId: "msg_1" }, ["event.event_id"]],
    [
      "a metadata value over 1024 characters",
      { metadata: { k: "v".repeat(1_025) } },
      ['event.metadata["k"]'],
    ],
    [
      "three problems at once",
      { tenantId: "", jobId: "", status: JobStatus.UNSPECIFIED },
      ["event.tenant_id", "event.job_id", "event.status"],
    ],
  ];

  it.each(cases)(
    "%s gets INVALID_ARGUMENT with BadRequest naming the field(s)",
    async (_name, fields, paths) => {
      const svc = await startInMemoryService();
      const err = await failure(
        svc.client.publishJobEvent(fields ? { event: event(fields) } : {}, { headers: service }),
      );
      expect(err.code).toBe(Code.InvalidArgument);
      expect(fieldsOf(err)).toEqual(paths);
      expect(svc.publisher.stored).toHaveLength(0);
    },
  );

  it("the status message repeats the first violation as `field: description`", async () => {
    const svc = await startInMemoryService();
    const err = await failure(
      svc.client.publishJobEvent({ event: event({ status: JobStatus.UNSPECIFIED }) }, { headers: service }),
    );
    expect(err.rawMessage).toMatch(/^event\.status: is required: one of JOB_STATUS_CREATED, /);
  });

  it("a missing event says the fields go inside event", async () => {
    const svc = await startInMemoryService();
    const err = await failure(svc.client.publishJobEvent({}, { headers: service }));
    expect(err.rawMessage).toContain('the event\'s fields go inside "event": {...}');
  });

  it("an event over the size limit gets RESOURCE_EXHAUSTED naming the largest field", async () => {
    const svc = await startInMemoryService({ maxPayloadBytes: 262_144 });
    const tooBig = await failure(
      svc.client.publishJobEvent(
        { event: event({ status: JobStatus.COMPLETED, result: bigResult() }) },
        { headers: service },
      ),
    );
    expect(tooBig.code).toBe(Code.ResourceExhausted);
    expect(fieldsOf(tooBig)).toEqual(["event.result"]);
    expect(tooBig.rawMessage).toMatch(/over the 262144-byte limit/);
    const metadata = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, "m".repeat(1_000)]));
    const small = await startInMemoryService({ maxPayloadBytes: 16_384 });
    const err = await failure(
      small.client.publishJobEvent({ event: event({ metadata }) }, { headers: service }),
    );
    expect(fieldsOf(err)).toEqual(["event.metadata"]);
    expect(svc.publisher.stored).toHaveLength(0);
    expect(small.publisher.stored).toHaveLength(0);
  });

  it("an event the stream itself finds too large gets RESOURCE_EXHAUSTED, not INTERNAL", async () => {
    const svc = await startInMemoryService();
    svc.publisher.mode = "too_large";
    const err = await failure(svc.client.publishJobEvent({ event: event() }, { headers: service }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toMatch(/over the 262144-byte limit/);
  });
});

describe("PublishJobEvent when the event store cannot take the event", () => {
  it.each([
    ["unreachable", "unavailable", 1_000],
    ["full", "full", 5_000],
  ] as const)("a store that is %s answers UNAVAILABLE with RetryInfo (%s)", async (_name, mode, delayMs) => {
    const svc = await startInMemoryService();
    svc.publisher.mode = mode;
    const err = await failure(svc.client.publishJobEvent({ event: event() }, { headers: service }));
    expect(err.code).toBe(Code.Unavailable);
    expect(retryAfterMs(err)).toBe(delayMs);
    expect(err.rawMessage).toContain("retry with the same event_id");
  });

  it("an unexpected store error is INTERNAL, says nothing of NATS, and is logged", async () => {
    const svc = await startInMemoryService();
    svc.publisher.mode = "broken";
    const err = await failure(svc.client.publishJobEvent({ event: event() }, { headers: service }));
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("could not store the event");
    expect(svc.logText()).toContain("publish failed");
  });

  it("a store that never answers is cut off by the server's deadline", async () => {
    const svc = await startInMemoryService({ rpcDeadlineMs: 50 });
    svc.publisher.mode = "hang";
    const err = await failure(svc.client.publishJobEvent({ event: event() }, { headers: service }));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(err.rawMessage).toContain("50 ms deadline");
  });
});

describe("PublishJobEvents: a batch, one result per event", () => {
  it("stores the valid events, refuses the invalid and oversize naming events[i], and flags the repeat", async () => {
    const svc = await startInMemoryService({ maxPayloadBytes: 262_144 });
    const { results } = await svc.client.publishJobEvents(
      {
        events: [
          event({ jobId: "a" }),
          event({ jobId: "no-status", status: JobStatus.UNSPECIFIED }),
          event({ jobId: "a" }),
          event({ jobId: "b", status: JobStatus.PROCESSING, sequence: 2n }),
          event({ jobId: "c", status: JobStatus.COMPLETED, result: bigResult() }),
        ],
      },
      { headers: service },
    );
    expect(results).toHaveLength(5);
    const [a, bad, again, b, big] = results;
    expect(a).toMatchObject({ eventId: "a.created", duplicate: false });
    expect(a?.error).toBeUndefined();
    expect(bad?.error?.code).toBe(Code.InvalidArgument);
    expect(bad?.error?.message).toMatch(/^events\[1\]\.status: is required/);
    expect(bad?.error?.details[0]?.typeUrl).toBe("type.googleapis.com/google.rpc.BadRequest");
    expect(again).toMatchObject({ eventId: "a.created", duplicate: true, streamSequence: a?.streamSequence });
    expect(b).toMatchObject({ eventId: "b.processing.2", duplicate: false });
    expect(big?.error?.code).toBe(Code.ResourceExhausted);
    expect(big?.eventId).toBe("c.completed");
    expect(svc.publisher.stored.map((s) => s.event.eventId)).toEqual(["a.created", "b.processing.2"]);
  });

  it("an unavailable store refuses each event with UNAVAILABLE in its result, not the whole call", async () => {
    const svc = await startInMemoryService();
    svc.publisher.mode = "full";
    const { results } = await svc.client.publishJobEvents(
      { events: [event({ jobId: "a" }), event({ jobId: "b" })] },
      { headers: service },
    );
    expect(results.map((r) => r.error?.code)).toEqual([Code.Unavailable, Code.Unavailable]);
    expect(results[0]?.error?.details[0]?.typeUrl).toBe("type.googleapis.com/google.rpc.RetryInfo");
  });

  it.each([
    ["no events", 0, Code.InvalidArgument],
    ["1,001 events", 1_001, Code.ResourceExhausted],
  ])("a batch with %s is refused whole, naming events, and stores nothing", async (_name, count, code) => {
    const svc = await startInMemoryService();
    const events = Array.from({ length: count }, (_, i) => event({ jobId: `j${i}` }));
    const err = await failure(svc.client.publishJobEvents({ events }, { headers: service }));
    expect(err.code).toBe(code);
    expect(fieldsOf(err)).toEqual(["events"]);
    expect(svc.publisher.stored).toHaveLength(0);
  });

  it("a batch over 16 MiB in all is refused whole with RESOURCE_EXHAUSTED before it is decoded", async () => {
    const svc = await startInMemoryService();
    // 300 events of ~60 KB: within the count and each event's limit, over the request's.
    const metadata = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, "m".repeat(1_000)]));
    const events = Array.from({ length: 300 }, (_, i) => event({ jobId: `j${i}`, metadata }));
    const err = await failure(svc.client.publishJobEvents({ events }, { headers: service }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toMatch(/over the 16777216-byte limit of PublishJobEvents/);
    expect(svc.publisher.stored).toHaveLength(0);
  });
});

describe("who may publish", () => {
  it.each([
    [
      "PublishJobEvent",
      (svc: Awaited<ReturnType<typeof startInMemoryService>>, key: string) =>
        svc.client.publishJobEvent({ event: event() }, { headers: bearer(key) }),
    ],
    [
      "PublishJobEvents",
      (svc: Awaited<ReturnType<typeof startInMemoryService>>, key: string) =>
        svc.client.publishJobEvents({ events: [event()] }, { headers: bearer(key) }),
    ],
  ])("a customer API key may not call %s, even for its own tenant", async (rpc, call) => {
    const svc = await startInMemoryService();
    const { key } = svc.keyFor("acme");
    const err = await failure(call(svc, key));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe(`${rpc} is for internal services only`);
    expect(svc.publisher.stored).toHaveLength(0);
  });

  it("a service token may publish for any tenant", async () => {
    const svc = await startInMemoryService();
    await svc.client.publishJobEvent({ event: event({ tenantId: "acme" }) }, { headers: service });
    await svc.client.publishJobEvent({ event: event({ tenantId: "globex" }) }, { headers: service });
    expect(svc.publisher.stored.map((s) => s.event.tenantId)).toEqual(["acme", "globex"]);
  });
});
