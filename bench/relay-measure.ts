import { readFileSync } from "node:fs";
import { jetstream } from "@nats-io/jetstream";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import type { SvixStandIn } from "../src/local/svix-stand-in/index.js";
import { sleep } from "../src/resilience/clock.js";
import { endToEndLatencies, percentile } from "../test/support/steady-load.js";
import { type Measured, stop } from "./relay-processes.js";

/**
 * How `bench/relay.ts` measures one consumer set-up (the relay's replicas or the bare loop): a
 * backlog drained, or a steady stream; rate, publish→Svix latency, per-job order, peak RSS, CPU
 * per event, and how busy the whole machine was meanwhile.
 */

const STATUSES = ["created", "processing", "completed"] as const;
const STEADY_JOBS = 500;

export interface Result {
  events: number;
  perSecond: number;
  p50: number;
  p99: number;
  rssMb: number;
  /** CPU the consumer processes used per event delivered (the bench's own process not counted). */
  cpuMsPerEvent: number;
  /** Share of all cores busy (any process) while it ran: near 1, the figure is the machine's. */
  machineBusy: number;
  /** Share of one core the bench's own process (Svix stand-in, publisher) used meanwhile. */
  benchBusy: number;
  outOfOrderJobs: number;
}

/** Busy and total jiffies of all cores since boot (/proc/stat's first line). */
function machineJiffies(): { busy: number; total: number } {
  const [, ...fields] = readFileSync("/proc/stat", "utf8").split("\n")[0]?.trim().split(/\s+/) ?? [];
  const n = fields.map(Number);
  const total = n.reduce((a, b) => a + b, 0);
  // idle and iowait are the 4th and 5th fields.
  return { busy: total - (n[3] ?? 0) - (n[4] ?? 0), total };
}

/** What was busy meanwhile: all cores (share of them), and this process (share of one core). */
interface Busy {
  machine: number;
  /** The bench's own process: the Svix stand-in answering and the publisher. */
  self: number;
}

/** Starts measuring; the returned function says how busy the machine and this process were since. */
function machineMeter(): () => Busy {
  const before = machineJiffies();
  const selfBefore = process.cpuUsage();
  const startedAt = performance.now();
  return () => {
    const after = machineJiffies();
    const self = process.cpuUsage(selfBefore);
    return {
      machine: (after.busy - before.busy) / Math.max(1, after.total - before.total),
      self: (self.user + self.system) / 1_000 / Math.max(1, performance.now() - startedAt),
    };
  };
}

/**
 * Publishes `jobs` × `perJob` events of `tenant` (statuses in order within each job, jobs in
 * parallel, as real publishers do), then starts the consumer(s) and waits until Svix has them all.
 */
export async function backlog(
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
  const createdBefore = created(svix);
  if (!startFirst) await publishJobs(nc, prefix, tenant, jobs, perJob);
  const m = await start();
  const cpuBefore = m.cpuSeconds();
  const busy = machineMeter();
  if (startFirst) await publishJobs(nc, prefix, tenant, jobs, perJob);
  try {
    await untilCreated(svix, tenant, createdBefore + jobs * perJob, 20 * 60_000);
    return summarize(svix, tenant, m, perJob, m.cpuSeconds() - cpuBefore, busy());
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

/** Publishes 1,000 events/s for `seconds` to a running consumer; latency publish→Svix. */
export async function steady(
  nc: NatsConnection,
  svix: SvixStandIn,
  prefix: string,
  tenant: string,
  seconds: number,
  start: () => Promise<Measured>,
): Promise<Result> {
  const createdBefore = created(svix);
  const m = await start();
  const cpuBefore = m.cpuSeconds();
  const busy = machineMeter();
  try {
    const js = jetstream(nc);
    const h = natsHeaders();
    h.set("Content-Type", "application/json");
    const total = seconds * 1_000;
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
    await untilCreated(svix, tenant, createdBefore + total, 120_000);
    return summarize(svix, tenant, m, 0, m.cpuSeconds() - cpuBefore, busy());
  } finally {
    await stop(m);
  }
}

/**
 * Messages the stand-in has created so far, all tenants: a counter. Listing a tenant's messages
 * copies every stored message, tens of milliseconds once a run has stored 100,000, in the process
 * that also serves Svix's answers: polled twice a second it showed up in the p99 it measures.
 */
export function created(svix: SvixStandIn): number {
  return svix.state.stats().messagesCreated;
}

export async function untilCreated(
  svix: SvixStandIn,
  tenant: string,
  target: number,
  ms: number,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (created(svix) < target) {
    if (Date.now() > deadline) throw new Error(`${tenant}: ${target - created(svix)} messages still missing`);
    await sleep(500);
  }
}

function summarize(
  svix: SvixStandIn,
  tenant: string,
  m: Measured,
  perJob: number,
  cpuSeconds: number,
  busy: Busy,
): Result {
  const messages = svix.state.messages(tenant);
  const arrivals = messages.map((msg) => Date.parse(msg.timestamp));
  const latencies = endToEndLatencies(svix, tenant);
  const pct = (p: number) => percentile(latencies, p);
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
    machineBusy: busy.machine,
    benchBusy: busy.self,
    outOfOrderJobs,
  };
}
