import { JetStreamApiError, JetStreamError } from "@nats-io/jetstream";
import { errors } from "@nats-io/transport-node";

/**
 * What a NATS failure means for the caller, decided in one place, at the edge:
 * `transient` clears up by itself (a disconnect, a leader election, a slow server) and is worth
 * retrying; `full` clears up when the stream drains, later than a caller's retries should wait;
 * `too_large` and `permanent` never will.
 */
export type NatsFailure = "transient" | "too_large" | "full" | "permanent";

export function classifyNatsError(err: unknown): NatsFailure {
  if (err instanceof JetStreamApiError) {
    // 10054: message size exceeds the stream's maximum.
    if (err.code === 10054) return "too_large";
    // 10077 "maximum bytes/messages exceeded": a stream with discard "new" at its limit. It clears
    // as the relay drains the stream, not within one call's retries: tell the caller at once.
    if (err.code === 10077 && /maximum (bytes|messages)/i.test(err.message)) return "full";
    // JetStream answers 503 while a stream or meta leader is being elected.
    if (err.status === 503 || err.code === 10008) return "transient";
    return "permanent";
  }
  if (
    // Thrown while JetStream is not (yet) available, e.g. during a meta-leader election; the class
    // is not exported from the package entry point, so match its name.
    (err instanceof Error && err.name === "JetStreamNotEnabled") ||
    err instanceof errors.TimeoutError ||
    err instanceof errors.NoRespondersError ||
    err instanceof errors.RequestError ||
    err instanceof errors.ConnectionError ||
    err instanceof errors.ClosedConnectionError ||
    err instanceof errors.DrainingConnectionError ||
    err instanceof JetStreamError
  ) {
    return "transient";
  }
  return "permanent";
}
