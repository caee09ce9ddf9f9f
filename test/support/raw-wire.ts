import * as http2 from "node:http2";
import * as net from "node:net";

/**
 * Raw clients for attacking the one port the way a stranger can: any bytes, any headers, bodies
 * sent whole, trickled or never finished. They record what came back and when, and never throw for
 * what the server does (a reset or a closed socket is an outcome, not an error).
 */

/** How the body leaves the client. */
export type Delivery =
  | { kind: "whole" }
  /** `bytes` at a time every `everyMs`, then the end of the body. */
  | { kind: "trickle"; everyMs: number; bytes: number }
  /** The first `bytes` of the body, and then nothing: the body never ends. */
  | { kind: "unfinished"; bytes: number };

export interface WireAnswer {
  /**
   * `answered`: a whole response (or, with `settleOnHeaders`, its headers); `reset`/`closed`: the
   * server ended the stream or connection without a whole response; `timeout`: nothing ended the
   * call within the client's time limit — a hang.
   */
  outcome: "answered" | "reset" | "closed" | "timeout";
  /** HTTP status, when response headers arrived. */
  status?: number;
  headers: Record<string, string>;
  /** HTTP/2 trailers (gRPC's status lives here unless the answer is trailers-only). */
  trailers: Record<string, string>;
  body: Buffer;
  /** Milliseconds from the request's start to its response headers. */
  headersMs?: number;
  /** Milliseconds from the request's start to the end of the call (or to the time limit). */
  endMs: number;
  /** HTTP/2 RST_STREAM code the stream closed with, when it was reset. */
  rstCode?: number;
  /** Bytes of the response body (only the first 64 KiB are kept in `body`). */
  bodyBytes: number;
  /** The call was settled on its response headers while the stream went on (`settleOnHeaders`). */
  streaming?: boolean;
}

export interface WireRequest {
  path: string;
  method?: string;
  headers: Record<string, string>;
  body: Uint8Array;
  delivery: Delivery;
  /** The call is given up (outcome `timeout`) after this long. */
  timeoutMs: number;
  /** A stream (health Watch) never ends: its response headers are the answer. */
  settleOnHeaders?: boolean;
  /** HTTP/2 only: reuse this session instead of opening one for the call. */
  session?: http2.ClientHttp2Session;
}

const keptBodyBytes = 64 * 1024;
/** A stream whose response headers came is settled this long after them unless it ended sooner. */
const streamGraceMs = 100;

function lowerCaseStrings(h: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (typeof v === "string") out[k.toLowerCase()] = v;
    else if (typeof v === "number") out[k.toLowerCase()] = String(v);
    else if (Array.isArray(v)) out[k.toLowerCase()] = v.join(",");
  }
  return out;
}

/** Sends the body per `delivery` through `write`/`end`, until `stopped()` says the call is over. */
function deliver(
  body: Uint8Array,
  delivery: Delivery,
  write: (chunk: Uint8Array) => void,
  end: () => void,
  stopped: () => boolean,
): () => void {
  if (delivery.kind === "whole") {
    if (body.byteLength > 0) write(body);
    end();
    return () => {};
  }
  if (delivery.kind === "unfinished") {
    const part = body.subarray(0, Math.min(delivery.bytes, body.byteLength));
    if (part.byteLength > 0) write(part);
    return () => {};
  }
  let offset = 0;
  const timer = setInterval(() => {
    if (stopped()) return clearInterval(timer);
    if (offset >= body.byteLength) {
      clearInterval(timer);
      end();
      return;
    }
    write(body.subarray(offset, offset + delivery.bytes));
    offset += delivery.bytes;
  }, delivery.everyMs);
  return () => clearInterval(timer);
}

/**
 * One call's bookkeeping: its answer, when it started, and its end — reached once, by a whole
 * answer, the server closing, or the client's time limit. `settle` then hands the answer back.
 */
class Call {
  readonly answer: WireAnswer = {
    outcome: "timeout",
    headers: {},
    trailers: {},
    body: Buffer.alloc(0),
    endMs: 0,
    bodyBytes: 0,
  };
  done = false;
  stopDelivery = () => {};
  private readonly started = performance.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    timeoutMs: number,
    private readonly settle: (answer: WireAnswer) => void,
  ) {
    this.timer = setTimeout(() => this.finish("timeout"), timeoutMs);
  }

  elapsed(): number {
    return Math.round(performance.now() - this.started);
  }

  finish(outcome: WireAnswer["outcome"]): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.stopDelivery();
    this.answer.outcome = outcome;
    this.answer.endMs = this.elapsed();
    this.settle(this.answer);
  }

  /** A stream's headers are its answer, unless it ends (an error) within a moment of them. */
  settleSoonAfterHeaders(): void {
    setTimeout(() => {
      this.answer.streaming = !this.done;
      this.finish("answered");
    }, streamGraceMs);
  }
}

