import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { fromBinary } from "@bufbuild/protobuf";
import { connect } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { apiKeyDigest } from "../../src/credentials/api-key.js";
import { RetryInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../../src/gen/google/rpc/status_pb.js";
import { openApiKeyStore } from "../../src/nats/api-key-store.js";
import { SERVICE_TOKEN, useServiceWithNats } from "../support/service.js";

/** Issue 20: nobody known yet does unbounded work; limits are per method and shared memory is bounded. */

const service = { authorization: `Bearer ${SERVICE_TOKEN}` };
const methodPath = (m: string) => `/jobhooks.v1.WebhookService/${m}`;

interface Answer {
  status: number;
  body: string;
  ms: number;
}

/**
 * A Connect JSON request over HTTP/1.1 whose body is announced as `announced` bytes, of which only
 * `sent` are written (the rest never comes), or written one byte every `trickleMs`. Resolves with
 * the answer, or "no answer" after `timeoutMs`. The request is ended on the client side either way.
 */
function h1Call(
  url: string,
  path: string,
  o: {
    headers?: Record<string, string>;
    body?: string;
    announced?: number;
    trickleMs?: number;
    timeoutMs?: number;
    hold?: (release: () => void) => void;
  },
): Promise<Answer | "no answer"> {
  const u = new URL(url);
  const body = Buffer.from(o.body ?? "");
  const started = Date.now();
  return new Promise((resolve) => {
    const req = http.request({
      host: u.hostname,
      port: u.port,
      path,
      method: "POST",
      agent: false,
      headers: {
        "content-type": "application/json",
        "content-length": String(o.announced ?? body.byteLength),
        ...o.headers,
      },
    });
    let trickle: NodeJS.Timeout | undefined;
    const done = (a: Answer | "no answer") => {
      clearTimeout(timer);
      clearInterval(trickle);
      req.destroy();
      resolve(a);
    };
    const timer = setTimeout(() => done("no answer"), o.timeoutMs ?? 5_000);
    o.hold?.(() => done("no answer"));
    req.on("response", (res) => {
      let text = "";
      res.on("data", (c: Buffer) => {
        text += c.toString();
      });
      res.on("end", () => done({ status: res.statusCode ?? 0, body: text, ms: Date.now() - started }));
      res.on("error", () => {});
    });
    req.on("error", () => {});
    if (o.trickleMs) {
      let i = 0;
      trickle = setInterval(() => {
        if (i < body.length) req.write(body.subarray(i, ++i));
      }, o.trickleMs);
    } else {
      req.write(body);
      if (o.announced === undefined) req.end();
    }
  });
}

/** gRPC status of a call on an HTTP/2 session, whose message frame is written as given. */
function grpcCall(
  session: http2.ClientHttp2Session,
  path: string,
  o: { headers?: Record<string, string>; frame?: Buffer; end?: boolean; timeoutMs?: number },
): Promise<
  { status: string | undefined; message: string | undefined; details?: string; ms: number } | "no answer"
> {
  const started = Date.now();
  return new Promise((resolve) => {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...o.headers,
    });
    const timer = setTimeout(() => {
      stream.close();
      resolve("no answer");
    }, o.timeoutMs ?? 5_000);
    let head: http2.IncomingHttpHeaders = {};
    stream.on("response", (h) => {
      head = h;
      if (h["grpc-status"] !== undefined) finish(h);
    });
    stream.on("trailers", (t) => finish(t));
    stream.on("error", () => {});
    stream.on("data", () => {});
    function finish(h: http2.IncomingHttpHeaders) {
      clearTimeout(timer);
      resolve({
        status: (h["grpc-status"] ?? head["grpc-status"]) as string | undefined,
        message: (h["grpc-message"] ?? head["grpc-message"]) as string | undefined,
        details: h["grpc-status-details-bin"] as string | undefined,
        ms: Date.now() - started,
      });
    }
    if (o.frame) stream.write(o.frame);
    if (o.end !== false) stream.end();
  });
}

function frameOf(announced: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(announced, 1);
  return Buffer.concat([prefix, payload]);
}

