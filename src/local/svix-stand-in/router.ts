import type { IncomingHttpHeaders } from "node:http";
import { FieldChecks, UID_PATTERN } from "./checks.js";
import type { Violation } from "./errors.js";

/**
 * Svix's API as a table of (method, path template, operation id) → handler. Operation ids are the
 * spec's (`v1.message.create`), so fault rules, the request log and the contract tests all name a
 * route the same way openapi.json does.
 */

/** Who is calling: the organisation's API token, or an app-portal session token scoped to one app. */
export type Principal =
  | { kind: "org" }
  | { kind: "app"; appId: string; readOnly: boolean; capabilities: readonly string[] };

export interface ApiRequest {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams | null;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body; undefined when the request had none. */
  body: unknown;
  principal: Principal;
  now: number;
}

/** `json` is already serialized: the message hot path builds its answer as text. */
export interface ApiResponse {
  status: number;
  json?: string;
  headers?: Record<string, string>;
}

export interface RouteDef<Ctx> {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  template: string;
  operationId: string;
  /** Routes an app-portal token may call, for its own app only (the portal's own API use). */
  appScoped?: boolean;
  handle(req: ApiRequest, ctx: Ctx): ApiResponse;
}

export function json(status: number, body: unknown): ApiResponse {
  return { status, json: JSON.stringify(body) };
}

export const noContent: ApiResponse = { status: 204 };

interface CompiledRoute<Ctx> {
  def: RouteDef<Ctx>;
  /** Literal text, or null for a `{param}` segment. */
  segments: (string | null)[];
  paramNames: (string | null)[];
}

export type RouteMatch<Ctx> =
  | { kind: "found"; def: RouteDef<Ctx>; params: Record<string, string> }
  /** The route is known but a path parameter breaks the spec's pattern: a 422 for that operation. */
  | { kind: "invalid-params"; def: RouteDef<Ctx>; violations: Violation[] }
  | { kind: "method-not-allowed" }
  | { kind: "not-found" };

export class Router<Ctx> {
  private readonly routes: CompiledRoute<Ctx>[];

  constructor(defs: RouteDef<Ctx>[]) {
    this.routes = defs.map((def) => {
      const parts = def.template.split("/");
      return {
        def,
        segments: parts.map((p) => (p.startsWith("{") ? null : p)),
        paramNames: parts.map((p) => (p.startsWith("{") ? p.slice(1, -1) : null)),
      };
    });
  }

  get definitions(): RouteDef<Ctx>[] {
    return this.routes.map((r) => r.def);
  }

  /** Path parameters are checked against the spec's uid pattern here, once for every route. */
  match(method: string, path: string): RouteMatch<Ctx> {
    // Svix serves its routes with or without a trailing slash (`/api/v1/app/{app_id}/`).
    const parts = (path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path).split("/");
    let pathMatched = false;
    for (const route of this.routes) {
      if (route.segments.length !== parts.length) continue;
      if (!route.segments.every((seg, i) => seg === null || seg === parts[i])) continue;
      pathMatched = true;
      if (route.def.method !== method) continue;
      const params: Record<string, string> = {};
      const checks = new FieldChecks();
      route.paramNames.forEach((name, i) => {
        if (name === null) return;
        let value: string;
        try {
          value = decodeURIComponent(parts[i] as string);
        } catch {
          value = parts[i] as string;
        }
        checks.checkText(value, ["path", name], { pattern: UID_PATTERN, minLength: 1, maxLength: 256 });
        params[name] = value;
      });
      if (checks.violations.length > 0)
        return { kind: "invalid-params", def: route.def, violations: checks.violations };
      return { kind: "found", def: route.def, params };
    }
    return pathMatched ? { kind: "method-not-allowed" } : { kind: "not-found" };
  }
}
