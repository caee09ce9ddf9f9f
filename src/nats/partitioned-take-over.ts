import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  type StoredMsg,
} from "@nats-io/jetstream";
import { eventSubject, parseStoredSubject } from "../events/subjects.js";
import { HEADER } from "../events/wire-names.js";
import type { Logger } from "../log/logger.js";
import { publisherHeaders } from "./publisher-headers.js";

/**
 * Taking over a JOBS stream made by the partitioned layout (releases up to 0.3: a subject
 * transform to `<prefix>.<partition>.<tenant>.<job>.<status>`, consumers `jobhooks-relay-NN`).
 * Everything about that layout lives here, run once at start-up, so the relay's per-message path
 * knows one subject shape. docs/operations.md says which release drops this module.
 *
 * 1. `dropPartitionedLayout` (before the stream is ensured): removes the transform, so new events
 *    are stored under their published subject, and deletes the partition consumers, because a
 *    work-queue stream allows no consumer overlapping the relay's. Deleting a consumer deletes no
 *    message.
 * 2. `movePartitionedEvents` (before the relay starts): every event still stored under a
 *    partitioned subject is stored again under its published one, with the job's later events
 *    moved behind it, then the originals are deleted — so each job's stored order is its order of
 *    acceptance, as the relay's one rule requires.
 *
 * Idempotent, and safe with replicas starting together: each copy carries `Nats-Msg-Id`
 * `moved:<original seq>`, so a second replica's copies are JetStream duplicates (stored once, at
 * the place of the first), a copy is never moved again, and deleting what is gone is a no-op. A crash between copy and delete
 * leaves an event stored twice: the relay sends it twice, and Svix's idempotency key delivers it
 * once. An event whose publisher set no `occurred_at` gets the take-over's time as its acceptance
 * time (as a replayed dead letter does).
 */

/** The partitioned layout's consumers (`jobhooks-relay-07`). */
const PARTITION_CONSUMER = /^jobhooks-relay-\d+$/;

/** The `Nats-Msg-Id` prefix of a moved copy (`:` occurs in no tenant id, so in no publisher's). */
const MOVED_ID = "moved:";

/** How often a job's move is re-checked for events stored in between (then left to the next start). */
const RECHECKS_MAX = 10;

export interface PartitionedTakeOverOptions {
  jsm: JetStreamManager;
  stream: string;
  prefix: string;
  log: Logger;
  /** Retries a JetStream request that may time out (leader elections). */
  retryTransient<T>(what: string, call: () => Promise<T>): Promise<T>;
}

/** Step 1: the transform and the partition consumers go; stored events stay. */
export async function dropPartitionedLayout(
  o: PartitionedTakeOverOptions,
  config: { subject_transform?: { src?: string; dest?: string } } | undefined,
  streamSubject: string,
): Promise<void> {
  if (!config) return;
  const transform = config.subject_transform;
  if (transform?.dest?.includes("{{partition(") && transform.src === streamSubject) {
    o.log.warn(
      { stream: o.stream, transform },
      "taking over the partitioned JOBS layout: removing its subject transform (stored events are kept)",
    );
    await o.retryTransient(`update stream ${o.stream}`, () =>
      o.jsm.streams.update(o.stream, { subject_transform: undefined, allow_direct: true }),
    );
  }
  const names: string[] = [];
  for await (const c of await o.jsm.consumers.list(o.stream)) {
    if (PARTITION_CONSUMER.test(c.name)) names.push(c.name);
  }
  for (const name of names) {
    try {
      await o.retryTransient(`delete consumer ${name}`, () => o.jsm.consumers.delete(o.stream, name));
      o.log.warn({ stream: o.stream, consumer: name }, "deleted a partitioned-layout consumer");
    } catch (err) {
      // Another replica deleted it first.
      if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.ConsumerNotFound) throw err;
    }
  }
}

