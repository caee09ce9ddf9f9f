import { JobStatus } from "../gen/jobhooks/v1/webhooks_pb.js";

/**
 * The five statuses, their lowercase names (NATS subject token, derived event ids, payload `status`)
 * and their webhook event types. One table, so the subject, the validator and the Svix event types
 * can never disagree.
 */
export const JOB_STATUSES = [
  {
    status: JobStatus.CREATED,
    name: "created",
    eventType: "job.created",
    description: "New async job created",
  },
  {
    status: JobStatus.PROCESSING,
    name: "processing",
    eventType: "job.processing",
    description: "Job started processing",
  },
  {
    status: JobStatus.COMPLETED,
    name: "completed",
    eventType: "job.completed",
    description: "Job completed successfully",
  },
  { status: JobStatus.FAILED, name: "failed", eventType: "job.failed", description: "Job failed with error" },
  {
    status: JobStatus.CANCELLED,
    name: "cancelled",
    eventType: "job.cancelled",
    description: "Job was cancelled",
  },
] as const;

/** The subject tokens, in enum order: `created, processing, completed, failed, cancelled`. */
export const STATUS_TOKENS: string = JOB_STATUSES.map((s) => s.name).join(", ");

/** The enum names a JSON or gRPC caller sends: `JOB_STATUS_CREATED, …`. */
export const STATUS_ENUM_NAMES: string = JOB_STATUSES.map((s) => `JOB_STATUS_${s.name.toUpperCase()}`).join(
  ", ",
);

export type JobStatusName = (typeof JOB_STATUSES)[number]["name"];
export type JobEventType = (typeof JOB_STATUSES)[number]["eventType"];

const byStatus = new Map<number, (typeof JOB_STATUSES)[number]>(JOB_STATUSES.map((s) => [s.status, s]));
const byName = new Map<string, (typeof JOB_STATUSES)[number]>(JOB_STATUSES.map((s) => [s.name, s]));

export function statusName(status: JobStatus): JobStatusName | undefined {
  return byStatus.get(status)?.name;
}

export function eventTypeOf(status: JobStatus): JobEventType | undefined {
  return byStatus.get(status)?.eventType;
}

/** Accepts the subject token (`completed`) and the enum name (`JOB_STATUS_COMPLETED`). */
export function statusFromName(name: string): JobStatus | undefined {
  const lower = name.toLowerCase();
  return byName.get(lower.startsWith("job_status_") ? lower.slice("job_status_".length) : lower)?.status;
}
