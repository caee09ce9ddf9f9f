import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "../log/logger.js";
import type { SvixCallFailure } from "../svix/call-failure.js";
import { unavailable } from "./rpc-errors.js";

/** What an RPC says and logs when its Svix call failed. */
export interface SvixCallContext {
  log: Logger;
  /** Log fields naming the call's subject (tenant, caller, …); never a secret. */
  fields: Record<string, unknown>;
  /** The log line's subject, e.g. `portal link failed`; `: Svix unavailable|refused` is appended. */
  event: string;
  /** The UNAVAILABLE message: the caller should retry. */
  unavailable: string;
  /** The INTERNAL message; the reason goes to the log only, since it may name Svix internals. */
  refused: string;
}

/**
 * The one mapping of a failed Svix call to an RPC error: transient (down, slow, throttling) is
 * UNAVAILABLE with Svix's retry delay or a second; anything else is INTERNAL with the reason logged.
 */
export function svixCallError(failure: SvixCallFailure, c: SvixCallContext): ConnectError {
  if (failure.kind === "transient") {
    c.log.warn({ ...c.fields, reason: failure.reason }, `${c.event}: Svix unavailable`);
    return unavailable(c.unavailable, failure.retryAfterMs ?? 1_000);
  }
  c.log.error({ ...c.fields, reason: failure.reason }, `${c.event}: Svix refused`);
  return new ConnectError(c.refused, Code.Internal);
}
