import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import pino from "pino";
import { freePort, startNatsServer } from "../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../src/local/svix-stand-in/index.js";
import { provisionJetStream } from "../src/nats/provision.js";
import { BASELINE_PREFIX, provisionBaseline } from "./baseline-relay.js";

/**
 * `npm run bench -- relay`: the relay against a bare baseline (consume + POST + ack at the same
 * concurrency), on this machine, loopback only. Prints events/s and publish→Svix latency for a
 * 50,000-event backlog and for a steady 1,000 events/s, and the relay's peak RSS while it drains a
 * 200,000-event backlog. Sizes can be scaled down with BENCH_SCALE (e.g. 0.1) for a quick look.
 */

const CONCURRENCY = 64;
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 64);
const scale = Number(process.env.BENCH_SCALE ?? 1);
const BACKLOG = Math.round(50_000 * scale);
const STEADY_SECONDS = Math.max(5, Math.round(20 * scale));
const BIG_BACKLOG = Math.round(200_000 * scale);
const JOBS = 500;

interface Row {
  scenario: string;
  implementation: string;
  events: number;
  "events/s": number;
  "p50 ms": number;
  "p99 ms": number;
  "peak RSS MB": number;
}

async function main(): Promise<void> {
  if (!existsSync("dist/cli.js"))
    throw new Error("run `npm run build` first: the bench measures the compiled service");
  const nats = await startNatsServer();
  const svix = await startSvixStandIn({
    deliver: false,
    requestLogSize: 0,
    maxMessages: BIG_BACKLOG + 2 * BACKLOG + 50_000,
  });
  const nc = await connect({ servers: nats.url });
  const quiet = pino({ level: "silent" });
  await provisionJetStream(
    await jetstreamManager(nc),
    { subjectPrefix: "jobs", replicas: 1, duplicateWindowMs: 120_000 },
    quiet,
  );
  await provisionBaseline(nats.url);
  const rows: Row[] = [];
  const env = { NATS_URL: nats.url, SVIX_TOKEN: svix.token, SVIX_SERVER_URL: svix.url };
  try {
    // Relay: backlog, then steady load on the same process.
    await publish(nc, "jobs", "backlog", BACKLOG);
    const relay = await startRelayProcess(env);
    rows.push(await drain(svix, "backlog", BACKLOG, "50k backlog", "jobhooks relay", relay));
    rows.push(await steady(nc, svix, "jobs", "steady", relay, "jobhooks relay"));
    await stop(relay);

    await publish(nc, BASELINE_PREFIX, "backlog-base", BACKLOG);
    const base = startBaseline(nats.url, svix);
    rows.push(await drain(svix, "backlog-base", BACKLOG, "50k backlog", "bare baseline", base));
    rows.push(await steady(nc, svix, BASELINE_PREFIX, "steady-base", base, "bare baseline"));
    await stop(base);

    await publish(nc, "jobs", "big", BIG_BACKLOG);
    const bigRelay = await startRelayProcess(env);
    rows.push(
      await drain(svix, "big", BIG_BACKLOG, `${BIG_BACKLOG / 1000}k backlog`, "jobhooks relay", bigRelay),
    );
    await stop(bigRelay);
  } finally {
    await nc.close();
    await svix.close();
    await nats.dispose();
  }
  const relayRate = rows[0]?.["events/s"] ?? 0;
  const baseRate = rows[2]?.["events/s"] ?? 1;
  console.log(
    `\njobhooks relay vs bare baseline — concurrency ${CONCURRENCY}, ${PARTITIONS} partitions, ${JOBS} jobs, loopback`,
  );
  console.table(rows);
  console.log(
    `relay throughput = ${((100 * relayRate) / baseRate).toFixed(0)} % of the baseline's (goal ≥ 90 %)`,
  );
}

/** Publishes `count` events for `tenant` round-robin over JOBS jobs, each job's in sequence. */
async function publish(nc: NatsConnection, prefix: string, tenant: string, count: number): Promise<void> {
  const js = jetstream(nc);
  const h = natsHeaders();
  h.set("Content-Type", "application/json");
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const job = i % JOBS;
      const seq = Math.floor(i / JOBS) + 1;
      const body = JSON.stringify({ sequence: String(seq), metadata: { t: String(Date.now()) } });
      await js.publish(`${prefix}.${tenant}.job-${job}.processing`, body, { headers: h, timeout: 30_000 });
    }
  };
  // One worker per job keeps each job's events in order; 256 at a time keeps the server busy.
  await Promise.all(Array.from({ length: 256 }, worker));
}

