import { readFile } from "node:fs/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import { natsMsgId } from "../../src/events/event-id.js";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import type { SvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { backoffMs } from "../../src/resilience/backoff.js";
import { sleep } from "../../src/resilience/clock.js";

/**
 * Steady load for the failure drills and the soak: `jobs` jobs, each a chain of `processing` events
 * with sequence 1, 2, 3, … published one after another (a job's next event only once the previous
 * one was accepted, as a real job runner reports), spread over NATS and PublishJobEvent, at a fixed
 * overall rate. Both publishers retry as the README tells callers to: the same request (same
 * Nats-Msg-Id, same event) on UNAVAILABLE / DEADLINE_EXCEEDED or a NATS timeout, so what they count
 * as accepted must reach Svix exactly once and in order per job.
 */

export interface SteadyLoadOptions {
  /** Comma-separated NATS URLs; empty to publish only over RPC. */
  natsUrl: string;
  /** Service base URLs; RPC attempts go round-robin across them. Empty to publish only over NATS. */
  rpcUrls: string[];
  serviceToken: string;
  tenant: string;
  /** Events per second over both paths together. */
  ratePerSec: number;
  /** Jobs published concurrently; must exceed rate × publish latency or the rate is not reached. */
  jobs?: number;
  /** Fraction of events sent over RPC (the rest over NATS); default 0.5 when both are given. */
  rpcShare?: number;
  /** How long one event may be retried before the caller gives up (a failure the drill reports). */
  retryBudgetMs?: number;
  /** Hard caps: the load stops by itself after this many events or this long. */
  maxEvents?: number;
  maxDurationMs?: number;
}

export interface PublishRecord {
  eventId: string;
  job: string;
  sequence: number;
  via: "nats" | "rpc";
  /** When the first attempt started and when the accepted answer arrived (ms since epoch). */
  startedAt: number;
  acceptedAt: number;
  attempts: number;
}

export interface LoadReport {
  accepted: PublishRecord[];
  /** Events whose caller gave up after its retry budget, with the last error. */
  failed: Array<{ eventId: string; via: "nats" | "rpc"; error: string }>;
  /** Errors retried, by a short label (e.g. "rpc unavailable", "nats timeout"). */
  retried: Record<string, number>;
  durationMs: number;
}

export interface SteadyLoad {
  readonly acceptedCount: number;
  /** Stops issuing new events, waits for those in flight (their retries included), reports. */
  stop(): Promise<LoadReport>;
}

export async function startSteadyLoad(o: SteadyLoadOptions): Promise<SteadyLoad> {
  const jobs = o.jobs ?? 200;
  const rpcShare = o.rpcUrls.length === 0 ? 0 : o.natsUrl === "" ? 1 : (o.rpcShare ?? 0.5);
  const retryBudgetMs = o.retryBudgetMs ?? 60_000;
  const maxEvents = o.maxEvents ?? 1_000_000;
  const maxDurationMs = o.maxDurationMs ?? 15 * 60_000;
  const nc: NatsConnection | undefined = o.natsUrl
    ? await connect({ servers: o.natsUrl.split(","), maxReconnectAttempts: -1, reconnectTimeWait: 250 })
    : undefined;
  const js = nc ? jetstream(nc) : undefined;
  const clients = o.rpcUrls.map((baseUrl) => createClient(WebhookService, createGrpcTransport({ baseUrl })));
  let rr = 0;

  const accepted: PublishRecord[] = [];
  const failed: LoadReport["failed"] = [];
  const retried: Record<string, number> = {};
  const started = Date.now();
  let issued = 0;
  let stopped = false;

  // Token bucket: credit accrues at the rate, capped at 200 ms worth so a stall is not followed
  // by an unbounded burst.
  const waiting: Array<() => void> = [];
  let credit = 0;
  let last = Date.now();
  const ticker = setInterval(() => {
    const now = Date.now();
    credit = Math.min(credit + ((now - last) * o.ratePerSec) / 1_000, Math.max(1, o.ratePerSec / 5));
    last = now;
    while (credit >= 1 && waiting.length > 0) {
      credit--;
      waiting.shift()?.();
    }
    if (stopped || Date.now() - started > maxDurationMs) {
      stopped = true;
      for (const w of waiting.splice(0)) w();
    }
  }, 10);
  const ticket = () => new Promise<void>((resolve) => waiting.push(resolve));

  const retry = (label: string) => {
    retried[label] = (retried[label] ?? 0) + 1;
  };

  async function publishOne(job: string, sequence: number, via: "nats" | "rpc"): Promise<void> {
    const eventId = `${job}.processing.${sequence}`;
    const startedAt = Date.now();
    const metadata = { t: String(startedAt) };
    let lastError = "";
    for (let attempt = 1; Date.now() - startedAt < retryBudgetMs; attempt++) {
      try {
        if (via === "nats") {
          const h = natsHeaders();
          h.set("Content-Type", "application/json");
          await js?.publish(
            `jobs.${o.tenant}.${job}.processing`,
            JSON.stringify({ sequence: String(sequence), metadata }),
            { headers: h, msgID: natsMsgId(o.tenant, eventId), timeout: 3_000 },
          );
        } else {
          const client = clients[rr++ % clients.length] as (typeof clients)[number];
          await client.publishJobEvent(
            {
              event: {
                tenantId: o.tenant,
                jobId: job,
                status: JobStatus.PROCESSING,
                sequence: BigInt(sequence),
                metadata,
              },
            },
            { headers: { authorization: `Bearer ${o.serviceToken}` }, timeoutMs: 5_000 },
          );
        }
        accepted.push({ eventId, job, sequence, via, startedAt, acceptedAt: Date.now(), attempts: attempt });
        return;
      } catch (err) {
        lastError = String(err);
        if (via === "rpc") {
          const label = retryableRpcError(err);
          if (!label) break;
          retry(`rpc ${label}`);
        } else {
          // A NATS publisher's equivalent: no answer (timeout, no responders during an election,
          // a reconnect); the same Nats-Msg-Id makes the retry safe.
          retry(`nats ${(err as Error).name ?? "error"}`);
        }
        // A publisher's retry backoff, as a real one waits: pacing on purpose, not a wait for a state.
        await sleep(backoffMs(attempt, { baseMs: 50, capMs: 1_000 }));
      }
    }
    failed.push({ eventId, via, error: lastError });
  }

  const runJob = async (j: number) => {
    const job = `job-${j}`;
    for (let sequence = 1; ; sequence++) {
      await ticket();
      if (stopped || issued >= maxEvents) return;
      issued++;
      // Each job sticks to one path, the way a given service reports its own jobs.
      await publishOne(job, sequence, j < jobs * rpcShare ? "rpc" : "nats");
    }
  };
  const runners = Array.from({ length: jobs }, (_, j) => runJob(j));

  return {
    get acceptedCount() {
      return accepted.length;
    },
    async stop() {
      stopped = true;
      await Promise.all(runners);
      clearInterval(ticker);
      await nc?.close();
      return { accepted, failed, retried, durationMs: Date.now() - started };
    },
  };
}

