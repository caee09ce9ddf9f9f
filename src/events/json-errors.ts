import {
  type DescEnum,
  type DescField,
  type DescMessage,
  fromJson,
  type JsonValue,
} from "@bufbuild/protobuf";
import type { FieldViolation } from "./validate.js";

/**
 * Decodes each field of `json` on its own against `schema`, descending into message fields, and
 * reports the path of every field that does not decode, with what to type instead (the valid enum
 * names, the wrapper a field belongs in).
 */
export interface LocateOptions {
  /**
   * Whether keys the schema does not know are a fault (Connect's decoder refuses them) or not (the
   * NATS decoder ignores them, so publishers may send more than jobhooks reads). Default: fault.
   */
  ignoreUnknownKeys?: boolean;
}

export function locateJsonErrors(
  schema: DescMessage,
  json: JsonValue,
  path: string,
  opts: LocateOptions = {},
): FieldViolation[] {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return [{ field: path, description: `must be a JSON object for ${schema.typeName}` }];
  }
  const out: FieldViolation[] = [];
  for (const [key, value] of Object.entries(json)) {
    const field = schema.fields.find((f: DescField) => f.jsonName === key || f.name === key);
    if (!field) continue;
    const fieldPath = path ? `${path}.${field.name}` : field.name;
    if (
      field.fieldKind === "message" &&
      !field.message.typeName.startsWith("google.protobuf.") &&
      value !== null
    ) {
      out.push(...locateJsonErrors(field.message, value, fieldPath, opts));
      continue;
    }
    if (field.fieldKind === "list" && field.listKind === "message" && Array.isArray(value)) {
      value.forEach((item, i) => {
        out.push(...locateJsonErrors(field.message, item, `${fieldPath}[${i}]`, opts));
      });
      continue;
    }
    try {
      fromJson(schema, { [key]: value });
    } catch (err) {
      const e = field.fieldKind === "enum" ? field.enum : undefined;
      out.push({ field: fieldPath, description: e ? enumProblem(e, value) : describe(err) });
    }
  }
  if (out.length === 0) {
    const wrapper = opts.ignoreUnknownKeys ? undefined : misplacedFields(schema, json, path);
    if (wrapper) return [wrapper];
    // Every field decodes alone, so the object as a whole is at fault (e.g. two members of a oneof).
    try {
      fromJson(schema, json, { ignoreUnknownFields: opts.ignoreUnknownKeys ?? false });
    } catch (err) {
      out.push({ field: path, description: describe(err) });
    }
  }
  return out;
}

/** Valid names of an enum, without the `_UNSPECIFIED` zero value, which no field accepts. */
export function enumChoices(e: DescEnum): string[] {
  return e.values.filter((v) => v.number !== 0).map((v) => v.name);
}

function enumProblem(e: DescEnum, value: JsonValue): string {
  const choices = enumChoices(e);
  const got = JSON.stringify(value);
  // `completed` or `job_status_completed` for JOB_STATUS_COMPLETED: the likely slip.
  const guess =
    typeof value === "string"
      ? choices.find((c) => c === value.toUpperCase() || c.endsWith(`_${value.toUpperCase()}`))
      : undefined;
  const hint = guess ? `; did you mean "${guess}"?` : "";
  return `${truncate(got)} is not a valid value: one of ${choices.map((c) => `"${c}"`).join(", ")}${hint}`;
}

/**
 * A body like `{"tenantId": …}` sent to PublishJobEvent: the keys belong to a message-typed field
 * (`event`) of the request. Names that field, with the shape to send.
 */
function misplacedFields(
  schema: DescMessage,
  json: Record<string, JsonValue>,
  path: string,
): FieldViolation | undefined {
  const unknown = Object.keys(json).filter(
    (k) => !schema.fields.some((f) => f.jsonName === k || f.name === k),
  );
  if (unknown.length === 0) return undefined;
  for (const f of schema.fields) {
    const inner =
      f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")
        ? f.message
        : undefined;
    if (!inner || inner.typeName.startsWith("google.protobuf.")) continue;
    const belongs = unknown.every((k) => inner.fields.some((g) => g.jsonName === k || g.name === k));
    if (!belongs) continue;
    const shape = f.fieldKind === "list" ? `"${f.jsonName}": [{...}, ...]` : `"${f.jsonName}": {...}`;
    const named = unknown.slice(0, MAX_NAMED_KEYS).map((k) => `"${truncate(k)}"`);
    return {
      field: path ? `${path}.${f.name}` : f.name,
      description: `is required: ${named.join(", ")}${more(unknown)} go inside ${shape}, e.g. {${shape.replace("...", named.map((k) => `${k}: …`).join(", "))}}`,
    };
  }
  const valid = schema.fields.map((f) => `"${f.jsonName}"`).join(", ");
  return {
    field: path,
    description: `unknown field ${unknown
      .slice(0, MAX_NAMED_KEYS)
      .map((k) => `"${truncate(k)}"`)
      .join(", ")}${more(unknown)} for ${schema.typeName}; valid fields: ${valid}`,
  };
}

/** Unknown keys named in an answer at most: the rest are counted, so an answer stays small. */
const MAX_NAMED_KEYS = 5;

function more(keys: readonly string[]): string {
  return keys.length > MAX_NAMED_KEYS ? ` (and ${keys.length - MAX_NAMED_KEYS} more)` : "";
}

function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^cannot decode (field|message|enum) [\w.]+ from JSON: /, "cannot decode: ");
}

function truncate(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}
