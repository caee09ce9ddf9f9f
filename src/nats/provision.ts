import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { millis, nanos } from "@nats-io/transport-node";
import { dlqStreamSubject, jobsStreamSubject } from "../events/subjects.js";
import type { Logger } from "../log/logger.js";
import { retryWhile } from "../resilience/retry.js";
import { classifyNatsError, JetStreamCodes } from "./errors.js";
import { dropPartitionedLayout, movePartitionedEvents } from "./partitioned-take-over.js";

export const JOBS_STREAM = "JOBS";
export const DLQ_STREAM = "JOBS_DLQ";
/** The relay's one durable consumer, shared by every replica. */
export const RELAY_CONSUMER = "jobhooks-relay";

/** Messages the relay consumer hands out before acks: far above what all replicas hold at once
 * (each holds a bounded number, see the relay), so it never limits throughput. */
export const RELAY_MAX_ACK_PENDING = 20_000;

export interface ProvisionOptions {
  subjectPrefix: string;
  replicas: number;
  duplicateWindowMs: number;
  /** Largest message the streams accept; above the RPC limit so a NATS publisher's oversize
   * event still reaches the relay and is dead-lettered with a reason instead of vanishing. */
  maxMsgBytes?: number;
  /** How long the relay may hold a message before JetStream redelivers it. */
  ackWaitMs?: number;
  /** Storage limits; applied to existing streams too (see applyLimits). */
  limits?: StreamLimits;
}

export interface StreamLimits {
  /** JOBS' byte limit, with discard "new": when full, publishes are refused, nothing stored is deleted. */
  jobsMaxBytes?: number;
  /** JOBS_DLQ's byte and age limits, with discard "old": the oldest dead letters go first. */
  dlqMaxBytes?: number;
  dlqMaxAgeMs?: number;
}

export const DEFAULT_LIMITS: Required<StreamLimits> = {
  jobsMaxBytes: 1024 ** 3,
  dlqMaxBytes: 256 * 1024 ** 2,
  dlqMaxAgeMs: 30 * 24 * 3_600_000,
};

export interface Provisioned {
  /** The stream's actual de-duplication window (an adopted stream may differ from the request). */
  duplicateWindowMs: number;
}

export class ProvisioningError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProvisioningError";
  }
}

/**
 * Creates the streams and the relay's durable consumer, or adopts existing ones that match. Every
 * replica runs this at start, concurrently: creation races are settled by re-reading. An existing
 * stream whose immutable settings conflict stops start-up with a message saying what differs,
 * because silently using, say, a memory stream would lose accepted events on a restart.
 */
export async function provisionJetStream(
  jsm: JetStreamManager,
  opts: ProvisionOptions,
  log: Logger,
): Promise<Provisioned> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  // JetStream refuses a message limit above the stream's byte limit.
  const maxMsg = Math.min(opts.maxMsgBytes ?? 2 * 1024 * 1024, limits.jobsMaxBytes);
  // Work-queue retention: a relayed (acked) event is deleted, so the stream holds the backlog
  // only and never grows without bound; nothing is deleted before the relay acked it.
  //
  // Stored subject = published subject: the relay orders each job's events by asking the stream
  // for the job's first stored message (direct get, hence allow_direct), see relay/ordering-gate.
  const takeOver = {
    jsm,
    stream: JOBS_STREAM,
    prefix: opts.subjectPrefix,
    log,
    retryTransient: <T>(what: string, call: () => Promise<T>) => retryTransient(what, log, call),
  };
  await dropPartitionedLayout(
    takeOver,
    await streamConfig(jsm, JOBS_STREAM, log),
    jobsStreamSubject(opts.subjectPrefix),
  );
  const jobs = await ensureStream(
    jsm,
    {
      name: JOBS_STREAM,
      subjects: [jobsStreamSubject(opts.subjectPrefix)],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      num_replicas: opts.replicas,
      duplicate_window: nanos(opts.duplicateWindowMs),
      max_msg_size: maxMsg,
      // Full means "refuse the next event" (PublishJobEvent answers UNAVAILABLE with RetryInfo),
      // never "delete an accepted one": work-queue retention frees space as the relay acks.
      max_bytes: limits.jobsMaxBytes,
      discard: DiscardPolicy.New,
      allow_direct: true,
      first_seq: jobsFirstSequence(Date.now()),
    },
    log,
  );
  // Dead letters are kept until an operator replays or purges them, or they pass the age or byte
  // limit: then the oldest go first, so a flood of poison never stops dead-lettering (and with it
  // the relay).
  await ensureStream(
    jsm,
    {
      name: DLQ_STREAM,
      subjects: [dlqStreamSubject(opts.subjectPrefix)],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: opts.replicas,
      max_msg_size: Math.min(maxMsg + 64 * 1024, limits.dlqMaxBytes),
      max_bytes: limits.dlqMaxBytes,
      max_age: nanos(limits.dlqMaxAgeMs),
      discard: DiscardPolicy.Old,
      allow_direct: true,
    },
    log,
  );
  await ensureConsumer(
    jsm,
    JOBS_STREAM,
    {
      durable_name: RELAY_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      // Well above the Svix request timeout; the relay calls working() on held messages anyway.
      ack_wait: nanos(opts.ackWaitMs ?? 30_000),
      max_deliver: -1,
      max_ack_pending: RELAY_MAX_ACK_PENDING,
      num_replicas: opts.replicas,
    },
    log,
  );
  // Before any relay of this release starts: it reads one subject shape.
  await movePartitionedEvents(takeOver);
  return { duplicateWindowMs: millis(jobs.duplicate_window ?? nanos(opts.duplicateWindowMs)) };
}

