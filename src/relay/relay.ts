import { setTimeout as delay } from "node:timers/promises";
import {
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";

import { type DeadReason, decodeNatsEvent } from "../events/decode-nats-event.js";
import { eventTypeDefinitions, toSvixMessage } from "../events/webhook-payload.js";
import type { Logger } from "../log/logger.js";
import type { NatsLink } from "../nats/connection.js";
import { dlqPrefix, JOBS_STREAM, relayConsumerName } from "../nats/provision.js";
import type { SvixGateway } from "../svix/gateway.js";
import { endRelaySpan, startRelaySpan } from "../tracing/spans.js";
import { retryDelayMs } from "./backoff.js";
import { type Admission, Circuit } from "./circuit.js";
import { deadLetter } from "./dead-letter.js";
import type { RelayMetrics } from "./metrics.js";
import { Semaphore } from "./semaphore.js";

export interface RelayOptions {
  nats: NatsLink;
  svix: SvixGateway;
  log: Logger;
  metrics: RelayMetrics;
  subjectPrefix: string;
  partitions: number;
  /** Svix requests in flight at once. */
  concurrency: number;
  maxPayloadBytes: number;
  /** Consecutive transient failures that open the circuit; probe interval while open. */
  circuit?: { failureThreshold?: number; probeIntervalMs?: number };
  /** Upper bound of the redelivery backoff after a transient failure. */
  maxRetryDelayMs?: number;
}

export interface RelayReadiness {
  consuming: boolean;
  partitionsConsuming: number;
  circuit: "closed" | "open";
}

export interface Relay {
  readiness(): RelayReadiness;
  /** Stops taking messages, lets Svix calls in flight finish, hands back messages still waiting. */
  stop(): Promise<void>;
}

/**
 * JetStream → Svix. One loop per partition consumer; each consumer has max_ack_pending 1, so a
 * loop holds at most one message, and a job's next event is not handed out (to this or any
 * replica) before the previous one is acked — per-job order survives crashes and scale-out.
 * A message is acked only after Svix accepted it (2xx, or 409: already sent) or after it was
 * dead-lettered; a transient failure naks it with a backoff, so nothing accepted is ever dropped.
 */
export async function startRelay(o: RelayOptions): Promise<Relay> {
  const js: JetStreamClient = jetstream(o.nats.nc);
  const jsm: JetStreamManager = await jetstreamManager(o.nats.nc);
  const limit = new Semaphore(o.concurrency);
  const stopping = new AbortController();
  const consuming = new Array<boolean>(o.partitions).fill(false);
  const active = new Array<ConsumerMessages | undefined>(o.partitions);
  const dlq = dlqPrefix(o.subjectPrefix);
  /** Messages this process holds (taken from JetStream, not yet acked or handed back). */
  let inFlight = 0;
  const circuit = new Circuit({
    ...o.circuit,
    onChange: (state, detail) => {
      o.metrics.circuitOpen.set(state === "open" ? 1 : 0);
      if (state === "open")
        o.log.warn(detail, "svix circuit opened: sending only probes until Svix recovers");
      else o.log.info("svix circuit closed: Svix answers again");
    },
  });

  // Event types are registered in the background: a Svix outage at start-up must not stop relaying
  // of whatever Svix accepts, nor the service starting.
  void registerEventTypes(o, stopping.signal);

  async function handle(m: JsMsg): Promise<void> {
    o.metrics.received.inc();
    const tokens = parseStoredSubject(o.subjectPrefix, m.subject);
    if (!tokens) {
      return dead(
        m,
        "bad_subject",
        `subject ${m.subject} is not ${o.subjectPrefix}.<tenant_id>.<job_id>.<status>`,
        m.subject,
      );
    }
    const originalSubject = `${o.subjectPrefix}.${tokens.tenantId}.${tokens.jobId}.${tokens.status}`;
    const decoded = decodeNatsEvent({
      subject: tokens,
      data: m.data,
      contentType: m.headers?.get("Content-Type") || undefined,
      storedAtMs: Number(m.info.timestampNanos / 1_000_000),
      maxPayloadBytes: o.maxPayloadBytes,
    });
    if (decoded.kind === "dead") return dead(m, decoded.reason, decoded.detail, originalSubject);

    const event = decoded.event;
    const message = toSvixMessage(event);
    let admission: Admission;
    try {
      admission = await circuit.admit(stopping.signal, () => m.working());
    } catch {
      m.nak(); // shutting down: hand it back for another replica (or our restart)
      return;
    }
    const span = startRelaySpan(m.headers, {
      "jobhooks.tenant": event.tenantId,
      "jobhooks.job_id": event.jobId,
      "jobhooks.event_id": event.eventId,
      "jobhooks.delivery_count": m.info.deliveryCount,
    });
    await limit.acquire();
    let outcome: Awaited<ReturnType<SvixGateway["createMessage"]>>;
    try {
      outcome = await o.svix.createMessage(event.tenantId, message);
    } finally {
      limit.release();
    }
    endRelaySpan(span, outcome.kind, "reason" in outcome ? outcome.reason : undefined);
    switch (outcome.kind) {
      case "created":
      case "already_sent":
        circuit.success(admission);
        m.ack();
        o.metrics.outcomes.inc({ outcome: outcome.kind === "created" ? "relayed" : "already_sent" });
        return;
      case "permanent":
        circuit.success(admission); // Svix answered: it is up
        return dead(m, "svix_rejected", outcome.reason, originalSubject, {
          tenant: event.tenantId,
          job_id: event.jobId,
          event_id: event.eventId,
        });
      case "transient": {
        circuit.failure(admission);
        const delay = retryDelayMs(m.info.deliveryCount, outcome.retryAfterMs, {
          capMs: o.maxRetryDelayMs ?? 2_000,
        });
        m.nak(delay);
        o.metrics.outcomes.inc({ outcome: "retried" });
        o.log.debug(
          {
            tenant: event.tenantId,
            job_id: event.jobId,
            event_id: event.eventId,
            reason: outcome.reason,
            delay,
          },
          "svix transient failure; will retry",
        );
        return;
      }
    }
  }

  async function dead(
    m: JsMsg,
    reason: DeadReason,
    detail: string,
    originalSubject: string,
    ids: Record<string, string> = {},
  ): Promise<void> {
    await deadLetter(js, m, { dlqPrefix: dlq, reason, detail, originalSubject });
    o.metrics.outcomes.inc({ outcome: "dead_lettered" });
    o.metrics.deadLetters.inc({ reason });
    o.log.warn({ reason, detail, subject: originalSubject, stream_seq: m.seq, ...ids }, "dead letter");
  }

  async function runPartition(p: number): Promise<void> {
    const name = relayConsumerName(p);
    while (!stopping.signal.aborted) {
      try {
        await o.nats.whenConnected(stopping.signal);
        const consumer = await js.consumers.get(JOBS_STREAM, name);
        // A short expiry makes a lost consumer leader (or a deleted consumer) visible in seconds.
        // max_ack_pending 1 lets the server hand over one message at a time anyway; a large pull
        // just saves a pull request per message.
        const messages = await consumer.consume({ max_messages: 256, expires: 5_000 });
        active[p] = messages;
        setConsuming(p, true);
        for await (const m of messages) {
          inFlight++;
          try {
            await handle(m);
          } catch (err) {
            // NATS trouble while dead-lettering or acking: leave the message unacked; JetStream
            // redelivers it after ack_wait, and the DLQ publish is de-duplicated.
            o.log.warn(
              { err, partition: p, stream_seq: m.seq },
              "could not finish a message; it will be redelivered",
            );
          } finally {
            inFlight--;
          }
          if (stopping.signal.aborted) break;
        }
      } catch (err) {
        if (!stopping.signal.aborted) o.log.warn({ err, partition: p }, "relay consumer lost; reconnecting");
      } finally {
        active[p] = undefined;
        setConsuming(p, false);
      }
      if (!stopping.signal.aborted) await sleep(1_000, stopping.signal);
    }
  }

  function setConsuming(p: number, on: boolean): void {
    consuming[p] = on;
    o.metrics.partitionsConsuming.set(consuming.filter(Boolean).length);
  }

  // Backlog gauges: one stream-info request every few seconds. With work-queue retention every
  // stored message is an event not yet relayed, so the stream's count is the backlog.
  const backlogTimer = setInterval(() => {
    jsm.streams.info(JOBS_STREAM).then(
      (info) => o.metrics.consumerPending.set(info.state.messages),
      () => undefined,
    );
    o.metrics.consumerAckPending.set(inFlight);
  }, 5_000);
  backlogTimer.unref();

  const loops = Array.from({ length: o.partitions }, (_, p) => runPartition(p));
  o.log.info({ partitions: o.partitions, concurrency: o.concurrency }, "relay started");

  return {
    readiness() {
      const n = consuming.filter(Boolean).length;
      return {
        consuming: n === o.partitions && o.nats.connected,
        partitionsConsuming: n,
        circuit: circuit.current,
      };
    },
    async stop() {
      if (stopping.signal.aborted) return;
      stopping.abort();
      clearInterval(backlogTimer);
      // close() lets the message being handled finish; nothing new is taken.
      await Promise.all(active.map((m) => m?.close().catch(() => undefined)));
      await Promise.all(loops);
      o.log.info("relay stopped");
    },
  };
}

/** `<prefix>.<partition>.<tenant>.<job>.<status>` as the stream stores it; undefined otherwise. */
export function parseStoredSubject(
  prefix: string,
  subject: string,
): { partition: number; tenantId: string; jobId: string; status: string } | undefined {
  if (!subject.startsWith(`${prefix}.`)) return undefined;
  const parts = subject.slice(prefix.length + 1).split(".");
  if (parts.length !== 4 || !/^\d+$/.test(parts[0] as string)) return undefined;
  const [partition, tenantId, jobId, status] = parts as [string, string, string, string];
  return { partition: Number(partition), tenantId, jobId, status };
}

async function registerEventTypes(o: RelayOptions, signal: AbortSignal): Promise<void> {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      await o.svix.upsertEventTypes(eventTypeDefinitions());
      return;
    } catch (err) {
      if (attempt === 0) o.log.warn({ err: String(err) }, "could not register svix event types; retrying");
      await sleep(Math.min(30_000, 1_000 * 2 ** attempt), signal);
    }
  }
}

/** Waits `ms`, or less when `signal` aborts (which is not an error here: the caller checks it). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return delay(ms, undefined, signal ? { signal } : {}).catch(() => undefined);
}
