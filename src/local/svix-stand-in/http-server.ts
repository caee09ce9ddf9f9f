import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import { serveAdmin } from "./admin-api.js";
import { portalTokenMay } from "./capabilities.js";
import type { StandInContext } from "./context.js";
import { ApiError, forbidden, invalid, invalidField, payloadTooLarge, unauthorized } from "./errors.js";
import type { FaultInjector, FaultRule } from "./faults.js";
import { servePortal } from "./portal-page.js";
import { loggedBody, type RequestLogEntry } from "./request-log.js";
import type { ApiResponse, Principal, RouteDef, RouteMatch, Router } from "./router.js";

/**
 * One request, start to finish: admin and portal paths aside, an API request goes through fault
 * injection, body limits, auth, idempotency replay and its handler, and lands in the request log
 * with what was answered.
 */

/** Svix's documented payload limit. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Past this the stand-in stops reading and drops the connection instead of draining an upload. */
const DRAIN_LIMIT_BYTES = 16 * MAX_BODY_BYTES;
/** Svix replays the first 2xx for the same idempotency key for 12 h. */
export const IDEMPOTENCY_TTL_MS = 12 * 60 * 60 * 1000;

export interface PipelineDeps {
  ctx: StandInContext;
  router: Router<StandInContext>;
  faults: FaultInjector;
  token: string;
  log?: (obj: Record<string, unknown>, msg: string) => void;
  /** Where the jobhooks service listens, for requests meant for it that reach the stand-in. */
  jobhooksUrl?: string;
}

/** Paths of the jobhooks service (its RPCs, health, reflection, metrics), never of Svix's API. */
const JOBHOOKS_PATH = /^\/(?:jobhooks\.v1\.|grpc\.)|^\/(?:healthz|readyz|metrics)$/;

/**
 * A request for the jobhooks service sent to the stand-in's port by mistake (the two URLs sit one
 * above the other in `jobhooks dev`'s banner) would otherwise get "Incorrect authentication
 * credentials", which sends the reader to check the token rather than the port.
 */
function wrongPortAnswer(jobhooksUrl: string | undefined): ApiResponse {
  const where = jobhooksUrl
    ? `the jobhooks service is on port ${new URL(jobhooksUrl).port} (${jobhooksUrl})`
    : "the jobhooks service listens elsewhere (JOBHOOKS_URL)";
  const text = `this is the Svix stand-in; ${where}`;
  // `detail` as Svix words its errors, `message` as Connect clients (and curl readers) look for it.
  return { status: 404, json: JSON.stringify({ code: "not_found", detail: text, message: text }) };
}

interface RawBody {
  text: string;
  tooLarge: boolean;
}

/**
 * Reads the whole body even when it is too large (up to a hard cap), because answering 413 while the
 * client is still uploading makes it see a broken pipe instead of the 413.
 */
function readBody(req: IncomingMessage): Promise<RawBody> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > DRAIN_LIMIT_BYTES) req.destroy();
      else if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => {
      const text =
        chunks.length === 1 ? (chunks[0] as Buffer).toString("utf8") : Buffer.concat(chunks).toString("utf8");
      resolve({ text: size > MAX_BODY_BYTES ? "" : text, tooLarge: size > MAX_BODY_BYTES });
    });
    req.on("error", () => resolve({ text: "", tooLarge: size > MAX_BODY_BYTES }));
  });
}

