import { once } from "node:events";
import * as net from "node:net";
import { fileURLToPath } from "node:url";
import { createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus } from "../../src/gen/health/v1/health_pb.js";
import { WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { startTestServer, type TestServer } from "./one-port-server.js";

const healthProto = fileURLToPath(
  new URL("../../node_modules/grpc-health-check/proto/health/v1/health.proto", import.meta.url),
);

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});

afterAll(async () => {
  await server?.listener.close({ graceMs: 2_000 });
});

describe("one port, every protocol", () => {
  it("a grpc-js client gets SERVING from Health.Check", async () => {
    const definition = protoLoader.loadSync(healthProto, { enums: String });
    type Callback = (error: grpc.ServiceError | null, response: { status: string }) => void;
    type HealthClient = grpc.Client & {
      Check(request: { service: string }, options: grpc.CallOptions, callback: Callback): void;
    };
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      grpc: {
        health: {
          v1: { Health: new (address: string, credentials: grpc.ChannelCredentials) => HealthClient };
        };
      };
    };
    const client = new loaded.grpc.health.v1.Health(
      `127.0.0.1:${server.listener.port}`,
      grpc.credentials.createInsecure(),
    );
    try {
      const answer = await new Promise<{ status: string }>((resolve, reject) => {
        client.Check({ service: "" }, { deadline: Date.now() + 5_000 }, (error, response) =>
          error ? reject(error) : resolve(response),
        );
      });
      expect(answer.status).toBe("SERVING");
    } finally {
      client.close();
    }
  });

  const transports: [string, () => Transport][] = [
    ["gRPC over HTTP/2", () => createGrpcTransport({ baseUrl: server.url })],
    ["gRPC-Web over HTTP/1.1", () => createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" })],
    ["gRPC-Web over HTTP/2", () => createGrpcWebTransport({ baseUrl: server.url, httpVersion: "2" })],
    ["Connect over HTTP/1.1", () => createConnectTransport({ baseUrl: server.url, httpVersion: "1.1" })],
    ["Connect over HTTP/2", () => createConnectTransport({ baseUrl: server.url, httpVersion: "2" })],
  ];

  it.each(transports)(
    "a Connect client speaking %s gets SERVING and reaches WebhookService",
    async (_name, transport) => {
      const health = createClient(Health, transport());
      const webhooks = createClient(WebhookService, transport());
      for (let call = 0; call < 3; call++) {
        // Several calls: the second and later ones reuse the connection the first one opened.
        const answer = await health.check({ service: "" }, { timeoutMs: 5_000 });
        expect(answer.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      }
      const link = await webhooks.getPortalLink({ tenantId: "acme" }, { timeoutMs: 5_000 });
      expect(link.url).toBe("https://portal.example/acme");
    },
  );

  it("a plain fetch of Connect JSON over HTTP/1.1 gets SERVING", async () => {
    const response = await fetch(`${server.url}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "SERVING" });
  });

  it("a path that is no RPC reaches the fallback", async () => {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(404);
    expect(await response.text()).toBe("not found\n");
  });

  it("an HTTP/1.1 request that arrives one byte at a time is answered", async () => {
    const request = "GET /nothing-here HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    const answer = await rawExchange(server.listener.port, chunksOf(request, 1), (seen) =>
      seen.includes("not found\n"),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 404 /);
  });

  it("an HTTP/2 preface that arrives one byte at a time is taken for HTTP/2", async () => {
    const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const emptySettings = "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    const answer = await rawExchange(
      server.listener.port,
      [...chunksOf(preface, 1), emptySettings],
      (seen) => seen.length >= 9,
    );
    // The server's first frame is its SETTINGS frame: 3 bytes length, then type 0x4.
    expect(answer.charCodeAt(3)).toBe(0x4);
  });
});

function chunksOf(text: string, size: number): string[] {
  const chunks: string[] = [];
  for (let at = 0; at < text.length; at += size) chunks.push(text.slice(at, at + size));
  return chunks;
}

/** Writes the chunks with a pause between each, then reads until `done` says enough. */
async function rawExchange(port: number, chunks: string[], done: (seen: string) => boolean): Promise<string> {
  const socket = net.connect(port, "127.0.0.1");
  await once(socket, "connect");
  socket.setNoDelay(true);
  let seen = "";
  const finished = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer; got ${JSON.stringify(seen)}`)), 5_000);
    socket.on("data", (data: Buffer) => {
      seen += data.toString("latin1");
      if (done(seen)) {
        clearTimeout(timer);
        resolve(seen);
      }
    });
    socket.on("error", reject);
  });
  try {
    for (const chunk of chunks) {
      socket.write(Buffer.from(chunk, "latin1"));
      // Pacing on purpose: each chunk leaves in its own packet, as from a slow client.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return await finished;
  } finally {
    socket.destroy();
  }
}
