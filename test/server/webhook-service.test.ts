import { Code, createClient } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../src/gen/health/v1/health_pb.js";
import { JobStatus } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { failure, fieldsOf, retryAfterMs } from "../support/rpc-errors.js";
import {
  bearer,
  type InMemoryService,
  SERVICE_TOKEN,
  service,
  startInMemoryService,
} from "./in-memory-service.js";

// Who may call what on WebhookService, through the server's request gate and RPC pipeline, in
// memory. PublishJobEvent and the portal RPCs have their own files (webhook-service-*.test.ts); the
// gate's refusal before the body is read, over real sockets, is test/security/auth-before-parse.test.ts.

type Call = (svc: InMemoryService, headers: Record<string, string>) => Promise<unknown>;
const rpcs: Array<[string, Call]> = [
  [
    "PublishJobEvent",
    (svc, headers) =>
      svc.client.publishJobEvent(
        { event: { tenantId: "acme", jobId: "j", status: JobStatus.CREATED } },
        { headers },
      ),
  ],
  [
    "PublishJobEvents",
    (svc, headers) =>
      svc.client.publishJobEvents(
        { events: [{ tenantId: "acme", jobId: "j", status: JobStatus.CREATED }] },
        { headers },
      ),
  ],
  ["GetPortalLink", (svc, headers) => svc.client.getPortalLink({ tenantId: "acme" }, { headers })],
  [
    "RevokePortalSessions",
    (svc, headers) => svc.client.revokePortalSessions({ tenantId: "acme" }, { headers }),
  ],
  [
    "ListJobDeliveries",
    (svc, headers) => svc.client.listJobDeliveries({ tenantId: "acme", jobId: "j" }, { headers }),
  ],
];

