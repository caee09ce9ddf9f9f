/**
 * How long a message waits before JetStream redelivers it after a transient Svix failure: capped
 * exponential growth with full jitter (so events that failed together do not retry together),
 * and never sooner than Svix's Retry-After. The cap is short because the circuit, not the
 * backoff, protects Svix during an outage; a short cap means delivery resumes within seconds.
 */
export function retryDelayMs(
  deliveryCount: number,
  retryAfterMs: number | undefined,
  opts: { baseMs?: number; capMs?: number; random?: () => number } = {},
): number {
  const base = opts.baseMs ?? 100;
  const cap = opts.capMs ?? 2_000;
  const random = opts.random ?? Math.random;
  const exp = Math.min(cap, base * 2 ** Math.max(0, Math.min(20, deliveryCount - 1)));
  const jittered = exp / 2 + random() * (exp / 2);
  return Math.round(Math.max(jittered, retryAfterMs ?? 0));
}
