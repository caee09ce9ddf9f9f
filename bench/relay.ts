import { existsSync } from "node:fs";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import pino from "pino";
import { startNatsServer } from "../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../src/local/svix-stand-in/index.js";
import { provisionJetStream } from "../src/nats/provision.js";
import { sleep } from "../src/resilience/clock.js";
import { BASELINE_PREFIX, provisionBaseline } from "./baseline-relay.js";
import { describeFailing, failingJob, ISOLATION, isolated } from "./relay-isolation.js";
import { type Measured, startBaseline, startRelays, stop } from "./relay-processes.js";

/**
 * `npm run bench -- relay`: the relay beside an unordered bare loop (consume + POST + ack, same
 * in-flight budget, no ordering, decoding or circuit), in one run, on this machine, loopback only:
 *
 *   zero-latency backlog     Svix answers at once
 *   realistic-Svix backlog   40 ms a call, 5 % of calls 1 s, 5 % answered 503; jobs × 3 statuses;
 *                            the relay's per-job order is checked
 *   steady 1,000 ev/s        publish→Svix latency, Svix answers at once
 *   scale-out                Svix at 40 ms, 32 calls in flight per replica: 1 vs 3 relay replicas
 *   big backlog              the relay's peak RSS while draining it
 *   one failing job          2,000 jobs' steady stream, Svix at 40 ms; one job failing for 20 s:
 *                            the others' p99 beside the fault-free p99 of the same run
 *
 * Sizes are small enough for a few minutes on 2 shared cores; BENCH_SCALE multiplies them (4 gives
 * the 200,000-event backlog). BENCH_CONCURRENCY sets the budget of the backlog and steady
 * scenarios (default 64, the service's default).
 */

const scale = Number(process.env.BENCH_SCALE ?? 1);
const BUDGET = Number(process.env.BENCH_CONCURRENCY ?? 64);
/** Backlogs spread over this many jobs, each job's events in sequence (as the issue measured). */
const BACKLOG_JOBS = 500;
const BACKLOG = Math.round(20_000 * scale);
const REALISTIC_JOBS = Math.round(3_000 * scale);
const STEADY_SECONDS = Math.max(5, Math.round(10 * scale));
const SCALE_JOBS = Math.round(2_000 * scale);
const BIG_BACKLOG = Math.round(50_000 * scale);
const STEADY_JOBS = 500;
const STATUSES = ["created", "processing", "completed"] as const;
/** Scenario 6: the other jobs' stream, and the phases (seconds: warm-up, fault-free, one job failing). */
const ISOLATION_RATE = Math.round(500 * scale);
const ISOLATION_PHASES = [5, 20, 20] as const;
/** BENCH_ONLY=1,4 runs only those scenarios (numbered as above, from 1). */
const ONLY = new Set((process.env.BENCH_ONLY ?? "1,2,3,4,5,6").split(",").map((x) => Number(x.trim())));

interface Result {
  events: number;
  perSecond: number;
  p50: number;
  p99: number;
  rssMb: number;
  /** CPU the consumer processes used per event delivered (the bench's own process not counted). */
  cpuMsPerEvent: number;
  outOfOrderJobs: number;
}

interface Row {
  scenario: string;
  "bare loop": string;
  "jobhooks relay": string;
  ratio: string;
  goal: string;
}

