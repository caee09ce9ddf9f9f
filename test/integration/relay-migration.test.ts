import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { connect, nanos } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { publishToNats, waitFor } from "../support/publish.js";
import { expectExactlyOnceInOrder, jobEvents } from "../support/relay-stack.js";
import { readStream, startTestService, type TestService } from "../support/service.js";

/**
 * An existing deployment: JOBS as the partitioned layout made it (the provisioning config of that
 * release, written out here), holding events, then the new service starts on it.
 */
const PARTITIONS = 64;
let nats: NatsServer;
let svix: SvixStandIn;
let svc: TestService | undefined;

async function createPartitionedLayout(url: string): Promise<void> {
  const nc = await connect({ servers: url });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: "JOBS",
    subjects: ["jobs.*.*.*"],
    subject_transform: {
      src: "jobs.*.*.*",
      dest: `jobs.{{partition(${PARTITIONS},1,2)}}.{{wildcard(1)}}.{{wildcard(2)}}.{{wildcard(3)}}`,
    },
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: 1,
    duplicate_window: nanos(120_000),
    max_msg_size: 2 * 1024 * 1024,
    discard: DiscardPolicy.Old,
    allow_direct: true,
  });
  await jsm.streams.add({
    name: "JOBS_DLQ",
    subjects: ["jobs_dlq.>"],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: 1,
    max_msg_size: 2 * 1024 * 1024 + 64 * 1024,
    discard: DiscardPolicy.Old,
    allow_direct: true,
  });
  for (let p = 0; p < PARTITIONS; p++) {
    await jsm.consumers.add("JOBS", {
      durable_name: `jobhooks-relay-${String(p).padStart(2, "0")}`,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      filter_subject: `jobs.${p}.*.*.*`,
      ack_wait: nanos(30_000),
      max_deliver: -1,
      max_ack_pending: 1,
      num_replicas: 1,
    });
  }
  await nc.close();
}

beforeAll(async () => {
  nats = await startNatsServer();
  svix = await startSvixStandIn({ deliver: false });
  await createPartitionedLayout(nats.url);
});

afterAll(async () => {
  await svc?.stop();
  await svix?.close();
  await nats?.dispose();
});

describe("taking over a JOBS stream made by the partitioned layout", () => {
  it("relays the events already stored, and those published after, once each and in order per job", {
    timeout: 120_000,
  }, async () => {
    // Events 1-4 of each job stored under partitioned subjects, before the upgrade.
    const all = jobEvents("migrated", 60, 8);
    const before = all.filter((m) => Number(JSON.parse(String(m.body)).sequence) <= 4);
    const after = all.filter((m) => Number(JSON.parse(String(m.body)).sequence) > 4);
    await publishToNats(nats.url, before);
    const stored = await readStream(nats.url);
    expect(stored).toHaveLength(240);
    expect(stored.every((m) => /^jobs\.\d+\.migrated\.job-\d+\.processing$/.test(m.subject))).toBe(true);

    // Svix down at the upgrade: the old-shaped events are still waiting when new-shaped ones of
    // the same jobs arrive. Then a flaky Svix sends some of each job's earlier events back for a
    // retry while its later events (stored under the new subject) are already here: they must wait.
    const outage = svix.faults.inject({ route: "v1.message.create", kind: "503" });
    svc = await startTestService(nats.url, {
      JOBHOOKS_RELAY_ENABLED: "true",
      SVIX_TOKEN: svix.token,
      SVIX_SERVER_URL: svix.url,
    });
    // At start-up the old-shaped events were stored again under their published subjects, in
    // order: the relay reads one shape.
    const movedAtStart = await readStream(nats.url);
    expect(movedAtStart).toHaveLength(240);
    expect(movedAtStart.every((m) => /^jobs\.migrated\.job-\d+\.processing$/.test(m.subject))).toBe(true);
    await publishToNats(nats.url, after);
    expect((await readStream(nats.url)).filter((m) => /^jobs\.migrated\./.test(m.subject))).toHaveLength(480);
    svix.faults.inject({ route: "v1.message.create", kind: "latency", latencyMs: 20, fraction: 1 });
    svix.faults.inject({ route: "v1.message.create", kind: "503", fraction: 0.3 });
    svix.faults.remove(outage.id);

    expect(await waitFor(() => svix.state.messages("migrated").length >= 480, 90_000, 250)).toBe(true);
    svix.faults.clear();
    await new Promise((r) => setTimeout(r, 1_000)); // a late duplicate would arrive now
    expectExactlyOnceInOrder(svix, "migrated", 60, 8);
    // Endpoints order a job's events by their revision: it grows across the two subject shapes too.
    const revisions = new Map<string, number[]>();
    for (const m of svix.state.messages("migrated")) {
      const d = m.payload.data as { job_id: string; revision: number };
      revisions.set(d.job_id, [...(revisions.get(d.job_id) ?? []), d.revision]);
    }
    for (const [job, list] of revisions) {
      expect(list, job).toEqual([...list].sort((a, b) => a - b));
      expect(new Set(list).size, job).toBe(8);
    }

    // The layout is the new one: no transform, one consumer, nothing left behind.
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info("JOBS");
    const consumers: string[] = [];
    for await (const c of jsm.consumers.list("JOBS")) consumers.push(c.name);
    await nc.close();
    expect(info.config.subject_transform ?? undefined).toBeUndefined();
    expect(consumers).toEqual(["jobhooks-relay"]);
    expect(info.state.messages).toBe(0);
    expect(svc.log.text()).toContain("taking over the partitioned JOBS layout");
  });

  it("replicas starting together move every old-shaped event once, each job's events still in order", {
    timeout: 60_000,
  }, async () => {
    const other = await startNatsServer();
    try {
      await createPartitionedLayout(other.url);
      const events = jobEvents("together", 40, 6);
      // Events 1-3 stored by the partitioned layout, 4-6 after its transform was removed (as if a
      // first replica of this release had dropped it and then died before moving anything).
      const seqOf = (m: (typeof events)[number]) => Number(JSON.parse(String(m.body)).sequence);
      await publishToNats(
        other.url,
        events.filter((m) => seqOf(m) <= 3),
      );
      const nc = await connect({ servers: other.url });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.update("JOBS", { subject_transform: undefined });
      await nc.close();
      await publishToNats(
        other.url,
        events.filter((m) => seqOf(m) > 3),
      );
      const [a, b] = await Promise.all([startTestService(other.url), startTestService(other.url)]);
      await Promise.all([a.stop(), b.stop()]);

      const stored = await readStream(other.url);
      expect(stored).toHaveLength(240);
      expect(stored.every((m) => /^jobs\.together\.job-\d+\.processing$/.test(m.subject))).toBe(true);
      const byJob = new Map<string, number[]>();
      for (const m of stored) {
        const job = m.subject.split(".")[2] as string;
        byJob.set(job, [...(byJob.get(job) ?? []), Number(m.json.sequence)]);
      }
      expect(byJob.size).toBe(40);
      for (const sequences of byJob.values()) expect(sequences).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      await other.dispose();
    }
  });
});
