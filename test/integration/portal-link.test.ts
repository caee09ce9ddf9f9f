import { createHash } from "node:crypto";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Svix } from "svix";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { PortalRole, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { openApiKeyStore } from "../../src/nats/api-key-store.js";
import { failure, fieldsOf } from "../support/rpc-errors.js";
import { SERVICE_TOKEN, startTestService, type TestService } from "../support/service.js";

// GetPortalLink against the Svix stand-in: what reaches Svix, the tenant's application, and the
// portal page the returned link opens.

let nats: NatsServer;
let nc: NatsConnection;
let standIn: SvixStandIn;
let svc: TestService;
let n = 0;
const uniqueTenant = (name: string) => `${name}-${process.pid}-${++n}`;
const service = { authorization: `Bearer ${SERVICE_TOKEN}` };

async function keyFor(tenant: string): Promise<string> {
  const store = await openApiKeyStore(nc, { replicas: 1 });
  return (await store.create(tenant)).key;
}

function client(baseUrl = svc.url) {
  return createClient(WebhookService, createGrpcTransport({ baseUrl }));
}

/** What jobhooks sent to Svix's app-portal-access for one app, as parsed JSON bodies. */
function portalAccessBodies(tenant: string): Array<Record<string, unknown>> {
  return standIn.state
    .requests()
    .filter((r) => r.route === "v1.authentication.app-portal-access" && r.path.endsWith(`/${tenant}`))
    .map((r) => JSON.parse(r.requestBody ?? "{}") as Record<string, unknown>);
}

function appCreates(): number {
  return standIn.state.requests().filter((r) => r.route === "v1.application.create").length;
}

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  standIn = await startSvixStandIn({ deliver: false });
  svc = await startTestService(nats.url, { SVIX_TOKEN: standIn.token, SVIX_SERVER_URL: standIn.url });
});

afterAll(async () => {
  await svc?.stop();
  await nc?.close();
  await standIn?.close();
  await nats?.dispose();
});

beforeEach(() => {
  standIn.faults.clear();
});