async function main(): Promise<void> {
  if (!existsSync("dist/cli.js"))
    throw new Error("run `npm run build` first: the bench measures the compiled service");
  const nats = await startNatsServer();
  const total =
    2 * BACKLOG +
    2 * REALISTIC_JOBS * 3 +
    2 * STEADY_SECONDS * 1_000 +
    3 * SCALE_JOBS * 3 +
    BIG_BACKLOG +
    (ISOLATION_RATE + 10) * (ISOLATION_PHASES[0] + ISOLATION_PHASES[1] + ISOLATION_PHASES[2]);
  const svix = await startSvixStandIn({ deliver: false, requestLogSize: 0, maxMessages: total + 10_000 });
  const nc = await connect({ servers: nats.url });
  const quiet = pino({ level: "silent" });
  await provisionJetStream(
    await jetstreamManager(nc),
    { subjectPrefix: "jobs", replicas: 1, duplicateWindowMs: 120_000 },
    quiet,
  );
  await provisionBaseline(nats.url);
  const env = { NATS_URL: nats.url, SVIX_TOKEN: svix.token, SVIX_SERVER_URL: svix.url };
  const rows: Row[] = [];
  const row = (scenario: string, bare: string, relay: string, ratio: string, goal: string) => {
    rows.push({ scenario, "bare loop": bare, "jobhooks relay": relay, ratio, goal });
    console.log(`  ${scenario}: bare ${bare} | relay ${relay} | ${ratio} (goal ${goal})`);
  };
  const rate = (r: Result) =>
    `${r.perSecond.toLocaleString("en-US")} ev/s, ${r.cpuMsPerEvent.toFixed(3)} ms CPU/ev`;
  try {
    console.log(
      `jobhooks relay vs unordered bare loop — scale ${scale}, loopback, ${new Date().toISOString()}`,
    );

    // 1. Zero-latency backlog.
    if (ONLY.has(1)) {
      const perJob = Math.round(BACKLOG / BACKLOG_JOBS);
      const relay = await backlog(nc, svix, "jobs", "zero-relay", BACKLOG_JOBS, perJob, () =>
        startRelays(env, 1, BUDGET),
      );
      const bare = await backlog(nc, svix, BASELINE_PREFIX, "zero-bare", BACKLOG_JOBS, perJob, () =>
        startBaseline(nats.url, svix, BUDGET),
      );
      row(
        `${BACKLOG.toLocaleString("en-US")}-event backlog, Svix answers at once (${BUDGET} in flight)`,
        rate(bare),
        `${rate(relay)}, ${relay.outOfOrderJobs} jobs out of order`,
        ratio(relay.perSecond, bare.perSecond),
        "≥ 1.0",
      );
    }

    // 2. Realistic Svix: 40 ms, 5 % 1 s, 5 % 503.
    if (ONLY.has(2)) {
      realisticSvix(svix);
      const relay = await backlog(nc, svix, "jobs", "real-relay", REALISTIC_JOBS, 3, () =>
        startRelays(env, 1, BUDGET),
      );
      const bare = await backlog(nc, svix, BASELINE_PREFIX, "real-bare", REALISTIC_JOBS, 3, () =>
        startBaseline(nats.url, svix, BUDGET),
      );
      svix.faults.clear();
      row(
        `realistic Svix, ${REALISTIC_JOBS.toLocaleString("en-US")} jobs × 3 statuses (${BUDGET} in flight)`,
        rate(bare),
        `${rate(relay)}, ${relay.outOfOrderJobs} jobs out of order`,
        ratio(relay.perSecond, bare.perSecond),
        "≥ 0.8",
      );
    }

    // 3. Steady 1,000 ev/s.
    if (ONLY.has(3)) {
      const relay = await steady(nc, svix, "jobs", "steady-relay", () => startRelays(env, 1, BUDGET));
      const bare = await steady(nc, svix, BASELINE_PREFIX, "steady-bare", () =>
        startBaseline(nats.url, svix, BUDGET),
      );
      row(
        "steady 1,000 ev/s, Svix answers at once: p50 / p99",
        `${bare.p50} / ${bare.p99} ms`,
        `${relay.p50} / ${relay.p99} ms`,
        `p99 ${ratio(relay.p99, bare.p99)}`,
        "relay p99 ≤ 25 ms",
      );
    }

    // 4. Scale-out at 40 ms and 32 in flight per replica.
    if (ONLY.has(4)) {
      svix.faults.inject({ route: "v1.message.create", kind: "latency", latencyMs: 40, fraction: 1 });
      const one = await backlog(
        nc,
        svix,
        "jobs",
        "scale-1",
        SCALE_JOBS,
        3,
        () => startRelays(env, 1, 32),
        true,
      );
      const three = await backlog(
        nc,
        svix,
        "jobs",
        "scale-3",
        SCALE_JOBS,
        3,
        () => startRelays(env, 3, 32),
        true,
      );
      const bare = await backlog(
        nc,
        svix,
        BASELINE_PREFIX,
        "scale-bare",
        SCALE_JOBS,
        3,
        () => startBaseline(nats.url, svix, 32),
        true,
      );
      svix.faults.clear();
      row(
        `scale-out, Svix at 40 ms, ${SCALE_JOBS.toLocaleString("en-US")} jobs × 3, 32 in flight per replica`,
        `${rate(bare)} (1 process)`,
        `1 replica ${rate(one)}, 3 replicas ${rate(three)}; ${one.outOfOrderJobs + three.outOfOrderJobs} out of order`,
        `3 vs 1: ${ratio(three.perSecond, one.perSecond)}`,
        "≥ 2.5",
      );
    }

    // 5. Peak RSS while draining a big backlog.
    if (ONLY.has(5)) {
      const relay = await backlog(
        nc,
        svix,
        "jobs",
        "big",
        BACKLOG_JOBS,
        Math.round(BIG_BACKLOG / BACKLOG_JOBS),
        () => startRelays(env, 1, BUDGET),
      );
      row(
        `${BIG_BACKLOG.toLocaleString("en-US")}-event backlog: peak RSS`,
        "—",
        `${relay.rssMb} MB (${rate(relay)})`,
        "—",
        "≤ 200 MB at 200,000",
      );
    }

    // 6. One job failing for 20 s among 2,000 others.
    if (ONLY.has(6)) {
      const [warmUpSeconds, calmSeconds, faultSeconds] = ISOLATION_PHASES;
      const options = {
        ...ISOLATION,
        ratePerSecond: ISOLATION_RATE,
        warmUpSeconds,
        calmSeconds,
        faultSeconds,
      };
      const r = await failingJob(nc, svix, () => startRelays(env, 1, BUDGET), options);
      console.log(`    ${describeFailing(r)}`);
      row(
        `one job failing ${faultSeconds} s among 2,000 (${ISOLATION_RATE} ev/s, Svix 40 ms): others' p50 / p99`,
        "—",
        `fault-free ${r.calm.p50} / ${r.calm.p99} ms, one failing ${r.faulted.p50} / ${r.faulted.p99} ms; ` +
          `failing job after the fault, in order, once: ${isolated(r) ? "yes" : "NO"}`,
        `p99 ${ratio(r.faulted.p99, r.calm.p99)}`,
        "≤ 2×",
      );
    }
  } finally {
    await nc.close();
    await svix.close();
    await nats.dispose();
  }
  console.log();
  console.table(rows);
}

