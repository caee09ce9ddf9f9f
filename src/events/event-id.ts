import type { JobStatus } from "../gen/jobhooks/v1/webhooks_pb.js";
import { statusName } from "./job-status.js";

/**
 * An event without an id gets `<job_id>.<status>[.<sequence>]`, so publishing the same status
 * change twice (a retry, a replayed NATS message) is recognised as the same event by JetStream's
 * de-duplication and by Svix's eventId. The `.` cannot occur in a publisher's own ids, so derived
 * ids never collide with them.
 */
export function deriveEventId(jobId: string, status: JobStatus, sequence: bigint | undefined): string {
  const base = `${jobId}.${statusName(status) ?? String(status)}`;
  return sequence === undefined ? base : `${base}.${sequence}`;
}

/**
 * JetStream de-duplicates on Nats-Msg-Id across the whole stream, while event ids are unique only
 * within a tenant: scope the header by tenant so two tenants' `job_1.completed` never collide.
 */
export function natsMsgId(tenantId: string, eventId: string): string {
  return `${tenantId}.${eventId}`;
}
