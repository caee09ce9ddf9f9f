import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, errors, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { createLogger } from "../../src/log/logger.js";
import { provisionJetStream } from "../../src/nats/provision.js";

let nats: NatsServer | undefined;
let nc: NatsConnection | undefined;

afterEach(async () => {
  await nc?.close();
  await nats?.dispose();
  nc = undefined;
  nats = undefined;
});

/** A real JetStream manager whose stream creates first fail `failures` times with `error`. */
function failingCreates(jsm: JetStreamManager, failures: number, error: () => Error) {
  const calls = { creates: 0 };
  const streams = new Proxy(jsm.streams, {
    get(target, key, receiver) {
      if (key !== "add") return Reflect.get(target, key, receiver);
      return (...args: Parameters<typeof target.add>) => {
        calls.creates++;
        if (calls.creates <= failures) return Promise.reject(error());
        return target.add(...args);
      };
    },
  });
  const wrapped = new Proxy(jsm, {
    get: (target, key, receiver) => (key === "streams" ? streams : Reflect.get(target, key, receiver)),
  });
  return { jsm: wrapped, calls };
}

async function provision(jsm: JetStreamManager) {
  const lines: string[] = [];
  const log = createLogger("warn", { write: (line: string) => lines.push(line) });
  await provisionJetStream(jsm, { subjectPrefix: "jobs", replicas: 1, duplicateWindowMs: 120_000 }, log);
  return lines.map((l) => JSON.parse(l) as { msg: string; attempt?: number });
}

describe("stream provisioning when JetStream is slow to answer", () => {
  it("repeats a create that timed out, saying so, and then provisions the streams", async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    const real = await jetstreamManager(nc);
    const { jsm, calls } = failingCreates(real, 2, () => new errors.TimeoutError());

    const logged = await provision(jsm);

    expect(calls.creates).toBeGreaterThanOrEqual(4); // two timeouts, then JOBS and JOBS_DLQ
    const retries = logged.filter((l) => /JetStream did not answer; retrying/.test(l.msg));
    expect(retries.map((l) => l.attempt)).toEqual([1, 2]);
    const names: string[] = [];
    for await (const s of real.streams.list()) names.push(s.config.name);
    expect(names.sort()).toEqual(["JOBS", "JOBS_DLQ"]);
  });

  it("passes a permanent refusal through at once, without retrying", async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    const { jsm, calls } = failingCreates(await jetstreamManager(nc), 1, () => new Error("refused"));

    await expect(provision(jsm)).rejects.toThrow("refused");
    expect(calls.creates).toBe(1);
  });
});
