import { describe, expect, it } from "vitest";
import { backoffMs } from "../../src/resilience/backoff.js";
import { sleep, waitAtMost } from "../../src/resilience/clock.js";

describe("backoffMs", () => {
  it("doubles from the base each step and stops at the cap", () => {
    const top = () => 1;
    const delays = [0, 1, 2, 3, 4, 5, 40].map((n) => backoffMs(n, { baseMs: 50, capMs: 1_000, random: top }));
    expect(delays).toEqual([50, 100, 200, 400, 800, 1_000, 1_000]);
  });

  it("spreads each step over its upper half, so callers that failed together retry apart", () => {
    expect(backoffMs(2, { baseMs: 100, capMs: 10_000, random: () => 0 })).toBe(200);
    expect(backoffMs(2, { baseMs: 100, capMs: 10_000, random: () => 0.5 })).toBe(300);
    expect(backoffMs(2, { baseMs: 100, capMs: 10_000, random: () => 1 })).toBe(400);
  });

  it("treats a negative step as the first", () => {
    expect(backoffMs(-3, { baseMs: 100, capMs: 1_000, random: () => 1 })).toBe(100);
  });
});

describe("sleep", () => {
  it("ends early, without an error, when its signal aborts", async () => {
    const stop = new AbortController();
    const started = Date.now();
    const slept = sleep(60_000, stop.signal);
    stop.abort();
    await expect(slept).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it("waitAtMost gives up on a promise that never settles", async () => {
    await expect(waitAtMost(new Promise(() => {}), 1)).resolves.toBeUndefined();
  });

  it("waitAtMost takes a rejection as done", async () => {
    await expect(waitAtMost(Promise.reject(new Error("gone")), 60_000)).resolves.toBeUndefined();
  });
});
