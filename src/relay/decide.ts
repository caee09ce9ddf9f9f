import { clampRetryAfter } from "../svix/classify.js";
import type { MessageOutcome } from "../svix/gateway.js";
import { retryDelayMs } from "./backoff.js";

/** An age alone never dead-letters an event this process has not tried a few times itself:
 * after a long outage every waiting event is old, and each deserves fresh attempts. */
const MIN_ATTEMPTS_BEFORE_AGE_LIMIT = 3;

export interface RetryLimits {
  /** Failed Svix attempts (counted by this process) after which an event is dead-lettered. */
  maxAttempts: number;
  /** Age (since JetStream stored the event) after which a failing event is dead-lettered. */
  maxAgeMs: number;
  /** Upper bound of the redelivery backoff after a failure. */
  maxRetryDelayMs: number;
}

export interface DecisionInput {
  outcome: MessageOutcome;
  /** Svix attempts of this event, this one included. */
  attempts: number;
  /** Time since JetStream stored the event. */
  ageMs: number;
  /** Whether Svix answers other requests (the circuit is closed): only then is a failure the
   * event's own fault rather than an outage. */
  svixAnswering: boolean;
  limits: RetryLimits;
  random?: () => number;
}

export type Decision =
  | { action: "ack"; outcome: "relayed" | "already_sent" }
  | { action: "retry"; delayMs: number; cause: "svix" | "bug"; reason: string }
  | { action: "dead_letter"; reason: "svix_rejected" | "retries_exhausted"; detail: string };

/**
 * What happens to a JetStream message after one Svix attempt. Pure: the relay performs the
 * decision (ack, nak with a delay, dead letter), this function only makes it.
 *
 * - Svix accepted it (2xx, or 409: it has the event id already) → ack.
 * - Svix refused the request itself (400/413/422) → dead letter: retrying cannot succeed.
 * - A transient failure → retry after a capped, jittered backoff, never sooner than Svix's
 *   Retry-After (clamped). While Svix answers others, an event that keeps failing is dead-lettered
 *   after `maxAttempts` attempts or `maxAgeMs` of age; during an outage nothing is.
 * - Our own bug → retry, keeping the event: a fix and a restart deliver it.
 */
export function decide(input: DecisionInput): Decision {
  const { outcome, limits } = input;
  switch (outcome.kind) {
    case "created":
      return { action: "ack", outcome: "relayed" };
    case "already_sent":
      return { action: "ack", outcome: "already_sent" };
    case "permanent":
      return { action: "dead_letter", reason: "svix_rejected", detail: outcome.reason };
    case "internal":
      return {
        action: "retry",
        delayMs: retryDelayMs(input.attempts, undefined, backoffOptions(input)),
        cause: "bug",
        reason: outcome.reason,
      };
    case "transient": {
      if (input.svixAnswering) {
        if (input.attempts >= limits.maxAttempts) {
          return exhausted(`${input.attempts} attempts failed; last: ${outcome.reason}`);
        }
        if (input.ageMs >= limits.maxAgeMs && input.attempts >= MIN_ATTEMPTS_BEFORE_AGE_LIMIT) {
          const hours = (input.ageMs / 3_600_000).toFixed(1);
          return exhausted(`still failing ${hours} h after it was stored; last: ${outcome.reason}`);
        }
      }
      return {
        action: "retry",
        delayMs: retryDelayMs(input.attempts, clampRetryAfter(outcome.retryAfterMs), backoffOptions(input)),
        cause: "svix",
        reason: outcome.reason,
      };
    }
  }
}

function exhausted(detail: string): Decision {
  return { action: "dead_letter", reason: "retries_exhausted", detail };
}

function backoffOptions(input: DecisionInput): { capMs: number; random?: () => number } {
  return { capMs: input.limits.maxRetryDelayMs, ...(input.random ? { random: input.random } : {}) };
}
