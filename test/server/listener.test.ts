import { execFile } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient, type Transport } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../src/gen/health/v1/health_pb.js";
import { WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { createHealth } from "../../src/server/health.js";
import { listenOnePort } from "../../src/server/listener.js";
import { startTestServer, type TestServer } from "./one-port-server.js";

const started: TestServer[] = [];

async function start(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const server = await startTestServer(options);
  started.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.listener.close({ graceMs: 1_000 })));
});

/** A WebhookService whose GetPortalLink waits until the test lets it finish. */
function heldRequests() {
  let entered!: () => void;
  const inHandler = new Promise<void>((resolve) => {
    entered = resolve;
  });
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    inHandler,
    release,
    webhookService: {
      async getPortalLink() {
        entered();
        await released;
        return { url: "https://portal.example/late", appId: "app_late" };
      },
    },
  };
}

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code === "ECONNREFUSED"));
  });
}

/** Resolves with how long the socket stayed open, or rejects when it is still open after `limitMs`. */
/** A plain TCP connection to the listener, open; errors (a reset as the server drops it) ignored. */
async function rawConnection(port: number): Promise<net.Socket> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await once(socket, "connect");
  return socket;
}

function closedWithin(socket: net.Socket, limitMs: number): Promise<number> {
  const since = Date.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket still open after ${limitMs} ms`)), limitMs);
    // Reading is what notices the server's FIN; a paused socket would never emit 'close'.
    socket.resume();
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(Date.now() - since);
    });
  });
}

describe("listening", () => {
  it("port 0 binds a free port, and url names it", async () => {
    const server = await start();
    expect(server.listener.port).toBeGreaterThan(0);
    expect(server.listener.url).toBe(`http://127.0.0.1:${server.listener.port}`);
  });

  it("a port already taken fails to listen", async () => {
    const server = await start();
    await expect(
      listenOnePort({ host: "127.0.0.1", port: server.listener.port, handler: () => {} }),
    ).rejects.toMatchObject({ code: "EADDRINUSE" });
  });
});

