import * as http2 from "node:http2";
import { duplexPair, Writable } from "node:stream";
import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { JetStreamManager } from "@nats-io/jetstream";
import { Registry } from "prom-client";
import { apiKeyDigest, generateApiKey } from "../../src/credentials/api-key.js";
import { natsMsgId } from "../../src/events/event-id.js";
import { type JobEvent, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { createLogger } from "../../src/log/logger.js";
import type { ApiKeyRecord } from "../../src/nats/api-key-store.js";
import {
  type JobEventPublisher,
  PublishTooLargeError,
  PublishUnavailableError,
  type StoredEvent,
} from "../../src/nats/publish-job-event.js";
import { startApiKeyVerifier } from "../../src/server/api-key-verifier.js";
import { createAuthenticator, serviceTokenVerifier } from "../../src/server/auth.js";
import { createFailedAuthLimiter, type FailedAuthLimiterOptions } from "../../src/server/auth-failures.js";
import { grpcFraming } from "../../src/server/grpc-framing.js";
import { createHealth } from "../../src/server/health.js";
import { createJobDeliveries } from "../../src/server/list-job-deliveries.js";
import { createMemoryBudget } from "../../src/server/memory-budget.js";
import { createServerMetrics } from "../../src/server/metrics.js";
import { createRateLimiter, type RateLimiterOptions } from "../../src/server/rate-limit.js";
import { rpcEdge } from "../../src/server/rpc-edge.js";
import { createRpcRoutes, rpcRecorder } from "../../src/server/rpc-routes.js";
import { createWebhookService } from "../../src/server/webhook-service.js";
import type {
  PortalLinkOptions,
  PortalLinkOutcome,
  PortalLinks,
  RevokeOutcome,
} from "../../src/svix/portal.js";

/**
 * The WebhookService as the server assembles it (src/server/rpc-routes.ts: request gate,
 * interceptors, decoding options) behind an in-memory Connect transport: the real validators, the
 * real authenticator with a service token and customer API keys (the real key verifier over an
 * in-memory key store), the real rate limiters and request checks. Only what sits behind NATS and
 * Svix is faked. No socket, no nats-server: a call takes well under a millisecond.
 */

export const SERVICE_TOKEN = "svc_in_memory_token_0123456789abcdef";
export const service = { authorization: `Bearer ${SERVICE_TOKEN}` };
export const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** What the fake event store does with the next publishes. */
export type PublisherMode =
  /** Stores, answering duplicate for a tenant's repeated event id as JetStream's de-duplication does. */
  | "store"
  /** NATS not reachable within the budget: the real publisher's PublishUnavailableError. */
  | "unavailable"
  /** The JOBS stream is full (discard new). */
  | "full"
  /** JetStream's own message size limit refused it. */
  | "too_large"
  /** An error nobody classified. */
  | "broken"
  /** Never answers: only the RPC deadline ends the call. */
  | "hang";

export interface FakePublisher extends JobEventPublisher {
  mode: PublisherMode;
  /** Every event stored, with its body as JSON, in order. */
  readonly stored: Array<{ event: JobEvent; json: unknown; sequence: bigint }>;
  /** The budget each publish was given. */
  readonly budgets: number[];
}

export function fakePublisher(): FakePublisher {
  const bySubjectId = new Map<string, bigint>();
  const decoder = new TextDecoder();
  const publisher: FakePublisher = {
    mode: "store",
    stored: [],
    budgets: [],
    async publish(event, body, { budgetMs }): Promise<StoredEvent> {
      publisher.budgets.push(budgetMs);
      switch (publisher.mode) {
        case "unavailable":
          throw new PublishUnavailableError("NATS JetStream did not store the event in time; retry", 1_000);
        case "full":
          throw new PublishUnavailableError("the JOBS stream is full; retry", 5_000);
        case "too_large":
          throw new PublishTooLargeError("event exceeds the stream's size limit");
        case "broken":
          throw new Error("nats: something nobody expected");
        case "hang":
          return new Promise<never>(() => undefined);
      }
      const id = natsMsgId(event.tenantId, event.eventId);
      const seen = bySubjectId.get(id);
      if (seen !== undefined) return { streamSequence: seen, duplicate: true };
      const sequence = BigInt(publisher.stored.length + 1);
      bySubjectId.set(id, sequence);
      publisher.stored.push({ event, json: JSON.parse(decoder.decode(body)), sequence });
      return { streamSequence: sequence, duplicate: false };
    },
  };
  return publisher;
}

export interface FakePortal extends PortalLinks {
  readonly links: Array<{ tenantId: string; options: PortalLinkOptions }>;
  readonly revocations: Array<{ tenantId: string; sessionIds: readonly string[] }>;
  /** Svix's answer to the next portal links; a created link by default. */
  answer: PortalLinkOutcome | undefined;
  revokeAnswer: RevokeOutcome;
}

export function fakePortal(): FakePortal {
  const portal: FakePortal = {
    links: [],
    revocations: [],
    answer: undefined,
    revokeAnswer: { kind: "revoked" },
    async ensureApp(tenantId) {
      return `app_${tenantId}`;
    },
    async portalLinkFor(tenantId, options) {
      portal.links.push({ tenantId, options });
      return (
        portal.answer ?? {
          kind: "created",
          url: `https://portal.test/login/${tenantId}/${portal.links.length}`,
          appId: `app_${tenantId}`,
        }
      );
    },
    async revokePortalSessions(tenantId, sessionIds) {
      portal.revocations.push({ tenantId, sessionIds });
      return portal.revokeAnswer;
    },
  };
  return portal;
}

export interface InMemoryServiceOptions {
  maxPayloadBytes?: number;
  publishTimeoutMs?: number;
  rpcDeadlineMs?: number;
  /** False: no Svix configured (GetPortalLink and RevokePortalSessions answer UNAVAILABLE). */
  portal?: boolean;
  portalRate?: RateLimiterOptions;
  deliveriesRate?: RateLimiterOptions;
  authFailures?: FailedAuthLimiterOptions;
}

export interface InMemoryService {
  client: Client<typeof WebhookService>;
  publisher: FakePublisher;
  portal: FakePortal;
  /** A fresh customer API key for the tenant, known to the key verifier. */
  keyFor(tenantId: string): { key: string; keyId: string };
  /** The in-memory transport, for a client of another service on the same routes (health). */
  transport: Transport;
  /** Everything the service logged, as text. */
  logText(): string;
  registry: Registry;
}

export async function startInMemoryService(o: InMemoryServiceOptions = {}): Promise<InMemoryService> {
  const lines: string[] = [];
  const log = createLogger(
    "debug",
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    }),
  );
  const keys = new Map<string, ApiKeyRecord>();
  const keyVerifier = await startApiKeyVerifier({
    store: {
      async findByDigest(digest) {
        const record = keys.get(digest);
        return record ? { digest, record } : undefined;
      },
      async watchChanges() {
        return () => undefined;
      },
    },
    log,
  });
  const publisher = fakePublisher();
  const portal = fakePortal();
  const registry = new Registry();
  const metrics = createServerMetrics(registry);
  const rate = (r: RateLimiterOptions | undefined) => createRateLimiter(r ?? { perMinute: 600, burst: 100 });
  const deliveries = createJobDeliveries({
    // Without Svix every call is settled before NATS would be asked (UNAVAILABLE at the latest):
    // what these tests cover is who may ask, about what, how often.
    jsm: new Proxy({} as JetStreamManager, {
      get() {
        throw new Error("the in-memory service has no NATS");
      },
    }),
    subjectPrefix: "jobs",
    maxPayloadBytes: o.maxPayloadBytes ?? 262_144,
    svix: undefined,
    svixAvailable: () => true,
    rate: rate(o.deliveriesRate),
    log,
  });
  const webhooks = createWebhookService({
    publisher,
    portal: o.portal === false ? undefined : portal,
    portalRate: rate(o.portalRate),
    maxPayloadBytes: o.maxPayloadBytes ?? 262_144,
    publishTimeoutMs: o.publishTimeoutMs ?? 5_000,
    metrics,
    log,
    deliveries,
  });
  const authenticate = createAuthenticator(
    [serviceTokenVerifier([SERVICE_TOKEN]), keyVerifier.verify],
    createFailedAuthLimiter(o.authFailures),
    log,
  );
  const rpc = createRpcRoutes({
    service: webhooks.impl,
    health: createHealth(),
    authenticate,
    rules: { rpcDeadlineMs: o.rpcDeadlineMs ?? 30_000, record: rpcRecorder(metrics) },
  });
  // The real edge and gRPC framing (what the port runs), over an HTTP/2 session on an in-memory
  // stream pair: no socket, but the same bytes on the wire, so the fast framing is what these
  // tests exercise for PublishJobEvent, and Connect's gRPC handler for everything else.
  const rules = { rpcDeadlineMs: o.rpcDeadlineMs ?? 30_000, record: rpcRecorder(metrics) };
  const edge = rpcEdge({
    routes: rpc.routes,
    routerOptions: rpc.options,
    fallback: (_req, res) => {
      (res as http2.Http2ServerResponse).writeHead(404).end();
    },
    authenticate,
    clientAddress: () => "in-memory",
    budget: createMemoryBudget(512 * 1024 * 1024),
    bodyDeadlineMs: rules.rpcDeadlineMs,
    record: rules.record,
    fast: [grpcFraming({ publish: webhooks.publishJobEvent, rules, enabled: () => true })],
  });
  const h2 = http2.createServer(edge);
  const transport = createGrpcTransport({
    baseUrl: "http://in-memory",
    nodeOptions: {
      createConnection: () => {
        const [client, server] = duplexPair();
        h2.emit("connection", server);
        return client;
      },
    },
  });
  return {
    client: createClient(WebhookService, transport),
    transport,
    publisher,
    portal,
    registry,
    logText: () => lines.join(""),
    keyFor(tenantId) {
      const { key, id } = generateApiKey();
      keys.set(apiKeyDigest(key), { id, tenantId, createdAt: new Date(0).toISOString() });
      return { key, keyId: id };
    },
  };
}
