import * as http2 from "node:http2";
import * as net from "node:net";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { Health } from "../../src/gen/health/v1/health_pb.js";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { createHealth } from "../../src/server/health.js";
import { defaultTimeouts } from "../../src/server/listener.js";
import { until } from "../support/poll.js";
import { SERVICE_TOKEN, useServiceWithNats } from "../support/service.js";

/** Issue 11.5: connections, streams, and the time a request may hold them are bounded. */
const stack = useServiceWithNats({ JOBHOOKS_MAX_CONNECTIONS: "3", JOBHOOKS_RPC_DEADLINE_MS: "500" });

function remoteSettings(url: string): Promise<http2.Settings> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.once("remoteSettings", (settings) => {
      session.close();
      resolve(settings);
    });
    session.once("error", reject);
  });
}

/** Opens a TCP connection and reports whether the server closed it within `ms`. */
function closedWithin(port: number, ms: number): Promise<{ socket: net.Socket; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    const timer = setTimeout(() => resolve({ socket, closed: false }), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve({ socket, closed: true });
    });
    socket.on("error", () => {});
  });
}

describe("bounded connections", () => {
  it("HTTP/2 announces SETTINGS_MAX_CONCURRENT_STREAMS of 100, not 2^32-1", async () => {
    const settings = await remoteSettings(stack.svc.url);
    expect(settings.maxConcurrentStreams).toBe(100);
  });

  it("connections beyond JOBHOOKS_MAX_CONNECTIONS are closed as they arrive; the first ones stay", async () => {
    const port = Number(new URL(stack.svc.url).port);
    const open = [];
    for (let i = 0; i < 3; i++) open.push(await closedWithin(port, 200));
    const extra = await closedWithin(port, 2_000);
    try {
      expect(open.map((o) => o.closed)).toEqual([false, false, false]);
      expect(extra.closed).toBe(true);
    } finally {
      for (const o of [...open, extra]) o.socket.destroy();
    }
    // Once they are gone (the server notices their close in its own time), new callers get in again.
    await until(
      "a new connection kept open",
      async () => {
        const again = await closedWithin(port, 300);
        again.socket.destroy();
        return !again.closed;
      },
      { timeoutMs: 5_000 },
    );
  });

  it("a unary RPC gets DEADLINE_EXCEEDED at the server's deadline when the caller set none", async () => {
    await stack.nats.stop();
    try {
      const client = createClient(WebhookService, createGrpcTransport({ baseUrl: stack.svc.url }));
      const started = Date.now();
      const err = await client
        .publishJobEvent(
          { event: { tenantId: "acme", jobId: "j-deadline", status: JobStatus.CREATED } },
          { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } },
        )
        .catch((e: unknown) => ConnectError.from(e));
      expect(err).toBeInstanceOf(ConnectError);
      expect([Code.DeadlineExceeded, Code.Unavailable]).toContain((err as ConnectError).code);
      // Far below the 10 s JOBHOOKS_PUBLISH_TIMEOUT_MS the publish would otherwise wait.
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      await stack.nats.restart();
    }
  });

  it("the HTTP/1.1 request timeout is far below 300 s", () => {
    expect(defaultTimeouts.requestMs).toBeLessThanOrEqual(30_000);
    expect(defaultTimeouts.headersMs).toBeLessThanOrEqual(10_000);
  });
});

describe("bounded health watchers", () => {
  it("one Watch more than the cap is RESOURCE_EXHAUSTED; the others keep watching", async () => {
    const health = createHealth({ maxWatchers: 2 });
    const transport = createRouterTransport((router) => health.registerOn(router));
    const client = createClient(Health, transport);
    const ac = new AbortController();
    const a = client.watch({ service: "" }, { signal: ac.signal })[Symbol.asyncIterator]();
    const b = client.watch({ service: "" }, { signal: ac.signal })[Symbol.asyncIterator]();
    await a.next();
    await b.next();
    const c = client.watch({ service: "" }, { signal: ac.signal })[Symbol.asyncIterator]();
    const err = await c.next().catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.ResourceExhausted);
    health.set("", false);
    expect((await a.next()).done).toBe(false);
    ac.abort();
  });
});
