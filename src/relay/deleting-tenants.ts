import type { Logger } from "../log/logger.js";
import type { DeletedTenants } from "../nats/tenant-deletions.js";
import type { SvixGateway } from "../svix/gateway.js";

/**
 * The relay's Svix client, refusing to send for a tenant while its deletion runs. The relay checks
 * each event as it takes it from JOBS (relay.ts), but an event taken before the deletion began may
 * still wait in the relay for its job's turn or a Svix slot; sent after DeleteTenant removed the
 * tenant's application, it would create the application again (Svix creates it inline) with an
 * event that was to be erased. Such an event is answered as sent, so the relay acks it: it was
 * removed from JOBS by the deletion anyway.
 */
export function dropWhileDeleting(
  svix: SvixGateway,
  deleted: Pick<DeletedTenants, "isDeleting">,
  log: Logger,
): SvixGateway {
  return {
    ...svix,
    createMessage(tenantId, message) {
      if (!deleted.isDeleting(tenantId)) return svix.createMessage(tenantId, message);
      log.debug({ tenant: tenantId, event_id: message.eventId }, "event of a tenant being deleted dropped");
      return Promise.resolve({ kind: "created" });
    },
  };
}