function faultResponse(fault: FaultRule): ApiResponse {
  switch (fault.kind) {
    case "409":
      // What Svix answers to any unique-key clash (svix-server's default conflict body), e.g. when
      // another client creates the same inline application at the same moment: not a duplicate eventId.
      return {
        status: 409,
        json: JSON.stringify({ code: "conflict", detail: "A conflict has occurred" }),
      };
    case "422":
      // Svix refusing a request on its own rules (e.g. an application uid it will not take):
      // a client must treat it as permanent, not retry it.
      return {
        status: 422,
        json: JSON.stringify({
          detail: [
            {
              loc: ["body", "application", "uid"],
              msg: "Rejected by an injected fault",
              type: "value_error",
            },
          ],
        }),
      };
    case "429":
      return {
        status: 429,
        json: JSON.stringify({ code: "rate_limit_exceeded", detail: "Too many requests, slow down" }),
        headers: { "retry-after": String(fault.retryAfterSeconds ?? 1) },
      };
    case "500":
      return { status: 500, json: JSON.stringify({ code: "server_error", detail: "Internal Server Error" }) };
    case "503":
      return {
        status: 503,
        json: JSON.stringify({ code: "service_unavailable", detail: "Service Unavailable" }),
        headers:
          fault.retryAfterSeconds === undefined ? {} : { "retry-after": String(fault.retryAfterSeconds) },
      };
    default:
      // What a proxy or captive portal in front of Svix answers: HTML where the SDK expects JSON.
      return {
        status: fault.status ?? 200,
        json: "<html><body><h1>502 Bad Gateway</h1></body></html>",
        headers: { "content-type": "text/html" },
      };
  }
}

