import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsServer } from "../../src/local/nats-server.js";
import type { SvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { until } from "../support/poll.js";
import { publishToNats } from "../support/publish.js";
import {
  expectExactlyOnceInOrder,
  jobEvents,
  type RelayStack,
  startRelayStack,
} from "../support/relay-stack.js";

let nats: NatsServer;
let svix: SvixStandIn;
let stack: RelayStack;

beforeAll(async () => {
  stack = await startRelayStack({
    svix: { requestLogSize: 100_000 },
    // Short enough that the "slow" fault below is a timeout, long enough for a busy CI machine.
    env: { JOBHOOKS_SVIX_TIMEOUT_MS: "1000", LOG_LEVEL: "info" },
  });
  ({ nats, svix } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

/** About 30 % of message-creates fail, evenly across the ways Svix (or the network) fails. */
function injectRandomFaults(): void {
  const route = "v1.message.create";
  // Rules are consulted in turn, so each fraction is of what the earlier rules let through.
  const kinds = [
    { kind: "429", retryAfterSeconds: 0 },
    { kind: "500" },
    { kind: "503" },
    { kind: "latency", latencyMs: 1_500 },
    { kind: "reset" },
  ] as const;
  let left = 1;
  for (const k of kinds) {
    svix.faults.inject({ route, ...k, fraction: 0.06 / left });
    left -= 0.06;
  }
}

describe("the relay under Svix faults", () => {
  it("loses and duplicates nothing, in order per job, with 30 % of creates failing", {
    timeout: 120_000,
  }, async () => {
    injectRandomFaults();
    try {
      await publishToNats(nats.url, jobEvents("flaky", 100, 20));
      await until("2,000 messages at Svix", () => svix.state.messages("flaky").length >= 2_000, {
        timeoutMs: 90_000,
        everyMs: 250,
      });
      // A wait on purpose: a late duplicate would arrive now, and only time shows none is coming.
      await new Promise((r) => setTimeout(r, 2_000));
      expectExactlyOnceInOrder(svix, "flaky", 100, 20);
      const faulted = svix.state.requests().filter((r) => r.route === "v1.message.create" && r.fault);
      expect(faulted.length).toBeGreaterThan(200);
    } finally {
      svix.faults.clear();
    }
  });

  it("a 20-second total outage only delays delivery: a few requests a second during it, full speed soon after", {
    timeout: 150_000,
  }, async () => {
    // Rules are consulted in order: the outage answers everything until it is cleared.
    svix.faults.inject({ route: "v1.message.create", kind: "503" });
    const outageStart = Date.now();
    await publishToNats(nats.url, jobEvents("outage", 50, 20));
    // The outage's length is the point of the test: 20 s of every create failing.
    await new Promise((r) => setTimeout(r, Math.max(0, 20_000 - (Date.now() - outageStart))));
    const outageEnd = Date.now();
    svix.faults.clear();
    injectRandomFaults();

    // The circuit needs a moment to open: judge the rate from 3 s into the outage.
    const during = svix.state
      .requests()
      .filter((r) => r.route === "v1.message.create")
      .map((r) => Date.parse(r.at))
      .filter((t) => t >= outageStart + 3_000 && t < outageEnd);
    const perSecond = during.length / ((outageEnd - outageStart - 3_000) / 1_000);
    expect(perSecond).toBeLessThanOrEqual(5);
    expect(svix.state.messages("outage")).toHaveLength(0);

    // Full speed: within 5 s of recovery the relay is delivering again, at a rate close to
    // what it reaches with the same faults and no outage.
    await until("the first message after the outage", () => svix.state.messages("outage").length > 0, {
      timeoutMs: 5_000,
    });
    const resumedAfter = Date.now() - outageEnd;
    expect(resumedAfter).toBeLessThan(5_000);
    await until("1,000 messages at Svix", () => svix.state.messages("outage").length >= 1_000, {
      timeoutMs: 60_000,
      everyMs: 250,
    });
    svix.faults.clear();
    // A wait on purpose: a late duplicate would arrive now, and only time shows none is coming.
    await new Promise((r) => setTimeout(r, 2_000));
    expectExactlyOnceInOrder(svix, "outage", 50, 20);
  });
});
