import { type ApplicationIn, appFrom, appOrInline, readApplicationIn } from "./api-applications.js";
import { CHANNEL_PATTERN, FieldChecks, isObject, queryBoolean, TAG_PATTERN, UID_PATTERN } from "./checks.js";
import type { StandInContext } from "./context.js";
import { conflict, notFound } from "./errors.js";
import { newId } from "./ids.js";
import { type ApiRequest, json, type RouteDef } from "./router.js";
import type { AppRecord, MessageRecord } from "./store.js";
import { listResponse, messageOut, messageOutObject, pageFrom } from "./wire.js";

/**
 * Messages: the one route jobhooks calls per event, so the create path stays lean — hand checks,
 * one map lookup for the eventId conflict, and a hand-built answer.
 */

const NAME_RULE = { pattern: UID_PATTERN, maxLength: 256 };
const CHANNELS_RULE = { item: { pattern: CHANNEL_PATTERN, maxLength: 128 }, minItems: 1, maxItems: 10 };

interface MessageIn {
  eventType: string;
  eventId: string | undefined;
  payload: Record<string, unknown>;
  channels: string[] | undefined;
  tags: string[] | undefined;
  application: ApplicationIn | undefined;
}

/** The app and the message (id or eventId) the path names, or Svix's 404 when either is missing. */
export function messageFrom(ctx: StandInContext, req: ApiRequest): { app: AppRecord; msg: MessageRecord } {
  const app = appFrom(ctx, req);
  const msg = ctx.store.findMessage(app.id, req.params.msg_id as string);
  if (!msg) throw notFound();
  return { app, msg };
}

function readMessageIn(value: unknown): MessageIn {
  const checks = new FieldChecks();
  const loc = ["body"];
  const body = checks.object(value, loc);
  const eventType = checks.string(body, "eventType", loc, { required: true, ...NAME_RULE }) ?? "";
  const eventId = checks.string(body, "eventId", loc, { ...NAME_RULE, minLength: 1 });
  const payload = body.payload;
  if (payload === undefined || payload === null)
    checks.fail(["body", "payload"], "field required", "value_error.missing");
  else if (!isObject(payload))
    checks.fail(["body", "payload"], "value is not a valid dict", "type_error.dict");
  const channels = checks.stringArray(body, "channels", loc, CHANNELS_RULE);
  const tags = checks.stringArray(body, "tags", loc, {
    item: { pattern: TAG_PATTERN, maxLength: 128 },
    maxItems: 5,
  });
  checks.integer(body, "payloadRetentionPeriod", loc, 1, 90);
  checks.integer(body, "payloadRetentionHours", loc, 1, 2160);
  const application =
    body.application === undefined || body.application === null
      ? undefined
      : readApplicationIn(checks, body.application, ["body", "application"]);
  checks.orThrow();
  return { eventType, eventId, payload: payload as Record<string, unknown>, channels, tags, application };
}

/** Stores a message and hands it to the delivery worker; shared with send-example. */
export function storeMessage(
  ctx: StandInContext,
  app: AppRecord,
  input: Omit<MessageIn, "application">,
  now: number,
  onlyEndpointId: string | null = null,
): MessageRecord {
  const msg: MessageRecord = {
    id: newId("msg", now),
    appId: app.id,
    appUid: app.uid,
    eventType: input.eventType,
    eventId: input.eventId ?? null,
    payload: input.payload,
    body: JSON.stringify(input.payload),
    channels: input.channels ?? null,
    tags: input.tags ?? null,
    timestamp: new Date(now).toISOString(),
    onlyEndpointId,
  };
  ctx.store.addMessage(msg);
  ctx.log.counters.messagesCreated++;
  ctx.delivery.enqueue(msg, onlyEndpointId === null ? 0 : 1);
  return msg;
}

/** The message routes' `with_content` (Svix's default: true), or Svix's 422 for a bad value. */
function withContentQuery(req: ApiRequest): boolean {
  const checks = new FieldChecks();
  const withContent = queryBoolean(checks, req.query, "with_content") ?? true;
  checks.orThrow();
  return withContent;
}

export const messageRoutes: RouteDef<StandInContext>[] = [
  {
    method: "POST",
    template: "/api/v1/app/{app_id}/msg",
    operationId: "v1.message.create",
    handle(req, ctx) {
      const withContent = withContentQuery(req);
      const input = readMessageIn(req.body);
      const app = appOrInline(ctx, req, input.application);
      // Svix keeps eventIds unique per app (for a day); evicted messages no longer count here.
      if (input.eventId !== undefined && ctx.store.messageByEventId(app.id, input.eventId)) {
        ctx.log.counters.duplicatesRefused++;
        throw conflict("An event with this eventId already exists");
      }
      return { status: 202, json: messageOut(storeMessage(ctx, app, input, req.now), withContent) };
    },
  },
  {
    method: "GET",
    template: "/api/v1/app/{app_id}/msg",
    operationId: "v1.message.list",
    appScoped: true,
    handle(req, ctx) {
      const withContent = withContentQuery(req);
      const page = pageFrom(req.query, true);
      const app = appFrom(ctx, req);
      const channel = req.query?.get("channel");
      const tag = req.query?.get("tag");
      const eventTypes = req.query?.get("event_types")?.split(",");
      const messages = [...ctx.store.messages.values()].filter(
        (m) =>
          m.appId === app.id &&
          (!channel || (m.channels ?? []).includes(channel)) &&
          (!tag || (m.tags ?? []).includes(tag)) &&
          (!eventTypes || eventTypes.includes(m.eventType)),
      );
      return json(
        200,
        listResponse(
          messages,
          (m) => m.id,
          page,
          (m) => messageOutObject(m, withContent),
        ),
      );
    },
  },
  {
    method: "GET",
    template: "/api/v1/app/{app_id}/msg/{msg_id}",
    operationId: "v1.message.get",
    appScoped: true,
    handle(req, ctx) {
      const withContent = withContentQuery(req);
      const { msg } = messageFrom(ctx, req);
      return { status: 200, json: messageOut(msg, withContent) };
    },
  },
];
