import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import type { DeadReason } from "../events/decode-nats-event.js";

/** Headers a dead letter carries besides the original ones. */
export const DEAD_HEADERS = {
  reason: "Jobhooks-Dead-Reason",
  detail: "Jobhooks-Dead-Detail",
  subject: "Jobhooks-Original-Subject",
  sequence: "Jobhooks-Original-Sequence",
  at: "Jobhooks-Dead-At",
} as const;

/**
 * Moves a message that can never be delivered to JOBS_DLQ: the original body and headers, plus
 * why, then acks the original. The DLQ publish is de-duplicated on the original's stream sequence,
 * so a crash between publish and ack cannot leave two dead letters for one message.
 */
export async function deadLetter(
  js: JetStreamClient,
  m: JsMsg,
  o: { dlqPrefix: string; reason: DeadReason; detail: string; originalSubject: string },
): Promise<void> {
  const h = natsHeaders();
  for (const [key, values] of m.headers ?? []) {
    if (key === "Nats-Msg-Id") continue;
    for (const v of values) h.append(key, v);
  }
  h.set(DEAD_HEADERS.reason, o.reason);
  h.set(DEAD_HEADERS.detail, oneLine(o.detail));
  h.set(DEAD_HEADERS.subject, o.originalSubject);
  h.set(DEAD_HEADERS.sequence, String(m.seq));
  h.set(DEAD_HEADERS.at, new Date().toISOString());
  await js.publish(`${o.dlqPrefix}.${o.reason}`, m.data, { headers: h, msgID: `dlq.${m.seq}` });
  m.ack();
}

/** Header values are one line of printable text; details are cut to a readable length. */
function oneLine(s: string): string {
  const flat = s.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return flat.length > 1_000 ? `${flat.slice(0, 997)}...` : flat;
}
