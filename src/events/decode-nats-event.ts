import { create, fromBinary, fromJson, type JsonValue } from "@bufbuild/protobuf";

import { type JobEvent, JobEventSchema } from "../gen/jobhooks/v1/webhooks_pb.js";
import { STATUS_TOKENS, statusFromName, statusName } from "./job-status.js";
import { locateJsonErrors } from "./json-errors.js";
import { type FieldViolation, validateJobEvent } from "./validate.js";
import { CONTENT_TYPE } from "./wire-names.js";

/** Why a message read from NATS can never be delivered; the dead-letter record carries it. */
export type DeadReason =
  | "bad_subject"
  | "too_large"
  | "unsupported_content_type"
  | "malformed"
  | "subject_mismatch"
  | "invalid"
  | "svix_rejected"
  /** Svix kept failing this event while it accepted others (the relay's bounded retries). */
  | "retries_exhausted";

export type DecodeResult =
  | { kind: "event"; event: JobEvent }
  | { kind: "dead"; reason: DeadReason; detail: string; violations?: FieldViolation[] };

export interface NatsEventInput {
  /** Tokens of the subject the publisher used: `<prefix>.<tenant_id>.<job_id>.<status>`. */
  subject: { tenantId: string; jobId: string; status: string };
  data: Uint8Array;
  contentType: string | undefined;
  /** When JetStream stored the message: the event's time of acceptance, stable across redeliveries. */
  storedAtMs: number;
  maxPayloadBytes: number;
}

/**
 * Turns a message published to NATS into a validated JobEvent, or says precisely why it cannot
 * be one. Fields missing from the body are taken from the subject; fields present in both must
 * agree. The same validator as PublishJobEvent then applies.
 */
export function decodeNatsEvent(input: NatsEventInput): DecodeResult {
  if (input.data.byteLength > input.maxPayloadBytes) {
    return {
      kind: "dead",
      reason: "too_large",
      detail: `body is ${input.data.byteLength} bytes, over the ${input.maxPayloadBytes}-byte limit`,
    };
  }
  const type = (input.contentType ?? CONTENT_TYPE.json).split(";")[0]?.trim().toLowerCase();
  let event: JobEvent;
  if (type === CONTENT_TYPE.json || type === "") {
    const decoded = decodeJsonBody(input.data);
    if (decoded.kind === "dead") return decoded;
    event = decoded.event;
  } else if (type === CONTENT_TYPE.protobuf || type === CONTENT_TYPE.protobufLegacy) {
    try {
      event = fromBinary(JobEventSchema, input.data);
    } catch (err) {
      return {
        kind: "dead",
        reason: "malformed",
        detail: `body is not a binary JobEvent: ${(err as Error).message}`,
      };
    }
  } else {
    return {
      kind: "dead",
      reason: "unsupported_content_type",
      detail: `Content-Type ${input.contentType} is not ${CONTENT_TYPE.json} or ${CONTENT_TYPE.protobuf}`,
    };
  }

  const fromSubject = statusFromName(input.subject.status);
  const mismatches: FieldViolation[] = [];
  const fill = <K extends "tenantId" | "jobId">(key: K, field: string) => {
    if (event[key] === "") event[key] = input.subject[key];
    else if (event[key] !== input.subject[key]) {
      mismatches.push({ field, description: `body says ${event[key]}, subject says ${input.subject[key]}` });
    }
  };
  fill("tenantId", "tenant_id");
  fill("jobId", "job_id");
  if (fromSubject === undefined) {
    return {
      kind: "dead",
      reason: "bad_subject",
      detail: `unknown status token "${input.subject.status}": one of ${STATUS_TOKENS}`,
    };
  }
  if (event.status === 0) event.status = fromSubject;
  else if (event.status !== fromSubject) {
    mismatches.push({
      field: "status",
      description: `body says ${statusName(event.status) ?? event.status}, subject says ${input.subject.status}`,
    });
  }
  if (mismatches.length > 0) {
    return {
      kind: "dead",
      reason: "subject_mismatch",
      detail: describeAll(mismatches),
      violations: mismatches,
    };
  }

  const result = validateJobEvent(create(JobEventSchema, event), {
    now: () => input.storedAtMs,
  });
  if (result.kind === "invalid") {
    return {
      kind: "dead",
      reason: "invalid",
      detail: describeAll(result.violations),
      violations: result.violations,
    };
  }
  return { kind: "event", event: result.event };
}

/**
 * JSON bodies: keys jobhooks does not know are ignored (publishers may send more), but a known
 * field whose value its type does not allow (an unknown enum name, a string for a number) makes the
 * event `invalid`, naming the field. Ignoring it instead would let the subject silently fill in a
 * status the publisher never sent.
 */
function decodeJsonBody(data: Uint8Array): DecodeResult {
  const text = new TextDecoder().decode(data);
  let json: JsonValue;
  try {
    json = JSON.parse(text) as JsonValue;
  } catch (syntax) {
    return {
      kind: "dead",
      reason: "malformed",
      detail: `body is not valid JSON: ${(syntax as Error).message}`,
    };
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return { kind: "dead", reason: "malformed", detail: "body is not a JSON object" };
  }
  try {
    // Strict first: the common, valid event is decoded once.
    return { kind: "event", event: fromJson(JobEventSchema, json) };
  } catch {
    const violations = locateJsonErrors(JobEventSchema, json, "", { ignoreUnknownKeys: true });
    if (violations.length > 0) {
      return { kind: "dead", reason: "invalid", detail: describeAll(violations), violations };
    }
  }
  try {
    // Every known field decodes: only unknown keys stopped the strict decode.
    return { kind: "event", event: fromJson(JobEventSchema, json, { ignoreUnknownFields: true }) };
  } catch (err) {
    return { kind: "dead", reason: "malformed", detail: (err as Error).message };
  }
}

export function describeAll(violations: FieldViolation[]): string {
  return violations.map((v) => (v.field ? `${v.field}: ${v.description}` : v.description)).join("; ");
}
