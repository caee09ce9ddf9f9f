import { create, fromJson, toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IDENTIFIER, LIMITS, validateJobEvent } from "../../src/events/validate.js";
import { JobEventSchema, JobStatus } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { identifier } from "./arbitraries.js";

/** JobEvents as a decoder produces them: any value each field's type allows. */
const jobEvent = fc
  .record(
    {
      eventId: identifier,
      tenantId: identifier,
      jobId: identifier,
      status: fc.oneof(
        { weight: 6, arbitrary: fc.integer({ min: 1, max: 5 }) },
        { weight: 1, arbitrary: fc.integer() },
      ),
      occurredAt: fc.record({
        seconds: fc.bigInt({ min: -70_000_000_000n, max: 260_000_000_000n }),
        nanos: fc.integer({ min: -1, max: 1_000_000_000 }),
      }),
      sequence: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      error: fc.option(
        fc.record({
          code: fc.string({ maxLength: 130 }),
          message: fc.oneof(fc.string({ maxLength: 10 }), fc.constant("é".repeat(4_097))),
        }),
        { freq: 3, nil: undefined },
      ),
      metadata: fc.dictionary(
        fc.oneof(fc.string({ maxLength: 8 }), fc.constant("k".repeat(129))),
        fc.oneof(fc.string({ maxLength: 8 }), fc.constant("😀".repeat(1_025))),
        { maxKeys: 66 },
      ),
      result: fc.option(fc.constant({ fields: {} }), { freq: 2, nil: undefined }),
    },
    { requiredKeys: ["tenantId", "jobId", "status"] },
  )
  .map((init) => create(JobEventSchema, init as never));

const fieldNames =
  /^(event_id|tenant_id|job_id|status|error|error\.code|error\.message|result|occurred_at|metadata|metadata\[".*"\])$/s;

describe("the event validator under 10,000 generated events", () => {
  it("never throws; an accepted event keeps every rule and survives JSON; a refused one names its fields", () => {
    let accepted = 0;
    fc.assert(
      fc.property(jobEvent, (input) => {
        const r = validateJobEvent(input, { now: () => 1_700_000_000_000 });
        if (r.kind === "invalid") {
          expect(r.violations.length).toBeGreaterThan(0);
          for (const v of r.violations) {
            expect(v.field).toMatch(fieldNames);
            expect(v.description.length).toBeGreaterThan(0);
          }
          return;
        }
        accepted++;
        const e = r.event;
        expect(e.tenantId).toMatch(IDENTIFIER);
        expect(e.jobId).toMatch(IDENTIFIER);
        expect(e.status >= JobStatus.CREATED && e.status <= JobStatus.CANCELLED).toBe(true);
        expect(Boolean(e.error)).toBe(e.status === JobStatus.FAILED);
        expect(Object.keys(e.metadata).length).toBeLessThanOrEqual(LIMITS.metadataEntries);
        expect(e.occurredAt && !Number.isNaN(timestampDate(e.occurredAt).getTime())).toBe(true);
        // What is stored (JSON) decodes back to the same event, and validates again.
        const again = fromJson(JobEventSchema, toJson(JobEventSchema, e));
        expect(again).toEqual(e);
        expect(validateJobEvent(again).kind).toBe("valid");
      }),
      { numRuns: 10_000 },
    );
    console.log(`validator fuzz: ${accepted} of 10000 accepted`);
    expect(accepted).toBeGreaterThan(100);
  });
});
