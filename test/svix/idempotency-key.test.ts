import { describe, expect, it } from "vitest";
import { svixIdempotencyKey } from "../../src/svix/gateway.js";

describe("svixIdempotencyKey", () => {
  it("is scoped by tenant, stable, and never starts with Svix's reserved auto_", () => {
    expect(svixIdempotencyKey("acme", "job_1.completed")).toBe("jh.acme.job_1.completed");
    expect(svixIdempotencyKey("acme", "e")).not.toBe(svixIdempotencyKey("globex", "e"));
    expect(svixIdempotencyKey("auto_x", "e").startsWith("auto_")).toBe(false);
  });

  it("turns a key over 128 characters into a digest that is still the same for the same event", () => {
    const tenant = "t".repeat(128);
    const event = `${"j".repeat(128)}.processing.18446744073709551615`;
    const key = svixIdempotencyKey(tenant, event);
    expect(key.length).toBeLessThanOrEqual(128);
    expect(key).toMatch(/^jh\.sha256\.[A-Za-z0-9_-]{43}$/);
    expect(svixIdempotencyKey(tenant, event)).toBe(key);
    expect(svixIdempotencyKey(tenant, `${event}0`)).not.toBe(key);
  });
});
