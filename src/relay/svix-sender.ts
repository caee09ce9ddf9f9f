import type { SvixMessage } from "../events/webhook-payload.js";
import { clampRetryAfter } from "../svix/classify.js";
import type { MessageOutcome, SvixGateway } from "../svix/gateway.js";
import type { AdaptiveLimit } from "./adaptive-limit.js";
import type { Circuit } from "./circuit.js";
import type { FairScheduler } from "./fair-scheduler.js";
import type { RatePacer } from "./rate-pacer.js";

/** A call the circuit admitted and the scheduler gave a slot: it must be made (`call`) or given up (`abandon`). */
export interface Admission {
  readonly circuit: Awaited<ReturnType<Circuit["admit"]>>;
}

export interface SvixSender {
  /**
   * Waits until the fair scheduler gives `tenant` a slot of the budget and the circuit admits a
   * call. `keepAlive` runs while it waits for the circuit (the JetStream message must not be
   * redelivered meanwhile). `stopped` when the relay stopped first: nothing was sent.
   */
  admit(tenant: string, keepAlive: () => void): Promise<Admission | "stopped">;
  /** One Svix attempt for one event, in an admission; ends the admission on every path. */
  call(admission: Admission, tenant: string, message: SvixMessage): Promise<MessageOutcome>;
}

/** A failure counts as Svix's only if no other tenant's call succeeded this recently. */
const OTHERS_ANSWERED_MS = 2_000;

/**
 * The Svix side of the relay: circuit (outages), fair scheduler (whose turn, by tenant) over the
 * adaptive budget (calls in flight) and the rate pacer (Svix's learned rate limit), one call. Every
 * admission is settled on every path: a probe that ends without an answer from Svix (a bug) hands
 * the probe slot on, so the circuit can never wait forever on a probe nobody sends.
 */
export function createSvixSender(o: {
  svix: SvixGateway;
  circuit: Circuit;
  scheduler: FairScheduler;
  limit: AdaptiveLimit;
  pacer: RatePacer;
  signal: AbortSignal;
}): SvixSender {
  // The last two distinct tenants Svix accepted a call of, and when: "did Svix answer someone else
  // just now?" for a tenant whose own calls fail.
  let lastOk = { tenant: "", at: Number.NEGATIVE_INFINITY };
  let otherOk = { tenant: "", at: Number.NEGATIVE_INFINITY };
  const succeeded = (tenant: string) => {
    if (lastOk.tenant !== tenant) otherOk = lastOk;
    lastOk = { tenant, at: Date.now() };
  };
  const othersAnswer = (tenant: string) =>
    Date.now() - (lastOk.tenant !== tenant ? lastOk.at : otherOk.at) < OTHERS_ANSWERED_MS;

  return {
    async admit(tenant, keepAlive) {
      // The slot first, then the circuit: an admission the circuit gave while closed must not
      // outlive its opening while the call waits for a slot (under a learned pace, seconds), or
      // an outage would still get every such call.
      try {
        await o.scheduler.take(tenant, o.signal);
      } catch {
        return "stopped";
      }
      try {
        return { circuit: await o.circuit.admit(o.signal, keepAlive) };
      } catch {
        o.scheduler.release();
        return "stopped";
      }
    },

    async call(admission, tenant, message) {
      let settled = false;
      let outcome: MessageOutcome | undefined;
      try {
        outcome = await o.svix.createMessage(tenant, message);
        switch (outcome.kind) {
          case "created":
          case "already_sent":
          case "permanent": // Svix answered, so it is up
            o.circuit.success(admission.circuit);
            succeeded(tenant);
            settled = true;
            break;
          case "transient":
            // One tenant's calls failing while Svix serves the others (its application broken,
            // say) is that tenant's trouble: the circuit, which stops everyone, is for outages.
            // A rate limit's 429 is everyone's.
            if (outcome.status === 429 || !othersAnswer(tenant)) {
              o.circuit.failure(admission.circuit, clampRetryAfter(outcome.retryAfterMs));
              settled = true;
            }
            break;
          case "internal":
            break; // says nothing about Svix: the finally below hands the probe on
        }
        return outcome;
      } finally {
        if (!settled) o.circuit.release(admission.circuit);
        const result =
          outcome === undefined
            ? "other"
            : outcome.kind === "created" || outcome.kind === "already_sent"
              ? "accepted"
              : outcome.kind === "transient" && outcome.status === 429
                ? "throttled"
                : "other";
        // The pace learns from 429s that carry a Retry-After of a second or more: what Svix's rate
        // limiter sends. A bare 429 (or "retry now") is no rate to learn; each one only halves
        // the calls in flight, as before. Once paced, a 429 is the pacer's alone to answer:
        // halving the calls in flight as well would cut the pace's throughput again for every
        // 429 of its convergence.
        const rateLimited =
          result === "throttled" && outcome?.kind === "transient" && (outcome.retryAfterMs ?? 0) >= 1_000;
        o.limit.record(result === "throttled" && o.pacer.ratePerSecond !== undefined ? "other" : result);
        o.pacer.record(result === "throttled" && !rateLimited ? "other" : result);
        o.scheduler.release(); // grants what the (maybe changed) budget now allows
      }
    },
  };
}
