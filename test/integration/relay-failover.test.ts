import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsCluster, type NatsServer, startNatsCluster } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { JOBS_STREAM, RELAY_CONSUMER } from "../../src/nats/provision.js";
import { until, WaitTimedOut } from "../support/poll.js";
import { type ServiceProcess, spawnService } from "../support/spawn-service.js";
import {
  arrivalTimes,
  checkDelivery,
  endToEndLatencies,
  longestGapMs,
  metricValue,
  startSteadyLoad,
} from "../support/steady-load.js";

/**
 * Relaying must go on while one node of a 3-node cluster is down, not wait for it to come back:
 * two of three nodes are a quorum for every group, so once NATS has elected new leaders for what
 * the node led (a Raft election timeout, 4–9 s, which no client can shorten) the relay has all it
 * needs. Each drill SIGKILLs one node under steady NATS publishing and keeps it down until NATS
 * has elected those leaders and either events published after the kill are at Svix or GRACE_MS
 * more have passed (a supervisor restarting a crashed node); then it restarts it. What is
 * asserted is the order: events published after the kill reached Svix before the restart. (The
 * relay before this test re-attached about 10 s after a kill whatever the election took: a 1 s
 * pause, then a consumer look-up that waited out its 5 s timeout while there was no leader.)
 * A node that hangs instead (SIGSTOP: its connections stay open and silent) is the client's to
 * notice: PublishJobEvent through a replica on it must be accepted again while it still hangs.
 * The durations are printed (2 shared cores: figures, not assertions).
 */

const TOKEN = "svc_failover_token_0123456789abcdef";
const RATE = 100;
/** How long a node stays down at most: far beyond nats-server's election timeouts (≤ 9 s). */
const DOWN_MAX_MS = 30_000;
/** How long the node stays down once NATS has elected new leaders for what it led. */
const GRACE_MS = 3_000;
/** How long a hung node stays frozen: past the client's stale-connection detection (4-6 s). */
const FROZEN_MS = 10_000;
/** Events published after the kill that must reach Svix while the node is still down. */
const AFTER_KILL_WANTED = 50;
/** Each Svix call's duration, so that some events are always in flight. */
const SVIX_LATENCY_MS = 200;
let cluster: NatsCluster;
let svix: SvixStandIn;
let nc: NatsConnection;
let jsm: JetStreamManager;
let dir: string;
let env: Record<string, string>;
const services: ServiceProcess[] = [];
const figures: Array<Record<string, string | number>> = [];

