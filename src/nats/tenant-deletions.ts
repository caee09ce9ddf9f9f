import { JetStreamApiError, StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { parseStoredSubject } from "../events/subjects.js";
import { JetStreamCodes } from "./errors.js";

/**
 * Tenant deletion markers in the NATS KV bucket `jobhooks_tenant_deletions`, so that events
 * accepted for a tenant while DeleteTenant runs are never delivered:
 *
 * - `deleting`: written first; every relay drops (acks without sending) each of the tenant's events
 *   it takes from JOBS, whatever its sequence.
 * - `deleted` with `until_seq`: written once everything is removed, with JOBS' last sequence at that
 *   moment, before JOBS is purged of the tenant one final time. Events stored up to that sequence
 *   were accepted during the deletion and are dropped; later ones are the tenant starting afresh
 *   and are delivered. A stream sequence, not a time: it is the same on every server, whatever
 *   their clocks.
 *
 * Markers expire after a day (the bucket's max age): by then the final purge has long removed
 * every event they cover. A deletion that failed half-way stays `deleting` (its events dropped)
 * until DeleteTenant is called again and completes, or the marker expires.
 */

export const TENANT_DELETIONS_BUCKET = "jobhooks_tenant_deletions";
const MARKER_TTL_MS = 24 * 3_600_000;

type Marker = { state: "deleting" } | { state: "deleted"; until_seq: number };

export interface TenantDeletionMarks {
  markDeleting(tenantId: string): Promise<void>;
  markDeleted(tenantId: string, untilSeq: number): Promise<void>;
}

async function openBucket(nc: NatsConnection, replicas: number): Promise<KV> {
  const kvm = new Kvm(nc);
  try {
    return await kvm.create(TENANT_DELETIONS_BUCKET, {
      replicas,
      history: 1,
      ttl: MARKER_TTL_MS,
      storage: StorageType.File,
      description: "jobhooks tenant deletions: events of these tenants up to a sequence are not delivered",
    });
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamCodes.StreamNameInUse) throw err;
    return await kvm.open(TENANT_DELETIONS_BUCKET);
  }
}

export async function openTenantDeletionMarks(
  nc: NatsConnection,
  opts: { replicas: number },
): Promise<TenantDeletionMarks> {
  const kv = await openBucket(nc, opts.replicas);
  const put = (tenantId: string, marker: Marker) => kv.put(tenantId, JSON.stringify(marker)).then(() => {});
  return {
    markDeleting: (tenantId) => put(tenantId, { state: "deleting" }),
    markDeleted: (tenantId, untilSeq) => put(tenantId, { state: "deleted", until_seq: untilSeq }),
  };
}

export interface DeletedTenants {
  /**
   * Whether the relay must drop this stored event rather than send it. Costs one size check while
   * no deletion is recent (the usual case); a subject parse otherwise.
   */
  drops(subject: string, seq: number): boolean;
  /** Whether a deletion of this tenant is running now (marked and not yet completed). */
  isDeleting(tenantId: string): boolean;
  stop(): void;
}

/**
 * Follows the markers in memory (every change from a KV watch, after the current values), so the
 * relay's check never waits on NATS. Resolves once the current markers are loaded.
 */
export async function watchDeletedTenants(
  nc: NatsConnection,
  opts: { replicas: number; subjectPrefix: string },
): Promise<DeletedTenants> {
  const kv = await openBucket(nc, opts.replicas);
  /** Tenant → highest dropped sequence (Infinity while deleting). */
  const dropUpTo = new Map<string, number>();
  const apply = (key: string, operation: string, value: () => string) => {
    const upTo = operation === "PUT" ? dropBound(value()) : undefined;
    if (upTo === undefined) dropUpTo.delete(key);
    else dropUpTo.set(key, upTo);
  };
  // Changes first, then what is there now: a marker written in between is seen either way.
  const watch = await kv.watch({ include: "updates" });
  void (async () => {
    for await (const e of watch) apply(e.key, e.operation, () => e.string());
  })().catch(() => {
    // Ends with the connection; a new watch starts with the relay's next start.
  });
  for await (const key of await kv.keys()) {
    const e = await kv.get(key);
    if (e && !dropUpTo.has(key)) apply(key, e.operation, () => e.string());
  }
  return {
    drops(subject, seq) {
      if (dropUpTo.size === 0) return false;
      const tenant = parseStoredSubject(opts.subjectPrefix, subject)?.tenantId;
      const upTo = tenant === undefined ? undefined : dropUpTo.get(tenant);
      return upTo !== undefined && seq <= upTo;
    },
    isDeleting: (tenantId) => dropUpTo.get(tenantId) === Number.POSITIVE_INFINITY,
    stop: () => watch.stop(),
  };
}

function dropBound(text: string): number | undefined {
  try {
    const m = JSON.parse(text) as Partial<{ state: string; until_seq: number }>;
    if (m.state === "deleting") return Number.POSITIVE_INFINITY;
    if (m.state === "deleted" && typeof m.until_seq === "number") return m.until_seq;
  } catch {
    // Not a marker jobhooks wrote: ignored.
  }
  return undefined;
}
