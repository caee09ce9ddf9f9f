import type { JobEvent } from "../gen/jobhooks/v1/webhooks_pb.js";
import { statusName } from "./job-status.js";

/** `<prefix>.<tenant_id>.<job_id>.<status>`: the subject an event is stored under. */
export function subjectFor(prefix: string, event: Pick<JobEvent, "tenantId" | "jobId" | "status">): string {
  return `${prefix}.${event.tenantId}.${event.jobId}.${statusName(event.status)}`;
}

export interface SubjectTokens {
  tenantId: string;
  jobId: string;
  status: string;
}

/** Splits a subject under `prefix`; undefined when it is not `<prefix>.<tenant>.<job>.<status>`. */
export function parseSubject(prefix: string, subject: string): SubjectTokens | undefined {
  if (!subject.startsWith(`${prefix}.`)) return undefined;
  const rest = subject.slice(prefix.length + 1).split(".");
  if (rest.length !== 3) return undefined;
  const [tenantId, jobId, status] = rest as [string, string, string];
  return { tenantId, jobId, status };
}