/**
 * Where a JOBS stream made at `nowMs` starts numbering: the time in microseconds. Its sequence is
 * what endpoints order a job's events by (the payload's `revision`), so a JOBS deleted and made
 * again must number above the one it replaces, or receivers would ignore every later event of the
 * jobs they know. The old stream would have had to store a million events a second over its whole
 * life to get ahead of the clock; the value stays below 2^53 (exact in JSON) until the year 2255.
 */
export function jobsFirstSequence(nowMs: number): number {
  return Math.floor(nowMs) * 1_000;
}

async function ensureStream(
  jsm: JetStreamManager,
  want: Partial<StreamConfig> & { name: string },
  log: Logger,
): Promise<StreamConfig> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const existing = await streamConfig(jsm, want.name, log);
    if (existing) {
      const conflicts = [
        JSON.stringify(existing.subject_transform ?? null) !==
          JSON.stringify(want.subject_transform ?? null) &&
          `subject transform is ${JSON.stringify(existing.subject_transform)}, want ${JSON.stringify(want.subject_transform)}`,
        !sameSet(existing.subjects ?? [], want.subjects ?? []) &&
          `subjects are ${JSON.stringify(existing.subjects)}, want ${JSON.stringify(want.subjects)}`,
        existing.retention !== want.retention && `retention is ${existing.retention}, want ${want.retention}`,
        existing.storage !== want.storage && `storage is ${existing.storage}, want ${want.storage}`,
      ].filter(Boolean);
      if (conflicts.length > 0) {
        throw new ProvisioningError(
          `stream ${want.name} exists with conflicting settings: ${conflicts.join("; ")}. ` +
            "Migrate or delete it (nats stream rm), or point jobhooks at another subject prefix.",
        );
      }
      if (existing.num_replicas !== want.num_replicas) {
        log.warn(
          { stream: want.name, replicas: existing.num_replicas, wanted: want.num_replicas },
          "adopting stream with a different replica count",
        );
      }
      return (await applyLimits(jsm, existing, want, log)) ?? existing;
    }
    try {
      const info = await retryTransient(`create stream ${want.name}`, log, () => jsm.streams.add(want));
      log.info({ stream: want.name }, "stream created");
      return info.config;
    } catch (err) {
      // Another replica created it between our read and our add: read again.
      if (!(err instanceof JetStreamApiError) || err.code !== JetStreamCodes.StreamNameInUse) throw err;
    }
  }
  throw new ProvisioningError(`stream ${want.name}: could not create or read it`);
}

const LIMIT_FIELDS = ["max_bytes", "max_age", "max_msg_size", "discard"] as const;

