import { createRegistry } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type Interceptor } from "@connectrpc/connect";
import { type ConnectNodeAdapterOptions, connectNodeAdapter } from "@connectrpc/connect-node";
import { ProxyTracerProvider, trace } from "@opentelemetry/api";
import type { Registry } from "prom-client";
import { BadRequestSchema, RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { WebhookService } from "../gen/jobhooks/v1/webhooks_pb.js";
import type { Logger } from "../log/logger.js";
import type { JobEventPublisher } from "../nats/publish-job-event.js";
import type { PortalLinks } from "../svix/portal.js";
import { rpcTracing } from "../tracing/spans.js";
import { authGate, type CredentialVerifier, clientAddressKey, createAuthenticator } from "./auth.js";
import { createFailedAuthLimiter, type FailedAuthLimiterOptions } from "./auth-failures.js";
import { withGrpcFastPath } from "./grpc-fast-path.js";
import { createHealth, overallHealth } from "./health.js";
import { httpEndpoints, type Readiness } from "./http-endpoints.js";
import { markDecoded, withJsonFieldErrors } from "./json-field-errors.js";
import type { JobDeliveries } from "./list-job-deliveries.js";
import { listenOnePort, type OnePortListener } from "./listener.js";
import { createServerMetrics } from "./metrics.js";
import type { RateLimiter } from "./rate-limit.js";
import { registerReflection } from "./reflection.js";
import { createWebhookService } from "./webhook-service.js";

export interface ServerOptions {
  host: string;
  port: number;
  publisher: JobEventPublisher;
  /** Svix portals for GetPortalLink; undefined when no Svix is configured. */
  portal: PortalLinks | undefined;
  portalRate: RateLimiter;
  verifiers: CredentialVerifier[];
  readiness: Readiness;
  registry: Registry;
  maxPayloadBytes: number;
  publishTimeoutMs: number;
  shutdownGraceMs: number;
  /** Failed authentications allowed per client address. */
  authFailures?: FailedAuthLimiterOptions;
  /** Connections open at once (JOBHOOKS_MAX_CONNECTIONS). */
  maxConnections?: number;
  /** Longest a unary RPC may take, whatever deadline the client set (JOBHOOKS_RPC_DEADLINE_MS). */
  rpcDeadlineMs?: number;
  log: Logger;
  /** ListJobDeliveries. */
  deliveries: JobDeliveries;
  /** POST /svix/operational-webhooks, when JOBHOOKS_SVIX_OPERATIONAL_SECRET is set. */
  operationalWebhooks?: Parameters<typeof httpEndpoints>[0]["operationalWebhooks"];
}

/** Largest request body: a PublishJobEvents batch in all (16 MiB). */
export const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  /** Stops intake, lets in-flight RPCs finish (up to shutdownGraceMs), then closes every connection. */
  close(): Promise<void>;
}

/**
 * The one port: WebhookService, grpc.health.v1 and reflection over gRPC, gRPC-Web and Connect,
 * plus /healthz, /readyz and /metrics.
 */
export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const metrics = createServerMetrics(o.registry);
  const health = createHealth();
  const shutdown = new AbortController();
  const rpcDeadlineMs = o.rpcDeadlineMs ?? 30_000;
  const service = createWebhookService({
    publisher: o.publisher,
    portal: o.portal,
    portalRate: o.portalRate,
    maxPayloadBytes: o.maxPayloadBytes,
    // Publishing gives up (UNAVAILABLE, retry) just before the RPC deadline would cut it off.
    publishTimeoutMs: Math.min(o.publishTimeoutMs, Math.max(50, rpcDeadlineMs - 250)),
    metrics,
    log: o.log,
    deliveries: o.deliveries,
  });

  // Health follows readiness, so a gRPC load balancer stops routing to a replica that lost NATS.
  const syncHealth = () => {
    const ready = Object.values(o.readiness.checks()).every((c) => c.ok || !c.gates);
    health.set(overallHealth, ready);
    health.set(WebhookService.typeName, ready);
    metrics.natsConnected.set(o.readiness.checks().nats?.ok ? 1 : 0);
  };
  syncHealth();
  const healthTimer = setInterval(syncHealth, 1_000);
  healthTimer.unref();

  // A whole PublishJobEvents batch; each event's own limit (with the field that is too large) is
  // checked after decoding. Only read once the request gate has authenticated the caller.
  const readMaxBytes = MAX_REQUEST_BYTES;
  const authenticate = createAuthenticator(o.verifiers, createFailedAuthLimiter(o.authFailures), o.log);
  const record = rpcRecorder(metrics);
  const handler = connectNodeAdapter({
    routes(router) {
      router.service(WebhookService, service.impl);
      health.registerOn(router);
      registerReflection(router);
      withJsonFieldErrors(router);
    },
    fallback: httpEndpoints({
      readiness: o.readiness,
      registry: o.registry,
      operationalWebhooks: o.operationalWebhooks,
    }) as ConnectNodeAdapterOptions["fallback"],
    requestGate: authGate(authenticate, new Set([WebhookService.typeName])),
    contextValues: (req) =>
      createContextValues().set(clientAddressKey, req.socket?.remoteAddress ?? "unknown"),
    interceptors: [
      markDecoded(),
      unaryDeadline(rpcDeadlineMs),
      whenTracing(rpcTracing()),
      rpcMetrics(record),
    ],
    readMaxBytes,
    // Connect's default ignores unknown keys and enum names it does not know, turning
    // "status": "finished" into no status at all; refuse them instead, naming the field.
    // The registry lets a PublishJobEvents result's google.rpc.Status carry its details in JSON.
    jsonOptions: { ignoreUnknownFields: false, registry: createRegistry(BadRequestSchema, RetryInfoSchema) },
    shutdownSignal: shutdown.signal,
  });

  const listener: OnePortListener = await listenOnePort({
    host: o.host,
    port: o.port,
    handler: withGrpcFastPath(handler, {
      authenticate,
      publish: service.publishJobEvent,
      readMaxBytes,
      rpcDeadlineMs,
      record,
      enabled: () => !tracingOn(),
    }),
    ...(o.maxConnections ? { maxConnections: o.maxConnections } : {}),
  });
  o.log.info({ url: listener.url }, "listening");

  let closing: Promise<void> | undefined;
  return {
    url: listener.url,
    port: listener.port,
    close() {
      closing ??= (async () => {
        clearInterval(healthTimer);
        health.shutdown();
        await listener.close({ graceMs: o.shutdownGraceMs });
        shutdown.abort(new ConnectError("server is shutting down", Code.Unavailable));
      })();
      return closing;
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
function tracingOn(): boolean {
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

type RpcRecorder = (method: string, code: string, seconds: number) => void;

/**
 * Counts and times RPCs. The labelled children are looked up once per method and code, not on
 * every call (prom-client hashes the label object each time it is given one).
 */
function rpcRecorder(metrics: ReturnType<typeof createServerMetrics>): RpcRecorder {
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
