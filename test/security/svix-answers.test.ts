import { Svix } from "svix";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/log/logger.js";
import { createSvixGateway } from "../../src/svix/gateway.js";
import { until } from "../support/poll.js";
import { publishToNats } from "../support/publish.js";
import { type RelayStack, startRelayStack } from "../support/relay-stack.js";

let stack: RelayStack;

beforeAll(async () => {
  stack = await startRelayStack();
});

afterAll(async () => {
  await stack?.stop();
});

const messageCreates = () => stack.svix.state.requests().filter((r) => r.route === "v1.message.create");

describe("Svix's answers are read exactly", () => {
  it("a 409 that is not about this event's id does not count as delivered: the event still reaches Svix", async () => {
    // Svix's generic conflict answer, as for an inline application another replica creates at once.
    stack.svix.faults.inject({ route: "POST /api/v1/app/conflicted/msg", kind: "409", count: 2 });
    await publishToNats(stack.nats.url, [
      { subject: "jobs.conflicted.job-1.completed", body: JSON.stringify({ result: { ok: true } }) },
    ]);
    await until("the message at Svix", () => stack.svix.state.messages("conflicted").length === 1, {
      timeoutMs: 20_000,
    });
    expect(stack.svix.state.messages("conflicted")[0]?.eventId).toBe("job-1.completed");
  });

  it("a 409 for an event Svix already holds counts as delivered, once", async () => {
    // Svix got the event before, under another idempotency key (say, before a crash and an upgrade).
    const sdk = new Svix(stack.svix.token, { serverUrl: stack.svix.url });
    await sdk.message.create("twice", {
      eventType: "job.created",
      eventId: "job-1.created",
      payload: { type: "job.created" },
      application: { uid: "twice", name: "twice" },
    });
    await publishToNats(stack.nats.url, [{ subject: "jobs.twice.job-1.created", body: "{}" }]);
    await until(
      "the 409 for the second create",
      () => messageCreates().some((r) => r.path === "/api/v1/app/twice/msg" && r.status === 409),
      { timeoutMs: 20_000 },
    );
    await until("the duplicate acked, not retried", async () => (await streamMessages()) === 0);
    expect(stack.svix.state.messages("twice")).toHaveLength(1);
  });

  it("two tenants' events with the same id are sent under different idempotency keys, never Svix's reserved auto_ prefix", async () => {
    stack.svix.state.clearRequests();
    await publishToNats(stack.nats.url, [
      { subject: "jobs.tenant-a.job-1.created", body: "{}" },
      { subject: "jobs.auto_tenant.job-1.created", body: "{}" },
    ]);
    await until(
      "both messages at Svix",
      () =>
        stack.svix.state.messages("tenant-a").length === 1 &&
        stack.svix.state.messages("auto_tenant").length === 1,
      { timeoutMs: 20_000 },
    );
    const keys = messageCreates()
      .filter((r) => r.status === 202)
      .map((r) => r.idempotencyKey);
    expect(keys).toHaveLength(2);
    expect(new Set(keys).size).toBe(2);
    for (const key of keys) {
      expect(key).toBeDefined();
      expect(key?.startsWith("auto_")).toBe(false);
    }
    expect(keys.some((k) => k?.includes("tenant-a"))).toBe(true);
  });

  it("a Retry-After of a day is read as at most a minute", async () => {
    const gateway = createSvixGateway({
      token: stack.svix.token,
      serverUrl: stack.svix.url,
      log: createLogger("silent"),
    });
    stack.svix.faults.inject({ route: "message.create", kind: "429", retryAfterSeconds: 86_400, count: 1 });
    const outcome = await gateway.createMessage("slow-down", {
      eventType: "job.created",
      eventId: "job-1.created",
      payload: { type: "job.created", timestamp: new Date().toISOString(), data: {} },
    } as never);
    expect(outcome).toMatchObject({ kind: "transient", status: 429 });
    expect((outcome as { retryAfterMs?: number }).retryAfterMs).toBeLessThanOrEqual(60_000);
    expect((outcome as { retryAfterMs?: number }).retryAfterMs).toBeGreaterThan(0);
  });
});

async function streamMessages(): Promise<number> {
  const { connect } = await import("@nats-io/transport-node");
  const { jetstreamManager } = await import("@nats-io/jetstream");
  const nc = await connect({ servers: stack.nats.url });
  try {
    return (await (await jetstreamManager(nc)).streams.info("JOBS")).state.messages;
  } finally {
    await nc.close();
  }
}
