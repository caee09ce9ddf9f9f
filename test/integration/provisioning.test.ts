import { jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
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
    expect(names.sort()).toEqual([
      "JOBHOOKS_AUDIT",
      "JOBS",
      "JOBS_DLQ",
      "KV_jobhooks_api_key_use",
      "KV_jobhooks_api_keys",
      "KV_jobhooks_tenant_deletions",
    ]);
    expect(consumers).toEqual(["jobhooks-relay"]);
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
