import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type NatsServer, startNatsCluster, startNatsServer } from "../src/local/nats-server.js";
import { type FaultRuleInput, startSvixStandIn } from "../src/local/svix-stand-in/index.js";
import { JOBS_STREAM, RELAY_CONSUMER } from "../src/nats/provision.js";
import { type ServiceProcess, spawnService } from "../test/support/spawn-service.js";
import {
  arrivalTimes,
  checkDelivery,
  endToEndLatencies,
  longestGapMs,
  metricValue,
  percentile,
  rssMb,
  startSteadyLoad,
} from "../test/support/steady-load.js";

/**
 * `npm run soak [-- --minutes N --rate R --replicas N --single --seed N --no-faults]`: jobhooks
 * replicas (the compiled build) on a 3-node NATS cluster (R3; `--single` for one nats-server) under
 * steady load over NATS and PublishJobEvent, while Svix fails (5xx, 429, slow answers, resets,
 * short outages) and a nats-server is SIGKILLed and restarted every minute or so. The fault
 * schedule (Svix phases; which node is killed — by role: the relay consumer's leader, the JOBS
 * leader or another node — when, and for how long) comes from `--seed` (printed; random when not
 * given), so a run can be repeated and single-node and cluster runs compared like for like; which
 * single Svix calls fail within a phase stays random. `--no-faults` runs without any. Bounded: it
 * stops after `--minutes` (SOAK_MINUTES, default 10), drains, and prints lost and duplicated events
 * (both must be 0; the exit code says so), a row per minute (relay outcomes, Svix budget, backlog,
 * RSS), publish→Svix latency and the longest pause at Svix during each node kill. Loopback only;
 * not in CI.
 */

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string", default: process.env.SOAK_MINUTES ?? "10" },
    rate: { type: "string", default: process.env.SOAK_RATE ?? "200" },
    replicas: { type: "string", default: "2" },
    single: { type: "boolean", default: false },
    seed: { type: "string", default: process.env.SOAK_SEED },
    "no-faults": { type: "boolean", default: false },
  },
});
const MINUTES = Number(args.minutes);
const RATE = Number(args.rate);
const REPLICAS = Number(args.replicas);
const SEED = args.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(args.seed);
const FAULTS = !args["no-faults"];
if (
  !(MINUTES > 0 && MINUTES <= 24 * 60 && RATE > 0 && REPLICAS >= 1 && REPLICAS <= 8) ||
  !Number.isSafeInteger(SEED)
) {
  console.error(
    "usage: npm run soak -- [--minutes 1..1440] [--rate EVENTS_PER_S] [--replicas 1..8] [--single] " +
      "[--seed INTEGER] [--no-faults]",
  );
  process.exit(2);
}
if (!existsSync("dist/cli.js")) {
  console.error("run `npm run build` first: the soak runs the compiled service");
  process.exit(2);
}

type KillRole = "relay consumer leader" | "JOBS leader" | "another node";
const OUTCOMES = ["relayed", "waited", "retried"] as const;
type Outcome = (typeof OUTCOMES)[number];

interface FaultSchedule {
  svix: Array<{ atMs: number; lastsMs: number; name: string; rules: FaultRuleInput[] }>;
  kills: Array<{ atMs: number; downMs: number; role: KillRole; pick: number }>;
}

const TOKEN = "svc_soak_token_0123456789abcdef_0123";
const TENANT = "soak";
const sleepUntil = async (t: number, stop: () => boolean) => {
  while (Date.now() < t && !stop()) await new Promise((r) => setTimeout(r, Math.min(250, t - Date.now())));
};
const log = (msg: string) => console.log(`${new Date().toISOString().slice(11, 19)} ${msg}`);

const cluster = args.single ? undefined : await startNatsCluster(3);
const single = args.single ? await startNatsServer() : undefined;
const nodes: NatsServer[] = cluster?.servers ?? (single ? [single] : []);
const natsUrl = cluster?.url ?? single?.url ?? "";
const expected = Math.ceil(RATE * MINUTES * 60 * 1.2) + 10_000;
const svix = await startSvixStandIn({ deliver: false, requestLogSize: 0, maxMessages: expected });
const dir = await mkdtemp(path.join(tmpdir(), "jobhooks-soak-"));
await writeFile(path.join(dir, "tokens"), `${TOKEN}\n`);
const replicas: ServiceProcess[] = [];
const closers: Array<() => Promise<void>> = [];
let exitCode = 1;

