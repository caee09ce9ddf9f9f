import { invalid, type Violation } from "./errors.js";

/**
 * Hand-written request checks for the fields the stand-in reads. Running a JSON-schema validator on
 * every request would cost more than the rest of message creation together, so the server checks
 * what the spec constrains for those fields (type, pattern, length, bounds) and answers 422 with
 * pydantic-style `loc`/`msg`/`type` entries as Svix does. The contract tests hold these checks to the
 * spec from the other side: every request the stand-in accepted must validate against it.
 */

export const UID_PATTERN = /^[a-zA-Z0-9\-_.]+$/;
export const CHANNEL_PATTERN = /^[a-zA-Z0-9\-_.:+]+$/;
export const TAG_PATTERN = /^[a-zA-Z0-9\-_./\\#]+$/;
export const SECRET_PATTERN = /^(whsec_|whsk_|whsk1_|whpk_|whpk1_)?[a-zA-Z0-9+/=]{32,100}$/;
export const SESSION_ID_PATTERN = /^[a-zA-Z0-9@_-]+$/;

type Json = Record<string, unknown>;

export interface StringRule {
  required?: boolean;
  pattern?: RegExp;
  minLength?: number;
  maxLength?: number;
}

export interface ArrayRule {
  item: StringRule;
  minItems?: number;
  maxItems?: number;
}

export function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export class FieldChecks {
  readonly violations: Violation[] = [];

  fail(loc: string[], msg: string, type: string): void {
    this.violations.push({ loc, msg, type });
  }

  /** The request body (or a nested object) must be a JSON object; returns {} after recording a violation. */
  object(value: unknown, loc: string[]): Json {
    if (isObject(value)) return value;
    this.fail(loc, "value is not a valid dict", "type_error.dict");
    return {};
  }

  /** A string field; `null` and absence are both "not set" (the spec marks these nullable). */
  string(obj: Json, key: string, loc: string[], rule: StringRule = {}): string | undefined {
    const value = obj[key];
    const at = [...loc, key];
    if (value === undefined || value === null) {
      if (rule.required) this.fail(at, "field required", "value_error.missing");
      return undefined;
    }
    if (typeof value !== "string") {
      this.fail(at, "str type expected", "type_error.str");
      return undefined;
    }
    return this.checkText(value, at, rule) ? value : undefined;
  }

  checkText(value: string, at: string[], rule: StringRule): boolean {
    const before = this.violations.length;
    if (rule.minLength !== undefined && value.length < rule.minLength)
      this.fail(
        at,
        `ensure this value has at least ${rule.minLength} characters`,
        "value_error.any_str.min_length",
      );
    if (rule.maxLength !== undefined && value.length > rule.maxLength)
      this.fail(
        at,
        `ensure this value has at most ${rule.maxLength} characters`,
        "value_error.any_str.max_length",
      );
    if (rule.pattern && !rule.pattern.test(value))
      this.fail(at, `string does not match regex "${rule.pattern.source}"`, "value_error.str.regex");
    return this.violations.length === before;
  }

  boolean(obj: Json, key: string, loc: string[]): boolean | undefined {
    const value = obj[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "boolean") {
      this.fail([...loc, key], "value could not be parsed to a boolean", "type_error.bool");
      return undefined;
    }
    return value;
  }

  integer(obj: Json, key: string, loc: string[], min: number, max: number): number | undefined {
    const value = obj[key];
    if (value === undefined || value === null) return undefined;
    const at = [...loc, key];
    if (typeof value !== "number" || !Number.isInteger(value)) {
      this.fail(at, "value is not a valid integer", "type_error.integer");
      return undefined;
    }
    if (value < min)
      this.fail(at, `ensure this value is greater than or equal to ${min}`, "value_error.number.not_ge");
    else if (value > max)
      this.fail(at, `ensure this value is less than or equal to ${max}`, "value_error.number.not_le");
    else return value;
    return undefined;
  }

  /** A set of strings (the spec's arrays here are all `uniqueItems`). */
  stringArray(obj: Json, key: string, loc: string[], rule: ArrayRule): string[] | undefined {
    const value = obj[key];
    if (value === undefined || value === null) return undefined;
    const at = [...loc, key];
    if (!Array.isArray(value)) {
      this.fail(at, "value is not a valid list", "type_error.list");
      return undefined;
    }
    const before = this.violations.length;
    if (rule.minItems !== undefined && value.length < rule.minItems)
      this.fail(at, `ensure this value has at least ${rule.minItems} items`, "value_error.list.min_items");
    if (rule.maxItems !== undefined && value.length > rule.maxItems)
      this.fail(at, `ensure this value has at most ${rule.maxItems} items`, "value_error.list.max_items");
    value.forEach((item, i) => {
      if (typeof item !== "string") this.fail([...at, String(i)], "str type expected", "type_error.str");
      else this.checkText(item, [...at, String(i)], rule.item);
    });
    if (new Set(value).size !== value.length)
      this.fail(at, "the list has duplicated items", "value_error.list.unique_items");
    return this.violations.length === before ? (value as string[]) : undefined;
  }

  /** A `{string: string}` map such as `metadata` or endpoint `headers`; `allowNull` for patch semantics. */
  stringMap(
    obj: Json,
    key: string,
    loc: string[],
    allowNull = false,
  ): Record<string, string | null> | undefined {
    const value = obj[key];
    if (value === undefined || value === null) return undefined;
    const at = [...loc, key];
    if (!isObject(value)) {
      this.fail(at, "value is not a valid dict", "type_error.dict");
      return undefined;
    }
    const before = this.violations.length;
    for (const [name, v] of Object.entries(value)) {
      if (typeof v === "string" || (allowNull && v === null)) continue;
      this.fail([...at, name], "str type expected", "type_error.str");
    }
    return this.violations.length === before ? (value as Record<string, string | null>) : undefined;
  }

  /** Throws the 422 if anything was recorded. */
  orThrow(): void {
    if (this.violations.length > 0) throw invalid(this.violations);
  }
}

/** Query booleans arrive as text; Svix (serde) accepts exactly "true"/"false". */
export function queryBoolean(
  checks: FieldChecks,
  query: URLSearchParams | null,
  name: string,
): boolean | undefined {
  const raw = query?.get(name);
  if (raw === undefined || raw === null) return undefined;
  if (raw === "true") return true;
  if (raw === "false") return false;
  checks.fail(["query", name], "value could not be parsed to a boolean", "type_error.bool");
  return undefined;
}
