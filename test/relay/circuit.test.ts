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
