import { randomBase62 } from "./ids.js";

/**
 * App-portal grants. A grant has two secrets: a login code, carried in the link and good for one
 * open (a forwarded or replayed link must not log a second person in), and a session token, which
 * the opened page keeps in a cookie and which also works as a Bearer token for that app's API.
 */

export interface PortalGrant {
  appId: string;
  expiresAt: number;
  readOnly: boolean;
  capabilities: string[];
  featureFlags: string[];
  sessionId: string | null;
}

export interface PortalSession extends PortalGrant {
  token: string;
}

export type LoginOutcome =
  | { kind: "session"; session: PortalSession }
  | { kind: "refused"; reason: "unknown" | "used" | "expired" };

const MAX_GRANTS = 10_000;

export class PortalSessions {
  private readonly byCode = new Map<string, { session: PortalSession; used: boolean }>();
  private readonly byToken = new Map<string, PortalSession>();

  grant(grant: PortalGrant): { loginCode: string; token: string } {
    const session = { ...grant, token: `appsk_${randomBase62(32)}` };
    const loginCode = randomBase62(32);
    this.byCode.set(loginCode, { session, used: false });
    this.byToken.set(session.token, session);
    // Bounded like everything else in the stand-in: the oldest grants go first.
    while (this.byCode.size > MAX_GRANTS) this.byCode.delete(this.byCode.keys().next().value as string);
    while (this.byToken.size > MAX_GRANTS) this.byToken.delete(this.byToken.keys().next().value as string);
    return { loginCode, token: session.token };
  }

  login(code: string, now: number): LoginOutcome {
    const entry = this.byCode.get(code);
    if (!entry) return { kind: "refused", reason: "unknown" };
    if (entry.used) return { kind: "refused", reason: "used" };
    if (entry.session.expiresAt <= now) return { kind: "refused", reason: "expired" };
    entry.used = true;
    return { kind: "session", session: entry.session };
  }

  /**
   * Svix's expire-all: the app's sessions (or only those granted with one of `sessionIds`) stop
   * working at `at`. Unused login links of those sessions die with them: they would open one.
   * Returns how many sessions were cut short.
   */
  expireAll(appId: string, sessionIds: readonly string[] | undefined, at: number): number {
    let expired = 0;
    for (const session of this.byToken.values()) {
      if (session.appId !== appId) continue;
      if (sessionIds && sessionIds.length > 0 && !sessionIds.includes(session.sessionId ?? "")) continue;
      if (session.expiresAt > at) {
        session.expiresAt = at;
        expired++;
      }
    }
    return expired;
  }

  /** A live session for a token (cookie or Bearer); expired ones are forgotten. */
  session(token: string, now: number): PortalSession | undefined {
    const session = this.byToken.get(token);
    if (session && session.expiresAt <= now) {
      this.byToken.delete(token);
      return undefined;
    }
    return session;
  }
}
