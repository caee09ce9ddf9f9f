import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type StandInStats, statsOf } from "./admin-api.js";
import { applicationRoutes } from "./api-applications.js";
import { attemptRoutes } from "./api-attempts.js";
import { endpointRoutes } from "./api-endpoints.js";
import { eventTypeRoutes } from "./api-event-types.js";
import { messageRoutes } from "./api-messages.js";
import { portalAccessRoutes } from "./api-portal-access.js";
import { sendExampleRoutes } from "./api-send-example.js";
import type { StandInContext } from "./context.js";
import { ATTEMPT_TIMEOUT_MS, DeliveryWorker } from "./delivery.js";
import { FaultInjector, type FaultRule, type FaultRuleInput } from "./faults.js";
import { createRequestListener } from "./http-server.js";
import { randomBase62 } from "./ids.js";
import { type OperationalWebhookTarget, operationalWebhookSender } from "./operational-webhooks.js";
import { PortalSessions } from "./portal-sessions.js";
import { RequestLog, type RequestLogEntry } from "./request-log.js";
import { Router } from "./router.js";
import {
  type AppRecord,
  type AttemptRecord,
  type EndpointRecord,
  type EventTypeRecord,
  type MessageRecord,
  StandInStore,
} from "./store.js";

/**
 * A Svix-compatible HTTP server the project owns, for tests, benchmarks and the local stack: the part
 * of Svix's API jobhooks and its users touch (as openapi.json describes it), real Standard Webhooks
 * deliveries with Svix's retry schedule, and fault injection. Nothing here talks to the internet.
 */

export type { StandInStats } from "./admin-api.js";
export { SVIX_RETRY_SCHEDULE_SECONDS } from "./delivery.js";
export type { FaultKind, FaultRule, FaultRuleInput } from "./faults.js";
export { FaultRuleError } from "./faults.js";
export type { OperationalEventType, OperationalWebhookTarget } from "./operational-webhooks.js";
export type { RequestLogEntry } from "./request-log.js";
export { signatureHeaders, signWebhook } from "./signing.js";
export type { AppRecord, AttemptRecord, EndpointRecord, EventTypeRecord, MessageRecord } from "./store.js";

export interface SvixStandInOptions {
  /** Interface to listen on; default "127.0.0.1". */
  host?: string;
  /** Port; default 0 (a random free port). */
  port?: number;
  /**
   * The API token accepted as `Authorization: Bearer …`, on the Svix API and on the admin routes
   * (`/_stand-in/*`: faults, stats, the request log); default a fresh `testsk_…`.
   */
  token?: string;
  /**
   * Multiplies Svix's long waits: the retry schedule (0 s, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h),
   * portal link expiry and the secret-rotation grace period. Default 1; tests use e.g. 0.001. The 12 h
   * idempotency window is not scaled: it guards correctness, nobody waits for it.
   */
  timeScale?: number;
  /** Deliver messages to endpoints; default true. Benchmarks of the API turn it off. */
  deliver?: boolean;
  /** Applications held at most (creating more answers 400 limit_reached); default 10,000. */
  maxApplications?: number;
  /** Endpoints per application at most; default 50. */
  maxEndpointsPerApp?: number;
  /** Messages kept (oldest evicted first, with their eventId for the 409 check); default 100,000. */
  maxMessages?: number;
  /** Attempt-log records kept (oldest evicted first); default 100,000. */
  maxAttempts?: number;
  /** Base for portal links when clients reach the stand-in by another address (a proxy, a container). */
  publicUrl?: string;
  /** Structured log sink for the stand-in's own events (handler failures, deliveries given up). */
  log?: (obj: Record<string, unknown>, msg: string) => void;
  /** How long an endpoint has to answer; default 15 s, as Svix. */
  attemptTimeoutMs?: number;
  /** Deliveries in flight at once; default 16. */
  deliveryConcurrency?: number;
  /** Recent requests kept for `state.requests()`; default 10,000 (0 turns the log off). */
  requestLogSize?: number;
  /**
   * Where to send Svix's operational webhooks (`endpoint.disabled`, `message.attempt.exhausted`,
   * `…failing`, `…recovered`), signed with `secret`. Default: none are sent.
   */
  operationalWebhook?: OperationalWebhookTarget;
  /**
   * The jobhooks service's URL (`jobhooks dev` knows it): a request for the service that reaches
   * the stand-in instead is answered 404 naming this port.
   */
  jobhooksUrl?: string;
}

/** Fault injection, the same rules as `POST /_stand-in/faults`. */
export interface SvixStandInFaults {
  inject(rule: FaultRuleInput): FaultRule;
  remove(id: string): boolean;
  clear(): void;
  list(): FaultRule[];
}

