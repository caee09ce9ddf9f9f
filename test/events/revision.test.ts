import { describe, expect, it } from "vitest";
import { revisionOf } from "../../src/events/revision.js";

describe("an event's revision", () => {
  it("is its stream sequence, unless it was stored again with the revision it was first given", () => {
    expect(revisionOf(1_700_000_000_000_123, undefined)).toBe(1_700_000_000_000_123);
    expect(revisionOf(1_700_000_000_000_123, "")).toBe(1_700_000_000_000_123);
    expect(revisionOf(1_700_000_000_000_900, "1700000000000123")).toBe(1_700_000_000_000_123);
  });

  it("never takes a header that is not an earlier revision", () => {
    for (const header of ["1700000000000999", "1700000000000900", "0", "-5", "12.5", "abc", "1e400"])
      expect(revisionOf(1_700_000_000_000_900, header), header).toBe(1_700_000_000_000_900);
  });
});
