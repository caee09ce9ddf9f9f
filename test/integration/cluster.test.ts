import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsCluster, type NatsServer, startNatsCluster } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { JOBS_STREAM, RELAY_CONSUMER } from "../../src/nats/provision.js";
import { waitFor } from "../support/publish.js";
import { type ServiceProcess, spawnService } from "../support/spawn-service.js";
import {
  arrivalTimes,
  checkDelivery,
  endToEndLatencies,
  type LoadReport,
  lastAcceptedAt,
  longestGapMs,
  startSteadyLoad,
} from "../support/steady-load.js";

/**
 * Failure drills on a real 3-node JetStream cluster: two jobhooks replicas (R3 stream and consumers)
 * under steady load over NATS and PublishJobEvent, while one node at a time is SIGKILLed — the
 * stream leader, a relay consumer's leader, the node a replica is connected to — and started again.
 * Nothing accepted may be lost or duplicated, and each job's events reach Svix in order. The stall
 * each fault causes is printed (2 cores, other suites running: figures, not assertions).
 */

const TOKEN = "svc_cluster_token_0123456789abcdef";
const RATE = 150;
let cluster: NatsCluster;
let svix: SvixStandIn;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: string;
const services: ServiceProcess[] = [];
const figures: Array<Record<string, string | number>> = [];

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  svix = await startSvixStandIn({ deliver: false, requestLogSize: 0 });
  dir = await mkdtemp(path.join(tmpdir(), "jobhooks-cluster-"));
  await writeFile(path.join(dir, "tokens"), `${TOKEN}\n`);
  const env = {
    NATS_URL: cluster.url,
    SVIX_TOKEN: svix.token,
    SVIX_SERVER_URL: svix.url,
    JOBHOOKS_SERVICE_TOKENS_FILE: path.join(dir, "tokens"),
    JOBHOOKS_STREAM_REPLICAS: "3",
    JOBHOOKS_SVIX_TIMEOUT_MS: "2000",
    JOBHOOKS_RELAY_ACK_WAIT_MS: "5000",
  };
  // Started together, as an orchestrator would: provisioning races are part of the drill.
  services.push(...(await Promise.all([spawnService(env), spawnService(env)])));
  nc = await connect({ servers: cluster.url.split(","), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  jsm = await jetstreamManager(nc, { timeout: 2_000 });
}, 120_000);

