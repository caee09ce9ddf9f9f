import type { MsgHdrs } from "@nats-io/transport-node";
import { type DeadReason, decodeNatsEvent } from "../events/decode-nats-event.js";
import { revisionOf } from "../events/revision.js";
import { eventSubject, parseStoredSubject, type StoredSubject } from "../events/subjects.js";
import { toSvixMessage } from "../events/webhook-payload.js";
import { HEADER } from "../events/wire-names.js";
import type { JobEvent } from "../gen/jobhooks/v1/webhooks_pb.js";
import type { Logger } from "../log/logger.js";
import { backoffMs } from "../resilience/backoff.js";
import { BoundedMap } from "../resilience/bounded-map.js";
import type { Clock } from "../resilience/clock.js";
import type { MessageOutcome } from "../svix/gateway.js";
import { endRelaySpan, startRelaySpan } from "../tracing/spans.js";
import type { Circuit } from "./circuit.js";
import { type Decision, decide, type RetryLimits } from "./decide.js";
import type { Ewma } from "./ewma.js";
import type { JobTurns, Turn } from "./job-turn.js";
import type { RelayMetrics } from "./metrics.js";
import { jobKeyOf, type OrderingGate } from "./ordering-gate.js";
import type { Admission, SvixSender } from "./svix-sender.js";

/**
 * One message's way through the relay, as named stages with their inputs and outputs:
 *
 *   pull → decode → turn → schedule → send → decide → settle
 *
 * - pull: the shared consumer, or the look-ahead past a burst, hands over a `HeldMessage`;
 * - decode: subject and body → the event, or a dead letter (it reaches no one, so it waits for nothing);
 * - turn: whether it is its job's first stored event (`JobTurns`), within the job's in-process queue;
 * - schedule: the fair scheduler gives it a Svix slot, by tenant, and the circuit admits the call;
 * - send: one Svix call;
 * - decide: the outcome → ack, retry after a delay, or dead letter (`decide`, pure);
 * - settle: performs that on the message.
 *
 * The job's turn comes before the Svix slot: a slot granted to an event that then waits up to two
 * seconds for its predecessor would idle the budget. Everything a stage needs is in the one
 * `RelayContext`; `relayMessage` only runs the stages in order.
 *
 * A message is acked only after Svix accepted it (2xx, or 409: already sent) or after it was
 * dead-lettered; anything else is handed back, so nothing accepted is ever dropped.
 */

/** A message the relay holds: from the shared consumer, or read past a burst by the look-ahead. */
export interface HeldMessage {
  readonly seq: number;
  /** Known, when it was read, to be its job's first stored event (the look-ahead walks a tenant's
   * events from its first): it stays first until it leaves the stream, so its turn needs no ask. */
  readonly firstOfJob?: boolean;
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: MsgHdrs | undefined;
  /** When JetStream stored it: the event's time of acceptance, stable across redeliveries. */
  readonly storedAtMs: number;
  /** Times it was handed to a relay (1 the first time). */
  readonly deliveryCount: number;
  /** Svix accepted it, or it was dead-lettered: it leaves the stream. */
  ack(): void;
  /** Hand it back, to be tried again after `delayMs`. */
  nak(delayMs?: number): void;
  /** Still being worked on: not to be redelivered yet. */
  working(): void;
}

export interface RelayContext {
  subjectPrefix: string;
  maxPayloadBytes: number;
  limits: RetryLimits;
  clock: Clock;
  gate: OrderingGate;
  turns: JobTurns;
  sender: SvixSender;
  circuit: Circuit;
  attempts: AttemptLog;
  /** Moves the message to JOBS_DLQ and acks it. */
  deadLetter(
    m: HeldMessage,
    o: { reason: DeadReason; detail: string; originalSubject: string },
  ): Promise<void>;
  /** Resolves callers of one event-loop turn together (one socket write for their acks). */
  acksTogether(): Promise<void>;
  /** How long a send takes here, admission included. */
  callTime: Ewma;
  metrics: RelayMetrics;
  log: Logger;
  signal: AbortSignal;
}

/** An event ready for its job's turn. */
export interface DecodedEvent {
  m: HeldMessage;
  event: JobEvent;
  subject: StoredSubject;
  jobKey: string;
  originalSubject: string;
}

type Decoded =
  | { kind: "event"; item: DecodedEvent }
  | { kind: "dead"; reason: DeadReason; detail: string; originalSubject: string };

/** How often an event may give way to a predecessor queued behind it before it is handed back. */
const MAX_TURNS = 4;

