import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { type ConnectNodeAdapterOptions, connectNodeAdapter } from "@connectrpc/connect-node";
import type { Registry } from "prom-client";
import { WebhookService } from "../gen/jobhooks/v1/webhooks_pb.js";
import type { Logger } from "../log/logger.js";
import type { JobEventPublisher } from "../nats/publish-job-event.js";
import type { PortalLinks } from "../svix/portal.js";
import { type CredentialVerifier, clientAddressKey, createAuthenticator } from "./auth.js";
import { createFailedAuthLimiter, type FailedAuthLimiterOptions } from "./auth-failures.js";
import { withGrpcFastPath } from "./grpc-fast-path.js";
import { createHealth, overallHealth } from "./health.js";
import { httpEndpoints } from "./http-endpoints.js";
import type { JobDeliveries } from "./list-job-deliveries.js";
import { listenOnePort, type OnePortListener } from "./listener.js";
import { createServerMetrics } from "./metrics.js";
import type { RateLimiter } from "./rate-limit.js";
import { isReady, type Readiness } from "./readiness.js";
import { createRpcRoutes, MAX_REQUEST_BYTES, rpcRecorder, tracingOn } from "./rpc-routes.js";
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
  /** Certificate and key (PEM) to terminate TLS on the port; cleartext without. */
  tls?: { cert: string | Buffer; key: string | Buffer } | undefined;
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

export { MAX_REQUEST_BYTES };

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
    const checks = o.readiness.checks();
    const ready = isReady(checks);
    health.set(overallHealth, ready);
    health.set(WebhookService.typeName, ready);
    metrics.natsConnected.set(checks.nats?.ok ? 1 : 0);
  };
  syncHealth();
  const healthTimer = setInterval(syncHealth, 1_000);
  healthTimer.unref();

  const authenticate = createAuthenticator(o.verifiers, createFailedAuthLimiter(o.authFailures), o.log);
  const record = rpcRecorder(metrics);
  const rpc = createRpcRoutes({ service: service.impl, health, authenticate, rpcDeadlineMs, record });
  const handler = connectNodeAdapter({
    routes: rpc.routes,
    ...rpc.options,
    fallback: httpEndpoints({
      readiness: o.readiness,
      registry: o.registry,
      operationalWebhooks: o.operationalWebhooks,
    }) as ConnectNodeAdapterOptions["fallback"],
    contextValues: (req) =>
      createContextValues().set(clientAddressKey, req.socket?.remoteAddress ?? "unknown"),
    shutdownSignal: shutdown.signal,
  });

  const listener: OnePortListener = await listenOnePort({
    host: o.host,
    port: o.port,
    handler: withGrpcFastPath(handler, {
      authenticate,
      publish: service.publishJobEvent,
      readMaxBytes: MAX_REQUEST_BYTES,
      rpcDeadlineMs,
      record,
      enabled: () => !tracingOn(),
    }),
    ...(o.maxConnections ? { maxConnections: o.maxConnections } : {}),
    ...(o.tls ? { tls: o.tls } : {}),
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
