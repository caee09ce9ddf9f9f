import { Svix } from "svix";
import type { EventTypeDefinition, SvixMessage } from "../events/webhook-payload.js";
import type { Logger } from "../log/logger.js";
import { classifySvixError, type SvixFailure } from "./classify.js";
import { createSvixDeliveries, type SvixDeliveries } from "./deliveries.js";
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

export type MessageOutcome = { kind: "created" } | Exclude<SvixFailure, { kind: "app_missing" }>;

/** Also opens portals (PortalLinks): one SDK client, one set of request metrics, for both callers. */
export interface SvixGateway extends PortalLinks, SvixDeliveries {
  /**
   * Creates the tenant's message with idempotency key = event id, so a retry after a lost answer
   * creates nothing new, and eventId = event id, so a later duplicate answers 409 (already sent).
   * The tenant's application (uid = tenant id) is created inline when missing.
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
    requestTimeout: o.requestTimeoutMs ?? 10_000,
    retryScheduleInMs: [],
    fetch: keepAliveFetch({ maxSockets: o.maxSockets ?? 128 }),
  });
  const knownApps = new Set<string>();
  const remember = (tenantId: string) => {
    if (knownApps.size >= KNOWN_APPS_MAX) {
      const oldest = knownApps.values().next().value;
      if (oldest !== undefined) knownApps.delete(oldest);
    }
    knownApps.add(tenantId);
  };

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
  ): Promise<SvixFailure | "created"> {
    try {
      await timed(() =>
        sdk.message.create(
          tenantId,
          {
            eventType: message.eventType,
            eventId: message.eventId,
            payload: message.payload as unknown as Record<string, unknown>,
            ...(inlineApp ? { application: { uid: tenantId, name: tenantId } } : {}),
          },
          { idempotencyKey: message.eventId },
        ),
      );
      return "created";
    } catch (err) {
      return classifySvixError(err);
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
