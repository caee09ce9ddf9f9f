import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { createAckResender } from "../../src/relay/ack-resender.js";
import { until } from "../support/poll.js";

/**
 * What the relay sends again after its consumer went silent: the acks that may have been lost
 * with a dying leader or connection, and no others. Checked on a real nats-server, where the
 * "leader" is a subscription on the ack subjects.
 */
let nats: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc?.close();
  await nats?.dispose();
});

/** The ack subjects a subscriber saw, in order, for the subjects under `prefix`. */
function leader(prefix: string): { seen: string[] } {
  const out = { seen: [] as string[] };
  nc.subscribe(`${prefix}.>`, {
    callback: (_err, m) => {
      if (m.string() === "+ACK") out.seen.push(m.subject);
    },
  });
  return out;
}

describe("acks sent again when the relay consumer answers after a silence", () => {
  it("sends the recent acks and those made while unsure once more, and nothing without a silence", async () => {
    const lead = leader("acks1");
    await nc.flush();
    const acks = createAckResender(nc, { windowMs: 5_000 });
    acks.acked("acks1.a");
    acks.acked("acks1.b");
    // Answered without a silence before: nothing is sent again.
    expect(acks.answered()).toBe(0);
    acks.suspect();
    acks.acked("acks1.c"); // while the consumer does not answer
    expect(acks.answered()).toBe(3);
    await until("the three acks at the leader", () => lead.seen.length === 3, { timeoutMs: 2_000 });
    expect(lead.seen).toEqual(["acks1.a", "acks1.b", "acks1.c"]);
    // Once answered, earlier acks are not sent a third time.
    acks.suspect();
    expect(acks.answered()).toBe(0);
  });

  it("leaves out acks older than the window", async () => {
    const acks = createAckResender(nc, { windowMs: 50 });
    acks.acked("acks2.old");
    await new Promise((r) => setTimeout(r, 120));
    acks.acked("acks2.new");
    acks.suspect();
    expect(acks.answered()).toBe(1);
  });
});
