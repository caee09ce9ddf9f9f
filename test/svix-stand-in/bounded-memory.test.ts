import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { until } from "../support/poll.js";
import { sdkFor, startWebhookReceiver, type WebhookReceiver } from "./support.js";

describe("the stand-in's bounded memory", () => {
  let standIn: SvixStandIn;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    standIn = await startSvixStandIn({ maxMessages: 5, maxAttempts: 3, requestLogSize: 4 });
    receiver = await startWebhookReceiver();
  });

  afterAll(async () => {
    await receiver?.close();
    await standIn?.close();
  });

  it("keeps the newest messages and attempts, evicting the oldest first", async () => {
    const svix = sdkFor(standIn);
    await svix.application.getOrCreate({ name: "t", uid: "t" });
    await svix.endpoint.create("t", { url: receiver.url });
    for (let i = 1; i <= 8; i++)
      await svix.message.create("t", { eventType: "job.created", eventId: `e${i}`, payload: {} });
    await until(
      "deliveries",
      () => receiver.received.length === 8 && standIn.state.pendingDeliveries() === 0,
    );

    expect(standIn.state.messages().map((m) => m.eventId)).toEqual(["e4", "e5", "e6", "e7", "e8"]);
    await expect(svix.message.get("t", "e1")).rejects.toMatchObject({ code: 404 });
    expect(standIn.state.attempts()).toHaveLength(3);
    expect(standIn.state.requests()).toHaveLength(4);
    expect(standIn.state.stats()).toMatchObject({
      messagesStored: 5,
      messagesEvicted: 3,
      attemptsStored: 3,
      attemptsEvicted: 5,
    });
  });
});
