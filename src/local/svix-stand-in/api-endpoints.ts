import { appFrom } from "./api-applications.js";
import { CHANNEL_PATTERN, FieldChecks, SECRET_PATTERN, UID_PATTERN } from "./checks.js";
import type { StandInContext } from "./context.js";
import { conflict, limitReached, notFound } from "./errors.js";
import { newId } from "./ids.js";
import { type ApiRequest, json, noContent, type RouteDef } from "./router.js";
import { generateSecret, normalizeSecret } from "./signing.js";
import type { AppRecord, EndpointRecord } from "./store.js";
import { endpointOut, listResponse, pageFrom } from "./wire.js";

/**
 * Endpoints: where deliveries go, with their event-type and channel filters, custom headers and
 * signing secret. Svix's current field is `eventTypes`; `filterTypes` (its older name, still in
 * many examples) is read as the same thing.
 */

const EVENT_TYPES_RULE = { item: { pattern: UID_PATTERN, maxLength: 256 }, minItems: 1 };
const CHANNELS_RULE = { item: { pattern: CHANNEL_PATTERN, maxLength: 128 }, minItems: 1, maxItems: 10 };
const DEFAULT_GRACE_SECONDS = 86_400;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Headers Svix sets itself or that would break the HTTP exchange; custom headers may not override them. */
const RESERVED_HEADER =
  /^(svix-|webhook-)|^(host|content-length|content-type|connection|transfer-encoding|user-agent)$/i;
/** Svix reports these by name only, so a portal never shows a credential. */
const SENSITIVE_HEADER = /^(authorization|proxy-authorization|cookie|x-api-key)$/i;

function checkUrl(checks: FieldChecks, url: string | undefined, loc: string[]): void {
  if (url === undefined) return;
  let ok = false;
  try {
    const parsed = new URL(url);
    ok = parsed.protocol === "http:" || parsed.protocol === "https:";
  } catch {}
  if (!ok) checks.fail(loc, "invalid or missing URL scheme", "value_error.url.scheme");
}

function checkHeaders(
  checks: FieldChecks,
  headers: Record<string, string | null> | undefined,
  loc: string[],
): void {
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (!HEADER_NAME.test(name) || RESERVED_HEADER.test(name))
      checks.fail([...loc, name], `header name "${name}" is invalid or reserved`, "value_error");
    else if (value !== null && /[\r\n\0]/.test(value))
      checks.fail([...loc, name], "header value contains invalid characters", "value_error");
  }
}

export function endpointFrom(
  ctx: StandInContext,
  req: ApiRequest,
): { app: AppRecord; endpoint: EndpointRecord } {
  const app = appFrom(ctx, req);
  const endpoint = ctx.store.findEndpoint(app.id, req.params.endpoint_id as string);
  if (!endpoint) throw notFound();
  return { app, endpoint };
}

function assertUidFree(
  ctx: StandInContext,
  appId: string,
  uid: string | undefined | null,
  self?: string,
): void {
  if (uid === undefined || uid === null) return;
  const holder = ctx.store.findEndpoint(appId, uid);
  if (holder && holder.id !== self) throw conflict("An endpoint with this uid already exists");
}

function headersOut(endpoint: EndpointRecord) {
  const headers: Record<string, string> = {};
  const sensitive: string[] = [];
  for (const [name, value] of Object.entries(endpoint.headers)) {
    if (SENSITIVE_HEADER.test(name)) sensitive.push(name);
    else headers[name] = value;
  }
  return { headers, sensitive };
}

