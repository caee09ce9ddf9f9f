import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Logger } from "../log/logger.js";

/** Who is calling: an internal service (any tenant, every RPC) or a customer (its own tenant). */
export type Principal =
  | { kind: "service"; name: string }
  | { kind: "customer"; tenantId: string; keyId: string };

export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "caller" });

/** Resolves a bearer credential to a principal, or undefined when it is not known. */
export type CredentialVerifier = (
  credential: string,
) => Promise<Principal | undefined> | Principal | undefined;

const MIN_TOKEN_CHARS = 16;

/**
 * Service tokens, one per line (blank lines and `#` comments ignored). Only their SHA-256 digests
 * stay in memory; a presented token is hashed and compared against every digest with
 * timingSafeEqual, without stopping at a match, so timing reveals neither a token nor which one.
 */
export function serviceTokenVerifier(tokens: readonly string[]): CredentialVerifier {
  const digests = tokens.map(sha256);
  return (credential) => {
    const presented = sha256(credential);
    let index = -1;
    for (let i = 0; i < digests.length; i++) {
      if (timingSafeEqual(presented, digests[i] as Buffer)) index = i;
    }
    return index >= 0 ? { kind: "service", name: `service-token-${index + 1}` } : undefined;
  };
}

export async function readServiceTokens(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new Error(
      `JOBHOOKS_SERVICE_TOKENS_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
  const tokens = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const short = tokens.findIndex((t) => t.length < MIN_TOKEN_CHARS || /\s/.test(t));
  if (short >= 0) {
    throw new Error(
      `JOBHOOKS_SERVICE_TOKENS_FILE: token ${short + 1} is shorter than ${MIN_TOKEN_CHARS} characters or has spaces`,
    );
  }
  return tokens;
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/**
 * The request gate: runs on headers only, before the body is read, so an unauthenticated caller
 * cannot make the server parse anything. Health and reflection stay open (probes carry no key).
 */
export function authGate(
  verifiers: readonly CredentialVerifier[],
  protectedServices: ReadonlySet<string>,
  log?: Logger,
): (ctx: HandlerContext) => Promise<void> {
  return async (ctx) => {
    if (!protectedServices.has(ctx.service.typeName)) return;
    const header = ctx.requestHeader.get("authorization");
    if (!header)
      throw new ConnectError("missing credential: send Authorization: Bearer <token>", Code.Unauthenticated);
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m)
      throw new ConnectError("malformed Authorization header: expected Bearer <token>", Code.Unauthenticated);
    const credential = m[1] as string;
    for (const verify of verifiers) {
      const principal = await verify(credential);
      if (principal) {
        ctx.values.set(principalKey, principal);
        return;
      }
    }
    // Which call was refused, never the credential (nor a part of it).
    log?.info({ procedure: ctx.method.name }, "credential refused: unknown or revoked");
    throw new ConnectError("unknown or revoked credential", Code.Unauthenticated);
  };
}

export function principalOf(ctx: HandlerContext): Principal {
  const p = ctx.values.get(principalKey);
  // The gate guarantees one for protected services; reaching here without is a wiring bug.
  if (!p) throw new ConnectError("not authenticated", Code.Unauthenticated);
  return p;
}
