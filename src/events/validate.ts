import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { type JobEvent, JobStatus } from "../gen/jobhooks/v1/webhooks_pb.js";
import { deriveEventId } from "./event-id.js";
import {
  IDENTIFIER,
  identifierProblem,
  LIMITS,
  reservedPrefixProblem,
  STATUS_BOUND_FIELDS,
  tenantIdProblem,
} from "./field-rules.js";
import { STATUS_ENUM_NAMES, STATUS_TOKENS, statusName } from "./job-status.js";

// The rules' one table is field-rules.ts; these stay importable from here for existing callers.
export { IDENTIFIER, LIMITS, tenantIdProblem };

export interface FieldViolation {
  /** Path of the field inside JobEvent, e.g. `error.code`; callers prefix their own envelope. */
  field: string;
  description: string;
}

export type ValidationResult =
  | { kind: "valid"; event: JobEvent }
  | { kind: "invalid"; violations: FieldViolation[] };

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
 * The one validator both ingress paths share (PublishJobEvent and messages read from NATS), so a
 * rule can never hold on one path and not the other. Pure: values in, values out.
 */
export function validateJobEvent(input: JobEvent, opts: ValidateOptions = {}): ValidationResult {
  const violations: FieldViolation[] = [];
  const bad = (field: string, description: string) => violations.push({ field, description });

  check("tenant_id", identifierProblem(input.tenantId), bad);
  check("tenant_id", reservedPrefixProblem("tenant_id", input.tenantId), bad);
  check("job_id", identifierProblem(input.jobId), bad);
  // A derived id (`<job_id>.<status>[.<sequence>]`) comes back this way when the relay re-reads a
  // stored event; it is the one place a `.` is allowed.
  const derived =
    input.eventId !== "" && input.eventId === deriveEventId(input.jobId, input.status, input.sequence);
  if (input.eventId !== "" && !derived) {
    check("event_id", identifierProblem(input.eventId), bad);
    check("event_id", reservedPrefixProblem("event_id", input.eventId), bad);
  }

  const name = statusName(input.status);
  if (input.status === JobStatus.UNSPECIFIED) {
    bad("status", `is required: ${STATUS_CHOICES}`);
  } else if (!name) {
    bad("status", `unknown status ${input.status}: ${STATUS_CHOICES}`);
  }

  for (const rule of STATUS_BOUND_FIELDS) {
    const present = input[rule.field] !== undefined;
    if (input.status === rule.status) {
      if (rule.required && !present) bad(rule.field, `is required when status is ${rule.statusWord}`);
    } else if (present) {
      bad(rule.field, `is allowed only when status is ${rule.statusWord}`);
    }
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

function check(
  field: string,
  problem: string | undefined,
  bad: (field: string, description: string) => void,
) {
  if (problem !== undefined) bad(field, problem);
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
