import { create, fromJson, type JsonValue, toBinary, toJsonString } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { connect } from "@nats-io/transport-node";
import fc from "fast-check";
import { Webhook } from "svix";
import { beforeAll, describe, expect, it } from "vitest";
import { ServerReflectionRequestSchema } from "../../src/gen/grpc/reflection/v1/reflection_pb.js";
import { Health, HealthCheckRequestSchema } from "../../src/gen/health/v1/health_pb.js";
import {
  GetPortalLinkRequestSchema,
  JobStatus,
  PublishJobEventRequestSchema,
  PublishJobEventsRequestSchema,
} from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { openApiKeyStore } from "../../src/nats/api-key-store.js";
import {
  type Delivery,
  grpcFrame,
  grpcStatusOf,
  h1Call,
  h2Call,
  type WireAnswer,
} from "../support/raw-wire.js";
import { SERVICE_TOKEN, useServiceWithNats } from "../support/service.js";
import { eventJson } from "./arbitraries.js";

/**
 * The wire itself, as a stranger writes it: generated requests in raw bytes on every protocol the
 * one port speaks (gRPC and Connect over HTTP/2, Connect and gRPC-Web over HTTP/1.1) and on every
 * path it serves — random frames and lengths, compression flags without an encoding, any content
 * type, deadlines, credentials, bodies sent whole, trickled or never finished. The real service
 * and nats-server; the service's deadline is short so a hang shows quickly.
 *
 * The requests are drawn first (a fixed seed: FUZZ_SEED varies it), sent concurrently, and each
 * property is then checked over all the answers, naming the request of every failure.
 */
const DEADLINE_MS = 2_000;
/** Generous: this catches calls nothing ends, not slow ones. */
const SLACK_MS = 4_000;
const LIMIT_MS = DEADLINE_MS + SLACK_MS;
const SEED = Number(process.env.FUZZ_SEED ?? 20261205);
const RUNS_PER_PROTOCOL = Number(process.env.FUZZ_RUNS ?? 150);
const CONCURRENCY = 24;
const OPS_SECRET = `whsec_${Buffer.from("jobhooks-wire-fuzz-ops-secret-32").toString("base64")}`;

const stack = useServiceWithNats({
  JOBHOOKS_RPC_DEADLINE_MS: String(DEADLINE_MS),
  JOBHOOKS_SVIX_OPERATIONAL_SECRET: OPS_SECRET,
  LOG_LEVEL: "warn",
});
let customerKey = "";

interface Target {
  path: string;
  /** Valid request messages for the method, as binary and as JSON. */
  message?: fc.Arbitrary<{ binary: Uint8Array; json: string }>;
  /** A server stream: its response headers are its answer. */
  stream?: boolean;
  /** Needs no credential (health, reflection, the ops webhook, unknown paths). */
  open?: boolean;
}

const enc = new TextEncoder();
const webhookService = "/jobhooks.v1.WebhookService";

function messageOf<T>(schema: Parameters<typeof toBinary>[0], init: fc.Arbitrary<T>) {
  return init.map((i) => {
    const m = create(schema, i as never);
    return { binary: toBinary(schema, m), json: toJsonString(schema, m) };
  });
}

const healthRequest = messageOf(
  HealthCheckRequestSchema,
  fc.record({
    service: fc.oneof(
      fc.constantFrom("", "jobhooks.v1.WebhookService", "nope"),
      fc.string({ maxLength: 40 }),
      // Over the 1 KiB an open service accepts.
      fc.integer({ min: 1_025, max: 64 * 1024 }).map((n) => "s".repeat(n)),
    ),
  }),
);

const reflectionRequest = messageOf(
  ServerReflectionRequestSchema,
  fc.oneof(
    fc.constant({ messageRequest: { case: "listServices" as const, value: "" } }),
    fc
      .string({ maxLength: 40 })
      .map((v) => ({ messageRequest: { case: "fileContainingSymbol" as const, value: v } })),
    fc
      .integer({ min: 1_025, max: 64 * 1024 })
      .map((n) => ({ messageRequest: { case: "fileByFilename" as const, value: "f".repeat(n) } })),
  ),
);

