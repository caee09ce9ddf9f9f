import type * as http from "node:http";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ServerReflection } from "../../src/gen/grpc/reflection/v1/reflection_pb.js";
import { Health } from "../../src/gen/health/v1/health_pb.js";
import {
  JobEventSchema,
  PublishJobEventsRequestSchema,
  WebhookService,
} from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { clientAddressOf } from "../../src/server/client-address.js";
import { decodeCostOf } from "../../src/server/decode-cost.js";
import { createMemoryBudget } from "../../src/server/memory-budget.js";
import { createOpenStreamLimits } from "../../src/server/open-streams.js";
import { encodeGrpcMessage, respecGrpcMessage } from "../../src/server/rpc-errors.js";
import { policyOf } from "../../src/server/rpc-policy.js";

const request = (peer: string, headers: Record<string, string> = {}) =>
  ({ socket: { remoteAddress: peer }, headers }) as unknown as http.IncomingMessage;

describe("the client address failures are counted against", () => {
  it("is the peer's when no proxy is trusted, whatever the request claims", () => {
    const of = clientAddressOf({ trustedProxies: [], header: "x-forwarded-for" });
    expect(of(request("203.0.113.9", { "x-forwarded-for": "1.2.3.4" }))).toBe("203.0.113.9");
  });

  it("behind trusted proxies is the nearest hop that is not one of them", () => {
    const of = clientAddressOf({ trustedProxies: ["10.0.0.0/8", "::1"], header: "X-Forwarded-For" });
    // The client may forge the left part; the proxies append what they saw.
    expect(of(request("10.1.2.3", { "x-forwarded-for": "6.6.6.6, 198.51.100.7, 10.9.9.9" }))).toBe(
      "198.51.100.7",
    );
    expect(of(request("::ffff:10.1.2.3", { "x-forwarded-for": "198.51.100.8" }))).toBe("198.51.100.8");
    // An untrusted peer's header is ignored.
    expect(of(request("198.51.100.9", { "x-forwarded-for": "1.1.1.1" }))).toBe("198.51.100.9");
    // A trusted peer with a garbled header counts as itself.
    expect(of(request("10.0.0.5", { "x-forwarded-for": "not-an-address" }))).toBe("10.0.0.5");
  });
});

describe("the shared memory budget", () => {
  it("refuses what does not fit and takes nothing then; releases make room again", () => {
    const budget = createMemoryBudget(100);
    expect(budget.tryReserve(60)).toBe(true);
    expect(budget.tryReserve(50)).toBe(false);
    expect(budget.inUse).toBe(60);
    budget.release(60);
    expect(budget.tryReserve(100)).toBe(true);
  });
});

describe("what decoding a body may cost, estimated before it is decoded", () => {
  const input = PublishJobEventsRequestSchema;
  const tiny = create(input, {
    events: [
      create(JobEventSchema, {
        tenantId: "t",
        jobId: "j",
        metadata: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, `v${i}`])),
      }),
    ],
  });
  const blob = create(input, {
    events: [create(JobEventSchema, { tenantId: "t", jobId: "j", metadata: { blob: "x".repeat(300_000) } })],
  });
  const bin = (m: typeof tiny) => toBinary(input, m);
  const json = (m: typeof tiny) => new TextEncoder().encode(toJsonString(input, m));
  const envelope = (b: Uint8Array) => {
    const out = new Uint8Array(5 + b.length);
    new DataView(out.buffer).setUint32(1, b.length);
    out.set(b, 5);
    return out;
  };

  it("counts many tiny values far above one large value of the same size, in protobuf and JSON", () => {
    for (const [encode, encoding] of [
      [bin, "proto"],
      [json, "json"],
    ] as const) {
      const t = encode(tiny);
      const b = encode(blob);
      expect(decodeCostOf(t, encoding, input, 1 << 24) / t.length).toBeGreaterThan(8);
      expect(decodeCostOf(b, encoding, input, 1 << 24) / b.length).toBeLessThan(3);
    }
  });

  it("reads through gRPC's envelope, and counts a malformed or compressed body at its worst", () => {
    const t = bin(tiny);
    const bare = decodeCostOf(t, "proto", input, 1 << 24);
    expect(decodeCostOf(envelope(t), "proto", input, 1 << 24)).toBeGreaterThanOrEqual(bare);
    const garbage = new Uint8Array(10_000).fill(0xff);
    expect(decodeCostOf(garbage, "proto", input, 1 << 24)).toBeGreaterThan(10_000 * 15);
    expect(decodeCostOf(new Uint8Array(10), "compressed", input, 1 << 20)).toBeGreaterThan(1 << 24);
  });
});

describe("streams nobody authenticated", () => {
  it("are capped per connection and per address, and slots come back once", () => {
    const limits = createOpenStreamLimits({ perConnection: 2, perAddress: 3 });
    const a = {};
    const b = {};
    const r1 = limits.take(a, "x");
    expect(limits.take(a, "x")).toBeDefined();
    expect(limits.take(a, "x")).toBeUndefined();
    expect(limits.take(b, "x")).toBeDefined();
    expect(limits.take(b, "x")).toBeUndefined();
    expect(limits.take(b, "y")).toBeDefined();
    // b is full (x and y); x has 3. Releasing one of a's, twice, frees exactly one slot of x.
    r1?.();
    r1?.();
    const c = {};
    expect(limits.take(c, "x")).toBeDefined();
    expect(limits.take(c, "x")).toBeUndefined();
  });
});

describe("grpc-message", () => {
  it("is encoded only where the gRPC spec requires, so decodeURI and the spec's decoders read it alike", () => {
    const text = "missing credential: send Authorization: Bearer <token> — 100% sure";
    const encoded = encodeGrpcMessage(text);
    expect(encoded).toContain("missing credential: send Authorization: Bearer <token>");
    expect(encoded).not.toContain("%3A");
    expect(decodeURI(encoded)).toBe(text);
    expect(decodeURIComponent(encoded)).toBe(text);
    expect(respecGrpcMessage(encodeURIComponent(text))).toBe(encoded);
  });
});

describe("who may call what, and how much they may send", () => {
  it("every WebhookService method has its own row: a new RPC cannot be served without one", () => {
    for (const method of WebhookService.methods) {
      const policy = policyOf(method);
      expect(policy.readMaxBytes, method.name).toBeGreaterThan(0);
      expect(policy.access, method.name).not.toBe("open");
    }
  });

  it("health and reflection are open, with tiny bodies", () => {
    for (const method of [...Health.methods, ...ServerReflection.methods]) {
      expect(policyOf(method)).toEqual({ access: "open", readMaxBytes: 1024 });
    }
  });
});
