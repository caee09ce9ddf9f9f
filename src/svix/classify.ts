import { ApiException } from "svix";
import { ResponseTooLargeError } from "./keep-alive-fetch.js";

/**
 * Every outcome of a Svix call reduced to what the caller does next, classified at
 * the edge; the relay switches on these, never on HTTP status codes.
 */
export type SvixFailure =
  /** Svix already has this message (its eventId exists): the event is delivered. */
  | { kind: "already_sent" }
  /**
   * 409: something in Svix already exists. Svix answers every unique-key clash the same way
   * (svix-server: `{"code":"conflict","detail":"A conflict has occurred"}`, for a message's eventId
   * as for an application uid created concurrently), so the body alone never proves that this
   * event was delivered: the caller checks what exists (see the gateway).
   */
  | { kind: "conflict"; code: string; reason: string }
  /** The application does not exist (404): create it and retry. */
  | { kind: "app_missing" }
  /** Svix refused the request itself (400/413/422): retrying the same request cannot succeed. */
  | { kind: "permanent"; status: number; reason: string }
  /** Anything that may clear up (429, 5xx, timeouts, resets, bad gateways): retry later. */
  | { kind: "transient"; status?: number; retryAfterMs?: number; reason: string }
  /** Not Svix's answer nor the network's: a bug in our own code (a TypeError, …). Never a
   * reason to give up on the event, and never to be mistaken for Svix being down. */
  | { kind: "internal"; reason: string };

const PERMANENT = new Set([400, 413, 422]);

export function classifySvixError(err: unknown): SvixFailure {
  if (err instanceof ApiException) {
    const status = err.code;
    if (status === 409) {
      const code = (err.body as { code?: unknown } | undefined)?.code;
      return {
        kind: "conflict",
        code: typeof code === "string" ? code.slice(0, 100) : "",
        reason: describeBody(status, err.body),
      };
    }
    if (status === 404) return { kind: "app_missing" };
    if (PERMANENT.has(status)) return { kind: "permanent", status, reason: describeBody(status, err.body) };
    const retryAfterMs = parseRetryAfter(err.headers?.["retry-after"]);
    // 401/403 are a deployment problem (a wrong or revoked token), not the event's: keep the
    // event and let the circuit hold traffic until an operator fixes the token.
    return {
      kind: "transient",
      status,
      reason: describeBody(status, err.body),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
  }
  if (err instanceof SyntaxError) {
    // The SDK parses a 4xx body as JSON: a proxy's HTML error page ends up here.
    return { kind: "transient", reason: "Svix answered with a body that is not JSON" };
  }
  if (err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError")) {
    return { kind: "transient", reason: "Svix did not answer in time" };
  }
  if (err instanceof ResponseTooLargeError) {
    // A proxy or a broken Svix streaming an endless body: its answer, not our bug.
    return { kind: "transient", reason: err.message };
  }
  if (isNetworkError(err)) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
    return { kind: "transient", reason: `network error${cause || `: ${err.message}`}` };
  }
  const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return { kind: "internal", reason: what.slice(0, 500) };
}

/**
 * A failure of the connection to Svix: a socket error from node:http (it carries a system error
 * code such as ECONNRESET) or the global fetch's `TypeError("fetch failed")` wrapping one. Any other
 * exception is a bug of ours and must surface as one.
 */
function isNetworkError(err: unknown): err is Error {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && /^(E[A-Z0-9_]+|UND_ERR[A-Z_]*|ERR_STREAM_PREMATURE_CLOSE)$/.test(code))
    return true;
  return err instanceof TypeError && err.message === "fetch failed";
}

/**
 * The longest wait a Retry-After may impose. The header comes from Svix or from whatever proxy
 * answers in its name; a day-long value (or a date years ahead) must not park a partition: past
 * this the relay's own backoff and circuit decide.
 */
export const MAX_RETRY_AFTER_MS = 60_000;

/** Retry-After as seconds or an HTTP date, at most MAX_RETRY_AFTER_MS; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(value.trim())) ms = Math.round(Number(value) * 1_000);
  else {
    const at = Date.parse(value);
    if (Number.isNaN(at)) return undefined;
    ms = at - now;
  }
  return clampRetryAfter(ms);
}

/**
 * Retry-After within [0, MAX_RETRY_AFTER_MS]; undefined (or not a number) stays undefined. The one
 * clamp: the header parser above and the relay's decision (for a delay from anywhere else) use it.
 */
export function clampRetryAfter(ms: number | undefined): number | undefined {
  if (ms === undefined || !Number.isFinite(ms)) return undefined;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

/** A short, safe description of Svix's answer: its code and detail, never request data. */
function describeBody(status: number, body: unknown): string {
  if (body && typeof body === "object") {
    const b = body as { code?: unknown; detail?: unknown };
    if (Array.isArray(b.detail)) {
      const parts = b.detail.slice(0, 3).map((d: { loc?: unknown[]; msg?: unknown }) => {
        const loc = Array.isArray(d.loc) ? d.loc.join(".") : "";
        return `${loc}: ${String(d.msg ?? "")}`;
      });
      return `HTTP ${status}: ${parts.join("; ")}`;
    }
    if (typeof b.detail === "string")
      return `HTTP ${status} ${String(b.code ?? "")}: ${b.detail}`.slice(0, 500);
  }
  if (typeof body === "string" && body.length > 0) return `HTTP ${status}: ${body.slice(0, 200)}`;
  return `HTTP ${status}`;
}
