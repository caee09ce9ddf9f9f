import { create, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { type FieldViolation, validateJobEvent } from "../events/validate.js";
import {
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
import { principalOf } from "./auth.js";
import type { ServerMetrics } from "./metrics.js";
import { badRequest, unavailable } from "./rpc-errors.js";

export interface WebhookServiceOptions {
  publisher: JobEventPublisher;
  /** Largest accepted event, measured as the JSON stored in NATS (what the relay sends to Svix). */
  maxPayloadBytes: number;
  /** How long PublishJobEvent waits for JetStream when the caller set no shorter deadline. */
  publishTimeoutMs: number;
  metrics: ServerMetrics;
  log: Logger;
}

const encoder = new TextEncoder();

export function createWebhookService(o: WebhookServiceOptions): ServiceImpl<typeof WebhookService> {
  return {
    async getPortalLink() {
      throw new ConnectError("GetPortalLink is not available on this server yet", Code.Unimplemented);
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
