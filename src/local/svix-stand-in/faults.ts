import { FieldChecks } from "./checks.js";
import type { Violation } from "./errors.js";

/**
 * Fault injection: rules that make matching API requests fail the ways real Svix (or the network in
 * front of it) fails, so jobhooks' classification and backoff can be tested end to end. A rule without
 * `count` lasts until cleared; with `fraction: 1` and route "*" that is a total outage.
 */

export const FAULT_KINDS = [
  "409",
  "422",
  "429",
  "500",
  "503",
  "non-json",
  "latency",
  "reset",
  "rate-limit",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultRuleInput {
  /**
   * Which requests: "*" (every API request), an operation id ("v1.message.create", or without the
   * "v1." prefix; "*" works inside it, e.g. "message.*"), or a path pattern ("/api/v1/app/{app_id}/msg",
   * "POST /api/v1/app/*\/msg") where `*` and `{name}` each match one segment.
   */
  route?: string;
  /**
   * Only requests whose body contains this text, e.g. `"job.job-7"` (jobhooks tags each message
   * `job.<job_id>`) to fail one job's events while the rest of its application is served.
   */
  bodyContains?: string;
  kind: FaultKind;
  /** Apply to this many matching requests, then retire the rule; unlimited when absent. */
  count?: number;
  /** Probability that a matching request is hit; 1 when absent. */
  fraction?: number;
  /** For "latency": the delay before the request is handled normally. */
  latencyMs?: number;
  /** For "429" (default 1) and "503" (none by default): the `Retry-After` header, in seconds. */
  retryAfterSeconds?: number;
  /** For "non-json": the status to send with the HTML body; 200 by default. */
  status?: number;
  /**
   * For "rate-limit": matching requests allowed per second, across every application (Svix limits
   * per organisation); beyond it the request is answered 429 with `Retry-After` (whole seconds,
   * at least 1, as Svix sends it) until the budget refills. The budget is a bucket of one
   * second's worth, refilled continuously, so a client pacing just below the rate never hits it.
   */
  ratePerSecond?: number;
}

export interface FaultRule extends FaultRuleInput {
  id: string;
  route: string;
  /** How many requests this rule has hit so far. */
  injected: number;
}

type RoutePredicate = (operationId: string | null, method: string, path: string) => boolean;

function globToRegExp(glob: string, segment: string): RegExp {
  const escaped = glob.replace(/[.+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}/]+\}/g, "*");
  return new RegExp(`^${escaped.replace(/\*/g, segment)}$`);
}

function compileRoute(route: string): RoutePredicate {
  if (route === "*") return (operationId) => operationId !== null;
  const methodAndPath = /^(GET|POST|PUT|PATCH|DELETE)\s+(\/.*)$/.exec(route);
  if (methodAndPath || route.startsWith("/")) {
    const method = methodAndPath?.[1];
    const pattern = globToRegExp(methodAndPath?.[2] ?? route, "[^/]+");
    return (_operationId, m, path) => (method === undefined || method === m) && pattern.test(path);
  }
  const pattern = globToRegExp(route.startsWith("v1.") ? route : `v1.${route}`, ".*");
  return (operationId) => operationId !== null && pattern.test(operationId);
}

/** Checks a rule as it arrives over the admin API (or from code), with the API's 422 shape. */
export function readFaultRule(
  value: unknown,
): { kind: "rule"; rule: FaultRuleInput } | { kind: "invalid"; violations: Violation[] } {
  const checks = new FieldChecks();
  const body = checks.object(value, ["body"]);
  const loc = ["body"];
  const kind = checks.string(body, "kind", loc, { required: true });
  if (kind !== undefined && !(FAULT_KINDS as readonly string[]).includes(kind))
    checks.fail(["body", "kind"], `kind must be one of ${FAULT_KINDS.join(", ")}`, "type_error.enum");
  const route = checks.string(body, "route", loc, { minLength: 1 });
  const bodyContains = checks.string(body, "bodyContains", loc, { minLength: 1 });
  const count = checks.integer(body, "count", loc, 1, Number.MAX_SAFE_INTEGER);
  const fraction = body.fraction;
  if (fraction !== undefined && (typeof fraction !== "number" || fraction < 0 || fraction > 1))
    checks.fail(["body", "fraction"], "fraction must be a number from 0 to 1", "value_error");
  const latencyMs = checks.integer(body, "latencyMs", loc, 0, 600_000);
  const retryAfterSeconds = checks.integer(body, "retryAfterSeconds", loc, 0, 86_400);
  const status = checks.integer(body, "status", loc, 100, 599);
  const ratePerSecond = checks.integer(body, "ratePerSecond", loc, 1, 1_000_000);
  if (kind === "rate-limit" && ratePerSecond === undefined)
    checks.fail(["body", "ratePerSecond"], "field required for rate-limit faults", "value_error.missing");
  if (kind === "latency" && latencyMs === undefined)
    checks.fail(["body", "latencyMs"], "field required for latency faults", "value_error.missing");
  if (checks.violations.length > 0) return { kind: "invalid", violations: checks.violations };
  return {
    kind: "rule",
    rule: {
      kind: kind as FaultKind,
      route,
      bodyContains,
      count,
      fraction: fraction as number | undefined,
      latencyMs,
      retryAfterSeconds,
      status,
      ratePerSecond,
    },
  };
}

