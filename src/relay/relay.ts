import { setTimeout as delay } from "node:timers/promises";
import { type JetStreamClient, type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";

import { type DeadReason, decodeNatsEvent } from "../events/decode-nats-event.js";
import { eventSubject, parseStoredSubject, type StoredSubject } from "../events/subjects.js";
import { eventTypeDefinitions, toSvixMessage } from "../events/webhook-payload.js";
import type { JobEvent } from "../gen/jobhooks/v1/webhooks_pb.js";
import type { Logger } from "../log/logger.js";
import type { NatsLink } from "../nats/connection.js";
import { JOBS_STREAM, RELAY_CONSUMER } from "../nats/provision.js";
import { backoffMs } from "../resilience/backoff.js";
import { sleep } from "../resilience/clock.js";
import type { SvixGateway } from "../svix/gateway.js";
import { endRelaySpan, startRelaySpan } from "../tracing/spans.js";
import { AdaptiveLimit } from "./adaptive-limit.js";
import { Circuit } from "./circuit.js";
import { startConsumerLoop } from "./consumer-loop.js";
import { deadLetter } from "./dead-letter.js";
import { decide, type RetryLimits } from "./decide.js";
import { Ewma } from "./ewma.js";
import type { RelayMetrics } from "./metrics.js";
import { createOrderingGate, jobKeyOf } from "./ordering-gate.js";
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

/** How often an event may give way to a predecessor queued behind it before it is handed back. */
const MAX_TURNS = 4;

/** Attempt counts are kept for this many events at most (oldest forgotten first). */
const ATTEMPTS_TRACKED_MAX = 100_000;

/**
 * JetStream → Svix, in four parts: the consumer loop (pulls, holds a bounded number of messages,
 * keeps them alive), the ordering gate (a job's event is sent only when it is the job's first
 * stored event), the Svix sender (circuit, adaptive budget, one call) and dead-lettering. Between
 * them, `decide` turns each Svix outcome into ack, retry after a delay, or dead letter.
 * A message is acked only after Svix accepted it (2xx, or 409: already sent) or after it was
 * dead-lettered; anything else is handed back (nak), so nothing accepted is ever dropped.
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
  const sender = createSvixSender({ svix: o.svix, circuit, limit: budget, signal: stopping.signal });
  const gate = await createOrderingGate({ jsm, stream: JOBS_STREAM, subjectPrefix: o.subjectPrefix });
  if (gate.legacyMayRemain) {
    o.log.warn(
      "events stored by the partitioned layout remain: ordering each job across both subject shapes",
    );
  }
  // Messages held at once: enough to keep the budget busy while some jobs wait their turn;
  // bounded for memory, and far below the consumer's max_ack_pending so other replicas get work.
  const maxHeld = Math.min(4_096, Math.max(256, o.concurrency * 8));
  /** Failed Svix attempts per stream sequence (and when the last one ended), as this process counted them. */
  const attempts = new Map<number, { n: number; at: number }>();
  const acksTogether = sameTick();

  // Event types are registered in the background: a Svix outage at start-up must not stop relaying
  // of whatever Svix accepts, nor the service starting.
  void registerEventTypes(o, stopping.signal);

  /** Stream sequences of the messages this process holds. */
  const heldSeqs = new Set<number>();

  async function handle(m: JsMsg): Promise<void> {
    heldSeqs.add(m.seq);
    try {
      await handleHeld(m);
    } finally {
      heldSeqs.delete(m.seq);
    }
  }

  async function handleHeld(m: JsMsg): Promise<void> {
    o.metrics.received.inc();
    const subject = parseStoredSubject(o.subjectPrefix, m.subject);
    if (!subject) {
      const detail = `subject ${m.subject} is not ${o.subjectPrefix}.<tenant_id>.<job_id>.<status>`;
      return dead(m, "bad_subject", detail, m.subject);
    }
    const originalSubject = eventSubject(o.subjectPrefix, subject);
    const decoded = decodeNatsEvent({
      subject,
      data: m.data,
      contentType: m.headers?.get("Content-Type") || undefined,
      storedAtMs: storedAtMs(m),
      maxPayloadBytes: o.maxPayloadBytes,
    });
    // An event that can never be delivered does not wait for its job's turn: it reaches no one.
    if (decoded.kind === "dead") return dead(m, decoded.reason, decoded.detail, originalSubject);
    const jobKey = jobKeyOf(subject);
    try {
      // Behind a predecessor this process holds (redelivered, so queued after this event), the
      // event takes its place again at the end of the job's queue: it then runs right after the
      // predecessor is acked, where a nak would cost it a redelivery delay, and a job's whole
      // backlog one event per delay after a long failure (measured: 40 events, 19–26 s).
      for (let turn = 1; ; turn++) {
        const step = await gate.inTurn(jobKey, () =>
          relayInTurn(m, decoded.event, subject, jobKey, originalSubject, turn < MAX_TURNS),
        );
        if (step !== "requeue") break;
      }
    } catch (err) {
      // A bug of ours, or NATS failing under a dead letter or an ack: keep the message (the DLQ
      // publish is de-duplicated, Svix's idempotency key makes a second send harmless).
      o.metrics.outcomes.inc({ outcome: "failed" });
      o.log.error(
        { err, stream_seq: m.seq, tenant: subject.tenantId, job_id: subject.jobId },
        "relay failed on a message; it will be retried",
      );
      m.nak(limits.maxRetryDelayMs);
    }
  }

  async function relayInTurn(
    m: JsMsg,
    event: JobEvent,
    subject: StoredSubject,
    jobKey: string,
    originalSubject: string,
    mayRequeue: boolean,
  ): Promise<"done" | "requeue"> {
    if (stopping.signal.aborted) {
      m.nak();
      return "done";
    }
    const turn = await waitForTurn(m, subject, jobKey);
    if (turn === "behind_held" && mayRequeue) return "requeue";
    if (turn !== "first") {
      // The job's earlier event is still stored after a while: it waits for a retry, or for
      // redelivery after a crash. Hand this one back; it asks again later.
      m.nak(waitDelayMs(m.info.deliveryCount));
      o.metrics.outcomes.inc({ outcome: "waited" });
      return "done";
    }
    const ids = { tenant: event.tenantId, job_id: event.jobId, event_id: event.eventId };
    const span = startRelaySpan(m.headers, {
      "jobhooks.tenant": event.tenantId,
      "jobhooks.job_id": event.jobId,
      "jobhooks.event_id": event.eventId,
      "jobhooks.delivery_count": m.info.deliveryCount,
    });
    const sentAt = performance.now();
    const outcome = await sender.send(event.tenantId, toSvixMessage(event), () => m.working());
    if (outcome.kind === "created") callTime.observe(performance.now() - sentAt);
    if (outcome.kind === "stopped") {
      endRelaySpan(span, "stopped", undefined);
      m.nak(); // shutting down: hand it back for another replica (or our restart)
      return "done";
    }
    endRelaySpan(span, outcome.kind, "reason" in outcome ? outcome.reason : undefined);
    const failed = outcome.kind === "transient" || outcome.kind === "internal";
    const before = attempts.get(m.seq);
    const tries = failed ? countAttempt(m.seq) : (before?.n ?? 0) + 1;
    const decision = decide({
      outcome,
      attempts: tries,
      ageMs: Date.now() - storedAtMs(m),
      // "Svix otherwise answers": the circuit is closed and Svix accepted something else since
      // this event last failed. One event failing alone, or an outage's first seconds before
      // the circuit opens, so never count as the event's own fault.
      svixAnswering: circuit.answering && (before === undefined || circuit.lastSuccessAt > before.at),
      limits,
    });
    switch (decision.action) {
      case "ack":
        await acksTogether();
        m.ack();
        attempts.delete(m.seq);
        gate.done(jobKey, m.seq);
        o.metrics.outcomes.inc({ outcome: decision.outcome });
        return "done";
      case "dead_letter":
        await dead(m, decision.reason, decision.detail, originalSubject, ids);
        attempts.delete(m.seq);
        gate.done(jobKey, m.seq);
        return "done";
      case "retry":
        m.nak(decision.delayMs);
        o.metrics.outcomes.inc({ outcome: decision.cause === "bug" ? "failed" : "retried" });
        if (decision.cause === "bug") {
          o.log.error(
            { ...ids, reason: decision.reason, attempts: tries },
            "relay bug while calling Svix; event kept, will retry",
          );
        } else {
          o.log.debug(
            { ...ids, reason: decision.reason, delay: decision.delayMs },
            "svix transient failure; will retry",
          );
        }
        return "done";
    }
  }

  /** Messages holding their place while an earlier event of their job is sent elsewhere. */
  let polling = 0;
  /** How long a send takes here, admission included: what a job's next event usually waits. */
  const callTime = new Ewma(10);
  /** Per job, the predecessor an event of it last waited for in vain (bounded, oldest dropped). */
  const gaveUpOn = new Map<string, number>();
  const rememberGaveUp = (jobKey: string, seq: number) => {
    gaveUpOn.delete(jobKey);
    gaveUpOn.set(jobKey, seq);
    if (gaveUpOn.size > 10_000) {
      const oldest = gaveUpOn.keys().next().value;
      if (oldest !== undefined) gaveUpOn.delete(oldest);
    }
  };

  /**
   * Whether `m` is its job's first stored event, asking again a few times over about two seconds
   * while it is not: most often the earlier event is in a Svix call on another replica and is
   * acked one call later, and holding the message (kept alive) is far quicker than a nak and a
   * redelivery (measured with 3 replicas: handing back at a quarter of the held messages made a
   * quarter of all events wait a redelivery). The first ask comes after about one call's time,
   * each later one a little later, so a wait costs one or two direct gets. Bounded in time, and to
   * half of the held messages, so jobs that wait long never fill this process.
   */
  async function waitForTurn(
    m: JsMsg,
    subject: StoredSubject,
    jobKey: string,
  ): Promise<"first" | "behind_held" | "not_first"> {
    let first = await gate.firstStored(subject, m.seq);
    if (first === m.seq) {
      gaveUpOn.delete(jobKey);
      return "first";
    }
    // The earlier event was redelivered to this process and queued behind this one: give way.
    if (first !== undefined && heldSeqs.has(first)) return "behind_held";
    // An event of this job queued here just waited for the same predecessor in vain: do not
    // wait again (a job's whole queue would otherwise wait 2 s per event while the predecessor
    // sits in the client's buffer behind it, e.g. after redeliveries scrambled the order).
    if (first !== undefined && gaveUpOn.get(jobKey) === first) return "not_first";
    if (polling >= maxHeld / 2) return "not_first";
    polling++;
    const step = Math.min(100, Math.max(5, callTime.value ?? 10));
    try {
      for (let waited = 0, i = 1; waited < 2_000 && !stopping.signal.aborted; i++) {
        if (first !== undefined && heldSeqs.has(first)) return "behind_held";
        const pause = Math.min(200, step * i);
        await sleep(pause, stopping.signal);
        waited += pause;
        if (stopping.signal.aborted) return "not_first";
        first = await gate.firstStored(subject, m.seq);
        if (first === m.seq) {
          gaveUpOn.delete(jobKey);
          return "first";
        }
      }
      if (first !== undefined) rememberGaveUp(jobKey, first);
      return "not_first";
    } finally {
      polling--;
    }
  }

  function countAttempt(seq: number): number {
    const n = (attempts.get(seq)?.n ?? 0) + 1;
    attempts.delete(seq);
    attempts.set(seq, { n, at: Date.now() });
    if (attempts.size > ATTEMPTS_TRACKED_MAX) {
      const oldest = attempts.keys().next().value;
      if (oldest !== undefined) attempts.delete(oldest);
    }
    return n;
  }

  async function dead(
    m: JsMsg,
    reason: DeadReason,
    detail: string,
    originalSubject: string,
    ids: Record<string, string> = {},
  ): Promise<void> {
    await deadLetter(js, m, { subjectPrefix: o.subjectPrefix, reason, detail, originalSubject });
    o.metrics.outcomes.inc({ outcome: "dead_lettered" });
    o.metrics.deadLetters.inc({ reason });
    o.log.warn({ reason, detail, subject: originalSubject, stream_seq: m.seq, ...ids }, "dead letter");
  }

  const loop = startConsumerLoop({
    nats: o.nats,
    js,
    stream: JOBS_STREAM,
    consumer: RELAY_CONSUMER,
    maxHeld,
    keepAliveMs: Math.max(1_000, Math.floor(ackWaitMs / 3)),
    onMessage: handle,
    onConsuming: (on) => o.metrics.consuming.set(on ? 1 : 0),
    log: o.log,
  });

  // Backlog gauges: one stream-info request every few seconds. With work-queue retention every
  // stored message is an event not yet relayed, so the stream's count is the backlog.
  const gaugeTimer = setInterval(() => {
    jsm.streams.info(JOBS_STREAM).then(
      (info) => o.metrics.consumerPending.set(info.state.messages),
      () => undefined,
    );
    o.metrics.consumerAckPending.set(loop.held);
    gate.refreshLegacy().catch(() => undefined);
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
        loop.stop().then(() => true),
        delay(deadline, false, { ref: false }),
      ]);
      if (stopped) o.log.info("relay stopped");
      else
        o.log.warn({ held: loop.held }, "relay stop deadline passed; unfinished events will be redelivered");
    },
  };
}

/** When JetStream stored the message: the event's time of acceptance, stable across redeliveries. */
function storedAtMs(m: JsMsg): number {
  return Number(m.info.timestampNanos / 1_000_000);
}

/** How long an event waits before asking again whether its job's earlier event is gone. */
function waitDelayMs(deliveryCount: number): number {
  return Math.round(backoffMs(deliveryCount - 1, { baseMs: 50, capMs: 1_000 }));
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
