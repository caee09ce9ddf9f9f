import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { listDeadLetters, replayDeadLetters } from "../../src/relay/dlq.js";
import { until } from "../support/poll.js";
import { SERVICE_TOKEN, startTestService, type TestService } from "../support/service.js";
import { sdkFor, startWebhookReceiver, type WebhookReceiver } from "../svix-stand-in/support.js";

// The one ordering rule, end to end: whatever path an event takes in (PublishJobEvent, the batch
// RPC, NATS), with or without the publisher's own sequence, it reaches the customer's endpoint
// with a revision, and each later event of the job has a greater one — also after the relay
// restarted with events waiting.

const TENANT = "acme";
const JOB = "job_rev";
const service = { authorization: `Bearer ${SERVICE_TOKEN}` };

let nats: NatsServer;
let svix: SvixStandIn;
let endpoint: WebhookReceiver;
let svc: TestService | undefined;
let nc: NatsConnection;

const start = () =>
  startTestService(nats.url, {
    JOBHOOKS_RELAY_ENABLED: "true",
    SVIX_TOKEN: svix.token,
    SVIX_SERVER_URL: svix.url,
  });
const client = () => {
  if (!svc) throw new Error("the service is not running");
  return createClient(WebhookService, createGrpcTransport({ baseUrl: svc.url }));
};

interface Delivered {
  type: string;
  data: { job_id: string; revision: number; status: string; sequence?: number };
}
/** What the endpoint received, first attempt of each message, in arrival order. */
function delivered(): Delivered[] {
  const seen = new Set<string>();
  const out: Delivered[] = [];
  for (const r of endpoint.received) {
    const id = String(r.headers["webhook-id"]);
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(JSON.parse(r.rawBody) as Delivered);
  }
  return out;
}
const revisionOf = (status: string) => delivered().find((d) => d.data.status === status)?.data.revision;

beforeAll(async () => {
  nats = await startNatsServer();
  svix = await startSvixStandIn({ deliver: true, timeScale: 0.001 });
  endpoint = await startWebhookReceiver();
  // The first attempt fails, so Svix's retry of it is among what the endpoint receives.
  endpoint.respondWith((index) => (index === 0 ? 500 : 204));
  await sdkFor(svix).application.getOrCreate({ name: TENANT, uid: TENANT });
  await sdkFor(svix).endpoint.create(TENANT, { url: `${endpoint.url}/hook` });
  svc = await start();
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc?.close();
  await svc?.stop();
  await svix?.close();
  await endpoint?.close();
  await nats?.dispose();
});

