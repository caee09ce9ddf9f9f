import { BoundedMap } from "../resilience/bounded-map.js";
import { createRateLimiter } from "./rate-limit.js";

/**
 * Failed authentications per client address. An address that keeps presenting unknown
 * credentials is refused for a while before any verifier runs, so guessing keys costs the
 * guesser, not NATS (each unknown API key is a KV look-up).
 */
export interface FailedAuthLimiter {
  /** Milliseconds until this address may try again, or 0 when it may try now. */
  blockedForMs(address: string): number;
  /** Counts one failed authentication of this address. */
  failed(address: string): void;
}

export interface FailedAuthLimiterOptions {
  /** Failures an address may make in a burst. Default 30. */
  burst?: number;
  /** Failures per minute an address regains. Default 60. */
  perMinute?: number;
  /** Addresses tracked at most. Default 100 000. */
  maxAddresses?: number;
  now?: () => number;
}

export function createFailedAuthLimiter(o: FailedAuthLimiterOptions = {}): FailedAuthLimiter {
  const now = o.now ?? Date.now;
  const maxAddresses = o.maxAddresses ?? 100_000;
  const buckets = createRateLimiter({
    perMinute: o.perMinute ?? 60,
    burst: o.burst ?? 30,
    maxCallers: maxAddresses,
    now,
  });
  const blockedUntil = new BoundedMap<string, number>(maxAddresses);
  return {
    blockedForMs(address) {
      const until = blockedUntil.get(address);
      if (until === undefined) return 0;
      const left = until - now();
      if (left > 0) return left;
      blockedUntil.delete(address);
      return 0;
    },
    failed(address) {
      const decision = buckets.take(address);
      if (decision.kind === "allowed") return;
      blockedUntil.set(address, now() + decision.retryAfterMs);
    },
  };
}
