import { timingSafeEqual } from "node:crypto";
import type { Logger } from "../log/logger.js";
import type { ApiKeyRecord, ApiKeyStore } from "../nats/api-key-store.js";
import { apiKeyDigest, looksLikeApiKey } from "./api-key.js";
import type { CredentialVerifier, Principal } from "./auth.js";
import { unavailable } from "./rpc-errors.js";

export interface ApiKeyVerifierOptions {
  store: Pick<ApiKeyStore, "findByDigest" | "watchChanges">;
  /**
   * How long a lookup (found or not) is trusted without asking the store again. The bucket watch
   * forgets a changed key at once; this bounds staleness when the watch itself lags or broke, so it
   * must stay below the 5 s in which a revocation has to reach every replica.
   */
  cacheMs?: number;
  /** Cached lookups kept at most (oldest forgotten first), so random keys cannot grow memory. */
  maxCached?: number;
  now?: () => number;
  log: Logger;
}

export interface ApiKeyVerifier {
  verify: CredentialVerifier;
  /** Stops watching the bucket. */
  close(): void;
}

interface Cached {
  record: ApiKeyRecord | undefined;
  digest: string | undefined;
  until: number;
}

/**
 * Resolves `jh_live_…` keys to customer principals: key → SHA-256 → the store (or a short-lived
 * cache), never holding or logging the key itself. Anything not shaped like a key is not looked up.
 */
export async function startApiKeyVerifier(o: ApiKeyVerifierOptions): Promise<ApiKeyVerifier> {
  const cacheMs = o.cacheMs ?? 2_000;
  const maxCached = o.maxCached ?? 10_000;
  const now = o.now ?? Date.now;
  const cache = new Map<string, Cached>();
  const stopWatching = await o.store.watchChanges((digest) => cache.delete(digest));

  async function lookup(digest: string): Promise<Cached> {
    const hit = cache.get(digest);
    if (hit && hit.until > now()) return hit;
    let found: Awaited<ReturnType<ApiKeyVerifierOptions["store"]["findByDigest"]>>;
    try {
      found = await o.store.findByDigest(digest);
    } catch (err) {
      // Fail closed: without the store a revoked key cannot be told from a live one. Only the
      // error's kind is logged: NATS errors name the subject, and the subject holds the digest.
      o.log.warn({ error: err instanceof Error ? err.name : "unknown" }, "api key lookup failed");
      throw unavailable("credential store (NATS) unavailable; retry shortly", 1_000);
    }
    const entry: Cached = { record: found?.record, digest: found?.digest, until: now() + cacheMs };
    cache.delete(digest);
    cache.set(digest, entry);
    while (cache.size > maxCached) cache.delete(cache.keys().next().value as string);
    return entry;
  }

  return {
    async verify(credential): Promise<Principal | undefined> {
      if (!looksLikeApiKey(credential)) return undefined;
      const digest = apiKeyDigest(credential);
      const { record, digest: stored } = await lookup(digest);
      // The store is keyed by digest, so the lookup's timing depends only on a hash of the key. The
      // final comparison is constant-time all the same, and guards against a store that matched
      // anything but the exact digest.
      if (!record || !stored || stored.length !== digest.length) return undefined;
      if (!timingSafeEqual(Buffer.from(stored, "utf8"), Buffer.from(digest, "utf8"))) return undefined;
      return { kind: "customer", tenantId: record.tenantId, keyId: record.id };
    },
    close: stopWatching,
  };
}
