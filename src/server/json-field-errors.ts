import { type DescField, type DescMessage, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import type {
  UniversalHandler,
  UniversalServerRequest,
  UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { locateJsonErrors } from "../events/json-errors.js";
import type { FieldViolation } from "../events/validate.js";
import { badRequest } from "./rpc-errors.js";

/**
 * Connect rejects an undecodable JSON request with a message naming a protobuf type
 * ("cannot decode enum jobhooks.v1.JobStatus"), not the field the caller got wrong. For Connect
 * unary JSON (what curl and browsers send) this re-decodes the body field by field and answers
 * INVALID_ARGUMENT with a BadRequest violation naming the field path, e.g. `event.status`.
 *
 * Only failures are re-examined, and only after the real handler answered: authentication still
 * runs before anything is parsed, and a request the handler rejects for another reason (401,
 * size) keeps that answer.
 */
export function withJsonFieldErrors(router: ConnectRouter, readMaxBytes = 4 * 1024 * 1024): void {
  const handlers = router.handlers;
  for (let i = 0; i < handlers.length; i++) {
    const inner = handlers[i] as UniversalHandler;
    if (inner.method.methodKind !== "unary") continue;
    const wrapped = Object.assign(
      (req: UniversalServerRequest) => decodeWithFieldErrors(inner, req, readMaxBytes),
      inner,
    ) as UniversalHandler;
    handlers[i] = wrapped;
  }
}

async function decodeWithFieldErrors(
  inner: UniversalHandler,
  req: UniversalServerRequest,
  readMaxBytes: number,
): Promise<UniversalServerResponse> {
  const contentType = req.header.get("content-type") ?? "";
  if (
    req.method !== "POST" ||
    !/^application\/json(;|$)/i.test(contentType) ||
    req.header.has("content-encoding") ||
    !isByteStream(req.body)
  ) {
    return inner(req);
  }
  const bytes = await readAll(req.body, readMaxBytes);
  const retry = { ...req, body: once(bytes) };
  if (bytes.byteLength > readMaxBytes) return inner(retry);

  let json: JsonValue;
  try {
    json = JSON.parse(new TextDecoder().decode(bytes)) as JsonValue;
  } catch (err) {
    return explainIfRejected(inner, retry, [
      { field: "", description: `request body is not valid JSON: ${(err as Error).message}` },
    ]);
  }
  const violations = locateJsonErrors(inner.method.input, json, "");
  if (violations.length === 0) return inner({ ...req, body: json });
  return explainIfRejected(inner, retry, violations);
}

/** Lets the handler answer first (auth, limits); replaces only its generic decode error. */
async function explainIfRejected(
  inner: UniversalHandler,
  req: UniversalServerRequest,
  violations: FieldViolation[],
): Promise<UniversalServerResponse> {
  const res = await inner(req);
  if (res.status !== codeToHttpStatus(Code.InvalidArgument)) return res;
  const error: ConnectError = badRequest(Code.InvalidArgument, violations);
  return {
    status: res.status,
    header: new Headers({ "content-type": "application/json" }),
    body: once(errorToJsonBytes(error, {})),
  };
}

function isByteStream(body: UniversalServerRequest["body"]): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

async function readAll(body: AsyncIterable<Uint8Array>, max: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk);
    size += chunk.byteLength;
    if (size > max) break;
  }
  return Buffer.concat(chunks, size);
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
