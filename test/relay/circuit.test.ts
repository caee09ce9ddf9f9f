import { describe, expect, it } from "vitest";
import { retryDelayMs } from "../../src/relay/backoff.js";
import { type Admission, Circuit } from "../../src/relay/circuit.js";
import { createFakeClock, type FakeClock } from "../support/fake-clock.js";

const never = new AbortController().signal;

/** What a pending admission resolved to, read without awaiting it. */
function track(p: Promise<Admission>): { value: Admission | undefined } {
  const t: { value: Admission | undefined } = { value: undefined };
  void p.then((a) => {
    t.value = a;
  });
  return t;
}

/** A caller asking now gets the probe exactly `ms` later, not a millisecond sooner. */
async function expectProbeAfter(c: Circuit, clock: FakeClock, ms: number): Promise<void> {
  const next = c.admit(never);
  const turn = track(next);
  await clock.advance(ms - 1);
  expect(turn.value).toBeUndefined();
  await clock.advance(1);
  expect(await next).toBe("probe");
}

/** With a probe in flight, however long it takes, a second caller waits; its success lets it send. */
async function expectOneProbeAtATime(c: Circuit, clock: FakeClock): Promise<void> {
  expect(await c.admit(never)).toBe("probe");
  const waiting = c.admit(never);
  const second = track(waiting);
  await clock.advance(10_000);
  expect(second.value).toBeUndefined();
  c.success("probe");
  expect(await waiting).toBe("send");
}

describe("Circuit", () => {
  it("lets everything through while Svix answers", async () => {
    const c = new Circuit({ failureThreshold: 3, clock: createFakeClock() });
    expect(await c.admit(never)).toBe("send");
    c.failure("send");
    c.failure("send");
    c.success("send");
    c.failure("send");
    c.failure("send");
    expect(c.current).toBe("closed");
  });

  it("opens after consecutive failures and then admits one probe at a time", async () => {
    const clock = createFakeClock();
    const changes: string[] = [];
    const c = new Circuit({
      failureThreshold: 3,
      probeIntervalMs: 1_000,
      clock,
      onChange: (s) => changes.push(s),
    });
    for (let i = 0; i < 3; i++) c.failure("send");
    expect(c.current).toBe("open");
    expect(changes).toEqual(["open"]);

    await clock.advance(1_000);
    await expectOneProbeAtATime(c, clock);
    expect(c.current).toBe("closed");
    expect(changes).toEqual(["open", "closed"]);
  });

  it("a failed probe waits a full interval before the next", async () => {
    const clock = createFakeClock();
    const c = new Circuit({ failureThreshold: 1, probeIntervalMs: 1_000, clock });
    c.failure("send");
    await clock.advance(1_000);
    expect(await c.admit(never)).toBe("probe");
    c.failure("probe");
    await expectProbeAfter(c, clock, 1_000);
  });

  it("a caller waiting for its turn stops waiting when its signal aborts", async () => {
    const clock = createFakeClock();
    const c = new Circuit({ failureThreshold: 1, probeIntervalMs: 1_000, clock });
    c.failure("send");
    const stop = new AbortController();
    const waiting = c.admit(stop.signal);
    await clock.advance(100);
    stop.abort();
    await expect(waiting).rejects.toThrow();
    expect(clock.sleeping).toBe(0);
  });

  it("hands the probe to another caller when a probe ends without an answer", async () => {
    const clock = createFakeClock();
    const c = new Circuit({ failureThreshold: 1, probeIntervalMs: 1_000, clock });
    c.failure("send");
    await clock.advance(1_000);
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
  it("a replica that just started sends one probe at a time until Svix has answered once", async () => {
    const clock = createFakeClock();
    const c = new Circuit({ startUnproven: true, probeIntervalMs: 1_000, clock });
    expect(c.current).toBe("closed"); // nothing known to be wrong
    expect(c.answering).toBe(false);
    await expectOneProbeAtATime(c, clock);
    expect(c.answering).toBe(true);
  });

  it("a first probe that fails makes a real outage: open, next probe an interval later", async () => {
    const clock = createFakeClock();
    const changes: string[] = [];
    const c = new Circuit({
      startUnproven: true,
      probeIntervalMs: 1_000,
      clock,
      onChange: (s) => changes.push(s),
    });
    expect(await c.admit(never)).toBe("probe");
    c.failure("probe");
    expect(c.current).toBe("open");
    expect(changes).toEqual(["open"]);
    await expectProbeAfter(c, clock, 1_000);
  });

  it("Svix's Retry-After moves the next probe later than the interval", async () => {
    const clock = createFakeClock();
    const c = new Circuit({ failureThreshold: 1, probeIntervalMs: 1_000, clock });
    c.failure("send", 30_000);
    await expectProbeAfter(c, clock, 30_000);
    c.failure("probe", 10_000);
    await expectProbeAfter(c, clock, 10_000);
  });

  it("a message waiting for its turn is kept alive every five seconds", async () => {
    const clock = createFakeClock();
    const c = new Circuit({ failureThreshold: 1, probeIntervalMs: 1_000, clock });
    c.failure("send", 30_000);
    let keptAlive = 0;
    const waiting = c.admit(never, () => keptAlive++);
    await clock.advance(29_999);
    expect(keptAlive).toBe(5); // at 5, 10, 15, 20 and 25 s: JetStream's ack_wait never runs out
    await clock.advance(1);
    expect(await waiting).toBe("probe");
  });
});
