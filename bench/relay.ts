import { existsSync } from "node:fs";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pino from "pino";
import { startNatsServer } from "../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../src/local/svix-stand-in/index.js";
import { provisionJetStream } from "../src/nats/provision.js";
import { BASELINE_PREFIX, provisionBaseline } from "./baseline-relay.js";
import { describeFailing, failingJob, ISOLATION, isolated } from "./relay-isolation.js";
import { backlog, type Result, steady } from "./relay-measure.js";
import { type Measured, startBaseline, startRelays } from "./relay-processes.js";

/**
 * `npm run bench -- relay`: the relay beside an unordered bare loop (consume + POST + ack, same
 * in-flight budget, no ordering, decoding or circuit), in one run, on this machine, loopback only:
 *
 *   zero-latency backlog     Svix answers at once
 *   realistic-Svix backlog   40 ms a call, 5 % of calls 1 s, 5 % answered 503; jobs × 3 statuses;
 *                            the relay's per-job order is checked
 *   steady 1,000 ev/s        publish→Svix latency, Svix answers at once
 *   scale-out                Svix at 40 ms, 16 calls in flight per replica (the setting): 1 vs 3 relay replicas;
 *                            again at 200 ms, where 3 replicas need little of this machine
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
/** Svix calls in flight per replica in the scale-out scenario (the goal is stated at 16). */
const SCALE_IN_FLIGHT = Number(process.env.BENCH_SCALE_IN_FLIGHT ?? 16);
const BIG_BACKLOG = Math.round(50_000 * scale);
/** Scenario 6: the other jobs' stream, and the phases (seconds: warm-up, fault-free, one job failing). */
const ISOLATION_RATE = Math.round(500 * scale);
const ISOLATION_PHASES = [5, 20, 20] as const;
/** BENCH_ONLY=1,4 runs only those scenarios (numbered as above, from 1). */
const ONLY = new Set((process.env.BENCH_ONLY ?? "1,2,3,4,5,6").split(",").map((x) => Number(x.trim())));

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
    3 * SCALE_JOBS * 3 * 1.5 +
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
      const relay = await steady(nc, svix, "jobs", "steady-relay", STEADY_SECONDS, () =>
        startRelays(env, 1, BUDGET),
      );
      const bare = await steady(nc, svix, BASELINE_PREFIX, "steady-bare", STEADY_SECONDS, () =>
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

    // 4. Scale-out, 16 in flight per replica (the setting the goal names): at 40 ms (the goal), and at 200 ms, where the
    // replicas need a fraction of this machine's CPU and show what the design itself scales to.
    if (ONLY.has(4)) {
      for (const [latencyMs, jobs] of [
        [40, SCALE_JOBS],
        [200, Math.round(SCALE_JOBS / 2)],
      ] as const) {
        svix.faults.inject({ route: "v1.message.create", kind: "latency", latencyMs, fraction: 1 });
        const run = (prefix: string, tenant: string, start: () => Promise<Measured>) =>
          backlog(nc, svix, prefix, `${tenant}-${latencyMs}`, jobs, 3, start, true);
        const one = await run("jobs", "scale-1", () => startRelays(env, 1, SCALE_IN_FLIGHT));
        const three = await run("jobs", "scale-3", () => startRelays(env, 3, SCALE_IN_FLIGHT));
        const bare = await run(BASELINE_PREFIX, "scale-bare", () =>
          startBaseline(nats.url, svix, SCALE_IN_FLIGHT),
        );
        svix.faults.clear();
        const busy = (r: Result) =>
          `machine ${Math.round(r.machineBusy * 100)} % busy, stand-in + publisher ${Math.round(r.benchBusy * 100)} % of a core`;
        row(
          `scale-out, Svix at ${latencyMs} ms, ${jobs.toLocaleString("en-US")} jobs × 3, ${SCALE_IN_FLIGHT} in flight per replica`,
          `${rate(bare)} (1 process)`,
          `1 replica ${rate(one)} (${busy(one)}), 3 replicas ${rate(three)} (${busy(three)}); ` +
            `${one.outOfOrderJobs + three.outOfOrderJobs} out of order`,
          `3 vs 1: ${ratio(three.perSecond, one.perSecond)}`,
          latencyMs === 40 ? "≥ 2.5" : "— (ideal 3.0)",
        );
      }
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

await main();