/** A PublishJobEventRequest from the near-valid events the JSON fuzz draws (a plain one when not decodable). */
const eventInit = eventJson.map((event) => {
  try {
    return fromJson(PublishJobEventRequestSchema, { event } as JsonValue, { ignoreUnknownFields: true });
  } catch {
    return create(PublishJobEventRequestSchema, {
      event: { tenantId: "acme", jobId: "fuzz", status: JobStatus.CREATED },
    });
  }
});

const targets: Target[] = [
  { path: `${webhookService}/PublishJobEvent`, message: messageOf(PublishJobEventRequestSchema, eventInit) },
  {
    path: `${webhookService}/PublishJobEvents`,
    message: messageOf(
      PublishJobEventsRequestSchema,
      fc
        .array(eventInit, { maxLength: 5 })
        .map((es) => ({ events: es.flatMap((e) => (e.event ? [e.event] : [])) })),
    ),
  },
  {
    path: `${webhookService}/GetPortalLink`,
    message: messageOf(GetPortalLinkRequestSchema, fc.record({ tenantId: fc.string({ maxLength: 20 }) })),
  },
  { path: `${webhookService}/ListJobDeliveries` },
  { path: `${webhookService}/RevokePortalSessions` },
  { path: `${webhookService}/NoSuchMethod`, open: true },
  { path: "/grpc.health.v1.Health/Check", message: healthRequest, open: true },
  { path: "/grpc.health.v1.Health/Watch", message: healthRequest, open: true, stream: true },
  { path: "/grpc.health.v1.Health/List", open: true },
  {
    path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    message: reflectionRequest,
    open: true,
    stream: true,
  },
  {
    path: "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    message: reflectionRequest,
    open: true,
    stream: true,
  },
  { path: "/svix/operational-webhooks", open: true },
  { path: "/nope", open: true },
  { path: "/", open: true },
];

type Protocol = "grpc" | "grpc-web" | "grpc-web-text" | "connect" | "connect-stream";
const contentTypes: Record<Protocol, string[]> = {
  grpc: ["application/grpc", "application/grpc+proto", "application/grpc+json"],
  "grpc-web": ["application/grpc-web", "application/grpc-web+proto", "application/grpc-web+json"],
  "grpc-web-text": ["application/grpc-web-text", "application/grpc-web-text+proto"],
  connect: ["application/json", "application/proto", "application/json; charset=utf-8"],
  "connect-stream": ["application/connect+proto", "application/connect+json"],
};
const framed = (p: Protocol) => p !== "connect";

/** One message's payload: the method's own (binary or JSON), other JSON, or garbage. */
function payloadFor(target: Target) {
  const own = target.message ?? fc.constant({ binary: new Uint8Array(), json: "{}" });
  return fc.oneof(
    { weight: 4, arbitrary: own.map((m) => m.binary) },
    { weight: 3, arbitrary: own.map((m) => enc.encode(m.json)) },
    { weight: 1, arbitrary: fc.json({ maxDepth: 2 }).map((s) => enc.encode(s)) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 256 }) },
    {
      weight: 1,
      // Unknown JSON keys: the answer must not repeat them all back.
      arbitrary: fc
        .integer({ min: 1, max: 4_000 })
        .map((n) => enc.encode(`{${Array.from({ length: n }, (_, i) => `"k${i}":1`).join(",")}}`)),
    },
  );
}

