import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { PortalRole } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { failure, fieldsOf, retryAfterMs } from "../support/rpc-errors.js";
import { bearer, service, startInMemoryService } from "./in-memory-service.js";

// GetPortalLink and RevokePortalSessions through the server's RPC pipeline, in memory, with Svix
// faked: who may ask for what, and what reaches the portal. What Svix receives and the page the link
// opens are in test/integration/portal-link.test.ts.

describe("GetPortalLink: what reaches the portal", () => {
  it("a customer key gets its own tenant's portal, as admin for a day, without naming the tenant", async () => {
    const svc = await startInMemoryService();
    const { key } = svc.keyFor("acme");
    const before = Date.now();
    const res = await svc.client.getPortalLink({}, { headers: bearer(key) });
    expect(svc.portal.links).toEqual([
      {
        tenantId: "acme",
        options: { tenantId: "acme", expirySeconds: 86_400, role: "admin", sessionId: undefined },
      },
    ]);
    expect(res).toMatchObject({ url: "https://portal.test/login/acme/1", appId: "app_acme" });
    const expiresAt = timestampMs(res.expiresAt ?? timestampFromMs(0));
    expect(expiresAt).toBeGreaterThanOrEqual(before + 86_400_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 86_400_000);
  });

  it("expiry, read_only and session id reach the portal as whole seconds, the viewer role and the id", async () => {
    const svc = await startInMemoryService();
    await svc.client.getPortalLink(
      {
        tenantId: "acme",
        expiry: { seconds: 7_200n, nanos: 500_000_000 },
        readOnly: true,
        sessionId: "u_42",
      },
      { headers: service },
    );
    expect(svc.portal.links[0]?.options).toMatchObject({
      expirySeconds: 7_200,
      role: "viewer",
      sessionId: "u_42",
    });
  });

  it.each([
    [PortalRole.VIEWER, false, "viewer"],
    [PortalRole.EDITOR, false, "editor"],
    [PortalRole.ADMIN, false, "admin"],
    [PortalRole.VIEWER, true, "viewer"],
  ])("role %i with read_only %s opens the %s portal", async (role, readOnly, want) => {
    const svc = await startInMemoryService();
    await svc.client.getPortalLink({ tenantId: "acme", role, readOnly }, { headers: service });
    expect(svc.portal.links[0]?.options.role).toBe(want);
  });

  it("the URL, which logs its reader in, is never logged", async () => {
    const svc = await startInMemoryService();
    const res = await svc.client.getPortalLink({ tenantId: "acme" }, { headers: service });
    expect(svc.logText()).toContain("portal link issued");
    expect(svc.logText()).not.toContain(res.url);
  });
});