describe("what GetPortalLink asks of Svix", () => {
  it("expiry, read-only and session id reach Svix as expiry, capabilities [ViewBase] and sessionId", async () => {
    const tenant = uniqueTenant("fields");
    const before = Date.now();
    const res = await client().getPortalLink(
      { tenantId: tenant, expiry: { seconds: 7_200n }, readOnly: true, sessionId: "user_42" },
      { headers: service },
    );
    expect(portalAccessBodies(tenant)).toEqual([
      { expiry: 7_200, capabilities: ["ViewBase"], sessionId: "user_42" },
    ]);
    expect(res.url).toMatch(new RegExp(`^${standIn.url}/portal/login/`));
    const expiresAt = timestampMs(res.expiresAt ?? timestampFromMs(0));
    expect(expiresAt).toBeGreaterThanOrEqual(before + 7_200_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 7_200_000);
  });

  it("without options the link lasts a day, as the admin role, with no session id", async () => {
    const tenant = uniqueTenant("defaults");
    const before = Date.now();
    const res = await client().getPortalLink({ tenantId: tenant }, { headers: service });
    expect(portalAccessBodies(tenant)).toEqual([
      {
        expiry: 86_400,
        capabilities: [
          "ViewBase",
          "ManageEndpoint",
          "CreateAttempts",
          "ViewEndpointSecret",
          "ManageEndpointSecret",
        ],
      },
    ]);
    expect(timestampMs(res.expiresAt ?? timestampFromMs(0))).toBeGreaterThanOrEqual(before + 86_400_000);
  });

  it("the editor role manages endpoints and sends test events but never sees signing secrets", async () => {
    const tenant = uniqueTenant("editor");
    await client().getPortalLink({ tenantId: tenant, role: PortalRole.EDITOR }, { headers: service });
    expect(portalAccessBodies(tenant).map((b) => b.capabilities)).toEqual([
      ["ViewBase", "ManageEndpoint", "CreateAttempts"],
    ]);
  });

  it("read_only with the editor role is refused as a contradiction", async () => {
    const err = await client()
      .getPortalLink(
        { tenantId: uniqueTenant("contradiction"), role: PortalRole.EDITOR, readOnly: true },
        { headers: service },
      )
      .catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    expect((err as ConnectError).message).toContain("read_only");
  });

  it("a session id longer than Svix's 64 characters is sent as a stable digest", async () => {
    const tenant = uniqueTenant("long-session");
    const sessionId = "s".repeat(128);
    await client().getPortalLink({ tenantId: tenant, sessionId }, { headers: service });
    await client().getPortalLink({ tenantId: tenant, sessionId }, { headers: service });
    const sent = portalAccessBodies(tenant).map((b) => b.sessionId);
    expect(sent[0]).toBe(`h_${createHash("sha256").update(sessionId).digest("base64url")}`);
    expect(sent[1]).toBe(sent[0]);
  });

  it.each([
    ["an expiry under an hour", "expiry", { expiry: { seconds: 3_599n } }],
    ["an expiry over 7 days", "expiry", { expiry: { seconds: 604_801n } }],
    ["a session id with a dot", "session_id", { sessionId: "user.42" }],
    ["a tenant id Svix reserves", "tenant_id", { tenantId: "app_x" }],
  ])("%s gets INVALID_ARGUMENT naming %s, and nothing reaches Svix", async (_name, field, fields) => {
    const before = standIn.state.requests().length;
    const err = await failure(
      client().getPortalLink({ tenantId: uniqueTenant("bad"), ...fields }, { headers: service }),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    expect(fieldsOf(err)).toEqual([field]);
    expect(standIn.state.requests().length).toBe(before);
  });
});

describe("the tenant's Svix application", () => {
  it("the first call creates the application (uid = tenant id) and later calls reuse it", async () => {
    const tenant = uniqueTenant("first");
    const creates = appCreates();
    const first = await client().getPortalLink({ tenantId: tenant }, { headers: service });
    expect(appCreates()).toBe(creates + 1);
    const app = standIn.state.apps().find((a) => a.uid === tenant);
    expect(app).toMatchObject({ uid: tenant, name: tenant, id: first.appId });
    const second = await client().getPortalLink({ tenantId: tenant }, { headers: service });
    expect(second.appId).toBe(first.appId);
    expect(second.url).not.toBe(first.url);
    expect(appCreates()).toBe(creates + 1);
  });

  it("an API-only replica (relay off) still counts its Svix calls in /metrics", async () => {
    const svixRequests = async () => {
      const text = await (await fetch(`${svc.url}/metrics`)).text();
      const line = text
        .split("\n")
        .find((l) => l.startsWith('jobhooks_svix_request_duration_seconds_count{status_class="2xx"}'));
      return Number(line?.split(" ")[1] ?? 0);
    };
    const before = await svixRequests();
    await client().getPortalLink({ tenantId: uniqueTenant("metrics") }, { headers: service });
    // At least the portal-access call (plus the application create on first use).
    expect(await svixRequests()).toBeGreaterThanOrEqual(before + 1);
  });

  it("20 concurrent first calls create exactly one application", async () => {
    const tenant = uniqueTenant("concurrent");
    // One key per call, as 20 of the tenant's users would hold: each key has its own rate bucket.
    const keys = await Promise.all(Array.from({ length: 20 }, () => keyFor(tenant)));
    const creates = appCreates();
    const results = await Promise.all(
      keys.map((key) => client().getPortalLink({}, { headers: { authorization: `Bearer ${key}` } })),
    );
    expect(new Set(results.map((r) => r.appId)).size).toBe(1);
    expect(new Set(results.map((r) => r.url)).size).toBe(20);
    expect(standIn.state.apps().filter((a) => a.uid === tenant)).toHaveLength(1);
    expect(appCreates()).toBe(creates + 1);
  });
});

describe("when Svix fails", () => {
  it("a Svix outage is UNAVAILABLE with retry info, without Svix's token or answer", async () => {
    standIn.faults.inject({ route: "authentication.*", kind: "503", retryAfterSeconds: 7 });
    const err = await failure(
      client().getPortalLink({ tenantId: uniqueTenant("outage") }, { headers: service }),
    );
    expect(err.code).toBe(Code.Unavailable);
    expect(err.findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds).toBe(7n);
    expect(err.rawMessage).not.toContain(standIn.token);
    expect(err.rawMessage).not.toMatch(/503|svix stand-in/i);
  });

  it("a request Svix refuses is INTERNAL with a safe message", async () => {
    standIn.faults.inject({ route: "authentication.*", kind: "422" });
    const err = await failure(
      client().getPortalLink({ tenantId: uniqueTenant("refused") }, { headers: service }),
    );
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("could not open the webhook portal");
  });

  it("never logs Svix's token or a portal link", async () => {
    const res = await client().getPortalLink({ tenantId: uniqueTenant("quiet") }, { headers: service });
    expect(svc.log.text()).not.toContain(standIn.token);
    expect(svc.log.text()).not.toContain(res.url);
    expect(svc.log.text()).toContain("portal link issued");
  });
});

describe("a customer with an API key", () => {
  it("curl's Connect JSON request with only the key returns the tenant's portal URL", async () => {
    const tenant = uniqueTenant("curl");
    const key = await keyFor(tenant);
    // curl -H 'Authorization: Bearer jh_…' -H 'content-type: application/json' -d '{}' …/GetPortalLink
    const res = await fetch(`${svc.url}/jobhooks.v1.WebhookService/GetPortalLink`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { url: string; expiresAt: string; appId: string };
    expect(body.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/portal\/login\//);
    expect(body.appId).toBe(standIn.state.apps().find((a) => a.uid === tenant)?.id);
    expect(Date.parse(body.expiresAt)).toBeGreaterThan(Date.now() + 23 * 3_600_000);
  });

  it("the link opens a page with that tenant's endpoints and messages and no other tenant's", async () => {
    const mine = uniqueTenant("mine");
    const theirs = uniqueTenant("theirs");
    const svix = new Svix(standIn.token, { serverUrl: standIn.url, retryScheduleInMs: [] });
    for (const tenant of [mine, theirs]) {
      await svix.application.getOrCreate({ uid: tenant, name: tenant });
      await svix.endpoint.create(tenant, { url: `http://127.0.0.1:9/${tenant}-endpoint` });
      await svix.message.create(tenant, {
        eventType: "job.completed",
        eventId: `${tenant}-evt`,
        payload: {},
      });
    }
    const key = await keyFor(mine);
    const { url } = await createClient(
      WebhookService,
      createConnectTransport({ baseUrl: svc.url, httpVersion: "1.1" }),
    ).getPortalLink({}, { headers: { authorization: `Bearer ${key}` } });

    const login = await fetch(url, { redirect: "manual" });
    await login.arrayBuffer();
    expect(login.status).toBe(303);
    const cookie = login.headers.get("set-cookie")?.split(";")[0] ?? "";
    const page = await fetch(new URL(login.headers.get("location") ?? "/portal", url), {
      headers: { cookie },
    });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(`${mine}-endpoint`);
    expect(html).toContain(`${mine}-evt`);
    expect(html).not.toContain(theirs);
  });

  it("too many calls with one key get RESOURCE_EXHAUSTED with retry info; other keys are unaffected", async () => {
    const limited = await startTestService(nats.url, {
      SVIX_TOKEN: standIn.token,
      SVIX_SERVER_URL: standIn.url,
      JOBHOOKS_PORTAL_RATE_PER_MIN: "1",
      JOBHOOKS_PORTAL_BURST: "2",
    });
    try {
      const greedy = await keyFor(uniqueTenant("greedy"));
      const modest = await keyFor(uniqueTenant("modest"));
      const call = (key: string) =>
        client(limited.url).getPortalLink({}, { headers: { authorization: `Bearer ${key}` } });
      await call(greedy);
      await call(greedy);
      const err = await failure(call(greedy));
      expect(err.code).toBe(Code.ResourceExhausted);
      const retry = err.findDetails(RetryInfoSchema)[0]?.retryDelay?.seconds ?? 0n;
      expect(retry).toBeGreaterThan(0n);
      expect(retry).toBeLessThanOrEqual(60n);
      await expect(call(modest)).resolves.toMatchObject({ url: expect.any(String) });
    } finally {
      await limited.stop();
    }
  });
});
