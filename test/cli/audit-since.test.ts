import { describe, expect, it } from "vitest";
import { parseSince } from "../../src/cli/audit.js";
import { UsageError } from "../../src/cli/process.js";

describe("jobhooks audit list --since", () => {
  const now = Date.parse("2026-12-05T12:00:00Z");

  it.each([
    ["30m", "2026-12-05T11:30:00.000Z"],
    ["24h", "2026-12-04T12:00:00.000Z"],
    ["7d", "2026-11-28T12:00:00.000Z"],
    ["2026-12-01T00:00:00Z", "2026-12-01T00:00:00.000Z"],
    ["2026-12-01", "2026-12-01T00:00:00.000Z"],
  ])("%s means from %s on", (text, iso) => {
    expect(parseSince(text, now).toISOString()).toBe(iso);
  });

  it.each(["yesterday", "24", "1w", "12/01/2026", ""])("%j is refused with what to type instead", (text) => {
    expect(() => parseSince(text, now)).toThrow(UsageError);
    expect(() => parseSince(text, now)).toThrow(/24h or 7d/);
  });
});
