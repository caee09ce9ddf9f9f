import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { until } from "../support/poll.js";
import { SERVICE_TOKEN, startTestService, type TestService } from "../support/service.js";

// Customer API keys end to end: the `jobhooks keys` CLI as a child process, and two running replicas
// that must both honour what it does.

let nats: NatsServer;
let standIn: SvixStandIn;
let replicaA: TestService;
let replicaB: TestService;
const issuedKeys: string[] = [];
const errorMessages: string[] = [];

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", "keys", ...args],
      { env: { ...process.env, NATS_URL: nats.url, LOG_LEVEL: "warn" }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function createKey(tenant: string): Promise<string> {
  const res = await cli("create", "--tenant", tenant);
  expect(res.code).toBe(0);
  const key = res.stdout.trim();
  issuedKeys.push(key);
  return key;
}

async function keyIdOf(tenant: string): Promise<string[]> {
  const res = await cli("list", "--json");
  return res.stdout
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { id: string; tenantId: string })
    .filter((r) => r.tenantId === tenant)
    .map((r) => r.id);
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

function clientOf(svc: TestService) {
  return createClient(WebhookService, createConnectTransport({ baseUrl: svc.url, httpVersion: "1.1" }));
}

async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (err) {
    const e = ConnectError.from(err);
    errorMessages.push(e.rawMessage);
    return e.code;
  }
}

const portal = (svc: TestService, authorization: string | undefined, tenantId = "") =>
  codeOf(
    clientOf(svc).getPortalLink(
      { tenantId },
      { headers: authorization === undefined ? {} : { authorization } },
    ),
  );

beforeAll(async () => {
  nats = await startNatsServer();
  standIn = await startSvixStandIn({ deliver: false });
  const env = { SVIX_TOKEN: standIn.token, SVIX_SERVER_URL: standIn.url };
  replicaA = await startTestService(nats.url, env);
  replicaB = await startTestService(nats.url, env);
});

afterAll(async () => {
  await replicaA?.stop();
  await replicaB?.stop();
  await standIn?.close();
  await nats?.dispose();
});

describe("jobhooks keys", () => {
  it("create prints only the key, on one stdout line, and exits 0", async () => {
    const res = await cli("create", "--tenant", "acme");
    issuedKeys.push(res.stdout.trim());
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^jh_live_[0-9A-Za-z]{43}\n$/);
    expect(res.stderr).not.toContain(res.stdout.trim());
  });

  it("list shows each key's id, tenant and creation time, never the key or its hash", async () => {
    const key = await createKey("listed-tenant");
    const [id] = await keyIdOf("listed-tenant");
    const res = await cli("list");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/^ID\s+TENANT\s+CREATED\s+LAST USED\n/);
    const row = res.stdout.split("\n").find((l) => l.startsWith(id ?? "?"));
    expect(row).toMatch(/^key_\w+\s+listed-tenant\s+\d{4}-\d\d-\d\dT/);
    for (const out of [res.stdout, res.stderr, (await cli("list", "--json")).stdout]) {
      for (const k of issuedKeys) {
        expect(out).not.toContain(k);
        expect(out).not.toContain(sha256(k));
      }
    }
    expect(key).toMatch(/^jh_live_/);
  });

  it("revoke removes a key by id; revoking it again says there is no such key", async () => {
    await createKey("revoked-tenant");
    const [id] = await keyIdOf("revoked-tenant");
    const res = await cli("revoke", id as string);
    expect(res.code).toBe(0);
    expect(await keyIdOf("revoked-tenant")).toEqual([]);
    const again = await cli("revoke", id as string);
    expect(again.code).not.toBe(0);
    expect(again.stderr.trim().split("\n")).toEqual([
      `jobhooks: no key with id ${id} (\`jobhooks keys list\` shows the ids)`,
    ]);
  });

  it.each([
    ["a dot", "acme.eu"],
    ["Svix's reserved prefix", "app_acme"],
    ["an empty name", ""],
    ["129 characters", "t".repeat(129)],
  ])("create with %s as tenant exits non-zero with a one-line reason", async (_name, tenant) => {
    const res = await cli("create", "--tenant", tenant);
    expect(res.code).not.toBe(0);
    expect(res.stdout).toBe("");
    const lines = res.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^jobhooks: --tenant /);
  });
});

