import { FieldChecks } from "./checks.js";
import type { AppRecord, AttemptRecord, EndpointRecord, EventTypeRecord, MessageRecord } from "./store.js";

/**
 * Records as the API shows them (the `…Out` schemas), and Svix's list envelope. Field names and
 * nullability follow openapi.json; the contract tests validate every answer against it.
 */

export function applicationOut(app: AppRecord) {
  return {
    id: app.id,
    uid: app.uid,
    name: app.name,
    throttleRate: app.throttleRate,
    metadata: app.metadata,
    createdAt: app.createdAt,
    updatedAt: app.updatedAt,
  };
}

export function endpointOut(endpoint: EndpointRecord) {
  return {
    id: endpoint.id,
    uid: endpoint.uid,
    url: endpoint.url,
    description: endpoint.description,
    disabled: endpoint.disabled,
    eventTypes: endpoint.eventTypes,
    channels: endpoint.channels,
    throttleRate: endpoint.throttleRate,
    metadata: endpoint.metadata,
    createdAt: endpoint.createdAt,
    updatedAt: endpoint.updatedAt,
  };
}

/** Lists leave `schemas` out unless asked (`with_content`), as Svix does to keep them small. */
export function eventTypeOut(eventType: EventTypeRecord, withContent = true) {
  return {
    name: eventType.name,
    description: eventType.description,
    archived: eventType.archived,
    deprecated: eventType.deprecated,
    schemas: withContent ? eventType.schemas : null,
    groupName: eventType.groupName,
    featureFlags: eventType.featureFlags,
    createdAt: eventType.createdAt,
    updatedAt: eventType.updatedAt,
  };
}

/** Without content Svix answers `payload: {}`; the SDK (v2) always asks for that on create. */
export function messageOut(msg: MessageRecord, withContent: boolean): string {
  // Hand-built JSON: message creation is the hot path, and the payload is already serialized.
  return (
    `{"id":${JSON.stringify(msg.id)},"eventType":${JSON.stringify(msg.eventType)},` +
    `"eventId":${JSON.stringify(msg.eventId)},"payload":${withContent ? msg.body : "{}"},` +
    `"channels":${JSON.stringify(msg.channels)},"tags":${JSON.stringify(msg.tags)},` +
    `"timestamp":"${msg.timestamp}","deliverAt":null}`
  );
}

export function messageOutObject(msg: MessageRecord, withContent: boolean) {
  return JSON.parse(messageOut(msg, withContent)) as Record<string, unknown>;
}

const STATUS_TEXT = ["success", "pending", "fail", "sending", "canceled"] as const;

export function attemptOut(attempt: AttemptRecord) {
  return {
    id: attempt.id,
    msgId: attempt.msgId,
    endpointId: attempt.endpointId,
    url: attempt.url,
    response: attempt.response,
    responseStatusCode: attempt.responseStatusCode,
    responseDurationMs: attempt.responseDurationMs,
    status: attempt.status,
    statusText: STATUS_TEXT[attempt.status],
    triggerType: attempt.triggerType,
    timestamp: attempt.timestamp,
  };
}

export interface Page {
  limit: number;
  iterator: string | null;
  descending: boolean;
}

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 250;

/** `limit`, `iterator` and `order` from the query string, checked against the spec's bounds. */
export function pageFrom(query: URLSearchParams | null, defaultDescending: boolean): Page {
  const checks = new FieldChecks();
  let limit = DEFAULT_LIMIT;
  const rawLimit = query?.get("limit");
  if (rawLimit !== undefined && rawLimit !== null) {
    const parsed = /^\d+$/.test(rawLimit) ? Number(rawLimit) : Number.NaN;
    if (!Number.isInteger(parsed))
      checks.fail(["query", "limit"], "value is not a valid integer", "type_error.integer");
    else if (parsed < 1 || parsed > MAX_LIMIT)
      checks.fail(
        ["query", "limit"],
        `ensure this value is between 1 and ${MAX_LIMIT}`,
        "value_error.number",
      );
    else limit = parsed;
  }
  const order = query?.get("order");
  if (order !== undefined && order !== null && order !== "ascending" && order !== "descending")
    checks.fail(["query", "order"], "value is not a valid enumeration member", "type_error.enum");
  checks.orThrow();
  const descending = order === "descending" || (order == null && defaultDescending);
  return { limit, iterator: query?.get("iterator") || null, descending };
}

/**
 * Svix's `ListResponse_*`: `iterator` continues after the last item shown. `items` must be sorted
 * ascending by `keyOf` (ids sort by creation, event types by name).
 */
export function listResponse<T, O>(
  items: readonly T[],
  keyOf: (item: T) => string,
  page: Page,
  out: (item: T) => O,
) {
  const ordered = page.descending ? [...items].reverse() : items;
  const after = page.iterator;
  const remaining =
    after === null
      ? ordered
      : ordered.filter((item) => (page.descending ? keyOf(item) < after : keyOf(item) > after));
  const shown = remaining.slice(0, page.limit);
  const last = shown[shown.length - 1];
  const first = shown[0];
  return {
    data: shown.map(out),
    iterator: last === undefined ? null : keyOf(last),
    prevIterator: first === undefined || after === null ? null : `-${keyOf(first)}`,
    done: remaining.length <= page.limit,
  };
}
