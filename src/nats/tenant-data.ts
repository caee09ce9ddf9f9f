import type { JetStreamManager } from "@nats-io/jetstream";
import {
  parseStoredSubject,
  tenantDlqFilter,
  tenantFilter,
  untenantedDlqFilter,
} from "../events/subjects.js";
import { DEAD_HEADERS } from "../events/wire-names.js";
import { DLQ_STREAM, JOBS_STREAM } from "./provision.js";

/**
 * What NATS holds of one tenant, counted and removed by subject filter: its waiting events in JOBS
 * and its dead letters in JOBS_DLQ (filed by tenant;
 * those filed by reason alone, before that layout, are found by their original-subject header).
 * A purge with a subject filter deletes only the matching messages: no other tenant's event is
 * touched, and the order of what remains is the order it was stored in.
 */

export interface TenantHoldings {
  waiting: number;
  oldestWaitingAt: Date | undefined;
  deadLetters: number;
  oldestDeadLetterAt: Date | undefined;
}

/** Dead letters of the layout before tenants were filed, scanned at most (headers only). */
const UNTENANTED_SCAN_MAX = 100_000;

export async function countTenantHoldings(
  jsm: JetStreamManager,
  prefix: string,
  tenantId: string,
): Promise<TenantHoldings> {
  const jobsFilters = [tenantFilter(prefix, tenantId)];
  const waiting = await countMatching(jsm, JOBS_STREAM, jobsFilters);
  const filed = await countMatching(jsm, DLQ_STREAM, [tenantDlqFilter(prefix, tenantId)]);
  const untenanted = await untenantedDeadLetters(jsm, prefix, tenantId);
  return {
    waiting,
    oldestWaitingAt: waiting > 0 ? await oldest(jsm, JOBS_STREAM, jobsFilters) : undefined,
    deadLetters: filed + untenanted.length,
    oldestDeadLetterAt: earliest(
      filed > 0 ? await oldest(jsm, DLQ_STREAM, [tenantDlqFilter(prefix, tenantId)]) : undefined,
      untenanted[0]?.at,
    ),
  };
}

/** Removes the tenant's events from JOBS; how many went. */
export async function purgeTenantEvents(
  jsm: JetStreamManager,
  prefix: string,
  tenantId: string,
): Promise<number> {
  return (await jsm.streams.purge(JOBS_STREAM, { filter: tenantFilter(prefix, tenantId) })).purged;
}

/** Removes the tenant's dead letters from JOBS_DLQ; how many went. */
export async function purgeTenantDeadLetters(
  jsm: JetStreamManager,
  prefix: string,
  tenantId: string,
): Promise<number> {
  let purged = (await jsm.streams.purge(DLQ_STREAM, { filter: tenantDlqFilter(prefix, tenantId) })).purged;
  for (const { seq } of await untenantedDeadLetters(jsm, prefix, tenantId)) {
    if (await jsm.streams.deleteMessage(DLQ_STREAM, seq, false).catch(() => false)) purged++;
  }
  return purged;
}

async function countMatching(jsm: JetStreamManager, stream: string, filters: string[]): Promise<number> {
  let n = 0;
  for (const filter of filters) {
    const info = await jsm.streams.info(stream, { subjects_filter: filter });
    for (const count of Object.values(info.state.subjects ?? {})) n += count;
  }
  return n;
}

async function oldest(jsm: JetStreamManager, stream: string, filters: string[]): Promise<Date | undefined> {
  let first: Date | undefined;
  for (const filter of filters) {
    const m = await jsm.direct.getMessage(stream, { next_by_subj: filter, seq: 1 });
    first = earliest(first, m?.time);
  }
  return first;
}

function earliest(a: Date | undefined, b: Date | undefined): Date | undefined {
  if (!a) return b;
  if (!b) return a;
  return a <= b ? a : b;
}

/** The tenant's dead letters of the reason-only layout, oldest first, by a headers-only scan. */
async function untenantedDeadLetters(
  jsm: JetStreamManager,
  prefix: string,
  tenantId: string,
): Promise<Array<{ seq: number; at: Date }>> {
  const filter = untenantedDlqFilter(prefix);
  const info = await jsm.streams.info(DLQ_STREAM, { subjects_filter: filter });
  const total = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
  if (total === 0) return [];
  const consumer = await jsm.jetstream().consumers.get(DLQ_STREAM, {
    filter_subjects: [filter],
    headers_only: true,
  });
  const found: Array<{ seq: number; at: Date }> = [];
  let seen = 0;
  try {
    while (seen < Math.min(total, UNTENANTED_SCAN_MAX)) {
      const batch = await consumer.fetch({ max_messages: 512, expires: 1_000 });
      let read = 0;
      for await (const m of batch) {
        read++;
        seen++;
        const original = parseStoredSubject(prefix, m.headers?.get(DEAD_HEADERS.subject) ?? "");
        if (original?.tenantId === tenantId)
          found.push({ seq: m.seq, at: new Date(m.info.timestampNanos / 1e6) });
        if (m.info.pending === 0) break;
      }
      if (read === 0 || seen >= total) break;
    }
  } finally {
    await consumer.delete().catch(() => undefined);
  }
  return found;
}