describe("graceful close", () => {
  const clients: [string, (url: string) => Transport][] = [
    ["gRPC over HTTP/2", (baseUrl) => createGrpcTransport({ baseUrl })],
    ["Connect over HTTP/1.1", (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "1.1" })],
  ];

  it.each(clients)("a %s request in flight when close() starts still completes", async (_name, transport) => {
    const held = heldRequests();
    const server = await start({ webhookService: held.webhookService });
    const call = createClient(WebhookService, transport(server.url)).getPortalLink({ tenantId: "acme" });
    await held.inHandler;

    const closed = server.listener.close({ graceMs: 10_000 });
    expect(await connectionRefused(server.listener.port)).toBe(true);
    held.release();

    expect((await call).url).toBe("https://portal.example/late");
    await closed;
  });

  it("new connections after close() are refused", async () => {
    const server = await start();
    await server.listener.close();
    expect(await connectionRefused(server.listener.port)).toBe(true);
  });

  it("a request still running when the grace period ends is cut off, and close() resolves", async () => {
    const held = heldRequests();
    const server = await start({ webhookService: held.webhookService });
    const call = createClient(WebhookService, createGrpcTransport({ baseUrl: server.url }))
      .getPortalLink({ tenantId: "acme" })
      .then(
        () => "completed",
        () => "failed",
      );
    await held.inHandler;

    const since = Date.now();
    await server.listener.close({ graceMs: 300 });
    expect(Date.now() - since).toBeGreaterThanOrEqual(250);
    expect(await call).toBe("failed");
    held.release();
  });

  it("an idle keep-alive HTTP/1.1 connection does not hold close() open", async () => {
    const server = await start();
    const agent = new http.Agent({ keepAlive: true });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        http
          .get(`${server.url}/healthz`, { agent }, (response) => {
            response.resume();
            response.once("end", () => resolve(response.statusCode ?? 0));
          })
          .once("error", reject);
      });
      expect(status).toBe(404);
      const idleSockets = Object.values(agent.freeSockets).flat();
      expect(idleSockets).toHaveLength(1);

      const since = Date.now();
      await server.listener.close({ graceMs: 20_000 });
      expect(Date.now() - since).toBeLessThan(2_000);
    } finally {
      agent.destroy();
    }
  });

  it("an idle HTTP/2 connection does not hold close() open", async () => {
    const server = await start();
    const session = http2.connect(server.url);
    session.on("error", () => {});
    try {
      await once(session, "connect");
      const health = createClient(Health, createGrpcTransport({ baseUrl: server.url }));
      expect((await health.check({ service: "" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);

      const goaway = once(session, "goaway");
      const since = Date.now();
      await server.listener.close({ graceMs: 20_000 });
      expect(Date.now() - since).toBeLessThan(2_000);
      await goaway;
    } finally {
      session.destroy();
    }
  });
});

describe("slow and idle clients", () => {
  it("a connection that sends nothing is dropped after the first-bytes time-out", async () => {
    const server = await start({ timeouts: { firstBytesMs: 200 } });
    const socket = await rawConnection(server.listener.port);
    const openFor = await closedWithin(socket, 5_000);
    expect(openFor).toBeGreaterThanOrEqual(150);
  });

  it("a connection that sends only part of the HTTP/2 preface is dropped too", async () => {
    const server = await start({ timeouts: { firstBytesMs: 200 } });
    const socket = await rawConnection(server.listener.port);
    socket.write("PRI * HTTP/2.0\r\n");
    await closedWithin(socket, 5_000);
  });

  it("an HTTP/1.1 client that never finishes its headers is dropped after the headers time-out", async () => {
    const server = await start({ timeouts: { headersMs: 300, firstBytesMs: 10_000 } });
    const socket = await rawConnection(server.listener.port);
    socket.write("GET /healthz HTTP/1.1\r\nHost: test\r\n");
    const openFor = await closedWithin(socket, 5_000);
    expect(openFor).toBeGreaterThanOrEqual(250);
  });

  it("an idle keep-alive HTTP/1.1 connection is closed after the keep-alive time-out", async () => {
    const server = await start({ timeouts: { keepAliveMs: 200 } });
    const socket = await rawConnection(server.listener.port);
    socket.write("GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n");
    await once(socket, "data");
    await closedWithin(socket, 5_000);
  });

  it("an HTTP/2 connection without streams gets GOAWAY after the idle time-out", async () => {
    const server = await start({ timeouts: { idleSessionMs: 300 } });
    const session = http2.connect(server.url);
    session.on("error", () => {});
    try {
      const since = Date.now();
      await once(session, "goaway");
      expect(Date.now() - since).toBeGreaterThanOrEqual(250);
    } finally {
      session.destroy();
    }
  });

  it("an HTTP/2 connection with an open stream is not closed for being idle", async () => {
    const server = await start({ timeouts: { idleSessionMs: 200 } });
    const abort = new AbortController();
    const stream = createClient(Health, createGrpcTransport({ baseUrl: server.url }))
      .watch({ service: "" }, { signal: abort.signal })
      [Symbol.asyncIterator]();
    try {
      expect((await stream.next()).value?.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      // A wait on purpose: three idle timeouts pass while the stream stays open.
      await new Promise((resolve) => setTimeout(resolve, 600));
      server.health.set("", false);
      expect((await stream.next()).value?.status).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
    } finally {
      abort.abort();
    }
  });
});

describe("with TLS", () => {
  let tls: { cert: string; key: string } | undefined;

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), "jobhooks-tls-"));
    try {
      await promisify(execFile)(
        "openssl",
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1"]
          .concat(["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"])
          .concat(["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")]),
        { timeout: 10_000 },
      );
      tls = {
        cert: await readFile(join(dir, "cert.pem"), "utf8"),
        key: await readFile(join(dir, "key.pem"), "utf8"),
      };
    } catch {
      tls = undefined; // no openssl here: the test below reports itself skipped
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("HTTP/1.1 and HTTP/2 clients are told apart by ALPN, and close() still resolves", async (context) => {
    if (!tls) return context.skip();
    const health = createHealth();
    const listener = await listenOnePort({
      host: "127.0.0.1",
      port: 0,
      tls,
      handler: connectNodeAdapter({ routes: (router) => health.registerOn(router) }),
      onClosing: () => health.shutdown(),
    });
    try {
      expect(listener.url).toBe(`https://127.0.0.1:${listener.port}`);
      const ca = tls.cert;
      for (const transport of [
        createGrpcTransport({ baseUrl: listener.url, nodeOptions: { ca } }),
        createConnectTransport({ baseUrl: listener.url, httpVersion: "1.1", nodeOptions: { ca } }),
        createConnectTransport({ baseUrl: listener.url, httpVersion: "2", nodeOptions: { ca } }),
      ]) {
        const answer = await createClient(Health, transport).check({ service: "" });
        expect(answer.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      }
      const since = Date.now();
      await listener.close({ graceMs: 20_000 });
      expect(Date.now() - since).toBeLessThan(2_000);
    } finally {
      await listener.close({ graceMs: 1_000 });
    }
  });
});
