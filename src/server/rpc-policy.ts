import type { DescMethod } from "@bufbuild/protobuf";
import { WebhookService } from "../gen/jobhooks/v1/webhooks_pb.js";

/**
 * Who may call each RPC and how much of a body it may send: one table, read from the headers
 * before any byte of a body is, by every protocol's path (src/server/rpc-edge.ts).
 */

/**
 * - `open`: anyone (health, reflection); bodies are tiny and such streams are capped per connection
 *   and per address, since nobody is known.
 * - `any-credential`: a customer API key (its own tenant) or a service token.
 * - `service`: service tokens only; a customer key is refused from the headers, before its body.
 */
export type Access = "open" | "any-credential" | "service";

export interface RpcPolicy {
  access: Access;
  /** Largest request body (each message of a stream), in bytes. */
  readMaxBytes: number;
}

/** Health and reflection requests are a service name or a symbol: far below this. */
export const OPEN_READ_MAX_BYTES = 1024;

/** A PublishJobEvents batch in all: 1,000 events, 16 MiB. */
export const BATCH_READ_MAX_BYTES = 16 * 1024 * 1024;

/**
 * One event: its stored JSON is limited to JOBHOOKS_MAX_PAYLOAD_BYTES (≤ 1 MiB) after decoding, and
 * no encoding of an event that fits is larger than twice that (JSON escapes, whitespace).
 */
export const EVENT_READ_MAX_BYTES = 2 * 1024 * 1024;

/** GetPortalLink, ListJobDeliveries, RevokePortalSessions, keys and tenants: identifiers and a few options. */
export const SMALL_READ_MAX_BYTES = 64 * 1024;

const m = WebhookService.method;
const webhookPolicies: ReadonlyMap<DescMethod, RpcPolicy> = new Map<DescMethod, RpcPolicy>([
  [m.publishJobEvent, { access: "service", readMaxBytes: EVENT_READ_MAX_BYTES }],
  [m.publishJobEvents, { access: "service", readMaxBytes: BATCH_READ_MAX_BYTES }],
  [m.getPortalLink, { access: "any-credential", readMaxBytes: SMALL_READ_MAX_BYTES }],
  [m.listJobDeliveries, { access: "any-credential", readMaxBytes: SMALL_READ_MAX_BYTES }],
  [m.revokePortalSessions, { access: "service", readMaxBytes: SMALL_READ_MAX_BYTES }],
  // A tenant's life: a leaked customer key must neither mint keys nor delete its tenant.
  [m.createApiKey, { access: "service", readMaxBytes: SMALL_READ_MAX_BYTES }],
  [m.listApiKeys, { access: "service", readMaxBytes: SMALL_READ_MAX_BYTES }],
  [m.revokeApiKey, { access: "service", readMaxBytes: SMALL_READ_MAX_BYTES }],
  [m.getTenant, { access: "service", readMaxBytes: SMALL_READ_MAX_BYTES }],
  [m.deleteTenant, { access: "service", readMaxBytes: SMALL_READ_MAX_BYTES }],
]);

const openPolicy: RpcPolicy = { access: "open", readMaxBytes: OPEN_READ_MAX_BYTES };

/**
 * The policy of a method. Every WebhookService method has an entry (a test checks that a new RPC
 * cannot be added without one); anything else served on the port is open.
 */
export function policyOf(method: DescMethod): RpcPolicy {
  if (method.parent.typeName === WebhookService.typeName) {
    const policy = webhookPolicies.get(method);
    // A method without a row is a programming error: refuse it to everyone rather than open it.
    return policy ?? { access: "service", readMaxBytes: 0 };
  }
  return openPolicy;
}

/** The largest body any method accepts: what the adapter may ever read for one request. */
export const LARGEST_READ_MAX_BYTES = BATCH_READ_MAX_BYTES;
