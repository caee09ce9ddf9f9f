import { setTimeout as delay } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type DeleteTenantRequest,
  type DeleteTenantResponse,
  DeleteTenantResponseSchema,
} from "../gen/jobhooks/v1/webhooks_pb.js";
import { JOBS_STREAM } from "../nats/provision.js";
import { countTenantHoldings, purgeTenantDeadLetters, purgeTenantEvents } from "../nats/tenant-data.js";
import type { SvixCallFailure } from "../svix/call-failure.js";
import { actorOf, requireTenantId } from "./admin-call.js";
import type { Principal } from "./auth.js";
import { unavailable } from "./rpc-errors.js";
import type { TenantAdmin } from "./tenant-admin.js";

/**
 * DeleteTenant, in an order that leaves nothing behind and delivers nothing accepted meanwhile:
 *
 * 1. mark the tenant `deleting` (src/nats/tenant-deletions.ts): from here every relay drops the
 *    tenant's events instead of sending them, whatever arrives;
 * 2. revoke its API keys; remove its waiting events from JOBS and its dead letters from JOBS_DLQ
 *    (subject-filtered purges: nothing of another tenant is touched or reordered);
 * 3. end its portal sessions and delete its Svix application (endpoints, secrets, messages);
 * 4. mark it `deleted` up to JOBS' last sequence, then purge JOBS of it once more: what was
 *    accepted during the deletion is gone or dropped, and what comes later is delivered afresh.
 *
 * Every step is idempotent, so a failed call (UNAVAILABLE) is simply repeated; until it
 * completes, the tenant's events are dropped.
 */
export async function deleteTenant(
  req: DeleteTenantRequest,
  caller: Principal,
  o: TenantAdmin,
): Promise<DeleteTenantResponse> {
  requireTenantId(req.tenantId);
  const tenant = req.tenantId;
  if (!o.svix) {
    throw new ConnectError(
      "cannot delete the tenant's Svix application: this server has no SVIX_TOKEN; call DeleteTenant on a replica configured with Svix",
      Code.FailedPrecondition,
    );
  }
  const svix = o.svix;
  if (req.dryRun) {
    const [keys, held, app] = await Promise.all([
      o.keys.list(),
      countTenantHoldings(o.jsm, o.subjectPrefix, tenant),
      svix.applications.describe(tenant),
    ]);
    if (app.kind === "transient" || app.kind === "failed") throw svixUnavailable(o, tenant, app);
    return create(DeleteTenantResponseSchema, {
      dryRun: true,
      revokedApiKeyIds: keys.filter((k) => k.tenantId === tenant).map((k) => k.id),
      eventsRemoved: BigInt(held.waiting),
      deadLettersRemoved: BigInt(held.deadLetters),
      deletedAppId: app.kind === "found" ? app.app.appId : "",
    });
  }

  await o.deletions.markDeleting(tenant);
  await delay(o.markSettleMs ?? 500);

  const revoked: string[] = [];
  for (const key of await o.keys.list()) {
    if (key.tenantId === tenant && (await o.keys.revoke(key.id))) revoked.push(key.id);
  }
  let events = await purgeTenantEvents(o.jsm, o.subjectPrefix, tenant);
  const deadLetters = await purgeTenantDeadLetters(o.jsm, o.subjectPrefix, tenant);

  const sessions = await svix.portal.revokePortalSessions(tenant, []);
  if (sessions.kind !== "revoked") throw svixUnavailable(o, tenant, sessions);
  const app = await svix.applications.delete(tenant);
  if (app.kind === "transient" || app.kind === "failed") throw svixUnavailable(o, tenant, app);

  const { last_seq: untilSeq } = (await o.jsm.streams.info(JOBS_STREAM)).state;
  await o.deletions.markDeleted(tenant, untilSeq);
  events += await purgeTenantEvents(o.jsm, o.subjectPrefix, tenant);

  const deletedAppId = app.kind === "deleted" ? app.appId : "";
  await o.audit.record({
    act: "tenant.deleted",
    tenant,
    by: actorOf(caller),
    details: {
      revoked_key_ids: revoked,
      events_removed: events,
      dead_letters_removed: deadLetters,
      svix_app_id: deletedAppId,
      portal_sessions_revoked: true,
    },
  });
  return create(DeleteTenantResponseSchema, {
    dryRun: false,
    revokedApiKeyIds: revoked,
    eventsRemoved: BigInt(events),
    deadLettersRemoved: BigInt(deadLetters),
    deletedAppId,
  });
}

function svixUnavailable(o: TenantAdmin, tenant: string, failure: SvixCallFailure): ConnectError {
  o.log.warn({ tenant, reason: failure.reason }, "tenant deletion: Svix did not answer");
  return unavailable(
    "Svix is unavailable or refused; call DeleteTenant again with the same tenant_id (it is idempotent; until it completes, the tenant's events are not delivered)",
    failure.kind === "transient" ? (failure.retryAfterMs ?? 1_000) : 5_000,
  );
}