describe("GetPortalLink refuses a bad request before it reaches Svix", () => {
  it.each([
    ["an expiry under an hour", { expiry: { seconds: 3_599n } }, ["expiry"]],
    ["an expiry over 7 days", { expiry: { seconds: 604_801n } }, ["expiry"]],
    ["a negative nanos part", { expiry: { seconds: 7_200n, nanos: -1 } }, ["expiry"]],
    ["a session id with a dot", { sessionId: "user.42" }, ["session_id"]],
    ["a session id over 128 characters", { sessionId: "s".repeat(129) }, ["session_id"]],
    ["read_only with the editor role", { role: PortalRole.EDITOR, readOnly: true }, ["read_only"]],
    ["read_only with the admin role", { role: PortalRole.ADMIN, readOnly: true }, ["read_only"]],
    ["an unknown role", { role: 9 as PortalRole }, ["role"]],
    ["a tenant id Svix reserves", { tenantId: "app_x" }, ["tenant_id"]],
    ["a tenant id with a dot", { tenantId: "a.b" }, ["tenant_id"]],
    [
      "several problems",
      { expiry: { seconds: 1n }, sessionId: "a b", role: 9 as PortalRole },
      ["expiry", "session_id", "role"],
    ],
  ])("%s gets INVALID_ARGUMENT naming the field(s)", async (_name, fields, paths) => {
    const svc = await startInMemoryService();
    const err = await failure(
      svc.client.getPortalLink({ tenantId: "acme", ...fields }, { headers: service }),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    expect(fieldsOf(err)).toEqual(paths);
    expect(svc.portal.links).toHaveLength(0);
  });

  it("a service token must name the tenant", async () => {
    const svc = await startInMemoryService();
    const err = await failure(svc.client.getPortalLink({}, { headers: service }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toBe("tenant_id: is required for service callers");
  });

  it.each(["globex", "ACME", "app_acme", "bad.tenant"])(
    "a customer key naming another tenant (%s) gets PERMISSION_DENIED",
    async (tenantId) => {
      const svc = await startInMemoryService();
      const { key } = svc.keyFor("acme");
      const err = await failure(svc.client.getPortalLink({ tenantId }, { headers: bearer(key) }));
      expect(err.code).toBe(Code.PermissionDenied);
      expect(svc.portal.links).toHaveLength(0);
    },
  );

  it("a customer key naming its own tenant is the same as naming none", async () => {
    const svc = await startInMemoryService();
    const { key } = svc.keyFor("acme");
    await svc.client.getPortalLink({ tenantId: "acme" }, { headers: bearer(key) });
    expect(svc.portal.links.map((l) => l.tenantId)).toEqual(["acme"]);
  });
});

describe("GetPortalLink when the portal cannot answer", () => {
  it("too many calls with one key get RESOURCE_EXHAUSTED with retry info; another key is unaffected", async () => {
    const svc = await startInMemoryService({ portalRate: { perMinute: 1, burst: 2 } });
    const greedy = svc.keyFor("greedy").key;
    const modest = svc.keyFor("modest").key;
    await svc.client.getPortalLink({}, { headers: bearer(greedy) });
    await svc.client.getPortalLink({}, { headers: bearer(greedy) });
    const err = await failure(svc.client.getPortalLink({}, { headers: bearer(greedy) }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(retryAfterMs(err)).toBeGreaterThan(0);
    expect(retryAfterMs(err)).toBeLessThanOrEqual(60_000);
    await expect(svc.client.getPortalLink({}, { headers: bearer(modest) })).resolves.toMatchObject({
      appId: "app_modest",
    });
  });

  it("a service token's budget is per tenant: one busy customer does not use up another's", async () => {
    const svc = await startInMemoryService({ portalRate: { perMinute: 1, burst: 1 } });
    await svc.client.getPortalLink({ tenantId: "busy" }, { headers: service });
    expect((await failure(svc.client.getPortalLink({ tenantId: "busy" }, { headers: service }))).code).toBe(
      Code.ResourceExhausted,
    );
    await expect(svc.client.getPortalLink({ tenantId: "calm" }, { headers: service })).resolves.toBeDefined();
  });

  it("without Svix configured the answer is UNAVAILABLE, after the request was checked", async () => {
    const svc = await startInMemoryService({ portal: false });
    const err = await failure(svc.client.getPortalLink({ tenantId: "acme" }, { headers: service }));
    expect(err.code).toBe(Code.Unavailable);
    expect(retryAfterMs(err)).toBe(60_000);
    const bad = await failure(svc.client.getPortalLink({ tenantId: "a.b" }, { headers: service }));
    expect(bad.code).toBe(Code.InvalidArgument);
  });

  it("a Svix outage is UNAVAILABLE with Svix's retry delay; a refusal is INTERNAL with a safe message", async () => {
    const svc = await startInMemoryService();
    svc.portal.answer = { kind: "transient", retryAfterMs: 7_000, reason: "503 from svix" };
    const outage = await failure(svc.client.getPortalLink({ tenantId: "acme" }, { headers: service }));
    expect(outage.code).toBe(Code.Unavailable);
    expect(retryAfterMs(outage)).toBe(7_000);
    expect(outage.rawMessage).not.toContain("503");
    svc.portal.answer = { kind: "failed", reason: "422 from svix" };
    const refused = await failure(svc.client.getPortalLink({ tenantId: "acme" }, { headers: service }));
    expect(refused.code).toBe(Code.Internal);
    expect(refused.rawMessage).toBe("could not open the webhook portal");
  });
});

describe("RevokePortalSessions", () => {
  it("a service token ends the named sessions of a tenant", async () => {
    const svc = await startInMemoryService();
    await svc.client.revokePortalSessions(
      { tenantId: "acme", sessionIds: ["u_1", "u_2"] },
      { headers: service },
    );
    await svc.client.revokePortalSessions({ tenantId: "acme" }, { headers: service });
    expect(svc.portal.revocations).toEqual([
      { tenantId: "acme", sessionIds: ["u_1", "u_2"] },
      { tenantId: "acme", sessionIds: [] },
    ]);
  });

  it("a customer key may not revoke sessions, not even its own tenant's", async () => {
    const svc = await startInMemoryService();
    const { key } = svc.keyFor("acme");
    const err = await failure(
      svc.client.revokePortalSessions({ tenantId: "acme" }, { headers: bearer(key) }),
    );
    expect(err.code).toBe(Code.PermissionDenied);
    expect(svc.portal.revocations).toHaveLength(0);
  });

  it.each([
    ["no tenant", { tenantId: "" }, ["tenant_id"]],
    ["a bad session id", { tenantId: "acme", sessionIds: ["ok", "not ok"] }, ["session_ids[1]"]],
    [
      "51 session ids",
      { tenantId: "acme", sessionIds: Array.from({ length: 51 }, (_, i) => `s${i}`) },
      ["session_ids"],
    ],
  ])("%s gets INVALID_ARGUMENT naming the field(s)", async (_name, req, paths) => {
    const svc = await startInMemoryService();
    const err = await failure(svc.client.revokePortalSessions(req, { headers: service }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(fieldsOf(err)).toEqual(paths);
    expect(svc.portal.revocations).toHaveLength(0);
  });

  it("a Svix outage is UNAVAILABLE with retry info; without Svix it is UNAVAILABLE too", async () => {
    const svc = await startInMemoryService();
    svc.portal.revokeAnswer = { kind: "transient", retryAfterMs: 2_000, reason: "timeout" };
    const err = await failure(svc.client.revokePortalSessions({ tenantId: "acme" }, { headers: service }));
    expect(err.code).toBe(Code.Unavailable);
    expect(retryAfterMs(err)).toBe(2_000);
    const none = await startInMemoryService({ portal: false });
    const missing = await failure(
      none.client.revokePortalSessions({ tenantId: "acme" }, { headers: service }),
    );
    expect(missing.code).toBe(Code.Unavailable);
  });
});
