import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type JobEvent, JobStatus } from "../gen/jobhooks/v1/webhooks_pb.js";
import { deriveEventId } from "./event-id.js";
import { STATUS_ENUM_NAMES, STATUS_TOKENS, statusName } from "./job-status.js";

/**
 * The one validator both ingress paths share (PublishJobEvent and messages read from NATS), so a
 * rule can never hold on one path and not the other. Pure: values in, values out.
 */

export interface FieldViolation {
  /** Path of the field inside JobEvent, e.g. `error.code`; callers prefix their own envelope. */
  field: string;
  description: string;
}

export type ValidationResult =
  | { kind: "valid"; event: JobEvent }
  | { kind: "invalid"; violations: FieldViolation[] };

/** Identifiers become NATS subject tokens and Svix uids: `.` separates tokens, `*`/`>` are wildcards. */
export const IDENTIFIER = /^[A-Za-z0-9_-]{1,128}$/;
const IDENTIFIER_RULE = "must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-'";

export const LIMITS = {
  metadataEntries: 64,
  metadataKeyChars: 128,
  metadataValueChars: 1024,
  errorCodeChars: 128,
  errorMessageChars: 4096,
} as const;

/** The valid statuses as a caller types them: the enum names (JSON, gRPC) and the subject tokens. */
const STATUS_CHOICES = `one of ${STATUS_ENUM_NAMES} (1-5; NATS subjects use ${STATUS_TOKENS})`;

// Timestamp's documented range: 0001-01-01 to 9999-12-31.
const MIN_SECONDS = -62_135_596_800n;
const MAX_SECONDS = 253_402_300_799n;

export interface ValidateOptions {
  /** Time of acceptance, for a missing occurred_at. */
  now?: () => number;
}

/**
 * Checks an event and returns it normalized: event_id derived when empty, occurred_at defaulted.
 * Every violation is reported, not only the first, so a publisher fixes its request in one go.
 */
export function validateJobEvent(input: JobEvent, opts: ValidateOptions = {}): ValidationResult {
  const violations: FieldViolation[] = [];
  const bad = (field: string, description: string) => violations.push({ field, description });

  checkIdentifier(input.tenantId, "tenant_id", bad);
  if (input.tenantId.startsWith("app_")) bad("tenant_id", "must not start with 'app_' (Svix reserves it)");
  checkIdentifier(input.jobId, "job_id", bad);
  // A derived id (`<job_id>.<status>[.<sequence>]`) comes back this way when the relay re-reads a
  // stored event; it is the one place a `.` is allowed.
  const derived =
    input.eventId !== "" && input.eventId === deriveEventId(input.jobId, input.status, input.sequence);
  if (input.eventId !== "" && !derived) {
    checkIdentifier(input.eventId, "event_id", bad);
    if (input.eventId.startsWith("auto_") || input.eventId.startsWith("msg_")) {
      bad("event_id", "must not start with 'auto_' or 'msg_' (Svix reserves them)");
    }
  }

  const name = statusName(input.status);
  if (input.status === JobStatus.UNSPECIFIED) {
    bad("status", `is required: ${STATUS_CHOICES}`);
  } else if (!name) {
    bad("status", `unknown status ${input.status}: ${STATUS_CHOICES}`);
  }

  if (input.status === JobStatus.FAILED) {
    if (!input.error) bad("error", "is required when status is failed");
  } else if (input.error) {
    bad("error", "is allowed only when status is failed");
  }
  if (input.error) {
    if (input.error.code === "") bad("error.code", "is required");
    else if (overLimit(input.error.code, LIMITS.errorCodeChars)) {
      bad("error.code", `must be at most ${LIMITS.errorCodeChars} characters`);
    }
    if (overLimit(input.error.message, LIMITS.errorMessageChars)) {
      bad("error.message", `must be at most ${LIMITS.errorMessageChars} characters`);
    }
  }
  if (input.result && input.status !== JobStatus.COMPLETED) {
    bad("result", "is allowed only when status is completed");
  }

  if (input.occurredAt) {
    const { seconds, nanos } = input.occurredAt;
    if (seconds < MIN_SECONDS || seconds > MAX_SECONDS || nanos < 0 || nanos > 999_999_999) {
      bad("occurred_at", "must be a valid timestamp between 0001-01-01 and 9999-12-31");
    }
  }

  const keys = Object.keys(input.metadata);
  if (keys.length > LIMITS.metadataEntries) {
    bad("metadata", `must have at most ${LIMITS.metadataEntries} entries (has ${keys.length})`);
  }
  for (const key of keys) {
    if (key === "" || overLimit(key, LIMITS.metadataKeyChars)) {
      bad(`metadata["${truncate(key)}"]`, `key must be 1-${LIMITS.metadataKeyChars} characters`);
    }
    if (overLimit(input.metadata[key] ?? "", LIMITS.metadataValueChars)) {
      bad(`metadata["${truncate(key)}"]`, `value must be at most ${LIMITS.metadataValueChars} characters`);
    }
  }

  if (violations.length > 0) return { kind: "invalid", violations };

  const now = opts.now ?? Date.now;
  // A shallow copy: messages are plain objects (protobuf-es v2), so the spread is a JobEvent, and
  // the input is left as it was without the cost of create() walking the schema.
  const event: JobEvent = {
    ...input,
    eventId: input.eventId || deriveEventId(input.jobId, input.status, input.sequence),
    occurredAt: input.occurredAt ?? timestampFromMs(now()),
  };
  return { kind: "valid", event };
}

/** Why a tenant id is unacceptable (the JobEvent.tenant_id rules), or undefined when it is fine. */
export function tenantIdProblem(value: string): string | undefined {
  if (value === "") return "is required";
  if (!IDENTIFIER.test(value)) return IDENTIFIER_RULE;
  if (value.startsWith("app_")) return "must not start with 'app_' (Svix reserves it)";
  return undefined;
}

function checkIdentifier(
  value: string,
  field: string,
  bad: (field: string, description: string) => void,
): void {
  if (value === "") bad(field, "is required");
  else if (!IDENTIFIER.test(value)) bad(field, IDENTIFIER_RULE);
}

/**
 * Whether `s` has more than `max` code points (what the limits count). A string never has more code
 * points than UTF-16 units, so only one longer than the limit is split into code points.
 */
function overLimit(s: string, max: number): boolean {
  return s.length > max && [...s].length > max;
}

function truncate(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
