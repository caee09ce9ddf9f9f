import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import type { NatsServer } from "../../src/local/nats-server.js";
import type { SvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { until } from "../support/poll.js";
import { publishToNats } from "../support/publish.js";
import { type RelayStack, receivedOrder, startRelayStack } from "../support/relay-stack.js";
import { SERVICE_TOKEN, type TestService } from "../support/service.js";

let nats: NatsServer;
let svix: SvixStandIn;
let svc: TestService;
let stack: RelayStack;

beforeAll(async () => {
  stack = await startRelayStack({ svix: { requestLogSize: 0 } });
  ({ nats, svix, svc } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

describe("the relay", () => {
  it("delivers 10,000 NATS events from 200 jobs and 1,000 RPC events once each, in order per job", {
    timeout: 180_000,
  }, async () => {
    const tenant = "volume";
    const natsEvents = [];
    for (let seq = 1; seq <= 50; seq++) {
      for (let j = 0; j < 200; j++) {
        natsEvents.push({
          subject: `jobs.${tenant}.nats-job-${j}.processing`,
          body: JSON.stringify({ sequence: String(seq), metadata: { source: "nats" } }),
        });
      }
    }
    const client = createClient(WebhookService, createGrpcTransport({ baseUrl: svc.url }));
    const rpcJobs = Array.from({ length: 20 }, (_, j) => `rpc-job-${j}`);
    const publishRpc = Promise.all(
      rpcJobs.map(async (jobId) => {
        for (let seq = 1; seq <= 50; seq++) {
          await client.publishJobEvent(
            {
              event: {
                tenantId: tenant,
                jobId,
                status: seq === 50 ? JobStatus.COMPLETED : JobStatus.PROCESSING,
                sequence: BigInt(seq),
                ...(seq === 50 ? { result: { pages: 12 } } : {}),
              },
            },
            { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } },
          );
        }
      }),
    );
    await Promise.all([publishToNats(nats.url, natsEvents), publishRpc]);

    await until("11,000 messages at Svix", () => svix.state.messages(tenant).length >= 11_000, {
      timeoutMs: 120_000,
      everyMs: 250,
    });
    // A wait on purpose: a duplicate would arrive after the last message, so only time shows none
    // is coming.
    await new Promise((r) => setTimeout(r, 500));
    const messages = svix.state.messages(tenant);
    expect(messages).toHaveLength(11_000);
    expect(new Set(messages.map((m) => m.eventId)).size).toBe(11_000);
    expect(svix.state.apps().filter((a) => a.uid === tenant)).toHaveLength(1);

    for (const [job, sequences] of receivedOrder(svix, tenant)) {
      expect(sequences, `order of ${job}`).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    }

    const last = messages.find((m) => m.eventId === "rpc-job-3.completed.50");
    expect(last?.eventType).toBe("job.completed");
    expect(last?.appUid).toBe(tenant);
    expect(last?.payload).toMatchObject({
      type: "job.completed",
      data: { job_id: "rpc-job-3", status: "completed", sequence: 50, result: { pages: 12 }, metadata: {} },
    });
    expect(typeof last?.payload.timestamp).toBe("string");
    const fromNats = messages.find((m) => m.eventId === "nats-job-7.processing.9");
    expect(fromNats?.payload).toMatchObject({
      type: "job.processing",
      data: { job_id: "nats-job-7", status: "processing", sequence: 9, metadata: { source: "nats" } },
    });
  });

  it("registers the five event types with a schema and an example", async () => {
    await until("five event types at Svix", () => svix.state.eventTypes().length >= 5);
    const names = svix.state.eventTypes().map((t) => t.name);
    expect(names.sort()).toEqual([
      "job.cancelled",
      "job.completed",
      "job.created",
      "job.failed",
      "job.processing",
    ]);
  });

  it("reports the relay and Svix on /readyz", async () => {
    const body = await (await fetch(`${svc.url}/readyz`)).json();
    expect(body).toEqual({
      ready: true,
      checks: { nats: { ok: true }, relay: { ok: true }, svix: { ok: true } },
    });
  });
});
