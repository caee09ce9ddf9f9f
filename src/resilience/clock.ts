import { setTimeout as delay } from "node:timers/promises";

/**
 * Time as a collaborator: the reading and the waiting. Code that waits on purpose (the circuit
 * between probes) takes one, so a test drives it with a fake clock instead of real time.
 */
export interface Clock {
  now(): number;
  /** Waits `ms`, or less when `signal` aborts; never rejects (the caller checks the signal). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Waits `ms`, or less when `signal` aborts; never rejects (the caller checks the signal). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, undefined, signal ? { signal } : {}).catch(() => undefined);
}

export const systemClock: Clock = { now: () => Date.now(), sleep };

/** Waits for `p` (its rejection counts as done) but no longer than `ms`. */
export async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  const stop = new AbortController();
  await Promise.race([p.catch(() => undefined), sleep(ms, stop.signal)]);
  stop.abort(); // clears the timer when `p` won
}
