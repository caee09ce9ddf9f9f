import type { ServiceImpl } from "@connectrpc/connect";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { WebhookService } from "../gen/jobhooks/v1/webhooks_pb.js";
import type { Logger } from "../log/logger.js";
import type { ApiKeyStore } from "../nats/api-key-store.js";
import type { AuditTrail } from "../nats/audit-trail.js";
import type { TenantDeletionMarks } from "../nats/tenant-deletions.js";
import type { PortalLinks } from "../svix/portal.js";
import type { TenantApplications } from "../svix/tenant-application.js";
import { createApiKey, listApiKeys, revokeApiKey } from "./api-keys-rpc.js";
import { principalOf } from "./auth.js";
import { deleteTenant } from "./delete-tenant.js";
import { unavailable } from "./rpc-errors.js";
import { getTenant } from "./tenant-rpc.js";

/**
 * A tenant's life over the API (CreateApiKey, ListApiKeys, RevokeApiKey, GetTenant, DeleteTenant):
 * what those RPCs need, and their handlers. All are service-token only (rpc-policy.ts), so a
 * customer key is refused before its body is read.
 */
export interface TenantAdmin {
  keys: ApiKeyStore;
  jsm: JetStreamManager;
  subjectPrefix: string;
  /** The tenant's Svix application and portal; undefined without SVIX_TOKEN. */
  svix: { portal: PortalLinks; applications: TenantApplications } | undefined;
  deletions: TenantDeletionMarks;
  audit: AuditTrail;
  log: Logger;
  /**
   * How long DeleteTenant waits after marking the tenant deleting before it removes anything, so
   * every relay's watch has seen the mark (it arrives within milliseconds; this leaves margin).
   */
  markSettleMs?: number;
}

type AdminMethods = "createApiKey" | "listApiKeys" | "revokeApiKey" | "getTenant" | "deleteTenant";

/** The handlers; without `admin` (a server built for tests of other RPCs) each answers UNAVAILABLE. */
export function tenantAdminHandlers(
  admin: TenantAdmin | undefined,
): Pick<ServiceImpl<typeof WebhookService>, AdminMethods> {
  const need = (): TenantAdmin => {
    if (!admin) throw unavailable("tenant administration is not configured on this server", 60_000);
    return admin;
  };
  return {
    createApiKey: (req, ctx) => createApiKey(req, principalOf(ctx), need()),
    listApiKeys: (req) => listApiKeys(req, need()),
    revokeApiKey: (req, ctx) => revokeApiKey(req, principalOf(ctx), need()),
    getTenant: (req) => getTenant(req, need()),
    deleteTenant: (req, ctx) => deleteTenant(req, principalOf(ctx), need()),
  };
}
