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
import { authGate, type CredentialVerifier, clientAddressKey } from "./auth.js";
import { createFailedAuthLimiter, type FailedAuthLimiterOptions } from "./auth-failures.js";
import { createHealth, overallHealth } from "./health.js";
import { httpEndpoints, type Readiness } from "./http-endpoints.js";
import { markDecoded, withJsonFieldErrors } from "./json-field-errors.js";
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
  const handler = connectNodeAdapter({
    routes(router) {
      router.service(WebhookService, service);
      health.registerOn(router);
      registerReflection(router);
      withJsonFieldErrors(router);
    },
    fallback: httpEndpoints({
      readiness: o.readiness,
      registry: o.registry,
    }) as ConnectNodeAdapterOptions["fallback"],
    requestGate: authGate(
      o.verifiers,
      new Set([WebhookService.typeName]),
      createFailedAuthLimiter(o.authFailures),
    ),
    contextValues: (req) =>
      createContextValues().set(clientAddressKey, req.socket?.remoteAddress ?? "unknown"),
    interceptors: [
      markDecoded(),
      unaryDeadline(rpcDeadlineMs),
      whenTracing(rpcTracing()),
      rpcMetrics(metrics),
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
    handler,
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

/**
 * Skips the span interceptor while no tracer provider is registered (tracing off, the default):
 * extracting the caller's context and starting a no-op span cost ~3% of a publish and record
 * nothing. Checked per call, so a provider registered later (an SDK, a test) is used at once.
 */
function whenTracing(traced: Interceptor): Interceptor {
  const noop = new ProxyTracerProvider().getDelegate();
  return (next) => {
    const withSpan = traced(next);
    return (req) => {
      const provider = trace.getTracerProvider();
      const on = provider instanceof ProxyTracerProvider ? provider.getDelegate() !== noop : true;
      return on ? withSpan(req) : next(req);
    };
  };
}

/**
 * Counts and times RPCs. The labelled children are looked up once per method and code, not on
 * every call (prom-client hashes the label object each time it is given one).
 */
function rpcMetrics(metrics: ReturnType<typeof createServerMetrics>): Interceptor {
  const timers = new Map<string, { observe(seconds: number): void }>();
  const counters = new Map<string, { inc(): void }>();
  const count = (method: string, code: string) => {
    const key = `${method} ${code}`;
    let c = counters.get(key);
    if (!c) {
      c = metrics.rpcs.labels(method, code);
      counters.set(key, c);
    }
    c.inc();
  };
  return (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    let timer = timers.get(method);
    if (!timer) {
      timer = metrics.rpcSeconds.labels(method);
      timers.set(method, timer);
    }
    const started = performance.now();
    try {
      const res = await next(req);
      count(method, "ok");
      return res;
    } catch (err) {
      count(method, Code[ConnectError.from(err).code] ?? "unknown");
      throw err;
    } finally {
      timer.observe((performance.now() - started) / 1_000);
    }
  };
}
