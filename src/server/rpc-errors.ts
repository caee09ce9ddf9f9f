import { create, toBinary } from "@bufbuild/protobuf";
import { AnySchema, anyPack, durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { FieldViolation } from "../events/validate.js";
import { BadRequestSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { type Status, StatusSchema } from "../gen/google/rpc/status_pb.js";

/**
 * RPC errors with google.rpc details, so a client library (or `buf curl`) shows which field is
 * wrong and when to retry, not just a code.
 */

/**
 * What an error may echo of a request, so a caller cannot make the answer large: violations listed
 * at most, and characters of a field path or a description at most.
 */
export const MAX_VIOLATIONS = 20;
const MAX_FIELD_CHARS = 200;
const MAX_DESCRIPTION_CHARS = 400;

/** `s`, cut to `max` characters with an ellipsis, so an echoed name stays readable and small. */
export function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

export function badRequest(code: Code, violations: FieldViolation[], prefix = ""): ConnectError {
  const fieldViolations = violations.slice(0, MAX_VIOLATIONS).map((v) => ({
    field: clip(prefix + v.field, MAX_FIELD_CHARS),
    description: clip(v.description, MAX_DESCRIPTION_CHARS),
  }));
  const summary = fieldViolations
    .slice(0, 3)
    .map((v) => (v.field ? `${v.field}: ${v.description}` : v.description))
    .join("; ");
  const more = violations.length > 3 ? ` (and ${violations.length - 3} more)` : "";
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

/** An error as google.rpc.Status: what a batch result carries, and gRPC's grpc-status-details-bin. */
export function statusOf(err: ConnectError): Status {
  return create(StatusSchema, {
    code: err.code,
    message: err.rawMessage,
    details: err.details.map((d) =>
      "desc" in d
        ? anyPack(d.desc, create(d.desc, d.value as never))
        : create(AnySchema, { typeUrl: `type.googleapis.com/${d.type}`, value: d.value }),
    ),
  });
}

/**
 * The gRPC status headers of an error, as every gRPC client reads them. `grpc-message` is
 * percent-encoded only where the gRPC spec requires it (bytes outside printable ASCII, and `%`):
 * grpc-js decodes it with decodeURI, which would leave an encodeURIComponent's `%3A` in the text.
 */
export function grpcStatusHeaders(err: ConnectError): Record<string, string> {
  const headers: Record<string, string> = {
    "grpc-status": String(err.code),
    "grpc-message": encodeGrpcMessage(err.rawMessage),
  };
  if (err.details.length > 0) {
    headers["grpc-status-details-bin"] = Buffer.from(toBinary(StatusSchema, statusOf(err))).toString(
      "base64",
    );
  }
  return headers;
}

export function encodeGrpcMessage(message: string): string {
  const bytes = Buffer.from(message, "utf8");
  let out = "";
  for (const b of bytes) {
    out +=
      b < 0x20 || b > 0x7e || b === 0x25
        ? `%${b.toString(16).toUpperCase().padStart(2, "0")}`
        : String.fromCharCode(b);
  }
  return out;
}

/** Re-encodes a `grpc-message` written with encodeURIComponent (Connect's) the spec's way. */
export function respecGrpcMessage(value: string): string {
  try {
    return encodeGrpcMessage(decodeURIComponent(value));
  } catch {
    return value;
  }
}

/**
 * The Connect protocol's error body (`{"code", "message", "details": [{"type", "value"}]}`, values
 * in base64 without padding), as connect-es clients and curl users read it.
 */
export function connectErrorJson(error: ConnectError): Uint8Array {
  const body: { code: string; message: string; details?: Array<{ type: string; value: string }> } = {
    code: codeToConnectName(error.code),
    message: error.rawMessage,
  };
  const details = error.details.map((d) =>
    "desc" in d
      ? { type: d.desc.typeName, value: toBinary(d.desc, create(d.desc, d.value as never)) }
      : { type: d.type, value: d.value },
  );
  if (details.length > 0) {
    body.details = details.map((d) => ({
      type: d.type,
      value: Buffer.from(d.value).toString("base64").replace(/=+$/, ""),
    }));
  }
  return new TextEncoder().encode(JSON.stringify(body));
}

/** `InvalidArgument` → `invalid_argument`: the Connect protocol's names for codes. */
function codeToConnectName(code: Code): string {
  return (Code[code] ?? "Unknown").replace(
    /[A-Z]/g,
    (c, i: number) => (i === 0 ? "" : "_") + c.toLowerCase(),
  );
}

/** The Connect protocol's HTTP status for each code. */
export function connectHttpStatus(code: Code): number {
  switch (code) {
    case Code.Canceled:
      return 499;
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
    case Code.OutOfRange:
      return 400;
    case Code.DeadlineExceeded:
      return 504;
    case Code.NotFound:
      return 404;
    case Code.AlreadyExists:
    case Code.Aborted:
      return 409;
    case Code.PermissionDenied:
      return 403;
    case Code.ResourceExhausted:
      return 429;
    case Code.Unimplemented:
      return 501;
    case Code.Unavailable:
      return 503;
    case Code.Unauthenticated:
      return 401;
    default:
      return 500;
  }
}
