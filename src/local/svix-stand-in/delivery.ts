import { newId } from "./ids.js";
import type { OperationalWebhookSender } from "./operational-webhooks.js";
import { signatureHeaders } from "./signing.js";
import type { AttemptRecord, EndpointRecord, MessageRecord, StandInStore } from "./store.js";

/**
 * The delivery worker: POSTs each message to every endpoint that wants it, signed, with Svix's retry
 * schedule and an attempt log entry per try. Concurrency is bounded so a slow or dead endpoint costs a
 * few sockets, not memory without end; retries wait on timers, not in the queue.
 */

/** Svix's schedule, in seconds: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
export const SVIX_RETRY_SCHEDULE_SECONDS = [0, 5, 300, 1800, 7200, 18_000, 36_000, 36_000] as const;
/** Svix gives an endpoint 15 s to answer. */
export const ATTEMPT_TIMEOUT_MS = 15_000;
const RESPONSE_EXCERPT_BYTES = 4096;

export interface DeliveryOptions {
  enabled: boolean;
  timeScale: number;
  concurrency: number;
  attemptTimeoutMs: number;
  log?: (obj: Record<string, unknown>, msg: string) => void;
  /** Sends Svix's operational webhooks (failing, exhausted, recovered, endpoint disabled). */
  operational?: OperationalWebhookSender;
}

/** Svix sends `message.attempt.failing` on a message's fourth failed attempt to an endpoint. */
const FAILING_AT = 4;

interface DeliveryTask {
  msg: MessageRecord;
  endpointId: string;
  /** Index into the retry schedule. */
  attempt: number;
  triggerType: 0 | 1;
}

export interface DeliveryCounters {
  attempts: number;
  succeeded: number;
  failed: number;
  exhausted: number;
}

/** Svix's filters: an endpoint with event types or channels gets only messages matching them. */
export function endpointWants(endpoint: EndpointRecord, msg: MessageRecord): boolean {
  if (endpoint.disabled) return false;
  if (msg.onlyEndpointId !== null) return msg.onlyEndpointId === endpoint.id;
  if (endpoint.eventTypes && !endpoint.eventTypes.includes(msg.eventType)) return false;
  if (endpoint.channels && !(msg.channels ?? []).some((c) => endpoint.channels?.includes(c))) return false;
  return true;
}

/** At most `limit` bytes of a response, as text: the attempt log keeps an excerpt, not whole pages. */
async function excerptOf(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < RESPONSE_EXCERPT_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
  }
  await reader.cancel().catch(() => {});
  return Buffer.concat(chunks).subarray(0, RESPONSE_EXCERPT_BYTES).toString("utf8");
}

function describeFailure(error: unknown, timedOut: boolean): string {
  if (timedOut) return "Request timed out";
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message ?? String(error);
}

export class DeliveryWorker {
  readonly counters: DeliveryCounters = { attempts: 0, succeeded: 0, failed: 0, exhausted: 0 };
  private readonly queue: DeliveryTask[] = [];
  private head = 0;
  private running = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<AbortController>();
  private stopped = false;
  /**
   * endpointId → when it started failing (first failure since its last success). An endpoint
   * still failing when a message's whole retry schedule is spent is disabled, the stand-in's
   * scaled-down version of Svix disabling endpoints that fail for days.
   */
  private readonly failingSince = new Map<string, string>();

  constructor(
    private readonly store: StandInStore,
    private readonly options: DeliveryOptions,
  ) {}

  /** Deliveries not yet finished: queued, in flight, or waiting for a retry. */
  pending(): number {
    return this.queue.length - this.head + this.running + this.timers.size;
  }

  enqueue(msg: MessageRecord, triggerType: 0 | 1): void {
    if (!this.options.enabled || this.stopped) return;
    const endpoints = this.store.endpoints.get(msg.appId);
    if (!endpoints) return;
    for (const endpoint of endpoints.values()) {
      if (endpointWants(endpoint, msg)) {
        this.queue.push({ msg, endpointId: endpoint.id, attempt: 0, triggerType });
        Object.assign(this.store.destination(msg.id, endpoint.id), {
          status: 1,
          nextAttempt: new Date().toISOString(),
        });
      }
    }
    this.pump();
  }

