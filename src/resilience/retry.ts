import { type BackoffOptions, backoffMs } from "./backoff.js";
import { sleep as systemSleep } from "./clock.js";

export interface RetryOptions {
  /** Whether the failure of attempt `attempt` (0-based) is worth another; decides the bound too. */
  retryable(err: unknown, attempt: number): boolean;
  /** The pause before each retry: the service's one backoff. */
  backoff: BackoffOptions;
  /** Called before each pause, e.g. to log the failure. */
  onRetry?(err: unknown, attempt: number): void;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Runs `call` until it succeeds or fails in a way `retryable` refuses, which then passes through.
 * The whole of what cockatiel's `retry(handleWhen(…), { backoff })` did for start-up, without a
 * dependency: the bound (attempts, a deadline) is the caller's `retryable`, the pacing `backoffMs`.
 */
export async function retryWhile<T>(call: () => Promise<T>, o: RetryOptions): Promise<T> {
  const sleep = o.sleep ?? systemSleep;
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!o.retryable(err, attempt)) throw err;
      o.onRetry?.(err, attempt);
      await sleep(backoffMs(attempt, o.backoff));
    }
  }
}