/** One HTTP/2 request (gRPC, gRPC-Web, Connect over HTTP/2) on its own or a given session. */
export function h2Call(baseUrl: string, req: WireRequest): Promise<WireAnswer> {
  const session = req.session ?? http2.connect(baseUrl);
  session.on("error", () => {});
  return new Promise((resolve) => {
    const kept = new KeptBytes();
    let stream: http2.ClientHttp2Stream | undefined;
    const call = new Call(req.timeoutMs, (answer) => {
      answer.body = Buffer.concat(kept.kept);
      answer.bodyBytes = kept.total;
      if (stream && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
      if (!req.session) session.destroy();
      resolve(answer);
    });
    const { answer } = call;
    try {
      stream = session.request(
        { ":method": req.method ?? "POST", ":path": req.path, ...req.headers },
        { endStream: false },
      );
    } catch {
      // The session refused to open a stream (e.g. it already got GOAWAY).
      call.finish("closed");
      return;
    }
    const s = stream;
    s.on("error", () => {});
    s.on("response", (headers) => {
      answer.status = Number(headers[":status"]);
      answer.headers = lowerCaseStrings(headers);
      answer.headersMs = call.elapsed();
      if (req.settleOnHeaders && !s.readableEnded) call.settleSoonAfterHeaders();
    });
    s.on("trailers", (trailers) => {
      answer.trailers = lowerCaseStrings(trailers);
    });
    s.on("data", (c: Buffer) => kept.add(c));
    s.on("end", () => call.finish(answer.status === undefined ? "closed" : "answered"));
    s.on("close", () => {
      if (!call.done) answer.rstCode = s.rstCode;
      call.finish(answer.status !== undefined && s.readableEnded ? "answered" : "reset");
    });
    call.stopDelivery = deliver(
      req.body,
      req.delivery,
      (c) => {
        if (!s.destroyed && s.writable) s.write(c);
      },
      () => {
        if (!s.destroyed && s.writable) s.end();
      },
      () => call.done,
    );
  });
}

/** The head of an HTTP/1.1 request, exactly as given (wrong lengths and all). */
export interface H1Request extends Omit<WireRequest, "headers" | "session"> {
  /** Header lines, in order; `host` and `connection: close` are added unless present. */
  headers: Array<[string, string]>;
}

/** One HTTP/1.1 request written byte by byte on a fresh TCP connection. */
export function h1Call(baseUrl: string, req: H1Request): Promise<WireAnswer> {
  const url = new URL(baseUrl);
  const names = new Set(req.headers.map(([k]) => k.toLowerCase()));
  const lines = [
    `${req.method ?? "POST"} ${req.path} HTTP/1.1`,
    ...(names.has("host") ? [] : [`host: ${url.host}`]),
    ...(names.has("connection") ? [] : ["connection: close"]),
    ...req.headers.map(([k, v]) => `${k}: ${v}`),
  ];
  const head = Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
  return new Promise((resolve) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port) });
    let responseHead = Buffer.alloc(0);
    let inBody = false;
    let chunked: ChunkedBody | undefined;
    const plain = new KeptBytes();
    const call = new Call(req.timeoutMs, (answer) => {
      const kept = chunked ?? plain;
      answer.body = Buffer.concat(kept.kept);
      answer.bodyBytes = kept.total;
      if (chunked) answer.trailers = chunked.trailers;
      socket.destroy();
      resolve(answer);
    });
    const { answer } = call;
    const onBody = (b: Buffer) => {
      if (chunked) {
        if (chunked.push(b)) call.finish("answered");
        return;
      }
      const length = answer.headers["content-length"];
      const rest = length === undefined ? b : b.subarray(0, Math.max(0, Number(length) - plain.total));
      plain.add(rest);
      if (length !== undefined && plain.total >= Number(length)) call.finish("answered");
    };
    socket.on("error", () => {});
    socket.on("close", () => call.finish(answer.status === undefined ? "closed" : "answered"));
    socket.on("data", (c: Buffer) => {
      if (inBody) return onBody(c);
      responseHead = Buffer.concat([responseHead, c]);
      const end = responseHead.indexOf("\r\n\r\n");
      if (end < 0) return;
      const [statusLine = "", ...headerLines] = responseHead
        .subarray(0, end)
        .toString("latin1")
        .split("\r\n");
      const rest = responseHead.subarray(end + 4);
      // A 100 Continue is not the answer: drop it and read on.
      if (Number(statusLine.split(" ")[1]) === 100) {
        responseHead = Buffer.alloc(0);
        if (rest.byteLength > 0) socket.emit("data", rest);
        return;
      }
      answer.status = Number(statusLine.split(" ")[1]);
      for (const l of headerLines) {
        const i = l.indexOf(":");
        if (i > 0) answer.headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      answer.headersMs = call.elapsed();
      inBody = true;
      if (answer.headers["transfer-encoding"] === "chunked") chunked = new ChunkedBody();
      if (req.settleOnHeaders) call.settleSoonAfterHeaders();
      onBody(rest);
    });
    socket.on("connect", () => {
      socket.write(head);
      call.stopDelivery = deliver(
        req.body,
        req.delivery,
        (c) => {
          if (socket.writable) socket.write(c);
        },
        () => {},
        () => call.done,
      );
    });
  });
}

