import { JobStatus } from "../gen/jobhooks/v1/webhooks_pb.js";

/**
 * The field rules of the public contract, declared once. `validate.ts` and the server's request
 * checks enforce them from here; `webhooks.proto` states them in its comments, and
 * `test/events/field-rules.test.ts` checks every sentence `PROTO_DOCUMENTED` derives from this table
 * against those comments, so a limit changed here and not there (or the reverse) fails a test.
 *
 * Why not protovalidate rules in the .proto: `validate()` of `@bufbuild/protovalidate` 1.3 with these
 * rules as annotations costs about ten times this validator per event, more than the 5 % of a
 * batched publish's server CPU it was allowed, and the relay validates every event it reads again
 * (docs/operations.md, "protovalidate on the publish path", has the figures and the command).
 */

/** Identifiers become NATS subject tokens and Svix uids: `.` separates tokens, `*`/`>` are wildcards. */
export const IDENTIFIER_CHARS = { min: 1, max: 128, set: "A-Za-z0-9_-" } as const;
export const IDENTIFIER = new RegExp(
  `^[${IDENTIFIER_CHARS.set}]{${IDENTIFIER_CHARS.min},${IDENTIFIER_CHARS.max}}$`,
);
export const IDENTIFIER_RULE = `must be ${IDENTIFIER_CHARS.min}-${IDENTIFIER_CHARS.max} characters of A-Z, a-z, 0-9, '_' or '-'`;

/** Prefixes Svix reserves for its own ids, per identifier field. */
export const RESERVED_PREFIXES = {
  tenant_id: ["app_"],
  event_id: ["auto_", "msg_"],
} as const;

/** Limits, counted in code points. */
export const LIMITS = {
  metadataEntries: 64,
  metadataKeyChars: 128,
  metadataValueChars: 1024,
  errorCodeChars: 128,
  errorMessageChars: 4096,
} as const;

/** Fields a JobEvent may carry only with one status, and whether that status requires them. */
export const STATUS_BOUND_FIELDS = [
  { field: "error", status: JobStatus.FAILED, statusWord: "failed", required: true },
  { field: "result", status: JobStatus.COMPLETED, statusWord: "completed", required: false },
] as const;

/** Why a value is not an identifier ("is required" when empty), or undefined when it is one. */
export function identifierProblem(value: string): string | undefined {
  if (value === "") return "is required";
  return IDENTIFIER.test(value) ? undefined : IDENTIFIER_RULE;
}

/** Why a value may not be `field` because it starts with a prefix Svix reserves, or undefined. */
export function reservedPrefixProblem(
  field: keyof typeof RESERVED_PREFIXES,
  value: string,
): string | undefined {
  const prefixes: readonly string[] = RESERVED_PREFIXES[field];
  if (!prefixes.some((p) => value.startsWith(p))) return undefined;
  const named = prefixes.map((p) => `'${p}'`).join(" or ");
  return `must not start with ${named} (Svix reserves ${prefixes.length > 1 ? "them" : "it"})`;
}

/** Why a tenant id is unacceptable (the JobEvent.tenant_id rules), or undefined when it is fine. */
export function tenantIdProblem(value: string): string | undefined {
  return identifierProblem(value) ?? reservedPrefixProblem("tenant_id", value);
}

const idChars = `${IDENTIFIER_CHARS.min}-${IDENTIFIER_CHARS.max} characters of [${IDENTIFIER_CHARS.set}]`;
const enumName = (s: JobStatus) => `JOB_STATUS_${JobStatus[s]}`;
const backticked = (ps: readonly string[]) => ps.map((p) => `\`${p}\``).join(" or ");

/**
 * What webhooks.proto's comments must say, derived from the table above: `at` is a message
 * (its own comment) or `Message.field` (the field's comment); `says` must appear in it, with line
 * breaks and `//` markers folded into single spaces.
 */
export const PROTO_DOCUMENTED: ReadonlyArray<{ at: string; says: string }> = [
  { at: "JobEvent", says: `Identifiers (tenant_id, job_id, event_id) are ${idChars}` },
  { at: "JobEvent", says: `tenant_id must not start with ${backticked(RESERVED_PREFIXES.tenant_id)}` },
  { at: "JobEvent", says: `event_id must not start with ${backticked(RESERVED_PREFIXES.event_id)}` },
  { at: "JobEvent.tenant_id", says: "Required." },
  { at: "JobEvent.job_id", says: "Required." },
  { at: "JobEvent.status", says: "Required (not JOB_STATUS_UNSPECIFIED)." },
  ...STATUS_BOUND_FIELDS.map((r) => ({
    at: `JobEvent.${r.field}`,
    says: r.required
      ? `Required for ${enumName(r.status)}, not allowed otherwise.`
      : `for ${enumName(r.status)} only.`,
  })),
  {
    at: "JobEvent.metadata",
    says: `at most ${LIMITS.metadataEntries} entries; keys up to ${LIMITS.metadataKeyChars} characters, values up to ${LIMITS.metadataValueChars}`,
  },
  { at: "JobError.code", says: `Required, at most ${LIMITS.errorCodeChars} characters.` },
  { at: "JobError.message", says: `at most ${LIMITS.errorMessageChars} characters.` },
  { at: "GetPortalLinkRequest.tenant_id", says: "Same rules as JobEvent.tenant_id." },
  { at: "GetPortalLinkRequest.session_id", says: `${idChars}.` },
  { at: "ListJobDeliveriesRequest.job_id", says: "Required; same rules as JobEvent.job_id." },
  { at: "RevokePortalSessionsRequest.tenant_id", says: "Required." },
];