/** Length-prefixed frames with lying lengths and any flag, perhaps followed by stray bytes. */
function framesFor(target: Target) {
  const frame = fc
    .record({
      payload: payloadFor(target),
      flag: fc.oneof(
        { weight: 6, arbitrary: fc.constant(0) },
        { weight: 1, arbitrary: fc.constantFrom(1, 2, 0x80, 0x81) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
      ),
      length: fc.oneof(
        { weight: 6, arbitrary: fc.constant("exact" as const) },
        { weight: 1, arbitrary: fc.integer({ min: -8, max: 8 }) },
        { weight: 1, arbitrary: fc.constantFrom(0, 2 ** 32 - 1, 2 ** 31, 16 * 1024 * 1024 + 1, 1_025) },
      ),
    })
    .map(({ payload, flag, length }) =>
      grpcFrame(
        payload,
        flag,
        length === "exact"
          ? payload.byteLength
          : length < 9
            ? Math.max(0, payload.byteLength + length)
            : length,
      ),
    );
  return fc
    .record({
      frames: fc.array(frame, { minLength: 0, maxLength: 3 }),
      stray: fc.oneof(
        { weight: 5, arbitrary: fc.constant(new Uint8Array()) },
        fc.uint8Array({ maxLength: 7 }),
      ),
    })
    .map(({ frames, stray }) => Buffer.concat([...frames, stray]));
}

const credential = fc.constantFrom("none", "service", "customer", "unknown", "malformed");
const delivery: fc.Arbitrary<Delivery> = fc.oneof(
  { weight: 12, arbitrary: fc.constant({ kind: "whole" as const }) },
  // 1 byte every 200 ms: a body of more than ten bytes outlasts the deadline.
  { weight: 1, arbitrary: fc.constant({ kind: "trickle" as const, everyMs: 200, bytes: 1 }) },
  { weight: 1, arbitrary: fc.nat({ max: 40 }).map((bytes) => ({ kind: "unfinished" as const, bytes })) },
);

interface WireCase {
  transport: "h2" | "h1";
  target: Target;
  protocol: Protocol;
  method: string;
  headers: Record<string, string>;
  body: Buffer;
  delivery: Delivery;
  credential: "none" | "service" | "customer" | "unknown" | "malformed";
  /** Headers a client of the protocol sends (its content type; no odd encoding or timeout). */
  plain: boolean;
  /** HTTP/1.1 only: how the body's length is told. */
  length: "exact" | "short" | "long" | "none" | "chunked" | "bad-chunk" | "unterminated-chunks";
}

const wireCase = (transport: WireCase["transport"]): fc.Arbitrary<WireCase> =>
  fc
    .record({
      target: fc.constantFrom(...targets),
      protocol: fc.constantFrom<Protocol>("grpc", "grpc-web", "grpc-web-text", "connect", "connect-stream"),
      method: fc.oneof(
        { weight: 12, arbitrary: fc.constant("POST") },
        fc.constantFrom("GET", "PUT", "OPTIONS"),
      ),
      contentType: fc.oneof(
        { weight: 10, arbitrary: fc.constant("protocol") },
        fc.constantFrom("absent", "text/plain", "application/grpc-foo", "application/octet-stream", ";;;"),
      ),
      credential,
      timeout: fc.oneof(
        { weight: 4, arbitrary: fc.constant(undefined) },
        fc.constantFrom("1S", "100m", "5000m", "1H", "99999999H", "abc", "-1S", "0n", "1"),
      ),
      encoding: fc.oneof(
        { weight: 6, arbitrary: fc.constant(undefined) },
        fc.constantFrom("identity", "gzip", "br", "deflate", "snappy", ""),
      ),
      signed: fc.boolean(),
      delivery,
      length: fc.oneof(
        { weight: 8, arbitrary: fc.constant("exact" as const) },
        fc.constantFrom("short" as const, "long" as const, "none" as const, "chunked" as const),
        fc.constantFrom("bad-chunk" as const, "unterminated-chunks" as const),
      ),
      seed: fc.nat(),
    })
    .chain((c) =>
      (framed(c.protocol) ? framesFor(c.target) : payloadFor(c.target).map((p) => Buffer.from(p))).map(
        (raw): WireCase => {
          const body = c.protocol === "grpc-web-text" ? Buffer.from(raw.toString("base64"), "latin1") : raw;
          const types = contentTypes[c.protocol];
          const headers: Record<string, string> = {};
          if (c.contentType === "protocol") headers["content-type"] = types[c.seed % types.length] as string;
          else if (c.contentType !== "absent") headers["content-type"] = c.contentType;
          if (c.protocol === "grpc") headers.te = "trailers";
          if (c.protocol.startsWith("connect")) headers["connect-protocol-version"] = "1";
          if (c.timeout !== undefined)
            headers[c.protocol.startsWith("connect") ? "connect-timeout-ms" : "grpc-timeout"] = c.timeout;
          if (c.encoding !== undefined) {
            headers[
              c.protocol === "connect"
                ? "content-encoding"
                : c.protocol === "connect-stream"
                  ? "connect-content-encoding"
                  : "grpc-encoding"
            ] = c.encoding;
          }
          const auth = {
            none: undefined,
            service: `Bearer ${SERVICE_TOKEN}`,
            customer: `Bearer ${customerKey}`,
            unknown: "Bearer jh_live_0000000000000000000000000000000000000000",
            malformed: "Basic Zm9vOmJhcg==",
          }[c.credential];
          if (auth !== undefined) headers.authorization = auth;
          if (c.target.path === "/svix/operational-webhooks" && c.signed) {
            const id = `msg_${c.seed}`;
            const at = new Date();
            headers["svix-id"] = id;
            headers["svix-timestamp"] = String(Math.floor(at.getTime() / 1_000));
            headers["svix-signature"] = new Webhook(OPS_SECRET).sign(id, at, body);
          }
          return {
            transport,
            target: c.target,
            protocol: c.protocol,
            method: c.method,
            headers,
            body,
            delivery: c.delivery,
            length: c.delivery.kind === "whole" ? c.length : "exact",
            credential: c.credential,
            plain: c.contentType === "protocol" && c.encoding === undefined && c.timeout === undefined,
          };
        },
      ),
    );

/**
 * Requests the size rule of open services is about: one well-framed health or reflection message
 * over 1 KiB, by gRPC over HTTP/2 or Connect over HTTP/1.1 — rare among the cases above.
 */
const oversizeOpenCase: fc.Arbitrary<WireCase> = fc
  .record({
    target: fc.constantFrom(...targets.filter((t) => t.open && t.message)),
    transport: fc.constantFrom<WireCase["transport"]>("h2", "h1"),
    size: fc.integer({ min: 1_025, max: 256 * 1024 }),
    credential: fc.constantFrom(undefined, `Bearer ${SERVICE_TOKEN}`),
  })
  .filter((r) => r.transport === "h2" || r.target.path.endsWith("/Check"))
  .map(({ target, transport, size, credential }): WireCase => {
    const message = target.path.includes("Health")
      ? toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema, { service: "s".repeat(size) }))
      : toBinary(
          ServerReflectionRequestSchema,
          create(ServerReflectionRequestSchema, {
            messageRequest: { case: "fileByFilename", value: "f".repeat(size) },
          }),
        );
    const grpc = transport === "h2";
    return {
      transport,
      target,
      protocol: grpc ? "grpc" : "connect",
      method: "POST",
      headers: {
        "content-type": grpc ? "application/grpc" : "application/proto",
        ...(grpc ? { te: "trailers" } : { "connect-protocol-version": "1" }),
        ...(credential ? { authorization: credential } : {}),
      },
      body: grpc ? grpcFrame(message) : Buffer.from(message),
      delivery: { kind: "whole" },
      length: "exact",
      credential: credential ? "service" : "none",
      plain: true,
    };
  });

