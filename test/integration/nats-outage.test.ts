import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { readStream, SERVICE_TOKEN, startTestService, type TestService } from "../support/service.js";

const headers = { authorization: `Bearer ${SERVICE_TOKEN}` };
let nats: NatsServer;
let svc: TestService;

beforeAll(async () => {
  nats = await startNatsServer();
  svc = await startTestService(nats.url);
});

afterAll(async () => {
  await svc?.stop();
  await nats?.dispose();
});

const client = () => createClient(WebhookService, createGrpcTransport({ baseUrl: svc.url }));

async function readyStatus(): Promise<number> {
  return (await fetch(`${svc.url}/readyz`)).status;
}

/** Polls until `f` returns `want`, for at most `ms`. */
async function eventually<T>(f: () => Promise<T>, want: T, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  let last = await f();
  while (last !== want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    last = await f();
  }
  return last;
}

describe("a NATS outage", () => {
  it("answers UNAVAILABLE within the caller's deadline, turns /readyz red, and recovers without a restart", async () => {
    expect(await readyStatus()).toBe(200);
    await nats.stop();

    const started = Date.now();
    const err = await client()
      .publishJobEvent(
        { event: { tenantId: "acme", jobId: "during-outage", status: JobStatus.CREATED } },
        { headers, timeoutMs: 3_000 },
      )
      .catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(ConnectError.from(err).code).toBe(Code.Unavailable);
    expect(elapsed).toBeLessThan(3_000);
    expect(await eventually(readyStatus, 503, 10_000)).toBe(503);
    const body = await (await fetch(`${svc.url}/readyz`)).json();
    expect(body).toMatchObject({ ready: false, checks: { nats: { ok: false } } });

    await nats.restart();
    expect(await eventually(readyStatus, 200, 20_000)).toBe(200);
    const res = await client().publishJobEvent(
      { event: { tenantId: "acme", jobId: "after-outage", status: JobStatus.CREATED } },
      { headers, timeoutMs: 10_000 },
    );
    expect(res.duplicate).toBe(false);
  });

  it("only delays a call whose deadline outlasts a short outage", async () => {
    await nats.stop();
    const restart = new Promise<void>((resolve) => setTimeout(() => resolve(nats.restart()), 1_500));
    const res = await client().publishJobEvent(
      { event: { tenantId: "acme", jobId: "across-outage", status: JobStatus.CREATED } },
      { headers, timeoutMs: 15_000 },
    );
    await restart;
    expect(res.eventId).toBe("across-outage.created");
    const ids = (await readStream(nats.url)).map((m) => m.json.eventId);
    expect(ids.filter((id) => id === "across-outage.created")).toHaveLength(1);
  });

  it("keeps every event accepted before the outage (file store)", async () => {
    const ids = (await readStream(nats.url)).map((m) => m.json.eventId);
    expect(ids).toContain("after-outage.created");
  });
});
