/**
 * Svix's own rate limit, learned from its 429s and kept just below, so calls are spaced out
 * instead of bounced. Svix limits an organisation's requests per second and answers 429 with
 * `Retry-After` beyond it; every 429 costs its event at least that long (a second), so a relay
 * that keeps probing the limit with 429s makes whoever is unlucky a second late, while one that
 * paces below it costs nobody anything.
 *
 * - Unlimited until the first 429: then the rate becomes half of what Svix accepted over the last
 *   second (which overstates the limit by whatever burst Svix's bucket allowed; never taken as
 *   less than `minLearned`, so a 429 in a quiet second does not pace a busy one at a trickle).
 * - Another 429 while paced lowers it to 90 % of the lower of the pace and what Svix accepted
 *   over the last second, at most once per `decreaseIntervalMs` (the 429s answered to calls
 *   already sent together count once).
 * - Each second the pace held calls back without a 429, the rate grows: by 1 % within 80–100 % of
 *   the rate at which Svix last answered 429 (so the next 429 comes rarely), by 10 % below that
 *   (after the first, halving, guess) and above it (the limit was raised, or the first guess was
 *   low: find it in seconds, not minutes). Far above anything seen, it is unlimited again.
 *
 * Pure: the time comes in through `now`, so a test drives it with a fake clock.
 */
export interface RatePacerOptions {
  now: () => number;
  headroom?: number;
  minLearned?: number;
  decreaseIntervalMs?: number;
  /** Calls that may go out back to back (the bucket's size, in ms of the rate). */
  burstMs?: number;
  onChange?: (ratePerSecond: number | undefined) => void;
}

/** Past this rate the pace is dropped: nothing limits us there that a pace would help with. */
const UNLIMITED_ABOVE = 100_000;
/** Accepted calls are counted in slots of this length over the last second. */
const SLOT_MS = 100;
const SLOTS = 10;

export class RatePacer {
  private rate: number | undefined;
  private tokens = 0;
  private tokensAt = 0;
  private lastDecreaseAt = Number.NEGATIVE_INFINITY;
  private lastIncreaseAt = 0;
  /** The pace held a call back since the last increase: the rate is what limits us. */
  private binding = false;
  /** The rate at which Svix last answered 429. */
  private limitSeen = 0;
  private readonly accepted = new Array<number>(SLOTS).fill(0);
  private slotAt = 0;
  private readonly o: Required<Omit<RatePacerOptions, "onChange">> & Pick<RatePacerOptions, "onChange">;

  constructor(options: RatePacerOptions) {
    this.o = {
      headroom: 0.9,
      minLearned: 20,
      decreaseIntervalMs: 500,
      burstMs: 50,
      ...options,
    };
  }

  /** Calls per second allowed now; undefined while Svix has not limited us. */
  get ratePerSecond(): number | undefined {
    return this.rate;
  }

  /** 0 when a call may start now, else how long until one may. */
  delayMs(): number {
    if (this.rate === undefined) return 0;
    this.refill();
    if (this.tokens >= 1) return 0;
    this.binding = true;
    return Math.max(1, Math.ceil(((1 - this.tokens) / this.rate) * 1_000));
  }

  /** A call starts. */
  took(): void {
    if (this.rate !== undefined) this.tokens -= 1;
  }

  /** A call ended: `throttled` when Svix answered 429, `accepted` when it took the message. */
  record(result: "accepted" | "throttled" | "other"): void {
    const now = this.o.now();
    this.advanceSlots(now);
    if (result === "accepted") {
      const slot = Math.floor(now / SLOT_MS) % SLOTS;
      this.accepted[slot] = (this.accepted[slot] ?? 0) + 1;
      this.maybeIncrease(now);
    } else if (result === "throttled" && now - this.lastDecreaseAt >= this.o.decreaseIntervalMs) {
      this.lastDecreaseAt = now;
      this.lastIncreaseAt = now;
      this.binding = false;
      const seen = this.accepted.reduce((a, b) => a + b, 0);
      const first = this.rate === undefined;
      // While paced, what Svix let through over the last second is the better guess; the first
      // second's count includes the burst a full bucket allowed, so the first pace is half of it
      // (a 429 storm while a too-high guess converges costs many events a second each).
      this.limitSeen = Math.min(this.rate ?? Number.POSITIVE_INFINITY, Math.max(seen, this.o.minLearned));
      this.setRate(Math.max(1, this.limitSeen * (first ? 0.5 : this.o.headroom)));
      this.refill();
      this.tokens = Math.min(this.tokens, 1);
    }
  }

  private maybeIncrease(now: number): void {
    if (this.rate === undefined || now - this.lastIncreaseAt < 1_000) return;
    const seconds = Math.floor((now - this.lastIncreaseAt) / 1_000);
    this.lastIncreaseAt += seconds * 1_000;
    if (!this.binding) return;
    this.binding = false;
    // Far below the last 429's rate (after the first, halving, guess) the pace is regained in
    // seconds; near it, slowly, so the next 429 comes rarely; past it, quickly again.
    const step = this.rate < 0.8 * this.limitSeen || this.rate >= this.limitSeen ? 0.1 : 0.01;
    const next = this.rate * (1 + step) ** seconds + 1;
    this.setRate(next > UNLIMITED_ABOVE ? undefined : next);
  }

  private setRate(rate: number | undefined): void {
    this.rate = rate;
    this.o.onChange?.(rate);
  }

  private refill(): void {
    const now = this.o.now();
    if (this.rate === undefined) return;
    const cap = Math.max(1, (this.rate * this.o.burstMs) / 1_000);
    this.tokens = Math.min(cap, this.tokens + ((now - this.tokensAt) / 1_000) * this.rate);
    this.tokensAt = now;
  }

  /** Clears the count of every slot that has passed since the last call. */
  private advanceSlots(now: number): void {
    const slot = Math.floor(now / SLOT_MS);
    const from = this.slotAt;
    if (slot <= from) return;
    for (let s = Math.max(from + 1, slot - SLOTS + 1); s <= slot; s++) this.accepted[s % SLOTS] = 0;
    this.slotAt = slot;
  }
}
