import type * as http from "node:http";
import * as http2 from "node:http2";
import type { DescMethod } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouterOptions,
  type ContextValues,
  createConnectRouter,
  createContextKey,
  createContextValues,
} from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import { type Authenticator, clientAddressKey, type Principal, principalKey } from "./auth.js";
import { overBudget, type ReadBody, readBody } from "./body-reader.js";
import { codeName, type RpcRecorder } from "./call-rules.js";
import type { ConnectionTrust } from "./connection-trust.js";
import { type BodyEncoding, decodeCostOf } from "./decode-cost.js";
import type { OnePortHandler } from "./listener.js";
import type { NodeRequest, NodeResponse } from "./listener-parts.js";
import type { MemoryBudget } from "./memory-budget.js";
import { createOpenStreamLimits, type OpenStreamLimitOptions } from "./open-streams.js";
import { clip, connectErrorJson, grpcStatusHeaders, respecGrpcMessage } from "./rpc-errors.js";
import { type Access, policyOf, type RpcPolicy } from "./rpc-policy.js";
import { closeAfterAnswer, stopSending } from "./unread-body.js";

/**
 * The wire side of every RPC on the port, before Connect or the fast framing decodes anything:
 *
 *   route → caller (from the headers: credential, permission, open-stream caps) → body (per-method
 *   limit, shared memory budget, read deadline) → Connect's protocol handler, or the fast framing
 *   for the hot call → answer.
 *
 * A refusal decided here (no credential, a customer key on a service method, a body too large or too
 * slow, memory full) is handed to Connect's request gate, which answers it in each protocol's own
 * way without reading the body; the fast framing answers it in gRPC's. Either way the rules and the
 * words are the ones below, and they are decided before a byte of the body is read.
 */

/** A refusal decided at the edge, for Connect's request gate to answer. */
export const refusalKey = createContextKey<ConnectError | undefined>(undefined, { description: "refusal" });
/** Set once the edge has decided the caller, so the gate does not authenticate again. */
export const admittedKey = createContextKey<boolean>(false, { description: "admitted at the edge" });

/**
 * Who the caller is, decided from the headers alone: nobody for an open method, else a principal
 * allowed to call this method. The one rule for every path: the edge calls it before reading a body,
 * and Connect's request gate calls it where no edge ran (the in-memory transport of the tests).
 */
export async function callerOf(
  access: Access,
  method: DescMethod,
  authorization: string | null | undefined,
  address: string,
  authenticate: Authenticator,
): Promise<Principal | undefined> {
  if (access === "open") return undefined;
  const principal = await authenticate(authorization, address, method.name);
  if (access === "service" && principal.kind !== "service") {
    throw new ConnectError(`${method.name} is for internal services only`, Code.PermissionDenied);
  }
  return principal;
}

export interface Admitted {
  principal: Principal | undefined;
  /** The whole body of a unary call, read within its limits; undefined for streams and refusals. */
  body: Buffer | undefined;
  refusal: ConnectError | undefined;
}

/** The fast framing of a hot call: used when it `accepts` a request, after the same admission. */
export interface FastFraming {
  accepts(req: NodeRequest, method: DescMethod): boolean;
  serve(req: NodeRequest, res: NodeResponse, admitted: Admitted): void;
}

export interface RpcEdgeOptions {
  routes: (router: ReturnType<typeof createConnectRouter>) => void;
  routerOptions: ConnectRouterOptions;
  /** Plain HTTP paths (/healthz, /metrics, …) and anything that is not a method. */
  fallback: (req: NodeRequest, res: NodeResponse) => void;
  authenticate: Authenticator;
  clientAddress: (req: NodeRequest) => string;
  budget: MemoryBudget;
  /** A request's body must have arrived within this; a stream's request side is ended after it. */
  bodyDeadlineMs: number;
  openStreams?: OpenStreamLimitOptions;
  /** Told about each connection a valid credential arrived on. */
  connectionTrust?: Pick<ConnectionTrust, "prove">;
  record: RpcRecorder;
  /** Fast framings of hot calls, tried in order; everything they do not accept goes to Connect. */
  fast?: readonly FastFraming[];
}

/** Open streams (reflection) may send this many times their per-message limit in all. */
const STREAM_BODY_FACTOR = 32;

