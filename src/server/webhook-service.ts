import { create, toJsonString } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { type FieldViolation, validateJobEvent } from "../events/validate.js";
import {
  GetPortalLinkResponseSchema,
  type JobEvent,
  JobEventSchema,
  type PublishJobEventRequest,
  type PublishJobEventResponse,
  PublishJobEventResponseSchema,
  PublishJobEventResultSchema,
  PublishJobEventsResponseSchema,
  type WebhookService,
} from "../gen/jobhooks/v1/webhooks_pb.js";
import type { Logger } from "../log/logger.js";
import {
  type JobEventPublisher,
  PublishTooLargeError,
  PublishUnavailableError,
} from "../nats/publish-job-event.js";
import type { PortalLinks } from "../svix/portal.js";
import { actorOf } from "./admin-call.js";
import { principalOf } from "./auth.js";
import { callerName, rateKeyOf } from "./caller-tenant.js";
import { type JobDeliveries, LOOKUP_BUDGET_MS } from "./list-job-deliveries.js";
import type { ServerMetrics } from "./metrics.js";
import { checkPortalLinkRequest } from "./portal-link-request.js";
import type { RateLimiter } from "./rate-limit.js";
import { revokePortalSessions } from "./revoke-portal-sessions.js";
import { badRequest, rateLimited, statusOf, unavailable } from "./rpc-errors.js";
import { svixCallError } from "./svix-call-errors.js";
import { type TenantAdmin, tenantAdminHandlers } from "./tenant-admin.js";

export interface WebhookServiceOptions {
  publisher: JobEventPublisher;
  /** Largest accepted event, measured as the JSON stored in NATS (what the relay sends to Svix). */
  maxPayloadBytes: number;
  /** How long PublishJobEvent waits for JetStream when the caller set no shorter deadline. */
  publishTimeoutMs: number;
  /** Svix portals; without it (no SVIX_TOKEN) GetPortalLink answers UNAVAILABLE. */
  portal: PortalLinks | undefined;
  /** GetPortalLink calls per caller, so one customer cannot spend the Svix quota all share. */
  portalRate: RateLimiter;
  metrics: ServerMetrics;
  log: Logger;
  /** ListJobDeliveries (src/server/list-job-deliveries.ts). */
  deliveries: JobDeliveries;
  /** Keys, GetTenant, DeleteTenant and the audit trail (src/server/tenant-admin.ts). */
  admin?: TenantAdmin | undefined;
}

const encoder = new TextEncoder();

export interface WebhookServiceHandlers {
  impl: ServiceImpl<typeof WebhookService>;
  /**
   * PublishJobEvent for a caller the edge admitted (a service), without a Connect handler context:
   * what the gRPC framing calls. Throws ConnectError as the RPC does.
   */
  publishJobEvent(
    req: PublishJobEventRequest,
    timeoutMs: number | undefined,
    signal: AbortSignal,
  ): Promise<PublishJobEventResponse>;
}

