import { createHmac } from "node:crypto";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { connect, type Msg, type NatsConnection } from "@nats-io/transport-node";
import type { Svix } from "svix";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  EndpointDeliveryStatus,
  EventLocation,
  JobStatus,
  PortalRole,
  WebhookService,
} from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { freePort } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { openApiKeyStore } from "../../src/nats/api-key-store.js";
import { until } from "../support/poll.js";
import { type RelayStack, startRelayStack } from "../support/relay-stack.js";
import { failure } from "../support/rpc-errors.js";
import { SERVICE_TOKEN } from "../support/service.js";
import { sdkFor, startWebhookReceiver, type WebhookReceiver } from "../svix-stand-in/support.js";

// "Did the customer get it?" end to end: the service with its relay, the Svix stand-in delivering
// to two real endpoints on loopback (one answers 200, one 500), Svix's operational webhooks into
// the service and out on NATS, and portal roles and revocation as a customer would meet them.

const OPS_SECRET = `whsec_${Buffer.from("jobhooks-ops-secret-for-tests-32b").toString("base64")}`;
const service = { authorization: `Bearer ${SERVICE_TOKEN}` };
const TENANT = "acme";
const OTHER = "globex";

let stack: RelayStack;
let opsStandIn: SvixStandIn;
let nc: NatsConnection;
let svix: Svix;
let ok: WebhookReceiver;
let failing: WebhookReceiver;
let acmeKey: string;
let globexKey: string;
const opsSeen: Msg[] = [];

const client = () => createClient(WebhookService, createGrpcTransport({ baseUrl: stack.svc.url }));
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

async function publish(tenantId: string, jobId: string, status: JobStatus, extra: object = {}) {
  return client().publishJobEvent({ event: { tenantId, jobId, status, ...extra } }, { headers: service });
}

/** TENANT's events of a job as ListJobDeliveries lists them, once the first one is at `location`. */
function eventsOnceFirstIs(jobId: string, location: EventLocation) {
  return until(
    `${jobId}'s first event listed as ${EventLocation[location]}`,
    async () => {
      const res = await client().listJobDeliveries({ tenantId: TENANT, jobId }, { headers: service });
      return res.events[0]?.location === location ? res.events : undefined;
    },
    { timeoutMs: 20_000 },
  );
}

beforeAll(async () => {
  // The service's port is chosen first so a second stand-in can send it operational webhooks.
  const port = await freePort();
  stack = await startRelayStack({
    svix: { deliver: true, timeScale: 0.001 },
    env: {
      JOBHOOKS_ADDR: `127.0.0.1:${port}`,
      JOBHOOKS_SVIX_OPERATIONAL_SECRET: OPS_SECRET,
      // The tests poll; the per-caller limit has its own test.
      JOBHOOKS_PORTAL_RATE_PER_MIN: "100000",
      JOBHOOKS_PORTAL_BURST: "10000",
    },
  });
  // Its whole retry schedule in about a second, so "exhausted" and "endpoint.disabled" come quickly.
  opsStandIn = await startSvixStandIn({
    timeScale: 0.00001,
    operationalWebhook: { url: `${stack.svc.url}/svix/operational-webhooks`, secret: OPS_SECRET },
  });
  nc = await connect({ servers: stack.nats.url });
  const sub = nc.subscribe("jobhooks.ops.>");
  void (async () => {
    for await (const m of sub) opsSeen.push(m);
  })();
  await nc.flush();
  const keys = await openApiKeyStore(nc, { replicas: 1 });
  acmeKey = (await keys.create(TENANT)).key;
  globexKey = (await keys.create(OTHER)).key;
  svix = sdkFor(stack.svix);
  ok = await startWebhookReceiver();
  failing = await startWebhookReceiver();
  ok.respondWith(200);
  failing.respondWith(500);
  for (const t of [TENANT, OTHER]) await svix.application.getOrCreate({ name: t, uid: t });
  await svix.endpoint.create(TENANT, { url: `${ok.url}/ok` });
  await svix.endpoint.create(TENANT, { url: `${failing.url}/failing` });
});

afterAll(async () => {
  await nc?.close();
  await opsStandIn?.close();
  await stack?.stop();
  await ok?.close();
  await failing?.close();
});

