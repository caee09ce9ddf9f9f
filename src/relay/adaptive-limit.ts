/**
 * The replica's budget of Svix calls in flight (JOBHOOKS_RELAY_CONCURRENCY is its ceiling), adapted
 * to Svix's rate limiting the way TCP adapts to congestion:
 *
 * - slow start: begin at `initial` and add one per accepted call (doubling per round trip) up to
 *   the ceiling, so a restart ramps up in a few round trips instead of bursting;
 * - a 429 halves the budget (at most once per `decreaseIntervalMs`, so one burst of 429s answered
 *   to calls sent together counts once) and ends slow start;
 * - after that, one more per budget's worth of accepted calls (additive increase).
 *
 * Only 429 shrinks it: other failures are the circuit's business, and a few 503s must not starve
 * a healthy Svix of work.
 */
export interface AdaptiveLimitOptions {
  max: number;
  initial?: number;
  decreaseIntervalMs?: number;
  now?: () => number;
  onChange?: (limit: number) => void;
}

export class AdaptiveLimit {
  private limitValue: number;
  private threshold: number;
  private inFlight = 0;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;
  private readonly waiters: Array<() => void> = [];
  private readonly now: () => number;

  constructor(private readonly o: AdaptiveLimitOptions) {
    this.limitValue = Math.max(1, Math.min(o.max, o.initial ?? 4));
    this.threshold = o.max;
    this.now = o.now ?? Date.now;
  }

  /** Calls currently allowed in flight. */
  get limit(): number {
    return Math.floor(this.limitValue);
  }

  get active(): number {
    return this.inFlight;
  }

  /** Resolves when a call may start; rejects when `signal` aborts first. */
  async acquire(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.inFlight < this.limit && this.waiters.length === 0) {
      this.inFlight++;
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
      };
      const grant = () => {
        signal.removeEventListener("abort", onAbort);
        this.inFlight++;
        resolve();
      };
      this.waiters.push(grant);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Ends a call: `throttled` when Svix answered 429, `accepted` when it took the message. */
  release(result: "accepted" | "throttled" | "other"): void {
    this.inFlight--;
    this.record(result);
    while (this.inFlight < this.limit && this.waiters.length > 0) this.waiters.shift()?.();
  }

  /** Adapts the limit to a call's result, for a caller that keeps its own count of calls in
   * flight (the relay's fair scheduler reads `limit` as its capacity). */
  record(result: "accepted" | "throttled" | "other"): void {
    const before = this.limit;
    if (result === "accepted") {
      if (this.limitValue < this.threshold) this.limitValue += 1;
      else this.limitValue += 1 / this.limitValue;
      this.limitValue = Math.min(this.o.max, this.limitValue);
    } else if (
      result === "throttled" &&
      this.now() - this.lastDecreaseAt >= (this.o.decreaseIntervalMs ?? 250)
    ) {
      this.lastDecreaseAt = this.now();
      this.limitValue = Math.max(1, this.limitValue / 2);
      this.threshold = Math.max(1, this.limitValue);
    }
    if (this.limit !== before) this.o.onChange?.(this.limit);
  }
}
