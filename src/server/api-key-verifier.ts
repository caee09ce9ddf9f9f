import { timingSafeEqual } from "node:crypto";
import { apiKeyDigest, looksLikeApiKey } from "../credentials/api-key.js";
import type { Logger } from "../log/logger.js";
import type { ApiKeyRecord, ApiKeyStore } from "../nats/api-key-store.js";
import { BoundedMap } from "../resilience/bounded-map.js";
import type { CredentialVerifier, Principal } from "./auth.js";
import { unavailable } from "./rpc-errors.js";

export interface ApiKeyVerifierOptions {
  store: Pick<ApiKeyStore, "findByDigest" | "watchChanges"> & Partial<Pick<ApiKeyStore, "markUsed">>;
  /**
   * How long a lookup (found or not) is trusted without asking the store again. The bucket watch
   * forgets a changed key at once; this bounds staleness when the watch itself lags or broke, so it
   * must stay below the 5 s in which a revocation has to reach every replica.
   */
  cacheMs?: number;
  /** Found keys kept at most (least recently used forgotten first). */
  maxCached?: number;
  /**
   * Unknown digests remembered at most, apart from the found keys: a flood of random keys fills
   * only this, so it can never push a valid key out of the cache. Default 10 000.
   */
  maxNegativeCached?: number;
  /**
   * Store look-ups in flight at most; one more is answered UNAVAILABLE (retry) without asking
   * NATS. Look-ups of the same digest share one request. Default 64.
   */
  maxInFlight?: number;
  now?: () => number;
  log: Logger;
}

/** A key's last use is written at most this often: ListApiKeys shows it to the minute. */
const USE_RECORD_MS = 60_000;

/** How long a key found valid may skip an address's failure limit before its look-up. */
const VOUCH_MS = 24 * 3_600_000;

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
  const maxNegative = o.maxNegativeCached ?? 10_000;
  const maxInFlight = o.maxInFlight ?? 64;
  const cache = new BoundedMap<string, Cached>(maxCached);
  const unknown = new BoundedMap<string, number>(maxNegative);
  const inFlight = new Map<string, Promise<Cached>>();
  // Digests found valid within VOUCH_MS: their look-up is a customer's, never a stranger's, so it
  // goes ahead even from an address others failed from. Grants nothing by itself: the store decides.
  const vouched = new BoundedMap<string, number>(maxCached);
  const stopWatching = await o.store.watchChanges((digest) => {
    cache.delete(digest);
    unknown.delete(digest);
  });

  function lookup(digest: string): Promise<Cached> | Cached {
    const hit = cache.get(digest);
    if (hit && hit.until > now()) return hit;
    const miss = unknown.get(digest);
    if (miss !== undefined && miss > now()) return { record: undefined, digest: undefined, until: miss };
    const pending = inFlight.get(digest);
    if (pending) return pending;
    if (inFlight.size >= maxInFlight) {
      throw unavailable("too many credential checks in progress; retry shortly", 1_000);
    }
    const p = ask(digest).finally(() => inFlight.delete(digest));
    inFlight.set(digest, p);
    return p;
  }

  async function ask(digest: string): Promise<Cached> {
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
    if (entry.record) {
      cache.set(digest, entry);
      vouched.set(digest, now() + VOUCH_MS);
      unknown.delete(digest);
    } else {
      unknown.set(digest, entry.until);
      cache.delete(digest);
    }
    return entry;
  }

  function principalFrom({ record, digest: stored }: Cached, digest: string): Principal | undefined {
    // The store is keyed by digest, so the lookup's timing depends only on a hash of the key. The
    // final comparison is constant-time all the same, and guards against a store that matched
    // anything but the exact digest.
    if (!record || !stored || stored.length !== digest.length) return undefined;
    if (!timingSafeEqual(Buffer.from(stored, "utf8"), Buffer.from(digest, "utf8"))) return undefined;
    return { kind: "customer", tenantId: record.tenantId, keyId: record.id };
  }

  // Key id → when its use was last written: one write per key per minute, in the background.
  const useRecorded = new BoundedMap<string, number>(maxCached);
  function noteUse(keyId: string): void {
    const markUsed = o.store.markUsed;
    if (!markUsed || (useRecorded.get(keyId) ?? 0) > now()) return;
    useRecorded.set(keyId, now() + USE_RECORD_MS);
    markUsed(keyId).catch(() => useRecorded.delete(keyId));
  }

  const verify = async (credential: string): Promise<Principal | undefined> => {
    if (!looksLikeApiKey(credential)) return undefined;
    const digest = apiKeyDigest(credential);
    const principal = principalFrom(await lookup(digest), digest);
    if (principal?.kind === "customer") noteUse(principal.keyId);
    return principal;
  };
  /** What the caches already say, without asking the store. */
  const fromMemory = (credential: string): Principal | "unknown" | undefined => {
    if (!looksLikeApiKey(credential)) return "unknown";
    const digest = apiKeyDigest(credential);
    const hit = cache.get(digest);
    if (hit && hit.until > now()) {
      const principal = principalFrom(hit, digest);
      if (principal?.kind === "customer") noteUse(principal.keyId);
      return principal ?? "unknown";
    }
    const miss = unknown.get(digest);
    if (miss !== undefined && miss > now()) return "unknown";
    return undefined;
  };

  const isVouchedFor = (credential: string): boolean => {
    if (!looksLikeApiKey(credential)) return false;
    const until = vouched.get(apiKeyDigest(credential));
    return until !== undefined && until > now();
  };

  return { verify: Object.assign(verify, { fromMemory, isVouchedFor }), close: stopWatching };
}
