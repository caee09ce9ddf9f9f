import { createHash } from "node:crypto";
import { AppPortalCapability, type Svix } from "svix";
import { callFailure, type SvixCallFailure, type TimedCall, untimed } from "./call-failure.js";
import { classifySvixError } from "./classify.js";

/**
 * Portal links: the tenant's Svix application (uid = tenant id), created on first use, and a
 * single-use app-portal login link for it.
 */

/** What a portal session may do (GetPortalLinkRequest.role). */
export type PortalRole = "viewer" | "editor" | "admin";

/**
 * Roles as Svix app-portal capabilities. Editors manage endpoints (URL, headers, event-type filters)
 * and send test events, but never see or rotate signing secrets; only admins do.
 */
export const PORTAL_ROLE_CAPABILITIES: Record<PortalRole, readonly AppPortalCapability[]> = {
  viewer: [AppPortalCapability.ViewBase],
  editor: [
    AppPortalCapability.ViewBase,
    AppPortalCapability.ManageEndpoint,
    AppPortalCapability.CreateAttempts,
  ],
  admin: [
    AppPortalCapability.ViewBase,
    AppPortalCapability.ManageEndpoint,
    AppPortalCapability.CreateAttempts,
    AppPortalCapability.ViewEndpointSecret,
    AppPortalCapability.ManageEndpointSecret,
  ],
};

export interface PortalLinkOptions {
  /** 3600 – 604800, as Svix accepts. */
  expirySeconds: number;
  role: PortalRole;
  sessionId?: string | undefined;
}

export type RevokeOutcome = { kind: "revoked" } | SvixCallFailure;

export type PortalLinkOutcome = { kind: "created"; url: string; appId: string } | SvixCallFailure;

export interface PortalLinks {
  /** The tenant's Svix application id; concurrent first calls share one getOrCreate. */
  ensureApp(tenantId: string): Promise<string>;
  portalLinkFor(tenantId: string, options: PortalLinkOptions): Promise<PortalLinkOutcome>;
  /**
   * Ends the tenant's portal sessions now (Svix's expire-all): all of them, or only those opened
   * with these session ids. A tenant without an application has none: that is revoked too.
   */
  revokePortalSessions(tenantId: string, sessionIds: readonly string[]): Promise<RevokeOutcome>;
}

export interface PortalLinksOptions {
  sdk: Svix;
  /** Wraps each Svix call (the gateway's timing metrics). */
  timed?: TimedCall;
  /** Application ids remembered; oldest forgotten first. */
  maxKnownApps?: number;
}

const SVIX_SESSION_ID_MAX = 64;

/**
 * Our contract allows session ids up to 128 characters; Svix takes 64. A longer one is sent as a
 * digest, the same for the same id, so Svix can still expire exactly that session's tokens.
 */
export function svixSessionId(sessionId: string): string {
  if (sessionId.length <= SVIX_SESSION_ID_MAX) return sessionId;
  return `h_${createHash("sha256").update(sessionId, "utf8").digest("base64url")}`;
}

export function createPortalLinks(o: PortalLinksOptions): PortalLinks {
  const timed = o.timed ?? untimed;
  const maxKnown = o.maxKnownApps ?? 100_000;
  const appIds = new Map<string, string>();
  const creating = new Map<string, Promise<string>>();

  async function getOrCreate(tenantId: string): Promise<string> {
    const app = { uid: tenantId, name: tenantId };
    try {
      return (await timed(() => o.sdk.application.getOrCreate(app))).id;
    } catch (err) {
      // Another replica created it between Svix's lookup and its insert: now it exists.
      if (classifySvixError(err).kind !== "conflict") throw err;
      return (await timed(() => o.sdk.application.getOrCreate(app))).id;
    }
  }

  function ensureApp(tenantId: string): Promise<string> {
    const known = appIds.get(tenantId);
    if (known) return Promise.resolve(known);
    let pending = creating.get(tenantId);
    if (!pending) {
      pending = getOrCreate(tenantId)
        .then((id) => {
          appIds.set(tenantId, id);
          while (appIds.size > maxKnown) appIds.delete(appIds.keys().next().value as string);
          return id;
        })
        .finally(() => creating.delete(tenantId));
      creating.set(tenantId, pending);
    }
    return pending;
  }

  async function portalAccess(tenantId: string, options: PortalLinkOptions): Promise<string> {
    const out = await timed(() =>
      o.sdk.authentication.appPortalAccess(tenantId, {
        expiry: options.expirySeconds,
        // readOnly is deprecated in Svix's API; capabilities say what the session may do.
        capabilities: [...PORTAL_ROLE_CAPABILITIES[options.role]],
        ...(options.sessionId ? { sessionId: svixSessionId(options.sessionId) } : {}),
      }),
    );
    return out.url;
  }

  return {
    ensureApp,
    async revokePortalSessions(tenantId, sessionIds) {
      try {
        await timed(() =>
          o.sdk.authentication.expireAll(tenantId, {
            // 0: the tokens stop working now, not after Svix's default grace period.
            expiry: 0,
            ...(sessionIds.length > 0 ? { sessionIds: sessionIds.map(svixSessionId) } : {}),
          }),
        );
        return { kind: "revoked" };
      } catch (err) {
        const failure = classifySvixError(err);
        if (failure.kind === "app_missing") return { kind: "revoked" };
        return callFailure(failure);
      }
    },
    async portalLinkFor(tenantId, options) {
      try {
        const appId = await ensureApp(tenantId);
        try {
          return { kind: "created", url: await portalAccess(tenantId, options), appId };
        } catch (err) {
          if (classifySvixError(err).kind !== "app_missing") throw err;
          // Deleted in Svix since we cached its id: create it again, once.
          appIds.delete(tenantId);
          const recreated = await ensureApp(tenantId);
          return { kind: "created", url: await portalAccess(tenantId, options), appId: recreated };
        }
      } catch (err) {
        return callFailure(classifySvixError(err));
      }
    },
  };
}
