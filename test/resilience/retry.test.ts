import { describe, expect, it } from "vitest";
import { retryWhile } from "../../src/resilience/retry.js";

const noWait = { baseMs: 1, capMs: 1 };

describe("retryWhile runs a call again only while its failures are worth it", () => {
  it("a call that fails twice and then answers gives its answer, after two pauses", async () => {
    let calls = 0;
    const pauses: number[] = [];
    const retried: number[] = [];
    const out = await retryWhile(
      async () => {
        calls++;
        if (calls < 3) throw new Error("timeout");
        return "stored";
      },
      {
        retryable: () => true,
        backoff: { baseMs: 100, capMs: 1_000, random: () => 1 },
        onRetry: (_err, attempt) => retried.push(attempt),
        sleep: async (ms) => void pauses.push(ms),
      },
    );
    expect(out).toBe("stored");
    expect(retried).toEqual([0, 1]);
    expect(pauses).toEqual([100, 200]);
  });

  it("a failure it refuses passes through at once, unchanged", async () => {
    const permanent = new Error("stream not found");
    let calls = 0;
    const run = retryWhile(
      async () => {
        calls++;
        throw permanent;
      },
      { retryable: (err) => err !== permanent, backoff: noWait },
    );
    await expect(run).rejects.toBe(permanent);
    expect(calls).toBe(1);
  });

  it("the caller's bound ends the retries and the last failure passes through", async () => {
    let calls = 0;
    const run = retryWhile(
      async () => {
        calls++;
        throw new Error(`timeout ${calls}`);
      },
      { retryable: (_err, attempt) => attempt < 4, backoff: noWait },
    );
    await expect(run).rejects.toThrow("timeout 5");
    expect(calls).toBe(5);
  });
});
