import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule, { type FormatsPlugin } from "ajv-formats";
import type { RequestLogEntry } from "../../src/local/svix-stand-in/index.js";

/**
 * Holds the stand-in to Svix's published OpenAPI document with real JSON Schema validation (ajv,
 * draft 2020-12 as OpenAPI 3.1 says). The document still uses OpenAPI 3.0's `nullable` and Svix's own
 * integer formats, so it is translated on load — `nullable` becomes a type union, each format gets a
 * validator — rather than validated loosely.
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// Svix's published description, trimmed to the operations the stand-in serves (SOURCE.md beside it
// says where from and how to regenerate it). SVIX_OPENAPI points at another copy, e.g. the whole file.
const SPEC_PATH =
  process.env.SVIX_OPENAPI ?? path.resolve(repoRoot, "test/fixtures/svix-openapi/openapi.json");
const ID_BASE = "https://svix.stand-in.test/schemas/";

// ajv-formats ships CommonJS: depending on the loader its default import is the plugin or wraps it.
const addFormats =
  (addFormatsModule as unknown as { default?: FormatsPlugin }).default ??
  (addFormatsModule as unknown as FormatsPlugin);

type Schema = Record<string, unknown>;

const SCHEMA_MAPS = new Set(["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]);
const SCHEMA_LISTS = new Set(["allOf", "anyOf", "oneOf", "prefixItems"]);
const SCHEMA_SINGLES = new Set([
  "items",
  "additionalProperties",
  "not",
  "if",
  "then",
  "else",
  "contains",
  "propertyNames",
]);
/** Annotations OpenAPI adds that JSON Schema does not know; they carry no constraint. */
const OPENAPI_ANNOTATIONS = new Set(["example", "discriminator", "xml", "externalDocs"]);

/** OpenAPI 3.0-isms → JSON Schema 2020-12, keeping every constraint. */
export function toJsonSchema(node: unknown): unknown {
  if (typeof node !== "object" || node === null || Array.isArray(node)) return node;
  const out: Schema = {};
  for (const [key, value] of Object.entries(node as Schema)) {
    if (key === "nullable" || OPENAPI_ANNOTATIONS.has(key) || key.startsWith("x-")) continue;
    if (key === "$ref" && typeof value === "string")
      out.$ref = value.replace("#/components/schemas/", ID_BASE);
    else if (SCHEMA_MAPS.has(key))
      out[key] = Object.fromEntries(Object.entries(value as Schema).map(([k, v]) => [k, toJsonSchema(v)]));
    else if (SCHEMA_LISTS.has(key)) out[key] = (value as unknown[]).map(toJsonSchema);
    else if (SCHEMA_SINGLES.has(key)) out[key] = toJsonSchema(value);
    else out[key] = value;
  }
  if ((node as Schema).nullable !== true) return out;
  if (typeof out.type === "string") {
    out.type = [out.type, "null"];
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
    return out;
  }
  // `$ref` (or a composition) with `nullable`: null or whatever the rest allows.
  return { anyOf: [out, { type: "null" }] };
}

function integerFormat(min: number, max: number) {
  return { type: "number" as const, validate: (n: number) => Number.isInteger(n) && n >= min && n <= max };
}

interface Operation {
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
  requestBody?: { content: Record<string, { schema: Schema }> };
}

export interface OpenApiContract {
  /** Everything wrong with these logged exchanges; [] when all match the spec. */
  problems(entries: readonly RequestLogEntry[]): string[];
  /** Errors of one value against a named component schema (e.g. "MessageIn"); [] when valid. */
  errorsAgainst(component: string, value: unknown): string[];
  operation(operationId: string): Operation | undefined;
}

let cached: OpenApiContract | undefined;

