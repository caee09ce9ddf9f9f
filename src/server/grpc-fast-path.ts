import type * as http from "node:http";
import * as http2 from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import {
  type PublishJobEventRequest,
  PublishJobEventRequestSchema,
  type PublishJobEventResponse,
  PublishJobEventResponseSchema,
  WebhookService,
} from "../gen/jobhooks/v1/webhooks_pb.js";
import type { Authenticator, Principal } from "./auth.js";
import type { OnePortHandler } from "./listener.js";

/**
 * PublishJobEvent over plain gRPC (HTTP/2, `application/grpc`, uncompressed), served straight on
 * the HTTP/2 stream: the one call publishers make in volume. connect-es turns each unary gRPC call
 * into a pipeline of async iterables, abort controllers and a handler context, which cost more CPU
 * than validating and storing the event (`npm run bench -- publish`, docs/operations.md). This does
 * the same steps in order — authenticate from the headers before reading the body, read at most
 * `readMaxBytes`, decode once, the same service code, the server deadline, the same metrics — and
 * answers the way Connect's gRPC handler does (status, message and details in trailers).
 *
 * Everything else (Connect, gRPC-Web, compression, other methods, tracing on) goes to Connect.
 */
export interface GrpcFastPathOptions {
  authenticate: Authenticator;
  publish(
    principal: Principal,
    req: PublishJobEventRequest,
    timeoutMs: number | undefined,
    signal: AbortSignal,
  ): Promise<PublishJobEventResponse>;
  readMaxBytes: number;
  rpcDeadlineMs: number;
  /** Records one call in the RPC metrics, as the Connect interceptor does. */
  record(method: string, code: string, seconds: number): void;
  /** False while something needs Connect's interceptors for this call too (tracing on). */
  enabled(): boolean;
}

const path = `/${WebhookService.typeName}/${WebhookService.method.publishJobEvent.name}`;
const method = `${WebhookService.typeName}/${WebhookService.method.publishJobEvent.name}`;

export function withGrpcFastPath(handler: OnePortHandler, o: GrpcFastPathOptions): OnePortHandler {
  return (req, res) => {
    const h = req.headers;
    if (
      req.httpVersionMajor !== 2 ||
      req.url !== path ||
      req.method !== "POST" ||
      !isPlainGrpc(h["content-type"]) ||
      (h["grpc-encoding"] !== undefined && h["grpc-encoding"] !== "identity") ||
      !o.enabled()
    ) {
      handler(req, res);
      return;
    }
    void serve(req as http2.Http2ServerRequest, res as http2.Http2ServerResponse, o);
  };
}

function isPlainGrpc(type: string | undefined): boolean {
  return type === "application/grpc" || type === "application/grpc+proto";
}

async function serve(
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  o: GrpcFastPathOptions,
): Promise<void> {
  const stream = res.stream;
  const started = performance.now();
  const abort = new AbortController();
  const onClose = () => abort.abort();
  stream.once("close", onClose);
  let code = "ok";
  let timer: NodeJS.Timeout | undefined;
  try {
    // Nothing of the body is read before the caller is known.
    const principal = await o.authenticate(
      req.headers.authorization,
      req.socket?.remoteAddress ?? "unknown",
      "PublishJobEvent",
    );
    const timeout = parseTimeout(headerValue(req.headers["grpc-timeout"]), Number.MAX_SAFE_INTEGER);
    if (timeout.error) throw timeout.error;
    const request = decodeFrame(await readBody(req, o.readMaxBytes));
    const deadlineMs = Math.min(o.rpcDeadlineMs, timeout.timeoutMs ?? o.rpcDeadlineMs);
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ConnectError(
              `no answer within the server's ${deadlineMs} ms deadline`,
              Code.DeadlineExceeded,
            ),
          ),
        deadlineMs,
      );
    });
    const response = await Promise.race([o.publish(principal, request, deadlineMs, abort.signal), expired]);
    respond(res, toBinary(PublishJobEventResponseSchema, response));
  } catch (err) {
    const error = ConnectError.from(err);
    code = Code[error.code] ?? "unknown";
    respondError(res, error);
  } finally {
    clearTimeout(timer);
    stream.off("close", onClose);
    o.record(method, code, (performance.now() - started) / 1_000);
  }
}

function headerValue(v: string | string[] | undefined): string | null {
  return Array.isArray(v) ? (v[0] ?? null) : (v ?? null);
}

async function readBody(req: http2.Http2ServerRequest | http.IncomingMessage, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.byteLength;
    if (size > max) {
      throw new ConnectError(`message larger than the ${max}-byte limit`, Code.ResourceExhausted);
    }
    chunks.push(chunk);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
}

/** A unary request is exactly one length-prefixed message; flag 0 means not compressed. */
function decodeFrame(bytes: Buffer): PublishJobEventRequest {
  if (bytes.byteLength < 5 || bytes[0] !== 0 || bytes.readUInt32BE(1) !== bytes.byteLength - 5) {
    throw new ConnectError("protocol error: expected one uncompressed gRPC message", Code.InvalidArgument);
  }
  try {
    return fromBinary(PublishJobEventRequestSchema, bytes.subarray(5));
  } catch (err) {
    throw new ConnectError(
      `cannot decode the request: ${(err as Error).message}`,
      Code.InvalidArgument,
      undefined,
      undefined,
      err,
    );
  }
}

// Written through the compatibility response (as Connect's adapter writes), which owns the
// stream's trailers.
function respond(res: http2.Http2ServerResponse, message: Uint8Array): void {
  if (res.stream.destroyed || res.stream.closed) return;
  const frame = Buffer.allocUnsafe(5 + message.byteLength);
  frame[0] = 0;
  frame.writeUInt32BE(message.byteLength, 1);
  frame.set(message, 5);
  res.writeHead(200, { "content-type": "application/grpc" });
  res.addTrailers({ "grpc-status": "0" });
  res.end(frame);
}

/** A trailers-only answer, as Connect's gRPC handler writes it (status, message, details). */
function respondError(res: http2.Http2ServerResponse, error: ConnectError): void {
  const stream = res.stream;
  if (stream.destroyed || stream.closed || res.headersSent) return;
  const headers: http2.OutgoingHttpHeaders = { "content-type": "application/grpc" };
  setTrailerStatus(new Headers(), error).forEach((value, key) => {
    headers[key] = value;
  });
  res.writeHead(200, headers);
  res.end();
  // A client still sending a body we refused to read stops when the stream is reset with NO_ERROR
  // (after the headers are out, as Connect does).
  setImmediate(() => {
    if (!stream.closed && stream.state?.remoteClose === 0) stream.close(http2.constants.NGHTTP2_NO_ERROR);
  });
}