export function rpcEdge(o: RpcEdgeOptions): OnePortHandler {
  const router = createConnectRouter({
    acceptCompression: [compressionGzip, compressionBrotli],
    ...o.routerOptions,
  });
  o.routes(router);
  const paths = new Map<string, { handler: (typeof router.handlers)[number]; policy: RpcPolicy }>();
  for (const handler of router.handlers) {
    paths.set(handler.requestPath, { handler, policy: policyOf(handler.method) });
  }
  const openStreams = createOpenStreamLimits(o.openStreams);
  const methods = [...paths.keys()].map((p) => p.slice(1)).sort();

  return (req, res) => {
    const path = (req.url ?? "").split("?", 1)[0] ?? "";
    const entry = paths.get(path);
    if (!entry) return rpcShaped(path) ? notAMethod(req, res, path, methods) : o.fallback(req, res);
    const { handler, policy } = entry;
    const method = handler.method;
    const address = o.clientAddress(req);
    let reserved = 0;
    let releaseSlot = () => {};
    res.once("close", () => {
      o.budget.release(reserved);
      reserved = 0;
      releaseSlot();
    });

    admit()
      .then((admitted) => {
        if (admitted.refusal)
          o.record(`${method.parent.typeName}/${method.name}`, codeName(admitted.refusal), 0);
        const framing = o.fast?.find((f) => f.accepts(req, method));
        if (framing) return framing.serve(req, res, admitted);
        serveWithConnect(admitted);
      })
      .catch(() => {
        // A request Connect cannot even represent (no authority, a broken socket): nothing to
        // answer in any protocol, and never a reason for the process to die.
        abandon(res);
      });

    async function admit(): Promise<Admitted> {
      const streaming = method.methodKind !== "unary";
      try {
        // Calls nobody authenticated hold a slot while they run, unary ones too: an unfinished
        // health check holds its stream as long as a Watch does, up to the body deadline.
        if (policy.access === "open") {
          const slot = openStreams.take(connectionOf(req), address);
          if (!slot) {
            throw new ConnectError(
              "too many calls without a credential open from this connection or address; finish or close some",
              Code.ResourceExhausted,
            );
          }
          releaseSlot = slot;
        }
        const principal = await callerOf(
          policy.access,
          method,
          headerOf(req, "authorization"),
          address,
          o.authenticate,
        );
        if (principal) o.connectionTrust?.prove(req.socket);
        if (streaming) return { principal, body: undefined, refusal: undefined };
        const read: ReadBody = await readBody(req, {
          maxBytes: policy.readMaxBytes,
          // gRPC and gRPC-Web wrap the message in a 5-byte envelope; Connect's unary calls do not.
          envelopeBytes: /^application\/grpc/i.test(headerOf(req, "content-type") ?? "") ? 5 : 0,
          deadlineMs: o.bodyDeadlineMs,
          budget: o.budget,
          procedure: method.name,
        });
        reserved += read.reserved;
        const cost = decodeCostOf(read.bytes, encodingOf(req), method.input, policy.readMaxBytes);
        if (!o.budget.tryReserve(cost)) throw overBudget();
        reserved += cost;
        return { principal, body: read.bytes, refusal: undefined };
      } catch (err) {
        return { principal: undefined, body: undefined, refusal: ConnectError.from(err) };
      }
    }

    function serveWithConnect(admitted: Admitted): void {
      const values: ContextValues = createContextValues()
        .set(clientAddressKey, address)
        .set(admittedKey, true)
        .set(refusalKey, admitted.refusal);
      if (admitted.principal) values.set(principalKey, admitted.principal);
      const uReq = universalRequestFromNodeRequest(req, res, undefined, values);
      if (admitted.refusal) {
        uReq.body = emptyBody();
      } else if (admitted.body) {
        uReq.body = oneChunk(admitted.body);
      } else {
        uReq.body = meteredStream(req, policy.readMaxBytes * STREAM_BODY_FACTOR, o.bodyDeadlineMs);
      }
      fixGrpcMessages(res);
      handler(uReq)
        .then((uRes) => {
          if (closeAfterAnswer(req, res)) {
            const header = new Headers(uRes.header);
            header.set("connection", "close");
            uRes = { ...uRes, header };
          }
          return universalResponseToNodeResponse(uRes, res);
        })
        .then(
          () => stopSending(res),
          (reason: unknown) => {
            if (ConnectError.from(reason).code !== Code.Aborted) stopSending(res);
          },
        );
    }
  };
}