afterAll(async () => {
  if (figures.length > 0) {
    console.log(`\nstalls on a 3-node cluster, ${RATE} events/s, 2 replicas, one relay consumer`);
    console.table(figures);
  }
  await Promise.all(services.splice(0).map((s) => s.kill()));
  await nc?.close();
  await svix?.close();
  await cluster?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function serverNamed(name: string | undefined): NatsServer {
  const s = cluster.servers.find((x) => x.name === name);
  if (!s) throw new Error(`no cluster node named ${name}`);
  return s;
}

/** The node a replica's NATS connection is on, from its last "nats (re)connected" log line. */
function connectedNode(svc: ServiceProcess): NatsServer {
  const lines = svc
    .output()
    .split("\n")
    .filter((l) => /"msg":"nats (re)?connected"/.test(l));
  const port = /"server":"[^"]*:(\d+)"/.exec(lines.at(-1) ?? "")?.[1];
  const s = cluster.servers.find((x) => String(x.port) === port);
  if (!s) throw new Error(`cannot tell which node the replica is on:\n${lines.join("\n")}`);
  return s;
}

async function streamLeader(): Promise<NatsServer> {
  return serverNamed((await jsm.streams.info(JOBS_STREAM)).cluster?.leader);
}

async function consumerLeaders(): Promise<Map<string, number[]>> {
  const leaders = new Map<string, number[]>();
  const leader = (await jsm.consumers.info(JOBS_STREAM, RELAY_CONSUMER)).cluster?.leader ?? "";
  leaders.set(leader, [0]);
  return leaders;
}

/**
 * The stream and the consumers (of `among`, default all) that `name` leads; an unreachable or
 * leaderless one counts as still led, so "none left" means every one has a new leader.
 */
async function ledBy(name: string, among?: string[]): Promise<string[]> {
  const all = among ?? [JOBS_STREAM, RELAY_CONSUMER];
  const led = await Promise.all(
    all.map(async (x) => {
      const info = await (x === JOBS_STREAM ? jsm.streams.info(x) : jsm.consumers.info(JOBS_STREAM, x)).catch(
        () => undefined,
      );
      const leader = info?.cluster?.leader;
      return !leader || leader === name ? [x] : [];
    }),
  );
  return led.flat();
}

/** Every node up, the stream and every consumer with a leader and all replicas current. */
async function clusterSettled(): Promise<boolean> {
  try {
    const s = await jsm.streams.info(JOBS_STREAM);
    if (!s.cluster?.leader || (s.cluster.replicas ?? []).some((r) => !r.current || r.offline)) return false;
    const c = await jsm.consumers.info(JOBS_STREAM, RELAY_CONSUMER);
    if (!c.cluster?.leader || (c.cluster.replicas ?? []).some((r) => !r.current || r.offline)) return false;
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function maxLatency(report: LoadReport, via: "nats" | "rpc"): number {
  return Math.max(0, ...report.accepted.filter((a) => a.via === via).map((a) => a.acceptedAt - a.startedAt));
}

/**
 * Steady load; `pick` names the node to kill 5 s in; it stays down 8 s (longer if its leaderships
 * have not all moved by then), then restarts; the load runs 4 s more. Then every accepted event must be at Svix once, in order per job.
 */
async function drill(fault: string, pick: () => Promise<{ node: NatsServer; note: string }>): Promise<void> {
  expect(await waitFor(clusterSettled, 60_000, 500)).toBe(true);
  const tenant = `cluster-${fault.replace(/\W+/g, "-")}`;
  const load = await startSteadyLoad({
    natsUrl: cluster.url,
    rpcUrls: services.map((s) => s.url),
    serviceToken: TOKEN,
    tenant,
    ratePerSec: RATE,
    jobs: 100,
    maxDurationMs: 60_000,
  });
  let victim: { node: NatsServer; note: string };
  let killedAt: number;
  let failoverMs: number | undefined;
  try {
    await sleep(5_000);
    victim = await pick();
    const led = await ledBy(victim.node.name);
    killedAt = Date.now();
    try {
      await victim.node.kill();
      // NATS's own part of the stall: until everything the node led has a new leader (Raft election
      // timeouts are several seconds). The node stays down at least that long, and at least 8 s.
      const moved = await waitFor(
        () => ledBy(victim.node.name, led).then((l) => l.length === 0),
        20_000,
        200,
      );
      failoverMs = moved ? Date.now() - killedAt : undefined;
      await sleep(Math.max(0, killedAt + 8_000 - Date.now()));
    } finally {
      await victim.node.restart();
    }
    await sleep(4_000);
  } catch (err) {
    await load.stop();
    throw err;
  }
  const { node, note } = victim;
  const report = await load.stop();
  const accepted = report.accepted;
  expect(
    await waitFor(() => checkDelivery(svix, tenant, accepted).lost.length === 0, 90_000, 250),
    `${checkDelivery(svix, tenant, accepted).lost.length} accepted events not at Svix`,
  ).toBe(true);
  await sleep(2_000); // a late duplicate would arrive now

  const check = checkDelivery(svix, tenant, accepted);
  const arrivals = arrivalTimes(svix, tenant);
  figures.push({
    fault,
    node: `${node.name.split("-").at(-1)}${note}`,
    accepted: accepted.length,
    "retries rpc/nats": `${sumRetries(report, "rpc")}/${sumRetries(report, "nats")}`,
    "gap before kill ms": longestGapMs(arrivals, killedAt - 4_000, killedAt),
    "leader failover ms": failoverMs ?? "> 20000",
    // The pause a Svix observer sees: no event of any job arriving.
    "stall ms": longestGapMs(arrivals, killedAt, lastAcceptedAt(accepted)),
    // The pause the most affected job sees: its event's publish→Svix time around the fault.
    "e2e max before ms": endToEndLatencies(svix, tenant, killedAt - 4_000, killedAt - 1_000).at(-1) ?? 0,
    "e2e max ms": endToEndLatencies(svix, tenant, killedAt - 1_000, killedAt + 8_000).at(-1) ?? 0,
    "rpc latency max ms": maxLatency(report, "rpc"),
    "nats publish latency max ms": maxLatency(report, "nats"),
  });
  expect(report.failed, JSON.stringify(report.failed.slice(0, 5))).toEqual([]);
  expect(check.lost).toEqual([]);
  expect(check.duplicated).toBe(0);
  expect(check.outOfOrder).toEqual([]);
  expect(accepted.length).toBeGreaterThan(RATE * 5);
  expect(accepted.some((a) => a.startedAt > killedAt + 2_000 && a.via === "rpc")).toBe(true);
}

function sumRetries(report: LoadReport, via: string): number {
  return Object.entries(report.retried)
    .filter(([k]) => k.startsWith(via))
    .reduce((n, [, v]) => n + v, 0);
}

describe("on a 3-node NATS cluster (R3), publishing and relaying survive losing a node", () => {
  it("killing the JOBS stream leader loses, duplicates and reorders nothing", {
    timeout: 150_000,
  }, async () => {
    await drill("stream leader", async () => {
      const node = await streamLeader();
      const onIt = services.filter((s) => connectedNode(s) === node).length;
      return { node, note: onIt ? ` (${onIt} replica(s) connected to it)` : "" };
    });
  });

  it("killing a relay consumer's leader loses, duplicates and reorders nothing", {
    timeout: 150_000,
  }, async () => {
    await drill("consumer leader", async () => {
      const stream = await streamLeader();
      const connected = new Set(services.map(connectedNode));
      const leaders = await consumerLeaders();
      // Prefer a node that leads consumers only: neither the stream leader nor a replica's server.
      const candidates = cluster.servers
        .filter((s) => (leaders.get(s.name)?.length ?? 0) > 0 && s !== stream)
        .sort((a, b) => Number(connected.has(a)) - Number(connected.has(b)));
      const node = candidates[0] ?? serverNamed([...leaders.keys()][0]);
      return {
        node,
        note: ` (leads ${leaders.get(node.name)?.length ?? 0}/1 consumers${connected.has(node) ? ", a replica is on it" : ""})`,
      };
    });
  });

  it("killing the node a replica is connected to loses, duplicates and reorders nothing", {
    timeout: 150_000,
  }, async () => {
    await drill("replica's node", async () => {
      const node = connectedNode(services[0] as ServiceProcess);
      const stream = await streamLeader();
      return { node, note: node === stream ? " (also the stream leader)" : "" };
    });
    // The replica moved to another node and is ready again.
    const svc = services[0] as ServiceProcess;
    expect(await waitFor(async () => (await fetch(`${svc.url}/readyz`)).ok, 15_000)).toBe(true);
  });
});
