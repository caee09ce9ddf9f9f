import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { readStream } from "../support/service.js";
import { spawnService } from "../support/spawn-service.js";

const TOKEN = "svc_shutdown_token_0123456789abcdef";
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

describe("SIGTERM", () => {
  it("during 1,000 concurrent PublishJobEvent calls keeps every acknowledged event and exits 0", async () => {
    const svc = await spawnService({
      NATS_URL: nats.url,
      SVIX_TOKEN: "testsk_unused",
      JOBHOOKS_SERVICE_TOKENS_FILE: path.join(dir, "tokens"),
      JOBHOOKS_RELAY_ENABLED: "false",
    });
    // Several connections, as several callers would have.
    const clients = Array.from({ length: 4 }, () =>
      createClient(WebhookService, createGrpcTransport({ baseUrl: svc.url })),
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
            svc.child.kill("SIGTERM");
          }
          return res.eventId;
        }),
    );
    const results = await Promise.allSettled(calls);
    if (!signalled) svc.child.kill("SIGTERM");
    expect(await svc.exit).toBe(0);

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
