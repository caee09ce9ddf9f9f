import type { SvixFailure } from "./classify.js";

/**
 * A Svix read or portal call that did not succeed, as the RPC handlers answer it: retry later
 * (UNAVAILABLE with a delay) or a refusal (INTERNAL, the reason logged).
 */
export type SvixCallFailure =
  /** Svix is down, slow or throttling: the caller may retry. */
  | { kind: "transient"; retryAfterMs?: number; reason: string }
  /** Svix refused the request; `reason` is safe to log, not meant for the caller. */
  | { kind: "failed"; reason: string };

/**
 * A classified failure the call has no answer of its own for. Only `transient` may clear up;
 * anything else (a refusal, a conflict, a 404 the call did not expect) is `failed`.
 */
export function callFailure(failure: SvixFailure): SvixCallFailure {
  if (failure.kind === "transient") {
    return {
      kind: "transient",
      reason: failure.reason,
      ...(failure.retryAfterMs === undefined ? {} : { retryAfterMs: failure.retryAfterMs }),
    };
  }
  return { kind: "failed", reason: "reason" in failure ? failure.reason : failure.kind };
}

/** Wraps each Svix call (the gateway's timing metrics). */
export type TimedCall = <T>(call: () => Promise<T>) => Promise<T>;

/** No wrapping, for a caller that records no metrics. */
export const untimed: TimedCall = (call) => call();
