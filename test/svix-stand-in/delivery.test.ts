import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type Svix, Webhook } from "svix";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  SVIX_RETRY_SCHEDULE_SECONDS,
  type SvixStandIn,
  startSvixStandIn,
} from "../../src/local/svix-stand-in/index.js";
import { until } from "../support/poll.js";
import { loadOpenApiContract } from "./openapi-contract.js";
import { sdkFor, startWebhookReceiver, type WebhookReceiver } from "./support.js";

// Deliveries to real loopback receivers: signatures, filters, custom headers, retries.

/** Svix's whole schedule (about 27.6 h) becomes about 1 s. */
const TIME_SCALE = 0.00001;

describe("delivery to endpoints", () => {
  let standIn: SvixStandIn;
  let svix: Svix;
  const receivers: WebhookReceiver[] = [];
  let appCount = 0;

  async function receiverFor(): Promise<WebhookReceiver> {
    const receiver = await startWebhookReceiver();
    receivers.push(receiver);
    return receiver;
  }

  /** A fresh app per test, so deliveries of one test never reach another's endpoints. */
  async function freshApp(): Promise<string> {
    const uid = `tenant-${++appCount}`;
    await svix.application.getOrCreate({ name: uid, uid });
    return uid;
  }

  beforeAll(async () => {
    standIn = await startSvixStandIn({ timeScale: TIME_SCALE });
    svix = sdkFor(standIn);
  });

  afterEach(() => {
    expect(loadOpenApiContract().problems(standIn.state.requests())).toEqual([]);
    standIn.state.clearRequests();
  });

  afterAll(async () => {
    await Promise.all(receivers.map((r) => r.close()));
    await standIn?.close();
  });

  it("delivers the payload as the body, signed so that the svix SDK's Webhook.verify accepts it", async () => {
    const app = await freshApp();
    const receiver = await receiverFor();
    const endpoint = await svix.endpoint.create(app, { url: `${receiver.url}/signed` });
    const { key } = await svix.endpoint.getSecret(app, endpoint.id);
    const payload = {
      type: "job.completed",
      data: { job_id: "job_1", result: { pages: 12 }, note: "ünïcödé" },
    };
    const msg = await svix.message.create(app, {
      eventType: "job.completed",
      eventId: "job_1.completed",
      payload,
    });
    const [delivery] = await until("the delivery", () => receiver.received.length === 1 && receiver.received);
    expect(JSON.parse(delivery?.rawBody ?? "")).toEqual(payload);
    const headers = delivery?.headers as Record<string, string>;
    expect(headers["webhook-id"]).toBe(msg.id);
    expect(headers["svix-id"]).toBe(msg.id);
    expect(headers["svix-signature"]).toBe(headers["webhook-signature"]);
    expect(() => new Webhook(key).verify(delivery?.rawBody ?? "", headers)).not.toThrow();
  });

  it("sends an endpoint's custom headers with every delivery", async () => {
    const app = await freshApp();
    const receiver = await receiverFor();
    const endpoint = await svix.endpoint.create(app, {
      url: receiver.url,
      headers: { "X-From-Create": "1" },
    });
    await svix.endpoint.setHeaders(app, endpoint.id, {
      headers: { "X-Tenant": app, Authorization: "Bearer abc" },
    });
    await svix.endpoint.patchHeaders(app, endpoint.id, { headers: { "X-Extra": "yes" } });
    await svix.message.create(app, { eventType: "job.created", payload: {} });
    const [delivery] = await until("the delivery", () => receiver.received.length === 1 && receiver.received);
    expect(delivery?.headers).toMatchObject({
      "x-tenant": app,
      authorization: "Bearer abc",
      "x-extra": "yes",
    });
    expect(delivery?.headers["x-from-create"]).toBeUndefined();
  });

  it("delivers to an endpoint only the event types it filters on", async () => {
    const app = await freshApp();
    const receiver = await receiverFor();
    await svix.endpoint.create(app, { url: `${receiver.url}/completed-only`, eventTypes: ["job.completed"] });
    await svix.endpoint.create(app, { url: `${receiver.url}/everything` });
    for (const eventType of ["job.created", "job.completed", "job.failed"]) {
      await svix.message.create(app, { eventType, payload: { type: eventType } });
    }
    await until("four deliveries", () => receiver.received.length === 4);
    const typesAt = (path: string) =>
      receiver.received
        .filter((r) => r.path === path)
        .map((r) => (JSON.parse(r.rawBody) as { type: string }).type);
    expect(typesAt("/completed-only")).toEqual(["job.completed"]);
    expect(typesAt("/everything").sort()).toEqual(["job.completed", "job.created", "job.failed"]);
  });

  it("delivers to an endpoint with channels only messages on one of them, and nothing to a disabled one", async () => {
    const app = await freshApp();
    const receiver = await receiverFor();
    await svix.endpoint.create(app, { url: `${receiver.url}/project-1`, channels: ["project-1"] });
    await svix.endpoint.create(app, { url: `${receiver.url}/disabled`, disabled: true });
    await svix.message.create(app, { eventType: "job.created", channels: ["project-2"], payload: { n: 1 } });
    await svix.message.create(app, {
      eventType: "job.created",
      channels: ["project-1", "project-3"],
      payload: { n: 2 },
    });
    await svix.message.create(app, { eventType: "job.created", payload: { n: 3 } });
    await until(
      "deliveries",
      () => receiver.received.length === 1 && standIn.state.pendingDeliveries() === 0,
    );
    expect(receiver.received.map((r) => [r.path, JSON.parse(r.rawBody)])).toEqual([["/project-1", { n: 2 }]]);
  });

  it("retries a failing endpoint on Svix's schedule, scaled, and logs every attempt", async () => {
    const app = await freshApp();
    const receiver = await receiverFor();
    receiver.respondWith(500);
    const endpoint = await svix.endpoint.create(app, { url: receiver.url });
    const exhaustedBefore = standIn.state.stats().deliveries.exhausted;
    const msg = await svix.message.create(app, { eventType: "job.failed", payload: {} });
    const attempts = SVIX_RETRY_SCHEDULE_SECONDS.length;
    await until("the last attempt", () => standIn.state.stats().deliveries.exhausted > exhaustedBefore, {
      timeoutMs: 20_000,
    });
    expect(receiver.received).toHaveLength(attempts);
    for (let i = 1; i < attempts; i++) {
      const gap = (receiver.received[i]?.at ?? 0) - (receiver.received[i - 1]?.at ?? 0);
      expect(gap).toBeGreaterThanOrEqual(
        Math.floor((SVIX_RETRY_SCHEDULE_SECONDS[i] ?? 0) * 1000 * TIME_SCALE) - 2,
      );
    }
    const logged = await svix.messageAttempt.listByMsg(app, msg.id, { limit: 250 });
    expect(logged.data).toHaveLength(attempts);
    for (const attempt of logged.data) {
      expect(attempt).toMatchObject({
        endpointId: endpoint.id,
        responseStatusCode: 500,
        status: 2,
        triggerType: 0,
      });
      expect(attempt.response).toBe("failing on purpose with 500");
    }
    expect((await svix.messageAttempt.listByEndpoint(app, endpoint.id)).data).toHaveLength(attempts);
  });

  it("stops retrying once the endpoint answers 2xx", async () => {
    const app = await freshApp();
    const receiver = await receiverFor();
    receiver.respondWith((index) => (index < 2 ? 503 : 200));
    await svix.endpoint.create(app, { url: receiver.url });
    const msg = await svix.message.create(app, { eventType: "job.failed", payload: {} });
    await until("a success", () => standIn.state.attempts({ msgId: msg.id }).some((a) => a.status === 0));
    expect(standIn.state.attempts({ msgId: msg.id }).map((a) => a.responseStatusCode)).toEqual([
      503, 503, 200,
    ]);
    expect(standIn.state.pendingDeliveries()).toBe(0);
  });

  it("signs with both secrets during a rotation's grace period and with the new one only without grace", async () => {
    const app = await freshApp();
    const receiver = await receiverFor();
    const endpoint = await svix.endpoint.create(app, { url: receiver.url });
    const oldKey = (await svix.endpoint.getSecret(app, endpoint.id)).key;
    // 7 days scaled: about 6 s, far longer than this test needs.
    await svix.endpoint.rotateSecret(app, endpoint.id, { gracePeriodSeconds: 604_800 });
    const newKey = (await svix.endpoint.getSecret(app, endpoint.id)).key;
    await svix.message.create(app, { eventType: "job.created", payload: { during: true } });
    const [during] = await until("the delivery", () => receiver.received.length === 1 && receiver.received);
    const duringHeaders = during?.headers as Record<string, string>;
    expect(duringHeaders["webhook-signature"]?.split(" ")).toHaveLength(2);
    expect(() => new Webhook(oldKey).verify(during?.rawBody ?? "", duringHeaders)).not.toThrow();
    expect(() => new Webhook(newKey).verify(during?.rawBody ?? "", duringHeaders)).not.toThrow();

    await svix.endpoint.rotateSecret(app, endpoint.id, { gracePeriodSeconds: 0 });
    const newestKey = (await svix.endpoint.getSecret(app, endpoint.id)).key;
    await svix.message.create(app, { eventType: "job.created", payload: { during: false } });
    const after = (await until("the delivery", () => receiver.received.length === 2 && receiver.received))[1];
    const afterHeaders = after?.headers as Record<string, string>;
    expect(afterHeaders["webhook-signature"]?.split(" ")).toHaveLength(1);
    expect(() => new Webhook(newestKey).verify(after?.rawBody ?? "", afterHeaders)).not.toThrow();
    expect(() => new Webhook(newKey).verify(after?.rawBody ?? "", afterHeaders)).toThrow();
  });
});

describe("an endpoint that never answers", () => {
  let hanging: Server;
  let standIn: SvixStandIn;

  beforeAll(async () => {
    hanging = createServer(() => {});
    await new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve));
    standIn = await startSvixStandIn({ timeScale: 1, attemptTimeoutMs: 300 });
  });

  afterAll(async () => {
    await standIn?.close();
    hanging.closeAllConnections();
    await new Promise<void>((resolve) => hanging.close(() => resolve()));
  });

  it("is recorded as a failed attempt without a status code once the attempt times out", async () => {
    const svix = sdkFor(standIn);
    await svix.application.getOrCreate({ name: "t", uid: "t" });
    const { port } = hanging.address() as AddressInfo;
    await svix.endpoint.create("t", { url: `http://127.0.0.1:${port}/never` });
    const msg = await svix.message.create("t", { eventType: "job.created", payload: {} });
    const [attempt] = await until("the attempt record", () => {
      const attempts = standIn.state.attempts({ msgId: msg.id });
      return attempts.length > 0 && attempts;
    });
    expect(attempt).toMatchObject({ responseStatusCode: 0, status: 2, response: "Request timed out" });
    expect(attempt?.responseDurationMs).toBeGreaterThanOrEqual(250);
  });
});
