import { type DescField, type DescMessage, fromJson, type JsonValue } from "@bufbuild/protobuf";
import type { FieldViolation } from "./validate.js";

/**
 * Decodes each field of `json` on its own against `schema`, descending into message fields, and
 * reports the path of every field that does not decode. Unknown keys are ignored, as the server's
 * decoder ignores them.
 */
export function locateJsonErrors(schema: DescMessage, json: JsonValue, path: string): FieldViolation[] {
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
      out.push(...locateJsonErrors(field.message, value, fieldPath));
      continue;
    }
    try {
      fromJson(schema, { [key]: value });
    } catch (err) {
      out.push({ field: fieldPath, description: describe(err) });
    }
  }
  if (out.length === 0) {
    // Every field decodes alone, so the object as a whole is at fault (e.g. two members of a oneof).
    try {
      fromJson(schema, json);
    } catch (err) {
      out.push({ field: path, description: describe(err) });
    }
  }
  return out;
}

function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^cannot decode (field|message|enum) [\w.]+ from JSON: /, "cannot decode: ");
}
