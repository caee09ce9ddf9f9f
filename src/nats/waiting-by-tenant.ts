import type { JetStreamManager } from "@nats-io/jetstream";
import { jobsStreamSubject, parseStoredSubject, tenantFilter } from "../events/subjects.js";

/**
 * Events stored in JOBS and not yet relayed, per tenant. With work-queue retention every stored
 * message is such an event, so the stream's per-subject counts (stream info with a subject
 * filter: one entry per `<tenant>.<job>.<status>`, paged by the client) summed by tenant are the
 * backlog — also of tenants whose events were stored while no relay ran.
 * Its cost grows with the distinct subjects stored (tens of milliseconds per 30,000): for a
 * command and an occasional look, not for every event.
 */
export async function waitingByTenant(
  jsm: JetStreamManager,
  stream: string,
  prefix: string,
): Promise<Map<string, number>> {
  const info = await jsm.streams.info(stream, { subjects_filter: jobsStreamSubject(prefix) });
  const byTenant = new Map<string, number>();
  for (const [subject, count] of Object.entries(info.state.subjects ?? {})) {
    const tenant = parseStoredSubject(prefix, subject)?.tenantId;
    if (tenant !== undefined) byTenant.set(tenant, (byTenant.get(tenant) ?? 0) + count);
  }
  return byTenant;
}

export interface TenantBacklog {
  tenant: string;
  /** Events stored and not yet relayed. */
  waiting: number;
  /** When the oldest of them was stored. */
  oldestAt: Date | undefined;
}

/**
 * The `top` tenants with the most waiting events, most first, each with its oldest event's age
 * (one direct get each): "who is flooding us?".
 */
export async function topWaitingTenants(
  jsm: JetStreamManager,
  stream: string,
  prefix: string,
  top: number,
): Promise<{ tenants: TenantBacklog[]; totalTenants: number; totalWaiting: number }> {
  const byTenant = await waitingByTenant(jsm, stream, prefix);
  const ranked = [...byTenant].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, top);
  const tenants = await Promise.all(
    ranked.map(async ([tenant, waiting]) => {
      const first = await jsm.direct.getMessage(stream, {
        next_by_subj: tenantFilter(prefix, tenant),
        seq: 1,
      });
      return { tenant, waiting, oldestAt: first?.time };
    }),
  );
  let totalWaiting = 0;
  for (const n of byTenant.values()) totalWaiting += n;
  return { tenants, totalTenants: byTenant.size, totalWaiting };
}
