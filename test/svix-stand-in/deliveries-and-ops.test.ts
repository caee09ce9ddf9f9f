import { type ApiException, AppPortalCapability, MessageStatus, type Svix, Webhook } from "svix";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { until } from "../support/poll.js";
import { loadOpenApiContract } from "./openapi-contract.js";
import { rejectionOf, sdkFor, startWebhookReceiver, type WebhookReceiver } from "./support.js";

// What ListJobDeliveries, RevokePortalSessions and the operational-webhook route rely on, against
// the stand-in, with every answer and operational payload held to openapi.json.

const contract = loadOpenApiContract();
const OPS_SECRET = `whsec_${Buffer.from("operational-webhook-test-secret!").toString("base64")}`;

describe("deliveries, revocation and capabilities in the stand-in", () => {
  let standIn: SvixStandIn;
  let svix: Svix;
  let ok: WebhookReceiver;
  let failing: WebhookReceiver;

  beforeAll(async () => {
    standIn = await startSvixStandIn({ timeScale: 0.001 });
    svix = sdkFor(standIn);
    ok = await startWebhookReceiver();
    failing = await startWebhookReceiver();
    failing.respondWith(500);
  });

  afterAll(async () => {
    await ok?.close();
    await failing?.close();
    await standIn?.close();
  });

  afterEach(() => {
    expect(contract.problems(standIn.state.requests())).toEqual([]);
    standIn.state.clearRequests();
  });

  it("list-attempted-destinations shows each endpoint's status, and the next attempt while retrying", async () => {
    await svix.application.getOrCreate({ name: "dest", uid: "dest" });
    const good = await svix.endpoint.create("dest", { url: ok.url });
    const bad = await svix.endpoint.create("dest", { url: failing.url });
    const msg = await svix.message.create("dest", {
      eventType: "job.completed",
      eventId: "j1.completed",
      payload: {},
    });
    await until("both first attempts", () => standIn.state.attempts({ msgId: msg.id }).length >= 2);
    const listed = await svix.messageAttempt.listAttemptedDestinations("dest", "j1.completed");
    const byId = new Map(listed.data.map((d) => [d.id, d]));
    expect(byId.get(good.id)?.status).toBe(MessageStatus.Success);
    expect(byId.get(good.id)?.nextAttempt ?? null).toBeNull();
    // Failed once, retried on Svix's schedule (5 s scaled): still pending, with a next attempt.
    expect([MessageStatus.Pending, MessageStatus.Sending]).toContain(byId.get(bad.id)?.status);
    const attempts = await svix.messageAttempt.listByMsg("dest", msg.id);
    expect(attempts.data.find((a) => a.endpointId === bad.id)?.responseStatusCode).toBe(500);
  });

  it("message.list with a tag lists only the messages carrying it", async () => {
    await svix.application.getOrCreate({ name: "tags", uid: "tags" });
    await svix.message.create("tags", {
      eventType: "job.created",
      eventId: "t1",
      payload: {},
      tags: ["job.a"],
    });
    await svix.message.create("tags", {
      eventType: "job.created",
      eventId: "t2",
      payload: {},
      tags: ["job.b"],
    });
    await svix.message.create("tags", {
      eventType: "job.completed",
      eventId: "t3",
      payload: {},
      tags: ["job.a"],
    });
    const listed = await svix.message.list("tags", { tag: "job.a" });
    expect(listed.data.map((m) => m.eventId).sort()).toEqual(["t1", "t3"]);
  });

  it("expire-all ends the named portal sessions at once and leaves the others working", async () => {
    await svix.application.getOrCreate({ name: "rev", uid: "rev" });
    const a = await svix.authentication.appPortalAccess("rev", { sessionId: "user_a" });
    const b = await svix.authentication.appPortalAccess("rev", { sessionId: "user_b" });
    await svix.authentication.expireAll("rev", { expiry: 0, sessionIds: ["user_a"] });
    const asA = sdkFor({ url: standIn.url, token: a.token });
    const asB = sdkFor({ url: standIn.url, token: b.token });
    expect(((await rejectionOf(asA.endpoint.list("rev"))) as ApiException<unknown>).code).toBe(401);
    expect((await asB.endpoint.list("rev")).data).toEqual([]);
    await svix.authentication.expireAll("rev", { expiry: 0 });
    expect(((await rejectionOf(asB.endpoint.list("rev"))) as ApiException<unknown>).code).toBe(401);
    const missing = await rejectionOf(svix.authentication.expireAll("no-such-app", { expiry: 0 }));
    expect((missing as ApiException<unknown>).code).toBe(404);
  });

  it("a portal token does only what its capabilities allow, whatever it sends", async () => {
    await svix.application.getOrCreate({ name: "caps", uid: "caps" });
    const viewer = await svix.authentication.appPortalAccess("caps", {
      capabilities: [AppPortalCapability.ViewBase],
    });
    const editor = await svix.authentication.appPortalAccess("caps", {
      capabilities: [
        AppPortalCapability.ViewBase,
        AppPortalCapability.ManageEndpoint,
        AppPortalCapability.CreateAttempts,
      ],
    });
    const asViewer = sdkFor({ url: standIn.url, token: viewer.token });
    const asEditor = sdkFor({ url: standIn.url, token: editor.token });
    const refused = await rejectionOf(asViewer.endpoint.create("caps", { url: ok.url }));
    expect((refused as ApiException<unknown>).code).toBe(403);
    const created = await asEditor.endpoint.create("caps", { url: ok.url });
    const secret = await rejectionOf(asEditor.endpoint.getSecret("caps", created.id));
    expect((secret as ApiException<unknown>).code).toBe(403);
    const rotate = await rejectionOf(asEditor.endpoint.rotateSecret("caps", created.id, {}));
    expect((rotate as ApiException<unknown>).code).toBe(403);
    expect((await svix.endpoint.getSecret("caps", created.id)).key).toMatch(/^whsec_/);
  });
});

