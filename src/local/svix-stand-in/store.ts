/**
 * The stand-in's in-memory state. Messages, attempts and idempotency entries are bounded: the oldest
 * go first, because the stand-in runs for hours in the local stack and under benchmarks that create
 * millions of messages. Maps keep insertion order, so "oldest" is simply the first key.
 */

export interface AppRecord {
  id: string;
  uid: string | null;
  name: string;
  throttleRate: number | null;
  metadata: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

/** A signing secret; during a rotation's grace period the previous one stays live until `expiresAt`. */
export interface LiveSecret {
  key: string;
  expiresAt: number | null;
}

export interface EndpointRecord {
  id: string;
  appId: string;
  uid: string | null;
  url: string;
  description: string;
  disabled: boolean;
  eventTypes: string[] | null;
  channels: string[] | null;
  metadata: Record<string, string>;
  headers: Record<string, string>;
  throttleRate: number | null;
  /** Current secret first. */
  secrets: LiveSecret[];
  createdAt: string;
  updatedAt: string;
}

export interface EventTypeRecord {
  name: string;
  description: string;
  archived: boolean;
  deprecated: boolean;
  schemas: Record<string, unknown> | null;
  groupName: string | null;
  featureFlags: string[] | null;
  createdAt: string;
  updatedAt: string;
}

export interface MessageRecord {
  id: string;
  appId: string;
  appUid: string | null;
  eventType: string;
  eventId: string | null;
  payload: Record<string, unknown>;
  /** The exact bytes delivered and signed. */
  body: string;
  channels: string[] | null;
  tags: string[] | null;
  timestamp: string;
  /** Set for send-example messages, which go to one endpoint only. */
  onlyEndpointId: string | null;
}

/** 0 Success, 1 Pending, 2 Fail, 3 Sending, 4 Canceled — Svix's `MessageStatus`. */
export type AttemptStatus = 0 | 1 | 2 | 3 | 4;

export interface AttemptRecord {
  id: string;
  appId: string;
  msgId: string;
  endpointId: string;
  url: string;
  response: string;
  /** 0 when no HTTP response arrived (timeout, refused, reset), as in Svix's attempt log. */
  responseStatusCode: number;
  responseDurationMs: number;
  status: AttemptStatus;
  /** 0 Scheduled (normal delivery and retries), 1 Manual (send-example, resend). */
  triggerType: 0 | 1;
  timestamp: string;
  /** The headers this attempt sent (custom ones included; the portal masks their values). */
  requestHeaders?: Record<string, string>;
  /** After a failure: when the next scheduled attempt runs, or null when none will (exhausted). */
  nextAttempt?: string | null;
}

/** One message's delivery to one endpoint: what `list-attempted-destinations` shows. */
export interface DestinationRecord {
  status: AttemptStatus;
  /** ISO time of the next scheduled try, while pending. */
  nextAttempt: string | null;
  /** Failed attempts since the last success: a `message.attempt.failing` goes out at the fourth. */
  failures: number;
  /** A failing/exhausted operational webhook was sent, so a later success sends `recovered`. */
  failureReported: boolean;
}

export interface StoredResponse {
  status: number;
  body: string;
  expiresAt: number;
}

export interface StoreLimits {
  /** Applications held at most; creating one more is refused (400 limit_reached). */
  maxApps: number;
  /** Endpoints per application at most; likewise refused beyond. */
  maxEndpointsPerApp: number;
  maxMessages: number;
  maxAttempts: number;
  maxIdempotencyKeys: number;
}

/**
 * Insertion order for eviction. Deleting a Map's first key and asking for the next first key walks
 * over the deleted slots until V8 rehashes, which made eviction O(n) per message under load; a plain
 * queue of keys keeps it O(1).
 */
class EvictionQueue {
  private keys: string[] = [];
  private head = 0;

  push(key: string): void {
    this.keys.push(key);
  }

  shift(): string | undefined {
    const key = this.keys[this.head++];
    if (this.head > 65_536 && this.head * 2 > this.keys.length) {
      this.keys = this.keys.slice(this.head);
      this.head = 0;
    }
    return key;
  }
}

export class StandInStore {
  readonly apps = new Map<string, AppRecord>();
  private readonly appIdByUid = new Map<string, string>();
  /** appId → endpointId → endpoint. */
  readonly endpoints = new Map<string, Map<string, EndpointRecord>>();
  readonly eventTypes = new Map<string, EventTypeRecord>();
  readonly messages = new Map<string, MessageRecord>();
  /** `${appId} ${eventId}` → msgId: the 409 check on repeated event ids. */
  private readonly msgIdByEventId = new Map<string, string>();
  readonly attempts = new Map<string, AttemptRecord>();
  /** msgId → endpointId → delivery state; forgotten with the message. */
  readonly destinations = new Map<string, Map<string, DestinationRecord>>();
  private readonly idempotency = new Map<string, StoredResponse>();
  private readonly messageOrder = new EvictionQueue();
  private readonly attemptOrder = new EvictionQueue();
  private readonly idempotencyOrder = new EvictionQueue();
  messagesEvicted = 0;
  attemptsEvicted = 0;

