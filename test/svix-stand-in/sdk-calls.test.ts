import { ApiException, AppPortalCapability, type Svix } from "svix";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { until } from "../support/poll.js";
import { loadOpenApiContract } from "./openapi-contract.js";
import { rejectionOf, sdkFor, startWebhookReceiver, type WebhookReceiver } from "./support.js";

// Every svix SDK call jobhooks makes, against the stand-in, with the answers held to openapi.json.

const JOB_COMPLETED_SCHEMA = {
  "1": {
    type: "object",
    required: ["type", "timestamp", "data"],
    properties: { type: { const: "job.completed" }, timestamp: { type: "string" }, data: { type: "object" } },
    examples: [
      {
        type: "job.completed",
        timestamp: "2026-11-27T03:30:00.000Z",
        data: { job_id: "job_123", status: "completed", sequence: 3 },
      },
    ],
  },
};

describe("the official svix SDK against the stand-in", () => {
  let standIn: SvixStandIn;
  let svix: Svix;
  let receiver: WebhookReceiver;
  const contract = loadOpenApiContract();

  beforeAll(async () => {
    standIn = await startSvixStandIn({ timeScale: 0.001 });
    svix = sdkFor(standIn);
    receiver = await startWebhookReceiver();
  });

  afterAll(async () => {
    await receiver?.close();
    await standIn?.close();
  });

  afterEach(() => {
    expect(contract.problems(standIn.state.requests())).toEqual([]);
    standIn.state.clearRequests();
  });

  it("getOrCreate creates an application once and returns the same one for the same uid", async () => {
    const first = await svix.application.getOrCreate({ name: "Tenant A", uid: "tenant-a" });
    const again = await svix.application.getOrCreate({ name: "Tenant A", uid: "tenant-a" });
    expect(again.id).toBe(first.id);
    expect(first.id).toMatch(/^app_[A-Za-z0-9]{27}$/);
    expect(first.uid).toBe("tenant-a");
    expect((await svix.application.get("tenant-a")).id).toBe(first.id);
    expect((await svix.application.list()).data.map((a) => a.uid)).toContain("tenant-a");
  });

  it("creating an application whose uid exists fails with 409 without get_if_exists", async () => {
    await svix.application.getOrCreate({ name: "Tenant B", uid: "tenant-b" });
    const error = await rejectionOf(svix.application.create({ name: "Tenant B", uid: "tenant-b" }));
    expect(error).toBeInstanceOf(ApiException);
    expect((error as ApiException<{ code: string }>).code).toBe(409);
  });

  it("upsert creates an application under the uid in the path and later updates it", async () => {
    const created = await svix.application.upsert("tenant-upsert", { name: "First name" });
    const updated = await svix.application.upsert("tenant-upsert", { name: "Second name" });
    expect(updated.id).toBe(created.id);
    expect(updated).toMatchObject({ uid: "tenant-upsert", name: "Second name" });
  });

  it("lists page through applications with limit and iterator until done", async () => {
    const seen: string[] = [];
    let iterator: string | undefined;
    for (let page = 0; page < 20; page++) {
      const listed = await svix.application.list({ limit: 1, iterator });
      seen.push(...listed.data.map((a) => a.id));
      if (listed.done) break;
      iterator = listed.iterator ?? undefined;
    }
    expect(seen).toEqual(standIn.state.apps().map((a) => a.id));
  });

  it("message.create stores the event with its type, id and payload and answers 202", async () => {
    const out = await svix.message.create(
      "tenant-a",
      {
        eventType: "job.completed",
        eventId: "job_1.completed",
        payload: { type: "job.completed", data: { job_id: "job_1" } },
      },
      { idempotencyKey: "job_1.completed" },
    );
    expect(out.id).toMatch(/^msg_/);
    expect(out.eventId).toBe("job_1.completed");
    const stored = standIn.state.messages("tenant-a").find((m) => m.id === out.id);
    expect(stored).toMatchObject({
      eventType: "job.completed",
      eventId: "job_1.completed",
      appUid: "tenant-a",
    });
    expect(stored?.payload).toEqual({ type: "job.completed", data: { job_id: "job_1" } });
    expect(standIn.state.requests().at(-1)?.status).toBe(202);
  });

  it("a repeated eventId in the same app is refused with 409 and stored once", async () => {
    const message = { eventType: "job.created", eventId: "job_2.created", payload: { n: 1 } };
    await svix.message.create("tenant-a", message);
    const error = await rejectionOf(svix.message.create("tenant-a", message));
    expect((error as ApiException<{ code: string }>).code).toBe(409);
    expect(standIn.state.messages("tenant-a").filter((m) => m.eventId === "job_2.created")).toHaveLength(1);
    expect(standIn.state.stats().duplicatesRefused).toBeGreaterThanOrEqual(1);
  });

  it("the same eventId in another app is a different message", async () => {
    await svix.application.getOrCreate({ name: "Tenant C", uid: "tenant-c" });
    await svix.message.create("tenant-c", {
      eventType: "job.created",
      eventId: "job_2.created",
      payload: {},
    });
    expect(standIn.state.messages("tenant-c").map((m) => m.eventId)).toEqual(["job_2.created"]);
  });

  it("a repeated idempotency key replays the first answer and creates nothing new", async () => {
    const first = await svix.message.create(
      "tenant-a",
      { eventType: "job.failed", eventId: "job_3.failed", payload: {} },
      { idempotencyKey: "key-job_3" },
    );
    const replay = await svix.message.create(
      "tenant-a",
      { eventType: "job.failed", eventId: "job_3.failed", payload: {} },
      { idempotencyKey: "key-job_3" },
    );
    expect(replay.id).toBe(first.id);
    expect(standIn.state.messages("tenant-a").filter((m) => m.eventId === "job_3.failed")).toHaveLength(1);
    expect(standIn.state.stats().idempotentReplays).toBeGreaterThanOrEqual(1);
  });

  it("an inline application creates the app a message names when it is missing", async () => {
    const out = await svix.message.create("tenant-new", {
      eventType: "job.created",
      eventId: "job_4.created",
      payload: {},
      application: { name: "Tenant New", uid: "tenant-new" },
    });
    expect((await svix.application.get("tenant-new")).name).toBe("Tenant New");
    expect(standIn.state.messages("tenant-new").map((m) => m.id)).toEqual([out.id]);
  });

  it("a message for an unknown app without an inline application fails with 404", async () => {
    const error = await rejectionOf(
      svix.message.create("tenant-nobody", { eventType: "job.created", payload: {} }),
    );
    expect((error as ApiException<{ code: string }>).code).toBe(404);
    expect((error as ApiException<{ code: string }>).body.code).toBe("not_found");
  });

  it("message.get finds a message by its eventId as well as by its id", async () => {
    const out = await svix.message.create("tenant-a", {
      eventType: "job.processing",
      eventId: "job_5.processing",
      payload: { a: 1 },
    });
    expect((await svix.message.get("tenant-a", "job_5.processing")).id).toBe(out.id);
    const byId = await svix.message.get("tenant-a", out.id, { withContent: true });
    expect(byId.payload).toEqual({ a: 1 });
    const error = await rejectionOf(svix.message.get("tenant-a", "job_missing.processing"));
    expect((error as ApiException<unknown>).code).toBe(404);
  });

  it("app-portal-access returns a stand-in portal url and a token, creating an inline app", async () => {
    const access = await svix.authentication.appPortalAccess("tenant-portal", {
      application: { name: "Portal Tenant", uid: "tenant-portal" },
      expiry: 3600,
      featureFlags: ["beta"],
      capabilities: [AppPortalCapability.ViewBase],
      sessionId: "session-1",
    });
    expect(access.url.startsWith(`${standIn.url}/portal/`)).toBe(true);
    expect(access.token).toMatch(/^appsk_/);
    expect(standIn.state.apps().some((a) => a.uid === "tenant-portal")).toBe(true);
  });

  it("event types are upserted idempotently, read back with their schemas and listed", async () => {
    const created = await svix.eventType.upsert("job.completed", {
      description: "A job completed",
      schemas: JOB_COMPLETED_SCHEMA,
    });
    const updated = await svix.eventType.upsert("job.completed", {
      description: "A job finished successfully",
      schemas: JOB_COMPLETED_SCHEMA,
    });
    expect(updated.createdAt).toEqual(created.createdAt);
    const read = await svix.eventType.get("job.completed");
    expect(read.description).toBe("A job finished successfully");
    expect(read.schemas).toEqual(JOB_COMPLETED_SCHEMA);
    const listed = await svix.eventType.list({ withContent: true });
    expect(listed.data.find((e) => e.name === "job.completed")?.schemas).toEqual(JOB_COMPLETED_SCHEMA);
    const error = await rejectionOf(svix.eventType.create({ name: "job.completed", description: "again" }));
    expect((error as ApiException<unknown>).code).toBe(409);
  });

  it("endpoints are created, listed and configured with headers and a rotatable secret", async () => {
    const endpoint = await svix.endpoint.create("tenant-a", {
      url: `${receiver.url}/hooks`,
      description: "receiver",
      eventTypes: ["job.completed"],
      channels: ["project-1"],
    });
    expect(endpoint.id).toMatch(/^ep_[A-Za-z0-9]{27}$/);
    expect((await svix.endpoint.list("tenant-a")).data.map((e) => e.id)).toContain(endpoint.id);
    await svix.endpoint.setHeaders("tenant-a", endpoint.id, {
      headers: { "X-Tenant": "a", Authorization: "Bearer x" },
    });
    const headers = await svix.endpoint.getHeaders("tenant-a", endpoint.id);
    expect(headers).toEqual({ headers: { "X-Tenant": "a" }, sensitive: ["Authorization"] });
    const before = await svix.endpoint.getSecret("tenant-a", endpoint.id);
    expect(before.key).toMatch(/^whsec_[A-Za-z0-9+/=]{32}$/);
    await svix.endpoint.rotateSecret("tenant-a", endpoint.id, {});
    const after = await svix.endpoint.getSecret("tenant-a", endpoint.id);
    expect(after.key).not.toBe(before.key);
    const patched = await svix.endpoint.patch("tenant-a", endpoint.id, { disabled: true });
    expect(patched.disabled).toBe(true);
    await svix.endpoint.delete("tenant-a", endpoint.id);
    expect(
      ((await rejectionOf(svix.endpoint.get("tenant-a", endpoint.id))) as ApiException<unknown>).code,
    ).toBe(404);
  });

  it("send-example delivers the event type's example and the attempt is listed by endpoint and by message", async () => {
    await svix.application.getOrCreate({ name: "Example Tenant", uid: "tenant-example" });
    const endpoint = await svix.endpoint.create("tenant-example", { url: `${receiver.url}/example` });
    const msg = await svix.endpoint.sendExample("tenant-example", endpoint.id, {
      eventType: "job.completed",
    });
    expect(msg.eventType).toBe("job.completed");
    const delivered = await until("the example", () => receiver.received.find((r) => r.path === "/example"));
    expect(JSON.parse(delivered.rawBody)).toEqual(JOB_COMPLETED_SCHEMA["1"].examples[0]);
    await until("the attempt record", () => standIn.state.attempts({ msgId: msg.id }).length === 1);
    const byEndpoint = await svix.messageAttempt.listByEndpoint("tenant-example", endpoint.id);
    expect(byEndpoint.data.map((a) => [a.msgId, a.responseStatusCode, a.status])).toEqual([[msg.id, 204, 0]]);
    const byMsg = await svix.messageAttempt.listByMsg("tenant-example", msg.id);
    expect(byMsg.data.map((a) => a.endpointId)).toEqual([endpoint.id]);
  });

  it("a request without the API token is refused with 401", async () => {
    const stranger = sdkFor({ ...standIn, token: "testsk_wrong" });
    const error = await rejectionOf(stranger.application.list());
    expect((error as ApiException<{ code: string }>).code).toBe(401);
    expect((error as ApiException<{ code: string }>).body.code).toBe("authentication_failed");
  });
});
