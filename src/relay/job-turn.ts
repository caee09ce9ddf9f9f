import { BoundedMap } from "../resilience/bounded-map.js";
import type { Clock } from "../resilience/clock.js";

/**
 * Whether an event may be sent now, by the rule in `ordering-gate.ts`: only the first stored
 * event of its job is sent. The stream is asked through the `firstStored` it is given; everything else here is
 * the policy of waiting for one's turn, pure (the stream and the time come in), so it is tested
 * in memory with a fake stream and a fake clock.
 *
 * - `first`: send it.
 * - `gone`: a later event of its job is the first stored, so this one is no longer stored: it was
 *   already settled (an ack whose confirmation was lost, or a look-ahead sent and removed it).
 *   Settle it without sending. (Nothing stored at all says nothing: a lagging stream replica may
 *   not have it yet.)
 * - `behind_held`: its predecessor is held by this process, queued behind it (redelivered): give way.
 * - `not_first`: its predecessor is still stored after a while (waiting for a retry, or for
 *   redelivery after a crash): hand it back; it asks again later.
 */
export type Turn = "first" | "gone" | "behind_held" | "not_first";

export interface JobTurnsOptions {
  /** Whether this process holds the message at `seq`. */
  isHeld(seq: number): boolean;
  /** How long a send usually takes here: what a job's next event usually waits. */
  callTimeMs(): number | undefined;
  clock: Clock;
  /** At most this many events wait (asking again) at once; more are handed back at once. */
  maxWaiting: number;
  /** How long an event waits asking before it is handed back. */
  patienceMs?: number;
  signal: AbortSignal;
}

/** Per job, the predecessor an event of it last waited for in vain (bounded, oldest dropped). */
const GAVE_UP_MAX = 10_000;

export class JobTurns {
  private waitingNow = 0;
  private readonly gaveUpOn = new BoundedMap<string, number>(GAVE_UP_MAX);

  constructor(private readonly o: JobTurnsOptions) {}

  /** Events asking again right now. */
  get waiting(): number {
    return this.waitingNow;
  }

  /**
   * The turn of the event at `seq`, asking again a few times over about two seconds while it is
   * not first: most often the earlier event is in a Svix call on another replica and is acked one
   * call later, and holding the message (kept alive) is far quicker than a nak and a redelivery
   * (docs/operations.md, "Measured: the relay's waiting rules"). The first ask again comes after about one call's time, each
   * later one a little later, so a wait costs one or two direct gets. Bounded in time, and in how
   * many wait at once, so jobs that wait long never fill this process.
   */
  async of(jobKey: string, seq: number, firstStored: () => Promise<number | undefined>): Promise<Turn> {
    let first = await firstStored();
    const now = this.verdict(jobKey, seq, first);
    if (now !== "ask_again") return now;
    // An event of this job queued here just waited for the same predecessor in vain: do not
    // wait again (a job's whole queue would otherwise wait 2 s per event while the predecessor
    // sits in the client's buffer behind it, e.g. after redeliveries scrambled the order).
    if (first !== undefined && this.gaveUpOn.get(jobKey) === first) return "not_first";
    if (this.waitingNow >= this.o.maxWaiting) return "not_first";
    this.waitingNow++;
    const step = Math.min(100, Math.max(5, this.o.callTimeMs() ?? 10));
    const patience = this.o.patienceMs ?? 2_000;
    try {
      for (let waited = 0, i = 1; waited < patience && !this.o.signal.aborted; i++) {
        const pause = Math.min(200, step * i);
        await this.o.clock.sleep(pause, this.o.signal);
        waited += pause;
        if (this.o.signal.aborted) return "not_first";
        first = await firstStored();
        const again = this.verdict(jobKey, seq, first);
        if (again !== "ask_again") return again;
      }
      if (first !== undefined) this.rememberGaveUp(jobKey, first);
      return "not_first";
    } finally {
      this.waitingNow--;
    }
  }

  private verdict(jobKey: string, seq: number, first: number | undefined): Turn | "ask_again" {
    if (first === seq) {
      this.gaveUpOn.delete(jobKey);
      return "first";
    }
    if (first !== undefined && first > seq) return "gone";
    if (first !== undefined && this.o.isHeld(first)) return "behind_held";
    return "ask_again";
  }

  private rememberGaveUp(jobKey: string, seq: number): void {
    this.gaveUpOn.set(jobKey, seq);
  }
}