describe("ListJobDeliveries", () => {
  it("lists each event of a job in order with its delivery to both endpoints and their HTTP answers", async () => {
    const created = await publish(TENANT, "job_123", JobStatus.CREATED);
    const completed = await publish(TENANT, "job_123", JobStatus.COMPLETED, { result: { pages: 12 } });
    // Both events reached both endpoints at least once.
    await until(
      "first attempts of both events at both endpoints",
      () =>
        stack.svix.state.messages(TENANT).filter((m) => m.eventId?.startsWith("job_123.")).length === 2 &&
        stack.svix.state.attempts().filter((a) => a.url.startsWith(ok.url)).length >= 2 &&
        stack.svix.state.attempts().filter((a) => a.url.startsWith(failing.url)).length >= 2,
      { timeoutMs: 20_000 },
    );

    const res = await client().listJobDeliveries({ jobId: "job_123" }, { headers: bearer(acmeKey) });
    expect(res.events.map((e) => [e.eventId, e.status, e.location])).toEqual([
      [created.eventId, JobStatus.CREATED, EventLocation.RELAYED],
      [completed.eventId, JobStatus.COMPLETED, EventLocation.RELAYED],
    ]);
    expect(res.truncated).toBe(false);
    for (const event of res.events) {
      const msg = stack.svix.state.messages(TENANT).find((m) => m.eventId === event.eventId);
      expect(event.svixMessageId).toBe(msg?.id);
      const byUrl = new Map(event.endpoints.map((e) => [e.url, e]));
      expect(byUrl.get(`${ok.url}/ok`)).toMatchObject({
        status: EndpointDeliveryStatus.SUCCEEDED,
        lastResponseStatus: 200,
        attemptCount: 1,
      });
      expect(byUrl.get(`${ok.url}/ok`)?.lastAttemptAt).toBeDefined();
      const bad = byUrl.get(`${failing.url}/failing`);
      // Svix keeps retrying on its schedule (scaled): failing, with a next attempt, unless spent.
      expect([EndpointDeliveryStatus.FAILING, EndpointDeliveryStatus.FAILED]).toContain(bad?.status);
      expect(bad?.lastResponseStatus).toBe(500);
      expect(bad?.attemptCount).toBeGreaterThanOrEqual(1);
      if (bad?.status === EndpointDeliveryStatus.FAILING) expect(bad.nextAttemptAt).toBeDefined();
    }
  });

  it("shows a dead-lettered event with its reason", async () => {
    // A failed status without an error is invalid: the relay dead-letters it.
    const pub = await connect({ servers: stack.nats.url });
    try {
      await pub.request("jobs.acme.job_dead.failed", JSON.stringify({ event_id: "dead-1" }), {
        timeout: 10_000,
      });
    } finally {
      await pub.close();
    }
    // Listed as waiting until the relay has taken and dead-lettered it.
    const events = await eventsOnceFirstIs("job_dead", EventLocation.DEAD_LETTERED);
    expect(events[0]).toMatchObject({
      eventId: "dead-1",
      status: JobStatus.FAILED,
      location: EventLocation.DEAD_LETTERED,
      deadLetterReason: "invalid",
      svixMessageId: "",
    });
    expect(events[0]?.deadLetterDetail).toMatch(/error/);
  });

  it("finds a relayed event whose id it cannot derive through the job's tag on the Svix message", async () => {
    // A publisher-chosen id and a sequence: neither can be derived from the job id once the event
    // has left NATS, so only the tag the relay puts on the Svix message leads to it.
    await publish(TENANT, "job_tagged", JobStatus.PROCESSING, {
      eventId: "publisher-chosen-7",
      sequence: 7n,
    });
    await until(
      "the relayed message at Svix",
      () => stack.svix.state.messages(TENANT).some((m) => m.eventId === "publisher-chosen-7"),
      { timeoutMs: 20_000 },
    );
    const events = await eventsOnceFirstIs("job_tagged", EventLocation.RELAYED);
    expect(events.map((e) => [e.eventId, e.status, e.location])).toEqual([
      ["publisher-chosen-7", JobStatus.PROCESSING, EventLocation.RELAYED],
    ]);
  });

  it("a job never published answers an empty list", async () => {
    const res = await client().listJobDeliveries(
      { tenantId: TENANT, jobId: "never-seen" },
      { headers: service },
    );
    expect(res.events).toEqual([]);
  });

  it("keeps tenants apart: another tenant's key is refused, and the same job id of another tenant is not shown", async () => {
    const denied = await failure(
      client().listJobDeliveries({ tenantId: TENANT, jobId: "job_123" }, { headers: bearer(globexKey) }),
    );
    expect(denied.code).toBe(Code.PermissionDenied);
    const own = await client().listJobDeliveries({ jobId: "job_123" }, { headers: bearer(globexKey) });
    expect(own.events).toEqual([]);
    const asService = await client().listJobDeliveries(
      { tenantId: TENANT, jobId: "job_123" },
      { headers: service },
    );
    expect(asService.events).toHaveLength(2);
  });

  it("names every bad field at once", async () => {
    const err = await failure(
      client().listJobDeliveries({ tenantId: "", jobId: "a.b" }, { headers: service }),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.message).toContain("tenant_id");
    expect(err.message).toContain("job_id");
  });
});

