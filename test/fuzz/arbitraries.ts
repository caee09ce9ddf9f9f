import fc from "fast-check";

/**
 * Generators of what publishers send: mostly near-valid JobEvents (so the fuzz reaches the
 * validator's rules, not only the JSON parser), each field sometimes replaced by a value of another
 * type, unknown keys, wrong wrappers, and plain garbage.
 */

const statusNames = [
  "JOB_STATUS_CREATED",
  "JOB_STATUS_PROCESSING",
  "JOB_STATUS_COMPLETED",
  "JOB_STATUS_FAILED",
  "JOB_STATUS_CANCELLED",
];

/** Identifiers: valid ones, edge ones (empty, 129 characters, reserved prefixes), and any string. */
export const identifier = fc.oneof(
  { weight: 6, arbitrary: fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "",
      "a".repeat(128),
      "a".repeat(129),
      "app_x",
      "auto_x",
      "msg_x",
      "a.b",
      "a*",
      ">",
    ),
  },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
);

const status = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...statusNames) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      0,
      1,
      3,
      5,
      6,
      -1,
      2 ** 31,
      1.5,
      "JOB_STATUS_UNSPECIFIED",
      "JOB_STATUS_DONE",
      "completed",
      "",
      null,
    ),
  },
);

/** Any JSON value, for a field that should hold something else. */
const wrong = fc.jsonValue({ maxDepth: 2 });

const timestamp = fc.oneof(
  fc
    .date({
      min: new Date("0001-01-01T00:00:00Z"),
      max: new Date("9999-12-31T23:59:59Z"),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString()),
  fc.constantFrom(
    "2024-13-01T00:00:00Z",
    "yesterday",
    "0000-01-01T00:00:00Z",
    "2024-01-01T00:00:00.123456789Z",
  ),
);

const metadata = fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 4 });

const validId = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/).filter((s) => !/^(app|auto|msg)_/.test(s));

/** A valid JobEvent as JSON: the rules that tie fields to the status are kept. */
const validEventJson: fc.Arbitrary<Record<string, unknown>> = fc
  .record(
    {
      eventId: validId,
      tenantId: validId,
      jobId: validId,
      status: fc.constantFrom(...statusNames),
      sequence: fc.nat(),
      metadata,
      errorCode: fc.string({ minLength: 1, maxLength: 10 }),
      result: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
    },
    { requiredKeys: ["tenantId", "jobId", "status", "errorCode", "result"] },
  )
  .map(({ errorCode, result, ...e }) => ({
    ...e,
    ...(e.status === "JOB_STATUS_FAILED" ? { error: { code: errorCode } } : {}),
    ...(e.status === "JOB_STATUS_COMPLETED" ? { result } : {}),
  }));

/** A JobEvent as JSON, near-valid: each optional field present or not, each field sometimes wrong. */
const mangledEventJson: fc.Arbitrary<Record<string, unknown>> = fc
  .record(
    {
      eventId: fc.oneof({ weight: 4, arbitrary: identifier }, { weight: 1, arbitrary: wrong }),
      tenantId: fc.oneof({ weight: 8, arbitrary: identifier }, { weight: 1, arbitrary: wrong }),
      jobId: fc.oneof({ weight: 8, arbitrary: identifier }, { weight: 1, arbitrary: wrong }),
      status,
      occurredAt: fc.oneof({ weight: 4, arbitrary: timestamp }, { weight: 1, arbitrary: wrong }),
      sequence: fc.oneof(
        fc.nat(),
        fc.constantFrom("7", "18446744073709551615", "18446744073709551616", -1, 1.5, "x"),
      ),
      result: fc.oneof(
        { weight: 3, arbitrary: fc.dictionary(fc.string({ maxLength: 6 }), wrong, { maxKeys: 3 }) },
        { weight: 1, arbitrary: wrong },
      ),
      error: fc.oneof(
        {
          weight: 4,
          arbitrary: fc.record(
            { code: fc.string({ maxLength: 10 }), message: fc.string({ maxLength: 20 }) },
            { requiredKeys: [] },
          ),
        },
        { weight: 1, arbitrary: wrong },
      ),
      metadata: fc.oneof({ weight: 4, arbitrary: metadata }, { weight: 1, arbitrary: wrong }),
      unknownKey: wrong,
    },
    { requiredKeys: [] },
  )
  .map(({ unknownKey, ...e }) =>
    unknownKey !== undefined && Math.abs(JSON.stringify(unknownKey).length % 3) === 0
      ? { ...e, somethingNew: unknownKey }
      : e,
  );

/** Valid events (a third) and near-valid ones. */
export const eventJson = fc.oneof(
  { weight: 1, arbitrary: validEventJson },
  { weight: 2, arbitrary: mangledEventJson },
);

/** Bodies for the NATS decoder: JSON of near-valid events, other JSON, broken JSON, random bytes. */
export const natsBody: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 8, arbitrary: eventJson.map((e) => new TextEncoder().encode(JSON.stringify(e))) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 2 }).map((s) => new TextEncoder().encode(s)) },
  { weight: 1, arbitrary: eventJson.map((e) => new TextEncoder().encode(JSON.stringify(e).slice(0, -1))) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
);

export { statusNames };
