import { execSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import pino from "pino";
import { startNatsServer } from "../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../src/local/svix-stand-in/index.js";
import { provisionJetStream } from "../src/nats/provision.js";
import { sleep } from "../src/resilience/clock.js";
import { endToEndLatencies, percentile } from "../test/support/steady-load.js";
import { publishBurst } from "./burst-publisher.js";
import { startRelays, stop } from "./relay-processes.js";

/**
 * `npm run bench -- fairness` (issue 19): does one tenant's burst hold up the others? One relay
 * replica (default budget), Svix answering in 40 ms, 50 small tenants publishing 10 events a
 * second in all; their publish→Svix latency over all their events:
 *
 *   alone                 the small tenants only
 *   burst 30k / 200k      beside one tenant dropping that many events at once (a bulk import)
 *   800/s limit           the same 30k burst while Svix allows 800 calls a second (429 + Retry-After)
 *   failing tenant        beside a tenant publishing 100 ev/s whose every call Svix answers 500
 *   burst drain           the burst's own rate, alone and beside the small tenants
 *   peak RSS              of the relay, with the image's heap flags (and the 200k burst without)
 *
 * Each scenario runs against this branch's relay and, side by side in the same run, against the
 * relay of BENCH_BASELINE_REF (default bdcd10e, the relay before this work; "none" skips it),
 * extracted with `git archive` into .cache/ and compiled there. Fresh nats-server and Svix
 * stand-in per scenario. BENCH_BURSTS (default "30000,200000") sets the burst sizes; on 2 shared
 * cores the 200,000 case takes a few minutes per relay. BENCH_ONLY=2,3 runs only those scenarios;
 * BENCH_DEBUG=1 prints the six most delayed small-tenant events and slow trickle publishes;
 * BENCH_BURST_RATE=5000 publishes the bursts at that rate instead of as fast as JetStream takes them.
 */

const SMALL_TENANTS = 50;
const TRICKLE_PER_SECOND = 10;
const SVIX_LATENCY_MS = 40;
const BURST_TENANT = "bulk";
const BURST_JOBS = 500;
const BURSTS = (process.env.BENCH_BURSTS ?? "30000,200000")
  .split(",")
  .map(Number)
  .filter((n) => n > 0);
const BASELINE_REF = process.env.BENCH_BASELINE_REF ?? "bdcd10e";
/** BENCH_BURST_RATE publishes the burst at that many events a second instead of as fast as
 * JetStream takes them: a setting where the import does not saturate a small machine. */
const BURST_RATE = process.env.BENCH_BURST_RATE ? Number(process.env.BENCH_BURST_RATE) : undefined;
const ALONE_SECONDS = 15;
const FAILING_SECONDS = 20;
const FAILING_PER_SECOND = 100;
const RATE_LIMIT = 800;
/** BENCH_ONLY=1,3 runs only those scenarios (numbered from 1 as printed). */
const ONLY = process.env.BENCH_ONLY?.split(",").map((x) => Number(x.trim()));
const IMAGE_NODE_ARGS = process.env.BENCH_NODE_ARGS ?? "--max-semi-space-size=16 --max-old-space-size=192";

interface Scenario {
  name: string;
  burst?: number;
  rateLimit?: number;
  failing?: boolean;
  trickle: boolean;
  nodeArgs?: string;
}

interface Outcome {
  small?: { events: number; p50: number; p99: number };
  burstPerSecond?: number;
  /** The relay process's CPU per event it delivered. */
  cpuMsPerEvent: number;
  rssMb: number;
  seconds: number;
}

/** The relay of `ref`, compiled, in .cache/; its dist/cli.js. */
function baselineCli(ref: string): string {
  const dir = path.resolve(".cache", `bench-relay-${ref}`);
  const cli = path.join(dir, "dist", "cli.js");
  if (existsSync(cli)) return cli;
  mkdirSync(dir, { recursive: true });
  execSync(`git archive ${ref} | tar -x -C ${JSON.stringify(dir)}`, { stdio: "inherit" });
  // Its own dependencies, as its lockfile pins them (this tree's may have dropped one it used).
  const node = path.dirname(process.execPath);
  const env = { ...process.env, PATH: `${node}${path.delimiter}${process.env.PATH ?? ""}` };
  execSync("npm ci --ignore-scripts --no-audit --no-fund --engine-strict=false", {
    cwd: dir,
    stdio: "inherit",
    env,
  });
  execSync("npx tsc -p tsconfig.build.json", { cwd: dir, stdio: "inherit", env });
  return cli;
}

/** 10 events a second round-robin over the small tenants (two jobs each, in sequence) until `stop`. */
function startTrickle(nc: NatsConnection): { readonly accepted: number; stop(): Promise<void> } {
  const js = jetstream(nc);
  const h = natsHeaders();
  h.set("Content-Type", "application/json");
  let stopped = false;
  let accepted = 0;
  const pending: Promise<unknown>[] = [];
  const loop = (async () => {
    const began = Date.now();
    for (let i = 0; !stopped && i < 100_000; i++) {
      const wait = began + (i * 1_000) / TRICKLE_PER_SECOND - Date.now();
      if (wait > 0) await sleep(wait);
      const tenant = `small-${i % SMALL_TENANTS}`;
      const round = Math.floor(i / SMALL_TENANTS);
      const sentAt = Date.now();
      const body = JSON.stringify({
        sequence: String(Math.floor(round / 2) + 1),
        metadata: { t: String(sentAt) },
      });
      pending.push(
        js
          .publish(`jobs.${tenant}.job-${round % 2}.processing`, body, { headers: h, timeout: 30_000 })
          .then(() => {
            accepted++;
            const took = Date.now() - sentAt;
            if (process.env.BENCH_DEBUG && took > 200)
              console.log(`trickle publish ${tenant} took ${took} ms`);
          }),
      );
    }
  })();
  return {
    get accepted() {
      return accepted;
    },
    async stop() {
      stopped = true;
      await loop;
      await Promise.all(pending);
    },
  };
}

async function runScenario(s: Scenario, cli: string): Promise<Outcome> {
  const nats = await startNatsServer();
  const expected = (s.burst ?? 0) + 100_000;
  const svix = await startSvixStandIn({ deliver: false, requestLogSize: 0, maxMessages: expected });
  const nc = await connect({ servers: nats.url });
  const began = Date.now();
  try {
    await provisionJetStream(
      await jetstreamManager(nc),
      { subjectPrefix: "jobs", replicas: 1, duplicateWindowMs: 120_000 },
      pino({ level: "silent" }),
    );
    // The first matching rule answers (rate limits aside): the failing tenant's rule goes first.
    if (s.failing) svix.faults.inject({ route: "POST /api/v1/app/failing/msg", kind: "500" });
    svix.faults.inject({ route: "v1.message.create", kind: "latency", latencyMs: SVIX_LATENCY_MS });
    if (s.rateLimit)
      svix.faults.inject({ route: "v1.message.create", kind: "rate-limit", ratePerSecond: s.rateLimit });
    const relay = await startRelays(
      { NATS_URL: nats.url, SVIX_TOKEN: svix.token, SVIX_SERVER_URL: svix.url },
      1,
      64,
      { cli, nodeArgs: s.nodeArgs ?? IMAGE_NODE_ARGS },
    );
    try {
      const trickle = s.trickle ? startTrickle(nc) : undefined;
      await sleep(2_000);
      if (s.failing) {
        await publishBurst({
          natsUrl: nats.url,
          tenant: "failing",
          n: FAILING_PER_SECOND * FAILING_SECONDS,
          jobs: BURST_JOBS,
          perSecond: FAILING_PER_SECOND,
        });
      } else if (s.burst) {
        const publishing = Date.now();
        await publishBurst({
          natsUrl: nats.url,
          tenant: BURST_TENANT,
          n: s.burst,
          jobs: BURST_JOBS,
          perSecond: BURST_RATE,
        });
        if (process.env.BENCH_DEBUG) console.log(`burst published in ${Date.now() - publishing} ms`);
        await untilBurstDone(svix, s.burst, () => trickle?.accepted ?? 0, 30 * 60_000);
      } else {
        await sleep(ALONE_SECONDS * 1_000);
      }
      await sleep(2_000);
      await trickle?.stop();
      if (s.trickle) await untilQuiet(svix, 60_000);
      return {
        small: s.trickle ? smallLatency(svix) : undefined,
        burstPerSecond: s.burst ? drainRate(svix, BURST_TENANT) : undefined,
        rssMb: relay.peakRssMb(),
        cpuMsPerEvent: (relay.cpuSeconds() * 1_000) / Math.max(1, created(svix)),
        seconds: Math.round((Date.now() - began) / 1_000),
      };
    } finally {
      await stop(relay);
    }
  } finally {
    await nc.close();
    await svix.close();
    await nats.dispose();
  }
}

/**
 * Messages created so far, all tenants: a counter. Listing a tenant's messages scans every stored
 * one, in the process that also answers as Svix: polled during a run it would show in the latencies.
 */
const created = (svix: SvixStandIn) => svix.state.stats().messagesCreated;

/** Until Svix has the whole burst (every message created beyond the small tenants' is the burst's). */
async function untilBurstDone(
  svix: SvixStandIn,
  n: number,
  trickled: () => number,
  ms: number,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (created(svix) - trickled() < n) {
    if (Date.now() > deadline)
      throw new Error(`${n - (created(svix) - trickled())} burst events never reached Svix`);
    await sleep(1_000);
  }
}

/** Until Svix has created nothing new for two seconds (the publishers have stopped). */
async function untilQuiet(svix: SvixStandIn, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (let last = -1; created(svix) !== last && Date.now() < deadline; ) {
    last = created(svix);
    await sleep(2_000);
  }
}

const smallTenants = () => Array.from({ length: SMALL_TENANTS }, (_, i) => `small-${i}`);

function smallLatency(svix: SvixStandIn): { events: number; p50: number; p99: number } {
  const all = smallTenants()
    .flatMap((t) => endToEndLatencies(svix, t))
    .sort((a, b) => a - b);
  if (process.env.BENCH_DEBUG) {
    const worst = smallTenants().flatMap((t) =>
      svix.state.messages(t).map((m) => {
        const sent = Number((m.payload.data as { metadata: { t: string } }).metadata.t);
        return { t, at: sent, late: Date.parse(m.timestamp) - sent };
      }),
    );
    const first = Math.min(...worst.map((w) => w.at));
    console.log(
      worst
        .sort((a, b) => b.late - a.late)
        .slice(0, 6)
        .map((w) => `${w.t}@+${w.at - first}ms:${w.late}`)
        .join(" "),
    );
  }
  return { events: all.length, p50: percentile(all, 50), p99: percentile(all, 99) };
}

function drainRate(svix: SvixStandIn, tenant: string): number {
  const arrivals = svix.state.messages(tenant).map((m) => Date.parse(m.timestamp));
  const first = arrivals.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
  const last = arrivals.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
  return Math.round((arrivals.length - 1) / Math.max(0.001, (last - first) / 1_000));
}

const ms = (n: number) => (n >= 10_000 ? `${(n / 1_000).toFixed(1)} s` : `${n} ms`);

function describe(o: Outcome): string {
  const parts: string[] = [];
  if (o.small) parts.push(`small p50 ${ms(o.small.p50)}, p99 ${ms(o.small.p99)} (${o.small.events} ev)`);
  if (o.burstPerSecond !== undefined) parts.push(`burst ${o.burstPerSecond} ev/s`);
  parts.push(`RSS ${o.rssMb} MB`, `CPU ${o.cpuMsPerEvent.toFixed(2)} ms/ev`, `${o.seconds} s`);
  return parts.join("; ");
}

async function main(): Promise<void> {
  if (!existsSync("dist/cli.js"))
    throw new Error("run `npm run build` first: the bench measures the compiled service");
  const relays: Array<[string, string]> = [["this relay", path.resolve("dist/cli.js")]];
  if (BASELINE_REF !== "none") relays.push([`relay at ${BASELINE_REF}`, baselineCli(BASELINE_REF)]);
  const scenarios: Scenario[] = [
    { name: "small tenants alone", trickle: true },
    ...BURSTS.map((n) => ({ name: `beside a ${n.toLocaleString("en")} burst`, burst: n, trickle: true })),
    {
      name: `beside a ${(BURSTS[0] ?? 30_000).toLocaleString("en")} burst, Svix limit ${RATE_LIMIT}/s`,
      burst: BURSTS[0] ?? 30_000,
      rateLimit: RATE_LIMIT,
      trickle: true,
    },
    { name: `beside a failing tenant (${FAILING_PER_SECOND} ev/s, all 500)`, failing: true, trickle: true },
    {
      name: `the ${(BURSTS[0] ?? 30_000).toLocaleString("en")} burst alone`,
      burst: BURSTS[0] ?? 30_000,
      trickle: false,
    },
  ];
  const rows: Array<Record<string, string>> = [];
  for (const [i, s] of scenarios.entries()) {
    if (ONLY && !ONLY.includes(i + 1)) continue;
    const row: Record<string, string> = { scenario: s.name };
    for (const [label, cli] of relays) {
      const o = await runScenario(s, cli);
      row[label] = describe(o);
      console.log(`  ${s.name} — ${label}: ${row[label]}`);
    }
    rows.push(row);
  }
  const biggest = BURSTS[BURSTS.length - 1];
  if (biggest && (!ONLY || ONLY.includes(scenarios.length + 1))) {
    const s = {
      name: `beside a ${biggest.toLocaleString("en")} burst, no heap flags`,
      burst: biggest,
      trickle: true,
      nodeArgs: "",
    };
    const o = await runScenario(s, path.resolve("dist/cli.js"));
    rows.push({ scenario: s.name, "this relay": describe(o) });
    console.log(`  ${s.name} — this relay: ${describe(o)}`);
  }
  console.log(
    `\nFairness: ${SMALL_TENANTS} small tenants at ${TRICKLE_PER_SECOND} ev/s in all, Svix at ${SVIX_LATENCY_MS} ms, one replica, budget 64`,
  );
  console.table(rows);
}

await main();
