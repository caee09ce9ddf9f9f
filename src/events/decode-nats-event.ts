import { create, fromBinary, fromJsonString, type JsonValue } from "@bufbuild/protobuf";

import { type JobEvent, JobEventSchema } from "../gen/jobhooks/v1/webhooks_pb.js";
import { statusFromName, statusName } from "./job-status.js";
import { locateJsonErrors } from "./json-errors.js";
import { type FieldViolation, validateJobEvent } from "./validate.js";

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
  | { ok: true; event: JobEvent }
  | { ok: false; reason: DeadReason; detail: string; violations?: FieldViolation[] };

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
      ok: false,
      reason: "too_large",
      detail: `body is ${input.data.byteLength} bytes, over the ${input.maxPayloadBytes}-byte limit`,
    };
  }
  const type = (input.contentType ?? "application/json").split(";")[0]?.trim().toLowerCase();
  let event: JobEvent;
  if (type === "application/json" || type === "") {
    const text = new TextDecoder().decode(input.data);
    try {
      event = fromJsonString(JobEventSchema, text, { ignoreUnknownFields: true });
    } catch (err) {
      return malformedJson(text, err);
    }
  } else if (type === "application/protobuf" || type === "application/x-protobuf") {
    try {
      event = fromBinary(JobEventSchema, input.data);
    } catch (err) {
      return {
        ok: false,
        reason: "malformed",
        detail: `body is not a binary JobEvent: ${(err as Error).message}`,
      };
    }
  } else {
    return {
      ok: false,
      reason: "unsupported_content_type",
      detail: `Content-Type ${input.contentType} is not application/json or application/protobuf`,
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
      ok: false,
      reason: "bad_subject",
      detail: `unknown status token "${input.subject.status}": one of created, processing, completed, failed, cancelled`,
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
    return { ok: false, reason: "subject_mismatch", detail: describeAll(mismatches), violations: mismatches };
  }

  const result = validateJobEvent(create(JobEventSchema, event), {
    now: () => input.storedAtMs,
  });
  if (!result.ok) {
    return {
      ok: false,
      reason: "invalid",
      detail: describeAll(result.violations),
      violations: result.violations,
    };
  }
  return result;
}

function malformedJson(text: string, err: unknown): DecodeResult {
  let json: JsonValue;
  try {
    json = JSON.parse(text) as JsonValue;
  } catch (syntax) {
    return { ok: false, reason: "malformed", detail: `body is not valid JSON: ${(syntax as Error).message}` };
  }
  const violations = locateJsonErrors(JobEventSchema, json, "");
  return {
    ok: false,
    reason: "malformed",
    detail: violations.length ? describeAll(violations) : (err as Error).message,
    ...(violations.length ? { violations } : {}),
  };
}

export function describeAll(violations: FieldViolation[]): string {
  return violations.map((v) => (v.field ? `${v.field}: ${v.description}` : v.description)).join("; ");
}
