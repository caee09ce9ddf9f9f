import { Code, ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { apiKeyDigest, generateApiKey } from "../../src/credentials/api-key.js";
import type { ApiKeyRecord } from "../../src/nats/api-key-store.js";
import { startApiKeyVerifier } from "../../src/server/api-key-verifier.js";

/** An in-memory key store that counts lookups and lets the test play the bucket watch. */
function fakeStore() {
  const records = new Map<string, ApiKeyRecord>();
  let notify: (digest: string) => void = () => {};
  const store = {
    lookups: 0,
    records,
    async findByDigest(digest: string) {
      store.lookups++;
      const record = records.get(digest);
      return record ? { digest, record } : undefined;
    },
    async watchChanges(onChange: (digest: string) => void) {
      notify = onChange;
      return () => {};
    },
    changed: (digest: string) => notify(digest),
  };
  return store;
}

const log = pino({ level: "silent" });

describe("the API key verifier", () => {
  it("resolves a stored key to its tenant and key id", async () => {
    const store = fakeStore();
    const { key } = generateApiKey();
    store.records.set(apiKeyDigest(key), { id: "key_a", tenantId: "acme", createdAt: "" });
    const v = await startApiKeyVerifier({ store, log });
    expect(await v.verify(key)).toEqual({ kind: "customer", tenantId: "acme", keyId: "key_a" });
  });

  it("does not look up credentials that are not shaped like keys", async () => {
    const store = fakeStore();
    const v = await startApiKeyVerifier({ store, log });
    expect(await v.verify("svc_test_token_0123456789abcdef")).toBeUndefined();
    expect(store.lookups).toBe(0);
  });

  it("caches lookups briefly, and forgets a key at once when the bucket says it changed", async () => {
    const store = fakeStore();
    const t = 0;
    const { key } = generateApiKey();
    const digest = apiKeyDigest(key);
    store.records.set(digest, { id: "key_a", tenantId: "acme", createdAt: "" });
    const v = await startApiKeyVerifier({ store, log, cacheMs: 2_000, now: () => t });
    await v.verify(key);
    await v.verify(key);
    expect(store.lookups).toBe(1);
    store.records.delete(digest);
    store.changed(digest);
    expect(await v.verify(key)).toBeUndefined();
  });

  it("without a watch notice, a revocation is seen once the cache time runs out", async () => {
    const store = fakeStore();
    let t = 0;
    const { key } = generateApiKey();
    store.records.set(apiKeyDigest(key), { id: "key_a", tenantId: "acme", createdAt: "" });
    const v = await startApiKeyVerifier({ store, log, cacheMs: 2_000, now: () => t });
    await v.verify(key);
    store.records.clear();
    t = 1_999;
    expect(await v.verify(key)).toBeDefined();
    t = 2_001;
    expect(await v.verify(key)).toBeUndefined();
  });

  it("fails closed with UNAVAILABLE when the store cannot be asked, logging neither key nor digest", async () => {
    const store = fakeStore();
    const { key } = generateApiKey();
    store.findByDigest = async (digest: string) => {
      throw new Error(`no responders: '$KV.jobhooks_api_keys.${digest}'`);
    };
    const lines: string[] = [];
    const captured = pino({ level: "debug" }, { write: (l: string) => lines.push(l) });
    const v = await startApiKeyVerifier({ store, log: captured });
    const err = await Promise.resolve(v.verify(key)).catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.Unavailable);
    expect(lines.join("")).toContain("api key lookup failed");
    expect(lines.join("")).not.toContain(apiKeyDigest(key));
    expect(ConnectError.from(err).rawMessage).not.toContain(apiKeyDigest(key));
  });

  it("remembers at most maxNegativeCached unknown keys", async () => {
    const store = fakeStore();
    const v = await startApiKeyVerifier({ store, log, maxNegativeCached: 2 });
    const keys = [generateApiKey().key, generateApiKey().key, generateApiKey().key];
    for (const k of keys) await v.verify(k);
    await v.verify(keys[0] as string);
    expect(store.lookups).toBe(4);
  });
});
