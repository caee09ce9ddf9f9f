import { afterEach, describe, expect, it } from "vitest";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { until } from "../support/poll.js";
import { publishToNats } from "../support/publish.js";
import { expectExactlyOnceInOrder, jobEvents } from "../support/relay-stack.js";
import { startTestService, type TestService } from "../support/service.js";

let nats: NatsServer | undefined;
let svix: SvixStandIn | undefined;
let svc: TestService | undefined;

afterEach(async () => {
  await svc?.stop();
  await svix?.close();
  await nats?.dispose();
  svc = svix = nats = undefined;
});

const SMALL = ["small-a", "small-b", "small-c", "small-d", "small-e"];
/** Three events for each of two jobs of every small tenant. */
const smallEvents = () => SMALL.flatMap((t) => jobEvents(t, 2, 3));
const BULK = { jobs: 500, perJob: 8 };

async function startStack(): Promise<{ nats: NatsServer; svix: SvixStandIn }> {
  nats = await startNatsServer();
  svix = await startSvixStandIn({ deliver: false });
  // Svix takes 20 ms a call and the relay has 8 in flight: the burst takes ten seconds to drain.
  svix.faults.inject({ route: "v1.message.create", kind: "latency", latencyMs: 20 });
  return { nats, svix };
}

function startRelay(natsUrl: string, s: SvixStandIn): Promise<TestService> {
  return startTestService(natsUrl, {
    JOBHOOKS_RELAY_ENABLED: "true",
    JOBHOOKS_RELAY_CONCURRENCY: "8",
    SVIX_TOKEN: s.token,
    SVIX_SERVER_URL: s.url,
  });
}

/** How many of the burst's events Svix had when the last small tenant's event arrived. */
async function burstAtSvixWhenSmallDone(s: SvixStandIn): Promise<number> {
  let bulkThen = 0;
  await until(
    "every small tenant's events at Svix",
    () => {
      const done = SMALL.every((t) => s.state.messages(t).length === 6);
      if (done) bulkThen = s.state.messages("bulk").length;
      return done;
    },
    { timeoutMs: 60_000, everyMs: 20 },
  );
  return bulkThen;
}

async function expectAllDelivered(s: SvixStandIn): Promise<void> {
  await until("the whole burst at Svix", () => s.state.messages("bulk").length === BULK.jobs * BULK.perJob, {
    timeoutMs: 90_000,
  });
  expectExactlyOnceInOrder(s, "bulk", BULK.jobs, BULK.perJob);
  for (const t of SMALL) expectExactlyOnceInOrder(s, t, 2, 3);
}

describe("one tenant's burst never holds up another", () => {
  it("other tenants' events published after a 4,000-event burst reach Svix long before the burst has drained, in order, once each", {
    timeout: 150_000,
  }, async () => {
    const { nats, svix } = await startStack();
    svc = await startRelay(nats.url, svix);
    await publishToNats(nats.url, jobEvents("bulk", BULK.jobs, BULK.perJob));
    await publishToNats(nats.url, smallEvents());
    const bulkThen = await burstAtSvixWhenSmallDone(svix);
    // In stream order they would come after all 4,000.
    expect(bulkThen).toBeLessThan((BULK.jobs * BULK.perJob) / 2);
    await expectAllDelivered(svix);
  });

  it("also when the events were stored while no relay ran (found by the stream's subject counts)", {
    timeout: 150_000,
  }, async () => {
    const { nats, svix } = await startStack();
    const apiOnly = await startTestService(nats.url); // creates the streams, relays nothing
    await publishToNats(nats.url, jobEvents("bulk", BULK.jobs, BULK.perJob));
    await publishToNats(nats.url, smallEvents());
    await apiOnly.stop();
    svc = await startRelay(nats.url, svix);
    const bulkThen = await burstAtSvixWhenSmallDone(svix);
    expect(bulkThen).toBeLessThan((BULK.jobs * BULK.perJob) / 2);
    await expectAllDelivered(svix);
  });
});
