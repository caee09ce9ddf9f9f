import { JetStreamApiError, StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { apiKeyDigest, generateApiKey, isApiKeyId } from "../credentials/api-key.js";
import { tenantIdProblem } from "../events/field-rules.js";
import { JetStreamCodes } from "./errors.js";

/**
 * Customer API keys in the NATS KV bucket `jobhooks_api_keys` (README "Commands", `jobhooks keys`). An
 * entry's name is the SHA-256 of the key and its value holds only the key's id, tenant and creation
 * time: a copy of the bucket lets nobody call jobhooks.
 */

export const API_KEYS_BUCKET = "jobhooks_api_keys";
/**
 * Key id → when it last authenticated (ISO 8601). Its own bucket: writing it never touches the keys
 * bucket, whose watch every replica follows to forget revoked keys.
 */
export const API_KEY_USE_BUCKET = "jobhooks_api_key_use";

export interface ApiKeyRecord {
  /** Public handle (`key_…`): listed, and used to revoke. */
  id: string;
  tenantId: string;
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601: when a request last authenticated with it (to the minute); absent when never. */
  lastUsedAt?: string;
}

export interface ApiKeyStore {
  /** Stores a fresh key for a tenant; the key itself is returned once and never stored. */
  create(tenantId: string): Promise<{ key: string; record: ApiKeyRecord }>;
  /** Every live key, oldest first, with when each was last used. */
  list(): Promise<ApiKeyRecord[]>;
  /** Records that a request authenticated with the key now. */
  markUsed(id: string): Promise<void>;
  /** Removes a key by id; undefined when no key has that id. */
  revoke(id: string): Promise<ApiKeyRecord | undefined>;
  /** The record stored under a digest, with the digest as the store holds it; undefined when unknown. */
  findByDigest(digest: string): Promise<{ digest: string; record: ApiKeyRecord } | undefined>;
  /**
   * Calls `onChange` with the digest of every key created, changed or revoked from now on, until the
   * returned function is called or the connection closes.
   */
  watchChanges(onChange: (digest: string) => void): Promise<() => void>;
}

interface StoredValue {
  id: string;
  tenant_id: string;
  created_at: string;
}

/**
 * Opens the bucket, creating it when missing. Every replica and the CLI run this, possibly at the
 * same time: creating an identical stream twice succeeds, and a lost race is settled by opening.
 */
export async function openApiKeyStore(nc: NatsConnection, opts: { replicas: number }): Promise<ApiKeyStore> {
  const kvm = new Kvm(nc);
  const openBucket = async (name: string, description: string): Promise<KV> => {
    try {
      // One value per key: a revoked key leaves only a purge marker, no history of the record.
      return await kvm.create(name, {
        replicas: opts.replicas,
        history: 1,
        storage: StorageType.File,
        description,
      });
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== JetStreamCodes.StreamNameInUse) throw err;
      return await kvm.open(name);
    }
  };
  const kv = await openBucket(
    API_KEYS_BUCKET,
    "jobhooks customer API keys: SHA-256 digest → key id, tenant, creation time",
  );
  const used = await openBucket(API_KEY_USE_BUCKET, "jobhooks customer API keys: key id → last used");

  async function entries(): Promise<Array<{ digest: string; record: ApiKeyRecord }>> {
    const out: Array<{ digest: string; record: ApiKeyRecord }> = [];
    for await (const digest of await kv.keys()) {
      const entry = await kv.get(digest);
      const record = entry && entry.operation === "PUT" ? recordOf(entry.string()) : undefined;
      if (record) out.push({ digest, record });
    }
    return out.sort((a, b) => a.record.createdAt.localeCompare(b.record.createdAt));
  }

  return {
    async create(tenantId) {
      const { key, id } = generateApiKey();
      const value: StoredValue = { id, tenant_id: tenantId, created_at: new Date().toISOString() };
      // create (not put): a digest collision would be a broken random source, never an overwrite.
      await kv.create(apiKeyDigest(key), JSON.stringify(value));
      return { key, record: { id, tenantId, createdAt: value.created_at } };
    },

    async list() {
      return Promise.all(
        (await entries()).map(async ({ record }) => {
          const last = await used.get(record.id).catch(() => null);
          return last?.operation === "PUT" ? { ...record, lastUsedAt: last.string() } : record;
        }),
      );
    },

    async markUsed(id) {
      await used.put(id, new Date().toISOString());
    },

    async revoke(id) {
      const found = (await entries()).find((e) => e.record.id === id);
      if (!found) return undefined;
      await kv.purge(found.digest);
      await used.purge(id).catch(() => undefined);
      return found.record;
    },

    async findByDigest(digest) {
      const entry = await kv.get(digest);
      if (entry?.operation !== "PUT") return undefined;
      // A record anyone with write access to the bucket could have put there: it grants a tenant
      // only when it has exactly the shape `keys create` writes; anything else is an unknown key.
      const record = recordOf(entry.string());
      return record ? { digest: entry.key, record } : undefined;
    },

    async watchChanges(onChange) {
      const watch = await kv.watch({ include: "updates" });
      void (async () => {
        for await (const e of watch) onChange(e.key);
      })().catch(() => {
        // The iterator ends with the connection; lookups fall back to the cache's time limit.
      });
      return () => watch.stop();
    },
  };
}

/** A stored value read back, or undefined when it is not what `create` writes. */
function recordOf(text: string): ApiKeyRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const v = value as Partial<Record<keyof StoredValue, unknown>>;
  if (typeof v.id !== "string" || !isApiKeyId(v.id)) return undefined;
  if (typeof v.tenant_id !== "string" || tenantIdProblem(v.tenant_id) !== undefined) return undefined;
  if (typeof v.created_at !== "string" || Number.isNaN(Date.parse(v.created_at))) return undefined;
  return { id: v.id, tenantId: v.tenant_id, createdAt: v.created_at };
}
