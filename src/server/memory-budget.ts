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
