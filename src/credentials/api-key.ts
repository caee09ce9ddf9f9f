import { createHash, randomBytes } from "node:crypto";

/**
 * Customer API keys: what a key looks like, and its digest, which is all jobhooks ever stores.
 * A key is `jh_live_` and 43 base62 characters encoding 32 random bytes (256 bits), so the prefix
 * makes a leaked key easy to recognise (secret scanners, logs) and guessing one is hopeless.
 */

export const API_KEY_PREFIX = "jh_live_";
const SECRET_BYTES = 32;
// ceil(256 / log2(62)) = 43 characters hold any 32-byte value.
const SECRET_CHARS = 43;
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const KEY_SHAPE = new RegExp(`^${API_KEY_PREFIX}[0-9A-Za-z]{${SECRET_CHARS}}$`);
const KEY_ID_SHAPE = /^key_[0-9A-Za-z]{16}$/;

/** A fresh key (shown to its owner once) and its public id (shown in listings and used to revoke). */
export function generateApiKey(): { key: string; id: string } {
  return {
    key: API_KEY_PREFIX + base62(randomBytes(SECRET_BYTES), SECRET_CHARS),
    // The id is independent randomness: knowing it tells nothing about the key.
    id: `key_${base62(randomBytes(12), 16)}`,
  };
}

/** Whether a credential has the shape of an API key; anything else never reaches the key store. */
export function looksLikeApiKey(credential: string): boolean {
  return KEY_SHAPE.test(credential);
}

export function isApiKeyId(id: string): boolean {
  return KEY_ID_SHAPE.test(id);
}

/** SHA-256 of the key as lowercase hex: the key's name in the store. */
export function apiKeyDigest(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

function base62(bytes: Buffer, width: number): string {
  let rest = BigInt(`0x${bytes.toString("hex")}`);
  let out = "";
  for (let i = 0; i < width; i++) {
    out = ALPHABET[Number(rest % 62n)] + out;
    rest /= 62n;
  }
  return out;
}
