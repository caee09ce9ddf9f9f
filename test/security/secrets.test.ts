import { execFile } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiKeyDigest, generateApiKey } from "../../src/credentials/api-key.js";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { API_KEYS_BUCKET } from "../../src/nats/api-key-store.js";
import { until } from "../support/poll.js";
import { startTestService } from "../support/service.js";
import { spawnService } from "../support/spawn-service.js";

let nats: NatsServer;
let dir: string;

beforeAll(async () => {
  nats = await startNatsServer();
  dir = await mkdtemp(path.join(tmpdir(), "jobhooks-secrets-"));
});

afterAll(async () => {
  await nats?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const env = (tokensFile: string) => ({
  NATS_URL: nats.url,
  SVIX_TOKEN: "testsk_unused",
  JOBHOOKS_SERVICE_TOKENS_FILE: tokensFile,
  JOBHOOKS_RELAY_ENABLED: "false",
});

/** `jobhooks serve` that is expected to refuse to start: its exit code and what it said. */
function serveRefuses(tokensFile: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", "serve"],
      { env: { ...process.env, JOBHOOKS_ADDR: "127.0.0.1:0", ...env(tokensFile) }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, output: stdout + stderr });
      },
    );
  });
}

async function publishWith(url: string, token: string): Promise<Code | "ok"> {
  const client = createClient(WebhookService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
  try {
    await client.publishJobEvent(
      { event: { tenantId: "acme", jobId: `job-${Date.now()}`, status: JobStatus.CREATED } },
      { headers: { authorization: `Bearer ${token}` }, timeoutMs: 10_000 },
    );
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("service-tokens file", () => {
  it("with no token at all stops start-up with a reason", async () => {
    const file = path.join(dir, "empty");
    await writeFile(file, "# nothing here yet\n\n", { mode: 0o600 });
    const { code, output } = await serveRefuses(file);
    expect(code).not.toBe(0);
    expect(output).toMatch(/holds no token/);
  });

  it("with a token shorter than 32 characters stops start-up without printing the token", async () => {
    const file = path.join(dir, "short");
    const short = "svc_only_31_characters_long_abc";
    expect(short).toHaveLength(31);
    await writeFile(file, `${"a".repeat(40)}\n${short}\n`, { mode: 0o600 });
    const { code, output } = await serveRefuses(file);
    expect(code).not.toBe(0);
    expect(output).toMatch(/token 2 is shorter than 32 characters/);
    expect(output).not.toContain(short);
  });

  it("readable by others is accepted with a warning, and SIGHUP swaps the tokens without a restart", async () => {
    const file = path.join(dir, "rotating");
    const oldToken = `svc_old_${"o".repeat(32)}`;
    const newToken = `svc_new_${"n".repeat(32)}`;
    await writeFile(file, `${oldToken}\n`);
    await chmod(file, 0o644);
    const svc = await spawnService(env(file));
    try {
      expect(svc.output()).toMatch(/readable by group or others \(mode 644\)/);
      expect(await publishWith(svc.url, oldToken)).toBe("ok");

      await writeFile(file, `${newToken}\n`);
      await chmod(file, 0o600);
      svc.child.kill("SIGHUP");
      await until("the new token accepted", async () => (await publishWith(svc.url, newToken)) === "ok");
      expect(await publishWith(svc.url, oldToken)).toBe(Code.Unauthenticated);

      // A broken edit keeps the working set instead of locking every service out.
      await writeFile(file, "\n");
      svc.child.kill("SIGHUP");
      await until("the refused reload in the log", () => /service tokens not reloaded/.test(svc.output()));
      expect(await publishWith(svc.url, newToken)).toBe("ok");
      expect(svc.child.exitCode).toBeNull();
    } finally {
      expect(await svc.terminate()).toBe(0);
    }
  });
});

describe("API-key records read from NATS KV", () => {
  let standIn: SvixStandIn;
  beforeAll(async () => {
    standIn = await startSvixStandIn({ deliver: false });
  });
  afterAll(async () => {
    await standIn?.close();
  });

  it("a record that is not what `keys create` writes is an unknown key", async () => {
    const svc = await startTestService(nats.url, { SVIX_TOKEN: standIn.token, SVIX_SERVER_URL: standIn.url });
    const nc = await connect({ servers: nats.url });
    try {
      const kv = await new Kvm(nc).open(API_KEYS_BUCKET);
      const good = { id: "key_0123456789abcdef", tenant_id: "acme", created_at: new Date().toISOString() };
      const forged: unknown[] = [
        "not json",
        { ...good, tenant_id: "other.tenant.>" },
        { ...good, tenant_id: "app_svix_reserved" },
        { ...good, tenant_id: 42 },
        { id: good.id, created_at: good.created_at },
        { ...good, id: "../../etc" },
        { ...good, created_at: "yesterday-ish" },
        [good],
      ];
      const client = createClient(
        WebhookService,
        createConnectTransport({ baseUrl: svc.url, httpVersion: "1.1" }),
      );
      const codes: Array<Code | "ok"> = [];
      for (const value of [...forged, good]) {
        const { key } = generateApiKey();
        await kv.put(apiKeyDigest(key), typeof value === "string" ? value : JSON.stringify(value));
        codes.push(
          await client.getPortalLink({}, { headers: { authorization: `Bearer ${key}` } }).then(
            () => "ok" as const,
            (err) => ConnectError.from(err).code,
          ),
        );
      }
      // Every forged record is refused as unknown; the well-formed one (the control) works.
      expect(codes).toEqual([...forged.map(() => Code.Unauthenticated), "ok"]);
    } finally {
      await nc.close();
      await svc.stop();
    }
  });
});