try {
  const env = {
    NATS_URL: natsUrl,
    SVIX_TOKEN: svix.token,
    SVIX_SERVER_URL: svix.url,
    JOBHOOKS_SERVICE_TOKENS_FILE: path.join(dir, "tokens"),
    JOBHOOKS_STREAM_REPLICAS: cluster ? "3" : "1",
    JOBHOOKS_SVIX_TIMEOUT_MS: "2000",
    JOBHOOKS_RELAY_ACK_WAIT_MS: "10000",
    LOG_LEVEL: "warn",
  };
  for (let i = 0; i < REPLICAS; i++) replicas.push(await spawnService(env, { compiled: true }));
  log(
    `soak: ${MINUTES} min, ${RATE} events/s (half NATS, half PublishJobEvent), ${REPLICAS} replicas, ` +
      `${cluster ? "3-node NATS cluster, R3" : "one nats-server"}`,
  );

  const schedule = FAULTS ? faultSchedule(SEED, MINUTES * 60_000) : { svix: [], kills: [] };
  log(FAULTS ? `seed ${SEED} (repeat with --seed ${SEED}); schedule:` : "no faults (--no-faults)");
  for (const p of schedule.svix) log(`  +${fmtS(p.atMs)} svix ${p.name} for ${fmtS(p.lastsMs)}`);
  for (const k of schedule.kills) log(`  +${fmtS(k.atMs)} SIGKILL ${k.role} for ${fmtS(k.downMs)}`);

  const jsNc = await connect({
    servers: natsUrl.split(","),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
  });
  closers.push(() => jsNc.close());
  const jsm = await jetstreamManager(jsNc, { timeout: 2_000 });
  /** The node to kill for a role, as the cluster is now; `pick` decides among equals. */
  const nodeFor = async (role: KillRole, pick: number): Promise<NatsServer> => {
    const byName = (n: string | undefined) => nodes.find((x) => x.name === n);
    const [stream, consumer] = await Promise.all([
      jsm.streams.info(JOBS_STREAM).then(
        (i) => byName(i.cluster?.leader),
        () => undefined,
      ),
      jsm.consumers.info(JOBS_STREAM, RELAY_CONSUMER).then(
        (i) => byName(i.cluster?.leader),
        () => undefined,
      ),
    ]);
    const others = nodes.filter((n) => n !== stream && n !== consumer);
    const chosen =
      role === "relay consumer leader"
        ? consumer
        : role === "JOBS leader"
          ? stream
          : others[pick % others.length];
    return chosen ?? (nodes[pick % nodes.length] as NatsServer);
  };
  const sumOverReplicas = async (series: string) =>
    (await Promise.all(replicas.map((r) => metricValue(r.url, series)))).reduce<number>(
      (a, v) => a + (v ?? 0),
      0,
    );
  const relayOutcomes = async (): Promise<Record<Outcome, number>> => {
    const [relayed, waited, retried] = await Promise.all(
      OUTCOMES.map((k) => sumOverReplicas(`jobhooks_relay_events_total{outcome="${k}"}`)),
    );
    return { relayed: relayed ?? 0, waited: waited ?? 0, retried: retried ?? 0 };
  };

  const started = Date.now();
  const end = started + MINUTES * 60_000;
  const load = await startSteadyLoad({
    natsUrl,
    rpcUrls: replicas.map((r) => r.url),
    serviceToken: TOKEN,
    tenant: TENANT,
    ratePerSec: RATE,
    jobs: Math.max(100, RATE),
    retryBudgetMs: 110_000,
    maxDurationMs: MINUTES * 60_000 + 30_000,
  });
  const done = () => Date.now() >= end;
  const faultLog: string[] = [];

  const svixFaults = (async () => {
    for (const phase of schedule.svix) {
      await sleepUntil(started + phase.atMs, done);
      if (done()) break;
      svix.faults.clear();
      for (const r of phase.rules) svix.faults.inject(r);
      faultLog.push(`svix ${phase.name} ${Math.round(phase.lastsMs / 1000)} s`);
    }
    await sleepUntil(end, () => false);
    svix.faults.clear();
  })();

  const kills: Array<{ role: KillRole; node: string; at: number; restartedAt: number }> = [];
  const natsFaults = (async () => {
    for (const k of schedule.kills) {
      await sleepUntil(started + k.atMs, done);
      if (done()) break;
      const node = await nodeFor(k.role, k.pick);
      const name = node.name.split("-").at(-1) ?? node.name;
      faultLog.push(`nats kill ${name} (${k.role}) for ${Math.round(k.downMs / 1000)} s`);
      log(`fault: SIGKILL ${node.name} (${k.role}), down ${Math.round(k.downMs / 1000)} s`);
      const at = Date.now();
      await node.kill();
      await new Promise((r) => setTimeout(r, k.downMs));
      kills.push({ role: k.role, node: name, at, restartedAt: Date.now() });
      await node.restart();
    }
  })();

  // The backlog between rows too, for its maximum.
  let backlogMax = 0;
  const backlogSampler = setInterval(() => {
    void metricValue(replicas[0]?.url ?? "", "jobhooks_relay_consumer_pending").then((v) => {
      if (v !== undefined) backlogMax = Math.max(backlogMax, v);
    });
  }, 5_000);

  // One row a minute; relay outcomes are this minute's, summed over the replicas.
  const rows: Array<Record<string, string | number>> = [];
  let outcomesBefore = await relayOutcomes();
  for (let minute = 1; minute <= MINUTES; minute++) {
    await sleepUntil(started + minute * 60_000, () => false);
    const rss = await Promise.all(replicas.map((r) => rssMb(r.child.pid)));
    const outcomes = await relayOutcomes();
    const previous = outcomesBefore;
    const delta = (k: Outcome) => outcomes[k] - previous[k];
    outcomesBefore = outcomes;
    const backlog = await metricValue(replicas[0]?.url ?? "", "jobhooks_relay_consumer_pending");
    if (backlog !== undefined) backlogMax = Math.max(backlogMax, backlog);
    rows.push({
      minute,
      accepted: load.acceptedCount,
      "at Svix": svix.state.messages(TENANT).length,
      backlog: backlog ?? "-",
      relayed: delta("relayed"),
      waited: delta("waited"),
      retried: delta("retried"),
      "Svix budget": await sumOverReplicas("jobhooks_relay_svix_budget"),
      "RSS MB per replica": rss.map((mb) => (mb === undefined ? "-" : mb.toFixed(0))).join(" / "),
      faults: faultLog.splice(0).join("; "),
    });
    log(JSON.stringify(rows.at(-1)));
  }
  await Promise.all([svixFaults, natsFaults]);
  clearInterval(backlogSampler);
  const report = await load.stop();
  svix.faults.clear();
  log(`load stopped: ${report.accepted.length} accepted, ${report.failed.length} gave up; draining`);

  const drainDeadline = Date.now() + 5 * 60_000;
  while (Date.now() < drainDeadline && checkDelivery(svix, TENANT, report.accepted).lost.length > 0) {
    await new Promise((r) => setTimeout(r, 1_000));
  }
  await new Promise((r) => setTimeout(r, 3_000)); // a late duplicate would arrive now
  const check = checkDelivery(svix, TENANT, report.accepted);
  const latencies = endToEndLatencies(svix, TENANT);
  const rpc = report.accepted.filter((a) => a.via === "rpc").map((a) => a.acceptedAt - a.startedAt);

  console.log(
    `\nsoak: ${MINUTES} min at ${RATE} events/s, ${REPLICAS} replicas, ${cluster ? "3-node cluster R3" : "single nats-server"}, ` +
      (FAULTS ? `seed ${SEED}` : "no faults"),
  );
  console.table(rows);
  // The pause a Svix observer sees while a node is down: no event of any job arriving.
  const arrivals = arrivalTimes(svix, TENANT);
  const stalls = kills.map((k) => ({
    node: `${k.node} (${k.role})`,
    "down s": ((k.restartedAt - k.at) / 1000).toFixed(1),
    // Until 10 s after the restart: a stall can outlast the downtime (a Raft election takes 4–9 s).
    "longest pause at Svix, kill to restart + 10 s, ms": longestGapMs(arrivals, k.at, k.restartedAt + 10_000),
  }));
  if (stalls.length > 0) console.table(stalls);
  console.table([
    {
      accepted: report.accepted.length,
      "gave up": report.failed.length,
      lost: check.lost.length,
      duplicated: check.duplicated,
      "out of order jobs": check.outOfOrder.length,
      "backlog max": backlogMax,
      "p50 publish→Svix ms": percentile(latencies, 50),
      "p99 publish→Svix ms": percentile(latencies, 99),
      "max publish→Svix ms": latencies.at(-1) ?? 0,
      "longest pause during kills ms": Math.max(
        0,
        ...stalls.map((k) => k["longest pause at Svix, kill to restart + 10 s, ms"]),
      ),
      "RPC p99 ms (with retries)": percentile(
        rpc.sort((a, b) => a - b),
        99,
      ),
    },
  ]);
  console.log(`caller retries: ${JSON.stringify(report.retried)}`);
  if (report.failed.length > 0) console.log(`gave up, first 5: ${JSON.stringify(report.failed.slice(0, 5))}`);
  const ok = check.lost.length === 0 && check.duplicated === 0 && check.outOfOrder.length === 0;
  console.log(
    ok ? "OK: nothing lost, nothing duplicated, order kept" : "FAILED: see lost / duplicated above",
  );
  exitCode = ok && report.failed.length === 0 ? 0 : 1;
} finally {
  await Promise.all(closers.map((c) => c().catch(() => undefined)));
  await Promise.all(replicas.map((r) => r.kill()));
  await svix.close();
  await cluster?.dispose();
  await single?.dispose();
  await rm(dir, { recursive: true, force: true });
}
process.exit(exitCode);