function send(c: WireCase): Promise<WireAnswer> {
  const common = {
    path: c.target.path,
    method: c.method,
    delivery: c.delivery,
    timeoutMs: LIMIT_MS,
    // A Watch never ends; a reflection stream ends once the client has ended its side.
    settleOnHeaders:
      c.target.stream === true && (c.target.path.endsWith("/Watch") || c.delivery.kind !== "whole"),
  };
  if (c.transport === "h2") return h2Call(stack.svc.url, { ...common, headers: c.headers, body: c.body });
  const headers: Array<[string, string]> = Object.entries(c.headers);
  let body: Buffer = c.body;
  switch (c.length) {
    case "exact":
      headers.push(["content-length", String(body.byteLength)]);
      break;
    case "short":
      headers.push(["content-length", String(Math.floor(body.byteLength / 2))]);
      break;
    case "long":
      headers.push(["content-length", String(body.byteLength + 1 + (body.byteLength % 1_000))]);
      break;
    case "none":
      break;
    default: {
      headers.push(["transfer-encoding", "chunked"]);
      const half = Math.floor(body.byteLength / 2);
      const chunk = (b: Buffer) =>
        b.byteLength ? `${b.byteLength.toString(16)}\r\n${b.toString("latin1")}\r\n` : "";
      const chunks = chunk(body.subarray(0, half)) + chunk(body.subarray(half));
      body = Buffer.from(
        c.length === "chunked"
          ? `${chunks}0\r\n\r\n`
          : c.length === "bad-chunk"
            ? `zz\r\n${body.toString("latin1")}\r\n0\r\n\r\n`
            : chunks,
        "latin1",
      );
    }
  }
  return h1Call(stack.svc.url, { ...common, headers, body });
}

