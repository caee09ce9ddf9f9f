import { type Clock, systemClock } from "../resilience/clock.js";
import type { RatePacer } from "./rate-pacer.js";

/**
 * Who gets the replica's next Svix call: deficit round-robin by tenant. Each tenant with calls
 * waiting has its own queue; the tenants take turns, each turn granting as many calls as the
 * tenant's weight (1 unless configured; a fraction carries over to its next turn). So while
 * several tenants wait, the budget is shared among them by weight, whatever order their events
 * were stored in — a tenant that dropped 200,000 events waits behind the one event of a tenant
 * that dropped one, not the other way round — and a tenant alone gets all of it (nothing is
 * held back while anyone waits: work-conserving).
 *
 * The budget is how many calls may be in flight (`capacity`, the adaptive limit) and, once Svix
 * has rate-limited us, how fast they may start (`pacer`): the shrunken budget is shared the same way.
 *
 * Pure and in memory: time comes from `clock`, so a test drives it with a fake one.
 */
export interface FairSchedulerOptions {
  /** Calls allowed in flight now. */
  capacity: () => number;
  /** A tenant's share relative to the others' (1 by default); read at each of its turns. */
  weightOf?: (tenant: string) => number;
  pacer?: RatePacer;
  clock?: Clock;
}

export interface Waiting {
  /** Calls waiting for a grant. */
  calls: number;
  /** Tenants with calls waiting. */
  tenants: number;
  /** When the longest-waiting call began to wait (clock time); undefined when none waits. */
  oldestSince: number | undefined;
}

interface Waiter {
  since: number;
  grant: () => void;
}

interface TenantQueue {
  waiters: Waiter[];
  /** Grants the tenant may still take in its current turn. */
  deficit: number;
  /** Its turn has begun (its quantum was added). */
  inTurn: boolean;
}

/** Weights are kept within this range, so one turn never grants more than 100 calls nor a
 * tenant waits more than ten rounds for one. */
const MIN_WEIGHT = 0.1;
const MAX_WEIGHT = 100;

export class FairScheduler {
  private readonly queues = new Map<string, TenantQueue>();
  /** Tenants with calls waiting, in turn order: the first is the one whose turn it is. */
  private readonly ring = new Set<string>();
  private running = 0;
  private waitingCalls = 0;
  private paceTimer: AbortController | undefined;
  private readonly clock: Clock;

  constructor(private readonly o: FairSchedulerOptions) {
    this.clock = o.clock ?? systemClock;
  }

  /** Calls granted and not yet released. */
  get inFlight(): number {
    return this.running;
  }

  waiting(): Waiting {
    let oldestSince: number | undefined;
    for (const q of this.queues.values()) {
      const head = q.waiters[0];
      if (head && (oldestSince === undefined || head.since < oldestSince)) oldestSince = head.since;
    }
    return { calls: this.waitingCalls, tenants: this.queues.size, oldestSince };
  }

  /** Resolves when `tenant` may start a call; rejects when `signal` aborts first. Every resolved
   * take must be followed by exactly one `release`. */
  take(tenant: string, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      let queue = this.queues.get(tenant);
      if (!queue) {
        queue = { waiters: [], deficit: 0, inTurn: false };
        this.queues.set(tenant, queue);
        this.ring.add(tenant);
      }
      const onAbort = () => {
        const q = this.queues.get(tenant);
        const i = q?.waiters.indexOf(waiter) ?? -1;
        if (q && i >= 0) {
          q.waiters.splice(i, 1);
          this.waitingCalls--;
          if (q.waiters.length === 0) this.forget(tenant);
        }
        reject(signal.reason);
      };
      const waiter: Waiter = {
        since: this.clock.now(),
        grant: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      queue.waiters.push(waiter);
      this.waitingCalls++;
      signal.addEventListener("abort", onAbort, { once: true });
      this.dispatch();
    });
  }

  /** A granted call ended. */
  release(): void {
    this.running--;
    this.dispatch();
  }

  /** The capacity may have grown (the adaptive limit rose): grant what now fits. */
  nudge(): void {
    this.dispatch();
  }

  private dispatch(): void {
    while (this.waitingCalls > 0 && this.running < this.o.capacity()) {
      const wait = this.o.pacer?.delayMs() ?? 0;
      if (wait > 0) {
        this.wakeAfter(wait);
        return;
      }
      const waiter = this.next();
      this.waitingCalls--;
      this.running++;
      this.o.pacer?.took();
      waiter.grant();
    }
  }

  /** The waiter whose turn it is (deficit round-robin). */
  private next(): Waiter {
    for (;;) {
      const tenant = this.ring.values().next().value as string;
      const queue = this.queues.get(tenant) as TenantQueue;
      if (!queue.inTurn) {
        queue.inTurn = true;
        queue.deficit += this.weightOf(tenant);
      }
      if (queue.deficit >= 1) {
        queue.deficit -= 1;
        const waiter = queue.waiters.shift() as Waiter;
        if (queue.waiters.length === 0) this.forget(tenant);
        return waiter;
      }
      // Its turn is spent (a fraction carries over): to the back of the ring.
      queue.inTurn = false;
      this.ring.delete(tenant);
      this.ring.add(tenant);
    }
  }

  /** A tenant with nothing waiting leaves the ring and keeps no credit (as DRR prescribes). */
  private forget(tenant: string): void {
    this.queues.delete(tenant);
    this.ring.delete(tenant);
  }

  private weightOf(tenant: string): number {
    const w = this.o.weightOf?.(tenant) ?? 1;
    return Number.isFinite(w) ? Math.min(MAX_WEIGHT, Math.max(MIN_WEIGHT, w)) : 1;
  }

  private wakeAfter(ms: number): void {
    if (this.paceTimer) return;
    const timer = new AbortController();
    this.paceTimer = timer;
    void this.clock.sleep(ms, timer.signal).then(() => {
      if (this.paceTimer === timer) this.paceTimer = undefined;
      this.dispatch();
    });
  }
}
