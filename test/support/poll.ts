/**
 * The one way tests wait for something another process or timer brings about: ask again every
 * `everyMs` until `check` answers a value, and fail naming what was awaited, never a fixed sleep.
 */

export interface UntilOptions {
  /** Longest wait before failing. Default 10 s: generous on a 2-core machine shared with others. */
  timeoutMs?: number;
  /** Pause between checks. Default 50 ms. */
  everyMs?: number;
}

/** What `until` throws when the time is up (a check that throws fails with its own error). */
export class WaitTimedOut extends Error {
  override name = "WaitTimedOut";
}

/**
 * Polls `check` until it answers anything but `undefined`, `null` or `false`, and returns that
 * answer (so `until("the delivery", () => received.find(...))` hands back the delivery). After
 * `timeoutMs` it throws `timed out after … waiting for <what>`; a check that throws fails at once.
 */
export async function until<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  { timeoutMs = 10_000, everyMs = 50 }: UntilOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  // Bounded in rounds as well as time, in case a slow check makes each round far longer than everyMs.
  const rounds = Math.ceil(timeoutMs / everyMs) + 1;
  for (let round = 0; round < rounds; round++) {
    const value = await check();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() >= deadline) break;
    await new Promise((resolve) =>
      setTimeout(resolve, Math.min(everyMs, Math.max(0, deadline - Date.now()))),
    );
  }
  throw new WaitTimedOut(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