describe("who may call GetPortalLink", () => {
  it.each([
    ["no Authorization header", undefined],
    ["a malformed header", "Basic YWNtZTpzZWNyZXQ="],
    ["a bearer that is not a key", "Bearer jh_live_short"],
    ["an unknown, well-formed key", `Bearer jh_live_${"A".repeat(43)}`],
  ])("%s gets UNAUTHENTICATED", async (_name, authorization) => {
    expect(await portal(replicaA, authorization)).toBe(Code.Unauthenticated);
  });

  it("a revoked key gets UNAUTHENTICATED", async () => {
    const key = await createKey("gone-tenant");
    expect(await portal(replicaA, `Bearer ${key}`)).toBe("ok");
    const [id] = await keyIdOf("gone-tenant");
    expect((await cli("revoke", id as string)).code).toBe(0);
    await until(
      "the revoked key refused",
      async () => (await portal(replicaA, `Bearer ${key}`)) === Code.Unauthenticated,
      { timeoutMs: 5_000, everyMs: 100 },
    );
  });

  it("tenant A's key asking for tenant B gets PERMISSION_DENIED", async () => {
    const key = await createKey("tenant-a");
    expect(await portal(replicaA, `Bearer ${key}`, "tenant-b")).toBe(Code.PermissionDenied);
    expect(await portal(replicaA, `Bearer ${key}`, "tenant-a")).toBe("ok");
  });

  it("a customer key calling PublishJobEvent gets PERMISSION_DENIED", async () => {
    const key = await createKey("publisher-wannabe");
    const client = createClient(WebhookService, createGrpcTransport({ baseUrl: replicaA.url }));
    const code = await codeOf(
      client.publishJobEvent(
        { event: { tenantId: "publisher-wannabe", jobId: "j1", status: JobStatus.CREATED } },
        { headers: { authorization: `Bearer ${key}` } },
      ),
    );
    expect(code).toBe(Code.PermissionDenied);
  });

  it("a service token may open any tenant's portal, and must say which", async () => {
    expect(await portal(replicaA, `Bearer ${SERVICE_TOKEN}`, "any-tenant-1")).toBe("ok");
    expect(await portal(replicaB, `Bearer ${SERVICE_TOKEN}`, "any-tenant-2")).toBe("ok");
    expect(await portal(replicaA, `Bearer ${SERVICE_TOKEN}`, "")).toBe(Code.InvalidArgument);
  });
});

describe("revocation reaches every replica", () => {
  it("a second running replica refuses a revoked key within 5 seconds", async () => {
    const key = await createKey("two-replicas");
    // Both replicas have seen (and cached) the key before it is revoked.
    expect(await portal(replicaA, `Bearer ${key}`)).toBe("ok");
    expect(await portal(replicaB, `Bearer ${key}`)).toBe("ok");
    const [id] = await keyIdOf("two-replicas");
    expect((await cli("revoke", id as string)).code).toBe(0);
    const revokedAt = Date.now();
    await until(
      "replica B refusing the revoked key",
      async () => (await portal(replicaB, `Bearer ${key}`)) === Code.Unauthenticated,
      { timeoutMs: 5_000 },
    );
    expect(Date.now() - revokedAt).toBeLessThan(5_000);
  });
});

describe("a key stays secret", () => {
  it("no key and no key's hash appears in either replica's logs or in any error message", () => {
    expect(issuedKeys.length).toBeGreaterThan(3);
    const everything = [replicaA.log.text(), replicaB.log.text(), ...errorMessages].join("\n");
    expect(everything).toContain("portal link issued");
    for (const key of issuedKeys) {
      expect(everything).not.toContain(key);
      expect(everything).not.toContain(sha256(key));
    }
  });
});
