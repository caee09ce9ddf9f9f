import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import { Svix } from "svix";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEAD_HEADERS } from "../../src/events/wire-names.js";
import { GetTenantResponseSchema, JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { API_KEYS_BUCKET } from "../../src/nats/api-key-store.js";
import { AUDIT_STREAM } from "../../src/nats/audit-trail.js";
import { DLQ_STREAM, JOBS_STREAM } from "../../src/nats/provision.js";
import { TENANT_DELETIONS_BUCKET } from "../../src/nats/tenant-deletions.js";
import { deadLetter } from "../../src/relay/dead-letter.js";
import { until } from "../support/poll.js";
import { type NatsPublication, publishToNats } from "../support/publish.js";
import { expectExactlyOnceInOrder, jobEvents } from "../support/relay-stack.js";
import { readStream, SERVICE_TOKEN, startTestService, type TestService } from "../support/service.js";

// A tenant's whole life over the API, against a real nats-server, the Svix stand-in and real
// replicas: A and B serve the API without a relay (so events wait where the tests can count them);
// C, started during a deletion, relays.

let nats: NatsServer;
let standIn: SvixStandIn;
let replicaA: TestService;
let replicaB: TestService;
let replicaC: TestService | undefined;
let nc: NatsConnection;
const issuedKeys: string[] = [];

const service = { authorization: `Bearer ${SERVICE_TOKEN}` };
const clientOf = (svc: TestService) =>
  createClient(WebhookService, createConnectTransport({ baseUrl: svc.url, httpVersion: "1.1" }));
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

async function errorOf(call: Promise<unknown>): Promise<ConnectError | "ok"> {
  try {
    await call;
    return "ok";
  } catch (err) {
    return ConnectError.from(err);
  }
}

async function newKey(svc: TestService, tenantId: string): Promise<{ key: string; id: string }> {
  const res = await clientOf(svc).createApiKey({ tenantId }, { headers: service });
  issuedKeys.push(res.key);
  return { key: res.key, id: res.apiKey?.id ?? "" };
}

function publish(tenantId: string, jobId: string, status: JobStatus, sequence?: bigint) {
  return clientOf(replicaA).publishJobEvent(
    { event: { tenantId, jobId, status, ...(sequence === undefined ? {} : { sequence }) } },
    { headers: service },
  );
}

/** Messages stored per subject matching `filter`, as JetStream counts them. */
async function countBySubject(stream: string, filter: string): Promise<number> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream, { subjects_filter: filter });
  return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
}

/** A dead letter as the relay files it, for an event first published to `originalSubject`. */
async function fileDeadLetter(seq: number, originalSubject: string): Promise<void> {
  const [, tenantId, jobId] = originalSubject.split(".");
  const body = new TextEncoder().encode(JSON.stringify({ tenantId, jobId, status: "JOB_STATUS_CREATED" }));
  await deadLetter(
    jetstream(nc),
    { seq, data: body, headers: undefined, ack: () => undefined },
    { subjectPrefix: "jobs", reason: "svix_rejected", detail: "test", originalSubject },
  );
}

/** A dead letter of the layout before tenants were filed: `jobs_dlq.<reason>` only. */
async function fileOldDeadLetter(originalSubject: string): Promise<void> {
  const h = natsHeaders();
  h.set(DEAD_HEADERS.reason, "invalid");
  h.set(DEAD_HEADERS.subject, originalSubject);
  h.set(DEAD_HEADERS.at, new Date().toISOString());
  await jetstream(nc).publish("jobs_dlq.invalid", JSON.stringify({ old: true }), { headers: h });
}

