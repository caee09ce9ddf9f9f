import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, type HealthCheckResponse } from "../../src/gen/health/v1/health_pb.js";
import { createHealth, ServingStatus } from "../../src/server/health.js";
import { startTestServer, type TestServer } from "./one-port-server.js";

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.listener.close({ graceMs: 2_000 });
});

const grpcClient = () => createClient(Health, createGrpcTransport({ baseUrl: server.url }));

/** Reads exactly `count` messages (or fewer if the stream ends), so a test can never spin forever. */
async function take(stream: AsyncIterator<HealthCheckResponse>, count: number): Promise<ServingStatus[]> {
  const statuses: ServingStatus[] = [];
  for (let i = 0; i < count; i++) {
    const next = await stream.next();
    if (next.done) break;
    statuses.push(next.value.status);
  }
  return statuses;
}

describe("grpc.health.v1", () => {
  it("Check answers SERVING for the whole server", async () => {
    const answer = await grpcClient().check({ service: "" });
    expect(answer.status).toBe(ServingStatus.SERVING);
  });

  it("Check of a service nobody registered is NOT_FOUND", async () => {
    const failure = await grpcClient()
      .check({ service: "no.such.Service" })
      .catch((error: unknown) => ConnectError.from(error));
    expect(failure).toBeInstanceOf(ConnectError);
    expect((failure as ConnectError).code).toBe(Code.NotFound);
  });

  it("List names every registered service with its status", async () => {
    server.health.set("jobhooks.v1.WebhookService", false);
    const answer = await grpcClient().list({});
    expect(answer.statuses[""]?.status).toBe(ServingStatus.SERVING);
    expect(answer.statuses["jobhooks.v1.WebhookService"]?.status).toBe(ServingStatus.NOT_SERVING);
  });

  const watchers: [string, () => Transport][] = [
    ["gRPC over HTTP/2", () => createGrpcTransport({ baseUrl: server.url })],
    ["Connect over HTTP/1.1", () => createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" })],
  ];

  it.each(watchers)("Watch over %s sends the current status, then each change", async (_name, transport) => {
    const service = `watched.${Math.random()}`;
    server.health.set(service, true);
    const abort = new AbortController();
    const stream = createClient(Health, transport())
      .watch({ service }, { signal: abort.signal })
      [Symbol.asyncIterator]();
    try {
      expect(await take(stream, 1)).toEqual([ServingStatus.SERVING]);
      server.health.set(service, false);
      expect(await take(stream, 1)).toEqual([ServingStatus.NOT_SERVING]);
      server.health.set(service, ServingStatus.SERVING);
      expect(await take(stream, 1)).toEqual([ServingStatus.SERVING]);
    } finally {
      abort.abort();
    }
  });

  it("Watch of an unknown service answers SERVICE_UNKNOWN, then its status once it is set", async () => {
    const service = `late.${Math.random()}`;
    const abort = new AbortController();
    const stream = grpcClient().watch({ service }, { signal: abort.signal })[Symbol.asyncIterator]();
    try {
      expect(await take(stream, 1)).toEqual([ServingStatus.SERVICE_UNKNOWN]);
      server.health.set(service, true);
      expect(await take(stream, 1)).toEqual([ServingStatus.SERVING]);
    } finally {
      abort.abort();
    }
  });

  it("a client that cancels its Watch leaves the server serving others", async () => {
    for (let round = 0; round < 3; round++) {
      const abort = new AbortController();
      const stream = grpcClient().watch({ service: "" }, { signal: abort.signal })[Symbol.asyncIterator]();
      expect(await take(stream, 1)).toEqual([ServingStatus.SERVING]);
      abort.abort();
    }
    expect((await grpcClient().check({ service: "" })).status).toBe(ServingStatus.SERVING);
  });
});

describe("health on shutdown", () => {
  it("close() tells watchers NOT_SERVING, ends their streams, and resolves well within the grace period", async () => {
    const closing = await startTestServer();
    const grpcStream = createClient(Health, createGrpcTransport({ baseUrl: closing.url }))
      .watch({ service: "" })
      [Symbol.asyncIterator]();
    const connectStream = createClient(
      Health,
      createConnectTransport({ baseUrl: closing.url, httpVersion: "1.1" }),
    )
      .watch({ service: "" })
      [Symbol.asyncIterator]();
    try {
      expect(await take(grpcStream, 1)).toEqual([ServingStatus.SERVING]);
      expect(await take(connectStream, 1)).toEqual([ServingStatus.SERVING]);

      const started = Date.now();
      const closed = closing.listener.close({ graceMs: 20_000 });
      // take(…, 2) reads NOT_SERVING and then sees the end of the stream (nothing more comes).
      expect(await take(grpcStream, 2)).toEqual([ServingStatus.NOT_SERVING]);
      expect(await take(connectStream, 2)).toEqual([ServingStatus.NOT_SERVING]);
      await closed;
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await closing.listener.close({ graceMs: 1_000 });
    }
  });

  it("a status set after shutdown is ignored", () => {
    const health = createHealth();
    health.shutdown();
    health.set("", true);
    expect(health.get("")).toBe(ServingStatus.NOT_SERVING);
  });
});
