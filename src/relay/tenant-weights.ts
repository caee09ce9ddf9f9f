import { readFile, stat } from "node:fs/promises";
import { IDENTIFIER } from "../events/field-rules.js";
import type { Logger } from "../log/logger.js";

/**
 * Per-tenant weights of the fair scheduler (a paid tier's larger share), from a file an operator
 * edits — in a cluster, a ConfigMap every replica mounts — re-read when it changes, so a weight
 * is set without a restart. One `tenant weight` pair per line; `#` starts a comment; a tenant not
 * listed has weight 1. A file with a bad line keeps the weights read before (and says why).
 */
export interface TenantWeights {
  weightOf(tenant: string): number;
  stop(): void;
}

export function parseTenantWeights(text: string): { weights: Map<string, number>; problems: string[] } {
  const weights = new Map<string, number>();
  const problems: string[] = [];
  for (const [i, raw] of text.split("\n").entries()) {
    const line = raw.replace(/#.*/, "").trim();
    if (line === "") continue;
    const [tenant, weight, ...rest] = line.split(/\s+/);
    const w = Number(weight);
    if (!tenant || !IDENTIFIER.test(tenant) || rest.length > 0 || !(w > 0) || w > 100) {
      problems.push(`line ${i + 1}: want "<tenant_id> <weight>" with a weight above 0 and at most 100`);
      continue;
    }
    weights.set(tenant, w);
  }
  return { weights, problems };
}

/** How often the file's modification time is checked. */
const CHECK_EVERY_MS = 5_000;

export async function watchTenantWeights(
  path: string,
  log: Logger,
  checkEveryMs = CHECK_EVERY_MS,
): Promise<TenantWeights> {
  let weights = new Map<string, number>();
  let seen = "";
  let changedTo = "";
  async function load(atStart = false): Promise<void> {
    const s = await stat(path).catch(() => undefined);
    const version = s ? `${s.mtimeMs}:${s.size}` : "missing";
    if (version === seen) return;
    // A change applies once it has stood still for one check: a file rewritten in place is empty,
    // or half written, for a moment, and that moment must not reset every weight.
    if (!atStart && version !== changedTo) {
      changedTo = version;
      return;
    }
    seen = version;
    if (!s) {
      log.warn({ path }, "tenant weights file missing; every tenant has weight 1");
      weights = new Map();
      return;
    }
    const parsed = parseTenantWeights(await readFile(path, "utf8"));
    if (parsed.problems.length > 0) {
      log.warn(
        { path, problems: parsed.problems },
        "tenant weights file has bad lines; keeping the weights read before",
      );
      return;
    }
    weights = parsed.weights;
    log.info({ path, tenants: weights.size }, "tenant weights loaded");
  }
  await load(true);
  const timer = setInterval(() => {
    load().catch((err: unknown) => log.warn({ err, path }, "could not read the tenant weights file"));
  }, checkEveryMs);
  timer.unref();
  return {
    weightOf: (tenant) => weights.get(tenant) ?? 1,
    stop: () => clearInterval(timer),
  };
}