export async function relayMessage(ctx: RelayContext, m: HeldMessage): Promise<void> {
  ctx.metrics.received.inc();
  const decoded = decode(ctx, m);
  if (decoded.kind === "dead") return deadLetterStage(ctx, m, decoded);
  const { item } = decoded;
  try {
    // Behind a predecessor this process holds (redelivered, so queued after this event), the
    // event takes its place again at the end of the job's queue: it then runs right after the
    // predecessor is acked, where a nak would cost it a redelivery delay, and a job's whole
    // backlog one event per delay after a long failure (docs/operations.md, "Measured: the
    // relay's waiting rules").
    for (let turn = 1; ; turn++) {
      const step = await ctx.gate.inTurn(item.jobKey, () => relayInTurn(ctx, item, turn < MAX_TURNS));
      if (step !== "requeue") break;
    }
  } catch (err) {
    // A bug of ours, or NATS failing under a dead letter or an ack: keep the message (the DLQ
    // publish is de-duplicated, Svix's idempotency key makes a second send harmless).
    ctx.metrics.outcomes.inc({ outcome: "failed" });
    ctx.log.error(
      { err, stream_seq: m.seq, tenant: item.subject.tenantId, job_id: item.subject.jobId },
      "relay failed on a message; it will be retried",
    );
    m.nak(ctx.limits.maxRetryDelayMs);
  }
}

/** The stages run while the event holds its job's in-process turn. */
async function relayInTurn(
  ctx: RelayContext,
  item: DecodedEvent,
  mayRequeue: boolean,
): Promise<"done" | "requeue"> {
  const { m } = item;
  if (ctx.signal.aborted) {
    m.nak();
    return "done";
  }
  const turn = await jobTurn(ctx, item);
  if (turn === "behind_held" && mayRequeue) return "requeue";
  if (turn === "gone") {
    // Already settled elsewhere (its ack's confirmation was lost, or a look-ahead sent it).
    await settle(ctx, item, { action: "ack", outcome: "already_sent" });
    return "done";
  }
  if (turn !== "first") {
    // The job's earlier event is still stored after a while: it waits for a retry, or for
    // redelivery after a crash. Hand this one back; it asks again later.
    m.nak(waitDelayMs(m.deliveryCount));
    ctx.metrics.outcomes.inc({ outcome: "waited" });
    return "done";
  }
  const admission = await schedule(ctx, item);
  if (admission === "stopped") {
    m.nak(); // shutting down: hand it back for another replica (or our restart)
    return "done";
  }
  const outcome = await send(ctx, item, admission);
  await settle(ctx, item, decideStage(ctx, item, outcome));
  return "done";
}

/** Subject and body → the event; an event that can never be delivered → its dead letter. */
export function decode(
  ctx: Pick<RelayContext, "subjectPrefix" | "maxPayloadBytes">,
  m: HeldMessage,
): Decoded {
  const subject = parseStoredSubject(ctx.subjectPrefix, m.subject);
  if (!subject) {
    const detail = `subject ${m.subject} is not ${ctx.subjectPrefix}.<tenant_id>.<job_id>.<status>`;
    return { kind: "dead", reason: "bad_subject", detail, originalSubject: m.subject };
  }
  const originalSubject = eventSubject(ctx.subjectPrefix, subject);
  const decoded = decodeNatsEvent({
    subject,
    data: m.data,
    contentType: m.headers?.get(HEADER.contentType) || undefined,
    storedAtMs: m.storedAtMs,
    maxPayloadBytes: ctx.maxPayloadBytes,
  });
  if (decoded.kind === "dead") return { ...decoded, originalSubject };
  return {
    kind: "event",
    item: { m, event: decoded.event, subject, jobKey: jobKeyOf(subject), originalSubject },
  };
}

/** Whether the event is its job's first stored event (see `JobTurns`). */
function jobTurn(ctx: RelayContext, item: DecodedEvent): Promise<Turn> {
  if (item.m.firstOfJob) return Promise.resolve("first");
  return ctx.turns.of(item.jobKey, item.m.seq, () => ctx.gate.firstStored(item.subject, item.m.seq));
}

/** The fair scheduler gives the event a Svix slot, by tenant; the circuit admits the call. */
function schedule(ctx: RelayContext, item: DecodedEvent): Promise<Admission | "stopped"> {
  return ctx.sender.admit(item.event.tenantId, () => item.m.working());
}

