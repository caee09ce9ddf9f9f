import { createHash } from "node:crypto";
import { Svix } from "svix";
import type { EventTypeDefinition, SvixMessage } from "../events/webhook-payload.js";
import type { Logger } from "../log/logger.js";
import { BoundedMap } from "../resilience/bounded-map.js";
import { classifySvixError, type SvixFailure } from "./classify.js";

import { createSvixDeliveries, jobTag, type SvixDeliveries } from "./deliveries.js";
import { keepAliveFetch } from "./keep-alive-fetch.js";
import { createPortalLinks, type PortalLinks } from "./portal.js";

export interface SvixGatewayOptions {
  token: string;
  /** A self-hosted Svix or the stand-in; default: the region in the token. */
  serverUrl?: string | undefined;
  /** Per-request time limit; the relay's ack_wait is well above it. */
  requestTimeoutMs?: number;
  /** Observes each request: its duration and outcome class ("2xx", "4xx", "5xx", "error"). */
  onRequest?: (seconds: number, statusClass: string) => void;
  /** Connections kept open to Svix; at least the relay's concurrency. */
  maxSockets?: number;
  log: Logger;
}

export type MessageOutcome =
  | { kind: "created" }
  | Exclude<SvixFailure, { kind: "app_missing" } | { kind: "conflict" }>;

/** Also opens portals (PortalLinks): one SDK client, one set of request metrics, for both callers. */
export interface SvixGateway extends PortalLinks, SvixDeliveries {
  /**
   * Creates the tenant's message with an idempotency key made of tenant and event id, so a retry
   * after a lost answer creates nothing new, and eventId = event id, so a later duplicate answers
   * 409. A 409 counts as `already_sent` only once Svix shows a message with this eventId in the
   * tenant's application; any other conflict is transient. The tenant's application (uid = tenant
   * id) is created inline when missing.
   */
  createMessage(tenantId: string, message: SvixMessage): Promise<MessageOutcome>;
  /** Registers the event types (idempotent), so the portal lists them and "send example" works. */
  upsertEventTypes(definitions: EventTypeDefinition[]): Promise<void>;
  readonly sdk: Svix;
}

/** Tenants whose application is known to exist; bounded, oldest forgotten first. */
const KNOWN_APPS_MAX = 100_000;

