import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EventLocation, JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { failure, retryAfterMs } from "../support/rpc-errors.js";
import { SERVICE_TOKEN, startTestService, type TestService } from "../support/service.js";

// An API-only replica (relay off): events stay in JOBS, and ListJobDeliveries says they wait there.

let nats: NatsServer;
let standIn: SvixStandIn;
let svc: TestService;
const service = { authorization: `Bearer ${SERVICE_TOKEN}` };

beforeAll(async () => {
  nats = await startNatsServer();
  standIn = await startSvixStandIn({ deliver: false });
  svc = await startTestService(nats.url, {
    SVIX_TOKEN: standIn.token,
    SVIX_SERVER_URL: standIn.url,
    JOBHOOKS_PORTAL_RATE_PER_MIN: "1",
    JOBHOOKS_PORTAL_BURST: "3",
  });
});

afterAll(async () => {
  await svc?.stop();
  await standIn?.close();
  await nats?.dispose();
});

describe("ListJobDeliveries before the relay has sent an event", () => {
  it("lists the job's stored events as waiting in NATS, in the order they were accepted, without Svix data", async () => {
    const client = createClient(WebhookService, createGrpcTransport({ baseUrl: svc.url }));
    const first = await client.publishJobEvent(
      { event: { tenantId: "acme", jobId: "job_w", status: JobStatus.CREATED } },
      { headers: service },
    );
    const second = await client.publishJobEvent(
      { event: { tenantId: "acme", jobId: "job_w", status: JobStatus.PROCESSING, eventId: "custom-id-7" } },
      { headers: service },
    );
    await client.publishJobEvent(
      { event: { tenantId: "acme", jobId: "other_job", status: JobStatus.CREATED } },
      { headers: service },
    );
    const res = await client.listJobDeliveries({ tenantId: "acme", jobId: "job_w" }, { headers: service });
    expect(
      res.events.map((e) => [e.eventId, e.status, e.location, e.svixMessageId, e.endpoints.length]),
    ).toEqual([
      [first.eventId, JobStatus.CREATED, EventLocation.WAITING, "", 0],
      [second.eventId, JobStatus.PROCESSING, EventLocation.WAITING, "", 0],
    ]);
    expect(res.events[0]?.occurredAt).toBeDefined();
  });

  it("a caller asking too often is told to retry later, per tenant", async () => {
    const client = createClient(WebhookService, createGrpcTransport({ baseUrl: svc.url }));
    const ask = (tenantId: string) =>
      client.listJobDeliveries({ tenantId, jobId: "job_r" }, { headers: service }).then(
        () => "ok",
        (err: unknown) => Code[ConnectError.from(err).code],
      );
    // Burst 3 per (token, tenant); the previous test used one of acme's.
    expect([await ask("acme"), await ask("acme"), await ask("acme")]).toEqual([
      "ok",
      "ok",
      "ResourceExhausted",
    ]);
    expect(await ask("globex")).toBe("ok");
  });
});

describe("ListJobDeliveries when Svix fails", () => {
  const ask = (tenantId: string) =>
    failure(
      createClient(WebhookService, createGrpcTransport({ baseUrl: svc.url })).listJobDeliveries(
        { tenantId, jobId: "job_f" },
        { headers: service },
      ),
    );
  afterEach(() => standIn.faults.clear());

  it.each([
    ["listing the job's tagged messages", "message.list"],
    ["looking up one event's message", "message.get"],
  ])("a Svix outage while %s is UNAVAILABLE with Svix's retry delay", async (_what, route) => {
    standIn.faults.inject({ route, kind: "503", retryAfterSeconds: 7 });
    const err = await ask(`outage-${route.replace(".", "-")}`);
    expect(err.code).toBe(Code.Unavailable);
    expect(retryAfterMs(err)).toBe(7_000);
  });

  it("a lookup Svix refuses is INTERNAL with a safe message, the reason only in the log", async () => {
    standIn.faults.inject({ route: "message.get", kind: "422" });
    const err = await ask("refused");
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("could not read deliveries from Svix");
    expect(svc.log.text()).toContain("job deliveries: Svix refused");
  });
});
