import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { publishToNats } from "../support/publish.js";
import { jobEvents } from "../support/relay-stack.js";
import { useServiceWithNats } from "../support/service.js";

// The service runs without its relay, so what is published stays waiting.
const ctx = useServiceWithNats();

const cli = (...args: string[]) =>
  promisify(execFile)(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], {
    env: { ...process.env, NATS_URL: ctx.nats.url },
    timeout: 30_000,
  });

describe("jobhooks backlog", () => {
  it("says there is nothing waiting when nothing is", async () => {
    const { stdout, stderr } = await cli("backlog");
    expect(stdout).toBe("");
    expect(stderr).toContain("no events waiting");
  });

  it("names the tenant flooding us first, with how many events wait and since when", async () => {
    await publishToNats(ctx.nats.url, [
      ...jobEvents("quiet", 1, 2),
      ...jobEvents("flooding", 50, 6),
      ...jobEvents("busy", 10, 3),
    ]);
    const { stdout, stderr } = await cli("backlog", "--top", "2");
    const rows = stdout.trim().split("\n");
    expect(rows[0]).toMatch(/^TENANT\s+WAITING\s+OLDEST_AGE_S\s+OLDEST_STORED_AT$/);
    expect(rows[1]).toMatch(/^flooding\s+300\s+\d+\s+\d{4}-/);
    expect(rows[2]).toMatch(/^busy\s+30\s/);
    expect(rows).toHaveLength(3);
    expect(stderr).toContain("332 events of 3 tenants waiting (top 2 shown)");

    const json = await cli("backlog", "--json");
    const records = json.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { tenant: string; waiting: number });
    expect(records.map((r) => [r.tenant, r.waiting])).toEqual([
      ["flooding", 300],
      ["busy", 30],
      ["quiet", 2],
    ]);
  });

  it("refuses a --top that is not a positive number", async () => {
    const err = (await cli("backlog", "--top", "zero").catch((e: unknown) => e)) as {
      code: number;
      stderr: string;
    };
    expect(err.code).not.toBe(0);
    expect(err.stderr).toContain("--top");
  });
});
