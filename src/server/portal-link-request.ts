import { IDENTIFIER, IDENTIFIER_RULE } from "../events/field-rules.js";
import type { FieldViolation } from "../events/validate.js";
import { type GetPortalLinkRequest, PortalRole } from "../gen/jobhooks/v1/webhooks_pb.js";
import type { PortalRole as Role } from "../svix/portal.js";
import type { Principal } from "./auth.js";
import { callerTenant } from "./caller-tenant.js";

/**
 * GetPortalLink's request checked against its caller (pure): which tenant, for how long, which
 * role. Every violation is reported at once, like PublishJobEvent's.
 */

export const PORTAL_EXPIRY = { minSeconds: 3_600, maxSeconds: 7 * 86_400, defaultSeconds: 86_400 } as const;

export interface PortalLinkParams {
  tenantId: string;
  /** Whole seconds, within PORTAL_EXPIRY. */
  expirySeconds: number;
  role: Role;
  sessionId: string | undefined;
}

export type PortalLinkRequestCheck =
  | { kind: "ok"; params: PortalLinkParams }
  | { kind: "denied"; reason: string }
  | { kind: "invalid"; violations: FieldViolation[] };

export function checkPortalLinkRequest(req: GetPortalLinkRequest, caller: Principal): PortalLinkRequestCheck {
  const tenant = callerTenant(req.tenantId, caller);
  if (tenant.kind === "denied") {
    return { kind: "denied", reason: "this API key may open only its own tenant's portal" };
  }
  const { tenantId } = tenant;
  const violations: FieldViolation[] = [...tenant.violations];

  let expirySeconds: number = PORTAL_EXPIRY.defaultSeconds;
  if (req.expiry) {
    const { seconds, nanos } = req.expiry;
    const total = Number(seconds) + nanos / 1e9;
    if (!(total >= PORTAL_EXPIRY.minSeconds && total <= PORTAL_EXPIRY.maxSeconds) || nanos < 0) {
      violations.push({
        field: "expiry",
        description: "must be between 1 hour (3600s) and 7 days (604800s)",
      });
    } else {
      // Svix counts whole seconds; rounding down keeps a 7-day request within its limit.
      expirySeconds = Math.floor(total);
    }
  }

  if (req.sessionId !== "" && !IDENTIFIER.test(req.sessionId)) {
    violations.push({ field: "session_id", description: IDENTIFIER_RULE });
  }

  const role = roleOf(req);
  if (role === undefined) {
    violations.push({
      field: req.readOnly ? "read_only" : "role",
      description: req.readOnly
        ? "read_only means the viewer role: leave role unset or PORTAL_ROLE_VIEWER"
        : "must be PORTAL_ROLE_VIEWER, PORTAL_ROLE_EDITOR or PORTAL_ROLE_ADMIN",
    });
  }

  if (violations.length > 0 || role === undefined) return { kind: "invalid", violations };
  return {
    kind: "ok",
    params: {
      tenantId,
      expirySeconds,
      role,
      sessionId: req.sessionId === "" ? undefined : req.sessionId,
    },
  };
}

/**
 * The role asked for. `read_only` predates roles and keeps meaning viewer; with neither set a link
 * opens the full portal, as it did before roles existed. Undefined: a contradiction or unknown value.
 */
function roleOf(req: GetPortalLinkRequest): Role | undefined {
  switch (req.role) {
    case PortalRole.UNSPECIFIED:
      return req.readOnly ? "viewer" : "admin";
    case PortalRole.VIEWER:
      return "viewer";
    case PortalRole.EDITOR:
      return req.readOnly ? undefined : "editor";
    case PortalRole.ADMIN:
      return req.readOnly ? undefined : "admin";
    default:
      return undefined;
  }
}
