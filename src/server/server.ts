import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type ConnectNodeAdapterOptions, connectNodeAdapter } from "@connectrpc/connect-node";
import type { Registry } from "prom-client";
import { WebhookService } from "../gen/jobhooks/v1/webhooks_pb.js";
import type { Logger } from "../log/logger.js";
import type { JobEventPublisher } from "../nats/publish-job-event.js";
import type { PortalLinks } from "../svix/portal.js";
import { rpcTracing } from "../tracing/spans.js";
import { authGate, type CredentialVerifier } from "./auth.js";
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
  const service = createWebhookService({
    publisher: o.publisher,
    portal: o.portal,
    portalRate: o.portalRate,
    maxPayloadBytes: o.maxPayloadBytes,
    publishTimeoutMs: o.publishTimeoutMs,
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
    requestGate: authGate(o.verifiers, new Set([WebhookService.typeName])),
    interceptors: [markDecoded(), rpcTracing(), rpcMetrics(metrics)],
    readMaxBytes,
    shutdownSignal: shutdown.signal,
  });

  const listener: OnePortListener = await listenOnePort({ host: o.host, port: o.port, handler });
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

function rpcMetrics(metrics: ReturnType<typeof createServerMetrics>): Interceptor {
  return (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    const end = metrics.rpcSeconds.startTimer({ method });
    try {
      const res = await next(req);
      metrics.rpcs.inc({ method, code: "ok" });
      return res;
    } catch (err) {
      metrics.rpcs.inc({ method, code: Code[ConnectError.from(err).code] ?? "unknown" });
      throw err;
    } finally {
      end();
    }
  };
}
