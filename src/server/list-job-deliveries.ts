import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { JetStreamManager } from "@nats-io/jetstream";
import { deriveEventId } from "../events/event-id.js";
import { identifierProblem } from "../events/field-rules.js";
import { JOB_STATUSES } from "../events/job-status.js";
import type { FieldViolation } from "../events/validate.js";
import {
  EndpointDeliverySchema,
  EndpointDeliveryStatus,
  type EventDelivery,
  EventDeliverySchema,
  EventLocation,
  type JobStatus,
  type ListJobDeliveriesRequest,
  type ListJobDeliveriesResponse,
  ListJobDeliveriesResponseSchema,
} from "../gen/jobhooks/v1/webhooks_pb.js";
import type { Logger } from "../log/logger.js";
import {
  readDeadLetteredJobEvents,
  readWaitingJobEvents,
  type StoredJobEvent,
} from "../nats/job-events-stored.js";
import type { SvixCallFailure } from "../svix/call-failure.js";
import type { EndpointDeliveryInfo, MessageDeliveryOutcome, SvixDeliveries } from "../svix/deliveries.js";
import type { Principal } from "./auth.js";
import { callerTenant, rateKeyOf } from "./caller-tenant.js";
import type { RateLimiter } from "./rate-limit.js";
import { badRequest, rateLimited, unavailable } from "./rpc-errors.js";
import { svixCallError } from "./svix-call-errors.js";

/** Events listed per job; documented in the proto. */
export const MAX_EVENTS_PER_JOB = 50;
/** Most recent dead letters examined for the job. */
export const DLQ_SCAN_MAX = 10_000;
/** Svix lookups in flight per call, so one question cannot take the relay's Svix budget. */
const SVIX_CONCURRENCY = 4;

export interface JobDeliveriesOptions {
  jsm: JetStreamManager;
  subjectPrefix: string;
  maxPayloadBytes: number;
  /** Undefined without SVIX_TOKEN: the call answers UNAVAILABLE. */
  svix: SvixDeliveries | undefined;
  /** False while the relay's Svix circuit is open: Svix is failing, so we do not add to its load. */
  svixAvailable: () => boolean;
  /**
   * Calls per caller (a customer key; a service token per tenant): one call costs up to a few
   * dozen Svix requests from the quota the relay needs.
   */
  rate: RateLimiter;
  log: Logger;
}

export interface JobDeliveries {
  /**
   * `budgetMs`: how long the NATS look-ups may take before the call answers UNAVAILABLE (retry),
   * so a caller whose deadline is shorter than NATS's own time-outs still hears why.
   */
  list(
    req: ListJobDeliveriesRequest,
    caller: Principal,
    budgetMs?: number,
  ): Promise<ListJobDeliveriesResponse>;
}

/** NATS look-ups of one call when the caller set no deadline: far above a healthy cluster's. */
export const LOOKUP_BUDGET_MS = 5_000;

interface Candidate {
  eventId: string;
  status: JobStatus;
  occurredAt: Date | undefined;
  storedAt: Date | undefined;
  stored: StoredJobEvent | undefined;
  svix?: Extract<MessageDeliveryOutcome, { kind: "found" }>;
}

/**
 * ListJobDeliveries: a job's events joined from where jobhooks keeps them (JOBS, JOBS_DLQ) and where
 * Svix keeps them (message, destinations, attempts). Relayed events have left JOBS (work-queue
 * retention), so Svix is asked for each event id NATS still knows, the ids derived from each status
 * (`<job_id>.<status>`), and the messages tagged with the job (`jobTag`), which is how a relayed
 * event with a publisher-chosen id or a sequence is found once the relay tags its messages.
 */