describe("operational webhooks into jobhooks", () => {
  const url = () => `${stack.svc.url}/svix/operational-webhooks`;
  const body = JSON.stringify({
    type: "message.attempt.exhausted",
    data: {
      appId: "app_2xYlR3ZcNbFEt0ncERvJWjJnY2Y",
      appUid: TENANT,
      msgId: "msg_2xYlR3ZcNbFEt0ncERvJWjJnY2Y",
      endpointId: "ep_2xYlR3ZcNbFEt0ncERvJWjJnY2Y",
      lastAttempt: {
        id: "atmpt_2xYlR3ZcNbFEt0ncERvJWjJnY2Y",
        responseStatusCode: 500,
        timestamp: "2026-11-29T00:00:00Z",
      },
    },
  });
  function signed(
    secret: string,
    timestamp: number,
    msgId = "msg_ops_1",
    payload = body,
  ): Record<string, string> {
    const key = Buffer.from(secret.slice("whsec_".length), "base64");
    const sig = createHmac("sha256", key).update(`${msgId}.${timestamp}.${payload}`).digest("base64");
    return { "webhook-id": msgId, "webhook-timestamp": String(timestamp), "webhook-signature": `v1,${sig}` };
  }
  const now = () => Math.floor(Date.now() / 1000);
  const post = (headers: Record<string, string>, payload = body) =>
    fetch(url(), {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: payload,
    });

  it("a missing, forged or stale signature is refused with 401 and nothing reaches NATS", async () => {
    const before = opsSeen.length;
    const forged = `whsec_${Buffer.from("not-the-secret-not-the-secret-00").toString("base64")}`;
    expect((await post({})).status).toBe(401);
    expect((await post(signed(forged, now()))).status).toBe(401);
    expect((await post(signed(OPS_SECRET, now() - 10 * 60))).status).toBe(401);
    // That nothing arrived is shown by something arriving after it, not by waiting a while: a
    // signed webhook of another type, published on the same server connection, which keeps order.
    const sentinel = JSON.stringify({
      type: "endpoint.enabled",
      data: { appUid: TENANT, endpointId: "ep_x" },
    });
    const sentinelHeaders = signed(OPS_SECRET, now(), "msg_ops_sentinel", sentinel);
    expect((await post(sentinelHeaders, sentinel)).status).toBe(204);
    await until("the signed webhook sent after the refused ones", () => opsSeen.length > before);
    expect(opsSeen.slice(before).map((m) => m.subject)).toEqual([`jobhooks.ops.${TENANT}.endpoint_enabled`]);
    const metrics = await (await fetch(`${stack.svc.url}/metrics`)).text();
    expect(metrics).toMatch(/jobhooks_svix_operational_webhooks_rejected_total\{reason="signature"\} 3/);
  });

  it("a signed one is published on jobhooks.ops.<tenant>.<type> with its original body and counted", async () => {
    const before = opsSeen.length;
    expect((await post(signed(OPS_SECRET, now(), "msg_ops_2"))).status).toBe(204);
    const m = await until("the exhausted attempt on NATS", () =>
      opsSeen.slice(before).find((x) => x.subject.endsWith("message_attempt_exhausted")),
    );
    expect(m.subject).toBe(`jobhooks.ops.${TENANT}.message_attempt_exhausted`);
    expect(m.string()).toBe(body);
    const metrics = await (await fetch(`${stack.svc.url}/metrics`)).text();
    expect(metrics).toMatch(/jobhooks_svix_operational_webhooks_total\{type="message.attempt.exhausted"\} 1/);
  });

  it("a replayed svix-id is acknowledged and published once, with the id as Nats-Msg-Id and Svix-Id", async () => {
    const before = opsSeen.length;
    const replay = signed(OPS_SECRET, now(), "msg_ops_replayed");
    for (let i = 0; i < 6; i++) expect((await post(replay)).status).toBe(204);
    // Ordered after the replays on the same connection: once it is here, any republish would be too.
    const sentinel = JSON.stringify({
      type: "endpoint.enabled",
      data: { appUid: TENANT, endpointId: "ep_y" },
    });
    expect((await post(signed(OPS_SECRET, now(), "msg_ops_after_replays", sentinel), sentinel)).status).toBe(
      204,
    );
    await until("the webhook sent after the replays", () =>
      opsSeen.slice(before).some((m) => m.subject.endsWith("endpoint_enabled")),
    );
    const published = opsSeen.slice(before).filter((m) => m.subject.endsWith("message_attempt_exhausted"));
    expect(published).toHaveLength(1);
    expect(published[0]?.headers?.get("Nats-Msg-Id")).toBe("msg_ops_replayed");
    expect(published[0]?.headers?.get("Svix-Id")).toBe("msg_ops_replayed");
    const metrics = await (await fetch(`${stack.svc.url}/metrics`)).text();
    expect(metrics).toMatch(/jobhooks_svix_operational_webhooks_replayed_total 5/);
  });

  it("Svix's own operational webhooks (the stand-in's) for a dead endpoint arrive on NATS", async () => {
    const ops = sdkFor(opsStandIn);
    await ops.application.getOrCreate({ name: "initech", uid: "initech" });
    await ops.endpoint.create("initech", { url: `${failing.url}/initech` });
    await ops.message.create("initech", { eventType: "job.failed", eventId: "j-x.failed", payload: {} });
    const subjects = () => new Set(opsSeen.map((m) => m.subject));
    await until("endpoint.disabled on NATS", () => subjects().has("jobhooks.ops.initech.endpoint_disabled"), {
      timeoutMs: 30_000,
    });
    expect(subjects()).toContain("jobhooks.ops.initech.message_attempt_exhausted");
    expect(subjects()).toContain("jobhooks.ops.initech.message_attempt_failing");
  });
});

