import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { IDENTIFIER, IDENTIFIER_RULE, tenantIdProblem } from "../events/field-rules.js";
import type { FieldViolation } from "../events/validate.js";
import {
  type RevokePortalSessionsRequest,
  type RevokePortalSessionsResponse,
  RevokePortalSessionsResponseSchema,
} from "../gen/jobhooks/v1/webhooks_pb.js";
import type { Logger } from "../log/logger.js";
import type { AuditTrail } from "../nats/audit-trail.js";
import type { PortalLinks } from "../svix/portal.js";
import { actorOf } from "./admin-call.js";
import type { Principal } from "./auth.js";
import { callerName } from "./caller-tenant.js";
import { badRequest, unavailable } from "./rpc-errors.js";
import { svixCallError } from "./svix-call-errors.js";

/** Svix takes up to 1000; a handful is what a revocation names. */
export const MAX_REVOKED_SESSION_IDS = 50;

/**
 * RevokePortalSessions: the platform ends a customer's portal sessions (a user left the customer's
 * company, a laptop was lost). Service tokens only: a customer key that leaked must not be able to
 * lock its tenant's admins out, nor anyone else's.
 */
export async function revokePortalSessions(
  req: RevokePortalSessionsRequest,
  caller: Principal,
  o: { portal: PortalLinks | undefined; log: Logger; audit?: AuditTrail | undefined },
): Promise<RevokePortalSessionsResponse> {
  // Only service tokens reach here: rpc-policy.ts refuses a customer key before its body is read.
  const violations: FieldViolation[] = [];
  const tenantProblem = tenantIdProblem(req.tenantId);
  if (tenantProblem) violations.push({ field: "tenant_id", description: tenantProblem });
  if (req.sessionIds.length > MAX_REVOKED_SESSION_IDS) {
    violations.push({ field: "session_ids", description: `at most ${MAX_REVOKED_SESSION_IDS} per call` });
  }
  req.sessionIds.forEach((id, i) => {
    if (!IDENTIFIER.test(id)) {
      violations.push({ field: `session_ids[${i}]`, description: IDENTIFIER_RULE });
    }
  });
  if (violations.length > 0) throw badRequest(Code.InvalidArgument, violations);
  if (!o.portal) throw unavailable("the webhook portal is not configured on this server", 60_000);

  const outcome = await o.portal.revokePortalSessions(req.tenantId, req.sessionIds);
  const logFields = {
    tenant: req.tenantId,
    caller: callerName(caller),
    sessions: req.sessionIds.length || "all",
  };
  if (outcome.kind === "transient" || outcome.kind === "failed") {
    throw svixCallError(outcome, {
      log: o.log,
      fields: logFields,
      event: "portal revocation failed",
      unavailable: "the webhook portal is unavailable; retry shortly",
      refused: "could not revoke the portal sessions",
    });
  }
  o.log.info(logFields, "portal sessions revoked");
  await o.audit?.record({
    act: "portal_sessions.revoked",
    tenant: req.tenantId,
    by: actorOf(caller),
    details: { session_ids: req.sessionIds.length > 0 ? req.sessionIds : "all" },
  });
  return create(RevokePortalSessionsResponseSchema, {});
}
