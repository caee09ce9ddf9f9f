import { describe, expect, it } from "vitest";
import { FairScheduler } from "../../src/relay/fair-scheduler.js";
import { RatePacer } from "../../src/relay/rate-pacer.js";
import { createFakeClock } from "../support/fake-clock.js";

const never = new AbortController().signal;

/** Queues `n` calls of `tenant`; each records its tenant in `order` when granted. */
function queue(s: FairScheduler, tenant: string, n: number, order: string[]): Promise<void>[] {
  return Array.from({ length: n }, () => s.take(tenant, never).then(() => void order.push(tenant)));
}

/** A scheduler closed until `open(capacity)`: every call is queued before the first grant. */
function closedScheduler(o: { weightOf?: (t: string) => number } = {}) {
  let capacity = 0;
  const s = new FairScheduler({ capacity: () => capacity, ...o });
  const open = (n: number) => {
    capacity = n;
    s.nudge();
  };
  return { s, open };
}

/** Lets granted calls record themselves, then ends `n` of them one at a time. */
async function finish(s: FairScheduler, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await Promise.resolve();
    s.release();
  }
  await new Promise((r) => setImmediate(r));
}

describe("FairScheduler: the Svix budget shared by tenant", () => {
  it("a tenant that queued one call goes before the rest of another tenant's burst", async () => {
    const { s, open } = closedScheduler();
    const order: string[] = [];
    queue(s, "bulk", 1_000, order);
    queue(s, "small", 1, order);
    open(1);
    await finish(s, 2);
    expect(order.slice(0, 3)).toEqual(["bulk", "small", "bulk"]);
  });

  it("tenants waiting together get equal shares whatever order they queued in", async () => {
    const { s, open } = closedScheduler();
    const order: string[] = [];
    queue(s, "a", 300, order);
    queue(s, "b", 300, order);
    queue(s, "c", 300, order);
    open(4);
    await finish(s, 296);
    const counts = Object.fromEntries(["a", "b", "c"].map((t) => [t, order.filter((o) => o === t).length]));
    expect(counts).toEqual({ a: 100, b: 100, c: 100 });
  });

  it("a tenant alone gets the whole budget (nothing is held back)", async () => {
    const s = new FairScheduler({ capacity: () => 8 });
    const order: string[] = [];
    queue(s, "alone", 20, order);
    await finish(s, 0);
    expect(order).toHaveLength(8);
    expect(s.inFlight).toBe(8);
  });

  it("weights share the budget in proportion, also fractional ones, and can change while waiting", async () => {
    const weights: Record<string, number> = { paid: 3, free: 1, trial: 0.5 };
    const { s, open } = closedScheduler({ weightOf: (t) => weights[t] ?? 1 });
    const order: string[] = [];
    queue(s, "paid", 1_000, order);
    queue(s, "free", 1_000, order);
    queue(s, "trial", 1_000, order);
    open(1);
    await finish(s, 449);
    const count = (t: string) => order.filter((o) => o === t).length;
    expect([count("paid"), count("free"), count("trial")]).toEqual([300, 100, 50]);
    weights.paid = 1;
    order.length = 0;
    await finish(s, 250);
    expect(Math.abs(count("paid") - count("free"))).toBeLessThanOrEqual(3);
  });

  it("reports how many tenants and calls wait and since when; an aborted wait leaves the queue", async () => {
    const clock = createFakeClock(1_000);
    const s = new FairScheduler({ capacity: () => 1, clock });
    const order: string[] = [];
    queue(s, "a", 1, order);
    await clock.advance(500);
    queue(s, "b", 2, order);
    const gone = new AbortController();
    const aborted = s.take("c", gone.signal);
    // a runs; b's two calls and c's one wait
    expect(s.waiting()).toEqual({ calls: 3, tenants: 2, oldestSince: 1_500 });
    gone.abort(new Error("stopping"));
    await expect(aborted).rejects.toThrow("stopping");
    expect(s.waiting()).toMatchObject({ calls: 2, tenants: 1 });
    await finish(s, 2);
    expect(order).toEqual(["a", "b", "b"]);
    expect(s.waiting()).toEqual({ calls: 0, tenants: 0, oldestSince: undefined });
  });

  it("under a learned rate limit calls start no faster than the pace, still taking turns by tenant", async () => {
    const clock = createFakeClock(0);
    const pacer = new RatePacer({ now: clock.now });
    const s = new FairScheduler({ capacity: () => 100, pacer, clock });
    // Svix accepted 360 calls in the last second, then answered 429: pace at half of that.
    for (let i = 0; i < 360; i++) pacer.record("accepted");
    pacer.record("throttled");
    expect(pacer.ratePerSecond).toBe(180);
    const order: string[] = [];
    queue(s, "bulk", 500, order);
    queue(s, "small", 5, order);
    await clock.advance(100);
    // 18 calls in 100 ms at 180/s (one more for the bucket's first token)
    expect(order.length).toBeGreaterThanOrEqual(18);
    expect(order.length).toBeLessThanOrEqual(20);
    expect(order.filter((t) => t === "small")).toHaveLength(5);
  });
});

