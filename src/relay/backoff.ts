import { backoffMs } from "../resilience/backoff.js";

/**
 * How long a message waits before JetStream redelivers it after a transient Svix failure: the
 * service's jittered capped backoff (so events that failed together do not retry together), and
 * never sooner than Svix's Retry-After. JetStream owns the timer (the delay goes into the nak), so
 * this is a pure function of the delivery count. The cap is short because the circuit, not the
 * backoff, protects Svix during an outage; a short cap means delivery resumes within seconds.
 */
export function retryDelayMs(
  deliveryCount: number,
  retryAfterMs: number | undefined,
  opts: { baseMs?: number; capMs?: number; random?: () => number } = {},
): number {
  const jittered = backoffMs(deliveryCount - 1, {
    baseMs: opts.baseMs ?? 100,
    capMs: opts.capMs ?? 2_000,
    random: opts.random,
  });
  return Math.round(Math.max(jittered, retryAfterMs ?? 0));
}
