import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { apiKeyDigest, generateApiKey, isApiKeyId, looksLikeApiKey } from "../../src/credentials/api-key.js";

describe("API keys", () => {
  it("a new key is jh_live_ and 43 base62 characters (256 bits), with an unrelated id", () => {
    const { key, id } = generateApiKey();
    expect(key).toMatch(/^jh_live_[0-9A-Za-z]{43}$/);
    expect(isApiKeyId(id)).toBe(true);
    expect(key).not.toContain(id.slice(4));
  });

  it("no two keys or ids are alike", () => {
    const made = Array.from({ length: 1_000 }, generateApiKey);
    expect(new Set(made.map((m) => m.key)).size).toBe(1_000);
    expect(new Set(made.map((m) => m.id)).size).toBe(1_000);
  });

  it("keys use the whole alphabet, not a biased corner of it", () => {
    const chars = new Set(Array.from({ length: 200 }, () => generateApiKey().key.slice(8)).join(""));
    expect(chars.size).toBe(62);
  });

  it("only credentials shaped like a key are treated as one", () => {
    expect(looksLikeApiKey(generateApiKey().key)).toBe(true);
    for (const other of [
      "",
      "jh_live_",
      `jh_test_${"a".repeat(43)}`,
      `jh_live_${"a".repeat(42)}`,
      `jh_live_${"a".repeat(42)}-`,
    ]) {
      expect(looksLikeApiKey(other)).toBe(false);
    }
  });

  it("the stored digest is the key's SHA-256 in hex", () => {
    const { key } = generateApiKey();
    expect(apiKeyDigest(key)).toBe(createHash("sha256").update(key).digest("hex"));
  });
});
