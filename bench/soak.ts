import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { type NatsServer, startNatsCluster, startNatsServer } from "../src/local/nats-server.js";
import { type FaultRuleInput, startSvixStandIn } from "../src/local/svix-stand-in/index.js";
import { type ServiceProcess, spawnService } from "../test/support/spawn-service.js";
import {
  checkDelivery,
  endToEndLatencies,
  metricValue,
  percentile,
  rssMb,
  startSteadyLoad,
} from "../test/support/steady-load.js";

/**
 * `npm run soak [-- --minutes N --rate R --replicas N --single]`: jobhooks replicas (the compiled
 * build) on a 3-node NATS cluster (R3; `--single` for one nats-server) under steady load over NATS
 * and PublishJobEvent, while Svix fails at random (5xx, 429, slow answers, resets, short outages)
 * and a random nats-server is SIGKILLed and restarted every minute or so. Bounded: it stops after
 * `--minutes` (SOAK_MINUTES, default 10), drains, and prints lost and duplicated events (both must
 * be 0; the exit code says so), RSS per minute and publish→Svix latency. Loopback only; not in CI.
 */

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string", default: process.env.SOAK_MINUTES ?? "10" },
    rate: { type: "string", default: process.env.SOAK_RATE ?? "200" },
    replicas: { type: "string", default: "2" },
    single: { type: "boolean", default: false },
  },
});
const MINUTES = Number(args.minutes);
const RATE = Number(args.rate);
const REPLICAS = Number(args.replicas);
if (!(MINUTES > 0 && MINUTES <= 24 * 60 && RATE > 0 && REPLICAS >= 1 && REPLICAS <= 8)) {
  console.error(
    "usage: npm run soak -- [--minutes 1..1440] [--rate EVENTS_PER_S] [--replicas 1..8] [--single]",
  );
  process.exit(2);
}
if (!existsSync("dist/cli.js")) {
  console.error("run `npm run build` first: the soak runs the compiled service");
  process.exit(2);
}

const TOKEN = "svc_soak_token_0123456789abcdef_0123";
const TENANT = "soak";
const rand = (lo: number, hi: number) => lo + Math.random() * (hi - lo);
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

  // Svix: every 15–45 s a new random condition, sometimes a short total outage.
  const svixFaults = (async () => {
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
    while (!done()) {
      const c = conditions[Math.floor(Math.random() * conditions.length)] as (typeof conditions)[number];
      svix.faults.clear();
      for (const r of c.rules) svix.faults.inject(r);
      const lasts = c.name.startsWith("outage") ? rand(5_000, 20_000) : rand(15_000, 45_000);
      faultLog.push(`svix ${c.name} ${Math.round(lasts / 1000)} s`);
      await sleepUntil(Date.now() + lasts, done);
    }
    svix.faults.clear();
  })();

  // NATS: every 30–90 s SIGKILL a random node, restart it 3–10 s later.
  const natsFaults = (async () => {
    await sleepUntil(Date.now() + rand(20_000, 40_000), done);
    while (!done()) {
      const node = nodes[Math.floor(Math.random() * nodes.length)] as NatsServer;
      const down = rand(3_000, 10_000);
      faultLog.push(`nats kill ${node.name.split("-").at(-1)} for ${Math.round(down / 1000)} s`);
      log(`fault: SIGKILL ${node.name}, down ${Math.round(down / 1000)} s`);
      await node.kill();
      await new Promise((r) => setTimeout(r, down));
      await node.restart();
      await sleepUntil(Date.now() + rand(30_000, 90_000), done);
    }
  })();

  // One row a minute.
  const rows: Array<Record<string, string | number>> = [];
  for (let minute = 1; minute <= MINUTES; minute++) {
    await sleepUntil(started + minute * 60_000, () => false);
    const rss = await Promise.all(replicas.map((r) => rssMb(r.child.pid)));
    rows.push({
      minute,
      accepted: load.acceptedCount,
      "at Svix": svix.state.messages(TENANT).length,
      backlog: (await metricValue(replicas[0]?.url ?? "", "jobhooks_relay_consumer_pending")) ?? "-",
      "RSS MB per replica": rss.map((mb) => (mb === undefined ? "-" : mb.toFixed(0))).join(" / "),
      faults: faultLog.splice(0).join("; "),
    });
    log(JSON.stringify(rows.at(-1)));
  }
  await Promise.all([svixFaults, natsFaults]);
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
    `\nsoak: ${MINUTES} min at ${RATE} events/s, ${REPLICAS} replicas, ${cluster ? "3-node cluster R3" : "single nats-server"}`,
  );
  console.table(rows);
  console.table([
    {
      accepted: report.accepted.length,
      "gave up": report.failed.length,
      lost: check.lost.length,
      duplicated: check.duplicated,
      "out of order jobs": check.outOfOrder.length,
      "p50 publish→Svix ms": percentile(latencies, 50),
      "p99 publish→Svix ms": percentile(latencies, 99),
      "max publish→Svix ms": latencies.at(-1) ?? 0,
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
  await Promise.all(replicas.map((r) => r.kill()));
  await svix.close();
  await cluster?.dispose();
  await single?.dispose();
  await rm(dir, { recursive: true, force: true });
}
process.exit(exitCode);