describe("operational webhooks from the stand-in", () => {
  let standIn: SvixStandIn;
  let svix: Svix;
  let ops: WebhookReceiver;
  let endpoint: WebhookReceiver;

  beforeAll(async () => {
    ops = await startWebhookReceiver();
    endpoint = await startWebhookReceiver();
    endpoint.respondWith(503);
    // The whole 8-try schedule in about a second.
    standIn = await startSvixStandIn({
      timeScale: 0.00001,
      operationalWebhook: { url: `${ops.url}/ops`, secret: OPS_SECRET },
    });
    svix = sdkFor(standIn);
  });

  afterAll(async () => {
    await standIn?.close();
    await ops?.close();
    await endpoint?.close();
  });

  const received = (type: string) =>
    ops.received
      .map((r) => JSON.parse(r.rawBody) as { type: string; data: Record<string, unknown> })
      .filter((b) => b.type === type);

  it("a failing endpoint brings failing at the fourth failure, then exhausted and endpoint.disabled, signed and as the spec shapes them", async () => {
    await svix.application.getOrCreate({ name: "ops", uid: "ops-tenant" });
    const ep = await svix.endpoint.create("ops-tenant", { url: endpoint.url });
    const msg = await svix.message.create("ops-tenant", {
      eventType: "job.failed",
      eventId: "j9.failed",
      payload: {},
    });
    await until("endpoint.disabled", () => received("endpoint.disabled").length > 0, { timeoutMs: 20_000 });
    expect(received("message.attempt.failing")).toHaveLength(1);
    const [exhausted] = received("message.attempt.exhausted");
    expect(exhausted?.data).toMatchObject({
      appUid: "ops-tenant",
      msgId: msg.id,
      msgEventId: "j9.failed",
      endpointId: ep.id,
      lastAttempt: { responseStatusCode: 503 },
    });
    expect(received("endpoint.disabled")[0]?.data).toMatchObject({ endpointId: ep.id, trigger: "automatic" });
    expect((await svix.endpoint.get("ops-tenant", ep.id)).disabled).toBe(true);
    const schemas: Record<string, string> = {
      "endpoint.disabled": "EndpointDisabledEvent",
      "message.attempt.failing": "MessageAttemptFailingEvent",
      "message.attempt.exhausted": "MessageAttemptExhaustedEvent",
    };
    const verifier = new Webhook(OPS_SECRET);
    for (const r of ops.received) {
      const body = JSON.parse(r.rawBody) as { type: string };
      expect(contract.errorsAgainst(schemas[body.type] as string, body)).toEqual([]);
      expect(() => verifier.verify(r.rawBody, r.headers as Record<string, string>)).not.toThrow();
      expect(r.path).toBe("/ops");
    }
  });

  it("an endpoint that recovers after the failing notice brings message.attempt.recovered", async () => {
    const flaky = await startWebhookReceiver();
    try {
      flaky.respondWith((i) => (i < 4 ? 500 : 200));
      await svix.application.getOrCreate({ name: "ops2", uid: "ops-recover" });
      await svix.endpoint.create("ops-recover", { url: flaky.url });
      await svix.message.create("ops-recover", {
        eventType: "job.failed",
        eventId: "j10.failed",
        payload: {},
      });
      await until("recovered", () => received("message.attempt.recovered").length > 0, { timeoutMs: 20_000 });
      const [recovered] = received("message.attempt.recovered");
      expect(recovered?.data).toMatchObject({ appUid: "ops-recover", msgEventId: "j10.failed" });
      expect(contract.errorsAgainst("MessageAttemptRecoveredEvent", recovered)).toEqual([]);
    } finally {
      await flaky.close();
    }
  });
});
