import { createHash, timingSafeEqual } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
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

/** 32 characters of a random alphabet (e.g. `openssl rand -base64 32`) are beyond guessing. */
export const MIN_TOKEN_CHARS = 32;

/** A service-token verifier whose set can be replaced while running (SIGHUP reloads the file). */
export type ServiceTokenVerifier = CredentialVerifier & {
  /** From the next request on, only these tokens are accepted. */
  replace(tokens: readonly string[]): void;
};

/**
 * Service tokens, one per line (blank lines and `#` comments ignored). Only their SHA-256 digests
 * stay in memory; a presented token is hashed and compared against every digest with
 * timingSafeEqual, without stopping at a match, so timing reveals neither a token nor which one.
 */
export function serviceTokenVerifier(tokens: readonly string[]): ServiceTokenVerifier {
  // Each request reads the current set once, so a reload never mixes two sets in one check.
  let digests = tokens.map(sha256);
  const verify: CredentialVerifier = (credential) => {
    const current = digests;
    const presented = sha256(credential);
    let index = -1;
    for (let i = 0; i < current.length; i++) {
      if (timingSafeEqual(presented, current[i] as Buffer)) index = i;
    }
    return index >= 0 ? { kind: "service", name: `service-token-${index + 1}` } : undefined;
  };
  return Object.assign(verify, {
    replace(next: readonly string[]) {
      digests = next.map(sha256);
    },
  });
}

/**
 * Reads and checks a service-tokens file: at least one token, each at least MIN_TOKEN_CHARS long
 * without spaces; a file others can read is accepted with a warning (`warn`), since on a shared
 * host anyone who reads it can call every RPC for every tenant. Errors name the file and the
 * token's position, never a token.
 */
export async function readServiceTokens(
  file: string,
  warn: (message: string) => void = () => undefined,
): Promise<string[]> {
  let text: string;
  let mode: number;
  try {
    text = await readFile(file, "utf8");
    mode = (await stat(file)).mode;
  } catch (err) {
    throw new Error(
      `JOBHOOKS_SERVICE_TOKENS_FILE: cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
  const tokens = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  if (tokens.length === 0) {
    throw new Error(
      `JOBHOOKS_SERVICE_TOKENS_FILE: ${file} holds no token (one per line; # starts a comment)`,
    );
  }
  const short = tokens.findIndex((t) => t.length < MIN_TOKEN_CHARS || /\s/.test(t));
  if (short >= 0) {
    throw new Error(
      `JOBHOOKS_SERVICE_TOKENS_FILE: token ${short + 1} is shorter than ${MIN_TOKEN_CHARS} characters or has spaces`,
    );
  }
  if ((mode & 0o077) !== 0) {
    warn(
      `JOBHOOKS_SERVICE_TOKENS_FILE: ${file} is readable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
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
