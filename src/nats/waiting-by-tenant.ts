import type { JetStreamManager } from "@nats-io/jetstream";
import { jobsStreamSubject, parseStoredSubject } from "../events/subjects.js";

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
