import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { GetPortalLinkRequestSchema, PortalRole } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import type { Principal } from "../../src/server/auth.js";
import { checkPortalLinkRequest } from "../../src/server/portal-link-request.js";

const customer: Principal = { kind: "customer", tenantId: "acme", keyId: "key_0000000000000000" };
const service: Principal = { kind: "service", name: "service-token-1" };
const req = (fields: Parameters<typeof create<typeof GetPortalLinkRequestSchema>>[1]) =>
  create(GetPortalLinkRequestSchema, fields);

describe("checkPortalLinkRequest", () => {
  it("a customer key implies its own tenant, with a one-day link by default", () => {
    expect(checkPortalLinkRequest(req({}), customer)).toEqual({
      kind: "ok",
      params: { tenantId: "acme", expirySeconds: 86_400, role: "admin", sessionId: undefined },
    });
    expect(checkPortalLinkRequest(req({ tenantId: "acme" }), customer).kind).toBe("ok");
  });

  it.each(["globex", "ACME", "app_acme", "bad.tenant"])("a customer naming %s is denied", (tenantId) => {
    expect(checkPortalLinkRequest(req({ tenantId }), customer).kind).toBe("denied");
  });

  it("a service must name the tenant", () => {
    expect(checkPortalLinkRequest(req({}), service)).toEqual({
      kind: "invalid",
      violations: [{ field: "tenant_id", description: "is required for service callers" }],
    });
    expect(checkPortalLinkRequest(req({ tenantId: "globex" }), service).kind).toBe("ok");
  });

  it.each([
    [3_600n, 0, 3_600],
    [604_800n, 0, 604_800],
    [7_200n, 500_000_000, 7_200],
  ])("an expiry of %ss and %d ns is sent as %d whole seconds", (seconds, nanos, want) => {
    const check = checkPortalLinkRequest(req({ expiry: { seconds, nanos } }), customer);
    expect(check).toMatchObject({ kind: "ok", params: { expirySeconds: want } });
  });

  it.each([
    [3_599n, 999_999_999],
    [604_800n, 1],
    [0n, 0],
    [-3_600n, 0],
  ])("an expiry of %ss and %d ns is out of range", (seconds, nanos) => {
    expect(checkPortalLinkRequest(req({ expiry: { seconds, nanos } }), customer)).toMatchObject({
      kind: "invalid",
      violations: [{ field: "expiry" }],
    });
  });

  it("session ids: 1-128 of [A-Za-z0-9_-]", () => {
    expect(checkPortalLinkRequest(req({ sessionId: "a".repeat(128) }), customer).kind).toBe("ok");
    for (const sessionId of ["a".repeat(129), "user@x", "user.1", "a b"]) {
      expect(checkPortalLinkRequest(req({ sessionId }), customer)).toMatchObject({
        kind: "invalid",
        violations: [{ field: "session_id" }],
      });
    }
  });

  it("reports every bad field at once", () => {
    const check = checkPortalLinkRequest(
      req({ tenantId: "app_x", expiry: { seconds: 1n }, sessionId: "no!" }),
      service,
    );
    expect(check.kind === "invalid" && check.violations.map((v) => v.field)).toEqual([
      "tenant_id",
      "expiry",
      "session_id",
    ]);
  });

  it.each([
    ["no role, not read-only", {}, "admin"],
    ["read_only alone", { readOnly: true }, "viewer"],
    ["viewer", { role: PortalRole.VIEWER }, "viewer"],
    ["viewer and read_only", { role: PortalRole.VIEWER, readOnly: true }, "viewer"],
    ["editor", { role: PortalRole.EDITOR }, "editor"],
    ["admin", { role: PortalRole.ADMIN }, "admin"],
  ] as const)("%s opens the portal as %s", (_, fields, role) => {
    const check = checkPortalLinkRequest(req(fields), customer);
    expect(check.kind === "ok" && check.params.role).toBe(role);
  });

  it.each([
    ["editor with read_only", { role: PortalRole.EDITOR, readOnly: true }, "read_only"],
    ["admin with read_only", { role: PortalRole.ADMIN, readOnly: true }, "read_only"],
    ["an unknown role", { role: 42 as PortalRole }, "role"],
  ] as const)("%s is invalid, naming %s", (_, fields, field) => {
    const check = checkPortalLinkRequest(req(fields), customer);
    expect(check.kind === "invalid" && check.violations.map((v) => v.field)).toEqual([field]);
  });
});
