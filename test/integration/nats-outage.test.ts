import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { until } from "../support/poll.js";
import { readStream, SERVICE_TOKEN, useServiceWithNats } from "../support/service.js";

const headers = { authorization: `Bearer ${SERVICE_TOKEN}` };
const stack = useServiceWithNats();

const client = () => createClient(WebhookService, createGrpcTransport({ baseUrl: stack.svc.url }));

async function readyStatus(): Promise<number> {
  return (await fetch(`${stack.svc.url}/readyz`)).status;
}

describe("a NATS outage", () => {
  it("answers UNAVAILABLE within the caller's deadline, turns /readyz red, and recovers without a restart", async () => {
    expect(await readyStatus()).toBe(200);
    await stack.nats.stop();

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
    await until("/readyz to answer 503", async () => (await readyStatus()) === 503, { everyMs: 100 });
    const body = await (await fetch(`${stack.svc.url}/readyz`)).json();
    expect(body).toMatchObject({ ready: false, checks: { nats: { ok: false } } });

    await stack.nats.restart();
    await until("/readyz to answer 200", async () => (await readyStatus()) === 200, {
      timeoutMs: 20_000,
      everyMs: 100,
    });
    const res = await client().publishJobEvent(
      { event: { tenantId: "acme", jobId: "after-outage", status: JobStatus.CREATED } },
      { headers, timeoutMs: 10_000 },
    );
    expect(res.duplicate).toBe(false);
  });

  it("only delays a call whose deadline outlasts a short outage", async () => {
    await stack.nats.stop();
    // The outage's length is the point: shorter than the call's deadline, longer than one attempt.
    const restart = new Promise<void>((resolve) => setTimeout(() => resolve(stack.nats.restart()), 1_500));
    const res = await client().publishJobEvent(
      { event: { tenantId: "acme", jobId: "across-outage", status: JobStatus.CREATED } },
      { headers, timeoutMs: 15_000 },
    );
    await restart;
    expect(res.eventId).toBe("across-outage.created");
    const ids = (await readStream(stack.nats.url)).map((m) => m.json.eventId);
    expect(ids.filter((id) => id === "across-outage.created")).toHaveLength(1);
  });

  it("keeps every event accepted before the outage (file store)", async () => {
    const ids = (await readStream(stack.nats.url)).map((m) => m.json.eventId);
    expect(ids).toContain("after-outage.created");
  });
});
