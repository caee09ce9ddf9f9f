import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Ajv } from "ajv";
import addFormatsModule, { type FormatsPlugin } from "ajv-formats";
import { describe, expect, it } from "vitest";
import { eventTypeDefinitions, toSvixMessage } from "../../src/events/webhook-payload.js";
import { JobEventSchema, JobStatus } from "../../src/gen/jobhooks/v1/webhooks_pb.js";

// ajv-formats ships CommonJS: depending on the loader its default import is the plugin or wraps it.
const addFormats =
  (addFormatsModule as unknown as { default?: FormatsPlugin }).default ??
  (addFormatsModule as unknown as FormatsPlugin);

/** The schemas the portal shows, compiled as a customer's validator would read them. */
function schemaValidators() {
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  return new Map(eventTypeDefinitions().map((d) => [d.name, ajv.compile(d.schema)]));
}

const event = (status: JobStatus, extra: { sequence?: bigint } = {}) =>
  create(JobEventSchema, {
    eventId: "e1",
    tenantId: "acme",
    jobId: "job_123",
    status,
    occurredAt: timestampFromMs(Date.parse("2026-11-27T03:30:00.000Z")),
    ...(status === JobStatus.FAILED ? { error: { code: "timeout", message: "slow" } } : {}),
    ...extra,
  });

describe("the webhook payload", () => {
  it("carries the stored event's revision, with or without the publisher's own sequence", () => {
    expect(toSvixMessage(event(JobStatus.CREATED), 41).payload.data).toEqual({
      job_id: "job_123",
      revision: 41,
      status: "created",
      metadata: {},
    });
    const withSequence = toSvixMessage(event(JobStatus.PROCESSING, { sequence: 7n }), 42).payload.data;
    expect(withSequence).toMatchObject({ revision: 42, sequence: 7 });
  });

  it("satisfies the schema registered for its event type, which requires the revision", () => {
    const validators = schemaValidators();
    for (const status of [
      JobStatus.CREATED,
      JobStatus.PROCESSING,
      JobStatus.COMPLETED,
      JobStatus.FAILED,
      JobStatus.CANCELLED,
    ]) {
      const { eventType, payload } = toSvixMessage(event(status), 9);
      const validate = validators.get(eventType);
      expect(validate?.(payload), JSON.stringify(validate?.errors)).toBe(true);
      const { revision: _, ...withoutRevision } = payload.data;
      expect(validate?.({ ...payload, data: withoutRevision })).toBe(false);
    }
  });

  it("shows in the portal's examples one job whose revisions grow with each status change", () => {
    const validators = schemaValidators();
    const byName = new Map(eventTypeDefinitions().map((d) => [d.name, d.example]));
    for (const [name, example] of byName) {
      expect(validators.get(name)?.(example), name).toBe(true);
    }
    const revision = (name: string) => byName.get(name as never)?.data.revision ?? 0;
    expect(revision("job.created")).toBeLessThan(revision("job.processing"));
    expect(revision("job.processing")).toBeLessThan(revision("job.completed"));
    expect(revision("job.processing")).toBeLessThan(revision("job.failed"));
  });

  it("is what the receiver guide shows for each event type (the portal's test events)", () => {
    const guide = readFileSync(new URL("../../docs/receiving-webhooks.md", import.meta.url), "utf8");
    for (const d of eventTypeDefinitions()) {
      const block = new RegExp(`^\`${d.name}\`\n\n\`\`\`json\n([\\s\\S]*?)\n\`\`\`$`, "m").exec(guide);
      expect(block, `docs/receiving-webhooks.md shows ${d.name}`).not.toBeNull();
      expect(JSON.parse(block?.[1] ?? "null"), d.name).toEqual(d.example);
    }
  });
});
