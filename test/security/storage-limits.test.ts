import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { DiscardPolicy, jetstreamManager } from "@nats-io/jetstream";
import { connect, nanos } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { createLogger } from "../../src/log/logger.js";
import { DLQ_STREAM, JOBS_STREAM } from "../../src/nats/provision.js";
import { createSvixGateway } from "../../src/svix/gateway.js";
import { readStream, SERVICE_TOKEN, startTestService } from "../support/service.js";

let nats: NatsServer;

beforeAll(async () => {
  nats = await startNatsServer();
});

afterAll(async () => {
  await nats?.dispose();
});

async function streamConfig(name: string) {
  const nc = await connect({ servers: nats.url });
  try {
    return (await (await jetstreamManager(nc)).streams.info(name)).config;
  } finally {
    await nc.close();
  }
}

describe("storage limits never drop accepted events", () => {
  it("a full JOBS stream refuses new events with UNAVAILABLE and RetryInfo, and keeps every stored one", async () => {
    // First a replica with the default limits stores a few events (nothing relays them) …
    const first = await startTestService(nats.url);
    const client = (url: string) =>
      createClient(WebhookService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
    const headers = { authorization: `Bearer ${SERVICE_TOKEN}` };
    const accepted: string[] = [];
    const publish = (url: string, i: number) =>
      client(url).publishJobEvent(
        {
          event: {
            tenantId: "acme",
            jobId: `job-${i}`,
            status: JobStatus.PROCESSING,
            metadata: { padding: "p".repeat(400) },
          },
        },
        { headers, timeoutMs: 10_000 },
      );
    for (let i = 0; i < 20; i++) accepted.push((await publish(first.url, i)).eventId);
    await first.stop();

    // … then the service restarts with a small byte limit: the adopted stream takes it.
    const svc = await startTestService(nats.url, { JOBHOOKS_STREAM_MAX_BYTES: String(64 * 1024) });
    try {
      const jobs = await streamConfig(JOBS_STREAM);
      expect(jobs.max_bytes).toBe(64 * 1024);
      expect(jobs.discard).toBe(DiscardPolicy.New);

      let refusal: ConnectError | undefined;
      for (let i = 20; i < 1_000 && !refusal; i++) {
        try {
          accepted.push((await publish(svc.url, i)).eventId);
        } catch (err) {
          refusal = ConnectError.from(err);
        }
      }
      expect(refusal, "the stream never filled up").toBeDefined();
      expect(refusal?.code).toBe(Code.Unavailable);
      const retry = refusal?.findDetails(RetryInfoSchema)[0];
      expect(Number(retry?.retryDelay?.seconds ?? 0)).toBeGreaterThan(0);

      const stored = (await readStream(nats.url)).map((m) => String(m.json.eventId));
      expect(stored).toEqual(accepted);
    } finally {
      await svc.stop();
    }
  });

  it("JOBS_DLQ is bounded by age and bytes, dropping the oldest dead letters first", async () => {
    const svc = await startTestService(nats.url, {
      JOBHOOKS_DLQ_MAX_BYTES: String(8 * 1024 * 1024),
      JOBHOOKS_DLQ_MAX_AGE_MS: String(7 * 24 * 3_600_000),
    });
    try {
      const dlq = await streamConfig(DLQ_STREAM);
      expect(dlq.max_bytes).toBe(8 * 1024 * 1024);
      expect(dlq.max_age).toBe(nanos(7 * 24 * 3_600_000));
      expect(dlq.discard).toBe(DiscardPolicy.Old);
    } finally {
      await svc.stop();
    }
  });

  it("a Svix answer larger than the cap is cut off and treated as a transient failure", async () => {
    let written = 0;
    let closed = false;
    const chunk = Buffer.alloc(64 * 1024, "x");
    const hostile = createServer((_req, res) => {
      res.writeHead(202, { "content-type": "application/json" });
      res.on("close", () => {
        closed = true;
      });
      // An endless body, bounded here at 256 MiB so the test itself cannot run away.
      const pump = () => {
        while (!closed && written < 256 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    });
    await new Promise<void>((r) => hostile.listen(0, "127.0.0.1", r));
    try {
      const { port } = hostile.address() as AddressInfo;
      const gateway = createSvixGateway({
        token: "testsk_hostile",
        serverUrl: `http://127.0.0.1:${port}`,
        requestTimeoutMs: 30_000,
        log: createLogger("silent"),
      });
      const outcome = await gateway.createMessage("acme", {
        eventType: "job.created",
        eventId: "job-1.created",
        payload: { type: "job.created", timestamp: new Date().toISOString(), data: {} },
      } as never);
      expect(outcome).toMatchObject({ kind: "transient" });
      expect((outcome as { reason: string }).reason).toMatch(/larger than/);
      expect(written).toBeLessThan(32 * 1024 * 1024);
    } finally {
      hostile.closeAllConnections();
      await new Promise((r) => hostile.close(r));
    }
  });
});
