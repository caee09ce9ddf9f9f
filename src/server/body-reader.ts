import { Code, ConnectError } from "@connectrpc/connect";
import type { NodeRequest } from "./listener-parts.js";
import type { MemoryBudget } from "./memory-budget.js";
import { rateLimited } from "./rpc-errors.js";

export interface BodyLimits {
  /** Largest message accepted, in bytes. */
  maxBytes: number;
  /** Framing around the message that the body may carry besides (gRPC's 5-byte prefix). */
  envelopeBytes: number;
  /** The whole body must have arrived within this many milliseconds of the request. */
  deadlineMs: number;
  /** Shared by every request: bytes read are reserved here and kept until `release`. */
  budget: MemoryBudget;
  /** Names the call in errors ("PublishJobEvent"). */
  procedure: string;
}

export interface ReadBody {
  bytes: Buffer;
  /** Bytes of the budget this body holds; give them back when the answer is sent. */
  reserved: number;
}

/** How long a caller is told to wait when the shared budget is full: requests finish in well under this. */
const BUDGET_RETRY_MS = 1_000;

/**
 * Reads a request body within its limits: refused before reading when its declared length is over
 * the limit, stopped as soon as it grows over it or over the shared memory budget, and cut off at
 * its deadline however slowly it trickles. On failure the request is paused (never destroyed, so the
 * answer still reaches the caller) and what was reserved is given back.
 */
export function readBody(req: NodeRequest, limits: BodyLimits): Promise<ReadBody> {
  const declared = contentLength(req);
  const maxBody = limits.maxBytes + limits.envelopeBytes;
  if (declared !== undefined && declared > maxBody) {
    return Promise.reject(tooLarge(limits, declared));
  }
  let reserved = 0;
  if (declared !== undefined) {
    if (!limits.budget.tryReserve(declared)) return Promise.reject(overBudget());
    reserved = declared;
  }
  return new Promise<ReadBody>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(
      () =>
        fail(
          new ConnectError(
            `the request body did not arrive within ${limits.deadlineMs} ms`,
            Code.DeadlineExceeded,
          ),
        ),
      limits.deadlineMs,
    );
    const cleanup = () => {
      clearTimeout(timer);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    function fail(error: ConnectError): void {
      cleanup();
      req.pause();
      limits.budget.release(reserved);
      reserved = 0;
      reject(error);
    }
    function onData(chunk: Buffer): void {
      size += chunk.byteLength;
      if (size > maxBody) return fail(tooLarge(limits, size));
      if (size > reserved) {
        const more = size - reserved;
        if (!limits.budget.tryReserve(more)) return fail(overBudget());
        reserved += more;
      }
      chunks.push(chunk);
    }
    function onEnd(): void {
      cleanup();
      const bytes = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
      // A declared length larger than what came: keep only what is held.
      if (reserved > size) {
        limits.budget.release(reserved - size);
        reserved = size;
      }
      resolve({ bytes, reserved });
    }
    function onError(): void {
      fail(new ConnectError("the request body could not be read", Code.Canceled));
    }
    function onClose(): void {
      if (!req.complete) fail(new ConnectError("the client closed the request", Code.Canceled));
    }
    req.on("data", onData);
    req.once("end", onEnd);
    req.once("error", onError);
    req.once("close", onClose);
  });
}

function contentLength(req: NodeRequest): number | undefined {
  const v = req.headers["content-length"];
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function tooLarge(limits: BodyLimits, bytes: number): ConnectError {
  return new ConnectError(
    `request of ${bytes} bytes or more is over the ${limits.maxBytes}-byte limit of ${limits.procedure}`,
    Code.ResourceExhausted,
  );
}

export function overBudget(): ConnectError {
  return rateLimited(
    "the server is reading as many request bodies as its memory allows; retry shortly",
    BUDGET_RETRY_MS,
  );
}
