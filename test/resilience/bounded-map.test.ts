import { describe, expect, it } from "vitest";
import { BoundedMap } from "../../src/resilience/bounded-map.js";

describe("a bounded map never grows past its bound", () => {
  it("forgets the least recently written entry first, whatever was read since", () => {
    const m = new BoundedMap<string, number>(3);
    m.set("a", 1).set("b", 2).set("c", 3);
    expect(m.get("a")).toBe(1);
    m.set("d", 4);
    expect([m.has("a"), m.has("b"), m.has("c"), m.has("d")]).toEqual([false, true, true, true]);
    expect(m.size).toBe(3);
  });

  it("writing a key again makes it the newest", () => {
    const m = new BoundedMap<string, number>(2);
    m.set("a", 1).set("b", 2).set("a", 10).set("c", 3);
    expect(m.get("a")).toBe(10);
    expect(m.has("b")).toBe(false);
  });

  it("stays at its bound under a flood of distinct keys", () => {
    const m = new BoundedMap<number, number>(100);
    for (let i = 0; i < 10_000; i++) m.set(i, i);
    expect(m.size).toBe(100);
    expect(m.has(9_900)).toBe(true);
    expect(m.has(9_899)).toBe(false);
    expect(m.delete(9_999)).toBe(true);
    expect(m.size).toBe(99);
  });

  it("refuses a bound below one", () => {
    expect(() => new BoundedMap(0)).toThrow(RangeError);
  });
});
