import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { provisionJetStream } from "../../src/nats/provision.js";
import { sleep } from "../../src/resilience/clock.js";
import { publishToNats, waitFor } from "../support/publish.js";
import { expectExactlyOnceInOrder, jobEvents } from "../support/relay-stack.js";
import { relayReplicas } from "../support/spawn-service.js";

let nats: NatsServer;
let svix: SvixStandIn;
const replicas = relayReplicas(() => ({ natsUrl: nats.url, svix }));
const relayProcess = (env: Record<string, string> = {}) => replicas.start(env);

beforeAll(async () => {
  nats = await startNatsServer();
  svix = await startSvixStandIn({ deliver: false, requestLogSize: 100_000 });
  // The streams exist before the first replica starts, as in a running deployment.
  const nc = await connect({ servers: nats.url });
  await provisionJetStream(
    await jetstreamManager(nc),
    { subjectPrefix: "jobs", replicas: 1, duplicateWindowMs: 120_000 },
    pino({ level: "silent" }),
  );
  await nc.close();
});

afterEach(async () => {
  svix.faults.clear();
  await replicas.killAll();
});

afterAll(async () => {
  await svix?.close();
  await nats?.dispose();
});

/** Times (ms) of message-create requests Svix received at or after `since`. */
function createTimes(since: number): number[] {
  return svix.state
    .requests()
    .filter((r) => r.route === "v1.message.create")
    .map((r) => Date.parse(r.at))
    .filter((t) => t >= since)
    .sort((a, b) => a - b);
}

/** The most requests in any one-second window. */
function busiestSecond(times: number[]): number {
  let most = 0;
  for (let i = 0, j = 0; j < times.length; j++) {
    while ((times[j] as number) - (times[i] as number) >= 1_000) i++;
    most = Math.max(most, j - i + 1);
  }
  return most;
}

describe("Svix pressure", () => {
  it("a replica started while Svix is down sends at most 5 requests a second, from its first second on", {
    timeout: 90_000,
  }, async () => {
    svix.faults.inject({ route: "v1.message.create", kind: "503" });
    await publishToNats(nats.url, jobEvents("cold-start", 100, 2));
    const spawnedAt = Date.now();
    await relayProcess();
    await sleep(Math.max(0, spawnedAt + 8_000 - Date.now()));
    const during = createTimes(spawnedAt);
    expect(during.length).toBeGreaterThan(0); // it did try
    expect(busiestSecond(during)).toBeLessThanOrEqual(5);

    svix.faults.clear();
    expect(await waitFor(() => svix.state.messages("cold-start").length >= 200, 30_000, 100)).toBe(true);
    await sleep(500);
    expectExactlyOnceInOrder(svix, "cold-start", 100, 2);
  });

  it("Svix rate-limiting every call with Retry-After: 3 gets about one request per 3 s, and delivery resumes after", {
    timeout: 90_000,
  }, async () => {
    await relayProcess();
    await publishToNats(nats.url, jobEvents("warm", 20, 1));
    expect(await waitFor(() => svix.state.messages("warm").length >= 20, 20_000)).toBe(true);

    svix.faults.inject({ route: "v1.message.create", kind: "429", retryAfterSeconds: 3 });
    const onset = Date.now();
    await publishToNats(nats.url, jobEvents("limited", 50, 2));
    await sleep(Math.max(0, onset + 14_000 - Date.now()));
    // After the first answers (the circuit opens on them), Svix's pause is honoured.
    const later = createTimes(onset + 2_000).filter((t) => t < onset + 14_000);
    expect(later.length).toBeLessThanOrEqual(6); // 12 s at one request per 3 s, with slack

    svix.faults.clear();
    expect(await waitFor(() => svix.state.messages("limited").length >= 100, 30_000, 100)).toBe(true);
    await sleep(500);
    expectExactlyOnceInOrder(svix, "limited", 50, 2);
  });

  it("SIGTERM during an outage exits 0 within the stop deadline and hands its events back at once", {
    timeout: 90_000,
  }, async () => {
    svix.faults.inject({ route: "v1.message.create", kind: "503" });
    // A long ack_wait: events handed back by nak arrive at the next replica at once; events the
    // stopped replica had kept would only come back after 60 s.
    const env = { JOBHOOKS_RELAY_ACK_WAIT_MS: "60000", JOBHOOKS_STOP_DEADLINE_MS: "15000" };
    const first = await relayProcess(env);
    await publishToNats(nats.url, jobEvents("handed-back", 50, 2));
    await sleep(2_000); // held, waiting for the circuit
    const signalledAt = Date.now();
    expect(await first.terminate()).toBe(0);
    expect(Date.now() - signalledAt).toBeLessThan(15_000);

    svix.faults.clear();
    const second = await relayProcess(env);
    expect(await waitFor(() => svix.state.messages("handed-back").length >= 100, 20_000, 100)).toBe(true);
    await sleep(500);
    expectExactlyOnceInOrder(svix, "handed-back", 50, 2);
    expect(second.output()).not.toContain('"level":"error"');
  });
});
