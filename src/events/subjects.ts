import type { JobEvent } from "../gen/jobhooks/v1/webhooks_pb.js";
import { statusName } from "./job-status.js";

/**
 * Every NATS subject and filter jobhooks builds or reads, in one place (the wire contract: README "Calling it").
 * Pure: strings in, strings out. `prefix` is JOBHOOKS_SUBJECT_PREFIX (`jobs` by default); tenant
 * and job ids are single tokens (the validator's identifier pattern forbids `.`, `*` and `>`).
 *
 * - `<prefix>.<tenant>.<job>.<status>`: an event, as published and as stored in JOBS.
 * - `<prefix>_dlq.<reason>`: a dead letter in JOBS_DLQ.
 * - `jobhooks.ops.<tenant>.<type>`: a Svix operational webhook, core NATS only.
 */

/** The tokens of an event's subject. */
export interface SubjectTokens {
  tenantId: string;
  jobId: string;
  status: string;
}

/** Tokens of a subject as the JOBS stream stores it (the published subject). */
export type StoredSubject = SubjectTokens;

/** `<prefix>.<tenant>.<job>.<status>` from its tokens. */
export function eventSubject(prefix: string, tokens: SubjectTokens): string {
  return `${prefix}.${tokens.tenantId}.${tokens.jobId}.${tokens.status}`;
}

/** The subject an event is published (and stored) under. */
export function subjectFor(prefix: string, event: Pick<JobEvent, "tenantId" | "jobId" | "status">): string {
  return eventSubject(prefix, {
    tenantId: event.tenantId,
    jobId: event.jobId,
    status: String(statusName(event.status)),
  });
}

/** `<prefix>.<tenant>.<job>.<status>` (the published subject, stored as is); undefined for anything else. */
export function parseStoredSubject(prefix: string, subject: string): StoredSubject | undefined {
  if (!subject.startsWith(`${prefix}.`)) return undefined;
  const parts = subject.slice(prefix.length + 1).split(".");
  if (parts.length !== 3) return undefined;
  const [tenantId, jobId, status] = parts as [string, string, string];
  return { tenantId, jobId, status };
}

/** What the JOBS stream captures: every event subject. */
export function jobsStreamSubject(prefix: string): string {
  return `${prefix}.*.*.*`;
}

/** Every stored event of one job (`<prefix>.<tenant>.<job>.*`). */
export function jobFilter(prefix: string, tenantId: string, jobId: string): string {
  return `${prefix}.${tenantId}.${jobId}.*`;
}

/** Every event of one tenant, as stored (`<prefix>.<tenant>.*.*`). */
export function tenantFilter(prefix: string, tenantId: string): string {
  return `${prefix}.${tenantId}.*.*`;
}

/** The tenant of `<prefix>.<tenant>.<job>.<status>`, without building the other tokens (it runs
 * for every publish the relay's look-ahead sees); undefined for any other shape. */
export function tenantOfEventSubject(prefix: string, subject: string): string | undefined {
  const start = prefix.length + 1;
  if (subject.length <= start || !subject.startsWith(prefix) || subject[prefix.length] !== ".")
    return undefined;
  const end = subject.indexOf(".", start);
  return end > start ? subject.slice(start, end) : undefined;
}

/** `<prefix>_dlq.<reason>`: where a dead letter for `reason` is published. */
export function dlqSubject(prefix: string, reason: string): string {
  return `${prefix}_dlq.${reason}`;
}

/** What the JOBS_DLQ stream captures: every dead letter. */
export function dlqStreamSubject(prefix: string): string {
  return `${prefix}_dlq.>`;
}

export const OPS_SUBJECT_PREFIX = "jobhooks.ops";

/** `jobhooks.ops.<tenant>.<type>`: dots in the type (and anything else not a token char) become `_`. */
export function opsSubject(tenant: string, type: string): string {
  const token = (s: string) => s.replace(/[^A-Za-z0-9_-]/g, "_") || "_";
  return `${OPS_SUBJECT_PREFIX}.${token(tenant)}.${token(type)}`;
}
