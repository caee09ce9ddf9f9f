import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { type MsgHdrs, headers as natsHeaders } from "@nats-io/transport-node";
import type { DeadReason } from "../events/decode-nats-event.js";
import { revisionOf } from "../events/revision.js";
import { dlqSubject, parseStoredSubject, tenantDlqSubject } from "../events/subjects.js";
import { DEAD_HEADERS, HEADER } from "../events/wire-names.js";
import { classifyNatsError } from "../nats/errors.js";
import { publisherHeaders } from "../nats/publisher-headers.js";

/** What dead-lettering needs of a message: a JetStream one, or one the look-ahead read. */
export type DeadLetterable = Pick<JsMsg, "seq" | "data" | "headers" | "ack">;

/**
 * Moves a message that can never be delivered to JOBS_DLQ: the original body and headers, plus
 * why, then acks the original. The DLQ publish is de-duplicated on the original's stream sequence,
 * so a crash between publish and ack cannot leave two dead letters for one message.
 *
 * A dead letter never depends on the headers a publisher chose: `Nats-*` headers are JetStream
 * publish controls (`Nats-Expected-Stream`, `Nats-Expected-Last-Sequence`, `Nats-TTL`, …) that
 * JetStream would apply to the DLQ publish and refuse it for, leaving the original unacked and its
 * job's later events stuck behind it. Should JetStream still refuse the copy, it is sent again
 * with nothing but the body, its Content-Type and our own headers.
 */
export async function deadLetter(
  js: JetStreamClient,
  m: DeadLetterable,
  o: { subjectPrefix: string; reason: DeadReason; detail: string; originalSubject: string },
): Promise<void> {
  // Filed by tenant when the subject names one, so DeleteTenant removes them by filter.
  const tenant = parseStoredSubject(o.subjectPrefix, o.originalSubject)?.tenantId;
  const subject = tenant
    ? tenantDlqSubject(o.subjectPrefix, o.reason, tenant)
    : dlqSubject(o.subjectPrefix, o.reason);
  const msgID = `dlq.${m.seq}`;
  const ours = deadHeaders(m, o);
  try {
    await js.publish(subject, m.data, { headers: withPublisherHeaders(m.headers, ours), msgID });
  } catch (err) {
    // Only a refusal is worth a different copy; NATS being away is not (the caller retries later).
    if (classifyNatsError(err) === "transient") throw err;
    ours.set(DEAD_HEADERS.detail, oneLine(`${o.detail} (original headers dropped: ${refusal(err)})`));
    // Except the body's format: `dlq replay` decodes the body by it (JSON or protobuf).
    const contentType = m.headers?.get(HEADER.contentType);
    if (contentType && contentType.length <= CONTENT_TYPE_MAX) ours.set(HEADER.contentType, contentType);
    try {
      await js.publish(subject, m.data, { headers: ours, msgID });
    } catch (again) {
      if (classifyNatsError(again) === "transient") throw again;
      // Even the bare body is refused (say, an adopted JOBS_DLQ with a smaller message limit):
      // record that the message existed and why, rather than hold its job forever.
      ours.set(
        DEAD_HEADERS.detail,
        oneLine(`${o.detail} (body of ${m.data.byteLength} bytes dropped: ${refusal(again)})`),
      );
      await js.publish(subject, new Uint8Array(0), { headers: ours, msgID });
    }
  }
  m.ack();
}

/** Longer is no content type jobhooks reads; it would only risk the minimal copy's refusal too. */
const CONTENT_TYPE_MAX = 128;

/** The publisher's headers without JetStream's controls, then ours (which win on a clash). */
function withPublisherHeaders(original: MsgHdrs | undefined, ours: MsgHdrs): MsgHdrs {
  const h = publisherHeaders(original);
  for (const [key, values] of ours) for (const v of values) h.append(key, v);
  return h;
}

function deadHeaders(
  m: DeadLetterable,
  o: { reason: DeadReason; detail: string; originalSubject: string },
): MsgHdrs {
  const h = natsHeaders();
  h.set(DEAD_HEADERS.reason, o.reason);
  h.set(DEAD_HEADERS.detail, oneLine(o.detail));
  h.set(DEAD_HEADERS.subject, o.originalSubject);
  h.set(DEAD_HEADERS.sequence, String(m.seq));
  // A replay stores it again under a new sequence; it keeps the revision its receivers have seen.
  h.set(HEADER.revision, String(revisionOf(m.seq, m.headers?.get(HEADER.revision))));
  h.set(DEAD_HEADERS.at, new Date().toISOString());
  return h;
}

function refusal(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Header values are one line of printable text; details are cut to a readable length. */
function oneLine(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes.
  const flat = s.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return flat.length > 1_000 ? `${flat.slice(0, 997)}...` : flat;
}
