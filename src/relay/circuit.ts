/**
 * A circuit breaker shared by every partition loop. While Svix keeps failing the circuit opens:
 * messages wait in place instead of being sent, and one of them at a time is let through as a
 * probe every `probeIntervalMs`. So an outage costs about one request per interval, not a retry
 * storm, and the first successful probe closes the circuit and releases everything at once.
 */
export type CircuitState = "closed" | "open";

export interface CircuitOptions {
  /** Consecutive transient failures that open the circuit. */
  failureThreshold?: number;
  /** Time between probes while open. */
  probeIntervalMs?: number;
  onChange?: (state: CircuitState, detail: { consecutiveFailures: number }) => void;
  now?: () => number;
}

export type Admission = "send" | "probe";

export class Circuit {
  private state: CircuitState = "closed";
  private consecutiveFailures = 0;
  private probing = false;
  private nextProbeAt = 0;
  private waiters = new Set<() => void>();
  private readonly threshold: number;
  private readonly probeIntervalMs: number;
  private readonly now: () => number;

  constructor(private readonly o: CircuitOptions = {}) {
    this.threshold = o.failureThreshold ?? 10;
    this.probeIntervalMs = o.probeIntervalMs ?? 1_000;
    this.now = o.now ?? Date.now;
  }

  get current(): CircuitState {
    return this.state;
  }

  /**
   * Resolves when this caller may send: at once while closed; while open, when it is this caller's
   * turn to probe. `onWait` runs every few seconds while waiting (to keep a JetStream message alive).
   * Rejects if `signal` aborts first.
   */
  async admit(signal: AbortSignal, onWait?: () => void): Promise<Admission> {
    let lastKeepAlive = this.now();
    for (;;) {
      signal.throwIfAborted();
      if (this.state === "closed") return "send";
      const wait = this.nextProbeAt - this.now();
      if (!this.probing && wait <= 0) {
        this.probing = true;
        return "probe";
      }
      await this.sleep(Math.max(10, Math.min(wait > 0 ? wait : this.probeIntervalMs, 5_000)), signal);
      if (onWait && this.now() - lastKeepAlive >= 5_000) {
        lastKeepAlive = this.now();
        onWait();
      }
    }
  }

  success(admission: Admission): void {
    this.consecutiveFailures = 0;
    if (admission === "probe") this.probing = false;
    if (this.state === "open") {
      this.state = "closed";
      this.o.onChange?.("closed", { consecutiveFailures: 0 });
      this.wake();
    }
  }

  failure(admission: Admission): void {
    this.consecutiveFailures++;
    if (admission === "probe") {
      this.probing = false;
      this.nextProbeAt = this.now() + this.probeIntervalMs;
      this.wake();
      return;
    }
    if (this.state === "closed" && this.consecutiveFailures >= this.threshold) {
      this.state = "open";
      this.nextProbeAt = this.now() + this.probeIntervalMs;
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
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.waiters.add(done);
    });
  }
}
