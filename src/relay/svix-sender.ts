import type { SvixMessage } from "../events/webhook-payload.js";
import type { MessageOutcome, SvixGateway } from "../svix/gateway.js";
import type { AdaptiveLimit } from "./adaptive-limit.js";
import type { Circuit } from "./circuit.js";
import { clampRetryAfter } from "./decide.js";

export type SendResult = MessageOutcome | { kind: "stopped" };

export interface SvixSender {
  /**
   * One Svix attempt for one event, when the circuit admits it and the in-flight budget has room.
   * `keepAlive` runs while it waits for the circuit (the JetStream message must not be redelivered
   * meanwhile). `stopped` when the relay stopped before the call started: nothing was sent.
   */
  send(tenantId: string, message: SvixMessage, keepAlive: () => void): Promise<SendResult>;
}

/**
 * The Svix side of the relay: circuit (outages), adaptive budget (rate limits), one call. Every
 * admission is settled on every path: a probe that ends without an answer from Svix (shutdown, a
 * bug) hands the probe slot on, so the circuit can never wait forever on a probe nobody sends.
 */
export function createSvixSender(o: {
  svix: SvixGateway;
  circuit: Circuit;
  limit: AdaptiveLimit;
  signal: AbortSignal;
}): SvixSender {
  return {
    async send(tenantId, message, keepAlive) {
      let admission: Awaited<ReturnType<Circuit["admit"]>>;
      try {
        admission = await o.circuit.admit(o.signal, keepAlive);
      } catch {
        return { kind: "stopped" };
      }
      let settled = false;
      try {
        try {
          await o.limit.acquire(o.signal);
        } catch {
          return { kind: "stopped" };
        }
        let outcome: MessageOutcome | undefined;
        try {
          outcome = await o.svix.createMessage(tenantId, message);
        } finally {
          o.limit.release(
            outcome === undefined
              ? "other"
              : outcome.kind === "created" || outcome.kind === "already_sent"
                ? "accepted"
                : outcome.kind === "transient" && outcome.status === 429
                  ? "throttled"
                  : "other",
          );
        }
        switch (outcome.kind) {
          case "created":
          case "already_sent":
          case "permanent": // Svix answered, so it is up
            o.circuit.success(admission);
            settled = true;
            break;
          case "transient":
            o.circuit.failure(admission, clampRetryAfter(outcome.retryAfterMs));
            settled = true;
            break;
          case "internal":
            break; // says nothing about Svix: the finally below hands the probe on
        }
        return outcome;
      } finally {
        if (!settled) o.circuit.release(admission);
      }
    },
  };
}
