import { createHmac, randomBytes } from "node:crypto";

/**
 * Standard Webhooks signatures, as Svix sends them: `v1,` + base64 HMAC-SHA256 over
 * `${msgId}.${timestampSeconds}.${body}`, keyed by the base64-decoded part of the secret after its
 * `whsec_` prefix. Several secrets are live during a rotation's grace period; receivers accept a
 * delivery when any space-separated signature matches, so each live secret adds one.
 */

const SECRET_PREFIX = "whsec_";

/** 24 random bytes → 32 base64 characters, the length Svix generates (the spec's pattern wants 32–100). */
export function generateSecret(): string {
  return SECRET_PREFIX + randomBytes(24).toString("base64");
}

/** Svix accepts a secret without prefix and treats it as the base64 key itself. */
export function normalizeSecret(secret: string): string {
  return /^(whsec_|whsk_|whsk1_|whpk_|whpk1_)/.test(secret) ? secret : SECRET_PREFIX + secret;
}

function keyOf(secret: string): Buffer {
  const underscore = secret.indexOf("_");
  return Buffer.from(underscore >= 0 ? secret.slice(underscore + 1) : secret, "base64");
}

export function signWebhook(secret: string, msgId: string, timestampSeconds: number, body: string): string {
  const digest = createHmac("sha256", keyOf(secret))
    .update(`${msgId}.${timestampSeconds}.${body}`)
    .digest("base64");
  return `v1,${digest}`;
}

/**
 * The headers of one delivery attempt: the Standard Webhooks names and their `svix-*` twins, which
 * older receivers still read.
 */
export function signatureHeaders(
  secrets: readonly string[],
  msgId: string,
  timestampSeconds: number,
  body: string,
): Record<string, string> {
  const signature = secrets.map((secret) => signWebhook(secret, msgId, timestampSeconds, body)).join(" ");
  const timestamp = String(timestampSeconds);
  return {
    "webhook-id": msgId,
    "webhook-timestamp": timestamp,
    "webhook-signature": signature,
    "svix-id": msgId,
    "svix-timestamp": timestamp,
    "svix-signature": signature,
  };
}
