/**
 * What the stand-in answered, for tests to check: a bounded log of recent requests (the contract
 * tests validate each response against openapi.json) and running counters for `/_stand-in/stats`.
 */

export interface RequestLogEntry {
  at: string;
  method: string;
  path: string;
  /** The spec's operation id, or null for paths outside the implemented API. */
  route: string | null;
  status: number;
  requestBody: string | undefined;
  /** As sent; empty for 204 and for connection resets. */
  responseBody: string;
  /** Set when a body was longer than LOGGED_BODY_CHARS and is cut (then it is not valid JSON). */
  truncated?: true;
  /** The request's Idempotency-Key header, when it had one. */
  idempotencyKey?: string;
  /** Set when an injected fault produced this answer instead of the API. */
  fault?: string;
}

/**
 * Bodies kept per logged request. The log holds thousands of entries and a body may be 1 MiB:
 * whole bodies would let any client fill the stand-in's memory through its own request log.
 */
export const LOGGED_BODY_CHARS = 8 * 1024;

/** A body as the log keeps it, and whether it was cut. */
export function loggedBody(text: string): { text: string; truncated: boolean } {
  return text.length <= LOGGED_BODY_CHARS
    ? { text, truncated: false }
    : { text: `${text.slice(0, LOGGED_BODY_CHARS)}…`, truncated: true };
}

export interface RequestCounters {
  messagesCreated: number;
  duplicatesRefused: number;
  idempotentReplays: number;
  faultsInjected: number;
}

export class RequestLog {
  readonly counters: RequestCounters = {
    messagesCreated: 0,
    duplicatesRefused: 0,
    idempotentReplays: 0,
    faultsInjected: 0,
  };
  private readonly byRoute = new Map<string, Map<number, number>>();
  private readonly ring: RequestLogEntry[] = [];
  private next = 0;

  constructor(private readonly capacity: number) {}

  record(entry: RequestLogEntry): void {
    const key = entry.route ?? "unknown";
    let statuses = this.byRoute.get(key);
    if (!statuses) {
      statuses = new Map();
      this.byRoute.set(key, statuses);
    }
    statuses.set(entry.status, (statuses.get(entry.status) ?? 0) + 1);
    if (this.capacity === 0) return;
    if (this.ring.length < this.capacity) this.ring.push(entry);
    else this.ring[this.next] = entry;
    this.next = (this.next + 1) % this.capacity;
  }

  /** Oldest first. */
  entries(): RequestLogEntry[] {
    if (this.ring.length < this.capacity) return [...this.ring];
    return [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }

  clear(): void {
    this.ring.length = 0;
    this.next = 0;
  }

  /** `{ "v1.message.create": { "202": 10, "409": 1 } }` */
  requestsByRoute(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [route, statuses] of this.byRoute) out[route] = Object.fromEntries(statuses);
    return out;
  }
}
