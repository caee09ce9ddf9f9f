import { fromBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { grpcJsWebhookClient } from "../support/grpc-js.js";
import { readStream, SERVICE_TOKEN, useServiceWithNats } from "../support/service.js";

// PublishJobEvents against a real nats-server: what a batch stores and answers over grpc-js and
// Connect JSON, and the real 16 MiB request limit. The batch rules (empty, over 1,000 events,
// anonymous, each store failure) are tested in memory in test/server/webhook-service-publish.test.ts.

const auth = { authorization: `Bearer ${SERVICE_TOKEN}` };
const stack = useServiceWithNats();
let n = 0;
const uniqueJob = () => `batch_${process.pid}_${++n}`;

async function storedEventIds(): Promise<string[]> {
  return (await readStream(stack.nats.url)).map((m) => String(m.json.eventId));
}

describe("PublishJobEvents: a batch, one result per event", () => {
  type GrpcResult = {
    eventId: string;
    streamSequence: string;
    duplicate: boolean;
    error: { code: number; message: string; details: Array<{ type_url: string; value: Buffer }> } | null;
  };
  function grpcJsClient() {
    const client = grpcJsWebhookClient<{
      PublishJobEvents: (
        req: unknown,
        md: grpc.Metadata,
        cb: (err: grpc.ServiceError | null, res?: { results: GrpcResult[] }) => void,
      ) => void;
    }>(stack.svc.url);
    const md = new grpc.Metadata();
    md.set("authorization", `Bearer ${SERVICE_TOKEN}`);
    return {
      publish: (events: unknown[]) =>
        new Promise<{ results: GrpcResult[] }>((resolve, reject) =>
          client.PublishJobEvents({ events }, md, (err, res) => (err ? reject(err) : resolve(res as never))),
        ),
      close: () => client.close(),
    };
  }
  // proto-loader keeps google.protobuf.Any's field names as written (type_url).
  const fieldsOf = (details: Array<{ type_url: string; value: Buffer }>) =>
    details
      .filter((d) => d.type_url.endsWith("google.rpc.BadRequest"))
      .flatMap((d) => fromBinary(BadRequestSchema, d.value).fieldViolations.map((v) => v.field));

  it("a mixed batch over grpc-js: valid ones stored, the invalid and oversize refused naming their field, the repeat a duplicate", async () => {
    const [a, b, c] = [uniqueJob(), uniqueJob(), uniqueJob()];
    const client = grpcJsClient();
    try {
      const { results } = await client.publish([
        { tenantId: "acme", jobId: a, status: "JOB_STATUS_CREATED" },
        { tenantId: "acme", jobId: "j-no-status" },
        { tenantId: "acme", jobId: a, status: "JOB_STATUS_CREATED" },
        { tenantId: "acme", jobId: b, status: "JOB_STATUS_PROCESSING", sequence: 2 },
        { tenantId: "acme", jobId: c, status: "JOB_STATUS_COMPLETED", result: big() },
      ]);
      expect(results).toHaveLength(5);
      const [ra, rbad, rdup, rb, rbig] = results as [
        GrpcResult,
        GrpcResult,
        GrpcResult,
        GrpcResult,
        GrpcResult,
      ];
      expect(ra).toMatchObject({ eventId: `${a}.created`, duplicate: false, error: null });
      expect(Number(ra.streamSequence)).toBeGreaterThan(0);
      expect(rbad.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(rbad.error?.message).toMatch(/^events\[1\]\.status: is required: one of JOB_STATUS_CREATED/);
      expect(fieldsOf(rbad.error?.details ?? [])).toEqual(["events[1].status"]);
      expect(rdup).toMatchObject({ eventId: `${a}.created`, duplicate: true, error: null });
      expect(rdup.streamSequence).toBe(ra.streamSequence);
      expect(rb).toMatchObject({ eventId: `${b}.processing.2`, duplicate: false, error: null });
      expect(rbig.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(fieldsOf(rbig.error?.details ?? [])).toEqual(["events[4].result"]);
      const stored = await storedEventIds();
      expect(stored.filter((id) => id === `${a}.created`)).toHaveLength(1);
      expect(stored).toContain(`${b}.processing.2`);
      expect(stored.some((id) => id.startsWith(c))).toBe(false);
    } finally {
      client.close();
    }
  });

  /** A google.protobuf.Struct (as proto-loader writes one) over the 256 KiB event limit. */
  function big() {
    return { fields: { blob: { stringValue: "x".repeat(300_000) } } };
  }

  async function postBatch(body: string, headers: Record<string, string> = auth) {
    const res = await fetch(`${stack.svc.url}/jobhooks.v1.WebhookService/PublishJobEvents`, {
      method: "POST",
      headers: { ...headers, "content-type": "application/json" },
      body,
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it("a mixed batch over Connect JSON answers each event, with the field of each refused one", async () => {
    const a = uniqueJob();
    const res = await postBatch(
      JSON.stringify({
        events: [
          { tenantId: "acme", jobId: a, status: "JOB_STATUS_COMPLETED", result: { rows: 3 } },
          { tenantId: "acme", jobId: "bad.id", status: "JOB_STATUS_CREATED" },
        ],
      }),
    );
    expect(res.status).toBe(200);
    const results = res.body.results as Array<Record<string, unknown>>;
    expect(results[0]).toMatchObject({ eventId: `${a}.completed` });
    expect(results[0]?.error).toBeUndefined();
    expect(results[1]?.error).toMatchObject({
      code: Code.InvalidArgument,
      details: [
        {
          "@type": "type.googleapis.com/google.rpc.BadRequest",
          fieldViolations: [{ field: "events[1].job_id" }],
        },
      ],
    });
    expect(await storedEventIds()).toContain(`${a}.completed`);
  });

  it("a batch with a value its type does not allow is refused whole, naming the event and field", async () => {
    const res = await postBatch('{"events":[{"tenantId":"acme","jobId":"j","status":"JOB_STATUS_DONE"}]}');
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/^events\[0\]\.status: "JOB_STATUS_DONE" is not a valid value/);
  });

  it("a batch over 16 MiB in all is refused whole with RESOURCE_EXHAUSTED", async () => {
    const event = { tenantId: "acme", jobId: "j-big", status: 1, metadata: { a: "x".repeat(1_000) } };
    const res = await postBatch(JSON.stringify({ events: Array.from({ length: 17_500 }, () => event) }));
    expect(res.status).toBe(429);
    expect(res.body.code).toBe("resource_exhausted");
  });
});