/** What a failure report shows of a request: enough to replay it. */
function describeCase(c: WireCase): string {
  const shown =
    c.body.byteLength > 96
      ? `${c.body.subarray(0, 96).toString("hex")}… (${c.body.byteLength} bytes)`
      : c.body.toString("hex");
  const headers = { ...c.headers };
  if (headers.authorization) headers.authorization = headers.authorization.replace(/ .*/, " …");
  return `${c.transport} ${c.method} ${c.target.path} ${JSON.stringify(headers)} delivery=${JSON.stringify(c.delivery)} length=${c.length} body=${shown}`;
}

function describeAnswer(a: WireAnswer): string {
  const grpc = grpcStatusOf(a);
  return `${a.outcome} status=${a.status ?? "-"}${grpc !== undefined ? ` grpc-status=${grpc}` : ""} headers@${a.headersMs ?? "-"}ms end@${a.endMs}ms rst=${a.rstCode ?? "-"} body=${a.bodyBytes}B ${a.body
    .subarray(0, 160)
    .toString("latin1")
    .replace(/[^\x20-\x7e]/g, ".")}`;
}

const results: Array<{ c: WireCase; a: WireAnswer }> = [];

async function runAll(cases: WireCase[]): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < cases.length) {
        const c = cases[next++] as WireCase;
        results.push({ c, a: await send(c) });
      }
    }),
  );
}

/**
 * One property over every answer: `check` returns why an answer breaks it, `undefined` when it
 * holds, `null` when it does not apply. The failures (at most `shown`, each with its request and
 * answer) and how many answers it applied to.
 */
function checkAll(
  check: (c: WireCase, a: WireAnswer) => string | undefined | null,
  shown = 8,
): { failures: string[]; applied: number } {
  const out: string[] = [];
  let applied = 0;
  for (const { c, a } of results) {
    const why = check(c, a);
    if (why === null) continue;
    applied++;
    if (why !== undefined)
      out.push(`${why}\n    request: ${describeCase(c)}\n    answer:  ${describeAnswer(a)}`);
  }
  const failures = out.length > shown ? [...out.slice(0, shown), `… and ${out.length - shown} more`] : out;
  return { failures, applied };
}

const failuresOf = (check: Parameters<typeof checkAll>[0]) => checkAll(check).failures;

const isGrpc = (c: WireCase) =>
  c.protocol !== "connect" &&
  c.protocol !== "connect-stream" &&
  (c.headers["content-type"] ?? "").startsWith("application/grpc");

/** Bytes an answer carries: its body and the error text and details in headers or trailers. */
function answerBytes(a: WireAnswer): number {
  const meta = ["grpc-message", "grpc-status-details-bin"]
    .map((k) => (a.trailers[k] ?? a.headers[k] ?? "").length)
    .reduce((x, y) => x + y, 0);
  return a.bodyBytes + meta;
}

function isError(c: WireCase, a: WireAnswer): boolean {
  if (a.status !== undefined && a.status >= 400) return true;
  const grpc = grpcStatusOf(a);
  return isGrpc(c) && grpc !== undefined && grpc !== "0";
}