/** `/package.Service/Method`: what a client calling a method sends. */
function rpcShaped(path: string): boolean {
  return /^\/[A-Za-z_][\w.]*\/[A-Za-z_]\w*$/.test(path);
}

/**
 * A call to a method the port does not serve (a typo, a wrong package): UNIMPLEMENTED, naming the
 * methods it does serve, in the caller's protocol — gRPC clients read a status, Connect and curl a
 * JSON error.
 */
function notAMethod(req: NodeRequest, res: NodeResponse, path: string, methods: readonly string[]): void {
  const service = path.slice(1, path.lastIndexOf("/"));
  const same = methods.filter((m) => m.startsWith(`${service}/`));
  const listed = (same.length > 0 ? same : methods.filter((m) => m.startsWith("jobhooks."))).join(", ");
  const error = new ConnectError(
    `no method ${clip(path.slice(1), 200)}; this port serves ${listed} (and grpc.health.v1, server reflection: buf curl --list-methods)`,
    Code.Unimplemented,
  );
  const contentType = headerOf(req, "content-type") ?? "";
  if ("stream" in res && contentType.startsWith("application/grpc")) {
    const stream = res.stream;
    if (!stream.headersSent && !stream.destroyed) {
      stream.respond(
        { ":status": 200, "content-type": contentType, ...grpcStatusHeaders(error) },
        { endStream: true },
      );
    }
    stopSending(res);
    return;
  }
  const r = res as http.ServerResponse;
  const close: http.OutgoingHttpHeaders = closeAfterAnswer(req, res) ? { connection: "close" } : {};
  r.writeHead(404, { "content-type": "application/json", "cache-control": "no-store", ...close });
  r.end(connectErrorJson(error));
  stopSending(res);
}

function encodingOf(req: NodeRequest): BodyEncoding {
  const encoding = headerOf(req, "content-encoding") ?? headerOf(req, "grpc-encoding") ?? "identity";
  if (encoding !== "identity") return "compressed";
  return /json/i.test(headerOf(req, "content-type") ?? "") ? "json" : "proto";
}

function abandon(res: NodeResponse): void {
  if ("stream" in res) {
    if (!res.stream.destroyed) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  res.destroy();
}

function headerOf(req: NodeRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The connection a request came on: the HTTP/2 session, or the HTTP/1.1 socket. */
function connectionOf(req: NodeRequest): object {
  return "stream" in req ? (req.stream.session ?? req.socket) : req.socket;
}

/**
 * grpc-js decodes `grpc-message` with decodeURI, which leaves encodeURIComponent's `%3A` in place;
 * every client decodes the spec's minimal encoding. Connect writes its trailers through this.
 */
function fixGrpcMessages(res: NodeResponse): void {
  const addTrailers = res.addTrailers.bind(res) as (headers: http.OutgoingHttpHeaders) => void;
  (res as { addTrailers: (headers: http.OutgoingHttpHeaders) => void }).addTrailers = (headers) => {
    const message = headers["grpc-message"];
    if (typeof message === "string") headers["grpc-message"] = respecGrpcMessage(message);
    addTrailers(headers);
  };
}

async function* emptyBody(): AsyncIterable<Uint8Array> {}

async function* oneChunk(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/**
 * A stream's request side (health Watch, reflection), passed through as it arrives but bounded:
 * at most `maxBytes` in all, and ended with DEADLINE_EXCEEDED if still open after `deadlineMs`.
 */
async function* meteredStream(
  req: NodeRequest,
  maxBytes: number,
  deadlineMs: number,
): AsyncIterable<Uint8Array> {
  const it = req.iterator({ destroyOnReturn: false })[Symbol.asyncIterator]();
  const deadline = Date.now() + deadlineMs;
  let size = 0;
  for (;;) {
    const left = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<"expired">((resolve) => {
      timer = setTimeout(() => resolve("expired"), Math.max(0, left));
    });
    const next = await Promise.race([it.next(), expired]).finally(() => clearTimeout(timer));
    if (next === "expired") {
      req.pause();
      throw new ConnectError(`the request stream stayed open past ${deadlineMs} ms`, Code.DeadlineExceeded);
    }
    if (next.done) return;
    const chunk = next.value as Buffer;
    size += chunk.byteLength;
    if (size > maxBytes) {
      req.pause();
      throw new ConnectError(`request stream over its ${maxBytes}-byte limit`, Code.ResourceExhausted);
    }
    yield chunk;
  }
}
