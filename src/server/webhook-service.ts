import { create, toJsonString } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { type FieldViolation, validateJobEvent } from "../events/validate.js";
import {
  GetPortalLinkResponseSchema,
  type JobEvent,
  JobEventSchema,
  PublishJobEventResponseSchema,
  type WebhookService,
} from "../gen/jobhooks/v1/webhooks_pb.js";
import type { Logger } from "../log/logger.js";
import {
  type JobEventPublisher,
  PublishRejectedError,
  PublishUnavailableError,
} from "../nats/publish-job-event.js";
import type { PortalLinks } from "../svix/portal.js";
import { type Principal, principalOf } from "./auth.js";
import type { JobDeliveries } from "./list-job-deliveries.js";
import type { ServerMetrics } from "./metrics.js";
import { checkPortalLinkRequest } from "./portal-link-request.js";
import type { RateLimiter } from "./rate-limit.js";
import { revokePortalSessions } from "./revoke-portal-sessions.js";
import { badRequest, rateLimited, unavailable } from "./rpc-errors.js";

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
}

const encoder = new TextEncoder();

export function createWebhookService(o: WebhookServiceOptions): ServiceImpl<typeof WebhookService> {
  return {
    listJobDeliveries: (req, ctx) => o.deliveries.list(req, principalOf(ctx)),
    revokePortalSessions: (req, ctx) =>
      revokePortalSessions(req, principalOf(ctx), { portal: o.portal, log: o.log }),

    async getPortalLink(req, ctx) {
      const caller = principalOf(ctx);
      const check = checkPortalLinkRequest(req, caller);
      if (check.kind === "denied") throw new ConnectError(check.reason, Code.PermissionDenied);
      if (check.kind === "invalid") throw badRequest(Code.InvalidArgument, check.violations);
      const { params } = check;
      const rate = o.portalRate.take(rateKey(caller, params.tenantId));
      if (!rate.ok) {
        throw rateLimited("too many portal links requested; retry later", rate.retryAfterMs);
      }
      if (!o.portal) throw unavailable("the webhook portal is not configured on this server", 60_000);
      const requestedAt = Date.now();
      const outcome = await o.portal.portalLinkFor(params.tenantId, params);
      const logFields = { tenant: params.tenantId, caller: callerName(caller) };
      if (outcome.kind === "transient") {
        o.log.warn({ ...logFields, reason: outcome.reason }, "portal link failed: Svix unavailable");
        throw unavailable("the webhook portal is unavailable; retry shortly", outcome.retryAfterMs ?? 1_000);
      }
      if (outcome.kind === "failed") {
        o.log.error({ ...logFields, reason: outcome.reason }, "portal link failed: Svix refused");
        throw new ConnectError("could not open the webhook portal", Code.Internal);
      }
      // The URL logs its reader in: it never goes to the log.
      o.log.info({ ...logFields, app_id: outcome.appId, role: params.role }, "portal link issued");
      return create(GetPortalLinkResponseSchema, {
        url: outcome.url,
        expiresAt: timestampFromMs(requestedAt + params.expirySeconds * 1_000),
        appId: outcome.appId,
      });
    },

    async publishJobEvent(req, ctx) {
      const principal = principalOf(ctx);
      if (principal.kind !== "service") {
        throw new ConnectError("PublishJobEvent is for internal services only", Code.PermissionDenied);
      }
      if (!req.event) {
        o.metrics.published.inc({ outcome: "invalid" });
        throw badRequest(Code.InvalidArgument, [{ field: "event", description: "is required" }]);
      }
      const result = validateJobEvent(req.event);
      if (!result.ok) {
        o.metrics.published.inc({ outcome: "invalid" });
        throw badRequest(Code.InvalidArgument, result.violations, "event.");
      }
      const event = result.event;
      const body = encoder.encode(toJsonString(JobEventSchema, event));
      if (body.byteLength > o.maxPayloadBytes) {
        o.metrics.published.inc({ outcome: "too_large" });
        throw badRequest(
          Code.ResourceExhausted,
          [oversize(event, body.byteLength, o.maxPayloadBytes)],
          "event.",
        );
      }
      try {
        const stored = await o.publisher.publish(event, body, {
          budgetMs: budget(ctx, o.publishTimeoutMs),
          signal: ctx.signal,
        });
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
        return create(PublishJobEventResponseSchema, {
          eventId: event.eventId,
          streamSequence: stored.streamSequence,
          duplicate: stored.duplicate,
        });
      } catch (err) {
        if (err instanceof PublishUnavailableError) {
          o.metrics.published.inc({ outcome: "unavailable" });
          throw unavailable(
            "event store (NATS JetStream) unavailable; retry with the same event_id",
            err.retryAfterMs,
          );
        }
        if (err instanceof PublishRejectedError && err.tooLarge) {
          o.metrics.published.inc({ outcome: "too_large" });
          throw badRequest(
            Code.ResourceExhausted,
            [oversize(event, body.byteLength, o.maxPayloadBytes)],
            "event.",
          );
        }
        o.log.error(
          { err, tenant: event.tenantId, job_id: event.jobId, event_id: event.eventId },
          "publish failed",
        );
        throw new ConnectError("could not store the event", Code.Internal);
      }
    },
  };
}

/**
 * Whose bucket a call draws from: a customer key's own, or for a service token one per tenant, so a
 * platform backend opening portals for many customers is limited per customer, like they are.
 */
function rateKey(caller: Principal, tenantId: string): string {
  return caller.kind === "customer" ? `key:${caller.keyId}` : `service:${caller.name}:${tenantId}`;
}

function callerName(caller: Principal): string {
  return caller.kind === "customer" ? caller.keyId : caller.name;
}

/** Leaves the caller time to receive our answer before its own deadline fires. */
function budget(ctx: HandlerContext, maxMs: number): number {
  const t = ctx.timeoutMs();
  return t === undefined ? maxMs : Math.max(0, Math.min(maxMs, t - Math.min(250, t / 10)));
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
