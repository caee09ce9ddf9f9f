import { describe, expect, it } from "vitest";
import { retryDelayMs } from "../../src/relay/backoff.js";
import { Circuit } from "../../src/relay/circuit.js";

describe("Circuit", () => {
  const never = new AbortController().signal;

  it("lets everything through while Svix answers", async () => {
    const c = new Circuit({ failureThreshold: 3 });
    expect(await c.admit(never)).toBe("send");
    c.failure("send");
    c.failure("send");
    c.success("send");
    c.failure("send");
    c.failure("send");
    expect(c.current).toBe("closed");
  });

  it("opens after consecutive failures and then admits one probe at a time", async () => {
    let now = 0;
    const changes: string[] = [];
    const c = new Circuit({
      failureThreshold: 3,
      probeIntervalMs: 1_000,
      now: () => now,
      onChange: (s) => changes.push(s),
    });
    for (let i = 0; i < 3; i++) c.failure("send");
    expect(c.current).toBe("open");
    expect(changes).toEqual(["open"]);

    now = 1_000;
    expect(await c.admit(never)).toBe("probe");
    const waiting = c.admit(never);
    let second: string | undefined;
    void waiting.then((a) => {
      second = a;
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(second).toBeUndefined(); // only one probe in flight

    c.success("probe");
    expect(await waiting).toBe("send");
    expect(c.current).toBe("closed");
    expect(changes).toEqual(["open", "closed"]);
  });

  it("a failed probe waits a full interval before the next", async () => {
    let now = 0;
    const c = new Circuit({ failureThreshold: 1, probeIntervalMs: 1_000, now: () => now });
    c.failure("send");
    now = 1_000;
    expect(await c.admit(never)).toBe("probe");
    c.failure("probe");
    const aborted = new AbortController();
    const next = c.admit(aborted.signal);
    now = 1_500;
    await new Promise((r) => setTimeout(r, 30));
    aborted.abort();
    await expect(next).rejects.toThrow();
    now = 2_000;
    expect(await c.admit(never)).toBe("probe");
  });

  it("hands the probe to another caller when a probe ends without an answer", async () => {
    let now = 0;
    const c = new Circuit({ failureThreshold: 1, probeIntervalMs: 1_000, now: () => now });
    c.failure("send");
    now = 1_000;
    expect(await c.admit(never)).toBe("probe");
    c.release("probe");
    expect(await c.admit(never)).toBe("probe");
  });
});

describe("retryDelayMs", () => {
  const mid = () => 0.5;

  it("grows exponentially from the base and stops at the cap", () => {
    const delays = [1, 2, 3, 4, 5, 6, 10].map((n) =>
      retryDelayMs(n, undefined, { baseMs: 100, capMs: 2_000, random: () => 1 }),
    );
    expect(delays).toEqual([100, 200, 400, 800, 1_600, 2_000, 2_000]);
  });

  it("jitters between half and all of the exponential step", () => {
    expect(retryDelayMs(3, undefined, { baseMs: 100, random: () => 0 })).toBe(200);
    expect(retryDelayMs(3, undefined, { baseMs: 100, random: () => 1 })).toBe(400);
    expect(retryDelayMs(3, undefined, { baseMs: 100, random: mid })).toBe(300);
  });

  it("never retries sooner than Svix's Retry-After", () => {
    expect(retryDelayMs(1, 5_000, { random: mid })).toBe(5_000);
    expect(retryDelayMs(1, 10, { baseMs: 100, random: mid })).toBe(75);
  });
});

describe("Circuit at start and under Retry-After", () => {
  const never = new AbortController().signal;

  it("a replica that just started sends one probe at a time until Svix has answered once", async () => {
    const now = 0;
    const c = new Circuit({ startUnproven: true, probeIntervalMs: 1_000, now: () => now });
    expect(c.current).toBe("closed"); // nothing known to be wrong
    expect(c.answering).toBe(false);
    expect(await c.admit(never)).toBe("probe");
    let second: string | undefined;
    void c.admit(never).then((a) => {
      second = a;
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(second).toBeUndefined();
    c.success("probe");
    await new Promise((r) => setTimeout(r, 0));
    expect(second).toBe("send");
    expect(c.answering).toBe(true);
  });

  it("a first probe that fails makes a real outage: open, next probe an interval later", async () => {
    const now = 0;
    const changes: string[] = [];
    const c = new Circuit({
      startUnproven: true,
      probeIntervalMs: 1_000,
      now: () => now,
      onChange: (s) => changes.push(s),
    });
    expect(await c.admit(never)).toBe("probe");
    c.failure("probe");
    expect(c.current).toBe("open");
    expect(changes).toEqual(["open"]);
  });

  it("Svix's Retry-After moves the next probe later than the interval", async () => {
    let now = 0;
    const c = new Circuit({ failureThreshold: 1, probeIntervalMs: 1_000, now: () => now });
    c.failure("send", 30_000);
    now = 1_000;
    const aborted = new AbortController();
    const early = c.admit(aborted.signal);
    await new Promise((r) => setTimeout(r, 30));
    aborted.abort();
    await expect(early).rejects.toThrow();
    now = 30_000;
    expect(await c.admit(never)).toBe("probe");
    c.failure("probe", 10_000);
    now = 39_000;
    const stillEarly = new AbortController();
    const p = c.admit(stillEarly.signal);
    await new Promise((r) => setTimeout(r, 30));
    stillEarly.abort();
    await expect(p).rejects.toThrow();
    now = 40_000;
    expect(await c.admit(never)).toBe("probe");
  });
});
