import { describe, expect, it } from "vitest";
import { type DecisionInput, decide } from "../../src/relay/decide.js";
import { MAX_RETRY_AFTER_MS } from "../../src/svix/classify.js";

const limits = { maxAttempts: 5, maxAgeMs: 60_000, maxRetryDelayMs: 2_000 };

function input(over: Partial<DecisionInput>): DecisionInput {
  return {
    outcome: { kind: "created" },
    attempts: 1,
    ageMs: 0,
    svixAnswering: true,
    limits,
    random: () => 1,
    ...over,
  };
}

const transient = { kind: "transient", status: 503, reason: "HTTP 503" } as const;

describe("decide: what happens to a message after one Svix attempt", () => {
  it("acks what Svix created, and what it already had (409 on the event id)", () => {
    expect(decide(input({ outcome: { kind: "created" } }))).toEqual({ action: "ack", outcome: "relayed" });
    expect(decide(input({ outcome: { kind: "already_sent" } }))).toEqual({
      action: "ack",
      outcome: "already_sent",
    });
  });

  it("dead-letters what Svix refuses as a request, with Svix's reason", () => {
    const out = decide(
      input({ outcome: { kind: "permanent", status: 422, reason: "HTTP 422: body.x: bad" } }),
    );
    expect(out).toEqual({ action: "dead_letter", reason: "svix_rejected", detail: "HTTP 422: body.x: bad" });
  });

  it("retries a transient failure after a backoff that grows with the attempts, up to the cap", () => {
    const delays = [1, 2, 3, 4].map((attempts) => decide(input({ outcome: transient, attempts })));
    expect(delays.map((d) => d.action)).toEqual(["retry", "retry", "retry", "retry"]);
    expect(delays.map((d) => (d.action === "retry" ? d.delayMs : 0))).toEqual([100, 200, 400, 800]);
    const capped = decide(
      input({ outcome: transient, attempts: 4, limits: { ...limits, maxRetryDelayMs: 300 } }),
    );
    expect(capped).toMatchObject({ action: "retry", delayMs: 300 });
  });

  it("never retries sooner than Retry-After, and clamps an absurd Retry-After", () => {
    expect(decide(input({ outcome: { ...transient, status: 429, retryAfterMs: 7_000 } }))).toMatchObject({
      action: "retry",
      delayMs: 7_000,
    });
    expect(decide(input({ outcome: { ...transient, status: 429, retryAfterMs: 86_400_000 } }))).toMatchObject(
      { action: "retry", delayMs: MAX_RETRY_AFTER_MS },
    );
  });

  it("dead-letters an event Svix keeps failing while it answers others, after the attempt limit", () => {
    expect(decide(input({ outcome: transient, attempts: 4 })).action).toBe("retry");
    expect(decide(input({ outcome: transient, attempts: 5 }))).toMatchObject({
      action: "dead_letter",
      reason: "retries_exhausted",
      detail: expect.stringContaining("5 attempts failed; last: HTTP 503"),
    });
  });

  it("dead-letters such an event once it is older than the age limit, after a few attempts of its own", () => {
    expect(decide(input({ outcome: transient, attempts: 3, ageMs: 60_000 }))).toMatchObject({
      action: "dead_letter",
      reason: "retries_exhausted",
    });
    // Old because it waited through an outage: it gets fresh attempts first.
    expect(decide(input({ outcome: transient, attempts: 1, ageMs: 3_600_000 })).action).toBe("retry");
  });

  it("never dead-letters anything during an outage, however many attempts or however old", () => {
    const out = decide(
      input({ outcome: transient, attempts: 1_000, ageMs: 10 * 86_400_000, svixAnswering: false }),
    );
    expect(out.action).toBe("retry");
  });

  it("keeps an event our own bug failed, retrying it, and never calls that Svix's fault", () => {
    const out = decide(
      input({
        outcome: { kind: "internal", reason: "TypeError: x is undefined" },
        attempts: 1_000,
        ageMs: 1e9,
      }),
    );
    expect(out).toMatchObject({ action: "retry", cause: "bug", reason: "TypeError: x is undefined" });
  });
});