describe("the revision every payload carries", () => {
  it("is the stream sequence of an event published without a sequence, and grows with each later event of the job, across a relay restart", {
    timeout: 60_000,
  }, async () => {
    const created = await client().publishJobEvent(
      { event: { tenantId: TENANT, jobId: JOB, status: JobStatus.CREATED } },
      { headers: service },
    );
    await until("job.created at the endpoint", () => revisionOf("created"), { timeoutMs: 15_000 });
    const first = delivered()[0];
    // PublishJobEventResponse.stream_sequence says in advance what the endpoint will see.
    expect(first?.data.revision).toBe(Number(created.streamSequence));
    expect(first?.data).not.toHaveProperty("sequence");

    // Another publisher numbers its events of the same job: its sequence travels as given, and
    // ordering still follows the revision.
    const js = jetstream(nc);
    await js.publish(`jobs.${TENANT}.${JOB}.processing`, JSON.stringify({ sequence: "2" }));
    await until("job.processing at the endpoint", () => revisionOf("processing"), { timeoutMs: 15_000 });

    // The relay goes away with the job's next events waiting in JOBS, and comes back.
    await svc?.stop();
    svc = undefined;
    const waiting = await js.publish(
      `jobs.${TENANT}.${JOB}.completed`,
      JSON.stringify({ result: { pages: 12 } }),
    );
    svc = await start();
    await until("job.completed at the endpoint", () => revisionOf("completed"), { timeoutMs: 20_000 });
    expect(revisionOf("completed")).toBe(waiting.seq);

    // A later event through the batch RPC, after the restart; and a repeat of the first, stored once.
    const batch = await client().publishJobEvents(
      {
        events: [
          { tenantId: TENANT, jobId: "job_other", status: JobStatus.CREATED },
          { tenantId: TENANT, jobId: JOB, status: JobStatus.CANCELLED },
        ],
      },
      { headers: service },
    );
    expect(batch.results.map((r) => r.error)).toEqual([undefined, undefined]);
    const repeat = await client().publishJobEvent(
      { event: { tenantId: TENANT, jobId: JOB, status: JobStatus.CREATED } },
      { headers: service },
    );
    expect(repeat.duplicate).toBe(true);
    await until("job.cancelled at the endpoint", () => revisionOf("cancelled"), { timeoutMs: 15_000 });

    const job = delivered().filter((d) => d.data.job_id === JOB);
    expect(job.map((d) => d.data.status)).toEqual(["created", "processing", "completed", "cancelled"]);
    expect(job.map((d) => d.data.sequence)).toEqual([undefined, 2, undefined, undefined]);
    const revisions = job.map((d) => d.data.revision);
    for (let i = 1; i < revisions.length; i++) {
      expect(revisions[i], `revision of ${job[i]?.data.status}`).toBeGreaterThan(revisions[i - 1] as number);
    }
    expect(revisions.at(-1)).toBe(Number(batch.results[1]?.streamSequence));
    // Svix's retry of the failed first attempt repeated the same body, revision included.
    expect(endpoint.received.length).toBeGreaterThan(delivered().length);
    expect(new Set(endpoint.received.map((r) => r.rawBody)).size).toBe(delivered().length);
  });

  it("of a replayed dead letter is the one it was first given: a receiver that saw a later event of the job knows it is old", {
    timeout: 60_000,
  }, async () => {
    const JOB2 = "job_replayed";
    // Svix refuses the job's first event for a while: it is dead-lettered, and the job goes on.
    const refusal = svix.faults.inject({ route: `POST /api/v1/app/${TENANT}/msg`, kind: "422" });
    const failed = await client().publishJobEvent(
      {
        event: {
          tenantId: TENANT,
          jobId: JOB2,
          status: JobStatus.FAILED,
          error: { code: "oom", message: "out of memory" },
        },
      },
      { headers: service },
    );
    await until(
      "the dead letter",
      async () => (await listDeadLetters(nc)).some((d) => d.subject.includes(JOB2)),
      {
        timeoutMs: 15_000,
      },
    );
    svix.faults.remove(refusal.id);
    const retried = await client().publishJobEvent(
      { event: { tenantId: TENANT, jobId: JOB2, status: JobStatus.COMPLETED } },
      { headers: service },
    );
    const ofJob = () => delivered().filter((d) => d.data.job_id === JOB2);
    await until("job.completed at the endpoint", () => ofJob().length === 1, { timeoutMs: 15_000 });

    const dead = (await listDeadLetters(nc)).filter((d) => d.subject.includes(JOB2));
    const [replayed] = await replayDeadLetters(
      nc,
      dead.map((d) => d.seq),
    );
    expect(replayed?.kind).toBe("replayed");
    await until("the replayed job.failed at the endpoint", () => ofJob().length === 2, { timeoutMs: 15_000 });

    // Stored again after job.completed, it still carries its first revision, below completed's.
    const [completed, failedAgain] = ofJob();
    expect(completed?.data.status).toBe("completed");
    expect(completed?.data.revision).toBe(Number(retried.streamSequence));
    expect(failedAgain?.data.status).toBe("failed");
    expect(failedAgain?.data.revision).toBe(Number(failed.streamSequence));
    expect(failedAgain?.data.revision).toBeLessThan(completed?.data.revision as number);
  });
});
