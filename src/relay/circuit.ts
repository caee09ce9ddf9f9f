import { type Clock, systemClock } from "../resilience/clock.js";

/**
 * A circuit breaker shared by every message of a replica. While Svix keeps failing the circuit
 * opens: messages wait in place instead of being sent, and one of them at a time is let through
 * as a probe every `probeIntervalMs` (or later, when Svix's Retry-After asks for more). So an
 * outage costs about one request per interval, not a retry storm, and the first successful probe
 * closes the circuit and releases everything at once.
 *
 * With `startUnproven` the circuit begins as if open, without a failure: until Svix has answered
 * once, one request at a time goes out. A replica restarted in the middle of an outage so sends
 * probes, not a burst of its whole budget.
 */
export type CircuitState = "closed" | "open";

export interface CircuitOptions {
  /** Consecutive transient failures that open the circuit. */
  failureThreshold?: number;
  /** Time between probes while open. */
  probeIntervalMs?: number;
  /** Begin by probing: nothing is known about Svix yet (see above). */
  startUnproven?: boolean;
  onChange?: (state: CircuitState, detail: { consecutiveFailures: number }) => void;
  /** Reads the time and waits between probes; a test passes a fake one. */
  clock?: Clock;
}

export type Admission = "send" | "probe";

export class Circuit {
  private state: CircuitState = "closed";
  /** Open because nothing is known yet, not because Svix failed (reported as closed). */
  private unproven = false;
  private consecutiveFailures = 0;
  private lastSuccess = Number.NEGATIVE_INFINITY;
  private probing = false;
  private nextProbeAt = 0;
  /** Callers waiting for their turn: aborting one ends its wait early. */
  private waiters = new Set<AbortController>();
  private readonly threshold: number;
  private readonly probeIntervalMs: number;
  private readonly clock: Clock;

  constructor(private readonly o: CircuitOptions = {}) {
    this.threshold = o.failureThreshold ?? 10;
    this.probeIntervalMs = o.probeIntervalMs ?? 1_000;
    this.clock = o.clock ?? systemClock;
    if (o.startUnproven) {
      this.state = "open";
      this.unproven = true;
    }
  }

  /** "open" only after Svix failed; a circuit still proving Svix reports "closed". */
  get current(): CircuitState {
    return this.unproven ? "closed" : this.state;
  }

  /** Svix answered recently and is not failing: a failure now is the request's own. */
  get answering(): boolean {
    return this.state === "closed";
  }

  /** When Svix last answered a request (accepted or refused it); -Infinity before the first. */
  get lastSuccessAt(): number {
    return this.lastSuccess;
  }

  /**
   * Resolves when this caller may send: at once while closed; while open, when it is this caller's
   * turn to probe. `onWait` runs every few seconds while waiting (to keep a JetStream message alive).
   * Rejects if `signal` aborts first.
   */
  async admit(signal: AbortSignal, onWait?: () => void): Promise<Admission> {
    let lastKeepAlive = this.clock.now();
    for (;;) {
      signal.throwIfAborted();
      if (this.state === "closed") return "send";
      const wait = this.nextProbeAt - this.clock.now();
      if (!this.probing && wait <= 0) {
        this.probing = true;
        return "probe";
      }
      await this.waitForTurn(Math.max(10, Math.min(wait > 0 ? wait : this.probeIntervalMs, 5_000)), signal);
      if (onWait && this.clock.now() - lastKeepAlive >= 5_000) {
        lastKeepAlive = this.clock.now();
        onWait();
      }
    }
  }

  success(admission: Admission): void {
    this.consecutiveFailures = 0;
    this.lastSuccess = this.clock.now();
    if (admission === "probe") this.probing = false;
    if (this.state === "open") {
      this.state = "closed";
      if (!this.unproven) this.o.onChange?.("closed", { consecutiveFailures: 0 });
      this.unproven = false;
      this.wake();
    }
  }

  /**
   * A transient failure. `retryAfterMs` (already clamped by the caller) is Svix asking for a
   * pause: while open, the next probe waits at least that long.
   */
  failure(admission: Admission, retryAfterMs?: number): void {
    this.consecutiveFailures++;
    const pause = Math.max(this.probeIntervalMs, retryAfterMs ?? 0);
    if (admission === "probe") {
      this.probing = false;
      this.nextProbeAt = this.clock.now() + pause;
      if (this.unproven) {
        // The first answer of this process's life is a failure: now it is a real outage.
        this.unproven = false;
        this.o.onChange?.("open", { consecutiveFailures: this.consecutiveFailures });
      }
      this.wake();
      return;
    }
    if (this.state === "open") {
      this.nextProbeAt = Math.max(this.nextProbeAt, this.clock.now() + (retryAfterMs ?? 0));
      return;
    }
    if (this.consecutiveFailures >= this.threshold) {
      this.state = "open";
      this.nextProbeAt = this.clock.now() + pause;
      this.o.onChange?.("open", { consecutiveFailures: this.consecutiveFailures });
    }
  }

  /** A probe that ended without an answer from Svix (e.g. shutdown): let another caller probe. */
  release(admission: Admission): void {
    if (admission === "probe") {
      this.probing = false;
      this.wake();
    }
  }

  private wake(): void {
    for (const w of this.waiters) w.abort();
    this.waiters.clear();
  }

  /** Waits `ms`, or less when `signal` aborts or the circuit's state changes (see `wake`). */
  private async waitForTurn(ms: number, signal: AbortSignal): Promise<void> {
    const woken = new AbortController();
    this.waiters.add(woken);
    try {
      await this.clock.sleep(ms, AbortSignal.any([signal, woken.signal]));
    } finally {
      this.waiters.delete(woken);
    }
  }
}
