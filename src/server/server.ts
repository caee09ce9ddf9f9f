import { getHeapStatistics } from "node:v8";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Registry } from "prom-client";
import { WebhookService } from "../gen/jobhooks/v1/webhooks_pb.js";
import type { Logger } from "../log/logger.js";
import type { JobEventPublisher } from "../nats/publish-job-event.js";
import type { PortalLinks } from "../svix/portal.js";
import { type CredentialVerifier, createAuthenticator } from "./auth.js";
import { createFailedAuthLimiter, type FailedAuthLimiterOptions } from "./auth-failures.js";
import type { CallRules } from "./call-rules.js";
import { clientAddressOf } from "./client-address.js";
import { connectJsonFraming } from "./connect-json-framing.js";
import { createConnectionTrust } from "./connection-trust.js";
import { grpcFraming } from "./grpc-framing.js";
import { createHealth, overallHealth } from "./health.js";
import { httpEndpoints } from "./http-endpoints.js";
import type { JobDeliveries } from "./list-job-deliveries.js";
import { listenOnePort, type OnePortListener } from "./listener.js";
import { createMemoryBudget } from "./memory-budget.js";
import { createServerMetrics } from "./metrics.js";
import type { OpenStreamLimitOptions } from "./open-streams.js";
import type { RateLimiter } from "./rate-limit.js";
import { isReady, type Readiness } from "./readiness.js";
import { rpcEdge } from "./rpc-edge.js";
import { createRpcRoutes, rpcRecorder, tracingOn } from "./rpc-routes.js";
import type { TenantAdmin } from "./tenant-admin.js";
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
  /**
   * Bytes of request bodies being read and decoded at once, all callers together
   * (JOBHOOKS_REQUEST_MEMORY_BYTES); past it a caller gets RESOURCE_EXHAUSTED with RetryInfo.
   */
  requestMemoryBytes?: number;
  /** Longest a request's body may take to arrive (JOBHOOKS_BODY_DEADLINE_MS); default the RPC deadline. */
  bodyDeadlineMs?: number;
  /** Connections nobody authenticated on, per client address (JOBHOOKS_MAX_UNAUTHENTICATED_CONNECTIONS_PER_ADDRESS). */
  maxUnprovenConnectionsPerAddress?: number;
  /** Streams nobody authenticated (health Watch, reflection), per connection and per address. */
  openStreams?: OpenStreamLimitOptions;
  /** Proxies allowed to name the client's address, and the header they name it in. */
  clientAddress?: { trustedProxies: readonly string[]; header: string };
  log: Logger;
  /** ListJobDeliveries. */
  deliveries: JobDeliveries;
  /** Keys, GetTenant, DeleteTenant and the audit trail; without it those RPCs answer UNAVAILABLE. */
  admin?: TenantAdmin | undefined;
  /** POST /svix/operational-webhooks, when JOBHOOKS_SVIX_OPERATIONAL_SECRET is set. */
  operationalWebhooks?: Parameters<typeof httpEndpoints>[0]["operationalWebhooks"];
}

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
    admin: o.admin,
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
  const rules: CallRules = { rpcDeadlineMs, record: rpcRecorder(metrics) };
  const rpc = createRpcRoutes({ service: service.impl, health, authenticate, rules });
  const connectionTrust = createConnectionTrust(o.maxUnprovenConnectionsPerAddress ?? 256);
  const budget = createMemoryBudget(o.requestMemoryBytes ?? defaultRequestMemoryBytes());
  const handler = rpcEdge({
    routes: rpc.routes,
    routerOptions: { ...rpc.options, shutdownSignal: shutdown.signal },
    fallback: httpEndpoints({
      readiness: o.readiness,
      registry: o.registry,
      operationalWebhooks: o.operationalWebhooks,
    }),
    authenticate,
    clientAddress: clientAddressOf(o.clientAddress ?? { trustedProxies: [], header: "x-forwarded-for" }),
    budget,
    bodyDeadlineMs: o.bodyDeadlineMs ?? rpcDeadlineMs,
    ...(o.openStreams ? { openStreams: o.openStreams } : {}),
    connectionTrust,
    record: rules.record,
    fast: [
      grpcFraming({ publish: service.publishJobEvent, rules, enabled: () => !tracingOn() }),
      connectJsonFraming({ publish: service.publishJobEvent, rules, enabled: () => !tracingOn() }),
    ],
  });
  metrics.requestMemoryLimit.set(budget.limit);
  const syncMemory = setInterval(() => metrics.requestMemoryInUse.set(budget.inUse), 1_000);
  syncMemory.unref();

  const listener: OnePortListener = await listenOnePort({
    host: o.host,
    port: o.port,
    handler,
    connectionTrust,
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
        clearInterval(syncMemory);
        health.shutdown();
        await listener.close({ graceMs: o.shutdownGraceMs });
        shutdown.abort(new ConnectError("server is shutting down", Code.Unavailable));
      })();
      return closing;
    },
  };
}

/**
 * Half of the heap V8 may grow to: with the image's flags (192 MB old space) that is about 120 MB,
 * room for one 16 MiB batch of the worst shape and many ordinary calls beside it.
 */
export function defaultRequestMemoryBytes(): number {
  return Math.floor(getHeapStatistics().heap_size_limit / 2);
}