describe("the wire under generated requests on every protocol and path", () => {
  beforeAll(async () => {
    const nc = await connect({ servers: stack.nats.url });
    try {
      customerKey = (await (await openApiKeyStore(nc, { replicas: 1 })).create("acme")).key;
    } finally {
      await nc.close();
    }
    const cases = [
      ...fc.sample(wireCase("h2"), { numRuns: RUNS_PER_PROTOCOL, seed: SEED }),
      ...fc.sample(wireCase("h1"), { numRuns: RUNS_PER_PROTOCOL, seed: SEED + 1 }),
      ...fc.sample(oversizeOpenCase, { numRuns: 20, seed: SEED + 2 }),
    ];
    const started = performance.now();
    await runAll(cases);
    const tally = new Map<string, number>();
    for (const { c, a } of results) {
      const k = `${c.transport} ${a.outcome} ${a.status ?? "-"}${isGrpc(c) ? ` grpc ${grpcStatusOf(a) ?? "none"}` : ""}`;
      tally.set(k, (tally.get(k) ?? 0) + 1);
    }
    console.log(
      `wire fuzz: ${results.length} requests in ${Math.round(performance.now() - started)} ms (seed ${SEED}):`,
      Object.fromEntries([...tally].sort()),
    );
  }, 120_000);

  it("the service still answers ordinary calls afterwards: it never crashed", async () => {
    const res = await fetch(`${stack.svc.url}${webhookService}/PublishJobEvent`, {
      method: "POST",
      headers: { authorization: `Bearer ${SERVICE_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        event: { tenantId: "acme", jobId: "after-fuzz", status: "JOB_STATUS_CREATED" },
      }),
    });
    expect(res.status).toBe(200);
    const health = createClient(Health, createGrpcTransport({ baseUrl: stack.svc.url }));
    expect((await health.check({ service: "" })).status).toBe(1);
  });

  it(`no call is left hanging past the server's ${DEADLINE_MS} ms deadline (+${SLACK_MS} ms slack)`, () => {
    expect(
      failuresOf((_c, a) => (a.outcome === "timeout" ? "no answer, reset or close" : undefined)),
    ).toEqual([]);
  });

  it("no answer is an HTTP 5xx but the Connect protocol's own (unimplemented, unavailable, deadline_exceeded)", () => {
    expect(
      failuresOf((c, a) => {
        if (a.status === undefined || a.status < 500) return undefined;
        const code = /"code"\s*:\s*"([a-z_]+)"/.exec(a.body.toString("utf8"))?.[1];
        const connectCode = { 501: "unimplemented", 503: "unavailable", 504: "deadline_exceeded" }[a.status];
        if (connectCode !== undefined && code === connectCode) return undefined;
        // Bidirectional streams need HTTP/2: the HTTP answer for them over HTTP/1.1.
        if (a.status === 505 && c.transport === "h1" && c.target.path.includes("ServerReflection"))
          return undefined;
        return `HTTP ${a.status}`;
      }),
    ).toEqual([]);
  });

  it("every gRPC request that gets an answer gets a grpc-status (a bare end or reset is no status)", () => {
    expect(
      failuresOf((c, a) => {
        if (!isGrpc(c) || c.method !== "POST" || a.outcome === "timeout" || a.streaming) return undefined;
        // gRPC proper needs HTTP/2 (trailers); over HTTP/1.1 only gRPC-Web carries a status.
        if (c.transport === "h1" && !(c.headers["content-type"] ?? "").startsWith("application/grpc-web"))
          return undefined;
        if (a.status !== undefined && a.status !== 200) return undefined;
        return grpcStatusOf(a) === undefined ? `gRPC ${a.outcome} without grpc-status` : undefined;
      }),
    ).toEqual([]);
  });

  it("health answers stay under 1 KiB, and error answers under 4 KiB, whatever was sent", () => {
    expect(
      failuresOf((c, a) => {
        const bytes = answerBytes(a);
        if (c.target.path.startsWith("/grpc.health.v1.Health/") && bytes > 1_024)
          return `health answer of ${bytes} bytes`;
        if (isError(c, a) && bytes > 4_096) return `error answer of ${bytes} bytes`;
        return undefined;
      }),
    ).toEqual([]);
  });

  it("reflection answers stay under 4 KiB: what a stranger sends is not echoed back", () => {
    // The requests drawn here are list_services (a few hundred bytes) and unknown names.
    expect(
      failuresOf((c, a) => {
        if (!c.target.path.includes("ServerReflection")) return undefined;
        const bytes = answerBytes(a);
        return bytes > 4_096 ? `reflection answer of ${bytes} bytes` : undefined;
      }),
    ).toEqual([]);
  });

  it("service-only methods refuse from the headers: UNAUTHENTICATED without a credential, PERMISSION_DENIED for a customer key, whatever the body", () => {
    const serviceOnly = ["PublishJobEvent", "PublishJobEvents", "RevokePortalSessions"].map(
      (m) => `${webhookService}/${m}`,
    );
    const { failures, applied } = checkAll((c, a) => {
      if (!serviceOnly.includes(c.target.path) || c.credential === "service") return null;
      // gRPC-Web-text is not served (415 for everyone); Connect streaming is not how unary is called.
      const unaryProtocol = c.protocol !== "connect-stream" && c.protocol !== "grpc-web-text";
      // A body with more bytes than announced (or unannounced) reads as a broken second request
      // on HTTP/1.1, which Node's parser answers 400 on its own.
      const framedLength = !["bad-chunk", "short", "none"].includes(c.length);
      if (!c.plain || c.method !== "POST" || !unaryProtocol || !framedLength) return null;
      // An address that keeps failing is slowed down: RESOURCE_EXHAUSTED is that answer.
      const expected = c.credential === "customer" ? ["7"] : ["16", "8"];
      const connect = { "401": "16", "403": "7", "429": "8" }[String(a.status)];
      const got = c.protocol === "connect" ? connect : grpcStatusOf(a);
      if (got !== undefined && expected.includes(got)) return undefined;
      return `${c.credential} credential: got ${c.protocol === "connect" ? `HTTP ${a.status ?? "-"}` : `grpc-status ${got ?? "none"}`}, not ${expected.join(" or ")}`;
    });
    expect(failures).toEqual([]);
    expect(applied, "requests of this kind among the generated ones").toBeGreaterThanOrEqual(10);
  });

  it("a body announced as over 1 KiB to health or reflection is refused with RESOURCE_EXHAUSTED", () => {
    const { failures, applied } = checkAll((c, a) => {
      const open =
        c.target.path.startsWith("/grpc.health.v1.Health/") || c.target.path.includes("ServerReflection");
      // Odd headers (an invalid grpc-timeout, an encoding) may rightly be refused first.
      if (!open || !c.plain || c.method !== "POST" || a.outcome === "timeout") return null;
      const type = c.headers["content-type"] ?? "";
      if (c.transport === "h2" && c.protocol === "grpc" && type.startsWith("application/grpc")) {
        // The frame's prefix already says it: uncompressed, longer than 1 KiB.
        if (c.body.byteLength < 5 || c.body[0] !== 0 || c.body.readUInt32BE(1) <= 1_024) return null;
        const grpc = grpcStatusOf(a);
        return grpc === "8" ? undefined : `grpc-status ${grpc ?? "none"}, not 8 RESOURCE_EXHAUSTED`;
      }
      if (
        c.transport === "h1" &&
        c.protocol === "connect" &&
        c.length === "exact" &&
        c.target.path.endsWith("/Check")
      ) {
        if (
          !/^application\/(json|proto)/.test(type) ||
          c.body.byteLength <= 1_024 ||
          c.headers["content-encoding"]
        )
          return null;
        return a.status === 429 ? undefined : `HTTP ${a.status ?? "-"}, not 429 resource_exhausted`;
      }
      return null;
    });
    expect(failures).toEqual([]);
    expect(applied, "requests of this kind among the generated ones").toBeGreaterThanOrEqual(5);
  });
});