function ratio(a: number, b: number): string {
  return b > 0 ? `${(a / b).toFixed(2)}×` : "—";
}

/** Rules are consulted in order: 5 % slow, then 5 % of the rest 503, the rest at 40 ms. */
function realisticSvix(svix: SvixStandIn): void {
  const route = "v1.message.create";
  svix.faults.inject({ route, kind: "latency", latencyMs: 1_000, fraction: 0.05 });
  svix.faults.inject({ route, kind: "503", fraction: 0.05 / 0.95 });
  svix.faults.inject({ route, kind: "latency", latencyMs: 40, fraction: 1 });
}

/**
 * Publishes `jobs` × `perJob` events of `tenant` (statuses in order within each job, jobs in
 * parallel, as real publishers do), then starts the consumer(s) and waits until Svix has them all.
 */
async function backlog(
  nc: NatsConnection,
  svix: SvixStandIn,
  prefix: string,
  tenant: string,
  jobs: number,
  perJob: number,
  start: () => Promise<Measured>,
  startFirst = false,
): Promise<Result> {
  // A backlog is published before its consumer starts; replicas, which start one by one, are
  // started first instead, so the first one up does not drain the backlog alone.
  if (!startFirst) await publishJobs(nc, prefix, tenant, jobs, perJob);
  const m = await start();
  const cpuBefore = m.cpuSeconds();
  if (startFirst) await publishJobs(nc, prefix, tenant, jobs, perJob);
  try {
    await untilDelivered(svix, tenant, jobs * perJob, 20 * 60_000);
    return summarize(svix, tenant, m, perJob, m.cpuSeconds() - cpuBefore);
  } finally {
    await stop(m);
  }
}

