import type * as http from "node:http";
import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type PublishJobEventRequest,
  PublishJobEventRequestSchema,
  PublishJobEventResponseSchema,
  WebhookService,
} from "../gen/jobhooks/v1/webhooks_pb.js";
import { type PublishFramingOptions, serveFramedPublish } from "./framed-publish.js";
import { explainBody } from "./json-field-errors.js";
import type { NodeRequest, NodeResponse } from "./listener-parts.js";
import type { Admitted, FastFraming } from "./rpc-edge.js";
import { badRequest, connectErrorJson, connectHttpStatus } from "./rpc-errors.js";
import { closeAfterAnswer, stopSending } from "./unread-body.js";

const method = WebhookService.method.publishJobEvent;

/**
 * PublishJobEvent over Connect's unary JSON (`POST`, `content-type: application/json`,
 * uncompressed): what curl and HTTP services send. Framing only, like grpc-framing.ts: the edge has
 * decided the caller and read the body within its limits; this parses the JSON as strictly as
 * Connect does (unknown keys refused, explained field by field as json-field-errors.ts explains
 * them), runs the call under the same call rules and writes Connect's answer. Anything else of the
 * Connect protocol (compression, GET, binary) goes to Connect.
 */
export function connectJsonFraming(o: PublishFramingOptions): FastFraming {
  return {
    accepts(req, m) {
      const h = req.headers;
      return (
        m === method &&
        req.method === "POST" &&
        /^application\/json(;\s*charset=utf-8)?$/i.test(h["content-type"] ?? "") &&
        h["content-encoding"] === undefined &&
        (h["connect-protocol-version"] === undefined || h["connect-protocol-version"] === "1") &&
        o.enabled()
      );
    },
    serve(req, res, admitted) {
      void serve(req, res, admitted, o);
    },
  };
}

function serve(
  req: NodeRequest,
  res: NodeResponse,
  admitted: Admitted,
  o: PublishFramingOptions,
): Promise<void> {
  return serveFramedPublish(
    admitted,
    {
      timeoutMs: () => parseTimeout(req.headers["connect-timeout-ms"]),
      decode,
      respond: (response) => respond(res, 200, toJsonString(PublishJobEventResponseSchema, response)),
      respondError: (error) => respondError(req, res, error),
      closes: res,
    },
    o,
  );
}

/** Connect's `connect-timeout-ms`: up to 10 digits of milliseconds. */
function parseTimeout(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = Array.isArray(value) ? (value[0] ?? "") : value;
  if (!/^\d{1,10}$/.test(v)) {
    throw new ConnectError(
      `protocol error: invalid connect-timeout-ms ${JSON.stringify(v.slice(0, 20))}`,
      Code.InvalidArgument,
    );
  }
  return Number(v);
}

function decode(bytes: Buffer): PublishJobEventRequest {
  try {
    return fromJsonString(PublishJobEventRequestSchema, bytes.toString("utf8"), {
      ignoreUnknownFields: false,
    });
  } catch (err) {
    const violations = explainBody(PublishJobEventRequestSchema, bytes);
    if (violations.length > 0) throw badRequest(Code.InvalidArgument, violations);
    throw new ConnectError(`cannot decode the request: ${(err as Error).message}`, Code.InvalidArgument);
  }
}

function respond(
  res: NodeResponse,
  status: number,
  body: string | Uint8Array,
  extra: http.OutgoingHttpHeaders = {},
): void {
  if (res.headersSent || res.writableEnded) return;
  const r = res as http.ServerResponse;
  r.writeHead(status, { "content-type": "application/json", ...extra });
  r.end(body);
}

function respondError(req: NodeRequest, res: NodeResponse, error: ConnectError): void {
  const close = closeAfterAnswer(req, res) ? { connection: "close" } : {};
  respond(res, connectHttpStatus(error.code), connectErrorJson(error), close);
  stopSending(res);
}
