import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as http2 from "node:http2";
import * as net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Webhook } from "svix";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { HealthCheckRequestSchema } from "../../src/gen/health/v1/health_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { openApiKeyStore } from "../../src/nats/api-key-store.js";
import {
  bigValidBatches,
  closeGrpcJsClients,
  customerKeyOversize,
  grpcJsCall,
  healthCheckFlood,
  holdStreams,
  IMAGE_NODE_OPTIONS,
  procStatusMb,
} from "../support/attacks.js";
import { grpcFrame, grpcStatusOf, h1Call, h2Call, type WireAnswer } from "../support/raw-wire.js";
import { SERVICE_TOKEN } from "../support/service.js";
import { type ServiceProcess, spawnService } from "../support/spawn-service.js";

/**
 * Issue 20's table, replayed as a stranger, a customer and a careless service would: against
 * `jobhooks serve` as its own process with the container image's heap flags, a real nats-server
 * and the Svix stand-in. Each test asserts what the other callers and the operator see: the
 * replica alive, legitimate callers served, answers small, the right codes. When a row kills the
 * replica, the next test starts a fresh one (and says so), so one failure does not hide the others.
 * Peak memory under rows 1–3 is measured by `npm run bench -- attack`, not asserted here.
 *
 * Rows 1–3 run on a replica with the default 30 s deadline (a 16 MiB upload on a busy 2-core
 * machine can take seconds); the rest on one with a 5 s deadline, so row 8's cut-off shows quickly.
 */
const DEADLINE_MS = 5_000;
const OPS_SECRET = `whsec_${Buffer.from("jobhooks-strangers-ops-secret-32").toString("base64")}`;

let nats: NatsServer;
let nc: NatsConnection;
let standIn: SvixStandIn;
let dir: string;
let replica: ServiceProcess | undefined;
let customerKey = "";
let n = 0;
const unique = (name: string) => `${name}-${process.pid}-${++n}`;

async function startReplica(env: Record<string, string>): Promise<ServiceProcess> {
  return spawnService({
    NODE_OPTIONS: IMAGE_NODE_OPTIONS,
    NATS_URL: nats.url,
    SVIX_TOKEN: standIn.token,
    SVIX_SERVER_URL: standIn.url,
    JOBHOOKS_SERVICE_TOKENS_FILE: path.join(dir, "tokens"),
    JOBHOOKS_RELAY_ENABLED: "false",
    JOBHOOKS_SVIX_OPERATIONAL_SECRET: OPS_SECRET,
    // Row 6 calls GetPortalLink often with one key: the portal's own per-key rate is not under test.
    JOBHOOKS_PORTAL_RATE_PER_MIN: "100000",
    JOBHOOKS_PORTAL_BURST: "10000",
    LOG_LEVEL: "warn",
    ...env,
  });
}

/**
 * The replica of the calling `describe`'s tests, started with `env` before its first test and
 * replaced before any test that finds it dead (saying so); stopped after its last test.
 */
function useReplica(env: Record<string, string> = {}): void {
  beforeEach(async () => {
    if (running(replica)) return;
    if (replica)
      console.log(
        `the replica died in the previous test; starting a new one:\n${replica.output().slice(-800)}`,
      );
    replica = await startReplica(env);
  }, 60_000);
  afterAll(async () => {
    await replica?.terminate();
    replica = undefined;
  });
}

function running(p: ServiceProcess | undefined): boolean {
  return p !== undefined && p.child.exitCode === null && p.child.signalCode === null;
}

/** The replica of the current test (alive at its start). */
function svc(): ServiceProcess {
  if (!replica) throw new Error("no replica");
  return replica;
}

