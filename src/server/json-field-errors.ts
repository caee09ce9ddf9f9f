import type { JsonValue } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  createContextKey,
  createContextValues,
  type Interceptor,
} from "@connectrpc/connect";
import type {
  UniversalHandler,
  UniversalServerRequest,
  UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import { locateJsonErrors } from "../events/json-errors.js";
import type { FieldViolation } from "../events/validate.js";
import { badRequest, connectErrorJson, connectHttpStatus } from "./rpc-errors.js";

/**
 * Connect rejects an undecodable JSON request with a message naming a protobuf type
 * ("cannot decode enum jobhooks.v1.JobStatus"), not the field the caller got wrong. For Connect
 * unary JSON (what curl and browsers send) this explains such a rejection: INVALID_ARGUMENT with a
 * BadRequest violation naming the field path (`event.status`) and what to type instead.
 *
 * Nothing here parses a request before Connect's own pipeline has authenticated it: the body's
 * bytes are only noted as Connect reads them (which it does after the request gate), and they are
 * parsed a second time only when Connect failed to decode them. A valid body is decoded once.
 *
 * 415 and 405, which Connect answers with an empty body, get a JSON body saying what to send.
 */
export function withJsonFieldErrors(router: ConnectRouter): void {
  const handlers = router.handlers;
  for (let i = 0; i < handlers.length; i++) {
    const inner = handlers[i] as UniversalHandler;
    if (inner.method.methodKind !== "unary") continue;
    handlers[i] = Object.assign(
      (req: UniversalServerRequest) => explainRejections(inner, req),
      inner,
    ) as UniversalHandler;
  }
}

/** Marks that the request reached the interceptors: Connect decoded its body. */
const decodedKey = createContextKey<{ decoded: boolean } | undefined>(undefined);

/** Must run as an interceptor, so a handler's own INVALID_ARGUMENT is never re-explained. */
export function markDecoded(): Interceptor {
  return (next) => (req) => {
    const mark = req.contextValues.get(decodedKey);
    if (mark) mark.decoded = true;
    return next(req);
  };
}

async function explainRejections(
  inner: UniversalHandler,
  req: UniversalServerRequest,
): Promise<UniversalServerResponse> {
  const contentType = req.header.get("content-type") ?? "";
  const json =
    req.method === "POST" &&
    /^application\/json(;|$)/i.test(contentType) &&
    !req.header.has("content-encoding") &&
    isByteStream(req.body);
  const mark = { decoded: false };
  const contextValues = req.contextValues ?? createContextValues();
  contextValues.set(decodedKey, mark);
  if (!json) {
    const res = explainEmpty(inner.method.name, await inner({ ...req, contextValues }));
    return mark.decoded ? res : undecodableIsInvalid(res, contentType);
  }

  const body = { chunks: [] as Uint8Array[], complete: false };
  const res = await inner({
    ...req,
    contextValues,
    body: noting(req.body as AsyncIterable<Uint8Array>, body),
  });
  // Only a body Connect read in full and could not decode is explained; a request refused before
  // (a bad timeout header) or while reading it (too large) keeps Connect's answer.
  if (mark.decoded || !body.complete || res.status !== connectHttpStatus(Code.InvalidArgument)) {
    return res;
  }
  const violations = explainBody(inner.method.input, Buffer.concat(body.chunks));
  if (violations.length === 0) return res;
  return jsonError(res.status, badRequest(Code.InvalidArgument, violations));
}

/** Why Connect could not decode this body, field by field. */
export function explainBody(input: UniversalHandler["method"]["input"], bytes: Uint8Array): FieldViolation[] {
  let json: JsonValue;
  try {
    json = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
  } catch (err) {
    return [{ field: "", description: `request body is not valid JSON: ${(err as Error).message}` }];
  }
  return locateJsonErrors(input, json, "");
}

function explainEmpty(method: string, res: UniversalServerResponse): UniversalServerResponse {
  if (res.status === 415) {
    return jsonError(
      415,
      new ConnectError(
        `unsupported content-type: send content-type: application/json with a JSON body (or application/proto; gRPC clients send application/grpc), e.g. curl -H 'content-type: application/json' -d '{...}'`,
        Code.InvalidArgument,
      ),
    );
  }
  if (res.status === 405) {
    return jsonError(
      405,
      new ConnectError(
        `method not allowed: ${method} is called with POST and content-type: application/json`,
        Code.Unimplemented,
      ),
      { allow: "POST" },
    );
  }
  return res;
}

function jsonError(
  status: number,
  error: ConnectError,
  extra: Record<string, string> = {},
): UniversalServerResponse {
  const body = connectErrorJson(error);
  return {
    status,
    header: new Headers({ "content-type": "application/json", ...extra }),
    body: once(body),
  };
}

/**
 * Connect calls a body it cannot parse or inflate ("parse binary: premature EOF", "decompression
 * failed") INTERNAL, as if the server were at fault; it is the caller's: INVALID_ARGUMENT, with the
 * same words. Only an error from before the call was decoded is changed. gRPC carries it in the
 * trailers, written after the body, so they are corrected as the body ends; gRPC-Web carries them
 * inside the body and keeps Connect's code.
 */
async function undecodableIsInvalid(
  res: UniversalServerResponse,
  contentType: string,
): Promise<UniversalServerResponse> {
  if (/^application\/grpc-web/i.test(contentType)) return res;
  if (/^application\/grpc/i.test(contentType)) {
    const trailer = res.trailer;
    const body = res.body;
    if (!trailer || body === undefined) return res;
    return {
      ...res,
      body: (async function* () {
        yield* body;
        if (trailer.get("grpc-status") === String(Code.Internal)) {
          trailer.set("grpc-status", String(Code.InvalidArgument));
        }
      })(),
    };
  }
  const body = res.body;
  if (res.status !== connectHttpStatus(Code.Internal) || body === undefined) return res;
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  let message = "cannot decode the request";
  try {
    message = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { message?: string }).message ?? message;
  } catch {
    // Keep the general words.
  }
  return jsonError(connectHttpStatus(Code.InvalidArgument), new ConnectError(message, Code.InvalidArgument));
}

function isByteStream(body: UniversalServerRequest["body"]): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

/** Passes the body through unchanged, keeping the chunks in case they must be explained. */
async function* noting(
  body: AsyncIterable<Uint8Array>,
  seen: { chunks: Uint8Array[]; complete: boolean },
): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    seen.chunks.push(chunk);
    yield chunk;
  }
  seen.complete = true;
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
