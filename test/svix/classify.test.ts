import { ApiException } from "svix";
import { describe, expect, it } from "vitest";
import { classifySvixError, parseRetryAfter } from "../../src/svix/classify.js";

function apiError(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new ApiException(status, body, new Headers(headers));
}

describe("classifySvixError", () => {
  it("treats 409 as a conflict to look into (never as delivered by itself) and 404 as a missing application", () => {
    expect(classifySvixError(apiError(409, { code: "conflict", detail: "x" }))).toEqual({
      kind: "conflict",
      code: "conflict",
      reason: "HTTP 409 conflict: x",
    });
    expect(classifySvixError(apiError(404, { code: "not_found", detail: "x" }))).toEqual({
      kind: "app_missing",
    });
  });

  it.each([400, 413, 422])("treats %i as permanent, with Svix's reason", (status) => {
    const out = classifySvixError(apiError(status, { code: "bad", detail: "nope" }));
    expect(out).toMatchObject({ kind: "permanent", status });
  });

  it("describes a 422 by the fields Svix names", () => {
    const out = classifySvixError(
      apiError(422, { detail: [{ loc: ["body", "eventType"], msg: "too long", type: "value_error" }] }),
    );
    expect(out).toEqual({ kind: "permanent", status: 422, reason: "HTTP 422: body.eventType: too long" });
  });

  it.each([429, 500, 502, 503, 401, 403])("treats %i as transient", (status) => {
    expect(classifySvixError(apiError(status, "oops")).kind).toBe("transient");
  });

  it("honours Retry-After in seconds", () => {
    expect(
      classifySvixError(apiError(429, { code: "rate", detail: "slow" }, { "retry-after": "3" })),
    ).toMatchObject({
      kind: "transient",
      retryAfterMs: 3_000,
    });
  });

  it("treats timeouts, resets and non-JSON bodies as transient", () => {
    expect(classifySvixError(new DOMException("timed out", "TimeoutError")).kind).toBe("transient");
    expect(
      classifySvixError(new TypeError("fetch failed", { cause: new Error("ECONNRESET") })),
    ).toMatchObject({
      kind: "transient",
      reason: "network error: ECONNRESET",
    });
    expect(classifySvixError(new SyntaxError("Unexpected token <")).kind).toBe("transient");
  });
});

describe("classifySvixError on our own bugs", () => {
  it("calls a TypeError of our code a bug, not a network error", () => {
    const bug = classifySvixError(new TypeError("Cannot read properties of undefined (reading 'uid')"));
    expect(bug).toEqual({
      kind: "internal",
      reason: "TypeError: Cannot read properties of undefined (reading 'uid')",
    });
    expect(classifySvixError(new RangeError("Invalid array length")).kind).toBe("internal");
  });

  it("still calls a socket error from node:http a network error", () => {
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    expect(classifySvixError(reset)).toEqual({ kind: "transient", reason: "network error: read ECONNRESET" });
  });
});

describe("parseRetryAfter", () => {
  it("reads seconds and HTTP dates, and ignores nonsense", () => {
    expect(parseRetryAfter("2")).toBe(2_000);
    expect(parseRetryAfter("0.5")).toBe(500);
    expect(parseRetryAfter("Fri, 27 Nov 2026 04:00:10 GMT", Date.parse("2026-11-27T04:00:00Z"))).toBe(10_000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });

  it("never asks for more than a minute, nor for a negative wait", () => {
    expect(parseRetryAfter("86400")).toBe(60_000);
    expect(parseRetryAfter("Fri, 27 Nov 2099 04:00:10 GMT", Date.parse("2026-11-27T04:00:00Z"))).toBe(60_000);
    expect(parseRetryAfter("Fri, 27 Nov 2026 03:00:00 GMT", Date.parse("2026-11-27T04:00:00Z"))).toBe(0);
  });
});