function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", ...args],
      { env: { ...process.env, NATS_URL: nats.url, LOG_LEVEL: "warn" }, timeout: 30_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

beforeAll(async () => {
  nats = await startNatsServer();
  standIn = await startSvixStandIn({ deliver: false });
  const env = { SVIX_TOKEN: standIn.token, SVIX_SERVER_URL: standIn.url };
  replicaA = await startTestService(nats.url, env);
  replicaB = await startTestService(nats.url, env);
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc?.close();
  await replicaC?.stop();
  await replicaB?.stop();
  await replicaA?.stop();
  await standIn?.close();
  await nats?.dispose();
});

describe("keys over the API", () => {
  it("CreateApiKey returns the key once; the store holds only its hash; ListApiKeys lists it", async () => {
    const { key, id } = await newKey(replicaA, "onboarded");
    expect(key).toMatch(/^jh_live_[0-9A-Za-z]{43}$/);
    expect(id).toMatch(/^key_/);
    const kv = await new Kvm(nc).open(API_KEYS_BUCKET);
    const entry = await kv.get(sha256(key));
    expect(entry?.string()).toContain(id);
    expect(entry?.string()).not.toContain(key);

    const listed = await clientOf(replicaB).listApiKeys({ tenantId: "onboarded" }, { headers: service });
    expect(listed.apiKeys.map((k) => [k.id, k.tenantId])).toEqual([[id, "onboarded"]]);
    expect(listed.apiKeys[0]?.createdAt).toBeDefined();
    expect(listed.apiKeys[0]?.lastUsedAt).toBeUndefined();
    // The CLI reads the same store.
    expect((await cli("keys", "list", "--tenant", "onboarded", "--json")).stdout).toContain(id);
  });

  it("a key's use shows as last used; revoking it on one replica refuses it on the other within seconds", async () => {
    const { key, id } = await newKey(replicaA, "revoked-over-api");
    const portal = () =>
      errorOf(clientOf(replicaB).getPortalLink({}, { headers: { authorization: `Bearer ${key}` } }));
    expect(await portal()).toBe("ok");
    await until("last use recorded", async () => {
      const listed = await clientOf(replicaA).listApiKeys(
        { tenantId: "revoked-over-api" },
        { headers: service },
      );
      return listed.apiKeys[0]?.lastUsedAt !== undefined;
    });
    const revoked = await clientOf(replicaA).revokeApiKey({ keyId: id }, { headers: service });
    expect(revoked.apiKey?.id).toBe(id);
    await until(
      "replica B refuses the revoked key",
      async () => {
        const e = await portal();
        return e !== "ok" && e.code === Code.Unauthenticated;
      },
      { timeoutMs: 5_000, everyMs: 100 },
    );
  });

  it("a customer key may not manage keys or tenants: PERMISSION_DENIED", async () => {
    const { key } = await newKey(replicaA, "customer");
    const asCustomer = { headers: { authorization: `Bearer ${key}` } };
    const c = clientOf(replicaA);
    for (const call of [
      c.createApiKey({ tenantId: "customer" }, asCustomer),
      c.listApiKeys({ tenantId: "customer" }, asCustomer),
      c.revokeApiKey({ keyId: "key_x" }, asCustomer),
      c.getTenant({ tenantId: "customer" }, asCustomer),
      c.deleteTenant({ tenantId: "customer", dryRun: true }, asCustomer),
    ]) {
      const e = await errorOf(call);
      expect(e !== "ok" && e.code).toBe(Code.PermissionDenied);
    }
  });

  it("errors say what to type", async () => {
    const c = clientOf(replicaA);
    const { id } = await newKey(replicaA, "revoked-twice");
    await c.revokeApiKey({ keyId: id }, { headers: service });
    const unknown = await errorOf(c.revokeApiKey({ keyId: id }, { headers: service }));
    expect(unknown !== "ok" && unknown.code).toBe(Code.NotFound);
    expect(unknown !== "ok" && unknown.rawMessage).toContain("ListApiKeys");
    const aKey = await errorOf(c.revokeApiKey({ keyId: `jh_live_${"A".repeat(43)}` }, { headers: service }));
    expect(aKey !== "ok" && aKey.code).toBe(Code.InvalidArgument);
    const badTenant = await errorOf(c.createApiKey({ tenantId: "acme.eu" }, { headers: service }));
    expect(badTenant !== "ok" && badTenant.code).toBe(Code.InvalidArgument);
  });
});

describe("GetTenant and DeleteTenant", () => {
  const gone = "gone";
  const stays = "stays";
  let oldAppId = "";
  let keyId = "";

  beforeAll(async () => {
    keyId = (await newKey(replicaA, gone)).id;
    const svix = new Svix(standIn.token, { serverUrl: standIn.url, retryScheduleInMs: [] });
    const app = await svix.application.getOrCreate({ uid: gone, name: gone });
    oldAppId = app.id;
    await svix.endpoint.create(app.id, {
      url: "https://hooks.gone.example/path?secret=s3cr3t",
      eventTypes: ["job.completed"],
    });
    await svix.message.create(app.id, { eventType: "job.completed", payload: { earlier: true } });
    for (let i = 0; i < 3; i++) await publish(gone, `job-${i}`, JobStatus.CREATED);
    await publish(stays, "kept", JobStatus.CREATED);
    await fileDeadLetter(9_001, `jobs.${gone}.job-9.created`);
    await fileOldDeadLetter(`jobs.${gone}.job-8.created`);
    await fileDeadLetter(9_002, `jobs.${stays}.job-9.created`);
    await fileOldDeadLetter(`jobs.${stays}.job-8.created`);
  });

  it("GetTenant shows keys, waiting events, dead letters and the Svix application", async () => {
    const t = await clientOf(replicaB).getTenant({ tenantId: gone }, { headers: service });
    expect(t.apiKeyIds).toEqual([keyId]);
    expect(t.eventsWaiting).toBe(3n);
    expect(t.oldestWaitingAt).toBeDefined();
    expect(t.deadLetters).toBe(2n);
    expect(t.oldestDeadLetterAt).toBeDefined();
    expect(t.svixChecked).toBe(true);
    expect(t.application?.appId).toBe(oldAppId);
    expect(t.application?.endpoints.map((e) => [e.urlHost, e.disabled, e.filterTypes])).toEqual([
      ["hooks.gone.example", false, ["job.completed"]],
    ]);
    expect(toJsonString(GetTenantResponseSchema, t)).not.toContain("s3cr3t");
    expect(t.lastMessageAt).toBeDefined();

    const unknown = await clientOf(replicaB).getTenant({ tenantId: "never-seen" }, { headers: service });
    expect([unknown.eventsWaiting, unknown.deadLetters, unknown.application]).toEqual([0n, 0n, undefined]);
  });

  it("a dry run lists what would go and changes nothing", async () => {
    const dry = await clientOf(replicaA).deleteTenant({ tenantId: gone, dryRun: true }, { headers: service });
    expect(dry.dryRun).toBe(true);
    expect(dry.revokedApiKeyIds).toEqual([keyId]);
    expect([dry.eventsRemoved, dry.deadLettersRemoved, dry.deletedAppId]).toEqual([3n, 2n, oldAppId]);
    const after = await clientOf(replicaB).getTenant({ tenantId: gone }, { headers: service });
    expect([after.apiKeyIds, after.eventsWaiting, after.deadLetters, after.application?.appId]).toEqual([
      [keyId],
      3n,
      2n,
      oldAppId,
    ]);
  });

  it("removes everything of the tenant, drops its events accepted meanwhile, and leaves others whole and in order", async () => {
    const deleting = clientOf(replicaA).deleteTenant({ tenantId: gone }, { headers: service });
    const marks = await new Kvm(nc).open(TENANT_DELETIONS_BUCKET);
    await until("the deletion marked", async () => (await marks.get(gone))?.operation === "PUT");
    // While it runs: the other tenant keeps publishing (3 jobs × 5 events, in order per job), the
    // deleted one publishes too, and a relaying replica comes up.
    const during: NatsPublication[] = [
      ...jobEvents(stays, 3, 5),
      ...[1, 2].map((i) => ({ subject: `jobs.${gone}.late-${i}.created`, body: "{}" })),
    ];
    await publishToNats(nats.url, during);
    replicaC = await startTestService(nats.url, {
      SVIX_TOKEN: standIn.token,
      SVIX_SERVER_URL: standIn.url,
      JOBHOOKS_RELAY_ENABLED: "true",
    });
    const res = await deleting;
    expect(res.revokedApiKeyIds).toEqual([keyId]);
    expect(res.deadLettersRemoved).toBe(2n);
    expect(res.deletedAppId).toBe(oldAppId);

    // Nothing of it left in NATS, counted per subject (dead letters of both filing layouts).
    expect(await countBySubject(JOBS_STREAM, `jobs.${gone}.*.*`)).toBe(0);
    expect(await countBySubject(DLQ_STREAM, `jobs_dlq.*.${gone}`)).toBe(0);
    const dlq = await readStream(nats.url, DLQ_STREAM);
    expect(dlq.filter((m) => m.headers[DEAD_HEADERS.subject]?.startsWith(`jobs.${gone}.`))).toEqual([]);
    // The other tenant's dead letters, of both layouts, are untouched.
    expect(dlq.filter((m) => m.headers[DEAD_HEADERS.subject]?.startsWith(`jobs.${stays}.`))).toHaveLength(2);
    expect((await clientOf(replicaB).listApiKeys({ tenantId: gone }, { headers: service })).apiKeys).toEqual(
      [],
    );

    // The other tenant's events all arrive, each job's in order.
    await until("the other tenant's events delivered", () => standIn.state.messages(stays).length >= 16, {
      timeoutMs: 20_000,
    });
    const streamed = standIn.state
      .messages(stays)
      .filter((m) => (m.payload.data as { job_id: string }).job_id !== "kept");
    expect(streamed).toHaveLength(15);
    expectExactlyOnceInOrder(
      { ...standIn, state: { ...standIn.state, messages: () => streamed } } as SvixStandIn,
      stays,
      3,
      5,
    );
    // Nothing of the deleted tenant in Svix: no application (a late send would have re-created
    // it), no endpoints, messages or attempts of the old one.
    await until("the relay idle", async () => (await countBySubject(JOBS_STREAM, "jobs.>")) === 0);
    expect(standIn.state.apps().filter((a) => a.uid === gone || a.id === oldAppId)).toEqual([]);
    expect(standIn.state.endpoints().filter((e) => e.appId === oldAppId)).toEqual([]);
    expect(standIn.state.messages().filter((m) => m.appId === oldAppId)).toEqual([]);
    expect(standIn.state.attempts().filter((a) => a.appId === oldAppId)).toEqual([]);
    // And none of its events, waiting or accepted during the deletion, was ever sent to Svix
    // (where it would have reached the customer's endpoint before the application went).
    expect(
      standIn.state.requests().filter((r) => r.method === "POST" && r.path === `/api/v1/app/${gone}/msg`),
    ).toEqual([]);
  });

  it("deleting again succeeds and removes nothing; publishing later starts afresh", async () => {
    const again = await clientOf(replicaA).deleteTenant({ tenantId: gone }, { headers: service });
    expect([
      again.revokedApiKeyIds,
      again.eventsRemoved,
      again.deadLettersRemoved,
      again.deletedAppId,
    ]).toEqual([[], 0n, 0n, ""]);
    await publish(gone, "fresh", JobStatus.COMPLETED);
    const fresh = await until("the fresh event delivered", () => standIn.state.messages(gone)[0]);
    expect((fresh.payload.data as { job_id: string }).job_id).toBe("fresh");
    expect(fresh.appId).not.toBe(oldAppId);
    expect(standIn.state.messages(gone)).toHaveLength(1);
  });
});

describe("the audit trail", () => {
  it("records every administrative act, with who did it and never a secret", async () => {
    await clientOf(replicaA).getPortalLink({ tenantId: "audited" }, { headers: service });
    await clientOf(replicaA).revokePortalSessions({ tenantId: "audited" }, { headers: service });
    const records = await readStream(nats.url, AUDIT_STREAM);
    const acts = new Set(records.map((r) => `${r.json.act} ${r.json.tenant}`));
    for (const act of [
      "api_key.created onboarded",
      "api_key.revoked revoked-over-api",
      "portal_link.issued audited",
      "portal_sessions.revoked audited",
      "tenant.deleted gone",
    ]) {
      expect(acts).toContain(act);
    }
    // Service tokens by name, customer keys by id (the portal link a customer opened itself).
    expect(records.every((r) => /^(service:service-token-1|key:key_\w+)$/.test(String(r.json.by)))).toBe(
      true,
    );
    const raw = JSON.stringify(records);
    for (const key of issuedKeys) {
      expect(raw).not.toContain(key);
      expect(raw).not.toContain(sha256(key));
    }
    expect(raw).not.toContain(SERVICE_TOKEN);
    expect(raw).not.toContain("/portal");
    expect(replicaA.log.text()).toMatch(/"audit":"tenant.deleted"/);
  });

  it("jobhooks audit list reads it, by tenant and since a time", async () => {
    const byTenant = await cli("audit", "list", "--tenant", "gone", "--since", "1h", "--json");
    expect(byTenant.code).toBe(0);
    const lines = byTenant.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { act: string; tenant: string });
    expect(lines.map((l) => l.act)).toEqual(["api_key.created", "tenant.deleted", "tenant.deleted"]);
    expect(lines.every((l) => l.tenant === "gone")).toBe(true);
    const future = await cli("audit", "list", "--since", "2999-01-01T00:00:00Z");
    expect([future.code, future.stdout, future.stderr.trim()]).toEqual([0, "", "no audit records"]);
    // Acts of the CLI are recorded too, by the user who ran it.
    const letter = (await readStream(nats.url, DLQ_STREAM)).find((m) =>
      m.headers[DEAD_HEADERS.subject]?.startsWith("jobs.stays."),
    );
    expect((await cli("dlq", "replay", String(letter?.seq))).code).toBe(0);
    const replays = await cli("audit", "list", "--tenant", "stays", "--json");
    const replayed = replays.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { act: string; by: string; details: { dlq_seqs: string[] } });
    expect(replayed).toEqual([
      expect.objectContaining({
        act: "dead_letters.replayed",
        by: expect.stringMatching(/^cli:/),
        details: { dlq_seqs: [String(letter?.seq)] },
      }),
    ]);
    const bad = await cli("audit", "list", "--since", "yesterday");
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain("24h");
  });
});
