/** How a capped exponential backoff grows; `random` is there so tests can pin the jitter. */
export interface BackoffOptions {
  /** The delay of step 0, before jitter. */
  baseMs: number;
  /** No delay grows past this, before jitter. */
  capMs: number;
  random?: () => number;
}

/**
 * The delay before retry number `step` (0 for the first retry): `baseMs · 2^step`, capped at
 * `capMs`, then spread at random over the upper half of that. Every retry loop of the service
 * (publishing, provisioning, event-type registration, the relay's nak delays) waits this long, so
 * callers that failed together do not retry together, yet none retries sooner than half its step.
 */
export function backoffMs(step: number, o: BackoffOptions): number {
  // Past 2^30 every sensible base is over its cap; clamping keeps the arithmetic finite.
  const exp = Math.min(o.capMs, o.baseMs * 2 ** Math.max(0, Math.min(30, step)));
  const random = o.random ?? Math.random;
  return exp / 2 + random() * (exp / 2);
}
