import { attemptRoutes } from "./api-attempts.js";
import { endpointRoutes } from "./api-endpoints.js";
import { sendExampleRoutes } from "./api-send-example.js";
import type { StandInContext } from "./context.js";
import { ApiError } from "./errors.js";
import type { PortalSession } from "./portal-sessions.js";
import type { ApiResponse, RouteDef } from "./router.js";

/**
 * What the portal page's forms do. Each action goes through the same API handler a client of the
 * API would reach, with the session's app as the path's app, so the page enforces exactly the API's
 * rules and can never reach another app's endpoints.
 */

export type PortalCapability = "ViewEndpointSecret" | "ManageEndpoint" | "CreateAttempts";

/** Read-only grants (capabilities `[ViewBase]`) may look, nothing more. */
export function can(session: PortalSession, capability: PortalCapability): boolean {
  if (capability === "ViewEndpointSecret") return session.capabilities.includes(capability);
  return !session.readOnly && session.capabilities.includes(capability);
}

/** The add-endpoint form as typed, kept to show it again with an error. */
export interface EndpointForm {
  url: string;
  description: string;
  eventTypes: string[];
  headers: string;
  /** Basic auth: stored as the `Authorization: Basic …` header Svix sends. The password is never shown again. */
  basicUser: string;
  basicPassword: string;
}

export type ActionOutcome =
  | { kind: "done"; notice: string; anchor: string }
  | { kind: "refused"; status: number; error: string; form?: EndpointForm };

const routes: RouteDef<StandInContext>[] = [...endpointRoutes, ...sendExampleRoutes, ...attemptRoutes];

function call(
  ctx: StandInContext,
  session: PortalSession,
  operationId: string,
  params: Record<string, string>,
  body?: unknown,
): ApiResponse {
  const def = routes.find((r) => r.operationId === operationId);
  if (!def) throw new Error(`no route ${operationId}`);
  return def.handle(
    {
      method: def.method,
      path: "/portal",
      params: { app_id: session.appId, ...params },
      query: null,
      headers: {},
      body,
      principal: {
        kind: "app",
        appId: session.appId,
        readOnly: session.readOnly,
        capabilities: session.capabilities,
      },
      now: Date.now(),
    },
    ctx,
  );
}

/** An API error as one sentence for the page: 422s name each field that was refused. */
export function errorText(error: ApiError): string {
  const { body } = error;
  if (Array.isArray(body.detail))
    return body.detail
      .map((v) => `${v.loc.filter((part) => part !== "body").join(".") || "form"}: ${v.msg}`)
      .join("; ");
  return typeof body.detail === "string" ? body.detail : `refused (${error.status})`;
}

/** `Name: value` per line; blank lines are skipped. */
export function parseHeaderLines(text: string): { headers: Record<string, string> } | { error: string } {
  const headers: Record<string, string> = {};
  const lines = text.split(/\r?\n/).map((line) => line.trim());
  for (const [index, line] of lines.entries()) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) return { error: `custom headers, line ${index + 1}: write it as "Name: value"` };
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return { headers };
}

function endpointFormOf(form: URLSearchParams): EndpointForm {
  return {
    url: (form.get("url") ?? "").trim(),
    description: (form.get("description") ?? "").trim(),
    eventTypes: form.getAll("eventTypes").filter((t) => t !== ""),
    headers: form.get("headers") ?? "",
    basicUser: (form.get("basicUser") ?? "").trim(),
    basicPassword: form.get("basicPassword") ?? "",
  };
}

/** The custom headers plus basic auth, or why they cannot be sent. */
function headersOf(fields: EndpointForm): { headers: Record<string, string> } | { error: string } {
  const parsed = parseHeaderLines(fields.headers);
  if ("error" in parsed || (fields.basicUser === "" && fields.basicPassword === "")) return parsed;
  if (fields.basicUser === "") return { error: "basic auth: enter a user name (or clear the password)" };
  if (fields.basicUser.includes(":")) return { error: "basic auth: a user name cannot contain a colon" };
  if (Object.keys(parsed.headers).some((name) => name.toLowerCase() === "authorization"))
    return { error: "basic auth: remove the Authorization custom header, or leave basic auth empty" };
  const credentials = Buffer.from(`${fields.basicUser}:${fields.basicPassword}`, "utf8").toString("base64");
  return { headers: { ...parsed.headers, Authorization: `Basic ${credentials}` } };
}

