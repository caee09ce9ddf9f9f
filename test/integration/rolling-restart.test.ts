import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { until } from "../support/poll.js";
import { type ServiceProcess, spawnService } from "../support/spawn-service.js";
import {
  arrivalTimes,
  checkDelivery,
  endToEndLatencies,
  lastAcceptedAt,
  longestGapMs,
  startSteadyLoad,
} from "../support/steady-load.js";

/**
 * Three jobhooks replicas share the relay's consumers; an orchestrator's rolling restart (SIGTERM
 * one replica, start it again at the same address once it exited, then the next) under steady
 * load over NATS and PublishJobEvent. Callers retry as the README says; none may see a failure,
 * and every accepted event reaches Svix once, in order per job.
 */

const TOKEN = "svc_rolling_token_0123456789abcdef";
const RATE = 300;
let nats: NatsServer;
let svix: SvixStandIn;
let dir: string;
let env: Record<string, string>;
const replicas: ServiceProcess[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  svix = await startSvixStandIn({ deliver: false, requestLogSize: 0 });
  dir = await mkdtemp(path.join(tmpdir(), "jobhooks-rolling-"));
  await writeFile(path.join(dir, "tokens"), `${TOKEN}\n`);
  env = {
    NATS_URL: nats.url,
    SVIX_TOKEN: svix.token,
    SVIX_SERVER_URL: svix.url,
    JOBHOOKS_SERVICE_TOKENS_FILE: path.join(dir, "tokens"),
    JOBHOOKS_SVIX_TIMEOUT_MS: "2000",
    // A message handed to a replica's pull just as it stopped comes back after ack_wait.
    JOBHOOKS_RELAY_ACK_WAIT_MS: "5000",
    JOBHOOKS_SHUTDOWN_GRACE_MS: "5000",
  };
  replicas.push(...(await Promise.all([spawnService(env), spawnService(env), spawnService(env)])));
}, 120_000);

afterAll(async () => {
  await Promise.all(replicas.splice(0).map((s) => s.kill()));
  await svix?.close();
  await nats?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("three replicas", () => {
  it("a rolling restart under steady load loses and duplicates nothing, and retrying callers see no failure", {
    timeout: 180_000,
  }, async () => {
    const tenant = "rolling";
    const load = await startSteadyLoad({
      natsUrl: nats.url,
      rpcUrls: replicas.map((r) => r.url),
      serviceToken: TOKEN,
      tenant,
      ratePerSec: RATE,
      jobs: 150,
      maxDurationMs: 120_000,
    });
    const restarts: Array<{ replica: number; exit: number | null; downMs: number }> = [];
    const started = Date.now();
    try {
      // Pacing on purpose: the restarts happen under a load that has been running a while, one
      // replica at a time with the load still flowing between them.
      await new Promise((r) => setTimeout(r, 4_000));
      for (let i = 0; i < replicas.length; i++) {
        const old = replicas[i] as ServiceProcess;
        const t0 = Date.now();
        const exit = await old.terminate();
        replicas[i] = await spawnService(env, { port: Number(new URL(old.url).port) });
        restarts.push({ replica: i, exit, downMs: Date.now() - t0 });
        await new Promise((r) => setTimeout(r, 2_000));
      }
      await new Promise((r) => setTimeout(r, 2_000));
    } catch (err) {
      await load.stop();
      throw err;
    }
    const report = await load.stop();
    const accepted = report.accepted;
    await until(
      "every accepted event at Svix",
      () => checkDelivery(svix, tenant, accepted).lost.length === 0,
      { timeoutMs: 60_000, everyMs: 250 },
    );
    // A wait on purpose: a late duplicate would arrive now, and only time shows none is coming.
    await new Promise((r) => setTimeout(r, 2_000));

    const check = checkDelivery(svix, tenant, accepted);
    const arrivals = arrivalTimes(svix, tenant);
    const rpc = accepted.filter((a) => a.via === "rpc");
    console.log(
      `\nrolling restart of 3 replicas at ${RATE} events/s: ${accepted.length} accepted (${rpc.length} over RPC), ` +
        `retries ${JSON.stringify(report.retried)}, longest Svix gap ${longestGapMs(arrivals, started + 1_000, lastAcceptedAt(accepted))} ms, ` +
        `publish→Svix max ${endToEndLatencies(svix, tenant).at(-1)} ms, ` +
        `RPC latency max ${Math.max(0, ...rpc.map((a) => a.acceptedAt - a.startedAt))} ms`,
    );
    console.table(restarts);

    expect(restarts.map((r) => r.exit)).toEqual([0, 0, 0]);
    expect(report.failed, JSON.stringify(report.failed.slice(0, 5))).toEqual([]);
    expect(check.lost).toEqual([]);
    expect(check.duplicated).toBe(0);
    expect(check.outOfOrder).toEqual([]);
    // The load ran through every restart (not stalled to nothing): well over a few seconds' worth.
    expect(rpc.length).toBeGreaterThan(RATE * 3);
    expect(rpc.some((a) => a.attempts > 1 || a.startedAt > started + 10_000)).toBe(true);
  });
});