describe("limits decided from the headers, before any body", () => {
  const stack = useServiceWithNats();

  async function customerKey(tenant: string): Promise<string> {
    const nc = await connect({ servers: stack.nats.url });
    try {
      const store = await openApiKeyStore(nc, { replicas: 1 });
      const { key } = await store.create(tenant);
      expect(apiKeyDigest(key)).toHaveLength(64);
      return key;
    } finally {
      await nc.close();
    }
  }

  it("a customer key on a service-only method is refused PERMISSION_DENIED while its 15 MiB body has not arrived", async () => {
    const key = await customerKey("acme");
    const answer = await h1Call(stack.svc.url, methodPath("PublishJobEvents"), {
      headers: { authorization: `Bearer ${key}` },
      body: '{"events": [',
      announced: 15 * 1024 * 1024,
    });
    expect(answer).not.toBe("no answer");
    if (answer === "no answer") return;
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toMatchObject({
      code: "permission_denied",
      message: "PublishJobEvents is for internal services only",
    });
  });

  it("the same over gRPC: PERMISSION_DENIED as a status every client reads, before the message arrives", async () => {
    const key = await customerKey("acme");
    const session = http2.connect(stack.svc.url);
    try {
      const answer = await grpcCall(session, methodPath("PublishJobEvent"), {
        headers: { authorization: `Bearer ${key}` },
        frame: frameOf(13 * 1024 * 1024, Buffer.alloc(100)),
        end: false,
      });
      expect(answer).toMatchObject({ status: "7", message: "PublishJobEvent is for internal services only" });
    } finally {
      session.destroy();
    }
  });

  it("each method has its own read limit: one event's call announcing 3 MiB is refused before it is read", async () => {
    const answer = await h1Call(stack.svc.url, methodPath("PublishJobEvent"), {
      headers: service,
      body: "{",
      announced: 3 * 1024 * 1024,
    });
    expect(answer).not.toBe("no answer");
    if (answer === "no answer") return;
    expect(answer.status).toBe(429);
    const body = JSON.parse(answer.body) as { code: string; message: string };
    expect(body.code).toBe("resource_exhausted");
    expect(body.message).toContain("limit of PublishJobEvent");
  });

  it("health takes tiny bodies only, and echoes little of what it is sent", async () => {
    const big = await h1Call(stack.svc.url, "/grpc.health.v1.Health/Check", {
      body: JSON.stringify({ service: "x".repeat(2_000) }),
    });
    expect(big).toMatchObject({ status: 429 });
    const long = await h1Call(stack.svc.url, "/grpc.health.v1.Health/Check", {
      body: JSON.stringify({ service: "y".repeat(900) }),
    });
    expect(long).not.toBe("no answer");
    if (long === "no answer") return;
    expect(JSON.parse(long.body).code).toBe("not_found");
    expect(long.body.length).toBeLessThan(300);
  });

  it("an anonymous 16 MiB health check is refused without being read", async () => {
    const answer = await h1Call(stack.svc.url, "/grpc.health.v1.Health/Check", {
      body: '{"service": "',
      announced: 16 * 1024 * 1024,
    });
    expect(answer).toMatchObject({ status: 429 });
  });

  it("1.4 MB of unknown keys get a small answer that names the valid fields", async () => {
    const keys = Object.fromEntries(Array.from({ length: 60_000 }, (_, i) => [`unknown_key_${i}`, 1]));
    const answer = await h1Call(stack.svc.url, methodPath("PublishJobEvent"), {
      headers: service,
      body: JSON.stringify({
        event: { tenantId: "acme", jobId: "j", status: "JOB_STATUS_CREATED", ...keys },
      }),
    });
    expect(answer).not.toBe("no answer");
    if (answer === "no answer") return;
    expect(answer.status).toBe(400);
    expect(answer.body.length).toBeLessThan(2_048);
    expect(answer.body).toContain("valid fields");
    expect(answer.body).toContain('\\"tenantId\\"');
  });

  it("a request without a Host header (HTTP/1.0) is answered or dropped, and the replica lives on", async () => {
    const u = new URL(stack.svc.url);
    const raw = await new Promise<string>((resolve) => {
      const socket = net.connect({ host: u.hostname, port: Number(u.port) }, () => {
        socket.end(
          "POST /grpc.health.v1.Health/Check HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        );
      });
      let text = "";
      socket.on("data", (c: Buffer) => {
        text += c.toString();
      });
      socket.on("close", () => resolve(text));
      socket.on("error", () => resolve(text));
    });
    expect(raw).not.toMatch(/^HTTP\/1\.[01] 5/);
    const health = await h1Call(stack.svc.url, "/grpc.health.v1.Health/Check", { body: "{}" });
    expect(health).toMatchObject({ status: 200 });
  });

  it("a path shaped like a method that is not one lists the methods served, in the caller's protocol", async () => {
    const json = await h1Call(stack.svc.url, "/jobhooks.v1.WebhookService/PublishJobEvnet", { body: "{}" });
    expect(json).not.toBe("no answer");
    if (json === "no answer") return;
    expect(json.status).toBe(404);
    expect(JSON.parse(json.body).code).toBe("unimplemented");
    expect(json.body).toContain("jobhooks.v1.WebhookService/PublishJobEvent");
    const session = http2.connect(stack.svc.url);
    try {
      const grpc = await grpcCall(session, "/jobhooks.v1.WebhookServic/GetPortalLink", { frame: frameOf(0) });
      expect(grpc).toMatchObject({ status: "12" });
      if (grpc !== "no answer") expect(decodeURIComponent(grpc.message ?? "")).toContain("GetPortalLink");
    } finally {
      session.destroy();
    }
  });

  it("streams nobody authenticated are capped per connection; another connection still gets its Watch", async () => {
    const hog = http2.connect(stack.svc.url);
    const other = http2.connect(stack.svc.url);
    const watch = (session: http2.ClientHttp2Session) =>
      new Promise<{ status: string | undefined; stream: http2.ClientHttp2Stream }>((resolve) => {
        const stream = session.request({
          ":method": "POST",
          ":path": "/grpc.health.v1.Health/Watch",
          "content-type": "application/grpc",
          te: "trailers",
        });
        stream.on("error", () => {});
        stream.on("response", (h) => {
          if (h["grpc-status"] !== undefined) resolve({ status: h["grpc-status"] as string, stream });
        });
        // The first status message means the watch is open.
        stream.once("data", () => resolve({ status: undefined, stream }));
        stream.on("trailers", (t) => resolve({ status: t["grpc-status"] as string, stream }));
        stream.end(frameOf(0));
      });
    try {
      const opened = [];
      for (let i = 0; i < 16; i++) opened.push(await watch(hog));
      expect(opened.every((w) => w.status === undefined)).toBe(true);
      expect((await watch(hog)).status).toBe("8");
      expect((await watch(other)).status).toBeUndefined();
      // A closed watch gives its slot back.
      opened[0]?.stream.close();
      await new Promise((r) => setTimeout(r, 100));
      expect((await watch(hog)).status).toBeUndefined();
    } finally {
      hog.destroy();
      other.destroy();
    }
  });
});

describe("a trickled body is cut off at the deadline", () => {
  const stack = useServiceWithNats({ JOBHOOKS_RPC_DEADLINE_MS: "1500" });

  it("Connect JSON over HTTP/1.1: DEADLINE_EXCEEDED however slowly it trickles", async () => {
    const body = JSON.stringify({ event: { tenantId: "acme", jobId: "slow", status: "JOB_STATUS_CREATED" } });
    const answer = await h1Call(stack.svc.url, methodPath("PublishJobEvent"), {
      headers: service,
      body,
      announced: Buffer.byteLength(body),
      trickleMs: 200,
      timeoutMs: 8_000,
    });
    expect(answer).not.toBe("no answer");
    if (answer === "no answer") return;
    expect(JSON.parse(answer.body).code).toBe("deadline_exceeded");
  });

  it("gRPC (the fast framing) and health alike", async () => {
    const session = http2.connect(stack.svc.url);
    try {
      const publish = await grpcCall(session, methodPath("PublishJobEvent"), {
        headers: service,
        frame: frameOf(50, Buffer.alloc(10)),
        end: false,
        timeoutMs: 8_000,
      });
      expect(publish).toMatchObject({ status: "4" });
      const health = await grpcCall(session, "/grpc.health.v1.Health/Check", {
        frame: frameOf(50, Buffer.alloc(3)),
        end: false,
        timeoutMs: 8_000,
      });
      expect(health).toMatchObject({ status: "4" });
    } finally {
      session.destroy();
    }
  });
});

describe("bodies being read share one memory budget", () => {
  const stack = useServiceWithNats({ JOBHOOKS_REQUEST_MEMORY_BYTES: String(32 * 1024 * 1024) });

  it("past it a caller gets RESOURCE_EXHAUSTED with RetryInfo, and room comes back when the readers go", async () => {
    const releases: Array<() => void> = [];
    const held = Array.from({ length: 4 }, () =>
      h1Call(stack.svc.url, methodPath("PublishJobEvents"), {
        headers: service,
        body: '{"events": [',
        announced: 8 * 1024 * 1024,
        timeoutMs: 20_000,
        hold: (release) => releases.push(release),
      }),
    );
    // Each holds 8 MiB of the 32 MiB until it ends; the gRPC call below needs a little more.
    await new Promise((r) => setTimeout(r, 300));
    const session = http2.connect(stack.svc.url);
    try {
      const refused = await grpcCall(session, methodPath("PublishJobEvent"), {
        headers: service,
        frame: frameOf(2, Buffer.from([0x0a, 0x00])),
      });
      expect(refused).toMatchObject({ status: "8" });
      if (refused === "no answer") return;
      const status = fromBinary(StatusSchema, Buffer.from(refused.details ?? "", "base64"));
      const retry = status.details.find((d) => d.typeUrl.endsWith("google.rpc.RetryInfo"));
      expect(retry).toBeDefined();
      if (retry)
        expect(Number(fromBinary(RetryInfoSchema, retry.value).retryDelay?.seconds)).toBeGreaterThanOrEqual(
          1,
        );

      for (const release of releases) release();
      await Promise.all(held);
      await new Promise((r) => setTimeout(r, 200));
      const accepted = await grpcCall(session, methodPath("PublishJobEvent"), {
        headers: service,
        frame: frameOf(2, Buffer.from([0x0a, 0x00])),
      });
      // Decoded and judged now: an empty event is invalid, no longer refused for memory.
      expect(accepted).toMatchObject({ status: "3" });
    } finally {
      session.destroy();
    }
  });
});

describe("connections nobody authenticated on", () => {
  const stack = useServiceWithNats({ JOBHOOKS_MAX_UNAUTHENTICATED_CONNECTIONS_PER_ADDRESS: "4" });

  const opened = (): Promise<net.Socket> =>
    new Promise((resolve, reject) => {
      const u = new URL(stack.svc.url);
      const socket = net.connect({ host: u.hostname, port: Number(u.port) }, () => resolve(socket));
      socket.on("error", reject);
    });
  const closedByServer = (socket: net.Socket, withinMs: number) =>
    new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), withinMs);
      socket.once("close", () => {
        clearTimeout(timer);
        resolve(true);
      });
    });

  it("are capped per address; one that authenticated no longer counts", async () => {
    const idle = [await opened(), await opened(), await opened()];
    const session = http2.connect(stack.svc.url);
    try {
      // The fourth: an HTTP/2 connection that calls with a valid token, which proves it.
      const ok = await grpcCall(session, "/grpc.health.v1.Health/Check", { frame: frameOf(0) });
      expect(ok).toMatchObject({ status: "0" });
      const extra = await opened();
      expect(await closedByServer(extra, 1_000)).toBe(true);
      const proved = await grpcCall(session, methodPath("PublishJobEvent"), {
        headers: service,
        frame: frameOf(2, Buffer.from([0x0a, 0x00])),
      });
      expect(proved).toMatchObject({ status: "3" });
      const admitted = await opened();
      expect(await closedByServer(admitted, 500)).toBe(false);
      admitted.destroy();
    } finally {
      session.destroy();
      for (const s of idle) s.destroy();
    }
  });
});
