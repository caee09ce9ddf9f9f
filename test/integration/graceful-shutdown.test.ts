import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { freePort, type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { readStream } from "../support/service.js";

const TOKEN = "svc_shutdown_token_0123456789";
let nats: NatsServer;
let dir: string;

beforeAll(async () => {
  nats = await startNatsServer();
  dir = await mkdtemp(path.join(tmpdir(), "jobhooks-sigterm-"));
  await writeFile(path.join(dir, "tokens"), `${TOKEN}\n`);
});

afterAll(async () => {
  await nats?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** `jobhooks serve` as its own process, as an orchestrator runs it. */
async function spawnServe(port: number): Promise<{ child: ChildProcess; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "serve"], {
    env: {
      ...process.env,
      JOBHOOKS_ADDR: `127.0.0.1:${port}`,
      NATS_URL: nats.url,
      SVIX_TOKEN: "testsk_unused",
      JOBHOOKS_SERVICE_TOKENS_FILE: path.join(dir, "tokens"),
      LOG_LEVEL: "info",
      JOBHOOKS_RELAY_ENABLED: "false",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    output += c.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`jobhooks serve exited early:\n${output}`);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { child, exit };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`jobhooks serve did not become ready:\n${output}`);
}

describe("SIGTERM", () => {
  it("during 1,000 concurrent PublishJobEvent calls keeps every acknowledged event and exits 0", async () => {
    const port = await freePort();
    const { child, exit } = await spawnServe(port);
    // Several connections, as several callers would have.
    const clients = Array.from({ length: 4 }, () =>
      createClient(WebhookService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` })),
    );
    let acknowledged = 0;
    let signalled = false;
    let pendingAtSignal = 0;
    const calls = Array.from({ length: 1_000 }, (_, i) =>
      (clients[i % clients.length] as (typeof clients)[number])
        .publishJobEvent(
          { event: { tenantId: "acme", jobId: `sigterm-${i}`, status: JobStatus.CREATED } },
          { headers: { authorization: `Bearer ${TOKEN}` }, timeoutMs: 20_000 },
        )
        .then((res) => {
          acknowledged++;
          if (acknowledged >= 100 && !signalled) {
            signalled = true;
            pendingAtSignal = 1_000 - acknowledged;
            child.kill("SIGTERM");
          }
          return res.eventId;
        }),
    );
    const results = await Promise.allSettled(calls);
    if (!signalled) child.kill("SIGTERM");
    expect(await exit).toBe(0);

    // The signal must have landed while calls were still in flight, or this proves nothing.
    expect(pendingAtSignal).toBeGreaterThan(0);
    const ok = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    expect(ok.length).toBeGreaterThanOrEqual(100);
    const stored = (await readStream(nats.url)).map((m) => String(m.json.eventId));
    const missing = ok.filter((id) => !stored.includes(id));
    expect(missing).toEqual([]);
    expect(new Set(stored).size).toBe(stored.length);
  });
});
