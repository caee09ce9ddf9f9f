/**
 * Every NATS header name and content type jobhooks reads or writes, in one table low in the house
 * (connect-es keeps its wire names in `headers.ts` the same way), so a reader and a writer in two
 * folders can never spell one name two ways. Subject shapes live in `subjects.ts`; stream names in
 * `nats/provision.ts`. NATS header names are case-sensitive on the wire: write them as spelt here.
 */

export const HEADER = {
  /** The body's format: JSON (the default when absent) or protobuf. */
  contentType: "Content-Type",
  /** JetStream de-duplicates publishes on it within the stream's duplicate window. */
  natsMsgId: "Nats-Msg-Id",
  /** An operational webhook's Svix id, for core-NATS listeners to de-duplicate. */
  svixId: "Svix-Id",
  /** The `revision` an event stored again (a replayed dead letter) was first given. */
  revision: "Jobhooks-Revision",
} as const;

/** Headers a dead letter carries besides the original ones. */
export const DEAD_HEADERS = {
  reason: "Jobhooks-Dead-Reason",
  detail: "Jobhooks-Dead-Detail",
  subject: "Jobhooks-Original-Subject",
  sequence: "Jobhooks-Original-Sequence",
  at: "Jobhooks-Dead-At",
} as const;

export const CONTENT_TYPE = {
  json: "application/json",
  protobuf: "application/protobuf",
  /** What older protobuf publishers send; read as `protobuf`. */
  protobufLegacy: "application/x-protobuf",
} as const;

/**
 * Whether a header a publisher set must not travel onward (into a dead letter, or a replay):
 * `Nats-*` are JetStream publish controls (`Nats-Expected-Stream`, `Nats-TTL`, …) that JetStream
 * would apply to our publish and refuse it for, and `Jobhooks-*` are ours to set. Case-insensitive:
 * a NATS client sends a header spelt as its caller wrote it, and a `nats-ttl` or `jobhooks-dead-reason`
 * copied onward would be one more way to misread a dead letter, for no gain.
 */
export function isPublisherControlHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower.startsWith("nats-") || lower.startsWith("jobhooks-");
}