describe("RatePacer: Svix's rate limit, learned from 429s", () => {
  it("is unlimited until Svix answers 429, then paces at half of what Svix accepted (overstated by its bucket's burst)", () => {
    let now = 0;
    const p = new RatePacer({ now: () => now });
    for (let i = 0; i < 800; i++) {
      now = i * 1.25;
      expect(p.delayMs()).toBe(0);
      p.record("accepted");
    }
    p.record("throttled");
    expect(p.ratePerSecond).toBeCloseTo(400, 0);
    p.took();
    expect(p.delayMs()).toBeGreaterThan(0);
  });

  it("429s of one burst lower it once; later ones lower it to what Svix let through since", () => {
    let now = 0;
    const p = new RatePacer({ now: () => now });
    // A full bucket let 200 through in the first second: a guess too high
    for (let i = 0; i < 200; i++) p.record("accepted");
    for (let i = 0; i < 10; i++) p.record("throttled");
    expect(p.ratePerSecond).toBeCloseTo(100, 0);
    // the next second Svix let 100 through and answered 429 again
    for (let i = 0; i < 100; i++) {
      now = 1_000 + i * 9;
      p.record("accepted");
    }
    p.record("throttled");
    expect(p.ratePerSecond).toBeCloseTo(90, 0);
    // and again, paced below what it let through: 90 % of the pace
    now = 2_500;
    for (let i = 0; i < 100; i++) p.record("accepted");
    p.record("throttled");
    expect(p.ratePerSecond).toBeCloseTo(81, 0);
  });

  it("grows back while the pace is what holds calls back (fast far below the last 429's rate, slowly near it), and not while demand is below it", () => {
    let now = 0;
    const p = new RatePacer({ now: () => now });
    for (let i = 0; i < 100; i++) p.record("accepted");
    p.record("throttled");
    const learned = p.ratePerSecond ?? 0; // half of the 100 Svix let through
    now = 5_000;
    p.record("accepted"); // demand below the pace: nothing to find out
    expect(p.ratePerSecond).toBe(learned);
    const holdBack = () => {
      while (p.delayMs() === 0) p.took();
    };
    for (let s = 6; s <= 10; s++) {
      now = s * 1_000;
      holdBack();
      p.record("accepted");
    }
    // 10 % a second up to 80 % of the last 429's rate (100), then 1 %: near it, not past it
    expect(p.ratePerSecond).toBeGreaterThan(80);
    expect(p.ratePerSecond).toBeLessThan(90);
    // past it without a 429, it grows by 10 % a second
    let second = 11;
    for (; (p.ratePerSecond ?? 0) <= 100 && second < 200; second++) {
      now = second * 1_000;
      holdBack();
      p.record("accepted");
    }
    const past = p.ratePerSecond ?? 0;
    for (const end = second + 5; second < end; second++) {
      now = second * 1_000;
      holdBack();
      p.record("accepted");
    }
    expect(p.ratePerSecond).toBeGreaterThan(past * 1.5);
  });
});
