import { setImmediate as nextTurn } from "node:timers/promises";
import type { Clock } from "../../src/resilience/clock.js";

/**
 * A clock that moves only when the test says so. `advance` wakes every sleeper due in order, each
 * at its own time, and lets the code it wakes run (and sleep again) before moving on, so a loop that
 * sleeps in steps sees the same sequence of times it would in real time.
 */
export interface FakeClock extends Clock {
  advance(ms: number): Promise<void>;
  /** Sleepers not yet woken. */
  readonly sleeping: number;
}

export function createFakeClock(start = 0): FakeClock {
  let now = start;
  const sleepers = new Set<{ at: number; wake: () => void }>();
  const settle = () => nextTurn(); // lets woken code run up to its next await on the clock

  return {
    now: () => now,
    get sleeping() {
      return sleepers.size;
    },
    sleep(ms, signal) {
      return new Promise((resolve) => {
        const sleeper = {
          at: now + ms,
          wake: () => {
            sleepers.delete(sleeper);
            signal?.removeEventListener("abort", sleeper.wake);
            resolve();
          },
        };
        if (signal?.aborted) return resolve();
        sleepers.add(sleeper);
        signal?.addEventListener("abort", sleeper.wake, { once: true });
      });
    },
    async advance(ms) {
      const until = now + ms;
      await settle();
      for (let i = 0; i < 10_000; i++) {
        const due = [...sleepers].filter((s) => s.at <= until).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        now = Math.max(now, due.at);
        due.wake();
        await settle();
      }
      now = until;
      await settle();
    },
  };
}