export const endpointRoutes: RouteDef<StandInContext>[] = [
  {
    method: "GET",
    template: "/api/v1/app/{app_id}/endpoint",
    operationId: "v1.endpoint.list",
    appScoped: true,
    handle(req, ctx) {
      const page = pageFrom(req.query, false);
      const app = appFrom(ctx, req);
      const endpoints = [...ctx.store.endpointsOf(app.id).values()];
      return json(
        200,
        listResponse(endpoints, (e) => e.id, page, endpointOut),
      );
    },
  },
  {
    method: "POST",
    template: "/api/v1/app/{app_id}/endpoint",
    operationId: "v1.endpoint.create",
    appScoped: true,
    handle(req, ctx) {
      const checks = new FieldChecks();
      const loc = ["body"];
      const body = checks.object(req.body, loc);
      const url = checks.string(body, "url", loc, { required: true, minLength: 1, maxLength: 65536 });
      checkUrl(checks, url, ["body", "url"]);
      const eventTypesKey =
        body.eventTypes === undefined && body.filterTypes !== undefined ? "filterTypes" : "eventTypes";
      const headers = checks.stringMap(body, "headers", loc) as Record<string, string> | undefined;
      checkHeaders(checks, headers, ["body", "headers"]);
      const secret = checks.string(body, "secret", loc, { pattern: SECRET_PATTERN });
      const fields = {
        uid: checks.string(body, "uid", loc, { pattern: UID_PATTERN, minLength: 1, maxLength: 256 }) ?? null,
        description: checks.string(body, "description", loc) ?? "",
        disabled: checks.boolean(body, "disabled", loc) ?? false,
        eventTypes: checks.stringArray(body, eventTypesKey, loc, EVENT_TYPES_RULE) ?? null,
        channels: checks.stringArray(body, "channels", loc, CHANNELS_RULE) ?? null,
        throttleRate: checks.integer(body, "throttleRate", loc, 1, 65535) ?? null,
        metadata: (checks.stringMap(body, "metadata", loc) as Record<string, string> | undefined) ?? {},
      };
      checks.orThrow();
      const app = appFrom(ctx, req);
      assertUidFree(ctx, app.id, fields.uid);
      if (ctx.store.endpointsOf(app.id).size >= ctx.store.limits.maxEndpointsPerApp) {
        throw limitReached(
          `The stand-in holds at most ${ctx.store.limits.maxEndpointsPerApp} endpoints per application`,
        );
      }
      const at = new Date(req.now).toISOString();
      const endpoint: EndpointRecord = {
        ...fields,
        id: newId("ep", req.now),
        appId: app.id,
        url: url as string,
        headers: headers ?? {},
        secrets: [
          { key: secret === undefined ? generateSecret() : normalizeSecret(secret), expiresAt: null },
        ],
        createdAt: at,
        updatedAt: at,
      };
      ctx.store.endpointsOf(app.id).set(endpoint.id, endpoint);
      return json(201, endpointOut(endpoint));
    },
  },
  {
    method: "GET",
    template: "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    operationId: "v1.endpoint.get",
    appScoped: true,
    handle: (req, ctx) => json(200, endpointOut(endpointFrom(ctx, req).endpoint)),
  },
  {
    method: "PATCH",
    template: "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    operationId: "v1.endpoint.patch",
    appScoped: true,
    handle(req, ctx) {
      const checks = new FieldChecks();
      const loc = ["body"];
      const body = checks.object(req.body, loc);
      const url = checks.string(body, "url", loc, { minLength: 1, maxLength: 65536 });
      checkUrl(checks, url, ["body", "url"]);
      const eventTypesKey =
        body.eventTypes === undefined && body.filterTypes !== undefined ? "filterTypes" : "eventTypes";
      const eventTypes = checks.stringArray(body, eventTypesKey, loc, { item: EVENT_TYPES_RULE.item });
      const channels = checks.stringArray(body, "channels", loc, { item: CHANNELS_RULE.item });
      const uid = checks.string(body, "uid", loc, { pattern: UID_PATTERN, minLength: 1, maxLength: 256 });
      const description = checks.string(body, "description", loc);
      const disabled = checks.boolean(body, "disabled", loc);
      const throttleRate = checks.integer(body, "throttleRate", loc, 0, 65535);
      const metadata = checks.stringMap(body, "metadata", loc) as Record<string, string> | undefined;
      checks.orThrow();
      const { app, endpoint } = endpointFrom(ctx, req);
      assertUidFree(ctx, app.id, uid, endpoint.id);
      // Patch semantics: an absent field stays; an explicit null clears a nullable one.
      if (url !== undefined) endpoint.url = url;
      if (eventTypesKey in body)
        endpoint.eventTypes = eventTypes && eventTypes.length > 0 ? eventTypes : null;
      if ("channels" in body) endpoint.channels = channels && channels.length > 0 ? channels : null;
      if ("uid" in body) endpoint.uid = uid ?? null;
      if ("throttleRate" in body) endpoint.throttleRate = throttleRate ?? null;
      if (description !== undefined) endpoint.description = description;
      if (disabled !== undefined) endpoint.disabled = disabled;
      if (metadata !== undefined) endpoint.metadata = metadata;
      endpoint.updatedAt = new Date(req.now).toISOString();
      return json(200, endpointOut(endpoint));
    },
  },
  {
    method: "DELETE",
    template: "/api/v1/app/{app_id}/endpoint/{endpoint_id}",
    operationId: "v1.endpoint.delete",
    appScoped: true,
    handle(req, ctx) {
      const { app, endpoint } = endpointFrom(ctx, req);
      ctx.store.endpointsOf(app.id).delete(endpoint.id);
      return noContent;
    },
  },
  {
    method: "GET",
    template: "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    operationId: "v1.endpoint.get-headers",
    appScoped: true,
    handle: (req, ctx) => json(200, headersOut(endpointFrom(ctx, req).endpoint)),
  },
  {
    method: "PUT",
    template: "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    operationId: "v1.endpoint.set-headers",
    appScoped: true,
    handle(req, ctx) {
      const checks = new FieldChecks();
      const body = checks.object(req.body, ["body"]);
      const headers = checks.stringMap(body, "headers", ["body"]) as Record<string, string> | undefined;
      if (body.headers === undefined)
        checks.fail(["body", "headers"], "field required", "value_error.missing");
      checkHeaders(checks, headers, ["body", "headers"]);
      checks.orThrow();
      const { endpoint } = endpointFrom(ctx, req);
      endpoint.headers = { ...headers };
      return noContent;
    },
  },
  {
    method: "PATCH",
    template: "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers",
    operationId: "v1.endpoint.patch-headers",
    appScoped: true,
    handle(req, ctx) {
      const checks = new FieldChecks();
      const body = checks.object(req.body, ["body"]);
      const headers = checks.stringMap(body, "headers", ["body"], true);
      if (body.headers === undefined)
        checks.fail(["body", "headers"], "field required", "value_error.missing");
      checkHeaders(checks, headers, ["body", "headers"]);
      const deleteHeaders = checks.stringArray(body, "deleteHeaders", ["body"], { item: {} }) ?? [];
      checks.orThrow();
      const { endpoint } = endpointFrom(ctx, req);
      for (const [name, value] of Object.entries(headers ?? {})) {
        if (value === null) delete endpoint.headers[name];
        else endpoint.headers[name] = value;
      }
      for (const name of deleteHeaders) delete endpoint.headers[name];
      return noContent;
    },
  },
  {
    method: "GET",
    template: "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret",
    operationId: "v1.endpoint.get-secret",
    appScoped: true,
    handle: (req, ctx) =>
      json(200, { key: (endpointFrom(ctx, req).endpoint.secrets[0] as { key: string }).key }),
  },
  {
    method: "POST",
    template: "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate",
    operationId: "v1.endpoint.rotate-secret",
    appScoped: true,
    handle(req, ctx) {
      const checks = new FieldChecks();
      const body = req.body === undefined ? {} : checks.object(req.body, ["body"]);
      const key = checks.string(body, "key", ["body"], { pattern: SECRET_PATTERN });
      const grace = checks.integer(body, "gracePeriodSeconds", ["body"], 0, 604_800) ?? DEFAULT_GRACE_SECONDS;
      checks.orThrow();
      const { endpoint } = endpointFrom(ctx, req);
      // The old secret keeps signing (as a second signature) until the grace period ends, so
      // receivers can switch secrets without losing a delivery.
      const expiresAt = req.now + grace * 1000 * ctx.timeScale;
      const previous = endpoint.secrets
        .map((s) => ({
          key: s.key,
          expiresAt: s.expiresAt === null ? expiresAt : Math.min(s.expiresAt, expiresAt),
        }))
        .filter((s) => s.expiresAt > req.now);
      endpoint.secrets = [
        { key: key === undefined ? generateSecret() : normalizeSecret(key), expiresAt: null },
        ...previous,
      ];
      endpoint.updatedAt = new Date(req.now).toISOString();
      return noContent;
    },
  },
];