export function createSvixGateway(o: SvixGatewayOptions): SvixGateway {
  // The relay owns retries (backoff, Retry-After, circuit): the SDK must not retry on its own,
  // and must never invent a random idempotency key.
  const sdk = new Svix(o.token, {
    ...(o.serverUrl ? { serverUrl: o.serverUrl } : {}),
    // The time limit is our fetch's (see keepAliveFetch): same effect, a fraction of the cost.
    retryScheduleInMs: [],
    fetch: keepAliveFetch({ maxSockets: o.maxSockets ?? 128, timeoutMs: o.requestTimeoutMs ?? 10_000 }),
  });
  const knownApps = new BoundedMap<string, true>(KNOWN_APPS_MAX);
  const remember = (tenantId: string) => knownApps.set(tenantId, true);

  async function timed<T>(call: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const out = await call();
      o.onRequest?.((performance.now() - started) / 1_000, "2xx");
      return out;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      o.onRequest?.(
        (performance.now() - started) / 1_000,
        typeof code === "number" ? `${Math.floor(code / 100)}xx` : "error",
      );
      throw err;
    }
  }

  async function send(
    tenantId: string,
    message: SvixMessage,
    inlineApp: boolean,
  ): Promise<Exclude<SvixFailure, { kind: "conflict" }> | "created"> {
    try {
      await timed(() =>
        sdk.message.create(
          tenantId,
          {
            eventType: message.eventType,
            eventId: message.eventId,
            payload: message.payload as unknown as Record<string, unknown>,
            // ListJobDeliveries finds a job's messages by this tag when their event ids are the
            // publisher's own (not derivable from the job id).
            tags: [jobTag(message.payload.data.job_id)],
            ...(inlineApp ? { application: { uid: tenantId, name: tenantId } } : {}),
          },
          { idempotencyKey: svixIdempotencyKey(tenantId, message.eventId) },
        ),
      );
      return "created";
    } catch (err) {
      const failure = classifySvixError(err);
      return failure.kind === "conflict" ? confirmDuplicate(tenantId, message.eventId, failure) : failure;
    }
  }

  /**
   * Svix answers 409 for any unique-key clash with one generic body (svix-server's
   * `{"code":"conflict","detail":"A conflict has occurred"}`): a duplicate eventId, but also an
   * inline application another replica is creating at the same moment. Only the first means the
   * event was delivered, so ask Svix whether the eventId exists before acking anything. Anything
   * else is a state of Svix that changes (the application now exists, a request in flight ends):
   * transient, retried with backoff, and dead-lettered by the relay's attempt bound if it never
   * clears.
   */
  async function confirmDuplicate(
    tenantId: string,
    eventId: string,
    conflict: Extract<SvixFailure, { kind: "conflict" }>,
  ): Promise<Exclude<SvixFailure, { kind: "conflict" }>> {
    const notDelivered = `${conflict.reason}, and Svix holds no message with this eventId`;
    try {
      const existing = await timed(() => sdk.message.get(tenantId, eventId, { withContent: false }));
      if (existing.eventId === eventId) return { kind: "already_sent" };
      return { kind: "transient", status: 409, reason: notDelivered };
    } catch (err) {
      const failure = classifySvixError(err);
      // 404: neither the message nor (perhaps) the application exists yet.
      if (failure.kind === "app_missing") return { kind: "transient", status: 409, reason: notDelivered };
      if (failure.kind === "transient") {
        return { ...failure, reason: `${conflict.reason}; looking up the eventId: ${failure.reason}` };
      }
      return { kind: "transient", status: 409, reason: conflict.reason };
    }
  }

  return {
    sdk,
    ...createPortalLinks({ sdk, timed }),
    ...createSvixDeliveries({ sdk, timed }),
    async createMessage(tenantId, message) {
      let outcome = await send(tenantId, message, !knownApps.has(tenantId));
      if (typeof outcome !== "string" && outcome.kind === "app_missing") {
        // The application was deleted since we last saw it: create it inline, once.
        knownApps.delete(tenantId);
        outcome = await send(tenantId, message, true);
      }
      if (outcome === "created" || outcome.kind === "already_sent") remember(tenantId);
      if (outcome === "created") return { kind: "created" };
      if (outcome.kind === "app_missing") {
        return { kind: "transient", status: 404, reason: "application still missing after inline create" };
      }
      return outcome;
    },

    async upsertEventTypes(definitions) {
      for (const d of definitions) {
        await timed(() =>
          sdk.eventType.upsert(d.name, {
            description: d.description,
            schemas: { "1": { ...d.schema, examples: [d.example] } },
          }),
        );
      }
      o.log.info({ count: definitions.length }, "svix event types registered");
    },
  };
}

/** Svix's limit is undocumented; keys stay short enough for any header or cache key. */
const IDEMPOTENCY_KEY_MAX = 128;

/**
 * The idempotency key for one event of one tenant, scoped as Nats-Msg-Id is: event ids are unique
 * only within a tenant, and Svix may scope keys by organisation rather than by application, so
 * two tenants' `job_1.completed` must not share one. The `jh.` prefix keeps it clear of `auto_`,
 * which Svix reserves for keys its SDKs invent (a tenant may be called `auto_x`); a key that would
 * be too long is a digest of the same text, still the same for the same event.
 */
export function svixIdempotencyKey(tenantId: string, eventId: string): string {
  const key = `jh.${tenantId}.${eventId}`;
  if (key.length <= IDEMPOTENCY_KEY_MAX) return key;
  return `jh.sha256.${createHash("sha256").update(`${tenantId}.${eventId}`, "utf8").digest("base64url")}`;
}