/**
 * Which RPC failures a caller retries with the same request: UNAVAILABLE and DEADLINE_EXCEEDED, as
 * the README promises. And a refused HTTP/2 stream: a replica shutting down sends GOAWAY, and a call
 * the client opened before that frame arrived is refused (RST_STREAM REFUSED_STREAM), which RFC 9113
 * §8.7 defines as "not processed, safe to retry" and gRPC maps to UNAVAILABLE; connect-node 2.x
 * surfaces it as INTERNAL "Stream closed with error code NGHTTP2_REFUSED_STREAM" instead.
 */
export function retryableRpcError(err: unknown): string | undefined {
  const e = ConnectError.from(err);
  if (e.code === Code.Unavailable || e.code === Code.DeadlineExceeded) return Code[e.code];
  if (e.code === Code.Internal && /REFUSED_STREAM/.test(e.message)) return "refused_stream";
  return undefined;
}

export interface DeliveryCheck {
  /** Accepted by a publisher, never created at Svix. */
  lost: string[];
  /** Svix messages beyond the first for one event id. */
  duplicated: number;
  /** Jobs whose events reached Svix out of sequence order. */
  outOfOrder: string[];
  delivered: number;
}

/** What Svix holds for the tenant, judged against what the publishers saw accepted. */
export function checkDelivery(svix: SvixStandIn, tenant: string, accepted: PublishRecord[]): DeliveryCheck {
  const messages = svix.state.messages(tenant);
  const seen = new Set<string>();
  let duplicated = 0;
  const byJob = new Map<string, number[]>();
  for (const m of messages) {
    const id = m.eventId ?? m.id;
    if (seen.has(id)) duplicated++;
    seen.add(id);
    const d = m.payload.data as { job_id: string; sequence: number };
    const list = byJob.get(d.job_id) ?? [];
    list.push(d.sequence);
    byJob.set(d.job_id, list);
  }
  const outOfOrder = [...byJob]
    .filter(([, seqs]) => seqs.some((s, i) => i > 0 && s <= (seqs[i - 1] as number)))
    .map(([job]) => job);
  return {
    lost: accepted.filter((a) => !seen.has(a.eventId)).map((a) => a.eventId),
    duplicated,
    outOfOrder,
    delivered: messages.length,
  };
}

/** Svix arrival times of the tenant's messages (the stand-in stamps each at creation), sorted. */
export function arrivalTimes(svix: SvixStandIn, tenant: string): number[] {
  return svix.state
    .messages(tenant)
    .map((m) => Date.parse(m.timestamp))
    .sort((a, b) => a - b);
}

/** The longest gap between consecutive arrivals within [from, to] (edges included as arrivals). */
export function longestGapMs(arrivals: number[], from: number, to: number): number {
  const inside = [from, ...arrivals.filter((t) => t > from && t < to), to];
  let gap = 0;
  for (let i = 1; i < inside.length; i++)
    gap = Math.max(gap, (inside[i] as number) - (inside[i - 1] as number));
  return gap;
}

/**
 * Publish→Svix latency of each event at Svix (from its first publish attempt), sorted; only events
 * first published within [from, to] when given.
 */
export function endToEndLatencies(svix: SvixStandIn, tenant: string, from = 0, to = Infinity): number[] {
  return svix.state
    .messages(tenant)
    .flatMap((m) => {
      const t = Number((m.payload.data as { metadata?: { t?: string } }).metadata?.t);
      return Number.isFinite(t) && t >= from && t <= to ? [Date.parse(m.timestamp) - t] : [];
    })
    .sort((a, b) => a - b);
}

/** When the last accepted event was accepted: the end of a window in which arrivals are expected. */
export function lastAcceptedAt(accepted: PublishRecord[]): number {
  return accepted.reduce((t, a) => Math.max(t, a.acceptedAt), 0);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** Resident set size of a process in MB, from /proc (Linux); undefined once it is gone. */
export async function rssMb(pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined;
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) / 1024 : undefined;
}

/** One sample value from a service's /metrics (the first series whose line starts with `series`). */
export async function metricValue(serviceUrl: string, series: string): Promise<number | undefined> {
  const text = await fetch(`${serviceUrl}/metrics`, { signal: AbortSignal.timeout(5_000) })
    .then((r) => r.text())
    .catch(() => "");
  const line = text.split("\n").find((l) => l.startsWith(`${series} `) || l.startsWith(`${series}{`));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : undefined;
}
