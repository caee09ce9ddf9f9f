import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { until } from "../support/poll.js";
import { publishToNats } from "../support/publish.js";
import { expectExactlyOnceInOrder, jobEvents } from "../support/relay-stack.js";
import { relayReplicas, type ServiceProcess } from "../support/spawn-service.js";

let nats: NatsServer;
let svix: SvixStandIn;
// A crashed relay's message comes back after ack_wait: keep the test's stall short.
const replicas = relayReplicas(() => ({ natsUrl: nats.url, svix }), { JOBHOOKS_RELAY_ACK_WAIT_MS: "3000" });
const relayProcess = () => replicas.start();

beforeAll(async () => {
  nats = await startNatsServer();
  svix = await startSvixStandIn({ deliver: false, requestLogSize: 0 });
});

afterEach(async () => {
  svix.faults.clear();
  await replicas.killAll();
});

afterAll(async () => {
  await svix?.close();
  await nats?.dispose();
});

const delivered = (tenant: string) => svix.state.messages(tenant).length;

/** Relayed-event count one process reports on /metrics. */
async function relayedBy(p: ServiceProcess): Promise<number> {
  const text = await (await fetch(`${p.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith('jobhooks_relay_events_total{outcome="relayed"}'));
  return line ? Number(line.split(" ")[1]) : 0;
}

describe("relay crashes and restarts", () => {
  it("a relay SIGKILLed while Svix is failing loses and duplicates nothing when started again", {
    timeout: 120_000,
  }, async () => {
    // Slow, failing Svix: many messages are mid-request when the process dies.
    svix.faults.inject({ route: "v1.message.create", kind: "latency", latencyMs: 200, fraction: 0.5 });
    svix.faults.inject({ route: "v1.message.create", kind: "503", fraction: 0.3 });
    const first = await relayProcess();
    await publishToNats(nats.url, jobEvents("killed", 100, 10));
    await until("200 deliveries before the kill", () => delivered("killed") >= 200, { timeoutMs: 60_000 });
    await first.kill();
    const atKill = delivered("killed");
    expect(atKill).toBeLessThan(1_000);

    await relayProcess();
    await until("all 1,000 deliveries", () => delivered("killed") >= 1_000, {
      timeoutMs: 90_000,
      everyMs: 250,
    });
    svix.faults.clear();
    // A wait on purpose: a late duplicate would arrive now, and only time shows none is coming.
    await new Promise((r) => setTimeout(r, 1_000));
    expectExactlyOnceInOrder(svix, "killed", 100, 10);
  });

  it("a nats-server killed and restarted mid-stream loses and duplicates nothing", {
    timeout: 120_000,
  }, async () => {
    svix.faults.inject({ route: "v1.message.create", kind: "latency", latencyMs: 20, fraction: 1 });
    const relay = await relayProcess();
    await publishToNats(nats.url, jobEvents("nats-restart", 100, 10));
    await until("200 deliveries before NATS goes down", () => delivered("nats-restart") >= 200, {
      timeoutMs: 60_000,
    });
    await nats.kill();
    // The outage's length is the point: NATS stays down a second, as a crashed node would.
    await new Promise((r) => setTimeout(r, 1_000));
    await nats.restart();
    await until("all 1,000 deliveries", () => delivered("nats-restart") >= 1_000, {
      timeoutMs: 90_000,
      everyMs: 250,
    });
    // A wait on purpose: a late duplicate would arrive now, and only time shows none is coming.
    await new Promise((r) => setTimeout(r, 1_000));
    expectExactlyOnceInOrder(svix, "nats-restart", 100, 10);
    await until("the relay ready again", async () => (await fetch(`${relay.url}/readyz`)).ok, {
      timeoutMs: 15_000,
    });
  });

  it("two relay processes split the work in order, and when one is killed the other finishes", {
    timeout: 120_000,
  }, async () => {
    svix.faults.inject({ route: "v1.message.create", kind: "latency", latencyMs: 10, fraction: 1 });
    const a = await relayProcess();
    const b = await relayProcess();
    await publishToNats(nats.url, jobEvents("pair", 100, 20));
    await until("600 deliveries by the pair", () => delivered("pair") >= 600, { timeoutMs: 60_000 });
    const [byA, byB] = await Promise.all([relayedBy(a), relayedBy(b)]);
    expect(byA).toBeGreaterThan(0);
    expect(byB).toBeGreaterThan(0);
    await a.kill();
    await until("all 2,000 deliveries", () => delivered("pair") >= 2_000, {
      timeoutMs: 90_000,
      everyMs: 250,
    });
    // A wait on purpose: a late duplicate would arrive now, and only time shows none is coming.
    await new Promise((r) => setTimeout(r, 1_000));
    expectExactlyOnceInOrder(svix, "pair", 100, 20);
    expect(await relayedBy(b)).toBeGreaterThan(byB);
  });
});