  /** One more (manual) delivery of a message to one endpoint, as Svix's resend does. */
  resend(msg: MessageRecord, endpointId: string): void {
    if (!this.options.enabled || this.stopped) return;
    this.queue.push({ msg, endpointId, attempt: 0, triggerType: 1 });
    this.pump();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const controller of this.inFlight) controller.abort();
    this.queue.length = 0;
    this.head = 0;
  }

  private pump(): void {
    while (this.running < this.options.concurrency && this.head < this.queue.length) {
      const task = this.queue[this.head++] as DeliveryTask;
      this.running++;
      void this.attempt(task).finally(() => {
        this.running--;
        this.pump();
      });
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  private async attempt(task: DeliveryTask): Promise<void> {
    const endpoint = this.store.findEndpoint(task.msg.appId, task.endpointId);
    // A deleted or since-disabled endpoint gets no further attempts, as in Svix.
    if (!endpoint || endpoint.disabled || this.stopped) return;
    const started = Date.now();
    const destination = this.store.destination(task.msg.id, endpoint.id);
    destination.status = 3;
    destination.nextAttempt = null;
    endpoint.secrets = endpoint.secrets.filter((s) => s.expiresAt === null || s.expiresAt > started);
    const headers = {
      ...endpoint.headers,
      ...signatureHeaders(
        endpoint.secrets.map((s) => s.key),
        task.msg.id,
        Math.floor(started / 1000),
        task.msg.body,
      ),
      "content-type": "application/json",
      "user-agent": "Svix-Webhooks/1.0 (jobhooks stand-in)",
    };
    const controller = new AbortController();
    let timedOut = false;
    const timeout = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.options.attemptTimeoutMs);
    this.inFlight.add(controller);
    let statusCode = 0;
    let response: string;
    try {
      const answer = await fetch(endpoint.url, {
        method: "POST",
        headers,
        body: task.msg.body,
        signal: controller.signal,
        redirect: "manual",
      });
      statusCode = answer.status;
      response = await excerptOf(answer);
    } catch (error) {
      response = describeFailure(error, timedOut);
    } finally {
      clearTimeout(timeout);
      this.inFlight.delete(controller);
    }
    if (this.stopped) return;
    const ok = statusCode >= 200 && statusCode < 300;
    const record: AttemptRecord = {
      id: newId("atmpt"),
      appId: task.msg.appId,
      msgId: task.msg.id,
      endpointId: endpoint.id,
      url: endpoint.url,
      response,
      responseStatusCode: statusCode,
      responseDurationMs: Date.now() - started,
      status: ok ? 0 : 2,
      triggerType: task.triggerType,
      timestamp: new Date(started).toISOString(),
      requestHeaders: headers,
    };
    this.store.addAttempt(record);
    this.counters.attempts++;
    if (ok) {
      this.counters.succeeded++;
      destination.status = 0;
      this.failingSince.delete(endpoint.id);
      if (destination.failureReported) this.report("message.attempt.recovered", task, endpoint, record);
      return;
    }
    this.counters.failed++;
    destination.failures++;
    if (!this.failingSince.has(endpoint.id)) this.failingSince.set(endpoint.id, record.timestamp);
    const retrying = this.retryLater(task, endpoint);
    record.nextAttempt = retrying ? new Date(Date.now() + retrying).toISOString() : null;
    if (retrying) {
      destination.status = 1;
      destination.nextAttempt = new Date(Date.now() + retrying).toISOString();
      if (destination.failures === FAILING_AT) this.report("message.attempt.failing", task, endpoint, record);
      return;
    }
    destination.status = 2;
    this.report("message.attempt.exhausted", task, endpoint, record);
    const failSince = this.failingSince.get(endpoint.id);
    if (failSince !== undefined && !endpoint.disabled) {
      endpoint.disabled = true;
      endpoint.updatedAt = new Date().toISOString();
      this.options.operational?.("endpoint.disabled", {
        appId: task.msg.appId,
        appUid: task.msg.appUid,
        endpointId: endpoint.id,
        endpointUid: endpoint.uid,
        failSince,
        trigger: "automatic",
      });
    }
  }

  /** `message.attempt.*`: the MessageAttempt…EventData shape of openapi.json. */
  private report(
    type: "message.attempt.failing" | "message.attempt.exhausted" | "message.attempt.recovered",
    task: DeliveryTask,
    endpoint: EndpointRecord,
    attempt: AttemptRecord,
  ): void {
    if (type !== "message.attempt.recovered")
      this.store.destination(task.msg.id, endpoint.id).failureReported = true;
    this.options.operational?.(type, {
      appId: task.msg.appId,
      appUid: task.msg.appUid,
      msgId: task.msg.id,
      msgEventId: task.msg.eventId,
      endpointId: endpoint.id,
      lastAttempt: {
        id: attempt.id,
        responseStatusCode: attempt.responseStatusCode,
        timestamp: attempt.timestamp,
      },
    });
  }

  /** Schedules the next try and returns its delay in ms, or 0 when the schedule is spent. */
  private retryLater(task: DeliveryTask, endpoint: EndpointRecord): number {
    const next = task.attempt + 1;
    const waitSeconds = SVIX_RETRY_SCHEDULE_SECONDS[next];
    if (waitSeconds === undefined) {
      this.counters.exhausted++;
      this.options.log?.(
        { app_id: task.msg.appId, msg_id: task.msg.id, endpoint_id: endpoint.id, attempts: next },
        "delivery failed after the last scheduled attempt",
      );
      return 0;
    }
    const delayMs = waitSeconds * 1000 * this.options.timeScale;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.queue.push({ ...task, attempt: next });
      this.pump();
    }, delayMs);
    timer.unref();
    this.timers.add(timer);
    // At least 1 ms, so a zero-scaled wait still reads as "will retry".
    return Math.max(1, delayMs);
  }
}
