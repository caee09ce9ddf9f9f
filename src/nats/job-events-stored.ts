import type { JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { decodeNatsEvent } from "../events/decode-nats-event.js";
import { IDENTIFIER } from "../events/field-rules.js";
import { statusFromName } from "../events/job-status.js";
import { jobFilter, parseStoredSubject } from "../events/subjects.js";
import { DEAD_HEADERS, HEADER } from "../events/wire-names.js";
import { JobStatus } from "../gen/jobhooks/v1/webhooks_pb.js";
import { DLQ_STREAM, JOBS_STREAM } from "./provision.js";

/**
 * A job's events as NATS holds them: waiting in JOBS (work-queue retention keeps exactly the events
 * not yet relayed) and dead-lettered in JOBS_DLQ. Reads only; never acks or deletes anything.
 */

export interface StoredJobEvent {
  /** Empty when a dead letter's body names none (malformed, or protobuf that cannot be decoded). */
  eventId: string;
  status: JobStatus;
  occurredAt: Date | undefined;
  /** When JetStream stored it: the order of acceptance. */
  storedAt: Date;
  where: "waiting" | "dead_lettered";
  deadReason?: string;
  deadDetail?: string;
}

export interface StoredJobEventsOptions {
  subjectPrefix: string;
  tenantId: string;
  jobId: string;
  /** Events read from each stream at most. */
  maxEvents: number;
  /** Most recent dead letters examined (JOBS_DLQ is not indexed by job). */
  dlqScanMax: number;
  maxPayloadBytes: number;
}

const DLQ_BATCH = 256;

export async function readWaitingJobEvents(
  jsm: JetStreamManager,
  o: StoredJobEventsOptions,
): Promise<{ events: StoredJobEvent[]; truncated: boolean }> {
  const events: StoredJobEvent[] = [];
  const filter = jobFilter(o.subjectPrefix, o.tenantId, o.jobId);
  // Direct gets walk the job's subjects in stream order, one stored event per request.
  for (let seq = 0; events.length <= o.maxEvents; ) {
    const m = await jsm.direct.getMessage(JOBS_STREAM, { seq, next_by_subj: filter });
    if (!m) break;
    events.push(decodeStored(m, o, "waiting"));
    seq = m.seq + 1;
  }
  return { events: events.slice(0, o.maxEvents), truncated: events.length > o.maxEvents };
}

export async function readDeadLetteredJobEvents(
  jsm: JetStreamManager,
  o: StoredJobEventsOptions,
): Promise<{ events: StoredJobEvent[]; truncated: boolean }> {
  const info = await jsm.streams.info(DLQ_STREAM);
  const { first_seq: first, last_seq: last, messages } = info.state;
  if (messages === 0) return { events: [], truncated: false };
  // Dead letters are not indexed by job: scan the most recent ones, headers only (a body may be
  // 256 KiB), and read the bodies of the matches alone.
  const start = Math.max(first, last - o.dlqScanMax + 1);
  const consumer = await jsm.jetstream().consumers.get(DLQ_STREAM, {
    opt_start_seq: start,
    headers_only: true,
  });
  const matches: number[] = [];
  let done = false;
  for (let round = 0; round < Math.ceil(o.dlqScanMax / DLQ_BATCH) + 1 && !done; round++) {
    const batch = await consumer.fetch({ max_messages: DLQ_BATCH, expires: 2_000 });
    let read = 0;
    for await (const m of batch) {
      read++;
      const original = parseStoredSubject(o.subjectPrefix, m.headers?.get(DEAD_HEADERS.subject) ?? "");
      if (original?.tenantId === o.tenantId && original.jobId === o.jobId) matches.push(m.seq);
      // Stop at the end of the stream as it was, rather than wait for the fetch to expire.
      if (m.seq >= last || m.info.pending === 0) {
        done = true;
        break;
      }
    }
    if (read === 0) break;
  }
  const newest = matches.slice(-o.maxEvents);
  const events: StoredJobEvent[] = [];
  for (const seq of newest) {
    const m = await jsm.direct.getMessage(DLQ_STREAM, { seq });
    if (m) events.push(decodeStored(m, o, "dead_lettered"));
  }
  return { events, truncated: matches.length > newest.length };
}

function decodeStored(
  m: StoredMsg,
  o: StoredJobEventsOptions,
  where: StoredJobEvent["where"],
): StoredJobEvent {
  const subject = where === "dead_lettered" ? (m.header?.get(DEAD_HEADERS.subject) ?? m.subject) : m.subject;
  const tokens = parseStoredSubject(o.subjectPrefix, subject) ?? {
    tenantId: o.tenantId,
    jobId: o.jobId,
    status: "",
  };
  const decoded = decodeNatsEvent({
    subject: tokens,
    data: m.data,
    contentType: m.header?.get(HEADER.contentType) || undefined,
    storedAtMs: m.time.getTime(),
    maxPayloadBytes: Math.max(o.maxPayloadBytes, m.data.byteLength),
  });
  const dead =
    where === "dead_lettered"
      ? {
          deadReason: m.header?.get(DEAD_HEADERS.reason) ?? "",
          deadDetail: m.header?.get(DEAD_HEADERS.detail) ?? "",
        }
      : {};
  if (decoded.kind === "event") {
    const e = decoded.event;
    return {
      eventId: e.eventId,
      status: e.status,
      occurredAt: e.occurredAt
        ? new Date(Number(e.occurredAt.seconds) * 1_000 + e.occurredAt.nanos / 1e6)
        : undefined,
      storedAt: m.time,
      where,
      ...dead,
    };
  }
  return {
    eventId: eventIdOf(m.data),
    status: statusFromName(tokens.status) ?? JobStatus.UNSPECIFIED,
    occurredAt: undefined,
    storedAt: m.time,
    where,
    ...dead,
  };
}

/** The event id of a body that failed validation, when it names one (JSON `event_id` or `eventId`). */
function eventIdOf(data: Uint8Array): string {
  try {
    const body = JSON.parse(Buffer.from(data).toString("utf8")) as { event_id?: unknown; eventId?: unknown };
    const id = body.event_id ?? body.eventId;
    return typeof id === "string" && IDENTIFIER.test(id) ? id : "";
  } catch {
    return "";
  }
}