describe("authentication", () => {
  const refused: Array<[string, Record<string, string>, RegExp]> = [
    ["no credential", {}, /^missing credential: send Authorization: Bearer <token>$/],
    ["a Basic header", { authorization: "Basic abc" }, /^malformed Authorization header/],
    ["a bearer with nothing after it", { authorization: "Bearer " }, /^malformed Authorization header/],
    ["an unknown token", bearer("not-a-real-token-000000000000000000"), /^unknown or revoked credential$/],
    ["an unknown API key", bearer(`jh_live_${"A".repeat(43)}`), /^unknown or revoked credential$/],
    ["a service token with a character changed", bearer(`${SERVICE_TOKEN.slice(0, -1)}X`), /^unknown/],
  ];

  for (const [rpc, call] of rpcs) {
    it.each(refused)(
      `${rpc} with %s gets UNAUTHENTICATED and does nothing`,
      async (_name, headers, message) => {
        const svc = await startInMemoryService();
        const err = await failure(call(svc, headers));
        expect(err.code).toBe(Code.Unauthenticated);
        expect(err.rawMessage).toMatch(message);
        expect(svc.publisher.stored).toHaveLength(0);
        expect(svc.portal.links).toHaveLength(0);
        expect(svc.portal.revocations).toHaveLength(0);
      },
    );
  }

  it("the bearer scheme is case-insensitive, as RFC 6750 allows", async () => {
    const svc = await startInMemoryService();
    await svc.client.publishJobEvent(
      { event: { tenantId: "acme", jobId: "j", status: JobStatus.CREATED } },
      { headers: { authorization: `bearer ${SERVICE_TOKEN}` } },
    );
    expect(svc.publisher.stored).toHaveLength(1);
  });

  it("an address that keeps failing is slowed down with RESOURCE_EXHAUSTED and retry info", async () => {
    const svc = await startInMemoryService({ authFailures: { burst: 2, perMinute: 1 } });
    const wrong = bearer("wrong-token-0000000000000000000000");
    const codes: Code[] = [];
    for (let i = 0; i < 4; i++) {
      codes.push((await failure(svc.client.getPortalLink({ tenantId: "acme" }, { headers: wrong }))).code);
    }
    expect(codes.slice(0, 2)).toEqual([Code.Unauthenticated, Code.Unauthenticated]);
    const err = await failure(svc.client.getPortalLink({ tenantId: "acme" }, { headers: wrong }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(retryAfterMs(err)).toBeGreaterThan(0);
    expect(svc.portal.links).toHaveLength(0);
  });

  it("strangers failing from the address every caller shares never lock out a valid token or key", async () => {
    const svc = await startInMemoryService({ authFailures: { burst: 2, perMinute: 1 } });
    const { key } = svc.keyFor("acme");
    // The key was used before: this replica knows it.
    await svc.client.getPortalLink({}, { headers: bearer(key) });
    for (let i = 0; i < 20; i++) {
      await failure(
        svc.client.getPortalLink(
          { tenantId: "acme" },
          { headers: bearer(`stranger-${i}-0123456789012345678901234`) },
        ),
      );
    }
    await svc.client.getPortalLink({ tenantId: "acme" }, { headers: service });
    await svc.client.getPortalLink({}, { headers: bearer(key) });
    expect(svc.portal.links).toHaveLength(3);
  });

  it("a refused credential is logged with the RPC's name, never the credential", async () => {
    const svc = await startInMemoryService();
    const presented = "guessed-token-0123456789-0123456789";
    await failure(svc.client.getPortalLink({ tenantId: "acme" }, { headers: bearer(presented) }));
    expect(svc.logText()).toContain('"procedure":"GetPortalLink"');
    expect(svc.logText()).not.toContain(presented);
    expect(svc.logText()).not.toContain(presented.slice(0, 12));
  });

  it("health answers without a credential: probes carry none", async () => {
    const svc = await startInMemoryService();
    const health = createClient(Health, svc.transport);
    expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });
});

describe("what a customer API key may call", () => {
  it.each([
    ["PublishJobEvent", Code.PermissionDenied],
    ["PublishJobEvents", Code.PermissionDenied],
    ["RevokePortalSessions", Code.PermissionDenied],
  ])("%s: PERMISSION_DENIED, for its own tenant too", async (name, code) => {
    const svc = await startInMemoryService();
    const { key } = svc.keyFor("acme");
    const call = rpcs.find(([rpc]) => rpc === name)?.[1] as Call;
    const err = await failure(call(svc, bearer(key)));
    expect(err.code).toBe(code);
    expect(err.rawMessage).toBe(`${name} is for internal services only`);
  });

  it("GetPortalLink: its own tenant only", async () => {
    const svc = await startInMemoryService();
    const { key } = svc.keyFor("acme");
    await expect(svc.client.getPortalLink({}, { headers: bearer(key) })).resolves.toBeDefined();
    const err = await failure(svc.client.getPortalLink({ tenantId: "globex" }, { headers: bearer(key) }));
    expect(err.code).toBe(Code.PermissionDenied);
  });
});

describe("ListJobDeliveries: who may ask about which job", () => {
  it("a customer key naming another tenant gets PERMISSION_DENIED, before any lookup", async () => {
    const svc = await startInMemoryService();
    const { key } = svc.keyFor("acme");
    const err = await failure(
      svc.client.listJobDeliveries({ tenantId: "globex", jobId: "j" }, { headers: bearer(key) }),
    );
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe("this API key may read only its own tenant's deliveries");
  });

  it("a customer key's own tenant (named or implied) passes the checks", async () => {
    // This in-memory service has no Svix: a call that passed every check answers UNAVAILABLE.
    const svc = await startInMemoryService();
    const { key } = svc.keyFor("acme");
    for (const tenantId of ["", "acme"]) {
      const err = await failure(
        svc.client.listJobDeliveries({ tenantId, jobId: "j" }, { headers: bearer(key) }),
      );
      expect(err.code).toBe(Code.Unavailable);
      expect(err.rawMessage).toBe("Svix is not configured on this server");
    }
  });

  it.each([
    ["a service token without a tenant", "", "j", ["tenant_id"]],
    ["a tenant id Svix reserves", "app_x", "j", ["tenant_id"]],
    ["no job id", "acme", "", ["job_id"]],
    ["a job id with a dot", "acme", "j.1", ["job_id"]],
    ["neither", "", "", ["tenant_id", "job_id"]],
  ])("%s gets INVALID_ARGUMENT naming the field(s)", async (_name, tenantId, jobId, paths) => {
    const svc = await startInMemoryService();
    const err = await failure(svc.client.listJobDeliveries({ tenantId, jobId }, { headers: service }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(fieldsOf(err)).toEqual(paths);
  });

  it("too many lookups by one key get RESOURCE_EXHAUSTED with retry info; another key is unaffected", async () => {
    const svc = await startInMemoryService({ deliveriesRate: { perMinute: 1, burst: 1 } });
    const greedy = svc.keyFor("acme").key;
    const modest = svc.keyFor("acme").key;
    await failure(svc.client.listJobDeliveries({ jobId: "j" }, { headers: bearer(greedy) }));
    const err = await failure(svc.client.listJobDeliveries({ jobId: "j" }, { headers: bearer(greedy) }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(retryAfterMs(err)).toBeGreaterThan(0);
    const other = await failure(svc.client.listJobDeliveries({ jobId: "j" }, { headers: bearer(modest) }));
    expect(other.code).toBe(Code.Unavailable);
  });

  it("a service token's lookups are limited per tenant", async () => {
    const svc = await startInMemoryService({ deliveriesRate: { perMinute: 1, burst: 1 } });
    const ask = (tenantId: string) =>
      failure(svc.client.listJobDeliveries({ tenantId, jobId: "j" }, { headers: service }));
    expect((await ask("busy")).code).toBe(Code.Unavailable);
    expect((await ask("busy")).code).toBe(Code.ResourceExhausted);
    expect((await ask("calm")).code).toBe(Code.Unavailable);
  });
});