/** `<prefix>.<partition>.<tenant>.<job>.<status>` → its tokens; undefined for any other shape. */
function parsePartitioned(prefix: string, subject: string) {
  if (!subject.startsWith(`${prefix}.`)) return undefined;
  const parts = subject.slice(prefix.length + 1).split(".");
  if (parts.length !== 4 || !/^\d+$/.test(parts[0] as string)) return undefined;
  const [, tenantId, jobId, status] = parts as [string, string, string, string];
  return { tenantId, jobId, status };
}

/** Step 2: how many events were moved (0 once the stream holds none of the old shape). */
export async function movePartitionedEvents(o: PartitionedTakeOverOptions): Promise<number> {
  const get = (filter: string, seq: number) =>
    o.retryTransient("read a stored event", () =>
      o.jsm.direct.getMessage(o.stream, { next_by_subj: filter, seq }),
    );
  const js = o.jsm.jetstream();
  const partitioned = `${o.prefix}.*.*.*.*`;
  let moved = 0;
  let before = 0;
  for (let first = await get(partitioned, 1); first; first = await get(partitioned, 1)) {
    const job = parsePartitioned(o.prefix, first.subject);
    if (!job) break; // cannot happen: the filter has the partitioned shape
    if (first.seq === before) {
      // Its delete keeps failing: leave the rest for the next start rather than loop.
      o.log.error(
        { stream_seq: first.seq },
        "could not move a partitioned-layout event; will try at the next start",
      );
      break;
    }
    before = first.seq;
    if (moved === 0)
      o.log.warn(
        "events stored by the partitioned layout remain: storing them under their published subjects",
      );
    const filters = [
      `${o.prefix}.*.${job.tenantId}.${job.jobId}.*`,
      `${o.prefix}.${job.tenantId}.${job.jobId}.*`,
    ];
    // The job's events of both shapes, in stream order (its order of acceptance).
    const originals = new Set<number>();
    const copies = new Set<number>();
    let lastCopy = 0;
    for (let round = 0; round < RECHECKS_MAX; round++) {
      const batch: StoredMsg[] = [];
      for (const filter of filters) {
        for (let m = await get(filter, 1); m; m = await get(filter, m.seq + 1)) {
          // Copies (ours or another replica's) stay; an event stored before the last copy is out of place.
          const copy = copies.has(m.seq) || m.header?.get(HEADER.natsMsgId).startsWith(MOVED_ID);
          if (!copy && !originals.has(m.seq) && (round === 0 || m.seq < lastCopy)) batch.push(m);
        }
      }
      if (batch.length === 0) break;
      batch.sort((a, b) => a.seq - b.seq);
      for (const m of batch) {
        const tokens = parsePartitioned(o.prefix, m.subject) ?? parseStoredSubject(o.prefix, m.subject);
        if (!tokens) continue; // the filters match only the two shapes
        // Without the publisher's JetStream controls (its Nats-Msg-Id, an expected sequence…),
        // which would refuse or de-duplicate the copy.
        const h = publisherHeaders(m.header);
        const ack = await o.retryTransient("store a moved event", () =>
          js.publish(eventSubject(o.prefix, tokens), m.data, {
            headers: h,
            msgID: `${MOVED_ID}${m.seq}`,
          }),
        );
        copies.add(ack.seq);
        originals.add(m.seq);
        lastCopy = Math.max(lastCopy, ack.seq);
      }
      // Originals go only once every copy is stored: until then the job's first stored event is
      // still its oldest.
      for (const seq of batch.map((m) => m.seq)) {
        await o
          .retryTransient("delete a moved event", () => o.jsm.streams.deleteMessage(o.stream, seq, false))
          .catch((err: unknown) => {
            // Deleted by another replica moving the same job.
            if (!(err instanceof JetStreamApiError)) throw err;
          });
        moved++;
      }
    }
  }
  if (moved > 0) o.log.warn({ moved }, "partitioned-layout events now stored under their published subjects");
  return moved;
}