  constructor(readonly limits: StoreLimits) {}

  findApp(idOrUid: string): AppRecord | undefined {
    return this.apps.get(idOrUid) ?? this.apps.get(this.appIdByUid.get(idOrUid) ?? "");
  }

  putApp(app: AppRecord): void {
    this.apps.set(app.id, app);
    if (app.uid !== null) this.appIdByUid.set(app.uid, app.id);
  }

  changeAppUid(app: AppRecord, uid: string | null): void {
    if (app.uid !== null) this.appIdByUid.delete(app.uid);
    app.uid = uid;
    if (uid !== null) this.appIdByUid.set(uid, app.id);
  }

  /**
   * Svix's application delete (204): the application goes with its endpoints (and their secrets),
   * its messages and their attempts; nothing of it can be read afterwards (404), and its uid is
   * free for a new application. Scheduled deliveries find no endpoint and stop.
   */
  deleteApp(app: AppRecord): void {
    this.apps.delete(app.id);
    if (app.uid !== null) this.appIdByUid.delete(app.uid);
    this.endpoints.delete(app.id);
    for (const msg of this.messages.values()) {
      if (msg.appId !== app.id) continue;
      this.messages.delete(msg.id);
      this.destinations.delete(msg.id);
      if (msg.eventId !== null) this.msgIdByEventId.delete(`${msg.appId} ${msg.eventId}`);
    }
    for (const attempt of this.attempts.values()) {
      if (attempt.appId === app.id) this.attempts.delete(attempt.id);
    }
  }

  endpointsOf(appId: string): Map<string, EndpointRecord> {
    let endpoints = this.endpoints.get(appId);
    if (!endpoints) {
      endpoints = new Map();
      this.endpoints.set(appId, endpoints);
    }
    return endpoints;
  }

  findEndpoint(appId: string, idOrUid: string): EndpointRecord | undefined {
    const endpoints = this.endpoints.get(appId);
    if (!endpoints) return undefined;
    const byId = endpoints.get(idOrUid);
    if (byId) return byId;
    for (const endpoint of endpoints.values()) if (endpoint.uid === idOrUid) return endpoint;
    return undefined;
  }

  messageByEventId(appId: string, eventId: string): MessageRecord | undefined {
    const msgId = this.msgIdByEventId.get(`${appId} ${eventId}`);
    return msgId === undefined ? undefined : this.messages.get(msgId);
  }

  /** A message id (`msg_…`) or the eventId it was created with, within one app. */
  findMessage(appId: string, idOrEventId: string): MessageRecord | undefined {
    const byId = this.messages.get(idOrEventId);
    if (byId && byId.appId === appId) return byId;
    return this.messageByEventId(appId, idOrEventId);
  }

  addMessage(msg: MessageRecord): void {
    this.messages.set(msg.id, msg);
    this.messageOrder.push(msg.id);
    if (msg.eventId !== null) this.msgIdByEventId.set(`${msg.appId} ${msg.eventId}`, msg.id);
    while (this.messages.size > this.limits.maxMessages) {
      const oldest = this.messages.get(this.messageOrder.shift() as string);
      if (!oldest) continue;
      this.messages.delete(oldest.id);
      this.destinations.delete(oldest.id);
      const key = `${oldest.appId} ${oldest.eventId}`;
      if (oldest.eventId !== null && this.msgIdByEventId.get(key) === oldest.id)
        this.msgIdByEventId.delete(key);
      this.messagesEvicted++;
    }
  }

  destination(msgId: string, endpointId: string): DestinationRecord {
    let byEndpoint = this.destinations.get(msgId);
    if (!byEndpoint) {
      byEndpoint = new Map();
      this.destinations.set(msgId, byEndpoint);
    }
    let d = byEndpoint.get(endpointId);
    if (!d) {
      d = { status: 1, nextAttempt: null, failures: 0, failureReported: false };
      byEndpoint.set(endpointId, d);
    }
    return d;
  }

  addAttempt(attempt: AttemptRecord): void {
    this.attempts.set(attempt.id, attempt);
    this.attemptOrder.push(attempt.id);
    while (this.attempts.size > this.limits.maxAttempts) {
      if (this.attempts.delete(this.attemptOrder.shift() as string)) this.attemptsEvicted++;
    }
  }

  /** The first 2xx answered for this key, while it is fresh. */
  storedResponse(key: string, now: number): StoredResponse | undefined {
    const stored = this.idempotency.get(key);
    // An expired entry stays until evicted or overwritten, so the eviction queue never holds a key twice.
    return stored && stored.expiresAt > now ? stored : undefined;
  }

  storeResponse(key: string, response: StoredResponse): void {
    if (!this.idempotency.has(key)) this.idempotencyOrder.push(key);
    this.idempotency.set(key, response);
    while (this.idempotency.size > this.limits.maxIdempotencyKeys) {
      this.idempotency.delete(this.idempotencyOrder.shift() as string);
    }
  }
}
