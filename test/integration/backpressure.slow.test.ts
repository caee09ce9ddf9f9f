import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { until } from "../support/poll.js";
import { type ServiceProcess, spawnService } from "../support/spawn-service.js";
import { checkDelivery, metricValue, rssMb, startSteadyLoad } from "../support/steady-load.js";

/**
 * Slow drill (`npm run test:slow`): Svix answers 503 to every message for 60 s while publishers
 * keep sending 2,000 events/s. The relay must hold only what it is working on (memory flat), the
 * backlog must stay in JetStream and show on /metrics, and once Svix is back the relay must drain
 * it at the speed it relays with Svix healthy.
 */

const RATE = 2_000;
const OUTAGE_MS = 60_000;
let nats: NatsServer;
let svix: SvixStandIn;
let relay: ServiceProcess | undefined;

beforeAll(async () => {
  nats = await startNatsServer();
  svix = await startSvixStandIn({ deliver: false, requestLogSize: 0, maxMessages: 300_000 });
  relay = await spawnService({
    NATS_URL: nats.url,
    SVIX_TOKEN: svix.token,
    SVIX_SERVER_URL: svix.url,
    JOBHOOKS_SVIX_TIMEOUT_MS: "2000",
  });
}, 60_000);

afterAll(async () => {
  svix?.faults.clear();
  await relay?.kill();
  await svix?.close();
  await nats?.dispose();
});

/** Publishes `seconds` of load at `rate` for `tenant`, over NATS only; returns what was accepted. */
async function publishFor(
  tenant: string,
  rate: number,
  seconds: number,
  onSecond?: (s: number) => Promise<void>,
) {
  const load = await startSteadyLoad({
    natsUrl: nats.url,
    rpcUrls: [],
    serviceToken: "",
    tenant,
    ratePerSec: rate,
    jobs: 500,
    maxDurationMs: seconds * 1_000 + 5_000,
  });
  const started = Date.now();
  try {
    for (let s = 1; s <= seconds; s++) {
      // Pacing on purpose: one sample a second of a steady load.
      await new Promise((r) => setTimeout(r, Math.max(0, started + s * 1_000 - Date.now())));
      await onSecond?.(s);
    }
  } catch (err) {
    await load.stop();
    throw err;
  }
  return load.stop();
}

/** Waits until every accepted event is at Svix; events/s from the first to the last arrival. */
async function drainRate(tenant: string, expected: number, since: number): Promise<number> {
  await until(`all ${expected} messages at Svix`, () => svix.state.messages(tenant).length >= expected, {
    timeoutMs: 240_000,
    everyMs: 250,
  });
  const arrivals = svix.state
    .messages(tenant)
    .map((m) => Date.parse(m.timestamp))
    .filter((t) => t >= since);
  const first = Math.min(...arrivals);
  const last = Math.max(...arrivals);
  return Math.round((arrivals.length - 1) / Math.max(0.001, (last - first) / 1_000));
}

describe("backpressure", () => {
  it("a 60 s Svix outage under 2,000 events/s keeps the relay's memory flat and drains at full speed after", {
    timeout: 600_000,
  }, async () => {
    const svc = relay as ServiceProcess;
    // The reference speed: the backlog of a 10 s outage (20,000 events), drained once Svix is back.
    svix.faults.inject({ route: "v1.message.create", kind: "503" });
    const referenceLoad = await publishFor("reference", RATE, 10);
    const referenceAccepted = referenceLoad.accepted.length;
    const cleared = Date.now();
    svix.faults.clear();
    const referenceRate = await drainRate("reference", referenceAccepted, cleared);

    // The outage.
    svix.faults.inject({ route: "v1.message.create", kind: "503" });
    const rss: Array<{ s: number; mb: number }> = [];
    const pending: Array<{ s: number; n: number }> = [];
    const outage = await publishFor("outage", RATE, OUTAGE_MS / 1_000, async (s) => {
      const mb = await rssMb(svc.child.pid);
      if (mb !== undefined) rss.push({ s, mb });
      if (s % 5 === 0)
        pending.push({ s, n: (await metricValue(svc.url, "jobhooks_relay_consumer_pending")) ?? -1 });
    });
    const recovered = Date.now();
    svix.faults.clear();
    const atRecovery = svix.state.messages("outage").length;
    const recoveryRate = await drainRate("outage", outage.accepted.length, recovered);
    // A wait on purpose: a late duplicate would arrive now, and only time shows none is coming.
    await new Promise((r) => setTimeout(r, 2_000));

    const at = (s: number) => rss.find((r) => r.s >= s)?.mb ?? Number.NaN;
    const growth = at(OUTAGE_MS / 1_000) - at(10);
    const achieved = Math.round(outage.accepted.length / (outage.durationMs / 1_000));
    console.log(
      `\nbackpressure: ${outage.accepted.length} events in ${Math.round(outage.durationMs / 1000)} s of outage ` +
        `(${achieved}/s), relay RSS ${at(10).toFixed(0)} MB at 10 s → ${at(60).toFixed(0)} MB at 60 s ` +
        `(max ${Math.max(...rss.map((r) => r.mb)).toFixed(0)} MB), drain after recovery ${recoveryRate}/s ` +
        `vs ${referenceRate}/s after a 10 s outage (${referenceAccepted} events)`,
    );
    console.table(pending);

    const check = checkDelivery(svix, "outage", outage.accepted);
    expect(check.lost).toEqual([]);
    expect(check.duplicated).toBe(0);
    expect(check.outOfOrder).toEqual([]);
    expect(atRecovery).toBe(0);
    // The load was real: most of 2,000/s reached JetStream on a busy 2-core machine.
    expect(achieved).toBeGreaterThan(RATE * 0.6);
    expect(growth).toBeLessThan(50);
    // The backlog grows on /metrics (the gauge refreshes every 5 s).
    const p10 = pending.find((p) => p.s === 10)?.n ?? 0;
    const p55 = pending.find((p) => p.s === 55)?.n ?? 0;
    expect(p10).toBeGreaterThan(0);
    expect(p55).toBeGreaterThan(p10 + RATE * 20);
    // Full speed: a six times larger backlog drains about as fast as the reference one.
    expect(recoveryRate).toBeGreaterThan(referenceRate * 0.6);
  });
});
