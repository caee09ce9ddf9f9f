import { afterEach, describe, expect, it } from "vitest";
import type { NatsServer } from "../../src/local/nats-server.js";
import type { SvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { publishToNats, waitFor } from "../support/publish.js";
import {
  expectExactlyOnceInOrder,
  jobEvents,
  type RelayStack,
  startRelayStack,
} from "../support/relay-stack.js";
import { readStream } from "../support/service.js";

let nats: NatsServer;
let svix: SvixStandIn;
let stack: RelayStack | undefined;

async function start(env: Record<string, string> = {}): Promise<void> {
  stack = await startRelayStack({ svix: { requestLogSize: 100_000 }, env });
  ({ nats, svix } = stack);
}

afterEach(async () => {
  await stack?.stop();
  stack = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Svix's message-create for one application (tenant): the stand-in matches on the path. */
const createsOf = (tenant: string) => `POST /api/v1/app/${tenant}/msg`;

async function deadLetters(): Promise<Array<{ reason: string; subject: string }>> {
  const dlq = await readStream(nats.url, "JOBS_DLQ").catch(() => []);
  return dlq.map((m) => ({
    reason: m.headers["Jobhooks-Dead-Reason"] ?? "",
    subject: m.headers["Jobhooks-Original-Subject"] ?? "",
  }));
}

describe("a failing event holds only its own job", () => {
  it("while Svix fails one job's events for 20 s, 2,000 other jobs are delivered; that job's events follow, in order, once each", {
    timeout: 150_000,
  }, async () => {
    await start();
    // The stand-in fails every create of application "stuck": that tenant's one job.
    const failing = svix.faults.inject({ route: createsOf("stuck"), kind: "503" });
    const started = Date.now();
    await publishToNats(nats.url, jobEvents("stuck", 1, 5));
    await publishToNats(nats.url, jobEvents("others", 2_000, 1));

    expect(await waitFor(() => svix.state.messages("others").length >= 2_000, 60_000, 100)).toBe(true);
    const othersDoneAfterMs = Date.now() - started;
    // Still failing: the stuck job has nothing at Svix, yet it was tried.
    expect(svix.faults.list().some((r) => r.id === failing.id)).toBe(true);
    expect(svix.state.messages("stuck")).toHaveLength(0);
    expect(
      svix.state.requests().filter((r) => r.path === "/api/v1/app/stuck/msg" && r.fault).length,
    ).toBeGreaterThan(0);

    await sleep(Math.max(0, started + 20_000 - Date.now()));
    svix.faults.remove(failing.id);
    expect(await waitFor(() => svix.state.messages("stuck").length >= 5, 30_000, 100)).toBe(true);
    await sleep(1_000); // a late duplicate would arrive now
    expectExactlyOnceInOrder(svix, "stuck", 1, 5);
    expectExactlyOnceInOrder(svix, "others", 2_000, 1);
    console.log(
      `2,000 other jobs delivered ${othersDoneAfterMs} ms after the first publish, with one job failing`,
    );
  });
});

describe("nothing is retried forever", () => {
  it("an event Svix keeps failing while it accepts others is dead-lettered after the attempt limit", {
    timeout: 60_000,
  }, async () => {
    // Small enough to see the bound in a test; a deployment keeps the default (10,000).
    await start({ JOBHOOKS_RELAY_MAX_ATTEMPTS: "4" });
    await publishToNats(nats.url, jobEvents("warm-up", 10, 1));
    expect(await waitFor(() => svix.state.messages("warm-up").length >= 10, 20_000)).toBe(true);
    svix.faults.inject({ route: createsOf("poisoned"), kind: "500" });
    await publishToNats(nats.url, jobEvents("poisoned", 1, 2));
    // Others keep flowing meanwhile, so Svix demonstrably answers between the attempts.
    let rounds = 0;
    const exhausted = async () =>
      (await deadLetters()).filter((d) => d.reason === "retries_exhausted").length;
    while (rounds < 60 && (await exhausted()) < 2) {
      rounds++;
      await publishToNats(nats.url, jobEvents(`others-${rounds}`, 20, 1));
      await sleep(250);
    }
    expect(await exhausted()).toBe(2);
    expect(await waitFor(() => svix.state.messages(`others-${rounds}`).length >= 20, 10_000)).toBe(true);
    const dead = await deadLetters();
    expect(dead.map((d) => d.subject).sort()).toEqual([
      "jobs.poisoned.job-0.processing",
      "jobs.poisoned.job-0.processing",
    ]);
    expect(svix.state.messages("poisoned")).toHaveLength(0);
    expect(stack?.svc.log.text()).toContain('"reason":"retries_exhausted"');
  });

  it("an outage dead-letters nothing, however many attempts it takes", { timeout: 60_000 }, async () => {
    await start({ JOBHOOKS_RELAY_MAX_ATTEMPTS: "2" });
    await publishToNats(nats.url, jobEvents("warm-up", 10, 1));
    expect(await waitFor(() => svix.state.messages("warm-up").length >= 10, 20_000)).toBe(true);
    const outage = svix.faults.inject({ route: "v1.message.create", kind: "503" });
    await publishToNats(nats.url, jobEvents("outage", 20, 3));
    await sleep(8_000);
    const attempts = svix.state.requests().filter((r) => r.route === "v1.message.create" && r.fault).length;
    expect(attempts).toBeGreaterThan(2 * 2); // more attempts than the limit allows one event
    svix.faults.remove(outage.id);
    expect(await waitFor(() => svix.state.messages("outage").length >= 60, 30_000, 250)).toBe(true);
    expect(await deadLetters()).toEqual([]);
    expectExactlyOnceInOrder(svix, "outage", 20, 3);
  });
});
