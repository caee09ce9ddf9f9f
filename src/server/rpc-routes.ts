import { createRegistry } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type HandlerContext,
  type Interceptor,
  type ServiceImpl,
} from "@connectrpc/connect";
import { ProxyTracerProvider, trace } from "@opentelemetry/api";
import { BadRequestSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { WebhookService } from "../gen/jobhooks/v1/webhooks_pb.js";
import { rpcTracing } from "../tracing/spans.js";
import { type Authenticator, authGate } from "./auth.js";
import type { HealthService } from "./health.js";
import { markDecoded, withJsonFieldErrors } from "./json-field-errors.js";
import type { ServerMetrics } from "./metrics.js";
import { registerReflection } from "./reflection.js";

/**
 * The RPC pipeline of the one port, apart from the HTTP listener: which services, the request gate
 * (authentication before the body is read), the interceptors and the decoding options. The Node
 * adapter (server.ts) and an in-memory router transport (the fast service tests) both take it, so
 * the rules those tests check are the ones the server runs.
 */

/** Largest request body: a PublishJobEvents batch in all (16 MiB). */
export const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

export interface RpcRoutesOptions {
  service: ServiceImpl<typeof WebhookService>;
  health: HealthService;
  authenticate: Authenticator;
  /** Longest a unary RPC may take, whatever deadline the client set. */
  rpcDeadlineMs: number;
  record: RpcRecorder;
}

/** What both `connectNodeAdapter` and `createRouterTransport` (as router options) accept. */
export interface RpcRouterOptions {
  requestGate: (ctx: HandlerContext) => Promise<void>;
  interceptors: Interceptor[];
  readMaxBytes: number;
  jsonOptions: { ignoreUnknownFields: false; registry: ReturnType<typeof createRegistry> };
}

export interface RpcRoutes {
  routes(router: ConnectRouter): void;
  options: RpcRouterOptions;
}

export function createRpcRoutes(o: RpcRoutesOptions): RpcRoutes {
  return {
    routes(router) {
      router.service(WebhookService, o.service);
      o.health.registerOn(router);
      registerReflection(router);
      withJsonFieldErrors(router);
    },
    options: {
      // Health and reflection stay open; the webhook service needs a credential.
      requestGate: authGate(o.authenticate, new Set([WebhookService.typeName])),
      interceptors: [
        markDecoded(),
        unaryDeadline(o.rpcDeadlineMs),
        whenTracing(rpcTracing()),
        rpcMetrics(o.record),
      ],
      // A whole PublishJobEvents batch; each event's own limit (with the field that is too large)
      // is checked after decoding. Only read once the request gate has authenticated the caller.
      readMaxBytes: MAX_REQUEST_BYTES,
      // Connect's default ignores unknown keys and enum names it does not know, turning
      // "status": "finished" into no status at all; refuse them instead, naming the field.
      // The registry lets a PublishJobEvents result's google.rpc.Status carry its details in JSON.
      jsonOptions: {
        ignoreUnknownFields: false,
        registry: createRegistry(BadRequestSchema, RetryInfoSchema),
      },
    },
  };
}

/**
 * A server-side deadline for unary RPCs, so no call holds a connection slot and its memory longer
 * than this, whatever (or whether) the client asked. Streams (health Watch) are not cut.
 */
function unaryDeadline(ms: number): Interceptor {
  return (next) => async (req) => {
    if (req.stream) return next(req);
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new ConnectError(`no answer within the server's ${ms} ms deadline`, Code.DeadlineExceeded)),
        ms,
      );
    });
    try {
      return await Promise.race([next(req), expired]);
    } finally {
      clearTimeout(timer);
    }
  };
}

const noopTracerProvider = new ProxyTracerProvider().getDelegate();

/** Whether a tracer provider is registered (an SDK started, or a test's); checked per call. */
export function tracingOn(): boolean {
  const provider = trace.getTracerProvider();
  return provider instanceof ProxyTracerProvider ? provider.getDelegate() !== noopTracerProvider : true;
}

/**
 * Skips the span interceptor while no tracer provider is registered (tracing off, the default):
 * extracting the caller's context and starting a no-op span cost ~3% of a publish and record
 * nothing. Checked per call, so a provider registered later (an SDK, a test) is used at once.
 */
function whenTracing(traced: Interceptor): Interceptor {
  return (next) => {
    const withSpan = traced(next);
    return (req) => (tracingOn() ? withSpan(req) : next(req));
  };
}

export type RpcRecorder = (method: string, code: string, seconds: number) => void;

/**
 * Counts and times RPCs. The labelled children are looked up once per method and code, not on
 * every call (prom-client hashes the label object each time it is given one).
 */
export function rpcRecorder(metrics: ServerMetrics): RpcRecorder {
  const timers = new Map<string, { observe(seconds: number): void }>();
  const counters = new Map<string, { inc(): void }>();
  return (method, code, seconds) => {
    const key = `${method} ${code}`;
    let c = counters.get(key);
    if (!c) {
      c = metrics.rpcs.labels(method, code);
      counters.set(key, c);
    }
    c.inc();
    let t = timers.get(method);
    if (!t) {
      t = metrics.rpcSeconds.labels(method);
      timers.set(method, t);
    }
    t.observe(seconds);
  };
}

function rpcMetrics(record: RpcRecorder): Interceptor {
  return (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    const started = performance.now();
    let code = "ok";
    try {
      return await next(req);
    } catch (err) {
      code = Code[ConnectError.from(err).code] ?? "unknown";
      throw err;
    } finally {
      record(method, code, (performance.now() - started) / 1_000);
    }
  };
}
