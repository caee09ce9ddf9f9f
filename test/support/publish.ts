import { jetstream } from "@nats-io/jetstream";
import { connect, headers as natsHeaders } from "@nats-io/transport-node";
import { until, WaitTimedOut } from "./poll.js";

export interface NatsPublication {
  subject: string;
  body: string | Uint8Array;
  contentType?: string;
}

/**
 * Publishes as an ordinary NATS publisher would, through JetStream (acknowledged), in order per
 * job: messages of one job go out one after another; different jobs in parallel.
 */
export async function publishToNats(
  natsUrl: string,
  messages: NatsPublication[],
  inFlight = 256,
): Promise<void> {
  const nc = await connect({ servers: natsUrl.split(",") });
  try {
    const js = jetstream(nc);
    const byJob = new Map<string, NatsPublication[]>();
    for (const m of messages) {
      const key = m.subject.split(".").slice(0, 3).join(".");
      const list = byJob.get(key) ?? [];
      list.push(m);
      byJob.set(key, list);
    }
    const queues = [...byJob.values()];
    let next = 0;
    const worker = async () => {
      for (let q = next++; q < queues.length; q = next++) {
        for (const m of queues[q] ?? []) {
          const h = natsHeaders();
          if (m.contentType) h.set("Content-Type", m.contentType);
          await js.publish(m.subject, m.body, { headers: h, timeout: 10_000 });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(inFlight, queues.length) }, worker));
  } finally {
    await nc.close();
  }
}

/**
 * The old boolean form of `until` (./poll.js), kept only for test files being changed on another
 * branch (test/integration/cluster.test.ts); new code uses `until`, which names what it awaited.
 */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  ms: number,
  everyMs = 100,
): Promise<boolean> {
  try {
    return await until("condition", check, { timeoutMs: ms, everyMs });
  } catch (err) {
    if (err instanceof WaitTimedOut) return false;
    throw err;
  }
}