export function createRequestListener(
  deps: PipelineDeps,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { ctx, router, faults, token } = deps;
  const orgAuthorization = `Bearer ${token}`;

  const orgDigest = createHash("sha256").update(orgAuthorization).digest();
  /** Constant-time, so response timing does not reveal how much of the token a guess got right. */
  function isOrgToken(header: string | undefined): boolean {
    if (header === undefined) return false;
    return timingSafeEqual(createHash("sha256").update(header).digest(), orgDigest);
  }

  function authenticate(header: string | undefined, now: number): Principal {
    if (isOrgToken(header)) return { kind: "org" };
    if (header?.startsWith("Bearer appsk_")) {
      const session = ctx.portal.session(header.slice(7), now);
      if (session)
        return {
          kind: "app",
          appId: session.appId,
          readOnly: session.readOnly,
          capabilities: session.capabilities,
        };
    }
    throw unauthorized();
  }

  /** Portal tokens reach only their own app, and do only what their grant's capabilities allow. */
  function authorize(
    principal: Principal,
    def: RouteDef<StandInContext>,
    params: Record<string, string>,
  ): void {
    if (principal.kind === "org") return;
    if (!def.appScoped || !portalTokenMay(principal, def)) throw forbidden();
    const appParam = params.app_id;
    if (appParam !== undefined && ctx.store.findApp(appParam)?.id !== principal.appId) throw forbidden();
    if (appParam === undefined && def.method !== "GET") throw forbidden();
  }

  function answer(
    req: IncomingMessage,
    method: string,
    path: string,
    query: URLSearchParams | null,
    match: RouteMatch<StandInContext>,
    raw: RawBody,
    now: number,
  ): ApiResponse {
    if (raw.tooLarge) throw payloadTooLarge(MAX_BODY_BYTES);
    const principal = authenticate(req.headers.authorization, now);
    if (match.kind === "invalid-params") throw invalid(match.violations);
    if (match.kind === "not-found") throw new ApiError(404, { code: "not_found", detail: "Not found" });
    if (match.kind === "method-not-allowed")
      throw new ApiError(405, { code: "method_not_allowed", detail: "Method not allowed" });
    authorize(principal, match.def, match.params);
    let body: unknown;
    if (raw.text.length > 0) {
      try {
        body = JSON.parse(raw.text);
      } catch {
        throw invalidField(["body"], "body is not valid JSON", "value_error.jsondecode");
      }
    }
    const idempotencyHeader = method === "POST" ? req.headers["idempotency-key"] : undefined;
    const idempotencyKey =
      typeof idempotencyHeader === "string"
        ? `${req.headers.authorization} ${method} ${path} ${idempotencyHeader}`
        : null;
    if (idempotencyKey !== null) {
      const stored = ctx.store.storedResponse(idempotencyKey, now);
      if (stored) {
        ctx.log.counters.idempotentReplays++;
        return { status: stored.status, json: stored.body === "" ? undefined : stored.body };
      }
    }
    const response = match.def.handle(
      { method, path, params: match.params, query, headers: req.headers, body, principal, now },
      ctx,
    );
    if (idempotencyKey !== null && response.status >= 200 && response.status < 300) {
      ctx.store.storeResponse(idempotencyKey, {
        status: response.status,
        body: response.json ?? "",
        expiresAt: now + IDEMPOTENCY_TTL_MS,
      });
    }
    return response;
  }

  function send(res: ServerResponse, response: ApiResponse): void {
    const headers: Record<string, string | number> = { ...response.headers };
    if (response.json !== undefined) {
      headers["content-type"] ??= "application/json";
      headers["content-length"] = Buffer.byteLength(response.json);
    }
    res.writeHead(response.status, headers);
    res.end(response.json);
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method ?? "GET";
    if (path.startsWith("/_stand-in/")) {
      // The admin routes change what every client of this stand-in sees (faults) and show what
      // they sent (the request log): only the holder of the API token may use them.
      if (!isOrgToken(req.headers.authorization)) {
        const body = JSON.stringify(unauthorized().body);
        res.writeHead(401, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
        return;
      }
      const raw = await readBody(req);
      return serveAdmin(method, path, raw.text, res, ctx, faults);
    }
    if (path === "/portal" || path.startsWith("/portal/")) return servePortal(req, res, path, ctx);
    if (JOBHOOKS_PATH.test(path)) {
      req.resume();
      return send(res, wrongPortAnswer(deps.jobhooksUrl));
    }

    const match = router.match(method, path);
    const operationId =
      match.kind === "found" || match.kind === "invalid-params" ? match.def.operationId : null;
    // Read first: a fault (or latency) must not depend on how far the upload got.
    const raw = await readBody(req);
    let fault = faults.active ? faults.pick(operationId, method, path, raw.text) : undefined;
    const entry: RequestLogEntry = {
      at: "",
      method,
      path,
      route: operationId,
      status: 0,
      requestBody: undefined,
      responseBody: "",
    };
    if (fault) {
      ctx.log.counters.faultsInjected++;
      entry.fault = fault.kind;
      if (fault.kind === "reset") {
        req.socket.resetAndDestroy();
        entry.at = new Date().toISOString();
        ctx.log.record(entry);
        return;
      }
      if (fault.kind === "latency") {
        // The request is then handled normally even if the client gave up: that is how a lost
        // response looks from the client side, and what idempotency keys are for.
        await sleep(fault.latencyMs ?? 0);
        fault = undefined;
      }
    }
    const now = Date.now();
    let response: ApiResponse;
    if (fault) response = faultResponse(fault);
    else {
      try {
        response = answer(
          req,
          method,
          path,
          q < 0 ? null : new URLSearchParams(url.slice(q + 1)),
          match,
          raw,
          now,
        );
      } catch (error) {
        if (error instanceof ApiError)
          response = { status: error.status, json: JSON.stringify(error.body), headers: error.headers };
        else {
          deps.log?.(
            { err: String((error as Error)?.stack ?? error), route: operationId },
            "svix stand-in handler failed",
          );
          response = {
            status: 500,
            json: JSON.stringify({ code: "server_error", detail: "Internal Server Error" }),
          };
        }
      }
    }
    if (!res.destroyed) send(res, response);
    entry.at = new Date(now).toISOString();
    entry.status = response.status;
    const requestBody = loggedBody(raw.text);
    const responseBody = loggedBody(response.json ?? "");
    entry.requestBody = requestBody.text || undefined;
    if (requestBody.truncated || responseBody.truncated) entry.truncated = true;
    const idempotencyKey = req.headers["idempotency-key"];
    if (typeof idempotencyKey === "string") entry.idempotencyKey = idempotencyKey;
    entry.responseBody = responseBody.text;
    ctx.log.record(entry);
  }

  return (req, res) => {
    onRequest(req, res).catch((error) => {
      deps.log?.({ err: String(error) }, "svix stand-in request failed");
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500);
        res.end();
      }
    });
  };
}
