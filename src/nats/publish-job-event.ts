import type { JetStreamClient } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { natsMsgId } from "../events/event-id.js";
import { subjectFor } from "../events/subjects.js";
import { CONTENT_TYPE, HEADER } from "../events/wire-names.js";
import type { JobEvent } from "../gen/jobhooks/v1/webhooks_pb.js";
import type { Logger } from "../log/logger.js";
import { backoffMs } from "../resilience/backoff.js";
import { sleep, waitAtMost } from "../resilience/clock.js";
import { injectTraceContext } from "../tracing/spans.js";
import type { NatsLink } from "./connection.js";
import { classifyNatsError } from "./errors.js";

export interface StoredEvent {
  streamSequence: bigint;
  duplicate: boolean;
}

/** The event could not be stored now; the same call may succeed later. */
export class PublishUnavailableError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
    this.name = "PublishUnavailableError";
  }
}

/** JetStream refused the event for good: it is over the stream's message size limit. */
export class PublishTooLargeError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PublishTooLargeError";
  }
}

export interface JobEventPublisherOptions {
  link: NatsLink;
  js: JetStreamClient;
  subjectPrefix: string;
  /** The stream's de-duplication window: retries of one publish must all fall inside it. */
  duplicateWindowMs: number;
  log: Logger;
}

export interface JobEventPublisher {
  /**
   * Stores a validated event and resolves once JetStream acknowledged it. Retries transient
   * failures with the same Nats-Msg-Id until `budgetMs` (or `signal`) runs out, so a retry can
   * never store the event twice.
   */
  publish(
    event: JobEvent,
    body: Uint8Array,
    opts: { budgetMs: number; signal?: AbortSignal },
  ): Promise<StoredEvent>;
}

const ATTEMPT_TIMEOUT_MS = 3_000;
/** Short steps: every retry must land inside the de-duplication window and the caller's budget. */
const PUBLISH_BACKOFF = { baseMs: 50, capMs: 1_000 };
/** A full JOBS stream drains at the relay's pace: ask callers to come back in seconds, not at once. */
const FULL_RETRY_MS = 5_000;

export function createJobEventPublisher(o: JobEventPublisherOptions): JobEventPublisher {
  // Stay clear of the window's edge: a retry landing just after it would be stored a second time.
  const windowBudget = Math.max(1_000, o.duplicateWindowMs - 5_000);

  return {
    async publish(event, body, { budgetMs, signal }) {
      const deadline = Date.now() + Math.min(budgetMs, windowBudget);
      const subject = subjectFor(o.subjectPrefix, event);
      const h = natsHeaders();
      h.set(HEADER.contentType, CONTENT_TYPE.json);
      injectTraceContext(h);
      for (let attempt = 0; ; attempt++) {
        const remaining = deadline - Date.now();
        if (remaining <= 0 || signal?.aborted) {
          throw new PublishUnavailableError("NATS JetStream did not store the event in time; retry", 1_000);
        }
        if (!o.link.connected) {
          await waitAtMost(o.link.whenConnected(signal), remaining);
          continue;
        }
        try {
          const ack = await o.js.publish(subject, body, {
            msgID: natsMsgId(event.tenantId, event.eventId),
            headers: h,
            timeout: Math.min(ATTEMPT_TIMEOUT_MS, remaining),
          });
          return { streamSequence: BigInt(ack.seq), duplicate: ack.duplicate };
        } catch (err) {
          const kind = classifyNatsError(err);
          if (kind === "too_large")
            throw new PublishTooLargeError("event exceeds the stream's size limit", { cause: err });
          if (kind === "full")
            throw new PublishUnavailableError("the JOBS stream is full; retry", FULL_RETRY_MS);
          if (kind === "permanent") throw err;
          o.log.debug({ err, attempt, event_id: event.eventId }, "publish failed; retrying");
          await sleep(
            Math.min(backoffMs(attempt, PUBLISH_BACKOFF), Math.max(0, deadline - Date.now())),
            signal,
          );
        }
      }
    },
  };
}
