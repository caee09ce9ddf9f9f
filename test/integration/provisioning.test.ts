import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { jobsFirstSequence } from "../../src/nats/provision.js";
import { startTestService } from "../support/service.js";

let nats: NatsServer | undefined;

afterEach(async () => {
  await nats?.dispose();
  nats = undefined;
});

describe("stream provisioning at start", () => {
  it("creates the streams once and adopts them on every later start", async () => {
    nats = await startNatsServer();
    const first = await startTestService(nats.url);
    const second = await startTestService(nats.url);
    await Promise.all([first.stop(), second.stop()]);
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    const names: string[] = [];
    for await (const s of jsm.streams.list()) names.push(s.config.name);
    const consumers: string[] = [];
    for await (const c of jsm.consumers.list("JOBS")) consumers.push(c.name);
    await nc.close();
    expect(names.sort()).toEqual(["JOBS", "JOBS_DLQ", "KV_jobhooks_api_keys"]);
    expect(consumers).toEqual(["jobhooks-relay"]);
  });

  it("numbers a JOBS stream made again above the one it replaces (endpoints order by its sequence)", async () => {
    nats = await startNatsServer();
    const nc = await connect({ servers: nats.url });
    try {
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      const before = Date.now();
      await (await startTestService(nats.url)).stop();
      const old = await js.publish("jobs.acme.job_1.created", "{}");
      expect(old.seq).toBeGreaterThanOrEqual(jobsFirstSequence(before));
      // An operator deletes JOBS (say, to get rid of a flood); the next start makes it again.
      await jsm.streams.delete("JOBS");
      await (await startTestService(nats.url)).stop();
      const next = await js.publish("jobs.acme.job_1.processing", "{}");
      expect(next.seq).toBeGreaterThan(old.seq);
    } finally {
      await nc.close();
    }
  });

  it("refuses to start on an existing JOBS stream with conflicting settings, saying what differs", async () => {
    nats = await startNatsServer();
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    // A memory stream would lose accepted events on a restart: never adopt it silently.
    await jsm.streams.add({
      name: "JOBS",
      subjects: ["jobs.>"],
      storage: StorageType.Memory,
      retention: RetentionPolicy.Limits,
    });
    await nc.close();
    const err = await startTestService(nats.url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/stream JOBS exists with conflicting settings/);
    expect((err as Error).message).toMatch(/storage is memory, want file/);
    expect((err as Error).message).toMatch(/retention is limits, want workqueue/);
  });
});
