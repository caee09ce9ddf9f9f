import { endpointFrom } from "./api-endpoints.js";
import { exampleFor } from "./api-event-types.js";
import { storeMessage } from "./api-messages.js";
import { FieldChecks, UID_PATTERN } from "./checks.js";
import type { StandInContext } from "./context.js";
import { badRequest, notFound } from "./errors.js";
import type { RouteDef } from "./router.js";
import { messageOut } from "./wire.js";

/**
 * send-example: the portal's "send a test event". It stores a real message with the event type's
 * schema example as payload, delivered to the one endpoint asked for — filters aside, since the user
 * picked the event type for that endpoint on purpose.
 */

export const sendExampleRoutes: RouteDef<StandInContext>[] = [
  {
    method: "POST",
    template: "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example",
    operationId: "v1.endpoint.send-example",
    appScoped: true,
    handle(req, ctx) {
      const checks = new FieldChecks();
      const body = checks.object(req.body, ["body"]);
      const eventType = checks.string(body, "eventType", ["body"], {
        required: true,
        pattern: UID_PATTERN,
        maxLength: 256,
      });
      const index = checks.integer(body, "exampleIndex", ["body"], 0, Number.MAX_SAFE_INTEGER) ?? 0;
      checks.orThrow();
      const { app, endpoint } = endpointFrom(ctx, req);
      const record = ctx.store.eventTypes.get(eventType as string);
      if (!record) throw notFound("Event type not found");
      const payload = exampleFor(record, index);
      if (!payload)
        throw badRequest("no_example", `Event type ${record.name} has no example at index ${index}`);
      const msg = storeMessage(
        ctx,
        app,
        { eventType: record.name, eventId: undefined, payload, channels: undefined, tags: undefined },
        req.now,
        endpoint.id,
      );
      return { status: 202, json: messageOut(msg, true) };
    },
  },
];