export class FaultRuleError extends Error {
  constructor(readonly violations: Violation[]) {
    super(`invalid fault rule: ${violations.map((v) => `${v.loc.join(".")}: ${v.msg}`).join("; ")}`);
    this.name = "FaultRuleError";
  }
}

/** A rate-limit rule's budget: a bucket of one second's worth, refilled continuously. */
interface Bucket {
  tokens: number;
  at: number;
}

export class FaultInjector {
  private rules: { rule: FaultRule; matches: RoutePredicate; bucket?: Bucket }[] = [];
  private nextId = 1;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Adds a rule; later rules are consulted after earlier ones. Throws FaultRuleError when invalid. */
  inject(input: FaultRuleInput): FaultRule {
    const checked = readFaultRule(input);
    if (checked.kind === "invalid") throw new FaultRuleError(checked.violations);
    const defined = Object.fromEntries(Object.entries(checked.rule).filter(([, v]) => v !== undefined));
    const rule: FaultRule = {
      ...(defined as FaultRuleInput),
      route: checked.rule.route ?? "*",
      id: `fault_${this.nextId++}`,
      injected: 0,
    };
    const bucket =
      rule.kind === "rate-limit" ? { tokens: rule.ratePerSecond ?? 1, at: this.now() } : undefined;
    this.rules.push({ rule, matches: compileRoute(rule.route), ...(bucket ? { bucket } : {}) });
    return { ...rule };
  }

  remove(id: string): boolean {
    const before = this.rules.length;
    this.rules = this.rules.filter((r) => r.rule.id !== id);
    return this.rules.length < before;
  }

  clear(): void {
    this.rules = [];
  }

  list(): FaultRule[] {
    return this.rules.map((r) => ({ ...r.rule }));
  }

  get active(): boolean {
    return this.rules.length > 0;
  }

  /**
   * The fault to apply to this request (`body`: its text), if any; counts it against the rule.
   * Rate limits are consulted first, whatever their place: Svix refuses a request over its limit
   * before anything else happens to it, so a latency rule does not hide a rate limit.
   */
  pick(operationId: string | null, method: string, path: string, body = ""): FaultRule | undefined {
    const limitsFirst = [...this.rules.filter((r) => r.bucket), ...this.rules.filter((r) => !r.bucket)];
    for (const entry of limitsFirst) {
      const { rule } = entry;
      if (!entry.matches(operationId, method, path)) continue;
      if (rule.bodyContains !== undefined && !body.includes(rule.bodyContains)) continue;
      if (rule.fraction !== undefined && Math.random() >= rule.fraction) continue;
      if (entry.bucket) {
        const retryAfterMs = this.throttle(entry.bucket, rule.ratePerSecond ?? 1);
        if (retryAfterMs === undefined) continue;
        rule.injected++;
        return { ...rule, kind: "429", retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1_000)) };
      }
      rule.injected++;
      if (rule.count !== undefined && rule.injected >= rule.count) this.remove(rule.id);
      return { ...rule };
    }
    return undefined;
  }

  /** Takes one request from the bucket; undefined when it may pass, else ms until it could. */
  private throttle(bucket: Bucket, rate: number): number | undefined {
    const now = this.now();
    bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) / 1_000) * rate);
    bucket.at = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    return ((1 - bucket.tokens) / rate) * 1_000;
  }
}
