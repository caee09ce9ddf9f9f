import type * as http2 from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type PublishJobEventRequest,
  PublishJobEventRequestSchema,
  PublishJobEventResponseSchema,
  WebhookService,
} from "../gen/jobhooks/v1/webhooks_pb.js";
import { type PublishFramingOptions, serveFramedPublish } from "./framed-publish.js";
import type { Admitted, FastFraming } from "./rpc-edge.js";
import { grpcStatusHeaders } from "./rpc-errors.js";
import { stopSending } from "./unread-body.js";

const method = WebhookService.method.publishJobEvent;

/**
 * PublishJobEvent over plain gRPC (HTTP/2, `application/grpc`, uncompressed): framing only. Connect
 * turns each unary gRPC call into a pipeline of async iterables, abort controllers and a handler
 * context, which costs more CPU than storing the event (docs/operations.md, "Measured: the publish
 * path"). This reads the one length-prefixed message and writes the answer on the HTTP/2 stream;
 * everything else — who may call, body limits, deadline, metrics, the service itself — is the same
 * code every other protocol runs (rpc-edge.ts, call-rules.ts, webhook-service.ts).
 */
export function grpcFraming(o: PublishFramingOptions): FastFraming {
  return {
    accepts(req, m) {
      const h = req.headers;
      return (
        m === method &&
        req.httpVersionMajor === 2 &&
        req.method === "POST" &&
        isPlainGrpc(h["content-type"]) &&
        (h["grpc-encoding"] === undefined || h["grpc-encoding"] === "identity") &&
        o.enabled()
      );
    },
    serve(req, res, admitted) {
      void serve(req as http2.Http2ServerRequest, res as http2.Http2ServerResponse, admitted, o);
    },
  };
}

function isPlainGrpc(type: string | undefined): boolean {
  return type === "application/grpc" || type === "application/grpc+proto";
}

function serve(
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  admitted: Admitted,
  o: PublishFramingOptions,
): Promise<void> {
  return serveFramedPublish(
    admitted,
    {
      timeoutMs: () => parseGrpcTimeout(headerValue(req.headers["grpc-timeout"])),
      decode: decodeFrame,
      respond: (response) => respond(res, toBinary(PublishJobEventResponseSchema, response)),
      respondError: (error) => respondError(res, error),
      closes: res.stream,
    },
    o,
  );
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** gRPC's `grpc-timeout`: 1-8 digits and a unit (H, M, S, m, u, n). */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m)
    throw new ConnectError(
      `protocol error: invalid grpc-timeout ${JSON.stringify(value.slice(0, 20))}`,
      Code.InvalidArgument,
    );
  const unitMs = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 }[m[2] as "H"];
  return Number(m[1]) * unitMs;
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

/**
 * Headers, the one message, then trailers with the status — through the compatibility response,
 * which owns the stream's trailers (it answers the stream's wantTrailers itself).
 */
function respond(res: http2.Http2ServerResponse, message: Uint8Array): void {
  const stream = res.stream;
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  const frame = Buffer.allocUnsafe(5 + message.byteLength);
  frame[0] = 0;
  frame.writeUInt32BE(message.byteLength, 1);
  frame.set(message, 5);
  res.writeHead(200, { "content-type": "application/grpc" });
  res.addTrailers({ "grpc-status": "0" });
  res.end(frame);
  stopSending(res);
}

/**
 * A trailers-only answer: one HEADERS frame carrying the status and END_STREAM, which is what the
 * gRPC spec reads as a status (headers followed by an empty DATA frame are not).
 */
function respondError(res: http2.Http2ServerResponse, error: ConnectError): void {
  const stream = res.stream;
  if (stream.destroyed || stream.closed || stream.headersSent) return;
  stream.respond(
    { ":status": 200, "content-type": "application/grpc", ...grpcStatusHeaders(error) },
    { endStream: true },
  );
  stopSending(res);
}
