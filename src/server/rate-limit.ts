/**
 * Token buckets per caller, so one customer cannot spend the Svix quota every customer shares. A
 * bucket holds `burst` tokens and refills `perMinute` a minute; a call takes one or is told how
 * long until one is there.
 */

export type RateDecision = { kind: "allowed" } | { kind: "limited"; retryAfterMs: number };

export interface RateLimiter {
  take(caller: string): RateDecision;
}

export interface RateLimiterOptions {
  perMinute: number;
  burst: number;
  /** Buckets kept at most; full ones (idle callers) are dropped first, since a fresh bucket is full too. */
  maxCallers?: number;
  now?: () => number;
}

export function createRateLimiter(o: RateLimiterOptions): RateLimiter {
  const now = o.now ?? Date.now;
  const perMs = o.perMinute / 60_000;
  const maxCallers = o.maxCallers ?? 100_000;
  const buckets = new Map<string, { tokens: number; at: number }>();

  const refilled = (b: { tokens: number; at: number }, t: number) =>
    Math.min(o.burst, b.tokens + (t - b.at) * perMs);

  function makeRoom(t: number): void {
    if (buckets.size < maxCallers) return;
    for (const [caller, b] of buckets) {
      if (refilled(b, t) >= o.burst) buckets.delete(caller);
    }
    // Still full of busy callers: forget the oldest, which at worst gives it a fresh burst.
    while (buckets.size >= maxCallers) buckets.delete(buckets.keys().next().value as string);
  }

  return {
    take(caller) {
      const t = now();
      let b = buckets.get(caller);
      if (!b) {
        makeRoom(t);
        b = { tokens: o.burst, at: t };
        buckets.set(caller, b);
      }
      b.tokens = refilled(b, t);
      b.at = t;
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return { kind: "allowed" };
      }
      return { kind: "limited", retryAfterMs: Math.ceil((1 - b.tokens) / perMs) };
    },
  };
}
