import { readFileSync } from "node:fs";
import * as http2 from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { StatusSchema } from "../../src/gen/google/rpc/status_pb.js";
import { grpcJsWebhookClient } from "./grpc-js.js";
import { h1Call, type WireAnswer } from "./raw-wire.js";

/**
 * The attacks of issue 20's table, rows 1–3, as functions the attack drill (test/security) and the
 * memory benchmark (bench/attack.ts) both run against a `jobhooks serve` child: what a stranger, a
 * customer key and a service token can send within the documented limits.
 */

/** NODE_OPTIONS of the container image (Dockerfile): the heap a replica really has. */
export const IMAGE_NODE_OPTIONS = "--max-semi-space-size=16 --max-old-space-size=192";

/** The documented largest request (a PublishJobEvents batch). */
export const MIB_16 = 16 * 1024 * 1024;

/** A field of /proc/PID/status in MB (VmRSS now, VmHWM the peak since start), or NaN once the process is gone. */
export function procStatusMb(pid: number, field: "VmRSS" | "VmHWM"): number {
  try {
    const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(
      readFileSync(`/proc/${pid}/status`, "utf8"),
    )?.[1];
    return kb === undefined ? Number.NaN : Number(kb) / 1024;
  } catch {
    return Number.NaN;
  }
}

/**
 * Row 1: `callers` unauthenticated Connect JSON `grpc.health.v1.Health/Check` calls at once over
 * HTTP/1.1, each a service name of about `bytes`.
 */
export function healthCheckFlood(
  url: string,
  o: { callers?: number; bytes?: number; timeoutMs?: number } = {},
): Promise<WireAnswer[]> {
  const bytes = o.bytes ?? MIB_16;
  const body = Buffer.from(`{"service":"${"s".repeat(bytes - 14)}"}`);
  return Promise.all(
    Array.from({ length: o.callers ?? 16 }, () =>
      h1Call(url, {
        path: "/grpc.health.v1.Health/Check",
        headers: [
          ["content-type", "application/json"],
          ["content-length", String(body.byteLength)],
        ],
        body,
        delivery: { kind: "whole" },
        timeoutMs: o.timeoutMs ?? 15_000,
      }),
    ),
  );
}

/** What a grpc-js caller saw: the status code (0 = OK), its message, and what the answer held. */
export interface GrpcOutcome {
  code: number;
  message: string;
  /** The error carried google.rpc.RetryInfo in grpc-status-details-bin. */
  retryInfo: boolean;
  /** PublishJobEvents: results that carried an error. */
  failedEvents?: number;
  ms: number;
}

type Unary = (
  req: unknown,
  md: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: grpc.requestCallback<unknown>,
) => void;
interface WebhookClient {
  PublishJobEvent: Unary;
  PublishJobEvents: Unary;
  GetPortalLink: Unary;
}

/**
 * One valid, unique event of about `bytes` (the rest of the event is a few dozen bytes): a
 * completed job whose result holds the bulk. The Struct in grpc-js's (proto-loader's) own shape.
 */
export function sizedEvent(jobId: string, bytes: number) {
  return {
    tenantId: "acme",
    jobId,
    status: "JOB_STATUS_COMPLETED",
    result: { fields: { blob: { stringValue: "x".repeat(Math.max(0, bytes - 60)) } } },
  };
}

/** A PublishJobEvents request of `events` valid events, `totalBytes` in all (roughly). */
export function sizedBatch(prefix: string, events: number, totalBytes: number) {
  const each = Math.floor(totalBytes / events) - 8;
  return { events: Array.from({ length: events }, (_, i) => sizedEvent(`${prefix}-${i}`, each)) };
}

const clients = new Map<string, grpc.Client & WebhookClient>();

/** One grpc-js channel per service URL, as a real caller keeps (loading the .proto is slow). */
function clientFor(url: string): grpc.Client & WebhookClient {
  let client = clients.get(url);
  if (!client) {
    client = grpcJsWebhookClient<WebhookClient>(url);
    clients.set(url, client);
  }
  return client;
}

/** Closes the channels grpcJsCall opened. */
export function closeGrpcJsClients(): void {
  for (const c of clients.values()) c.close();
  clients.clear();
}

