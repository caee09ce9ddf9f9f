import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { parseTenantWeights, watchTenantWeights } from "../../src/relay/tenant-weights.js";
import { until } from "../support/poll.js";

describe("tenant weights", () => {
  it("reads one tenant and weight per line, with comments, and names the bad lines", () => {
    expect(parseTenantWeights("# paid tier\nacme 4\n\nglobex 0.5  # trial\n").weights).toEqual(
      new Map([
        ["acme", 4],
        ["globex", 0.5],
      ]),
    );
    expect(parseTenantWeights("acme\nbad.tenant 2\nzero 0\nhuge 1000\nok 2 extra\n").problems).toHaveLength(
      5,
    );
  });

  it("a changed file applies without a restart; a broken one keeps the weights before", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "jobhooks-weights-"));
    const file = path.join(dir, "weights");
    try {
      await writeFile(file, "acme 4\n");
      const w = await watchTenantWeights(file, pino({ level: "silent" }), 20);
      expect([w.weightOf("acme"), w.weightOf("other")]).toEqual([4, 1]);
      await writeFile(file, "acme 2\nother 3\n");
      await until("the new weights", () => w.weightOf("other") === 3, { timeoutMs: 5_000, everyMs: 10 });
      expect(w.weightOf("acme")).toBe(2);
      await writeFile(file, "acme two\n");
      await new Promise((r) => setTimeout(r, 100));
      expect(w.weightOf("acme")).toBe(2);
      w.stop();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
