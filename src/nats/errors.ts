import { JetStreamApiError, JetStreamError } from "@nats-io/jetstream";
import { errors } from "@nats-io/transport-node";

/**
 * JetStream API error codes we act on that `JetStreamApiCodes` of @nats-io/jetstream does not name
 * (it names ConsumerNotFound, StreamNotFound, NoMessageFound, …). Numbers and meanings are those of
 * nats-server's errors.json.
 */
export const JetStreamCodes = {
  /** JSClusterNotAvailErr: "JetStream system temporarily unavailable" (e.g. during an election). */
  ClusterNotAvailable: 10008,
  /** JSStreamMessageExceedsMaximumErr: the message is larger than the stream's max_msg_size. */
  MessageTooLarge: 10054,
  /** JSStreamNameExistErr: a stream (or KV bucket) of that name exists with another configuration. */
  StreamNameInUse: 10058,
  /** JSStreamStoreFailedF: storing failed; with discard "new", "maximum bytes/messages exceeded". */
  StoreFailed: 10077,
} as const;

/**
 * What a NATS failure means for the caller, decided in one place, at the edge:
 * `transient` clears up by itself (a disconnect, a leader election, a slow server) and is worth
 * retrying; `full` clears up when the stream drains, later than a caller's retries should wait;
 * `too_large` and `permanent` never will.
 */
export type NatsFailure = "transient" | "too_large" | "full" | "permanent";

export function classifyNatsError(err: unknown): NatsFailure {
  if (err instanceof JetStreamApiError) {
    if (err.code === JetStreamCodes.MessageTooLarge) return "too_large";
    // "maximum bytes/messages exceeded": a stream with discard "new" at its limit. It clears
    // as the relay drains the stream, not within one call's retries: tell the caller at once.
    if (err.code === JetStreamCodes.StoreFailed && /maximum (bytes|messages)/i.test(err.message))
      return "full";
    // JetStream answers 503 while a stream or meta leader is being elected.
    if (err.status === 503 || err.code === JetStreamCodes.ClusterNotAvailable) return "transient";
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
