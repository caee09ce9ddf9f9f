import { Code } from "@connectrpc/connect";
import { tenantIdProblem } from "../events/validate.js";
import type { Principal } from "./auth.js";
import { badRequest } from "./rpc-errors.js";

/** What every administrative RPC shares: who is acting, and the tenant it acts on. */

/** Who acted, as the audit trail names it: never the credential itself. */
export function actorOf(caller: Principal): string {
  return caller.kind === "service" ? `service:${caller.name}` : `key:${caller.keyId}`;
}

/** INVALID_ARGUMENT naming `tenant_id` unless it is a valid tenant id. */
export function requireTenantId(tenantId: string): void {
  const problem = tenantIdProblem(tenantId);
  if (problem) throw badRequest(Code.InvalidArgument, [{ field: "tenant_id", description: problem }]);
}