const NOT_ALLOWED: ActionOutcome = {
  kind: "refused",
  status: 403,
  error: "This portal session may not do that (read-only access).",
};

/**
 * Runs one form post: `create`, or `disable` / `enable` / `delete` / `send-example` / `resend` (of
 * the message the form names) of one endpoint.
 * Never throws for a refused input: the outcome says what to show.
 */
export function runPortalAction(
  ctx: StandInContext,
  session: PortalSession,
  action: string,
  endpointId: string | undefined,
  form: URLSearchParams,
): ActionOutcome {
  const anchor = endpointId ? `ep-${endpointId}` : "endpoints";
  try {
    if (action === "create" && endpointId === undefined) {
      const fields = endpointFormOf(form);
      if (!can(session, "ManageEndpoint")) return NOT_ALLOWED;
      if (fields.url === "")
        return { kind: "refused", status: 400, error: "url: enter the endpoint's URL", form: fields };
      const parsed = headersOf(fields);
      if ("error" in parsed) return { kind: "refused", status: 400, error: parsed.error, form: fields };
      try {
        const created = call(
          ctx,
          session,
          "v1.endpoint.create",
          {},
          {
            url: fields.url,
            description: fields.description,
            // No type ticked means every type, as in Svix: the filter is left out, not sent empty.
            ...(fields.eventTypes.length > 0 ? { eventTypes: fields.eventTypes } : {}),
            ...(Object.keys(parsed.headers).length > 0 ? { headers: parsed.headers } : {}),
          },
        );
        const id = (JSON.parse(created.json ?? "{}") as { id?: string }).id ?? "";
        return { kind: "done", notice: `Endpoint ${fields.url} added.`, anchor: `ep-${id}` };
      } catch (error) {
        if (error instanceof ApiError)
          return { kind: "refused", status: 400, error: errorText(error), form: fields };
        throw error;
      }
    }
    if (endpointId === undefined) return { kind: "refused", status: 404, error: "Unknown action." };
    const params = { endpoint_id: endpointId };
    switch (action) {
      case "disable":
      case "enable":
        if (!can(session, "ManageEndpoint")) return NOT_ALLOWED;
        call(ctx, session, "v1.endpoint.patch", params, { disabled: action === "disable" });
        return { kind: "done", notice: `Endpoint ${action === "disable" ? "disabled" : "enabled"}.`, anchor };
      case "delete":
        if (!can(session, "ManageEndpoint")) return NOT_ALLOWED;
        call(ctx, session, "v1.endpoint.delete", params);
        return { kind: "done", notice: "Endpoint deleted.", anchor: "endpoints" };
      case "send-example": {
        if (!can(session, "CreateAttempts")) return NOT_ALLOWED;
        const eventType = form.get("eventType") ?? "";
        call(ctx, session, "v1.endpoint.send-example", params, { eventType });
        return {
          kind: "done",
          notice: `Test event ${eventType} sent; its attempt appears under Messages.`,
          anchor,
        };
      }
      case "resend": {
        if (!can(session, "CreateAttempts")) return NOT_ALLOWED;
        const msgId = form.get("msgId") ?? "";
        call(ctx, session, "v1.message-attempt.resend", { ...params, msg_id: msgId });
        return {
          kind: "done",
          notice: `Message ${msgId} sent again to this endpoint.`,
          anchor: `msg-${msgId}`,
        };
      }
      default:
        return { kind: "refused", status: 404, error: "Unknown action." };
    }
  } catch (error) {
    if (error instanceof ApiError) return { kind: "refused", status: error.status, error: errorText(error) };
    throw error;
  }
}
