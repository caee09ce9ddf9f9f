import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { DEAD_HEADERS, HEADER } from "../events/wire-names.js";
import { DLQ_STREAM } from "../nats/provision.js";
import { publisherHeaders } from "../nats/publisher-headers.js";

export interface DeadLetterRecord {
  /** Sequence in JOBS_DLQ: what `dlq replay` takes. */
  seq: number;
  reason: string;
  detail: string;
  /** The subject the event was published to, and where a replay sends it. */
  subject: string;
  deadAt: Date;
  bytes: number;
}

/** Every dead letter, oldest first. */
export async function listDeadLetters(nc: NatsConnection): Promise<DeadLetterRecord[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(DLQ_STREAM);
  const out: DeadLetterRecord[] = [];
  if (info.state.messages === 0) return out;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const record = await readDeadLetter(jsm, seq);
    if (record) out.push(record.record);
  }
  return out;
}

async function readDeadLetter(jsm: JetStreamManager, seq: number) {
  const m = await jsm.streams.getMessage(DLQ_STREAM, { seq }).catch(() => null);
  if (!m) return undefined;
  const h = m.header;
  return {
    message: m,
    record: {
      seq: m.seq,
      reason: h?.get(DEAD_HEADERS.reason) ?? "unknown",
      detail: h?.get(DEAD_HEADERS.detail) ?? "",
      subject: h?.get(DEAD_HEADERS.subject) ?? "",
      deadAt: new Date(h?.get(DEAD_HEADERS.at) || m.time),
      bytes: m.data.byteLength,
    } satisfies DeadLetterRecord,
  };
}

export type ReplayResult =
  | { kind: "replayed"; seq: number; subject: string }
  | { kind: "failed"; seq: number; error: string };

/**
 * Publishes dead letters back to the subject they were first published to, with their original
 * body and headers, then deletes them from JOBS_DLQ. The re-publish carries Nats-Msg-Id
 * `replay.<dlq seq>`, so a replay interrupted between publish and delete and run again stores
 * the event once; Svix's eventId check covers anything older.
 */
export async function replayDeadLetters(
  nc: NatsConnection,
  seqs: number[] | "all",
  onProgress?: (r: ReplayResult) => void,
): Promise<ReplayResult[]> {
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  const targets = seqs === "all" ? (await listDeadLetters(nc)).map((r) => r.seq) : seqs;
  const results: ReplayResult[] = [];
  for (const seq of targets) {
    const found = await readDeadLetter(jsm, seq);
    let result: ReplayResult;
    if (!found) {
      result = { kind: "failed", seq, error: "no dead letter with this sequence" };
    } else if (!found.record.subject) {
      result = { kind: "failed", seq, error: "dead letter has no original subject" };
    } else {
      try {
        const h = publisherHeaders(found.message.header);
        // Dead letters from before revisions were recorded: the original sequence is the revision.
        const revision =
          found.message.header?.get(HEADER.revision) || found.message.header?.get(DEAD_HEADERS.sequence);
        if (revision) h.set(HEADER.revision, revision);
        await js.publish(found.record.subject, found.message.data, { headers: h, msgID: `replay.${seq}` });
        await jsm.streams.deleteMessage(DLQ_STREAM, seq);
        result = { kind: "replayed", seq, subject: found.record.subject };
      } catch (err) {
        result = { kind: "failed", seq, error: err instanceof Error ? err.message : String(err) };
      }
    }
    results.push(result);
    onProgress?.(result);
  }
  return results;
}
