import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { beforeEach, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { grpcJsWebhookClient } from "../support/grpc-js.js";
import { readStream, SERVICE_TOKEN, useServiceWithNats } from "../support/service.js";

// PublishJobEvent against a real nats-server: every protocol on the one port, what JetStream
// stores, and the JSON a caller gets back over HTTP. The RPC's rules (validation, size limits,
// authentication, answers to each store failure) are tested in memory in
// test/server/webhook-service-publish.test.ts and webhook-service.test.ts; the batch RPC on real
// NATS is in publish-job-events-batch.test.ts.

const auth = { authorization: `Bearer ${SERVICE_TOKEN}` };
const stack = useServiceWithNats();
let n = 0;
const uniqueJob = () => `job_${process.pid}_${++n}`;

function clientOver(transport: Transport) {
  return createClient(WebhookService, transport);
}

async function storedEventIds(): Promise<string[]> {
  return (await readStream(stack.nats.url)).map((m) => String(m.json.eventId));
}

describe("one port, every protocol", () => {
  const transports: Array<[string, () => Transport]> = [
    ["gRPC over HTTP/2", () => createGrpcTransport({ baseUrl: stack.svc.url })],
    ["gRPC-Web over HTTP/1.1", () => createGrpcWebTransport({ baseUrl: stack.svc.url, httpVersion: "1.1" })],
    ["gRPC-Web over HTTP/2", () => createGrpcWebTransport({ baseUrl: stack.svc.url, httpVersion: "2" })],
    ["Connect over HTTP/1.1", () => createConnectTransport({ baseUrl: stack.svc.url, httpVersion: "1.1" })],
    [
      "Connect binary over HTTP/2",
      () => createConnectTransport({ baseUrl: stack.svc.url, httpVersion: "2", useBinaryFormat: true }),
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
    const res = await fetch(`${stack.svc.url}/jobhooks.v1.WebhookService/PublishJobEvent`, {
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
    const client = grpcJsWebhookClient<{
      PublishJobEvent: (req: unknown, md: grpc.Metadata, cb: unknown) => void;
    }>(stack.svc.url);
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
      ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-services", stack.svc.url],
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
        `${stack.svc.url}/jobhooks.v1.WebhookService/PublishJobEvent`,
      ],
      { timeout: 20_000 },
    );
    expect(JSON.parse(stdout)).toMatchObject({ eventId: `${jobId}.cancelled` });
  });

  it("health Check says SERVING", async () => {
    const res = await fetch(`${stack.svc.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ service: "jobhooks.v1.WebhookService" }),
    });
    expect(await res.json()).toEqual({ status: "SERVING" });
  });
});

describe("PublishJobEvent stores each event once", () => {
  const client = () => clientOver(createGrpcTransport({ baseUrl: stack.svc.url }));

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
    const stored = (await readStream(stack.nats.url)).find((m) => m.seq === Number(res.streamSequence));
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

describe("PublishJobEvent over HTTP: JSON a field cannot hold is refused naming it, and nothing is stored", () => {
  let before: number;
  beforeEach(async () => {
    before = (await readStream(stack.nats.url)).length;
  });
  const nothingStored = async () => expect((await readStream(stack.nats.url)).length).toBe(before);

  async function postJson(body: string) {
    const res = await fetch(`${stack.svc.url}/jobhooks.v1.WebhookService/PublishJobEvent`, {
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

describe("PublishJobEvent and the service token", () => {
  it("never logs the service token", () => {
    expect(stack.svc.log.text()).not.toContain(SERVICE_TOKEN);
  });
});

describe("errors that say what to type", () => {
  const url = () => `${stack.svc.url}/jobhooks.v1.WebhookService/PublishJobEvent`;
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
    const err = await clientOver(createGrpcTransport({ baseUrl: stack.svc.url }))
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
