import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DLQ_STREAM } from "../../src/nats/provision.js";
import { listDeadLetters } from "../../src/relay/dlq.js";
import { until } from "../support/poll.js";
import { type RelayStack, startRelayStack } from "../support/relay-stack.js";

let stack: RelayStack;
let nc: NatsConnection;

beforeAll(async () => {
  stack = await startRelayStack();
  nc = await connect({ servers: stack.nats.url });
});

afterAll(async () => {
  await nc?.close();
  await stack?.stop();
});

describe("dead-lettering never depends on the headers a publisher chose", () => {
  it("a malformed message sent with JetStream publish controls is dead-lettered without them, and the job's later events still arrive", async () => {
    const js = jetstream(nc);
    const h = natsHeaders();
    // Valid for the publish into JOBS; JetStream would refuse a copy of them on the JOBS_DLQ publish.
    h.set("Nats-Expected-Stream", "JOBS");
    h.set("Content-Type", "application/json");
    h.set("X-Publisher", "careful-service");
    await js.publish("jobs.careful.job-1.created", "this is {not json", { headers: h });
    for (let seq = 1; seq <= 5; seq++) {
      await js.publish("jobs.careful.job-1.processing", JSON.stringify({ sequence: String(seq) }));
    }

    await until("the 5 good messages at Svix", () => stack.svix.state.messages("careful").length === 5, {
      timeoutMs: 20_000,
    });
    const dead = await listDeadLetters(nc);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ reason: "malformed", subject: "jobs.careful.job-1.created" });

    const jsm = await jetstreamManager(nc);
    const stored = await jsm.streams.getMessage(DLQ_STREAM, { seq: dead[0]?.seq as number });
    // The only Nats-* header is jobhooks' own de-duplication id for the DLQ publish.
    const names = [...(stored?.header ?? [])].map(([k]) => k.toLowerCase());
    expect(names.filter((n) => n.startsWith("nats-"))).toEqual(["nats-msg-id"]);
    expect(stored?.header?.get("Nats-Msg-Id")).toMatch(/^dlq\.\d+$/);
    expect(stored?.header?.get("X-Publisher")).toBe("careful-service");
    expect(new TextDecoder().decode(stored?.data)).toBe("this is {not json");
    // Nothing left behind: the stream holds no unrelayed event.
    await until("the JOBS stream empty", async () => (await jsm.streams.info("JOBS")).state.messages === 0, {
      timeoutMs: 5_000,
    });
  });

  it("a dead letter JetStream still refuses is sent again with only its body, its Content-Type and jobhooks' headers", async () => {
    // A JOBS_DLQ adopted with a tighter message limit than ours: the copy with the publisher's
    // (large) headers no longer fits, the bare body does.
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(DLQ_STREAM);
    await jsm.streams.update(DLQ_STREAM, { ...info.config, max_msg_size: 8 * 1024 });
    try {
      const js = jetstream(nc);
      const h = natsHeaders();
      h.set("X-Large-Trace", "t".repeat(16 * 1024));
      h.set("Content-Type", "application/json");
      await js.publish("jobs.tight.job-1.created", "still {not json", { headers: h });
      await js.publish("jobs.tight.job-1.completed", "{}");

      await until("the good message at Svix", () => stack.svix.state.messages("tight").length === 1, {
        timeoutMs: 20_000,
      });
      const dead = (await listDeadLetters(nc)).filter((d) => d.subject === "jobs.tight.job-1.created");
      expect(dead).toHaveLength(1);
      expect(dead[0]?.reason).toBe("malformed");
      expect(dead[0]?.detail).toMatch(/original headers dropped/);
      const stored = await jsm.streams.getMessage(DLQ_STREAM, { seq: dead[0]?.seq as number });
      expect(new TextDecoder().decode(stored?.data)).toBe("still {not json");
      const names = [...(stored?.header ?? [])].map(([k]) => k);
      expect(names.filter((k) => !k.startsWith("Jobhooks-")).sort()).toEqual(["Content-Type", "Nats-Msg-Id"]);
      // `dlq replay` reads the body by it.
      expect(stored?.header?.get("Content-Type")).toBe("application/json");
    } finally {
      await jsm.streams.update(DLQ_STREAM, { ...info.config });
    }
  });
});