function fmtS(ms: number): string {
  return `${(ms / 1000).toFixed(0)} s`;
}

/** mulberry32: a small, well-mixed 32-bit PRNG; the same seed gives the same sequence everywhere. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * The whole run's faults, decided up front from the seed (times from the start): Svix changes to
 * a random condition every 15–45 s (an outage lasts 5–20 s); a nats-server is SIGKILLed 20–40 s
 * in and then every 30–90 s after it came back, down 3–10 s each time. The Svix phases and the
 * kills draw from separate streams, so a longer run keeps a shorter one's schedule as its start.
 */
function faultSchedule(seed: number, totalMs: number): FaultSchedule {
  const route = "v1.message.create";
  const conditions: Array<{ name: string; rules: FaultRuleInput[] }> = [
    { name: "healthy", rules: [] },
    {
      name: "30 % 500/503",
      rules: [
        { route, kind: "500", fraction: 0.15 },
        { route, kind: "503", fraction: 0.18 },
      ],
    },
    { name: "20 % 429", rules: [{ route, kind: "429", fraction: 0.2, retryAfterSeconds: 1 }] },
    { name: "10 % 3 s latency", rules: [{ route, kind: "latency", latencyMs: 3_000, fraction: 0.1 }] },
    { name: "5 % resets", rules: [{ route, kind: "reset", fraction: 0.05 }] },
    { name: "outage (all 503)", rules: [{ route, kind: "503" }] },
  ];
  const roles: KillRole[] = ["relay consumer leader", "JOBS leader", "another node"];
  const svixRandom = seededRandom(seed);
  const natsRandom = seededRandom(seed ^ 0x5bd1e995);
  const between = (r: () => number, lo: number, hi: number) => Math.round(lo + r() * (hi - lo));

  const svix: FaultSchedule["svix"] = [];
  for (let at = 0; at < totalMs; ) {
    const c = conditions[Math.floor(svixRandom() * conditions.length)] as (typeof conditions)[number];
    const lastsMs = c.name.startsWith("outage")
      ? between(svixRandom, 5_000, 20_000)
      : between(svixRandom, 15_000, 45_000);
    svix.push({ atMs: at, lastsMs, ...c });
    at += lastsMs;
  }
  const kills: FaultSchedule["kills"] = [];
  for (let at = between(natsRandom, 20_000, 40_000); at < totalMs; ) {
    const downMs = between(natsRandom, 3_000, 10_000);
    const role = roles[Math.floor(natsRandom() * roles.length)] as KillRole;
    kills.push({ atMs: at, downMs, role, pick: Math.floor(natsRandom() * 3) });
    at += downMs + between(natsRandom, 30_000, 90_000);
  }
  return { svix, kills };
}