/** Whether the replica still runs and answers /healthz; its last output when it does not. */
async function stillAlive(): Promise<string> {
  const p = svc();
  const ok =
    running(p) &&
    (await fetch(`${p.url}/healthz`, { signal: AbortSignal.timeout(5_000) }).then(
      (r) => r.ok,
      () => false,
    ));
  return ok
    ? "alive"
    : `dead or deaf (exit ${p.child.exitCode ?? p.child.signalCode}):\n${p.output().slice(-1_500)}`;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "jobhooks-strangers-"));
  await writeFile(path.join(dir, "tokens"), `${SERVICE_TOKEN}\n`);
  nats = await startNatsServer();
  nc = await connect({ servers: nats.url });
  standIn = await startSvixStandIn({ deliver: false });
  customerKey = (await (await openApiKeyStore(nc, { replicas: 1 })).create("acme")).key;
});

afterAll(async () => {
  closeGrpcJsClients();
  await nc?.close();
  await standIn?.close();
  await nats?.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** A Connect JSON answer's error code, when it is one. */
const connectCode = (a: WireAnswer) => /"code"\s*:\s*"([a-z_]+)"/.exec(a.body.toString("utf8"))?.[1];
const summary = (a: WireAnswer) =>
  `${a.outcome} ${a.status ?? "-"} ${connectCode(a) ?? grpcStatusOf(a) ?? ""} ${a.bodyBytes}B @${a.endMs}ms`;

/** Opens a Watch on `session` and leaves it open; resolves with how it began. */
function openWatch(
  session: http2.ClientHttp2Session,
  body: Buffer,
  held: http2.ClientHttp2Stream[],
  headers: Record<string, string> = {},
): Promise<"watching" | "refused" | "reset" | "no answer"> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve("no answer"), 10_000);
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({
        ":method": "POST",
        ":path": "/grpc.health.v1.Health/Watch",
        "content-type": "application/grpc",
        te: "trailers",
        ...headers,
      });
    } catch {
      clearTimeout(timer);
      resolve("reset");
      return;
    }
    held.push(stream);
    stream.on("error", () => {});
    stream.on("response", (headers) => {
      if (headers["grpc-status"] !== undefined) {
        clearTimeout(timer);
        resolve("refused");
      }
    });
    stream.on("trailers", () => {
      clearTimeout(timer);
      resolve("refused");
    });
    stream.once("data", () => {
      clearTimeout(timer);
      resolve("watching");
    });
    stream.on("close", () => {
      clearTimeout(timer);
      resolve("reset");
    });
    stream.end(body);
  });
}

