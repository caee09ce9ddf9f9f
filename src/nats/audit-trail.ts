import {
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/transport-node";
import type { Logger } from "../log/logger.js";
import { JetStreamCodes } from "./errors.js";

/**
 * The audit trail: every administrative act (a key created or revoked, a portal link issued,
 * portal sessions revoked, a tenant deleted, dead letters replayed) as one JSON record in the
 * JetStream stream JOBHOOKS_AUDIT, and one log line. Records name the tenant, the act, who did it
 * (a service token's name, a key's id, `cli:<user>`) and ids — never a key, token, URL or hash.
 *
 * Subject `jobhooks.audit.<tenant>.<act>`: `jobhooks audit list --tenant` reads one tenant's
 * records by filter, without scanning the others.
 */

export const AUDIT_STREAM = "JOBHOOKS_AUDIT";
const AUDIT_SUBJECT_PREFIX = "jobhooks.audit";

/** The subject token of an act that concerns no single tenant (a replay across tenants). */
export const NO_TENANT = "~";

export type AuditAct =
  | "api_key.created"
  | "api_key.revoked"
  | "portal_link.issued"
  | "portal_sessions.revoked"
  | "tenant.deleted"
  | "dead_letters.replayed";

/** Ids, counts and flags only: the type keeps a secret-shaped object out. */
export type AuditDetails = Record<string, string | number | boolean | readonly string[]>;

export interface AuditRecord {
  /** ISO 8601, when the act was recorded. */
  at: string;
  act: AuditAct;
  /** The tenant acted on, or NO_TENANT. */
  tenant: string;
  /** Who acted: `service:<token name>`, `key:<key id>`, or `cli:<os user>`. */
  by: string;
  details: AuditDetails;
}

export interface AuditTrail {
  /**
   * Logs the act and appends it to the stream. Never throws: the act already happened, and failing
   * its caller now would only invite a retry that does it twice; a failed append is logged as an
   * error with the whole record, so the log still holds it.
   */
  record(entry: Omit<AuditRecord, "at">): Promise<void>;
}

export interface AuditRetention {
  /** Records older than this are deleted (JOBHOOKS_AUDIT_MAX_AGE_MS). */
  maxAgeMs: number;
  /** Beyond this the oldest records are deleted (JOBHOOKS_AUDIT_MAX_BYTES). */
  maxBytes: number;
  replicas: number;
}

/**
 * Creates JOBHOOKS_AUDIT, or applies the configured retention to an existing one. Every replica
 * and the CLI run this: creating an identical stream twice succeeds; a lost race is settled by
 * updating.
 */
export async function openAuditTrail(
  nc: NatsConnection,
  retention: AuditRetention,
  log: Logger,
): Promise<AuditTrail> {
  const jsm = await jetstreamManager(nc);
  const want: Partial<StreamConfig> & { name: string } = {
    name: AUDIT_STREAM,
    subjects: [`${AUDIT_SUBJECT_PREFIX}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: retention.replicas,
    max_age: nanos(retention.maxAgeMs),
    max_bytes: retention.maxBytes,
    // Bounded like the DLQ: the oldest records go first, so recording never stops.
    discard: DiscardPolicy.Old,
    max_msg_size: 64 * 1024,
    description: "jobhooks audit trail: administrative acts, no secrets",
  };
  try {
    await jsm.streams.add(want);
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamCodes.StreamNameInUse) throw err;
    const { config } = await jsm.streams.info(AUDIT_STREAM);
    if (config.max_age !== want.max_age || config.max_bytes !== want.max_bytes) {
      await jsm.streams.update(AUDIT_STREAM, { ...config, max_age: want.max_age, max_bytes: want.max_bytes });
      log.info({ stream: AUDIT_STREAM, max_age_ms: retention.maxAgeMs }, "audit retention applied");
    }
  }
  const js = jetstream(nc);
  const encoder = new TextEncoder();
  return {
    async record(entry) {
      const full: AuditRecord = { at: new Date().toISOString(), ...entry };
      log.info({ audit: full.act, tenant: full.tenant, by: full.by, ...full.details }, "audit");
      try {
        await js.publish(auditSubject(full.tenant, full.act), encoder.encode(JSON.stringify(full)));
      } catch (err) {
        log.error({ err: String(err), record: full }, "audit record not stored");
      }
    },
  };
}

function auditSubject(tenant: string, act: AuditAct): string {
  return `${AUDIT_SUBJECT_PREFIX}.${tenant}.${act.replace(".", "_")}`;
}

/** At most this many records per listing: `--since` narrows a longer trail. */
export const AUDIT_LIST_MAX = 10_000;

/**
 * Records oldest first, of one tenant or all, from `since` on. An absent stream is an empty trail
 * (nothing was ever recorded).
 */
export async function listAuditRecords(
  nc: NatsConnection,
  o: { tenant?: string | undefined; since?: Date | undefined; max?: number },
): Promise<AuditRecord[]> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(AUDIT_STREAM).catch((err: unknown) => {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw err;
  });
  if (!info || info.state.messages === 0) return [];
  const max = o.max ?? AUDIT_LIST_MAX;
  const consumer = await jetstream(nc).consumers.get(AUDIT_STREAM, {
    filter_subjects: [o.tenant ? `${AUDIT_SUBJECT_PREFIX}.${o.tenant}.*` : `${AUDIT_SUBJECT_PREFIX}.>`],
    ...(o.since
      ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: o.since.toISOString() }
      : { deliver_policy: DeliverPolicy.All }),
  });
  const out: AuditRecord[] = [];
  const last = info.state.last_seq;
  // Bounded: one round per 256 records, and each round ends when the stream's end is reached.
  for (let round = 0; round <= Math.ceil(max / 256); round++) {
    const batch = await consumer.fetch({ max_messages: 256, expires: 1_000 });
    let read = 0;
    let done = false;
    for await (const m of batch) {
      read++;
      try {
        const record = JSON.parse(m.string()) as AuditRecord;
        // The consumer starts at `since` by the stream's clock; the record's own time decides.
        if (!o.since || Date.parse(record.at) >= o.since.getTime()) out.push(record);
      } catch {
        // Not a record jobhooks wrote: skipped, never shown as one.
      }
      if (out.length >= max || m.seq >= last || m.info.pending === 0) {
        done = true;
        break;
      }
    }
    if (done || read === 0) break;
  }
  await consumer.delete().catch(() => undefined);
  return out;
}