/** One Svix call. */
async function send(ctx: RelayContext, item: DecodedEvent, admission: Admission): Promise<MessageOutcome> {
  const { m, event } = item;
  const span = startRelaySpan(m.headers, {
    "jobhooks.tenant": event.tenantId,
    "jobhooks.job_id": event.jobId,
    "jobhooks.event_id": event.eventId,
    "jobhooks.delivery_count": m.deliveryCount,
  });
  const sentAt = performance.now();
  const revision = revisionOf(m.seq, m.headers?.get(HEADER.revision));
  const outcome = await ctx.sender.call(admission, event.tenantId, toSvixMessage(event, revision));
  if (outcome.kind === "created") ctx.callTime.observe(performance.now() - sentAt);
  endRelaySpan(span, outcome.kind, "reason" in outcome ? outcome.reason : undefined);
  return outcome;
}

/** The outcome → ack, retry or dead letter, counting the event's failed attempts. */
function decideStage(ctx: RelayContext, item: DecodedEvent, outcome: MessageOutcome): Decision {
  const { m } = item;
  const failed = outcome.kind === "transient" || outcome.kind === "internal";
  const before = ctx.attempts.get(m.seq);
  const tries = failed ? ctx.attempts.count(m.seq, ctx.clock.now()) : (before?.n ?? 0) + 1;
  return decide({
    outcome,
    attempts: tries,
    ageMs: ctx.clock.now() - m.storedAtMs,
    // "Svix otherwise answers": the circuit is closed and Svix accepted something else since
    // this event last failed. One event failing alone, or an outage's first seconds before the
    // circuit opens, so never count as the event's own fault.
    svixAnswering: ctx.circuit.answering && (before === undefined || ctx.circuit.lastSuccessAt > before.at),
    limits: ctx.limits,
  });
}

/** Performs the decision on the message. */
async function settle(ctx: RelayContext, item: DecodedEvent, decision: Decision): Promise<void> {
  const { m, event } = item;
  switch (decision.action) {
    case "ack":
      await ctx.acksTogether();
      m.ack();
      ctx.attempts.forget(m.seq);
      ctx.gate.done(item.jobKey, m.seq);
      ctx.metrics.outcomes.inc({ outcome: decision.outcome });
      return;
    case "dead_letter":
      await deadLetterStage(
        ctx,
        m,
        { ...decision, originalSubject: item.originalSubject },
        {
          tenant: event.tenantId,
          job_id: event.jobId,
          event_id: event.eventId,
        },
      );
      ctx.attempts.forget(m.seq);
      ctx.gate.done(item.jobKey, m.seq);
      return;
    case "retry": {
      m.nak(decision.delayMs);
      ctx.metrics.outcomes.inc({ outcome: decision.cause === "bug" ? "failed" : "retried" });
      const ids = { tenant: event.tenantId, job_id: event.jobId, event_id: event.eventId };
      if (decision.cause === "bug") {
        ctx.log.error(
          { ...ids, reason: decision.reason, attempts: ctx.attempts.get(m.seq)?.n },
          "relay bug while calling Svix; event kept, will retry",
        );
      } else {
        ctx.log.debug(
          { ...ids, reason: decision.reason, delay: decision.delayMs },
          "svix transient failure; will retry",
        );
      }
      return;
    }
  }
}

async function deadLetterStage(
  ctx: RelayContext,
  m: HeldMessage,
  o: { reason: DeadReason; detail: string; originalSubject: string },
  ids: Record<string, string> = {},
): Promise<void> {
  await ctx.deadLetter(m, o);
  ctx.metrics.outcomes.inc({ outcome: "dead_lettered" });
  ctx.metrics.deadLetters.inc({ reason: o.reason });
  ctx.log.warn(
    { reason: o.reason, detail: o.detail, subject: o.originalSubject, stream_seq: m.seq, ...ids },
    "dead letter",
  );
}

/** How long an event waits before asking again whether its job's earlier event is gone. */
function waitDelayMs(deliveryCount: number): number {
  return Math.round(backoffMs(deliveryCount - 1, { baseMs: 50, capMs: 1_000 }));
}

/** Attempt counts are kept for this many events at most (oldest forgotten first). */
const ATTEMPTS_TRACKED_MAX = 100_000;

/** Failed Svix attempts per stream sequence (and when the last one ended), as this process counted them. */
export class AttemptLog {
  private readonly bySeq = new BoundedMap<number, { n: number; at: number }>(ATTEMPTS_TRACKED_MAX);

  get(seq: number): { n: number; at: number } | undefined {
    return this.bySeq.get(seq);
  }

  /** One more failed attempt of the event at `seq`; returns how many it has had. */
  count(seq: number, now: number): number {
    const n = (this.bySeq.get(seq)?.n ?? 0) + 1;
    this.bySeq.set(seq, { n, at: now });
    return n;
  }

  forget(seq: number): void {
    this.bySeq.delete(seq);
  }
}
