import type { JetStreamManager } from "@nats-io/jetstream";
import { jobFilter } from "../events/subjects.js";
import { BoundedMap } from "../resilience/bounded-map.js";
import { sameTick } from "./same-tick.js";

/**
 * Per-job order, and only per job. The JOBS stream has work-queue retention: it holds exactly the
 * events not yet relayed, so "does an earlier event of this job still wait?" is answered by one
 * direct get — the first stored message on the job's subjects. An event is sent only when it is
 * that first message; otherwise its predecessor is still being sent (by this replica or another),
 * waits for a retry, or waits for redelivery after a crash, and the event waits too.
 *
 * Why this is safe whoever holds what: a message is deleted only when acked, and it is acked only
 * after Svix accepted it (or it was dead-lettered). So while event n is stored, n+1 is never the
 * first, on any replica, before or after any crash. A lagging stream replica answering the direct
 * get can only show more stored messages (older deletes not yet applied) or not yet have ours:
 * both read as "not first", which only delays.
 *
 * Within a process, a job's events run one after another (`inTurn`), so a job asks once per event
 * and never competes with itself.
 */
export interface OrderingGate {
  /** Runs `task` after every task queued earlier for the same job has finished. */
  inTurn<T>(jobKey: string, task: () => Promise<T>): Promise<T>;
  /** The stream sequence of the job's first stored event (asked on behalf of the event at `seq`);
   * undefined when the stream (or the replica answering) has none. */
  firstStored(job: { tenantId: string; jobId: string }, seq: number): Promise<number | undefined>;
  /** The job's event at `seq` left the stream (acked): later asks start after it. */
  done(jobKey: string, seq: number): void;
  /** Jobs with tasks queued in this process. */
  readonly jobsQueued: number;
}

/** The key a job's events share in this process (queueing, the last acked sequence). */
export function jobKeyOf(job: { tenantId: string; jobId: string }): string {
  return `${job.tenantId}.${job.jobId}`;
}

/** Jobs whose last acked sequence is remembered (bounded; forgetting only costs a wider ask). */
const RECENT_JOBS_MAX = 50_000;

/** A tenant's asks in flight at most: see `askSlot`. */
const ASKS_PER_TENANT = 32;

export function createOrderingGate(o: {
  jsm: JetStreamManager;
  stream: string;
  subjectPrefix: string;
  /** A tenant's asks in flight at most (default 32). */
  asksPerTenant?: number;
}): OrderingGate {
  const tails = new Map<string, Promise<void>>();
  const lastDone = new BoundedMap<string, number>(RECENT_JOBS_MAX);
  const together = sameTick();
  const maxAsks = o.asksPerTenant ?? ASKS_PER_TENANT;
  /** Per tenant: asks in flight, and those waiting for one to end. */
  const asking = new Map<string, { n: number; waiting: Array<() => void> }>();

  /**
   * A tenant's asks wait their turn beyond a few dozen in flight. When a burst arrives the
   * consumer hands over a whole window of one tenant's events at once; asking the stream for all
   * of them together queued every other tenant's ask behind hundreds at nats-server (measured:
   * 100-250 ms for a small tenant's event in a burst's first second), while only the Svix budget's
   * worth of them can be sent anyway.
   */
  async function askSlot(tenant: string): Promise<() => void> {
    const slots = asking.get(tenant) ?? { n: 0, waiting: [] };
    asking.set(tenant, slots);
    if (slots.n >= maxAsks) await new Promise<void>((resolve) => slots.waiting.push(resolve));
    slots.n++;
    return () => {
      slots.n--;
      const next = slots.waiting.shift();
      if (next) next();
      else if (slots.n === 0) asking.delete(tenant);
    };
  }

  return {
    get jobsQueued() {
      return tails.size;
    },

    inTurn(jobKey, task) {
      const previous = tails.get(jobKey);
      const run = previous ? previous.then(task, task) : task();
      const tail: Promise<void> = run.then(
        () => undefined,
        () => undefined,
      );
      tails.set(jobKey, tail);
      void tail.then(() => {
        if (tails.get(jobKey) === tail) tails.delete(jobKey);
      });
      return run;
    },

    async firstStored(job, seq) {
      // Everything of this job up to the last event this process acked is gone (each was first
      // when sent), so ask from just after it: an ack the stream has not applied yet cannot
      // make the job's next event look blocked.
      // (A message at or before that point is a second copy of one already acked: ask from 1.)
      const remembered = lastDone.get(jobKeyOf(job));
      const from = remembered !== undefined && remembered < seq ? remembered + 1 : 1;
      const done = await askSlot(job.tenantId);
      try {
        await together();
        const m = await o.jsm.direct.getMessage(o.stream, {
          next_by_subj: jobFilter(o.subjectPrefix, job.tenantId, job.jobId),
          seq: from,
        });
        return m?.seq;
      } finally {
        done();
      }
    },

    done(jobKey, seq) {
      lastDone.set(jobKey, seq);
    },
  };
}
