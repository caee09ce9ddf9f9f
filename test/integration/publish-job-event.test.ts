import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { create, fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import {
  JobEventSchema,
  JobStatus,
  PublishJobEventRequestSchema,
  WebhookService,
} from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { readStream, SERVICE_TOKEN, startTestService, type TestService } from "../support/service.js";

const auth = { authorization: `Bearer ${SERVICE_TOKEN}` };
let nats: NatsServer;
let svc: TestService;
let n = 0;
const uniqueJob = () => `job_${process.pid}_${++n}`;

beforeAll(async () => {
  nats = await startNatsServer();
  svc = await startTestService(nats.url);
});

afterAll(async () => {
  await svc?.stop();
  await nats?.dispose();
});

function clientOver(transport: Transport) {
  return createClient(WebhookService, transport);
}

function violations(err: unknown): string[] {
  const e = ConnectError.from(err);
  return e.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}

async function storedEventIds(): Promise<string[]> {
  return (await readStream(nats.url)).map((m) => String(m.json.eventId));
}

describe("one port, every protocol", () => {
  const transports: Array<[string, () => Transport]> = [
    ["gRPC over HTTP/2", () => createGrpcTransport({ baseUrl: svc.url })],
    ["gRPC-Web over HTTP/1.1", () => createGrpcWebTransport({ baseUrl: svc.url, httpVersion: "1.1" })],
    ["gRPC-Web over HTTP/2", () => createGrpcWebTransport({ baseUrl: svc.url, httpVersion: "2" })],
    ["Connect over HTTP/1.1", () => createConnectTransport({ baseUrl: svc.url, httpVersion: "1.1" })],
    [
      "Connect binary over HTTP/2",
      () => createConnectTransport({ baseUrl: svc.url, httpVersion: "2", useBinaryFormat: true }),
    ],
  ];

  it.each(transports)("a Connect client over %s publishes an event", async (_name, transport) => {
    const jobId = uniqueJob();
    const res = await clientOver(transport()).publishJobEvent(
      { event: { tenantId: "acme", jobId, status: JobStatus.CREATED } },
      { headers: auth },
    );
    expect(res.eventId).toBe(`${jobId}.created`);
    expect(res.duplicate).toBe(false);
    expect(res.streamSequence).toBeGreaterThan(0n);
  });

  it("plain fetch of Connect JSON over HTTP/1.1 publishes an event", async () => {
    const jobId = uniqueJob();
    const res = await fetch(`${svc.url}/jobhooks.v1.WebhookService/PublishJobEvent`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({
        event: {
          tenantId: "acme",
          jobId,
          status: "JOB_STATUS_COMPLETED",
          sequence: "3",
          result: { pages: 12 },
        },
      }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ eventId: `${jobId}.completed.3` });
  });

  it("a @grpc/grpc-js client built from the repo's .proto publishes an event", async () => {
    const def = protoLoader.loadSync("jobhooks/v1/webhooks.proto", {
      includeDirs: [path.resolve("proto")],
      keepCase: false,
      longs: String,
      enums: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      jobhooks: { v1: { WebhookService: grpc.ServiceClientConstructor } };
    };
    const client = new pkg.jobhooks.v1.WebhookService(
      svc.url.replace("http://", ""),
      grpc.credentials.createInsecure(),
    ) as unknown as grpc.Client & { PublishJobEvent: (req: unknown, md: grpc.Metadata, cb: unknown) => void };
    const md = new grpc.Metadata();
    md.set("authorization", auth.authorization);
    const jobId = uniqueJob();
    try {
      const res = await new Promise<Record<string, unknown>>((resolve, reject) =>
        client.PublishJobEvent(
          { event: { tenantId: "acme", jobId, status: "JOB_STATUS_PROCESSING" } },
          md,
          (err: Error | null, value: Record<string, unknown>) => (err ? reject(err) : resolve(value)),
        ),
      );
      expect(res).toMatchObject({ eventId: `${jobId}.processing`, duplicate: false });
    } finally {
      client.close();
    }
  });

  it("buf curl lists the service through reflection, without local schemas", async () => {
    const { stdout } = await promisify(execFile)(
      path.resolve("node_modules/.bin/buf"),
      ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", svc.url],
      { timeout: 20_000 },
    );
    expect(stdout).toContain("jobhooks.v1.WebhookService");
    expect(stdout).toContain("grpc.health.v1.Health");
  });

  it("buf curl publishes an event through reflection", async () => {
    const jobId = uniqueJob();
    const { stdout } = await promisify(execFile)(
      path.resolve("node_modules/.bin/buf"),
      [
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "-H",
        `Authorization: ${auth.authorization}`,
        "-d",
        JSON.stringify({ event: { tenant_id: "acme", job_id: jobId, status: "JOB_STATUS_CANCELLED" } }),
        `${svc.url}/jobhooks.v1.WebhookService/PublishJobEvent`,
      ],
      { timeout: 20_000 },
    );
    expect(JSON.parse(stdout)).toMatchObject({ eventId: `${jobId}.cancelled` });
  });

  it("health Check says SERVING", async () => {
    const res = await fetch(`${svc.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ service: "jobhooks.v1.WebhookService" }),
    });
    expect(await res.json()).toEqual({ status: "SERVING" });
  });
});

describe("PublishJobEvent stores each event once", () => {
  const client = () => clientOver(createGrpcTransport({ baseUrl: svc.url }));

  it("stores exactly one message per event id; a repeat answers duplicate = true", async () => {
    const jobId = uniqueJob();
    const req = { event: { tenantId: "acme", jobId, status: JobStatus.COMPLETED, sequence: 1n } };
    const first = await client().publishJobEvent(req, { headers: auth });
    const again = await Promise.all([1, 2, 3].map(() => client().publishJobEvent(req, { headers: auth })));
    expect(first.duplicate).toBe(false);
    for (const r of again) {
      expect(r).toMatchObject({
        eventId: first.eventId,
        duplicate: true,
        streamSequence: first.streamSequence,
      });
    }
    expect((await storedEventIds()).filter((id) => id === `${jobId}.completed.1`)).toHaveLength(1);
  });

  it("stores the canonical JSON of the event under its tenant, job and status", async () => {
    const jobId = uniqueJob();
    const res = await client().publishJobEvent(
      {
        event: {
          eventId: "evt-explicit",
          tenantId: "acme",
          jobId,
          status: JobStatus.FAILED,
          error: { code: "timeout", message: "took too long" },
          metadata: { region: "eu" },
        },
      },
      { headers: auth },
    );
    const stored = (await readStream(nats.url)).find((m) => m.seq === Number(res.streamSequence));
    // Stored under the subject it was published to: jobs.<tenant>.<job>.<status>.
    expect(stored?.subject).toBe(`jobs.acme.${jobId}.failed`);
    expect(stored?.headers["Nats-Msg-Id"]).toBe("acme.evt-explicit");
    expect(stored?.headers["Content-Type"]).toBe("application/json");
    expect(stored?.json).toMatchObject({
      eventId: "evt-explicit",
      tenantId: "acme",
      jobId,
      status: "JOB_STATUS_FAILED",
      error: { code: "timeout", message: "took too long" },
      metadata: { region: "eu" },
    });
    expect(typeof stored?.json.occurredAt).toBe("string");
  });

  it("keeps two tenants' identical derived event ids apart", async () => {
    const jobId = uniqueJob();
    const a = await client().publishJobEvent(
      { event: { tenantId: "t-a", jobId, status: 1 } },
      { headers: auth },
    );
    const b = await client().publishJobEvent(
      { event: { tenantId: "t-b", jobId, status: 1 } },
      { headers: auth },
    );
    expect(a.duplicate || b.duplicate).toBe(false);
    expect(a.streamSequence).not.toBe(b.streamSequence);
  });
});

describe("PublishJobEvent rejects bad input precisely and stores nothing", () => {
  const client = () => clientOver(createConnectTransport({ baseUrl: svc.url, httpVersion: "1.1" }));
  let before: number;
  beforeEach(async () => {
    before = (await readStream(nats.url)).length;
  });
  const nothingStored = async () => expect((await readStream(nats.url)).length).toBe(before);

  const cases: Array<[string, Record<string, unknown>, string[]]> = [
    ["a missing event", {}, ["event"]],
    ["a missing tenant", { jobId: "j1", status: JobStatus.CREATED }, ["event.tenant_id"]],
    ["bad id characters", { tenantId: "acme", jobId: "job.1", status: JobStatus.CREATED }, ["event.job_id"]],
    ["JOB_STATUS_UNSPECIFIED", { tenantId: "acme", jobId: "j1" }, ["event.status"]],
    ["failed without error", { tenantId: "acme", jobId: "j1", status: JobStatus.FAILED }, ["event.error"]],
    [
      "a reserved event id prefix",
      { tenantId: "acme", jobId: "j1", status: 1, eventId: "msg_1" },
      ["event.event_id"],
    ],
  ];

  it.each(cases)("%s gets INVALID_ARGUMENT naming the field", async (_name, event, fields) => {
    const req = Object.keys(event).length === 0 ? {} : { event: create(JobEventSchema, event) };
    const err = await client()
      .publishJobEvent(create(PublishJobEventRequestSchema, req), { headers: auth })
      .catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.InvalidArgument);
    expect(violations(err)).toEqual(fields);
    await nothingStored();
  });

  it("an event over the size limit gets RESOURCE_EXHAUSTED naming the field", async () => {
    const big = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, "x".repeat(1_000)]));
    const err = await client()
      .publishJobEvent(
        { event: { tenantId: "acme", jobId: uniqueJob(), status: JobStatus.COMPLETED, result: big } },
        { headers: auth },
      )
      .catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.ResourceExhausted);
    expect(violations(err)).toEqual(["event.result"]);
    await nothingStored();
  });

  async function postJson(body: string) {
    const res = await fetch(`${svc.url}/jobhooks.v1.WebhookService/PublishJobEvent`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body,
    });
    return {
      status: res.status,
      body: (await res.json()) as { code: string; message: string; details?: unknown[] },
    };
  }

  it("a malformed JSON body gets INVALID_ARGUMENT", async () => {
    const res = await postJson('{"event": {"tenantId": "acme",');
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("invalid_argument");
    expect(res.body.message).toMatch(/not valid JSON/);
    await nothingStored();
  });

  it.each([
    ['{"event":{"tenantId":"acme","jobId":"j","status":"JOB_STATUS_DONE"}}', "event.status"],
    ['{"event":{"tenantId":"acme","jobId":"j","status":1,"sequence":"-1"}}', "event.sequence"],
    ['{"event":{"tenantId":7,"jobId":"j","status":1}}', "event.tenant_id"],
    ['{"event":{"tenantId":"a","jobId":"j","status":4,"error":{"code":5}}}', "event.error.code"],
    ['{"event":"created"}', "event"],
  ])("a JSON body with a wrongly typed field (%s) names %s", async (body, field) => {
    const res = await postJson(body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("invalid_argument");
    expect(res.body.message.startsWith(`${field}:`)).toBe(true);
    await nothingStored();
  });
});

describe("PublishJobEvent authentication", () => {
  const client = () => clientOver(createGrpcTransport({ baseUrl: svc.url }));
  const req = { event: { tenantId: "acme", jobId: "j-auth", status: JobStatus.CREATED } };

  it.each([
    ["no credential", {}],
    ["a malformed header", { authorization: "Basic abc" }],
    ["an unknown token", { authorization: "Bearer not-a-real-token-0000000" }],
  ])("%s gets UNAUTHENTICATED", async (_name, headers) => {
    const err = await client()
      .publishJobEvent(req, { headers })
      .catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.Unauthenticated);
  });

  it("never logs the service token", () => {
    expect(svc.log.text()).not.toContain(SERVICE_TOKEN);
  });
});

describe("PublishJobEvents: a batch, one result per event", () => {
  type GrpcResult = {
    eventId: string;
    streamSequence: string;
    duplicate: boolean;
    error: { code: number; message: string; details: Array<{ type_url: string; value: Buffer }> } | null;
  };
  function grpcJsClient() {
    const def = protoLoader.loadSync("jobhooks/v1/webhooks.proto", {
      includeDirs: [path.resolve("proto")],
      longs: String,
      enums: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      jobhooks: { v1: { WebhookService: grpc.ServiceClientConstructor } };
    };
    const client = new pkg.jobhooks.v1.WebhookService(
      new URL(svc.url).host,
      grpc.credentials.createInsecure(),
    ) as unknown as grpc.Client & {
      PublishJobEvents: (
        req: unknown,
        md: grpc.Metadata,
        cb: (err: grpc.ServiceError | null, res?: { results: GrpcResult[] }) => void,
      ) => void;
    };
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
    const res = await fetch(`${svc.url}/jobhooks.v1.WebhookService/PublishJobEvents`, {
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

  it.each([
    ["no events", { events: [] }, 400, "invalid_argument"],
    [
      "1,001 events",
      { events: Array.from({ length: 1_001 }, (_, i) => ({ tenantId: "acme", jobId: `j${i}`, status: 1 })) },
      429,
      "resource_exhausted",
    ],
  ])("a batch with %s is refused whole and stores nothing", async (_name, body, status, code) => {
    const before = (await storedEventIds()).length;
    const res = await postBatch(JSON.stringify(body));
    expect(res.status).toBe(status);
    expect(res.body.code).toBe(code);
    expect(res.body.message).toMatch(/^events: /);
    expect((await storedEventIds()).length).toBe(before);
  });

  it("a batch over 16 MiB in all is refused whole with RESOURCE_EXHAUSTED", async () => {
    const event = { tenantId: "acme", jobId: "j-big", status: 1, metadata: { a: "x".repeat(1_000) } };
    const res = await postBatch(JSON.stringify({ events: Array.from({ length: 17_500 }, () => event) }));
    expect(res.status).toBe(429);
    expect(res.body.code).toBe("resource_exhausted");
  });

  it("an anonymous batch gets UNAUTHENTICATED", async () => {
    const res = await postBatch('{"events":[]}', {});
    expect(res.status).toBe(401);
  });
});

describe("errors that say what to type", () => {
  const url = () => `${svc.url}/jobhooks.v1.WebhookService/PublishJobEvent`;
  async function post(
    body: string,
    headers: Record<string, string> = { "content-type": "application/json" },
  ) {
    const res = await fetch(url(), { method: "POST", headers: { ...auth, ...headers }, body });
    return {
      status: res.status,
      type: res.headers.get("content-type"),
      body: (await res.json()) as { code: string; message: string },
    };
  }

  it('"status": "completed" answers with the enum name to use', async () => {
    const res = await post('{"event":{"tenantId":"acme","jobId":"j","status":"completed"}}');
    expect(res.status).toBe(400);
    expect(res.body.message).toContain(
      'event.status: "completed" is not a valid value: one of "JOB_STATUS_CREATED"',
    );
    expect(res.body.message).toContain('did you mean "JOB_STATUS_COMPLETED"?');
  });

  it("JOB_STATUS_DONE answers with every valid value", async () => {
    const res = await post('{"event":{"tenantId":"acme","jobId":"j","status":"JOB_STATUS_DONE"}}');
    expect(res.body.message).toContain(
      '"JOB_STATUS_CREATED", "JOB_STATUS_PROCESSING", "JOB_STATUS_COMPLETED", "JOB_STATUS_FAILED", "JOB_STATUS_CANCELLED"',
    );
  });

  it('a body without the "event" wrapper says the fields go inside "event": {...}', async () => {
    const res = await post('{"tenantId":"acme","jobId":"j","status":"JOB_STATUS_CREATED"}');
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(
      /^event: is required: "tenantId", "jobId", "status" go inside "event": \{/,
    );
  });

  it("a missing content-type answers 415 with a JSON body naming content-type: application/json", async () => {
    const res = await fetch(url(), { method: "POST", headers: auth, body: new Uint8Array([123, 125]) });
    expect(res.status).toBe(415);
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(((await res.json()) as { message: string }).message).toContain("content-type: application/json");
  });

  it("a GET answers 405 with a JSON body saying to POST", async () => {
    const res = await fetch(url(), { headers: auth });
    expect(res.status).toBe(405);
    expect(res.headers.get("allow")).toBe("POST");
    expect(((await res.json()) as { message: string }).message).toContain("POST");
  });

  it("gRPC gets the same text in the status message and the BadRequest details", async () => {
    const err = await clientOver(createGrpcTransport({ baseUrl: svc.url }))
      .publishJobEvent({ event: { tenantId: "acme", jobId: "j" } }, { headers: auth })
      .catch((e: unknown) => ConnectError.from(e));
    const e = err as ConnectError;
    expect(e.code).toBe(Code.InvalidArgument);
    expect(e.rawMessage).toContain(
      "event.status: is required: one of JOB_STATUS_CREATED, JOB_STATUS_PROCESSING",
    );
    const v = e.findDetails(BadRequestSchema)[0]?.fieldViolations[0];
    expect(v?.field).toBe("event.status");
    expect(e.rawMessage).toBe(`${v?.field}: ${v?.description}`);
  });
});
