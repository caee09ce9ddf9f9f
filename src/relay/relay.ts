import { setTimeout as delay } from "node:timers/promises";
import { type JetStreamClient, type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";

import { tenantOfEventSubject } from "../events/subjects.js";
import { eventTypeDefinitions } from "../events/webhook-payload.js";
import type { Logger } from "../log/logger.js";
import type { NatsLink } from "../nats/connection.js";
import { JOBS_STREAM, RELAY_CONSUMER } from "../nats/provision.js";
import { waitingByTenant } from "../nats/waiting-by-tenant.js";
import { backoffMs } from "../resilience/backoff.js";
import { sleep, systemClock } from "../resilience/clock.js";
import type { SvixGateway } from "../svix/gateway.js";
import { AdaptiveLimit } from "./adaptive-limit.js";
import { Circuit } from "./circuit.js";
import { startConsumerLoop } from "./consumer-loop.js";
import { deadLetter } from "./dead-letter.js";
import type { RetryLimits } from "./decide.js";
import { Ewma } from "./ewma.js";
import { FairScheduler } from "./fair-scheduler.js";
import { JobTurns } from "./job-turn.js";
import { startLookAhead } from "./look-ahead.js";
import type { RelayMetrics } from "./metrics.js";
import { createOrderingGate } from "./ordering-gate.js";
import { AttemptLog, type HeldMessage, type RelayContext, relayMessage } from "./pipeline.js";
import { RatePacer } from "./rate-pacer.js";
import { sameTick } from "./same-tick.js";
import { createSvixSender } from "./svix-sender.js";

export interface RelayOptions {
  nats: NatsLink;
  svix: SvixGateway;
  log: Logger;
  metrics: RelayMetrics;
  subjectPrefix: string;
  /** Ceiling of Svix requests in flight in this replica (the adaptive budget never exceeds it). */
  concurrency: number;
  maxPayloadBytes: number;
  /** The consumer's ack_wait: held messages are kept alive well within it. */
  ackWaitMs?: number;
  /** Consecutive transient failures that open the circuit; probe interval while open. */
  circuit?: { failureThreshold?: number; probeIntervalMs?: number };
  /** Bounded retries of an event Svix keeps failing while it accepts others. */
  retries?: Partial<RetryLimits>;
  /** How long stop() waits for Svix calls in flight before giving up on them (they are redelivered). */
  stopDeadlineMs?: number;
  /** A tenant's share of the Svix budget relative to others' (1 by default); read at each turn,
   * so a change applies at once. */
  weightOf?: (tenant: string) => number;
}

export interface RelayReadiness {
  consuming: boolean;
  circuit: "closed" | "open";
}

export interface Relay {
  readiness(): RelayReadiness;
  /** Stops taking messages, hands back those waiting, lets Svix calls in flight finish (bounded). */
  stop(): Promise<void>;
}

/**
 * JetStream → Svix: wiring only. Two sources pull messages — the shared durable consumer
 * (`consumer-loop.ts`) and, while that is behind a burst, the look-ahead (`look-ahead.ts`) — and
 * each message runs the pipeline of `pipeline.ts` (decode → the job's turn → the fair scheduler's
 * slot → send → decide → settle) with one context.
 */
export async function startRelay(o: RelayOptions): Promise<Relay> {
  const js: JetStreamClient = jetstream(o.nats.nc);
  const jsm = await jetstreamManager(o.nats.nc);
  const stopping = new AbortController();
  const ackWaitMs = o.ackWaitMs ?? 30_000;
  const limits: RetryLimits = {
    maxAttempts: o.retries?.maxAttempts ?? 10_000,
    maxAgeMs: o.retries?.maxAgeMs ?? 24 * 3_600_000,
    maxRetryDelayMs: o.retries?.maxRetryDelayMs ?? 2_000,
  };
  const circuit = new Circuit({
    ...o.circuit,
    startUnproven: true,
    onChange: (state, detail) => {
      o.metrics.circuitOpen.set(state === "open" ? 1 : 0);
      if (state === "open")
        o.log.warn(detail, "svix circuit opened: sending only probes until Svix recovers");
      else o.log.info("svix circuit closed: Svix answers again");
    },
  });
  const budget = new AdaptiveLimit({
    max: o.concurrency,
    onChange: (limit) => o.metrics.svixBudget.set(limit),
  });
  o.metrics.svixBudget.set(budget.limit);
  const pacer = new RatePacer({
    now: Date.now,
    onChange: (rate) => {
      o.metrics.svixRateLimit.set(rate ?? 0);
      o.log.info({ rate_per_second: rate && Math.round(rate) }, "pacing Svix calls to its rate limit");
    },
  });
  const scheduler = new FairScheduler({ capacity: () => budget.limit, pacer, weightOf: o.weightOf });
  const sender = createSvixSender({
    svix: o.svix,
    circuit,
    scheduler,
    limit: budget,
    pacer,
    signal: stopping.signal,
  });
  const gate = createOrderingGate({ jsm, stream: JOBS_STREAM, subjectPrefix: o.subjectPrefix });
  // Messages held at once: enough to keep the budget busy while some jobs wait their turn;
  // bounded for memory, and far below the consumer's max_ack_pending so other replicas get work.
  const maxHeld = Math.min(4_096, Math.max(256, o.concurrency * 8));
  const callTime = new Ewma(10);

  /** Stream sequences of the messages this process holds, and how many per tenant. */
  const heldSeqs = new Set<number>();
  const heldByTenant = new Map<string, number>();

  const ctx: RelayContext = {
    subjectPrefix: o.subjectPrefix,
    maxPayloadBytes: o.maxPayloadBytes,
    limits,
    clock: systemClock,
    gate,
    turns: new JobTurns({
      isHeld: (seq) => heldSeqs.has(seq),
      callTimeMs: () => callTime.value,
      clock: systemClock,
      maxWaiting: maxHeld / 2,
      signal: stopping.signal,
    }),
    sender,
    circuit,
    attempts: new AttemptLog(),
    deadLetter: (m, d) => deadLetter(js, m, { subjectPrefix: o.subjectPrefix, ...d }),
    acksTogether: sameTick(),
    callTime,
    metrics: o.metrics,
    log: o.log,
    signal: stopping.signal,
  };

  // Event types are registered in the background: a Svix outage at start-up must not stop relaying
  // of whatever Svix accepts, nor the service starting.
  void registerEventTypes(o, stopping.signal);

  async function hold(m: HeldMessage): Promise<void> {
    // The other source holds it already (the consumer reached an event the look-ahead is
    // sending): hand this copy back; by the time it returns the event is gone (and dropped by
    // JetStream) or it is wanted again.
    if (heldSeqs.has(m.seq)) return m.nak(1_000);
    const tenant = tenantOfEventSubject(o.subjectPrefix, m.subject) ?? "";
    heldSeqs.add(m.seq);
    heldByTenant.set(tenant, (heldByTenant.get(tenant) ?? 0) + 1);
    try {
      await relayMessage(ctx, m);
    } finally {
      heldSeqs.delete(m.seq);
      const n = (heldByTenant.get(tenant) ?? 1) - 1;
      if (n > 0) heldByTenant.set(tenant, n);
      else heldByTenant.delete(tenant);
    }
  }

  const loop = startConsumerLoop({
    nats: o.nats,
    js,
    stream: JOBS_STREAM,
    consumer: RELAY_CONSUMER,
    maxHeld,
    keepAliveMs: Math.max(1_000, Math.floor(ackWaitMs / 3)),
    onMessage: (m) => hold(fromConsumer(m)),
    onConsuming: (on) => o.metrics.consuming.set(on ? 1 : 0),
    log: o.log,
  });

  const lookAhead = startLookAhead({
    nc: o.nats.nc,
    jsm,
    stream: JOBS_STREAM,
    subjectPrefix: o.subjectPrefix,
    behind: () => loop.behind,
    heldOf: (tenant) => heldByTenant.get(tenant) ?? 0,
    isHeld: (seq) => heldSeqs.has(seq),
    maxHeld: maxHeld / 2,
    onMessage: hold,
    discover: async () => [...(await waitingByTenant(jsm, JOBS_STREAM, o.subjectPrefix)).keys()],
    log: o.log,
  });

  // Backlog gauges: one stream-info request every few seconds. With work-queue retention every
  // stored message is an event not yet relayed, so the stream's count is the backlog and its
  // first message the oldest waiting event.
  const gaugeTimer = setInterval(() => {
    jsm.streams.info(JOBS_STREAM).then(
      (info) => {
        o.metrics.consumerPending.set(info.state.messages);
        const first = Date.parse(info.state.first_ts);
        o.metrics.oldestWaitingSeconds.set(
          info.state.messages > 0 && Number.isFinite(first) ? Math.max(0, (Date.now() - first) / 1_000) : 0,
        );
      },
      () => undefined,
    );
    o.metrics.consumerAckPending.set(loop.held);
    o.metrics.tenantsWaiting.set(scheduler.waiting().tenants);
  }, 5_000);
  gaugeTimer.unref();

  o.log.info({ concurrency: o.concurrency }, "relay started");

  return {
    readiness() {
      return { consuming: loop.consuming && o.nats.connected, circuit: circuit.current };
    },
    async stop() {
      if (stopping.signal.aborted) return;
      stopping.abort();
      clearInterval(gaugeTimer);
      const deadline = o.stopDeadlineMs ?? 10_000;
      const stopped = await Promise.race([
        Promise.all([loop.stop(), lookAhead.stop()]).then(() => true),
        delay(deadline, false, { ref: false }),
      ]);
      if (stopped) o.log.info("relay stopped");
      else
        o.log.warn(
          { held: loop.held + lookAhead.held },
          "relay stop deadline passed; unfinished events will be redelivered",
        );
    },
  };
}

/** A message the shared consumer delivered, as the pipeline sees it. */
function fromConsumer(m: JsMsg): HeldMessage {
  return {
    seq: m.seq,
    subject: m.subject,
    data: m.data,
    headers: m.headers,
    storedAtMs: Number(m.info.timestampNanos / 1_000_000),
    deliveryCount: m.info.deliveryCount,
    ack: () => m.ack(),
    nak: (delayMs) => m.nak(delayMs),
    working: () => m.working(),
  };
}

async function registerEventTypes(o: RelayOptions, signal: AbortSignal): Promise<void> {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      await o.svix.upsertEventTypes(eventTypeDefinitions());
      return;
    } catch (err) {
      if (attempt === 0) o.log.warn({ err: String(err) }, "could not register svix event types; retrying");
      await sleep(backoffMs(attempt, { baseMs: 1_000, capMs: 30_000 }), signal);
    }
  }
}
