import type { JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

/** Bound on the acks remembered (a few seconds' worth at thousands of events a second). */
const ACKS_REMEMBERED_MAX = 20_000;

export interface AckResender {
  /** An ack was just sent with this reply subject. */
  acked(reply: string): void;
  /** The consumer's leader or the connection may be gone: acks of the last few seconds and from now on may be lost. */
  suspect(): void;
  /** The consumer answers again: sends those acks once more; returns how many. */
  answered(): number;
}

/**
 * Acks are fire-and-forget publishes to the consumer's leader. Those sent to a leader that just
 * died, while there is none, or over a connection that is dropping are lost without a word, and
 * JetStream redelivers the message only after ack_wait (30 s by default), every later event of
 * its job waiting behind it (it is still stored). So the acks of the last few seconds are kept;
 * when a pull goes unanswered or the connection drops, they and every ack sent until the consumer
 * answers again are sent once more, to whoever leads by then. An ack is only ever sent once Svix
 * accepted the event (or it was dead-lettered), so a second one is harmless: the server ignores
 * an ack for a message no longer pending. Naks are not sent again: a lost nak only means the
 * message comes back after ack_wait rather than after its delay.
 */
export function createAckResender(
  nc: NatsConnection,
  /** Acks this recent are sent again once the consumer answers after a silence. */
  o: { windowMs: number },
): AckResender {
  const windowMs = o.windowMs;
  let recent: Array<{ reply: string; at: number }> = [];
  let unsure: string[] | undefined;
  const ACK = "+ACK";
  return {
    acked(reply) {
      if (unsure) {
        if (unsure.length < ACKS_REMEMBERED_MAX) unsure.push(reply);
        return;
      }
      const now = Date.now();
      recent.push({ reply, at: now });
      // Trimmed in bulk, not one shift() per ack.
      if (recent.length > ACKS_REMEMBERED_MAX || now - (recent[0]?.at ?? now) > 2 * windowMs) {
        recent = recent.filter((r) => now - r.at <= windowMs).slice(-ACKS_REMEMBERED_MAX / 2);
      }
    },
    suspect() {
      if (unsure) return;
      const now = Date.now();
      unsure = recent.filter((r) => now - r.at <= windowMs).map((r) => r.reply);
      recent = [];
    },
    answered() {
      if (!unsure) return 0;
      const replies = unsure;
      unsure = undefined;
      for (const reply of replies) nc.publish(reply, ACK);
      return replies.length;
    },
  };
}

/**
 * `m` as the handler sees it: acking it is remembered by `acks`. Every response goes to `m`
 * itself, so its once-only rule holds (an ack after a nak sends, and remembers, nothing).
 */
export function withAckRemembered(m: JsMsg, acks: AckResender): JsMsg {
  let responded = false;
  // nats.js's JsMsg has the subject acks go to (`reply`) but its type does not show it.
  const reply = (m as unknown as { reply?: unknown }).reply;
  const wrapped: JsMsg = Object.create(m);
  wrapped.ack = () => {
    if (!responded && typeof reply === "string" && reply !== "") acks.acked(reply);
    responded = true;
    m.ack();
  };
  wrapped.nak = (millis?: number) => {
    responded = true;
    m.nak(millis);
  };
  wrapped.term = (reason?: string) => {
    responded = true;
    m.term(reason);
  };
  wrapped.working = () => m.working();
  wrapped.ackAck = (opts) => {
    responded = true;
    return m.ackAck(opts);
  };
  return wrapped;
}
