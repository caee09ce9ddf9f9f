import { describe, expect, it } from "vitest";
import { createRateLimiter } from "../../src/server/rate-limit.js";

describe("the portal rate limit", () => {
  const clock = () => {
    let t = 1_000_000;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };

  it("allows a burst, then refuses with the time until the next call is allowed", () => {
    const c = clock();
    const limiter = createRateLimiter({ perMinute: 30, burst: 3, now: c.now });
    for (let i = 0; i < 3; i++) expect(limiter.take("k")).toEqual({ kind: "allowed" });
    expect(limiter.take("k")).toEqual({ kind: "limited", retryAfterMs: 2_000 });
    c.advance(1_000);
    expect(limiter.take("k")).toEqual({ kind: "limited", retryAfterMs: 1_000 });
    c.advance(1_000);
    expect(limiter.take("k")).toEqual({ kind: "allowed" });
  });

  it("refills at the configured rate and never above the burst", () => {
    const c = clock();
    const limiter = createRateLimiter({ perMinute: 60, burst: 2, now: c.now });
    limiter.take("k");
    limiter.take("k");
    c.advance(3_600_000);
    expect(limiter.take("k").kind).toBe("allowed");
    expect(limiter.take("k").kind).toBe("allowed");
    expect(limiter.take("k").kind).toBe("limited");
  });

  it("each caller has its own bucket", () => {
    const c = clock();
    const limiter = createRateLimiter({ perMinute: 1, burst: 1, now: c.now });
    expect(limiter.take("a").kind).toBe("allowed");
    expect(limiter.take("a").kind).toBe("limited");
    expect(limiter.take("b").kind).toBe("allowed");
  });

  it("keeps at most maxCallers buckets, dropping idle ones first", () => {
    const c = clock();
    const limiter = createRateLimiter({ perMinute: 1, burst: 1, maxCallers: 2, now: c.now });
    limiter.take("busy");
    limiter.take("idle");
    c.advance(60_000); // both full again
    limiter.take("busy"); // busy is empty now
    limiter.take("new"); // needs room: idle (full) goes, busy stays
    expect(limiter.take("busy").kind).toBe("limited");
  });
});