/** A unary call through grpc-js with a bearer credential, settled as an outcome (never thrown). */
export function grpcJsCall(
  url: string,
  method: keyof WebhookClient,
  request: unknown,
  credential: string,
  deadlineMs = 60_000,
): Promise<GrpcOutcome> {
  const client = clientFor(url);
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${credential}`);
  const started = performance.now();
  return new Promise<GrpcOutcome>((resolve) => {
    client[method](request, md, { deadline: Date.now() + deadlineMs }, (err, res) => {
      const ms = Math.round(performance.now() - started);
      if (!err) {
        const results = (res as { results?: Array<{ error?: unknown }> }).results;
        resolve({
          code: 0,
          message: "",
          retryInfo: false,
          failedEvents: results?.filter((r) => r.error).length,
          ms,
        });
        return;
      }
      const e = err as grpc.ServiceError;
      const bin = e.metadata?.get("grpc-status-details-bin")[0];
      let retryInfo = false;
      if (Buffer.isBuffer(bin)) {
        try {
          retryInfo = fromBinary(StatusSchema, bin).details.some((d) =>
            d.typeUrl.endsWith("google.rpc.RetryInfo"),
          );
        } catch {
          retryInfo = false;
        }
      }
      resolve({ code: e.code, message: e.details, retryInfo, ms });
    });
  });
}

/**
 * Row 2: a customer API key sends a 13.4 MiB PublishJobEvent and a 15.3 MiB PublishJobEvents (1,000
 * events) — neither method is open to customer keys.
 */
export async function customerKeyOversize(url: string, key: string, prefix: string) {
  const single = await grpcJsCall(
    url,
    "PublishJobEvent",
    { event: sizedEvent(`${prefix}-single`, Math.round(13.4 * 1024 * 1024)) },
    key,
  );
  const batch = await grpcJsCall(
    url,
    "PublishJobEvents",
    sizedBatch(`${prefix}-batch`, 1_000, Math.round(15.3 * 1024 * 1024)),
    key,
  );
  return { single, batch };
}

/** Row 3: `concurrent` valid 1,000-event batches just under 16 MiB each, with a service token. */
export function bigValidBatches(
  url: string,
  token: string,
  prefix: string,
  concurrent = 4,
): Promise<GrpcOutcome[]> {
  return Promise.all(
    Array.from({ length: concurrent }, (_, i) =>
      grpcJsCall(url, "PublishJobEvents", sizedBatch(`${prefix}-${i}`, 1_000, MIB_16 - 64 * 1024), token),
    ),
  );
}

/** How each stream of `holdStreams` stood when the hold ended. */
export type HeldStream = "held" | `refused ${string}` | `reset ${number}` | "not opened";

/**
 * Opens `connections` HTTP/2 connections with `perConnection` streams each, sends every stream
 * the first `sendBytes` of `body` and never the rest, and keeps them so while `during` runs (a
 * legitimate caller, a measurement). Streams the server answered are counted as refused with their
 * grpc-status. Everything is closed afterwards.
 */
export async function holdStreams<T>(
  url: string,
  o: {
    connections: number;
    perConnection: number;
    path: string;
    headers: Record<string, string>;
    body: Uint8Array;
    sendBytes: number;
    /** Time given to the server to answer or hold the streams before `during` runs. */
    settleMs?: number;
  },
  during: () => Promise<T>,
): Promise<{ streams: Record<string, number>; during: T }> {
  // The client's own nghttp2 memory cap (10 MB) would otherwise reset streams of a 16 MiB body
  // with ENHANCE_YOUR_CALM on this side, which says nothing about the server.
  const sessions = Array.from({ length: o.connections }, () =>
    http2.connect(url, { maxSessionMemory: 1_024 }),
  );
  const states: HeldStream[] = [];
  try {
    for (const session of sessions) {
      session.on("error", () => {});
      for (let i = 0; i < o.perConnection; i++) {
        const at = states.push("held") - 1;
        let stream: http2.ClientHttp2Stream;
        try {
          stream = session.request(
            { ":method": "POST", ":path": o.path, ...o.headers },
            { endStream: false },
          );
        } catch {
          states[at] = "not opened";
          continue;
        }
        stream.on("error", () => {});
        stream.on("response", (h) => {
          if (h["grpc-status"] !== undefined) states[at] = `refused ${h["grpc-status"]}`;
        });
        stream.on("trailers", (h) => {
          states[at] = `refused ${h["grpc-status"] ?? "?"}`;
        });
        stream.on("close", () => {
          // NGHTTP2 codes: 7 REFUSED_STREAM, 8 CANCEL, 11 ENHANCE_YOUR_CALM (either side's memory cap).
          if (states[at] === "held") states[at] = `reset ${stream.rstCode ?? 0}`;
        });
        stream.write(o.body.subarray(0, o.sendBytes));
      }
    }
    await new Promise((r) => setTimeout(r, o.settleMs ?? 1_000));
    const result = await during();
    const streams: Record<string, number> = {};
    for (const s of states) streams[s] = (streams[s] ?? 0) + 1;
    return { streams, during: result };
  } finally {
    for (const s of sessions) s.destroy();
  }
}
