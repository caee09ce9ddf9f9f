import { describe, expect, it } from "vitest";
import { Ewma } from "../../src/relay/ewma.js";

describe("Ewma: the typical Svix call time the relay waits by", () => {
  it("knows nothing before the first call, then starts from it", () => {
    const e = new Ewma(10);
    expect(e.value).toBeUndefined();
    e.observe(40);
    expect(e.value).toBe(40);
  });

  it("follows a lasting change within a few dozen calls, and is barely moved by one outlier", () => {
    const e = new Ewma(10);
    for (let i = 0; i < 50; i++) e.observe(40);
    e.observe(1_000);
    expect(e.value).toBeLessThan(250);
    for (let i = 0; i < 40; i++) e.observe(200);
    expect(e.value).toBeGreaterThan(195);
    expect(e.value).toBeLessThan(205);
  });
});
