import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type JobEvent, JobStatus } from "../gen/jobhooks/v1/webhooks_pb.js";
import { eventTypeOf, JOB_STATUSES, type JobEventType, statusName } from "./job-status.js";
import { IDENTIFIER, LIMITS } from "./validate.js";

/**
 * What a customer's endpoint receives, in the Standard Webhooks shape (docs/receiving-webhooks.md):
 * `{ type, timestamp, data: { job_id, revision, status, sequence?, result?, error?, metadata } }`.
 */
export interface WebhookPayload {
  type: JobEventType;
  timestamp: string;
  data: {
    job_id: string;
    /** Greater for every later event of the job: the one ordering rule (see `toSvixMessage`). */
    revision: number;
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

/**
 * Maps a validated event (event_id and occurred_at filled in) to the Svix message for it.
 *
 * `revision` is the JetStream stream sequence that stores the event in JOBS. It is the one value a
 * receiver compares ("ignore an event whose revision is not greater than the last you stored for
 * the job") because it is the order jobhooks delivers in: the relay sends a job's events in stream
 * order. It only grows per job whatever the path (RPC, batch, NATS, the partitioned layout's
 * stored events, which keep their sequence on take-over) and is the same on every redelivery of
 * the stored message, on every replica and after restarts. The publisher's `sequence` cannot be
 * that value: a job whose events come from two publishers, one numbering them and one not, would
 * mix two number spaces and make a receiver drop every later event.
 */
export function toSvixMessage(event: JobEvent, revision: number): SvixMessage {
  const type = eventTypeOf(event.status) as JobEventType;
  const seq = event.sequence;
  const data: WebhookPayload["data"] = {
    job_id: event.jobId,
    revision,
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
/** One job's life in the examples: revisions grow with gaps (other jobs' events in between), from
 * a first sequence set by the clock (see jobsFirstSequence). */
const EXAMPLE_REVISIONS: Record<string, number> = {
  created: 1_796_009_400_000_107,
  processing: 1_796_009_400_000_112,
  completed: 1_796_009_400_000_129,
  failed: 1_796_009_400_000_129,
  cancelled: 1_796_009_400_000_112,
};
const EXAMPLE_SEQUENCES: Record<string, number> = {
  created: 1,
  processing: 2,
  completed: 3,
  failed: 3,
  cancelled: 2,
};

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
      revision: {
        type: "integer",
        minimum: 1,
        description:
          "Greater for every later event of the same job (not consecutive). Ignore an event whose revision is not greater than the last one you stored for its job: it is older news, or a retry",
      },
      status: { type: "string", const: s.name },
      sequence: {
        type: ["integer", "string"],
        description:
          "The publisher's own per-job number, as it set it (absent when it set none); not for ordering: compare revision",
      },
      metadata: {
        type: "object",
        additionalProperties: { type: "string", maxLength: LIMITS.metadataValueChars },
        maxProperties: LIMITS.metadataEntries,
      },
    };
    const required = ["job_id", "revision", "status", "metadata"];
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
      revision: EXAMPLE_REVISIONS[s.name] ?? 1,
      status: s.name,
      sequence: EXAMPLE_SEQUENCES[s.name] ?? 1,
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
