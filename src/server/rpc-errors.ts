import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { FieldViolation } from "../events/validate.js";
import { BadRequestSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";

/**
 * RPC errors with google.rpc details, so a client library (or `buf curl`) shows which field is
 * wrong and when to retry, not just a code.
 */

export function badRequest(code: Code, violations: FieldViolation[], prefix = ""): ConnectError {
  const fieldViolations = violations.map((v) => ({ field: prefix + v.field, description: v.description }));
  const summary = fieldViolations
    .slice(0, 3)
    .map((v) => (v.field ? `${v.field}: ${v.description}` : v.description))
    .join("; ");
  const more = fieldViolations.length > 3 ? ` (and ${fieldViolations.length - 3} more)` : "";
  return new ConnectError(`${summary}${more}`, code, undefined, [
    { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations }) },
  ]);
}

/** An error the caller should retry as is, after `retryAfterMs` (google.rpc.RetryInfo). */
function retryLater(code: Code, message: string, retryAfterMs: number): ConnectError {
  return new ConnectError(message, code, undefined, [
    { desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: durationFromMs(retryAfterMs) }) },
  ]);
}

/** UNAVAILABLE: a dependency (NATS, Svix) cannot answer now. */
export function unavailable(message: string, retryAfterMs: number): ConnectError {
  return retryLater(Code.Unavailable, message, retryAfterMs);
}

/** RESOURCE_EXHAUSTED for a caller over its rate, with when to try again. */
export function rateLimited(message: string, retryAfterMs: number): ConnectError {
  return retryLater(Code.ResourceExhausted, message, retryAfterMs);
}