/** Read access for tests. Records are live: read them, do not change them. */
export interface SvixStandInState {
  apps(): AppRecord[];
  /** Endpoints of one app (id or uid), or of all apps. */
  endpoints(app?: string): EndpointRecord[];
  eventTypes(): EventTypeRecord[];
  /** Stored messages, oldest first, of one app (id or uid) or of all. */
  messages(app?: string): MessageRecord[];
  attempts(filter?: { msgId?: string; endpointId?: string }): AttemptRecord[];
  /** Recent API requests with what was answered, oldest first. */
  requests(): RequestLogEntry[];
  clearRequests(): void;
  stats(): StandInStats;
  /** Deliveries queued, in flight or waiting for a retry. */
  pendingDeliveries(): number;
}

export interface SvixStandIn {
  /** e.g. http://127.0.0.1:PORT — the svix SDK's `serverUrl`. */
  url: string;
  token: string;
  faults: SvixStandInFaults;
  state: SvixStandInState;
  close(): Promise<void>;
}

export async function startSvixStandIn(opts: SvixStandInOptions = {}): Promise<SvixStandIn> {
  const host = opts.host ?? "127.0.0.1";
  const token = opts.token ?? `testsk_${randomBase62(32)}`;
  const timeScale = opts.timeScale ?? 1;
  if (!(timeScale >= 0)) throw new RangeError("timeScale must be a non-negative number");
  const maxMessages = opts.maxMessages ?? 100_000;
  const store = new StandInStore({
    maxApps: opts.maxApplications ?? 10_000,
    maxEndpointsPerApp: opts.maxEndpointsPerApp ?? 50,
    maxMessages,
    maxAttempts: opts.maxAttempts ?? 100_000,
    // Every SDK POST carries a key (the SDK invents `auto_…` ones), so this grows with traffic.
    maxIdempotencyKeys: Math.max(maxMessages, 10_000),
  });
  const operational = opts.operationalWebhook
    ? operationalWebhookSender(opts.operationalWebhook, opts.log)
    : undefined;
  const delivery = new DeliveryWorker(store, {
    ...(operational ? { operational: operational.send } : {}),
    enabled: opts.deliver ?? true,
    timeScale,
    concurrency: opts.deliveryConcurrency ?? 16,
    attemptTimeoutMs: opts.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS,
    log: opts.log,
  });
  let baseUrl = "";
  const ctx: StandInContext = {
    store,
    delivery,
    portal: new PortalSessions(),
    log: new RequestLog(opts.requestLogSize ?? 10_000),
    timeScale,
    publicUrl: () => opts.publicUrl?.replace(/\/+$/, "") ?? baseUrl,
  };
  const faults = new FaultInjector();
  const router = new Router<StandInContext>([
    ...applicationRoutes,
    ...messageRoutes,
    ...portalAccessRoutes,
    ...eventTypeRoutes,
    ...endpointRoutes,
    ...sendExampleRoutes,
    ...attemptRoutes,
  ]);
  const server = createServer(
    { keepAliveTimeout: 65_000 },
    createRequestListener({ ctx, router, faults, token, log: opts.log, jobhooksUrl: opts.jobhooksUrl }),
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;

  const appIdOf = (app?: string) => (app === undefined ? undefined : (store.findApp(app)?.id ?? "none"));
  const state: SvixStandInState = {
    apps: () => [...store.apps.values()],
    endpoints(app) {
      const appId = appIdOf(app);
      return [...store.endpoints.entries()]
        .filter(([id]) => appId === undefined || id === appId)
        .flatMap(([, e]) => [...e.values()]);
    },
    eventTypes: () => [...store.eventTypes.values()],
    messages(app) {
      const appId = appIdOf(app);
      return [...store.messages.values()].filter((m) => appId === undefined || m.appId === appId);
    },
    attempts: (filter = {}) =>
      [...store.attempts.values()].filter(
        (a) =>
          (filter.msgId === undefined || a.msgId === filter.msgId) &&
          (filter.endpointId === undefined || a.endpointId === filter.endpointId),
      ),
    requests: () => ctx.log.entries(),
    clearRequests: () => ctx.log.clear(),
    stats: () => statsOf(ctx),
    pendingDeliveries: () => delivery.pending(),
  };

  return {
    url: baseUrl,
    token,
    faults: {
      inject: (rule) => faults.inject(rule),
      remove: (id) => faults.remove(id),
      clear: () => faults.clear(),
      list: () => faults.list(),
    },
    state,
    async close() {
      await delivery.stop();
      operational?.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
    },
  };
}
