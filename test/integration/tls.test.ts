import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { SERVICE_TOKEN, startTestService, type TestService } from "../support/service.js";

// JOBHOOKS_TLS_CERT_FILE/KEY_FILE terminate TLS on the one port: gRPC and Connect JSON both
// arrive encrypted, told apart by ALPN. Needs openssl to make a certificate; skipped without it.

let dir: string | undefined;
let cert: string | undefined;
let nats: NatsServer;
let svc: TestService | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "jobhooks-tls-"));
  try {
    await promisify(execFile)(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"]
        .concat(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"])
        .concat(["-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem")]),
      { timeout: 10_000 },
    );
    cert = await readFile(path.join(dir, "cert.pem"), "utf8");
  } catch {
    cert = undefined; // no openssl here: the tests below report themselves skipped
    return;
  }
  nats = await startNatsServer();
  svc = await startTestService(nats.url, {
    JOBHOOKS_TLS_CERT_FILE: path.join(dir, "cert.pem"),
    JOBHOOKS_TLS_KEY_FILE: path.join(dir, "key.pem"),
  });
});

afterAll(async () => {
  await svc?.stop();
  await nats?.dispose();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the service with TLS", () => {
  it("listens on https and stores events sent over gRPC and over Connect JSON", async (context) => {
    if (!svc || !cert) return context.skip();
    expect(svc.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const headers = { authorization: `Bearer ${SERVICE_TOKEN}` };
    const event = { tenantId: "tls", jobId: "job_1", status: JobStatus.CREATED };
    const overGrpc = await createClient(
      WebhookService,
      createGrpcTransport({ baseUrl: svc.url, nodeOptions: { ca: cert } }),
    ).publishJobEvent({ event }, { headers });
    const overJson = await createClient(
      WebhookService,
      createConnectTransport({ baseUrl: svc.url, httpVersion: "1.1", nodeOptions: { ca: cert } }),
    ).publishJobEvent({ event }, { headers });
    expect(overGrpc.duplicate).toBe(false);
    expect(overJson).toMatchObject({ eventId: overGrpc.eventId, duplicate: true });
  });

  it("refuses a client that does not trust its certificate", async (context) => {
    if (!svc || !cert) return context.skip();
    const untrusting = createClient(WebhookService, createGrpcTransport({ baseUrl: svc.url }));
    await expect(
      untrusting.publishJobEvent(
        { event: { tenantId: "tls", jobId: "job_2", status: JobStatus.CREATED } },
        { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } },
      ),
    ).rejects.toThrow(/certificate/);
  });
});
