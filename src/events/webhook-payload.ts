import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type JobEvent, JobStatus } from "../gen/jobhooks/v1/webhooks_pb.js";
import { eventTypeOf, JOB_STATUSES, type JobEventType, statusName } from "./job-status.js";
import { IDENTIFIER, LIMITS } from "./validate.js";

/**
 * What a customer's endpoint receives, in the Standard Webhooks shape (docs/receiving-webhooks.md):
 * `{ type, timestamp, data: { job_id, status, sequence?, result?, error?, metadata } }`.
 */
export interface WebhookPayload {
  type: JobEventType;
  timestamp: string;
  data: {
    job_id: string;
    status: string;
    sequence?: number | string;
    result?: Record<string, unknown>;
    error?: { code: string; message: string };
    metadata: Record<string, string>;
  };
}

export interface SvixMessage {
  eventType: JobEventType;
  eventId: string;
  payload: WebhookPayload;
}

/** Maps a validated event (event_id and occurred_at filled in) to the Svix message for it. */
export function toSvixMessage(event: JobEvent): SvixMessage {
  const type = eventTypeOf(event.status) as JobEventType;
  const seq = event.sequence;
  const data: WebhookPayload["data"] = {
    job_id: event.jobId,
    status: statusName(event.status) as string,
    // JSON numbers are exact only up to 2^53; larger sequences travel as strings, as proto3 JSON does.
    ...(seq === undefined
      ? {}
      : { sequence: seq <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(seq) : String(seq) }),
    ...(event.status === JobStatus.COMPLETED && event.result ? { result: event.result } : {}),
    ...(event.error ? { error: { code: event.error.code, message: event.error.message } } : {}),
    metadata: { ...event.metadata },
  };
  return {
    eventType: type,
    eventId: event.eventId,
    payload: {
      type,
      timestamp: event.occurredAt ? timestampDate(event.occurredAt).toISOString() : new Date(0).toISOString(),
      data,
    },
  };
}

/** One registered Svix event type: name, description, JSON Schema and an example payload. */
export interface EventTypeDefinition {
  name: JobEventType;
  description: string;
  schema: Record<string, unknown>;
  example: WebhookPayload;
}

const EXAMPLE_TIME = "2026-11-27T03:30:00.000Z";

/**
 * The five event types as Svix registers them, derived from the same table and limits the
 * validator uses, so the portal's schemas and "send example" always match what is sent.
 */
export function eventTypeDefinitions(): EventTypeDefinition[] {
  return JOB_STATUSES.map((s) => {
    const dataProps: Record<string, unknown> = {
      job_id: {
        type: "string",
        pattern: IDENTIFIER.source,
        description: "The job whose status changed",
      },
      status: { type: "string", const: s.name },
      sequence: {
        type: ["integer", "string"],
        description:
          "Per-job sequence number, increasing with each status change (when the publisher sets it)",
      },
      metadata: {
        type: "object",
        additionalProperties: { type: "string", maxLength: LIMITS.metadataValueChars },
        maxProperties: LIMITS.metadataEntries,
      },
    };
    const required = ["job_id", "status", "metadata"];
    if (s.status === JobStatus.COMPLETED) {
      dataProps.result = { type: "object", description: "The job's output" };
    }
    if (s.status === JobStatus.FAILED) {
      dataProps.error = {
        type: "object",
        properties: {
          code: { type: "string", maxLength: LIMITS.errorCodeChars },
          message: { type: "string", maxLength: LIMITS.errorMessageChars },
        },
        required: ["code", "message"],
      };
      required.push("error");
    }
    const exampleData: WebhookPayload["data"] = {
      job_id: "job_123",
      status: s.name,
      sequence: 1,
      metadata: {},
    };
    if (s.status === JobStatus.COMPLETED) exampleData.result = { pages: 12 };
    if (s.status === JobStatus.FAILED)
      exampleData.error = { code: "timeout", message: "The job took too long" };
    return {
      name: s.eventType,
      description: s.description,
      schema: {
        $schema: "http://json-schema.org/draft-07/schema#",
        title: s.eventType,
        description: s.description,
        type: "object",
        properties: {
          type: { type: "string", const: s.eventType },
          timestamp: { type: "string", format: "date-time" },
          data: { type: "object", properties: dataProps, required },
        },
        required: ["type", "timestamp", "data"],
      },
      example: { type: s.eventType, timestamp: EXAMPLE_TIME, data: exampleData },
    };
  });
}