interface Measured {
  child: ChildProcess;
  peakRssMb(): number;
}

function sampleRss(child: ChildProcess): () => number {
  let peak = 0;
  const timer = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
      if (hwm) peak = Math.max(peak, Number(hwm[1]) / 1024);
    } catch {
      // the process is gone
    }
  }, 250);
  child.on("exit", () => clearInterval(timer));
  return () => Math.round(peak);
}

async function startRelayProcess(env: Record<string, string>): Promise<Measured> {
  const port = await freePort();
  // The compiled service, as production runs it (tsx would add its compiler to the RSS).
  // The container image's heap flags (Dockerfile NODE_OPTIONS), unless BENCH_NODE_ARGS overrides them.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? "--max-semi-space-size=4 --max-old-space-size=192").split(
    " ",
  );
  const child = spawn(process.execPath, [...nodeArgs.filter(Boolean), "dist/cli.js", "serve"], {
    env: {
      ...process.env,
      ...env,
      JOBHOOKS_ADDR: `127.0.0.1:${port}`,
      LOG_LEVEL: "warn",
      JOBHOOKS_RELAY_CONCURRENCY: String(CONCURRENCY),
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const peakRssMb = sampleRss(child);
  for (let i = 0; i < 300; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, peakRssMb };
}

function startBaseline(natsUrl: string, svix: SvixStandIn): Measured {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "bench/baseline-relay.ts", natsUrl, svix.url, svix.token, String(CONCURRENCY)],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  return { child, peakRssMb: sampleRss(child) };
}

async function stop(m: Measured): Promise<void> {
  const exited = new Promise((r) => m.child.once("exit", r));
  m.child.kill("SIGTERM");
  await exited;
}

/** Waits until Svix holds `count` messages of `tenant`; rate from first to last arrival. */
async function drain(
  svix: SvixStandIn,
  tenant: string,
  count: number,
  scenario: string,
  implementation: string,
  m: Measured,
): Promise<Row> {
  const deadline = Date.now() + 30 * 60_000;
  while (svix.state.messages(tenant).length < count && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
  }
  return summarize(svix, tenant, scenario, implementation, m);
}

/** Publishes 1,000 events/s for STEADY_SECONDS and measures publish→Svix latency. */
async function steady(
  nc: NatsConnection,
  svix: SvixStandIn,
  prefix: string,
  tenant: string,
  m: Measured,
  implementation: string,
): Promise<Row> {
  const js = jetstream(nc);
  const h = natsHeaders();
  h.set("Content-Type", "application/json");
  const total = STEADY_SECONDS * 1_000;
  const started = Date.now();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    // 10 events every 10 ms: 1,000/s without a burst that would look like a backlog.
    const due = started + Math.floor(i / 10) * 10;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const body = JSON.stringify({
      sequence: String(Math.floor(i / JOBS) + 1),
      metadata: { t: String(Date.now()) },
    });
    pending.push(js.publish(`${prefix}.${tenant}.job-${i % JOBS}.processing`, body, { headers: h }));
  }
  await Promise.all(pending);
  const deadline = Date.now() + 120_000;
  while (svix.state.messages(tenant).length < total && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 250));
  return summarize(svix, tenant, "steady 1,000/s", implementation, m);
}

function summarize(
  svix: SvixStandIn,
  tenant: string,
  scenario: string,
  implementation: string,
  m: Measured,
): Row {
  const messages = svix.state.messages(tenant);
  const arrivals = messages.map((msg) => Date.parse(msg.timestamp));
  const latencies = messages
    .map((msg, i) => {
      const data = msg.payload.data as { metadata?: { t?: string } };
      return (arrivals[i] as number) - Number(data.metadata?.t ?? Number.NaN);
    })
    .filter((x) => Number.isFinite(x))
    .sort((a, b) => a - b);
  const first = Math.min(...arrivals);
  const last = Math.max(...arrivals);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
  return {
    scenario,
    implementation,
    events: messages.length,
    "events/s": Math.round((messages.length - 1) / Math.max(0.001, (last - first) / 1_000)),
    "p50 ms": pct(50),
    "p99 ms": pct(99),
    "peak RSS MB": m.peakRssMb(),
  };
}

await main();