async function publishJobs(
  nc: NatsConnection,
  prefix: string,
  tenant: string,
  jobs: number,
  perJob: number,
): Promise<void> {
  const js = jetstream(nc);
  const h = natsHeaders();
  h.set("Content-Type", "application/json");
  let next = 0;
  const worker = async () => {
    for (let j = next++; j < jobs; j = next++) {
      for (let s = 0; s < perJob; s++) {
        const status = perJob === 3 ? (STATUSES[s] as string) : "processing";
        const body = JSON.stringify({ sequence: String(s + 1), metadata: { t: String(Date.now()) } });
        await js.publish(`${prefix}.${tenant}.job-${j}.${status}`, body, { headers: h, timeout: 30_000 });
      }
    }
  };
  await Promise.all(Array.from({ length: 256 }, worker));
}

/** Publishes 1,000 events/s for STEADY_SECONDS to a running consumer; latency publish→Svix. */
async function steady(
  nc: NatsConnection,
  svix: SvixStandIn,
  prefix: string,
  tenant: string,
  start: () => Promise<Measured>,
): Promise<Result> {
  const m = await start();
  const cpuBefore = m.cpuSeconds();
  try {
    const js = jetstream(nc);
    const h = natsHeaders();
    h.set("Content-Type", "application/json");
    const total = STEADY_SECONDS * 1_000;
    const began = Date.now();
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < total; i++) {
      // 10 events every 10 ms: 1,000/s without a burst that would look like a backlog.
      const wait = began + Math.floor(i / 10) * 10 - Date.now();
      if (wait > 0) await sleep(wait);
      const body = JSON.stringify({
        sequence: String(Math.floor(i / STEADY_JOBS) + 1),
        metadata: { t: String(Date.now()) },
      });
      pending.push(js.publish(`${prefix}.${tenant}.job-${i % STEADY_JOBS}.processing`, body, { headers: h }));
    }
    await Promise.all(pending);
    await untilDelivered(svix, tenant, total, 120_000);
    return summarize(svix, tenant, m, 0, m.cpuSeconds() - cpuBefore);
  } finally {
    await stop(m);
  }
}

async function untilDelivered(svix: SvixStandIn, tenant: string, count: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (svix.state.messages(tenant).length < count) {
    if (Date.now() > deadline)
      throw new Error(`${tenant}: only ${svix.state.messages(tenant).length}/${count}`);
    await sleep(500);
  }
}

function summarize(
  svix: SvixStandIn,
  tenant: string,
  m: Measured,
  perJob: number,
  cpuSeconds: number,
): Result {
  const messages = svix.state.messages(tenant);
  const arrivals = messages.map((msg) => Date.parse(msg.timestamp));
  const latencies = messages
    .map((msg, i) => {
      const data = msg.payload.data as { metadata?: { t?: string } };
      return (arrivals[i] as number) - Number(data.metadata?.t ?? Number.NaN);
    })
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  // Per job, the sequences in arrival order must be 1, 2, 3, … (unordered loops are not judged).
  let outOfOrderJobs = 0;
  if (perJob > 1) {
    const byJob = new Map<string, number[]>();
    for (const msg of messages) {
      const d = msg.payload.data as { job_id?: string; sequence?: number };
      const job = d.job_id ?? "";
      const seqs = byJob.get(job) ?? [];
      seqs.push(Number(d.sequence));
      byJob.set(job, seqs);
    }
    for (const seqs of byJob.values()) if (seqs.some((s, i) => s !== i + 1)) outOfOrderJobs++;
  }
  // Not Math.min(...arrivals): spreading 200,000 arguments overflows the stack.
  const first = arrivals.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
  const last = arrivals.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
  return {
    events: messages.length,
    perSecond: Math.round((messages.length - 1) / Math.max(0.001, (last - first) / 1_000)),
    p50: pct(50),
    p99: pct(99),
    rssMb: m.peakRssMb(),
    cpuMsPerEvent: (cpuSeconds * 1_000) / Math.max(1, messages.length),
    outOfOrderJobs,
  };
}

await main();