beforeAll(async () => {
  cluster = await startNatsCluster(3);
  svix = await startSvixStandIn({ deliver: false, requestLogSize: 0 });
  dir = await mkdtemp(path.join(tmpdir(), "jobhooks-failover-"));
  await writeFile(path.join(dir, "tokens"), `${TOKEN}\n`);
  env = {
    SVIX_TOKEN: svix.token,
    SVIX_SERVER_URL: svix.url,
    JOBHOOKS_SERVICE_TOKENS_FILE: path.join(dir, "tokens"),
    JOBHOOKS_STREAM_REPLICAS: "3",
    JOBHOOKS_SVIX_TIMEOUT_MS: "2000",
    JOBHOOKS_RELAY_ACK_WAIT_MS: "10000",
  };
  nc = await connect({ servers: cluster.url.split(","), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  jsm = await jetstreamManager(nc, { timeout: 2_000 });
}, 120_000);

afterEach(async () => {
  await Promise.all(services.splice(0).map((s) => s.kill()));
});

afterAll(async () => {
  if (figures.length > 0) {
    console.log(`\nrelaying while a node of a 3-node cluster is down, ${RATE} events/s`);
    console.table(figures);
  }
  await nc?.close();
  await svix?.close();
  await cluster?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function named(name: string | undefined): NatsServer | undefined {
  return cluster.servers.find((x) => x.name === name);
}

/** The stream's and the relay consumer's leaders, once both have one and every replica is current. */
async function settledLeaders(): Promise<{ stream: NatsServer; consumer: NatsServer }> {
  return until(
    "the JOBS stream and the relay consumer to have a leader and current replicas",
    async () => {
      try {
        const s = await jsm.streams.info(JOBS_STREAM);
        const c = await jsm.consumers.info(JOBS_STREAM, RELAY_CONSUMER);
        const current = [s, c].every((i) =>
          (i.cluster?.replicas ?? []).every((r) => r.current && !r.offline),
        );
        const stream = named(s.cluster?.leader);
        const consumer = named(c.cluster?.leader);
        return current && stream && consumer ? { stream, consumer } : undefined;
      } catch {
        return undefined;
      }
    },
    { timeoutMs: 60_000, everyMs: 250 },
  );
}

/**
 * The leaders, with no replica running: provisioning happens with the first replica (the leaders
 * exist only afterwards), and each drill starts its replicas where it needs them.
 */
async function leadersWithoutReplicas(): Promise<{ stream: NatsServer; consumer: NatsServer }> {
  if (services.length === 0) await startReplicas(1, cluster.servers);
  const leaders = await settledLeaders();
  await Promise.all(services.splice(0).map((s) => s.kill()));
  return leaders;
}

/** Replicas connected only to `nodes` (they learn the others from the cluster, for reconnects). */
async function startReplicas(n: number, nodes: NatsServer[]): Promise<ServiceProcess[]> {
  const url = nodes.map((s) => s.url).join(",");
  const started = await Promise.all(Array.from({ length: n }, () => spawnService({ ...env, NATS_URL: url })));
  services.push(...started);
  return started;
}

/**
 * When the JOBS stream and the relay consumer next get a leader (NATS's advisories), from now on:
 * NATS's own part of a failover, which the relay cannot shorten.
 */
function watchElections(): { stream?: number; consumer?: number; stop(): void } {
  const seen: { stream?: number; consumer?: number; stop(): void } = { stop: () => sub.unsubscribe() };
  const sub = nc.subscribe("$JS.EVENT.ADVISORY.*.LEADER_ELECTED.>", {
    callback: (_err, m) => {
      if (m.subject.endsWith(`.STREAM.LEADER_ELECTED.${JOBS_STREAM}`)) seen.stream ??= Date.now();
      if (m.subject.endsWith(`.CONSUMER.LEADER_ELECTED.${JOBS_STREAM}.${RELAY_CONSUMER}`))
        seen.consumer ??= Date.now();
    },
  });
  return seen;
}

/**
 * Steady load on `tenant`; `victim` is SIGKILLed 4 s in and stays down until AFTER_KILL_WANTED
 * events first published after the kill are at Svix, or until NATS has failed over (every group
 * it led has a new leader) and GRACE_MS more have passed — a node a supervisor restarts within
 * seconds — then restarts. Returns how many such events had arrived before the restart;
 * afterwards every accepted event must be at Svix once and in order per job.
 */
async function drill(
  fault: string,
  tenant: string,
  victim: NatsServer,
  leads: { stream: boolean; consumer: boolean },
): Promise<number> {
  const load = await startSteadyLoad({
    // Publishers on the other nodes: what is measured is the relay, not a publisher's reconnect.
    natsUrl: cluster.servers
      .filter((x) => x !== victim)
      .map((x) => x.url)
      .join(","),
    rpcUrls: [],
    serviceToken: TOKEN,
    tenant,
    ratePerSec: RATE,
    jobs: 100,
    maxDurationMs: 90_000,
  });
  let killedAt = 0;
  let failedOverAt = 0;
  const elected = watchElections();
  // Svix calls take a while, so events are in flight (held, their acks about to be sent) when
  // the consumer's leader dies.
  svix.faults.inject({ route: "v1.message.create", kind: "latency", latencyMs: SVIX_LATENCY_MS });
  let restartedAt = 0;
  let arrivedWhileDown = 0;
  const afterKill = () =>
    svix.state
      .messages(tenant)
      .filter((m) => Number((m.payload.data as { metadata?: { t?: string } }).metadata?.t) > killedAt)
      .map((m) => Date.parse(m.timestamp))
      .filter((t) => t < (restartedAt || Number.POSITIVE_INFINITY))
      .sort((a, b) => a - b);
  try {
    // Pacing on purpose: the kill happens under load that has been flowing for a while.
    await new Promise((r) => setTimeout(r, 4_000));
    killedAt = Date.now();
    try {
      await victim.kill();
      await until(
        "events published after the kill at Svix, or NATS failed over and the grace passed",
        async () => {
          if ((leads.stream && !elected.stream) || (leads.consumer && !elected.consumer)) return false;
          if (afterKill().length >= AFTER_KILL_WANTED) return true;
          failedOverAt ||= Date.now();
          return Date.now() - failedOverAt >= GRACE_MS;
        },
        { timeoutMs: DOWN_MAX_MS, everyMs: 100 },
      ).catch((err) => {
        if (!(err instanceof WaitTimedOut)) throw err;
      });
    } finally {
      restartedAt = Date.now();
      arrivedWhileDown = afterKill().length;
      await victim.restart();
    }
    // Pacing on purpose: some load after the restart too.
    await new Promise((r) => setTimeout(r, 3_000));
  } finally {
    const report = await load.stop();
    svix.faults.clear();
    await until(
      "every accepted event at Svix",
      () => checkDelivery(svix, tenant, report.accepted).lost.length === 0,
      { timeoutMs: 90_000, everyMs: 250 },
    ).catch(() => undefined);
    const check = checkDelivery(svix, tenant, report.accepted);
    elected.stop();
    // Events Svix had already accepted, sent again after a redelivery (ack_wait ran out on them).
    const alreadySent = (
      await Promise.all(
        services.map((svc) => metricValue(svc.url, 'jobhooks_relay_events_total{outcome="already_sent"}')),
      )
    ).reduce<number>((n, v) => n + (v ?? 0), 0);
    const firstAfterKill = afterKill()[0];
    const arrivals = arrivalTimes(svix, tenant);
    const since = (t: number | undefined) => (t ? t - killedAt : "-");
    figures.push({
      fault,
      node: victim.name.split("-").at(-1) ?? "",
      accepted: report.accepted.length,
      "JOBS leader elected ms": leads.stream ? since(elected.stream) : "(kept)",
      "consumer leader elected ms": leads.consumer ? since(elected.consumer) : "(kept)",
      "first Svix arrival ms": since(arrivals.find((t) => t > killedAt)),
      "first post-kill event at Svix ms": since(firstAfterKill),
      "down ms": restartedAt - killedAt,
      "longest gap at Svix while down ms": longestGapMs(arrivals, killedAt, restartedAt),
      // The most affected job: an event whose ack the dead leader never applied waits for
      // redelivery after ack_wait, and its job's later events wait behind it.
      "slowest publish→Svix ms": endToEndLatencies(svix, tenant).at(-1) ?? 0,
      "post-kill events at Svix before restart": arrivedWhileDown,
      "sent again (409)": alreadySent,
      // Acks possibly lost with the leader, sent again once the consumer answered (service logs).
      "acks re-sent": services
        .flatMap((svc) => [...svc.output().matchAll(/"acks_resent":(\d+)/g)])
        .reduce((n, m) => n + Number(m[1]), 0),
    });
    expect(report.failed, JSON.stringify(report.failed.slice(0, 3))).toEqual([]);
    expect(check.lost).toEqual([]);
    expect(check.duplicated).toBe(0);
    expect(check.outOfOrder).toEqual([]);
  }
  return arrivedWhileDown;
}

describe("on a 3-node NATS cluster (R3), relaying goes on while one node is down", () => {
  it("events published after the relay consumer's leader is killed reach Svix before it is restarted", {
    timeout: 150_000,
  }, async () => {
    const { stream, consumer } = await leadersWithoutReplicas();
    // The replicas are on the other nodes, so what is tested is the loss of the consumer's leader.
    await startReplicas(
      2,
      cluster.servers.filter((s) => s !== consumer),
    );
    const arrived = await drill("relay consumer leader", "failover-consumer-leader", consumer, {
      stream: consumer === stream,
      consumer: true,
    });
    expect(arrived).toBeGreaterThanOrEqual(AFTER_KILL_WANTED);
  });

  it("events published after the node a replica is connected to, leading the relay consumer, is killed reach Svix before it is restarted", {
    timeout: 150_000,
  }, async () => {
    const { stream, consumer } = await leadersWithoutReplicas();
    // One replica, so nothing else relays while it reconnects, on the node that leads the relay
    // consumer: it loses its connection and its consumer's leader at once.
    await startReplicas(1, [consumer]);
    const arrived = await drill(
      "the replica's node, relay consumer leader",
      "failover-replica-node",
      consumer,
      {
        stream: consumer === stream,
        consumer: true,
      },
    );
    expect(arrived).toBeGreaterThanOrEqual(AFTER_KILL_WANTED);
  });

  it("PublishJobEvent through a replica whose NATS node hangs is accepted again before the node wakes", {
    timeout: 90_000,
  }, async () => {
    const { stream, consumer } = await leadersWithoutReplicas();
    // A node leading nothing, so NATS has nothing to elect: what is tested is how soon the replica
    // notices that its connection answers nothing (client pings) and moves to another node.
    const victim = cluster.servers.find((s) => s !== stream && s !== consumer) ?? stream;
    const [replica] = await startReplicas(1, [victim]);
    const client = createClient(
      WebhookService,
      createGrpcTransport({ baseUrl: (replica as ServiceProcess).url }),
    );
    const publish = (sequence: number) =>
      client.publishJobEvent(
        {
          event: {
            tenantId: "failover-hang",
            jobId: "job-1",
            status: JobStatus.PROCESSING,
            sequence: BigInt(sequence),
          },
        },
        { headers: { authorization: `Bearer ${TOKEN}` }, timeoutMs: 2_000 },
      );
    await publish(1);
    // A hung host: SIGSTOP keeps its connections open and silent (a killed one closes them).
    process.kill(victim.pid as number, "SIGSTOP");
    const frozenAt = Date.now();
    let acceptedAfterMs: number | undefined;
    try {
      acceptedAfterMs = await until(
        "PublishJobEvent accepted again through the replica",
        () =>
          publish(2).then(
            () => Date.now() - frozenAt,
            () => undefined,
          ),
        { timeoutMs: FROZEN_MS, everyMs: 250 },
      ).catch((err) => {
        if (err instanceof WaitTimedOut) return undefined;
        throw err;
      });
    } finally {
      process.kill(victim.pid as number, "SIGCONT");
    }
    figures.push({
      fault: "the replica's node hangs (SIGSTOP)",
      "PublishJobEvent accepted again after ms": acceptedAfterMs ?? `> ${FROZEN_MS}`,
    });
    expect(acceptedAfterMs, `not accepted within the ${FROZEN_MS} ms the node hung`).toBeDefined();
    // The relay delivers both once the node is back, once each.
    await until("both events at Svix", () => svix.state.messages("failover-hang").length >= 2, {
      timeoutMs: 30_000,
    });
  });
});