export function createJobDeliveries(o: JobDeliveriesOptions): JobDeliveries {
  return {
    async list(req, caller, budgetMs = LOOKUP_BUDGET_MS) {
      const { tenantId, jobId } = checkRequest(req, caller);
      const allowed = o.rate.take(rateKeyOf(caller, tenantId));
      if (allowed.kind === "limited")
        throw rateLimited("too many delivery lookups; retry later", allowed.retryAfterMs);
      if (!o.svix) throw unavailable("Svix is not configured on this server", 60_000);
      if (!o.svixAvailable()) throw unavailable("Svix is failing (circuit open); retry shortly", 5_000);
      const svix = o.svix;
      /** A Svix lookup that failed ends the call: retry later, or INTERNAL with the reason logged. */
      const svixError = (failure: SvixCallFailure): ConnectError =>
        svixCallError(failure, {
          log: o.log,
          fields: { tenant: tenantId, job_id: jobId },
          event: "job deliveries",
          unavailable: "Svix is unavailable; retry shortly",
          refused: "could not read deliveries from Svix",
        });

      const lookup = {
        subjectPrefix: o.subjectPrefix,
        tenantId,
        jobId,
        maxEvents: MAX_EVENTS_PER_JOB,
        dlqScanMax: DLQ_SCAN_MAX,
        maxPayloadBytes: o.maxPayloadBytes,
      };
      let waiting: Awaited<ReturnType<typeof readWaitingJobEvents>>;
      let dead: Awaited<ReturnType<typeof readDeadLetteredJobEvents>>;
      let timer: NodeJS.Timeout | undefined;
      try {
        [waiting, dead] = await Promise.race([
          Promise.all([readWaitingJobEvents(o.jsm, lookup), readDeadLetteredJobEvents(o.jsm, lookup)]),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`no answer from NATS within ${budgetMs} ms`)),
              budgetMs,
            );
          }),
        ]);
      } catch (err) {
        o.log.warn({ err, tenant: tenantId, job_id: jobId }, "job deliveries: NATS lookup failed");
        throw unavailable("event store (NATS JetStream) unavailable; retry shortly", 1_000);
      } finally {
        clearTimeout(timer);
      }

      const candidates = new Map<string, Candidate>();
      let anonymous = 0;
      // Dead letters last: between the dead-letter publish and the ack an event is in both
      // streams, and it is dead-lettered.
      for (const e of [...waiting.events, ...dead.events]) {
        // A dead letter whose body could not be read has no event id; it is still listed.
        const key = e.eventId || `\u0000${anonymous++}`;
        candidates.set(key, {
          eventId: e.eventId,
          status: e.status,
          occurredAt: e.occurredAt,
          storedAt: e.storedAt,
          stored: e,
        });
      }
      // Messages the relay tagged with the job: found even when their ids cannot be derived.
      const tagged = await svix.jobMessages(tenantId, jobId);
      if (tagged.kind === "transient" || tagged.kind === "failed") throw svixError(tagged);
      for (const m of tagged.messages) {
        const status = JOB_STATUSES.find((s) => s.eventType === m.eventType)?.status;
        if (status === undefined || candidates.has(m.eventId)) continue;
        candidates.set(m.eventId, {
          eventId: m.eventId,
          status,
          occurredAt: undefined,
          storedAt: undefined,
          stored: undefined,
        });
      }
      for (const s of JOB_STATUSES) {
        const eventId = deriveEventId(jobId, s.status, undefined);
        if (!candidates.has(eventId)) {
          candidates.set(eventId, {
            eventId,
            status: s.status,
            occurredAt: undefined,
            storedAt: undefined,
            stored: undefined,
          });
        }
      }

      // Only events NATS no longer holds are looked up at Svix (at most 50 tagged + 5 derived ids,
      // three requests each): a waiting event has not been relayed (short of a crash between
      // Svix's answer and the ack, which the relay's next attempt settles as "already sent"), and
      // a dead letter never reached Svix or was refused by it.
      const toAsk = [...candidates.values()].filter((c) => c.eventId !== "" && !c.stored);
      const outcomes = await mapLimited(toAsk, SVIX_CONCURRENCY, (c) =>
        svix.messageDeliveries(tenantId, c.eventId),
      );
      let truncated = waiting.truncated || dead.truncated || tagged.truncated;
      toAsk.forEach((c, i) => {
        const outcome = outcomes[i] as MessageDeliveryOutcome;
        if (outcome.kind === "transient" || outcome.kind === "failed") throw svixError(outcome);
        if (outcome.kind === "found") {
          c.svix = outcome;
          truncated ||= outcome.truncated;
        }
      });

      const known = [...candidates.values()].filter((c) => c.stored || c.svix);
      known.sort((a, b) => timeOf(a) - timeOf(b) || a.status - b.status);
      truncated ||= known.length > MAX_EVENTS_PER_JOB;
      return create(ListJobDeliveriesResponseSchema, {
        events: known.slice(0, MAX_EVENTS_PER_JOB).map(toEventDelivery),
        truncated,
      });
    },
  };
}

function checkRequest(req: ListJobDeliveriesRequest, caller: Principal): { tenantId: string; jobId: string } {
  const tenant = callerTenant(req.tenantId, caller);
  if (tenant.kind === "denied") {
    throw new ConnectError("this API key may read only its own tenant's deliveries", Code.PermissionDenied);
  }
  const violations: FieldViolation[] = [...tenant.violations];
  const jobProblem = identifierProblem(req.jobId);
  if (jobProblem) violations.push({ field: "job_id", description: jobProblem });
  if (violations.length > 0) throw badRequest(Code.InvalidArgument, violations);
  return { tenantId: tenant.tenantId, jobId: req.jobId };
}

/** When the status change happened, else when jobhooks or Svix took it. */
function timeOf(c: Candidate): number {
  return (c.occurredAt ?? c.storedAt ?? c.svix?.timestamp ?? new Date(0)).getTime();
}

function toEventDelivery(c: Candidate): EventDelivery {
  const location = c.svix
    ? EventLocation.RELAYED
    : c.stored?.where === "dead_lettered"
      ? EventLocation.DEAD_LETTERED
      : EventLocation.WAITING;
  return create(EventDeliverySchema, {
    eventId: c.eventId,
    status: c.status,
    ...(c.occurredAt ? { occurredAt: timestampFromDate(c.occurredAt) } : {}),
    location,
    deadLetterReason: c.stored?.deadReason ?? "",
    deadLetterDetail: c.stored?.deadDetail ?? "",
    svixMessageId: c.svix?.msgId ?? "",
    endpoints: (c.svix?.endpoints ?? []).map(toEndpointDelivery),
  });
}

const STATUS: Record<EndpointDeliveryInfo["state"], EndpointDeliveryStatus> = {
  succeeded: EndpointDeliveryStatus.SUCCEEDED,
  pending: EndpointDeliveryStatus.PENDING,
  failing: EndpointDeliveryStatus.FAILING,
  failed: EndpointDeliveryStatus.FAILED,
};

function toEndpointDelivery(e: EndpointDeliveryInfo) {
  return create(EndpointDeliverySchema, {
    endpointId: e.endpointId,
    url: e.url,
    status: STATUS[e.state],
    lastResponseStatus: e.lastResponseStatus,
    attemptCount: e.attemptCount,
    ...(e.lastAttemptAt ? { lastAttemptAt: timestampFromDate(e.lastAttemptAt) } : {}),
    ...(e.nextAttemptAt ? { nextAttemptAt: timestampFromDate(e.nextAttemptAt) } : {}),
    endpointDisabled: e.disabled,
  });
}

/** Runs `fn` over `items`, at most `limit` at a time, results in input order. */
async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  });
  await Promise.all(workers);
  return results;
}
