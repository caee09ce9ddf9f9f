import { createHash, timingSafeEqual } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Logger } from "../log/logger.js";
import type { FailedAuthLimiter } from "./auth-failures.js";
import { createRateLimiter } from "./rate-limit.js";
import { rateLimited } from "./rpc-errors.js";

/** Who is calling: an internal service (any tenant, every RPC) or a customer (its own tenant). */
export type Principal =
  | { kind: "service"; name: string }
  | { kind: "customer"; tenantId: string; keyId: string };

export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "caller" });

/**
 * Resolves a bearer credential to a principal, or undefined when it is not known. `fromMemory`, when
 * present, answers without any I/O: a principal, `"unknown"` (certainly not this verifier's), or
 * undefined (only the store can tell); the authenticator asks every verifier's memory first, so a
 * known credential is accepted before anything about its address is considered.
 */
export type CredentialVerifier = ((
  credential: string,
) => Promise<Principal | undefined> | Principal | undefined) & {
  fromMemory?: (credential: string) => Principal | "unknown" | undefined;
  /** Whether this credential was valid here before, so its look-up is not a stranger's. */
  isVouchedFor?: (credential: string) => boolean;
};

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
  const verify = (credential: string): Principal | undefined => {
    const current = digests;
    const presented = sha256(credential);
    let index = -1;
    for (let i = 0; i < current.length; i++) {
      if (timingSafeEqual(presented, current[i] as Buffer)) index = i;
    }
    return index >= 0 ? { kind: "service", name: `service-token-${index + 1}` } : undefined;
  };
  return Object.assign(verify, {
    fromMemory: (credential: string) => verify(credential) ?? "unknown",
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
      { cause: err },
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

/** The client's address, set per request by the server (connectNodeAdapter's contextValues). */
export const clientAddressKey = createContextKey<string>("unknown", { description: "client address" });

/**
 * Resolves a request's Authorization header to a principal, or throws UNAUTHENTICATED; an address
 * with too many failed attempts gets RESOURCE_EXHAUSTED (with RetryInfo) for its failing ones.
 */
export type Authenticator = (
  authorization: string | null | undefined,
  address: string,
  /** The RPC's name, for the log line of a refused credential. */
  procedure: string,
) => Promise<Principal>;

/**
 * Known credentials first, strangers after: a service token or an API key this replica has seen is
 * accepted from memory before anything about the caller's address is looked at, so strangers failing
 * from the address every caller shares (a load balancer, an ingress) never lock anyone out. Only
 * what would cost a store look-up (an API key this replica does not know yet) or what fails is
 * counted and slowed down per address.
 */
export function createAuthenticator(
  verifiers: readonly CredentialVerifier[],
  failures?: FailedAuthLimiter,
  log?: Logger,
): Authenticator {
  const lookupsWhileBlocked = createRateLimiter({ perMinute: 300, burst: 10, maxCallers: 10_000 });
  const tooManyFailures = (waitMs: number) =>
    rateLimited("too many failed authentications from this address; retry later", waitMs);
  return async (header, address, procedure) => {
    const refuse = (message: string) => {
      failures?.failed(address);
      const waitMs = failures?.blockedForMs(address) ?? 0;
      return waitMs > 0 ? tooManyFailures(waitMs) : new ConnectError(message, Code.Unauthenticated);
    };
    if (!header) throw refuse("missing credential: send Authorization: Bearer <token>");
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw refuse("malformed Authorization header: expected Bearer <token>");
    const credential = m[1] as string;
    const needStore: CredentialVerifier[] = [];
    for (const verify of verifiers) {
      const known = verify.fromMemory ? verify.fromMemory(credential) : undefined;
      if (known === "unknown") continue;
      if (known) return known;
      needStore.push(verify);
    }
    if (needStore.length > 0) {
      // A look-up costs NATS a request: from an address that keeps failing, a credential nobody
      // vouched for gets a few look-ups a second, so a customer's first call from a shared address
      // still goes through while a flood of guesses costs NATS next to nothing.
      const waitMs = failures?.blockedForMs(address) ?? 0;
      if (
        waitMs > 0 &&
        !needStore.some((v) => v.isVouchedFor?.(credential)) &&
        lookupsWhileBlocked.take(address).kind === "limited"
      ) {
        throw tooManyFailures(waitMs);
      }
      for (const verify of needStore) {
        const principal = await verify(credential);
        if (principal) return principal;
      }
    }
    // Which call was refused, never the credential (nor a part of it).
    log?.info({ procedure }, "credential refused: unknown or revoked");
    throw refuse("unknown or revoked credential");
  };
}

export function principalOf(ctx: HandlerContext): Principal {
  const p = ctx.values.get(principalKey);
  // The gate guarantees one for protected services; reaching here without is a wiring bug.
  if (!p) throw new ConnectError("not authenticated", Code.Unauthenticated);
  return p;
}
