import { endpointFrom } from "./api-endpoints.js";
import { messageFrom } from "./api-messages.js";
import { FieldChecks } from "./checks.js";
import type { StandInContext } from "./context.js";
import { type ApiRequest, json, type RouteDef } from "./router.js";
import type { AttemptRecord } from "./store.js";
import { attemptOut, endpointOut, listResponse, pageFrom } from "./wire.js";

/**
 * The attempt log, newest first, as the portal and `messageAttempt.listBy*` read it, and where each
 * message went (`list-attempted-destinations`: per endpoint status and next attempt).
 */

const STATUS_TEXT = ["success", "pending", "fail", "sending", "canceled"] as const;

const STATUSES = new Set(["0", "1", "2", "3", "4"]);
const CODE_CLASSES = new Set(["0", "100", "200", "300", "400", "500"]);

/** The query filters shared by both listings; unknown values are the spec's enum violations. */
function attemptFilter(req: ApiRequest, ctx: StandInContext): (a: AttemptRecord) => boolean {
  const checks = new FieldChecks();
  const status = req.query?.get("status");
  if (status != null && !STATUSES.has(status))
    checks.fail(["query", "status"], "value is not a valid enumeration member", "type_error.enum");
  const codeClass = req.query?.get("status_code_class");
  if (codeClass != null && !CODE_CLASSES.has(codeClass))
    checks.fail(["query", "status_code_class"], "value is not a valid enumeration member", "type_error.enum");
  checks.orThrow();
  const eventTypes = req.query?.get("event_types")?.split(",");
  const channel = req.query?.get("channel");
  const wantsMessage = Boolean(eventTypes || channel);
  return (a) => {
    if (status != null && a.status !== Number(status)) return false;
    if (codeClass != null && Math.floor(a.responseStatusCode / 100) * 100 !== Number(codeClass)) return false;
    if (!wantsMessage) return true;
    const msg = ctx.store.messages.get(a.msgId);
    if (!msg) return false;
    return (
      (!eventTypes || eventTypes.includes(msg.eventType)) &&
      (!channel || (msg.channels ?? []).includes(channel))
    );
  };
}

export const attemptRoutes: RouteDef<StandInContext>[] = [
  {
    method: "GET",
    template: "/api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}",
    operationId: "v1.message-attempt.list-by-endpoint",
    appScoped: true,
    handle(req, ctx) {
      const page = pageFrom(req.query, true);
      const keep = attemptFilter(req, ctx);
      const { endpoint } = endpointFrom(ctx, req);
      const attempts = [...ctx.store.attempts.values()].filter(
        (a) => a.endpointId === endpoint.id && keep(a),
      );
      return json(
        200,
        listResponse(attempts, (a) => a.id, page, attemptOut),
      );
    },
  },
  {
    method: "GET",
    template: "/api/v1/app/{app_id}/attempt/msg/{msg_id}",
    operationId: "v1.message-attempt.list-by-msg",
    appScoped: true,
    handle(req, ctx) {
      const page = pageFrom(req.query, true);
      const keep = attemptFilter(req, ctx);
      const { app, msg } = messageFrom(ctx, req);
      const endpointParam = req.query?.get("endpoint_id");
      const endpointId = endpointParam
        ? (ctx.store.findEndpoint(app.id, endpointParam)?.id ?? endpointParam)
        : null;
      const attempts = [...ctx.store.attempts.values()].filter(
        (a) => a.msgId === msg.id && (endpointId === null || a.endpointId === endpointId) && keep(a),
      );
      return json(
        200,
        listResponse(attempts, (a) => a.id, page, attemptOut),
      );
    },
  },
  {
    method: "GET",
    template: "/api/v1/app/{app_id}/msg/{msg_id}/endpoint",
    operationId: "v1.message-attempt.list-attempted-destinations",
    appScoped: true,
    handle(req, ctx) {
      const page = pageFrom(req.query, false);
      const { app, msg } = messageFrom(ctx, req);
      const destinations = [...(ctx.store.destinations.get(msg.id)?.entries() ?? [])].flatMap(
        ([endpointId, d]) => {
          const endpoint = ctx.store.findEndpoint(app.id, endpointId);
          return endpoint ? [{ endpoint, d }] : [];
        },
      );
      destinations.sort((a, b) => (a.endpoint.id < b.endpoint.id ? -1 : 1));
      return json(
        200,
        listResponse(
          destinations,
          ({ endpoint }) => endpoint.id,
          page,
          ({ endpoint, d }) => ({
            ...endpointOut(endpoint),
            status: d.status,
            statusText: STATUS_TEXT[d.status],
            nextAttempt: d.nextAttempt,
          }),
        ),
      );
    },
  },
  {
    method: "POST",
    template: "/api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend",
    operationId: "v1.message-attempt.resend",
    appScoped: true,
    handle(req, ctx) {
      const { msg } = messageFrom(ctx, req);
      const { endpoint } = endpointFrom(ctx, req);
      ctx.delivery.resend(msg, endpoint.id);
      return json(202, {});
    },
  },
];