/**
 * An adopted stream takes the configured limits: they are operations settings (how much disk,
 * how long dead letters stay), JetStream can change them in place, and a stream made by an older
 * version (JOBS without a byte limit, or with discard "old") would otherwise keep deleting or
 * growing without bound. Lowering JOBS' limit below what it holds deletes nothing (discard "new"):
 * publishes are refused until the relay has drained it. If JetStream refuses the update (say,
 * the account cannot reserve the bytes), start-up goes on with the old limits and a warning.
 * Returns the updated config, or undefined when nothing changed.
 */
async function applyLimits(
  jsm: JetStreamManager,
  existing: StreamConfig,
  want: Partial<StreamConfig> & { name: string },
  log: Logger,
): Promise<StreamConfig | undefined> {
  const changed = LIMIT_FIELDS.filter((f) => want[f] !== undefined && existing[f] !== want[f]);
  if (changed.length === 0) return undefined;
  const update = Object.fromEntries(changed.map((f) => [f, want[f]]));
  try {
    // One attempt: JetStream answers "insufficient resources" with the same 503 as an election,
    // and waiting a minute on it would only delay a start that can go on with the old limits.
    const info = await jsm.streams.update(want.name, { ...existing, ...update });
    log.info(
      { stream: want.name, was: Object.fromEntries(changed.map((f) => [f, existing[f]])), now: update },
      "stream limits updated",
    );
    return info.config;
  } catch (err) {
    log.warn(
      { stream: want.name, err, wanted: update },
      "could not update the stream's limits; keeping the existing ones",
    );
    return undefined;
  }
}

async function streamConfig(
  jsm: JetStreamManager,
  name: string,
  log: Logger,
): Promise<StreamConfig | undefined> {
  try {
    return (await retryTransient(`read stream ${name}`, log, () => jsm.streams.info(name))).config;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw err;
  }
}

async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  want: Partial<ConsumerConfig> & { durable_name: string },
  log: Logger,
): Promise<void> {
  try {
    const info = await retryTransient(`read consumer ${want.durable_name}`, log, () =>
      jsm.consumers.info(stream, want.durable_name),
    );
    if ((info.config.filter_subject || undefined) !== want.filter_subject) {
      throw new ProvisioningError(
        `consumer ${want.durable_name} on ${stream} has filter ${info.config.filter_subject}, want ` +
          `${want.filter_subject ?? "none"}; delete it to let jobhooks recreate it`,
      );
    }
    if (want.max_ack_pending !== undefined && info.config.max_ack_pending !== want.max_ack_pending) {
      await retryTransient(`update consumer ${want.durable_name}`, log, () =>
        jsm.consumers.update(stream, want.durable_name, { max_ack_pending: want.max_ack_pending }),
      );
      log.info(
        { stream, consumer: want.durable_name, max_ack_pending: want.max_ack_pending },
        "consumer updated",
      );
    }
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.ConsumerNotFound) throw err;
  }
  // Consumer create is idempotent for an identical config, so racing replicas all succeed.
  await retryTransient(`create consumer ${want.durable_name}`, log, () => jsm.consumers.add(stream, want));
  log.info({ stream, consumer: want.durable_name }, "consumer created");
}

const RETRY_FOR_MS = 60_000;
const RETRY_BACKOFF = { baseMs: 250, capMs: 5_000 };

/**
 * One JetStream API call of start-up, repeated while it fails transiently. With replicas > 1 every
 * stream and consumer create makes the meta leader form a Raft group; on a busy cluster, or during a
 * leader election, the request can time out (found by the cluster drill: two replicas provisioning
 * 64 R3 consumers at once on a loaded machine, one exited with "timeout"). Repeating is safe: reads
 * trivially, creates because JetStream accepts an identical create again (and a stream created by the
 * timed-out attempt is then adopted). Answers such as "not found" are permanent and pass through,
 * and so does the last transient error once the minute is up.
 *
 * The pacing is the service's one backoff (`resilience/retry.ts`), the same as every other retry.
 */
async function retryTransient<T>(what: string, log: Logger, call: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + RETRY_FOR_MS;
  return retryWhile(call, {
    retryable: (err) => classifyNatsError(err) === "transient" && Date.now() < deadline,
    backoff: RETRY_BACKOFF,
    onRetry: (err, attempt) =>
      log.warn({ err, attempt: attempt + 1 }, `${what}: JetStream did not answer; retrying`),
  });
}

function sameSet(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((s) => b.includes(s));
}
