import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
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
    const def = protoLoader.loadSync(path.resolve("proto/jobhooks/v1/webhooks.proto"), {
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
