import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The house's floors, lowest first: a folder imports only from folders below it (and its own), so
 * a wire name or a rule needed low is defined low, never borrowed from above.
 */
const MAY_IMPORT: Record<string, string[]> = {
  events: ["gen"],
  resilience: [],
  svix: ["events", "gen", "log", "resilience"],
  nats: ["config", "credentials", "events", "gen", "log", "resilience", "tracing"],
  relay: ["events", "gen", "log", "nats", "resilience", "svix", "tracing"],
};

function importsOf(dir: string): Array<{ file: string; folder: string }> {
  const found: Array<{ file: string; folder: string }> = [];
  for (const entry of readdirSync(dir, { recursive: true, encoding: "utf8" })) {
    if (!entry.endsWith(".ts")) continue;
    const source = readFileSync(path.join(dir, entry), "utf8");
    for (const m of source.matchAll(/from "\.\.\/([a-z-]+)\//g))
      found.push({ file: entry, folder: m[1] as string });
  }
  return found;
}

describe("no import climbs upward", () => {
  it.each(Object.entries(MAY_IMPORT))("src/%s imports only from the floors below it", (folder, allowed) => {
    const climbing = importsOf(path.join("src", folder)).filter((i) => !allowed.includes(i.folder));
    expect(climbing).toEqual([]);
  });
});
