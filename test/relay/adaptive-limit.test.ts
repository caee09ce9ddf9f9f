import { describe, expect, it } from "vitest";
import { AdaptiveLimit } from "../../src/relay/adaptive-limit.js";

const never = new AbortController().signal;

async function fill(l: AdaptiveLimit): Promise<number> {
  let n = 0;
  while (l.active < l.limit) {
    await l.acquire(never);
    n++;
  }
  return n;
}

describe("AdaptiveLimit: the replica's Svix budget", () => {
  it("starts small and doubles per round of accepted calls up to the ceiling", async () => {
    const l = new AdaptiveLimit({ max: 64, initial: 4 });
    const rounds: number[] = [];
    for (let r = 0; r < 6; r++) {
      const n = await fill(l);
      rounds.push(n);
      for (let i = 0; i < n; i++) l.release("accepted");
    }
    expect(rounds).toEqual([4, 8, 16, 32, 64, 64]);
  });

  it("halves on a 429, once per burst, and then grows back one call at a time", async () => {
    let now = 0;
    const l = new AdaptiveLimit({ max: 64, initial: 64, decreaseIntervalMs: 250, now: () => now });
    await fill(l);
    for (let i = 0; i < 10; i++) l.release("throttled"); // the same burst: counts once
    expect(l.limit).toBe(32);
    now = 300;
    for (let i = 0; i < 54; i++) l.release("accepted");
    expect(l.limit).toBeGreaterThan(32);
    expect(l.limit).toBeLessThan(36); // additive, not slow start again
  });

  it("never goes below one call, and other failures leave it alone", async () => {
    let now = 0;
    const l = new AdaptiveLimit({ max: 8, initial: 8, now: () => now });
    for (let i = 0; i < 10; i++) {
      await l.acquire(never);
      l.release("throttled");
      now += 1_000;
    }
    expect(l.limit).toBe(1);
    await l.acquire(never);
    l.release("other");
    expect(l.limit).toBe(1);
  });

  it("makes callers wait for room and lets a stopping caller go", async () => {
    const l = new AdaptiveLimit({ max: 1, initial: 1 });
    await l.acquire(never);
    const stop = new AbortController();
    const waiting = l.acquire(stop.signal);
    stop.abort();
    await expect(waiting).rejects.toBeDefined();
    const next = l.acquire(never);
    l.release("accepted");
    await next;
    expect(l.active).toBe(1);
  });
});