export function createWebhookService(o: WebhookServiceOptions): WebhookServiceHandlers {
  const impl: ServiceImpl<typeof WebhookService> = {
    listJobDeliveries: (req, ctx) =>
      o.deliveries.list(req, principalOf(ctx), budget(ctx.timeoutMs(), LOOKUP_BUDGET_MS)),
    revokePortalSessions: (req, ctx) =>
      revokePortalSessions(req, principalOf(ctx), { portal: o.portal, log: o.log, audit: o.admin?.audit }),
    ...tenantAdminHandlers(o.admin),

    async getPortalLink(req, ctx) {
      const caller = principalOf(ctx);
      const check = checkPortalLinkRequest(req, caller);
      if (check.kind === "denied") throw new ConnectError(check.reason, Code.PermissionDenied);
      if (check.kind === "invalid") throw badRequest(Code.InvalidArgument, check.violations);
      const { params } = check;
      const rate = o.portalRate.take(rateKeyOf(caller, params.tenantId));
      if (rate.kind === "limited") {
        throw rateLimited("too many portal links requested; retry later", rate.retryAfterMs);
      }
      if (!o.portal) throw unavailable("the webhook portal is not configured on this server", 60_000);
      const requestedAt = Date.now();
      const outcome = await o.portal.portalLinkFor(params.tenantId, params);
      const logFields = { tenant: params.tenantId, caller: callerName(caller) };
      if (outcome.kind === "transient" || outcome.kind === "failed") {
        throw svixCallError(outcome, {
          log: o.log,
          fields: logFields,
          event: "portal link failed",
          unavailable: "the webhook portal is unavailable; retry shortly",
          refused: "could not open the webhook portal",
        });
      }
      // The URL logs its reader in: it never goes to the log.
      o.log.info({ ...logFields, app_id: outcome.appId, role: params.role }, "portal link issued");
      await o.admin?.audit.record({
        act: "portal_link.issued",
        tenant: params.tenantId,
        by: actorOf(caller),
        details: {
          role: params.role,
          expiry_seconds: params.expirySeconds,
          session_id: params.sessionId ?? "",
        },
      });
      return create(GetPortalLinkResponseSchema, {
        url: outcome.url,
        expiresAt: timestampFromMs(requestedAt + params.expirySeconds * 1_000),
        appId: outcome.appId,
      });
    },

    publishJobEvent(req, ctx) {
      return publishUnary(req, ctx.timeoutMs(), ctx.signal);
    },

    async publishJobEvents(req, ctx) {
      const count = req.events.length;
      if (count === 0) {
        throw badRequest(Code.InvalidArgument, [
          { field: "events", description: "must hold 1 to 1000 events" },
        ]);
      }
      if (count > MAX_BATCH_EVENTS) {
        throw badRequest(Code.ResourceExhausted, [
          { field: "events", description: `holds ${count} events; at most ${MAX_BATCH_EVENTS} per call` },
        ]);
      }
      // Every event is validated and published at once: the NATS connection pipelines the
      // publishes in call order, so a batch costs about one JetStream round trip, not one per event.
      const budgetMs = budget(ctx.timeoutMs(), o.publishTimeoutMs);
      const outcomes = await Promise.all(
        req.events.map((e, i) => publishOne(e, `events[${i}].`, budgetMs, ctx.signal)),
      );
      return create(PublishJobEventsResponseSchema, {
        results: outcomes.map((r) =>
          r.kind === "refused"
            ? create(PublishJobEventResultSchema, { eventId: r.eventId, error: statusOf(r.error) })
            : create(PublishJobEventResultSchema, r.stored),
        ),
      });
    },
  };

  async function publishUnary(
    req: PublishJobEventRequest,
    timeoutMs: number | undefined,
    signal: AbortSignal,
  ): Promise<PublishJobEventResponse> {
    if (!req.event) {
      o.metrics.published.inc({ outcome: "invalid" });
      throw badRequest(Code.InvalidArgument, [{ field: "event", description: missingEventHint }]);
    }
    const outcome = await publishOne(req.event, "event.", budget(timeoutMs, o.publishTimeoutMs), signal);
    if (outcome.kind === "refused") throw outcome.error;
    return create(PublishJobEventResponseSchema, outcome.stored);
  }

  return { impl, publishJobEvent: publishUnary };

  type Outcome =
    | { kind: "stored"; stored: { eventId: string; streamSequence: bigint; duplicate: boolean } }
    | { kind: "refused"; error: ConnectError; eventId: string };

  function refused(error: ConnectError, eventId: string): Outcome {
    return { kind: "refused", error, eventId };
  }

  /** Validates, stores and counts one event; never throws (a batch needs every outcome). */
  async function publishOne(
    input: JobEvent,
    prefix: string,
    budgetMs: number,
    signal: AbortSignal,
  ): Promise<Outcome> {
    const result = validateJobEvent(input);
    if (result.kind === "invalid") {
      o.metrics.published.inc({ outcome: "invalid" });
      return refused(badRequest(Code.InvalidArgument, result.violations, prefix), input.eventId);
    }
    const event = result.event;
    const body = encoder.encode(toJsonString(JobEventSchema, event));
    // Over our limit, or over the stream's (JetStream's answer): either way the caller is told
    // which field makes it large.
    const tooLarge = (): Outcome => {
      o.metrics.published.inc({ outcome: "too_large" });
      const violation = oversize(event, body.byteLength, o.maxPayloadBytes);
      return refused(badRequest(Code.ResourceExhausted, [violation], prefix), event.eventId);
    };
    if (body.byteLength > o.maxPayloadBytes) return tooLarge();
    try {
      const stored = await o.publisher.publish(event, body, { budgetMs, signal });
      o.metrics.published.inc({ outcome: stored.duplicate ? "duplicate" : "stored" });
      o.log.debug(
        {
          tenant: event.tenantId,
          event_id: event.eventId,
          stream_seq: String(stored.streamSequence),
          duplicate: stored.duplicate,
        },
        "event published",
      );
      return {
        kind: "stored",
        stored: {
          eventId: event.eventId,
          streamSequence: stored.streamSequence,
          duplicate: stored.duplicate,
        },
      };
    } catch (err) {
      if (err instanceof PublishUnavailableError) {
        o.metrics.published.inc({ outcome: "unavailable" });
        return refused(
          unavailable(
            "event store (NATS JetStream) unavailable; retry with the same event_id",
            err.retryAfterMs,
          ),
          event.eventId,
        );
      }
      if (err instanceof PublishTooLargeError) return tooLarge();
      o.log.error(
        { err, tenant: event.tenantId, job_id: event.jobId, event_id: event.eventId },
        "publish failed",
      );
      return refused(
        new ConnectError("could not store the event", Code.Internal, undefined, undefined, err),
        event.eventId,
      );
    }
  }
}

/** Most events in one PublishJobEvents call. */
export const MAX_BATCH_EVENTS = 1_000;

/** What a body without the `event` wrapper most likely means, said where the caller will read it. */
const missingEventHint =
  'is required: the event\'s fields go inside "event": {...}, e.g. {"event": {"tenantId": "demo", "jobId": "job_1", "status": "JOB_STATUS_CREATED"}}';

/**
 * Leaves the caller time to receive our answer before its own deadline fires: a fifth of it, up to
 * a second. 250 ms lost the race to the caller's timer on a loaded machine (status matrix), where a
 * client's event loop can be late by half a second and then runs its timers before its reads.
 */
function budget(t: number | undefined, maxMs: number): number {
  return t === undefined ? maxMs : Math.max(0, Math.min(maxMs, t - Math.min(1_000, t / 5)));
}

/** Names the field that makes an event too large, so the publisher knows what to trim. */
function oversize(event: JobEvent, bytes: number, limit: number): FieldViolation {
  const sizes: Array<[string, number]> = [
    [
      "result",
      event.result
        ? toJsonString(JobEventSchema, create(JobEventSchema, { result: event.result })).length
        : 0,
    ],
    ["metadata", JSON.stringify(event.metadata).length],
    ["error.message", event.error?.message.length ?? 0],
  ];
  sizes.sort((a, b) => b[1] - a[1]);
  const field = (sizes[0]?.[1] ?? 0) > 0 ? (sizes[0]?.[0] as string) : "";
  return { field, description: `event is ${bytes} bytes as JSON, over the ${limit}-byte limit` };
}