function countBy<T>(xs: T[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[String(x)] = (out[String(x)] ?? 0) + 1;
  return out;
}

describe("on a replica with the default deadline", () => {
  useReplica();

  describe("rows 1–3: large bodies within the documented limits", () => {
    it("row 1: 16 concurrent anonymous 16 MiB Connect JSON health checks, twice, get small RESOURCE_EXHAUSTED answers and the replica lives", {
      timeout: 120_000,
    }, async () => {
      const answers = [...(await healthCheckFlood(svc().url)), ...(await healthCheckFlood(svc().url))];
      expect(answers.filter((a) => a.outcome === "timeout")).toEqual([]);
      const peak = procStatusMb(svc().child.pid as number, "VmHWM");
      console.log(`row 1: peak RSS ${peak.toFixed(0)} MB; answers:`, answers.map(summary));
      expect(await stillAlive()).toBe("alive");
      for (const a of answers) {
        // Over HTTP/1.1 an answer sent while the client still uploads can be lost to the close (the
        // stranger's loss); what must never come back is anything else, or anything large.
        if (a.outcome === "closed") continue;
        expect(summary(a)).toMatch(/^answered 429 resource_exhausted /);
        expect(a.bodyBytes).toBeLessThanOrEqual(1_024);
      }
      expect(answers.filter((a) => a.outcome === "answered").length).toBeGreaterThanOrEqual(
        answers.length / 2,
      );
    });

    it("row 2: a customer key's 13.4 MiB PublishJobEvent and 15.3 MiB PublishJobEvents get PERMISSION_DENIED in grpc-js", {
      timeout: 120_000,
    }, async () => {
      const { single, batch } = await customerKeyOversize(svc().url, customerKey, unique("row2"));
      console.log("row 2:", { single, batch, peakMb: procStatusMb(svc().child.pid as number, "VmHWM") });
      expect(await stillAlive()).toBe("alive");
      expect([single.code, batch.code]).toEqual([7, 7]);
      expect(batch.message.length).toBeLessThan(300);
    });

    it("row 2, unread: the customer key is refused before its body has even arrived", async () => {
      // A frame announcing 15.3 MiB, of which only the first kilobyte is ever sent.
      const prefix = grpcFrame(new Uint8Array(1_024), 0, Math.round(15.3 * 1024 * 1024));
      const answer = await h2Call(svc().url, {
        path: "/jobhooks.v1.WebhookService/PublishJobEvents",
        headers: {
          "content-type": "application/grpc",
          te: "trailers",
          authorization: `Bearer ${customerKey}`,
        },
        body: prefix,
        delivery: { kind: "unfinished", bytes: prefix.byteLength },
        timeoutMs: 10_000,
      });
      console.log("row 2, unread:", summary(answer));
      expect({ outcome: answer.outcome, grpcStatus: grpcStatusOf(answer) }).toEqual({
        outcome: "answered",
        grpcStatus: "7",
      });
    });

    it("row 3: four valid 1,000-event batches just under 16 MiB at once are stored or refused with RESOURCE_EXHAUSTED + RetryInfo, never a crash", {
      timeout: 120_000,
    }, async () => {
      const outcomes = await bigValidBatches(svc().url, SERVICE_TOKEN, unique("row3"));
      console.log(
        "row 3:",
        outcomes,
        `peak RSS ${procStatusMb(svc().child.pid as number, "VmHWM").toFixed(0)} MB`,
      );
      expect(await stillAlive()).toBe("alive");
      for (const o of outcomes) {
        if (o.code === 0) expect(o.failedEvents).toBe(0);
        else expect({ code: o.code, retryInfo: o.retryInfo }).toEqual({ code: 8, retryInfo: true });
      }
      expect(outcomes.filter((o) => o.code === 0).length).toBeGreaterThanOrEqual(1);
    });
  });

  describe("a refusal a legitimate caller must be able to read", () => {
    it("a service's batch over the 16 MiB limit, sent by Connect JSON over HTTP/1.1, gets RESOURCE_EXHAUSTED, not a reset", {
      timeout: 60_000,
    }, async () => {
      const events = Array.from({ length: 1_000 }, (_, i) => ({
        tenantId: "acme",
        jobId: unique(`over-${i}`),
        status: "JOB_STATUS_COMPLETED",
        result: { blob: "x".repeat(17_500) },
      }));
      const body = JSON.stringify({ events });
      expect(body.length).toBeGreaterThan(16 * 1024 * 1024);
      const seen: string[] = [];
      for (let i = 0; i < 3; i++) {
        const answer = await fetch(`${svc().url}/jobhooks.v1.WebhookService/PublishJobEvents`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${SERVICE_TOKEN}` },
          body,
        }).then(
          async (r) => `${r.status} ${/"code":"([a-z_]+)"/.exec(await r.text())?.[1]}`,
          (e: Error) => `${e.message}: ${(e.cause as Error | undefined)?.message ?? ""}`,
        );
        seen.push(answer);
      }
      console.log("oversize batch over HTTP/1.1:", seen);
      expect(seen).toEqual(["429 resource_exhausted", "429 resource_exhausted", "429 resource_exhausted"]);
    });
  });
});

describe(`on a replica with a ${DEADLINE_MS} ms deadline`, () => {
  useReplica({ JOBHOOKS_RPC_DEADLINE_MS: String(DEADLINE_MS) });

  describe("rows 6–7: strangers cannot lock anyone out", () => {
    const publishAs = (credential: string, job: string) =>
      grpcJsCall(
        svc().url,
        "PublishJobEvent",
        { event: { tenantId: "acme", jobId: job, status: "JOB_STATUS_CREATED" } },
        credential,
        10_000,
      );

    /**
     * 20 bad tokens a second from this machine's address (the one every test caller shares, as
     * behind a load balancer) for `ms`; `blocked` resolves once the address is refused
     * (RESOURCE_EXHAUSTED), or with false when the flood ends first.
     */
    function badTokenFlood(ms: number): { codes: Promise<number[]>; blocked: Promise<boolean> } {
      const until = Date.now() + ms;
      const codes: Promise<number>[] = [];
      let markBlocked: (b: boolean) => void = () => {};
      const blocked = new Promise<boolean>((r) => {
        markBlocked = r;
      });
      const done = (async () => {
        for (let i = 0; Date.now() < until && i < 200; i++) {
          codes.push(
            publishAs(`not-a-token-${i}-0123456789abcdef`, unique("bad")).then((o) => {
              if (o.code === 8) markBlocked(true);
              return o.code;
            }),
          );
          await new Promise((r) => setTimeout(r, 50));
        }
        const all = await Promise.all(codes);
        markBlocked(false);
        return all;
      })();
      return { codes: done, blocked };
    }

    it("row 6: while 20 bad tokens/s have the shared address refused, the service token and a key this replica has seen are served", {
      timeout: 60_000,
    }, async () => {
      // The key is seen once before the flood, as a customer's first call of the day would be.
      expect((await grpcJsCall(svc().url, "GetPortalLink", {}, customerKey, 10_000)).code).toBe(0);
      const flood = badTokenFlood(5_000);
      const blocked = await flood.blocked;
      const legit: Array<{ who: string; code: number; message: string }> = [];
      for (let i = 0; i < 8; i++) {
        const token = await publishAs(SERVICE_TOKEN, unique("legit"));
        legit.push({ who: "service token", code: token.code, message: token.message });
        const key = await grpcJsCall(svc().url, "GetPortalLink", {}, customerKey, 10_000);
        legit.push({ who: "seen key", code: key.code, message: key.message });
        await new Promise((r) => setTimeout(r, 200));
      }
      const badCodes = await flood.codes;
      console.log(
        "row 6: the flood",
        blocked ? "had the address refused;" : "never had the address refused;",
        "bad tokens answered",
        countBy(badCodes),
        "; valid callers, in order:",
        legit.map((l) => `${l.who} ${l.code}`).join(", "),
      );
      expect(legit.filter((l) => l.code !== 0)).toEqual([]);
      expect(badCodes.every((c) => c === 16 || c === 8)).toBe(true);
    });

    it("row 6, first use: a valid key this replica has never seen, first used while the shared address is refused, is served", {
      timeout: 60_000,
    }, async () => {
      const fresh = (await (await openApiKeyStore(nc, { replicas: 1 })).create("acme")).key;
      const flood = badTokenFlood(4_000);
      const blocked = await flood.blocked;
      const first = await grpcJsCall(svc().url, "GetPortalLink", {}, fresh, 10_000);
      await flood.codes;
      console.log("row 6, first use:", { addressRefused: blocked, first });
      expect({ code: first.code, message: first.message }).toEqual({ code: 0, message: "" });
    });

    it("row 7: 10 connections × 100 anonymous health Watch streams leave a Watch from another address served", {
      timeout: 60_000,
    }, async () => {
      const url = svc().url;
      const port = Number(new URL(url).port);
      const watch = grpcFrame(new Uint8Array()); // HealthCheckRequest{service: ""}
      const sessions = Array.from({ length: 10 }, () => http2.connect(url));
      const held: http2.ClientHttp2Stream[] = [];
      try {
        const opened = await Promise.all(
          sessions.flatMap((session) => Array.from({ length: 100 }, () => openWatch(session, watch, held))),
        );
        const serving = opened.filter((o) => o === "watching").length;
        // The legitimate caller: gRPC client-side health checking, from another address.
        const other = http2.connect(url, {
          createConnection: () => net.connect({ host: "127.0.0.1", port, localAddress: "127.0.0.2" }),
        });
        const legit = await h2Call(url, {
          session: other,
          path: "/grpc.health.v1.Health/Watch",
          headers: { "content-type": "application/grpc", te: "trailers" },
          body: watch,
          delivery: { kind: "whole" },
          timeoutMs: 10_000,
          settleOnHeaders: true,
        });
        other.destroy();
        console.log("row 7: attacker's streams", countBy(opened), "; legitimate Watch:", summary(legit));
        expect(await stillAlive()).toBe("alive");
        expect({ streaming: legit.streaming, grpcStatus: grpcStatusOf(legit) }).toEqual({
          streaming: true,
          grpcStatus: undefined,
        });
        // The first message: HealthCheckResponse{status: SERVING} (field 1 = 1).
        expect(legit.body.subarray(0, 7).toString("hex")).toBe("00000000020801");
        // Capped per connection and address: one stranger cannot hold all of them.
        expect(serving).toBeLessThan(1_000);
      } finally {
        for (const s of held) s.close();
        for (const s of sessions) s.destroy();
      }
    });
  });

  describe("row 7, spoofed: a client address header is believed only from trusted proxies (none by default)", () => {
    it("Watch streams sent with a different x-forwarded-for each are capped exactly like the same streams without", {
      timeout: 60_000,
    }, async () => {
      const url = svc().url;
      const watch = grpcFrame(new Uint8Array());
      const flood = async (spoof: boolean) => {
        const sessions = Array.from({ length: 10 }, () => http2.connect(url));
        const held: http2.ClientHttp2Stream[] = [];
        const t0 = Date.now();
        try {
          const opened = await Promise.all(
            sessions.flatMap((session, c) =>
              Array.from({ length: 20 }, (_, i) =>
                openWatch(
                  session,
                  watch,
                  held,
                  spoof ? { "x-forwarded-for": `203.0.113.${c * 20 + i + 1}` } : {},
                ),
              ),
            ),
          );
          console.log(`row 7, ${spoof ? "spoofed" : "plain"}:`, countBy(opened), `${Date.now() - t0} ms`);
          return opened.filter((o) => o === "watching").length;
        } finally {
          for (const s of held) s.close();
          for (const s of sessions) s.destroy();
        }
      };
      const plain = await flood(false);
      // The server notices the first flood's streams closing in its own time.
      await new Promise((r) => setTimeout(r, 500));
      const spoofed = await flood(true);
      console.log("row 7, spoofed: Watch streams held", { plain, spoofed });
      expect(spoofed).toBe(plain);
      expect(plain).toBeLessThan(200);
    });
  });

  describe("row 7, unary: unfinished open calls are streams a stranger holds too", () => {
    it("10 connections × 100 anonymous Health/Check bodies left unfinished are capped per address, and a publisher is served meanwhile", {
      timeout: 60_000,
    }, async () => {
      const url = svc().url;
      const check = grpcFrame(
        toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "s".repeat(1_000) })),
      );
      const { streams, during } = await holdStreams(
        url,
        {
          connections: 10,
          perConnection: 100,
          path: "/grpc.health.v1.Health/Check",
          headers: { "content-type": "application/grpc", te: "trailers" },
          body: check,
          sendBytes: check.byteLength - 8,
        },
        () =>
          grpcJsCall(
            url,
            "PublishJobEvent",
            { event: { tenantId: "acme", jobId: unique("beside-held"), status: "JOB_STATUS_CREATED" } },
            SERVICE_TOKEN,
            10_000,
          ),
      );
      console.log("row 7, unary: the stranger's streams", streams, "; the publisher:", during);
      expect(await stillAlive()).toBe("alive");
      expect(during.code).toBe(0);
      expect(streams.held ?? 0).toBeLessThan(1_000);
    });
  });

  describe("row 8: a trickled body is cut off at the server's deadline on every path", () => {
    it("1 byte / 500 ms to each path: every one is answered within the deadline (+3 s), DEADLINE_EXCEEDED where the protocol has it", {
      timeout: 60_000,
    }, async () => {
      const url = svc().url;
      const limit = DEADLINE_MS + 3_000;
      const json = Buffer.from(
        JSON.stringify({
          event: {
            tenantId: "acme",
            jobId: unique("trickle"),
            status: "JOB_STATUS_CREATED",
            metadata: { pad: "p".repeat(200) },
          },
        }),
      );
      const trickle = { kind: "trickle" as const, everyMs: 500, bytes: 1 };
      const auth = `Bearer ${SERVICE_TOKEN}`;
      const grpcHeaders = { "content-type": "application/grpc", te: "trailers", authorization: auth };
      const paths: Array<[string, Promise<WireAnswer>, "grpc" | "connect" | "http"]> = [
        [
          "gRPC PublishJobEvent (the fast path)",
          h2Call(url, {
            path: "/jobhooks.v1.WebhookService/PublishJobEvent",
            headers: grpcHeaders,
            body: grpcFrame(Buffer.alloc(200, 0x0a)),
            delivery: trickle,
            timeoutMs: limit,
          }),
          "grpc",
        ],
        [
          "gRPC PublishJobEvents (Connect's gRPC)",
          h2Call(url, {
            path: "/jobhooks.v1.WebhookService/PublishJobEvents",
            headers: grpcHeaders,
            body: grpcFrame(Buffer.alloc(200, 0x0a)),
            delivery: trickle,
            timeoutMs: limit,
          }),
          "grpc",
        ],
        [
          "gRPC health Check",
          h2Call(url, {
            path: "/grpc.health.v1.Health/Check",
            headers: { "content-type": "application/grpc", te: "trailers" },
            body: grpcFrame(Buffer.alloc(200, 0x0a)),
            delivery: trickle,
            timeoutMs: limit,
          }),
          "grpc",
        ],
        [
          "Connect JSON PublishJobEvent (HTTP/1.1)",
          h1Call(url, {
            path: "/jobhooks.v1.WebhookService/PublishJobEvent",
            headers: [
              ["content-type", "application/json"],
              ["authorization", auth],
              ["content-length", String(json.byteLength)],
            ],
            body: json,
            delivery: trickle,
            timeoutMs: limit,
          }),
          "connect",
        ],
        [
          "Connect binary PublishJobEvent (HTTP/1.1)",
          h1Call(url, {
            path: "/jobhooks.v1.WebhookService/PublishJobEvent",
            headers: [
              ["content-type", "application/proto"],
              ["authorization", auth],
              ["content-length", "200"],
            ],
            body: Buffer.alloc(200, 0x0a),
            delivery: trickle,
            timeoutMs: limit,
          }),
          "connect",
        ],
        [
          "Connect JSON health Check (HTTP/1.1)",
          h1Call(url, {
            path: "/grpc.health.v1.Health/Check",
            headers: [
              ["content-type", "application/json"],
              ["content-length", "200"],
            ],
            body: Buffer.from(`{"service":"${"s".repeat(186)}"}`),
            delivery: trickle,
            timeoutMs: limit,
          }),
          "connect",
        ],
        [
          "gRPC-Web PublishJobEvent (HTTP/1.1)",
          h1Call(url, {
            path: "/jobhooks.v1.WebhookService/PublishJobEvent",
            headers: [
              ["content-type", "application/grpc-web+proto"],
              ["authorization", auth],
              ["content-length", "205"],
            ],
            body: grpcFrame(Buffer.alloc(200, 0x0a)),
            delivery: trickle,
            timeoutMs: limit,
          }),
          "grpc",
        ],
        [
          "POST /svix/operational-webhooks (HTTP/1.1)",
          h1Call(url, {
            path: "/svix/operational-webhooks",
            headers: [
              ["content-type", "application/json"],
              ["content-length", "200"],
            ],
            body: Buffer.alloc(200, 0x20),
            delivery: trickle,
            timeoutMs: limit,
          }),
          "http",
        ],
      ];
      const answers = await Promise.all(paths.map(([, p]) => p));
      const seen = paths.map(([name, , kind], i) => {
        const a = answers[i] as WireAnswer;
        const code =
          kind === "grpc"
            ? `grpc-status ${grpcStatusOf(a)}`
            : kind === "connect"
              ? `${a.status} ${connectCode(a)}`
              : `${a.status}`;
        return { name, answered: a.outcome === "answered" && a.endMs <= limit, code, ms: a.endMs };
      });
      console.log("row 8:", seen);
      expect(seen.filter((s) => !s.answered)).toEqual([]);
      expect(seen.map((s) => [s.name, s.code])).toEqual(
        paths.map(([name, , kind]) => [
          name,
          kind === "grpc"
            ? "grpc-status 4"
            : kind === "connect"
              ? "504 deadline_exceeded"
              : expect.stringMatching(/^(408|504)$/),
        ]),
      );
      expect(await stillAlive()).toBe("alive");
    });
  });

  describe("rows 9–10: what comes back", () => {
    it("row 9: one signed operational webhook POSTed 6 times is acknowledged 6 times and published once, with its svix-id", async () => {
      const url = `${svc().url}/svix/operational-webhooks`;
      const body = JSON.stringify({
        type: "endpoint.disabled",
        data: { appUid: "acme", endpointId: "ep_1" },
      });
      const id = `msg_${unique("ops").replace(/-/g, "")}`;
      const at = new Date();
      const headers = {
        "content-type": "application/json",
        "svix-id": id,
        "svix-timestamp": String(Math.floor(at.getTime() / 1_000)),
        "svix-signature": new Webhook(OPS_SECRET).sign(id, at, body),
      };
      const received: Array<{ subject: string; headers: Record<string, string[]> }> = [];
      const sub = nc.subscribe("jobhooks.ops.>", {
        callback: (_err, m) => {
          const h: Record<string, string[]> = {};
          for (const [k, v] of m.headers ?? []) h[k] = v;
          received.push({ subject: m.subject, headers: h });
        },
      });
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await fetch(url, { method: "POST", headers, body })).status);
      await nc.flush();
      await new Promise((r) => setTimeout(r, 1_000));
      sub.unsubscribe();
      console.log("row 9:", { statuses, received });
      expect(statuses.every((s) => s >= 200 && s < 300)).toBe(true);
      expect(received.length).toBe(1);
      const values = Object.values(received[0]?.headers ?? {}).flat();
      expect(values).toContain(id);
    });

    it("row 10: 1.4 MB of unknown JSON keys gets a small INVALID_ARGUMENT, and health never echoes a long name", async () => {
      const keys = Array.from({ length: 66_000 }, (_, i) => `"unknown_key_${i}":1`).join(",");
      const body = `{"event":{"tenantId":"acme","jobId":"${unique("keys")}","status":"JOB_STATUS_CREATED",${keys}}}`;
      // The 1.4 MB: under PublishJobEvent's own read limit, so the keys are parsed.
      expect(body.length).toBeGreaterThan(1_400_000);
      expect(body.length).toBeLessThan(1_500_000);
      const started = performance.now();
      const res = await fetch(`${svc().url}/jobhooks.v1.WebhookService/PublishJobEvent`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${SERVICE_TOKEN}` },
        body,
      });
      const answer = await res.text();
      const ms = Math.round(performance.now() - started);
      console.log("row 10:", res.status, `${answer.length} bytes in ${ms} ms`, answer.slice(0, 200));
      expect(res.status).toBe(400);
      expect(answer.length).toBeLessThanOrEqual(4_096);

      // Under the 1 KiB an open service accepts, so the name is read: it must not come back whole.
      const health = await fetch(`${svc().url}/grpc.health.v1.Health/Check`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ service: "n".repeat(1_000) }),
      });
      const healthAnswer = await health.text();
      console.log("row 10, health:", health.status, `${healthAnswer.length} bytes`);
      expect(health.status).toBe(404);
      expect(healthAnswer.length).toBeLessThanOrEqual(512);
      expect(await stillAlive()).toBe("alive");
    });
  });
});
