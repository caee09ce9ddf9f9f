import { describe, expect, it } from "vitest";
import { JobTurns } from "../../src/relay/job-turn.js";
import { createFakeClock } from "../support/fake-clock.js";

/** A job's stored events (stream sequences), as the work-queue stream holds them. */
function fakeStream(...seqs: number[]) {
  const stored = new Set(seqs);
  return {
    stored,
    firstStored: async () => (stored.size === 0 ? undefined : Math.min(...stored)),
  };
}

function turns(o: { held?: Set<number>; maxWaiting?: number } = {}) {
  const clock = createFakeClock();
  const held = o.held ?? new Set<number>();
  const t = new JobTurns({
    isHeld: (seq) => held.has(seq),
    callTimeMs: () => 40,
    clock,
    maxWaiting: o.maxWaiting ?? 10,
    signal: new AbortController().signal,
  });
  return { t, clock };
}

describe("JobTurns: an event is sent only when it is its job's first stored event", () => {
  it("the job's first stored event goes at once", async () => {
    const { t } = turns();
    const stream = fakeStream(7, 9);
    expect(await t.of("a.job", 7, stream.firstStored)).toBe("first");
  });

  it("a later event waits while its predecessor is being sent elsewhere, and goes once it is acked", async () => {
    const { t, clock } = turns();
    const stream = fakeStream(7, 9);
    const turn = t.of("a.job", 9, stream.firstStored);
    await clock.advance(100);
    expect(t.waiting).toBe(1);
    stream.stored.delete(7); // acked by another replica
    await clock.advance(200);
    expect(await turn).toBe("first");
  });

  it("is handed back when the predecessor stays stored for two seconds, and the job's next event does not wait for it again", async () => {
    const { t, clock } = turns();
    const stream = fakeStream(7, 9, 11);
    const turn = t.of("a.job", 9, stream.firstStored);
    await clock.advance(2_500);
    expect(await turn).toBe("not_first");
    expect(await t.of("a.job", 11, stream.firstStored)).toBe("not_first");
    expect(clock.sleeping).toBe(0);
  });

  it("gives way to a predecessor this process holds (queued behind it after a redelivery)", async () => {
    const { t } = turns({ held: new Set([7]) });
    const stream = fakeStream(7, 9);
    expect(await t.of("a.job", 9, stream.firstStored)).toBe("behind_held");
  });

  it("an event no longer stored (a later one of its job is first) is settled without a send", async () => {
    const { t } = turns();
    const stream = fakeStream(9);
    expect(await t.of("a.job", 7, stream.firstStored)).toBe("gone");
  });

  it("nothing stored for the job is not taken as gone (a lagging stream replica may not have it yet)", async () => {
    const { t, clock } = turns();
    const stream = fakeStream();
    const turn = t.of("a.job", 7, stream.firstStored);
    await clock.advance(100);
    stream.stored.add(7); // the replica caught up
    await clock.advance(200);
    expect(await turn).toBe("first");
  });

  it("only so many events wait at once; the rest are handed back straight away", async () => {
    const { t, clock } = turns({ maxWaiting: 2 });
    const stream = fakeStream(1, 2, 3, 4);
    const waiting = [t.of("a.j2", 2, stream.firstStored), t.of("a.j3", 3, stream.firstStored)];
    await clock.advance(1);
    expect(await t.of("a.j4", 4, stream.firstStored)).toBe("not_first");
    stream.stored.delete(1);
    stream.stored.delete(2);
    stream.stored.delete(3);
    await clock.advance(2_500);
    expect(await Promise.all(waiting)).toEqual(["gone", "gone"]);
  });
});