/** The first bytes of a body (up to `keptBodyBytes`) and how many there were in all. */
class KeptBytes {
  readonly kept: Buffer[] = [];
  total = 0;
  add(b: Buffer): void {
    const room = keptBodyBytes - Math.min(this.total, keptBodyBytes);
    if (room > 0 && b.byteLength > 0) this.kept.push(b.subarray(0, room));
    this.total += b.byteLength;
  }
}

/** A chunked body read as it arrives (a 16 MiB answer must not cost the client quadratic copies). */
class ChunkedBody extends KeptBytes {
  readonly trailers: Record<string, string> = {};
  private pending: Buffer = Buffer.alloc(0);
  private state: "size" | "data" | "data-end" | "trailers" | "done" = "size";
  private remaining = 0;

  /** Takes the next bytes; true once the last chunk and the trailers have arrived. */
  push(c: Buffer): boolean {
    this.pending = this.pending.byteLength ? Buffer.concat([this.pending, c]) : c;
    for (;;) {
      if (this.state === "done") return true;
      if (this.state === "data") {
        const take = Math.min(this.remaining, this.pending.byteLength);
        if (take === 0) return false;
        this.add(this.pending.subarray(0, take));
        this.pending = this.pending.subarray(take);
        this.remaining -= take;
        if (this.remaining === 0) this.state = "data-end";
        continue;
      }
      if (this.state === "data-end") {
        if (this.pending.byteLength < 2) return false;
        this.pending = this.pending.subarray(2);
        this.state = "size";
        continue;
      }
      const eol = this.pending.indexOf("\r\n");
      if (eol < 0) return false;
      const line = this.pending.subarray(0, eol).toString("latin1");
      this.pending = this.pending.subarray(eol + 2);
      if (this.state === "size") {
        const size = Number.parseInt(line.split(";")[0] ?? "", 16);
        // A broken chunk size ends what can be read of the body.
        if (Number.isNaN(size)) this.state = "done";
        else if (size === 0) this.state = "trailers";
        else {
          this.remaining = size;
          this.state = "data";
        }
        continue;
      }
      if (line === "") {
        this.state = "done";
        continue;
      }
      const colon = line.indexOf(":");
      if (colon > 0) this.trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
  }
}

/** A gRPC length-prefixed frame: flag byte, 4-byte big-endian length, payload. */
export function grpcFrame(payload: Uint8Array, flag = 0, declaredLength = payload.byteLength): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt8(flag & 0xff, 0);
  prefix.writeUInt32BE(declaredLength >>> 0, 1);
  return Buffer.concat([prefix, payload]);
}

/** The gRPC status of an answer: from the trailers, a trailers-only answer's headers, or a gRPC-Web trailer frame. */
export function grpcStatusOf(a: WireAnswer): string | undefined {
  const direct = a.trailers["grpc-status"] ?? a.headers["grpc-status"];
  if (direct !== undefined) return direct;
  // gRPC-Web: the trailers are the body's last frame, flag 0x80.
  let at = 0;
  while (at + 5 <= a.body.byteLength) {
    const flag = a.body.readUInt8(at);
    const length = a.body.readUInt32BE(at + 1);
    if (flag & 0x80) {
      const text = a.body.subarray(at + 5, at + 5 + length).toString("latin1");
      return /grpc-status:\s*(\d+)/i.exec(text)?.[1];
    }
    at += 5 + length;
  }
  return undefined;
}