describe("portal roles and revocation", () => {
  async function openPortal(url: string): Promise<string> {
    const opened = await fetch(url, { redirect: "manual" });
    await opened.arrayBuffer();
    return opened.headers.get("set-cookie")?.split(";")[0] ?? "";
  }
  const page = (cookie: string) => fetch(`${stack.svix.url}/portal`, { headers: { cookie } });

  it("a viewer's portal shows no way to add an endpoint, and a hand-made request is refused by the portal", async () => {
    const { url } = await client().getPortalLink({ role: PortalRole.VIEWER }, { headers: bearer(acmeKey) });
    const cookie = await openPortal(url);
    const html = await (await page(cookie)).text();
    expect(html).not.toContain('action="/portal/endpoints"');
    const endpointsBefore = stack.svix.state.endpoints(TENANT).length;
    const refused = await fetch(`${stack.svix.url}/portal/endpoints`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ url: "http://127.0.0.1:9/viewer" }),
    });
    expect(refused.status).toBe(403);
    expect(stack.svix.state.endpoints(TENANT)).toHaveLength(endpointsBefore);
  });

  it("a revoked session's portal page stops working; other sessions of the tenant keep theirs", async () => {
    const mine = await client().getPortalLink({ sessionId: "user_leaving" }, { headers: bearer(acmeKey) });
    const theirs = await client().getPortalLink({ sessionId: "user_staying" }, { headers: bearer(acmeKey) });
    const myCookie = await openPortal(mine.url);
    const theirCookie = await openPortal(theirs.url);
    expect((await page(myCookie)).status).toBe(200);
    await client().revokePortalSessions(
      { tenantId: TENANT, sessionIds: ["user_leaving"] },
      { headers: service },
    );
    expect((await page(myCookie)).status).toBe(401);
    expect((await page(theirCookie)).status).toBe(200);
  });

  it("only service tokens may revoke sessions", async () => {
    const err = await failure(
      client().revokePortalSessions({ tenantId: TENANT }, { headers: bearer(acmeKey) }),
    );
    expect(err.code).toBe(Code.PermissionDenied);
  });
});
