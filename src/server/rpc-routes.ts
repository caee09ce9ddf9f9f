import { createRegistry } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext, Interceptor, ServiceImpl } from "@connectrpc/connect";
import { ProxyTracerProvider, trace } from "@opentelemetry/api";
import { BadRequestSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { WebhookService } from "../gen/jobhooks/v1/webhooks_pb.js";
import { rpcTracing } from "../tracing/spans.js";
import { type Authenticator, clientAddressKey, principalKey } from "./auth.js";
import { type CallRules, callRulesInterceptor, type RpcRecorder } from "./call-rules.js";
import type { HealthService } from "./health.js";
import { markDecoded, withJsonFieldErrors } from "./json-field-errors.js";
import type { ServerMetrics } from "./metrics.js";
import { registerReflection } from "./reflection.js";
import { admittedKey, callerOf, refusalKey } from "./rpc-edge.js";
import { LARGEST_READ_MAX_BYTES, OPEN_READ_MAX_BYTES, policyOf } from "./rpc-policy.js";

/**
 * The Connect side of the one port: which services, the request gate (the caller decided from the
 * headers, before any body is read), the interceptors and the decoding options. The edge
 * (rpc-edge.ts) and an in-memory router transport (the fast service tests) both take it, so the
 * rules those tests check are the ones the server runs.
 */

export interface RpcRoutesOptions {
  service: ServiceImpl<typeof WebhookService>;
  health: HealthService;
  authenticate: Authenticator;
  rules: CallRules;
}

/** What both the edge (rpc-edge.ts) and `createRouterTransport` (as router options) accept. */
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
      // Anyone may call these: every message is held to a tiny read limit (rpc-policy.ts).
      const open = { readMaxBytes: OPEN_READ_MAX_BYTES };
      o.health.registerOn(router, open);
      registerReflection(router, {}, open);
      withJsonFieldErrors(router);
    },
    options: {
      requestGate: requestGate(o.authenticate),
      interceptors: [markDecoded(), whenTracing(rpcTracing()), callRulesInterceptor(o.rules)],
      // The edge has read each body within its method's own limit (rpc-policy.ts) before Connect
      // sees it; this only bounds what Connect may decode where no edge ran.
      readMaxBytes: LARGEST_READ_MAX_BYTES,
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
 * Runs on headers only, before Connect reads a body: answers a refusal the edge decided, or — where
 * no edge ran (the in-memory transport) — decides the caller by the same rule the edge uses.
 */
function requestGate(authenticate: Authenticator): (ctx: HandlerContext) => Promise<void> {
  return async (ctx) => {
    const refusal = ctx.values.get(refusalKey);
    if (refusal) throw refusal;
    if (ctx.values.get(admittedKey)) return;
    const principal = await callerOf(
      policyOf(ctx.method).access,
      ctx.method,
      ctx.requestHeader.get("authorization"),
      ctx.values.get(clientAddressKey),
      authenticate,
    );
    if (principal) ctx.values.set(principalKey, principal);
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
 * extracting the caller's context and starting a no-op span cost CPU on every publish and record
 * nothing (docs/operations.md, "Measured: the publish path"). Checked per call, so a provider registered later (an SDK, a test) is used at once.
 */
function whenTracing(traced: Interceptor): Interceptor {
  return (next) => {
    const withSpan = traced(next);
    return (req) => (tracingOn() ? withSpan(req) : next(req));
  };
}

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
