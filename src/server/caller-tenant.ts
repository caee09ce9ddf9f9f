import { tenantIdProblem } from "../events/field-rules.js";
import type { FieldViolation } from "../events/validate.js";
import type { Principal } from "./auth.js";

export type CallerTenant =
  /** A customer key named another tenant. */
  | { kind: "denied" }
  /** The tenant the call is about; `violations` (none or one) say why its id is unusable. */
  | { kind: "resolved"; tenantId: string; violations: FieldViolation[] };

/**
 * The tenant a read or portal call is about, given the `tenant_id` it names. A customer key's is its
 * own: it may name it or leave it empty, and any other name is denied, well-formed or not (whether
 * another tenant exists is none of this caller's business). A service caller must name one.
 */
export function callerTenant(requested: string, caller: Principal): CallerTenant {
  if (caller.kind === "customer" && requested !== "" && requested !== caller.tenantId) {
    return { kind: "denied" };
  }
  const tenantId = caller.kind === "customer" ? caller.tenantId : requested;
  const problem = tenantIdProblem(tenantId);
  if (!problem) return { kind: "resolved", tenantId, violations: [] };
  const description = tenantId === "" ? "is required for service callers" : problem;
  return { kind: "resolved", tenantId, violations: [{ field: "tenant_id", description }] };
}

/**
 * Whose rate-limit bucket a call draws from: a customer key's own, or for a service token one per
 * tenant, so a platform backend acting for many customers is limited per customer, like they are.
 */
export function rateKeyOf(caller: Principal, tenantId: string): string {
  return caller.kind === "customer" ? `key:${caller.keyId}` : `service:${caller.name}:${tenantId}`;
}

/** The caller as logs name it: a key id or a service token's name, never the credential. */
export function callerName(caller: Principal): string {
  return caller.kind === "customer" ? caller.keyId : caller.name;
}
