import { FieldChecks, isObject, queryBoolean, UID_PATTERN } from "./checks.js";
import type { StandInContext } from "./context.js";
import { conflict, notFound } from "./errors.js";
import { json, noContent, type RouteDef } from "./router.js";
import type { EventTypeRecord } from "./store.js";
import { eventTypeOut, listResponse, pageFrom } from "./wire.js";

/**
 * Event types with their JSON schemas. jobhooks upserts its five at start; the portal lists them and
 * send-example takes its payload from a schema's `examples`.
 */

const NAME_RULE = { pattern: UID_PATTERN, maxLength: 256 };
const FLAGS_RULE = { item: NAME_RULE, minItems: 1 };

type EventTypeFields = Omit<EventTypeRecord, "name" | "createdAt" | "updatedAt">;

/** `EventTypeIn` and `EventTypeUpsertIn` differ only in where the name comes from. */
function readEventTypeFields(checks: FieldChecks, value: unknown): EventTypeFields {
  const loc = ["body"];
  const body = checks.object(value, loc);
  const schemas = body.schemas;
  if (schemas !== undefined && schemas !== null && !isObject(schemas))
    checks.fail(["body", "schemas"], "value is not a valid dict", "type_error.dict");
  return {
    description: checks.string(body, "description", loc, { required: true }) ?? "",
    archived: checks.boolean(body, "archived", loc) ?? false,
    deprecated: checks.boolean(body, "deprecated", loc) ?? false,
    schemas: isObject(schemas) ? schemas : null,
    groupName: checks.string(body, "groupName", loc, NAME_RULE) ?? null,
    featureFlags: checks.stringArray(body, "featureFlags", loc, FLAGS_RULE) ?? null,
  };
}

function findEventType(ctx: StandInContext, name: string): EventTypeRecord {
  const eventType = ctx.store.eventTypes.get(name);
  if (!eventType) throw notFound();
  return eventType;
}

function putEventType(
  ctx: StandInContext,
  name: string,
  fields: EventTypeFields,
  now: number,
): EventTypeRecord {
  const at = new Date(now).toISOString();
  const previous = ctx.store.eventTypes.get(name);
  const record = { ...fields, name, createdAt: previous?.createdAt ?? at, updatedAt: at };
  ctx.store.eventTypes.set(name, record);
  return record;
}

export const eventTypeRoutes: RouteDef<StandInContext>[] = [
  {
    method: "GET",
    template: "/api/v1/event-type",
    operationId: "v1.event-type.list",
    appScoped: true,
    handle(req, ctx) {
      const checks = new FieldChecks();
      const withContent = queryBoolean(checks, req.query, "with_content") ?? false;
      const includeArchived = queryBoolean(checks, req.query, "include_archived") ?? false;
      checks.orThrow();
      const page = pageFrom(req.query, false);
      const eventTypes = [...ctx.store.eventTypes.values()]
        .filter((e) => includeArchived || !e.archived)
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      return json(
        200,
        listResponse(
          eventTypes,
          (e) => e.name,
          page,
          (e) => eventTypeOut(e, withContent),
        ),
      );
    },
  },
  {
    method: "POST",
    template: "/api/v1/event-type",
    operationId: "v1.event-type.create",
    handle(req, ctx) {
      const checks = new FieldChecks();
      const name = checks.string(checks.object(req.body, ["body"]), "name", ["body"], {
        required: true,
        ...NAME_RULE,
      });
      const fields = readEventTypeFields(checks, req.body);
      checks.orThrow();
      const existing = ctx.store.eventTypes.get(name as string);
      // Svix's create also unarchives: only a live event type of that name is a conflict.
      if (existing && !existing.archived) throw conflict("An event type with this name already exists");
      return json(201, eventTypeOut(putEventType(ctx, name as string, fields, req.now)));
    },
  },
  {
    method: "GET",
    template: "/api/v1/event-type/{event_type_name}",
    operationId: "v1.event-type.get",
    appScoped: true,
    handle: (req, ctx) => json(200, eventTypeOut(findEventType(ctx, req.params.event_type_name as string))),
  },
  {
    method: "PUT",
    template: "/api/v1/event-type/{event_type_name}",
    operationId: "v1.event-type.upsert",
    handle(req, ctx) {
      const checks = new FieldChecks();
      const fields = readEventTypeFields(checks, req.body);
      checks.orThrow();
      const name = req.params.event_type_name as string;
      const created = !ctx.store.eventTypes.has(name);
      return json(created ? 201 : 200, eventTypeOut(putEventType(ctx, name, fields, req.now)));
    },
  },
  {
    method: "DELETE",
    template: "/api/v1/event-type/{event_type_name}",
    operationId: "v1.event-type.delete",
    handle(req, ctx) {
      const checks = new FieldChecks();
      const expunge = queryBoolean(checks, req.query, "expunge") ?? false;
      checks.orThrow();
      const eventType = findEventType(ctx, req.params.event_type_name as string);
      if (expunge) ctx.store.eventTypes.delete(eventType.name);
      else eventType.archived = true;
      return noContent;
    },
  },
];

/** The example payload send-example delivers: `schemas[version].examples[index]`, newest version first. */
export function exampleFor(eventType: EventTypeRecord, index: number): Record<string, unknown> | undefined {
  const versions = Object.keys(eventType.schemas ?? {}).sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const schema = eventType.schemas?.[version];
    const examples = isObject(schema) ? schema.examples : undefined;
    if (Array.isArray(examples) && isObject(examples[index]))
      return examples[index] as Record<string, unknown>;
  }
  return undefined;
}