export function loadOpenApiContract(): OpenApiContract {
  if (cached) return cached;
  if (!existsSync(SPEC_PATH))
    throw new Error(`Svix OpenAPI document not found at ${SPEC_PATH} (set SVIX_OPENAPI)`);
  const spec = JSON.parse(readFileSync(SPEC_PATH, "utf8")) as {
    paths: Record<string, Record<string, Operation & { operationId?: string }>>;
    components: { schemas: Record<string, Schema> };
  };
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
  });
  addFormats(ajv);
  for (const [name, [min, max]] of Object.entries({
    int16: [-32768, 32767],
    uint16: [0, 65535],
    int32: [-2147483648, 2147483647],
    uint32: [0, 4294967295],
    int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    uint64: [0, Number.MAX_SAFE_INTEGER],
    int: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    uint: [0, Number.MAX_SAFE_INTEGER],
  }) as [string, [number, number]][]) {
    ajv.addFormat(name, integerFormat(min, max));
  }
  ajv.addFormat("double", { type: "number", validate: (n: number) => Number.isFinite(n) });
  ajv.addFormat("color", /^#[0-9a-fA-F]{3,8}$/);
  ajv.addKeyword({ keyword: "x-enum-varnames" });
  for (const [name, schema] of Object.entries(spec.components.schemas)) {
    ajv.addSchema({ ...(toJsonSchema(schema) as Schema), $id: ID_BASE + name });
  }
  const operations = new Map<string, Operation>();
  for (const pathItem of Object.values(spec.paths)) {
    for (const op of Object.values(pathItem)) if (op?.operationId) operations.set(op.operationId, op);
  }
  const validators = new Map<string, ValidateFunction>();
  const validate = (schema: Schema, value: unknown): string[] => {
    const key = JSON.stringify(schema);
    const fn = validators.get(key) ?? ajv.compile(toJsonSchema(schema) as Schema);
    validators.set(key, fn);
    return fn(value) ? [] : (fn.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}`);
  };
  const jsonSchemaOf = (content?: Record<string, { schema: Schema }>) =>
    content?.["application/json"]?.schema;
  const errorBody = { $ref: "#/components/schemas/HttpErrorOut" };

  cached = {
    operation: (operationId) => operations.get(operationId),
    errorsAgainst: (component, value) => validate({ $ref: `#/components/schemas/${component}` }, value),
    problems(entries) {
      const problems: string[] = [];
      for (const entry of entries) {
        const where = `${entry.method} ${entry.path} → ${entry.status}`;
        // Faults imitate failures outside the API (a proxy's HTML, a 503 from a load balancer).
        if (entry.fault === "non-json" || entry.fault === "reset") continue;
        // A cut body (the log keeps 8 KiB) cannot be parsed; its status is still checked below.
        if (entry.truncated) {
          const op = entry.route === null ? undefined : operations.get(entry.route);
          if (op && !op.responses[String(entry.status)])
            problems.push(`${where}: status ${entry.status} is not documented for ${entry.route}`);
          continue;
        }
        const op = entry.route === null ? undefined : operations.get(entry.route);
        if (entry.route !== null && !op) {
          problems.push(`${where}: operation ${entry.route} is not in the spec`);
          continue;
        }
        const documented = op?.responses[String(entry.status)];
        if (op && !documented && !entry.fault) {
          problems.push(`${where}: status ${entry.status} is not documented for ${entry.route}`);
          continue;
        }
        const schema = op ? jsonSchemaOf(documented?.content) : entry.status >= 400 ? errorBody : undefined;
        const body = entry.fault && !documented ? undefined : schema;
        if (body === undefined) {
          if (!entry.fault && entry.responseBody !== "")
            problems.push(`${where}: expected no body, got ${entry.responseBody.slice(0, 80)}`);
          continue;
        }
        let parsed: unknown;
        try {
          parsed = JSON.parse(entry.responseBody);
        } catch {
          problems.push(`${where}: body is not JSON: ${entry.responseBody.slice(0, 80)}`);
          continue;
        }
        for (const error of validate(body, parsed)) problems.push(`${where}: response ${error}`);
        const requestSchema = jsonSchemaOf(op?.requestBody?.content);
        if (entry.status < 300 && requestSchema && entry.requestBody !== undefined) {
          for (const error of validate(requestSchema, JSON.parse(entry.requestBody)))
            problems.push(`${where}: accepted a request the spec rejects: ${error}`);
        }
      }
      return problems;
    },
  };
  return cached;
}
