import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { keepAliveFetch } from "../src/svix/keep-alive-fetch.js";

/**
 * The bare baseline the relay is measured against: consume from one JetStream consumer, POST each
 * message to the Svix stand-in, ack — at the same concurrency as the relay, with none of its work
 * (no decoding or validation, no per-job ordering, no circuit, no metrics). It POSTs with the same
 * HTTP client the relay gives the svix SDK, so the comparison measures the relay's own work. Run as a child of
 * bench/relay.ts: `node --import tsx bench/baseline-relay.ts <nats-url> <svix-url> <token> <concurrency>`.
 */
export const BASELINE_STREAM = "BASEBENCH";
export const BASELINE_PREFIX = "basebench";

export async function provisionBaseline(natsUrl: string): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: BASELINE_STREAM,
    subjects: [`${BASELINE_PREFIX}.>`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
  });
  await jsm.consumers.add(BASELINE_STREAM, {
    durable_name: "baseline",
    ack_policy: AckPolicy.Explicit,
    max_ack_pending: 10_000,
  });
  await nc.close();
}

async function run(natsUrl: string, svixUrl: string, token: string, concurrency: number): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  const js = jetstream(nc);
  const consumer = await js.consumers.get(BASELINE_STREAM, "baseline");
  const messages = await consumer.consume({ max_messages: concurrency * 2 });
  const post = keepAliveFetch({ maxSockets: concurrency * 2 });
  console.log("ready");
  let inFlight = 0;
  const waiters: Array<() => void> = [];
  for await (const m of messages) {
    if (inFlight >= concurrency) await new Promise<void>((r) => waiters.push(r));
    inFlight++;
    const [, tenant, job, status] = m.subject.split(".");
    const payload = JSON.parse(m.string()) as Record<string, unknown>;
    void post(`${svixUrl}/api/v1/app/${tenant}/msg`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        "idempotency-key": `${job}.${status}.${payload.sequence}`,
      },
      body: JSON.stringify({
        eventType: `job.${status}`,
        eventId: `${job}.${status}.${payload.sequence}`,
        payload: { type: `job.${status}`, data: payload },
        application: { uid: tenant, name: tenant },
      }),
    })
      .then(async (res) => {
        await res.arrayBuffer();
        if (res.status < 300 || res.status === 409) m.ack();
        else m.nak(100);
      })
      .catch(() => m.nak(100))
      .finally(() => {
        inFlight--;
        waiters.shift()?.();
      });
  }
}

if (process.argv[1]?.endsWith("baseline-relay.ts")) {
  const [natsUrl, svixUrl, token, concurrency] = process.argv.slice(2);
  await run(natsUrl as string, svixUrl as string, token as string, Number(concurrency ?? 64));
}
