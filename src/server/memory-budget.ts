/**
 * Bytes held for requests being read and decoded, across every connection and protocol. A request
 * reserves before it reads and releases when its answer is sent; a reservation that does not fit is
 * refused (the caller gets RESOURCE_EXHAUSTED with RetryInfo), so the documented per-call limits
 * can never together outgrow the heap.
 */
export interface MemoryBudget {
  /** Takes `bytes` if they fit; false (nothing taken) when they do not. */
  tryReserve(bytes: number): boolean;
  release(bytes: number): void;
  /** Bytes reserved now. */
  readonly inUse: number;
  readonly limit: number;
}

export function createMemoryBudget(limitBytes: number): MemoryBudget {
  let inUse = 0;
  return {
    tryReserve(bytes) {
      if (bytes <= 0) return true;
      if (inUse + bytes > limitBytes) return false;
      inUse += bytes;
      return true;
    },
    release(bytes) {
      inUse = Math.max(0, inUse - Math.max(0, bytes));
    },
    get inUse() {
      return inUse;
    },
    limit: limitBytes,
  };
}

/**
 * What decoding a body of `bytes` may cost on the heap, measured on the worst shapes a caller can
 * send (docs/operations.md, "Limits on the API port"): protobuf of tiny map entries grows about
 * 10x, JSON of them about 15x, while events with a large `result` grow less than 2x. JSON is
 * estimated from its separators, which is both cheap and close for any shape; binary at its worst.
 */
export function decodeCostOf(body: Uint8Array, json: boolean): number {
  if (!json) return body.byteLength * BINARY_DECODE_FACTOR;
  let separators = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    // , : [ { — each starts a value or a member, i.e. an object on the heap.
    if (c === 0x2c || c === 0x3a || c === 0x5b || c === 0x7b) separators++;
  }
  return body.byteLength * 2 + separators * JSON_BYTES_PER_VALUE;
}

/** Heap bytes a decoded protobuf may take per wire byte, at worst (tiny map entries). */
export const BINARY_DECODE_FACTOR = 6;
/** Heap bytes per JSON value (parse tree plus the message built from it). */
export const JSON_BYTES_PER_VALUE = 96;
