import { create, type DescMessage, type DescMethodUnary, type MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { expect } from "vitest";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import type { WireCall } from "./matrix-clients.js";

/**
 * The rows of the status matrix: for each RPC, a call and what every client must see of it. What
 * the server does is set up per phase (NATS up, down or frozen; Svix failing or slow).
 */

export type Phase = "up" | "svix-down" | "svix-slow" | "nats-down" | "nats-frozen";

/** Which service a row calls: the ordinary one, or one with a short JOBHOOKS_RPC_DEADLINE_MS. */
export type Target = "main" | "short-deadline";

/** The server deadline of the "short-deadline" service (long enough for an ordinary call here). */
export const SHORT_RPC_DEADLINE_MS = 1_500;

/** JOBHOOKS_PUBLISH_TIMEOUT_MS of the main service: how long a publish waits for NATS at most. */
export const PUBLISH_TIMEOUT_MS = 3_000;

export type Credential = "none" | "wrong" | "customer" | "service";

/** gRPC's OK, which Connect's Code enum leaves out. */
export const OK = 0;

export interface Expectation {
  code: Code | typeof OK;
  /** The fields a google.rpc.BadRequest detail names, in order. */
  fields?: string[];
  /** A google.rpc.RetryInfo detail with a positive delay. */
  retryInfo?: boolean;
  /** Words the message must contain (readable: no percent-escapes). */
  messageHas?: string[];
  /**
   * The client's own deadline fired: its message is its own library's, so only the code is
   * compared across clients.
   */
  clientDeadline?: boolean;
  /** For OK: what the response (proto3 JSON) must hold; asserts with expect. */
  response?: (json: Json) => void;
}

export interface Row {
  /** Unique, readable: `<RPC> · <case>`. */
  label: string;
  phase: Phase;
  target: Target;
  credential: Credential;
  timeoutMs: number;
  call(client: string): Pick<WireCall, "method" | "request">;
  expect: Expectation;
}

/** The tenant of the customer API key the matrix creates. */
export const CUSTOMER_TENANT = "mx-customer";

const m = WebhookService.method;

export function call<I extends DescMessage>(
  method: DescMethodUnary<I>,
  init: MessageInitShape<I>,
): Pick<WireCall, "method" | "request"> {
  return { method: method as unknown as DescMethodUnary, request: create(method.input, init) };
}

/** A tenant per client, so no client's call is a duplicate of another's or shares its rate bucket. */
const tenant = (client: string) => `mx-${client}`;

/**
 * An event whose `result` alone is over the 256 KiB default limit. Its tenant is the same for every
 * client: the refusal states the event's size, which must not differ between clients.
 */
export const oversizeEvent = (job: string) => ({
  tenantId: "mx-oversize",
  jobId: job,
  status: JobStatus.COMPLETED,
  result: { fields: { blob: { kind: { case: "stringValue" as const, value: "x".repeat(300 * 1024) } } } },
});

const event = (client: string, job: string) => ({
  tenantId: tenant(client),
  jobId: job,
  status: JobStatus.CREATED,
});

/** A response or result as proto3 JSON; the rows read only a few of its fields. */
export interface Json {
  eventId?: string;
  streamSequence?: string;
  duplicate?: boolean;
  url?: string;
  results?: Json[];
  error?: { code?: number; message?: string; details?: Array<{ "@type": string } & Record<string, unknown>> };
}

function expectStored(r: Json | undefined, eventId: string): void {
  expect(r?.eventId).toBe(eventId);
  expect(Number(r?.streamSequence)).toBeGreaterThan(0);
  expect(r?.error).toBeUndefined();
}

/** A batch result refused with `code` and the google.rpc details the unary RPC would send. */
function expectRefused(
  r: Json | undefined,
  code: Code,
  want: { fields?: string[]; retryInfo?: boolean },
): void {
  expect(r?.error?.code).toBe(code);
  expect(r?.error?.message).toBeTruthy();
  const details = r?.error?.details ?? [];
  if (want.fields) {
    const violations = details
      .filter((d) => d["@type"] === "type.googleapis.com/google.rpc.BadRequest")
      .flatMap((d) => (d.fieldViolations as Array<{ field: string }>).map((v) => v.field));
    expect(violations).toEqual(want.fields);
  }
  if (want.retryInfo) {
    const retry = details.find((d) => d["@type"] === "type.googleapis.com/google.rpc.RetryInfo");
    expect(retry?.retryDelay).toMatch(/^\d+(\.\d+)?s$/);
  }
}

export const rows: readonly Row[] = [
  // ---------------------------------------------------------------- PublishJobEvent
  {
    label: "PublishJobEvent · OK",
    phase: "up",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) => call(m.publishJobEvent, { event: event(c, "ok") }),
    expect: { code: OK, response: (r) => expectStored(r, "ok.created") },
  },
  {
    label: "PublishJobEvent · UNAUTHENTICATED (no token)",
    phase: "up",
    target: "main",
    credential: "none",
    timeoutMs: 15_000,
    call: (c) => call(m.publishJobEvent, { event: event(c, "noauth") }),
    expect: { code: Code.Unauthenticated, messageHas: ["Authorization: Bearer"] },
  },
  {
    label: "PublishJobEvent · UNAUTHENTICATED (wrong token)",
    phase: "up",
    target: "main",
    credential: "wrong",
    timeoutMs: 15_000,
    call: (c) => call(m.publishJobEvent, { event: event(c, "wrongauth") }),
    expect: { code: Code.Unauthenticated },
  },
  {
    // Refused from the headers: the body is never waited for, so no client hangs sending it.
    label: "PublishJobEvent · UNAUTHENTICATED (no token, 300 KiB body)",
    phase: "up",
    target: "short-deadline",
    credential: "none",
    timeoutMs: 15_000,
    call: () => call(m.publishJobEvent, { event: oversizeEvent("noauth-large") }),
    expect: { code: Code.Unauthenticated, messageHas: ["Authorization: Bearer"] },
  },
  {
    label: "PublishJobEvent · PERMISSION_DENIED (customer key, 300 KiB body)",
    phase: "up",
    target: "main",
    credential: "customer",
    timeoutMs: 15_000,
    call: () => call(m.publishJobEvent, { event: oversizeEvent("denied-large") }),
    expect: { code: Code.PermissionDenied },
  },
  {
    label: "PublishJobEvent · PERMISSION_DENIED (customer key)",
    phase: "up",
    target: "main",
    credential: "customer",
    timeoutMs: 15_000,
    call: () => call(m.publishJobEvent, { event: { ...event("customer", "denied") } }),
    expect: { code: Code.PermissionDenied },
  },
  {
    label: "PublishJobEvent · INVALID_ARGUMENT (no tenant)",
    phase: "up",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) => call(m.publishJobEvent, { event: { ...event(c, "invalid"), tenantId: "" } }),
    expect: { code: Code.InvalidArgument, fields: ["event.tenant_id"], messageHas: ["event.tenant_id"] },
  },
  {
    label: "PublishJobEvent · RESOURCE_EXHAUSTED (event over 256 KiB)",
    phase: "up",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: () => call(m.publishJobEvent, { event: oversizeEvent("oversize") }),
    expect: { code: Code.ResourceExhausted, fields: ["event.result"] },
  },
  {
    label: "PublishJobEvent · UNAVAILABLE (NATS stopped)",
    phase: "nats-down",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) => call(m.publishJobEvent, { event: event(c, "outage") }),
    expect: { code: Code.Unavailable, retryInfo: true },
  },
  // Publishing never lets a deadline run out while NATS hangs: it gives up just before the
  // deadline that bounds it (the server's, or the caller's less a margin) with UNAVAILABLE and
  // RetryInfo, which every client retries. A caller's own deadline is shown on GetPortalLink below,
  // where nothing answers before it.
  {
    label: "PublishJobEvent · UNAVAILABLE (server deadline, NATS frozen: gives up just before it)",
    phase: "nats-frozen",
    target: "short-deadline",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) => call(m.publishJobEvent, { event: event(c, "frozen-server-deadline") }),
    expect: { code: Code.Unavailable, retryInfo: true },
  },

  // ---------------------------------------------------------------- PublishJobEvents
  {
    label: "PublishJobEvents · OK",
    phase: "up",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) => call(m.publishJobEvents, { events: [event(c, "batch-a"), event(c, "batch-b")] }),
    expect: {
      code: OK,
      response: (r) => {
        expect(r.results).toHaveLength(2);
        expectStored(r.results?.[0], "batch-a.created");
        expectStored(r.results?.[1], "batch-b.created");
      },
    },
  },
  {
    label: "PublishJobEvents · UNAUTHENTICATED (no token)",
    phase: "up",
    target: "main",
    credential: "none",
    timeoutMs: 15_000,
    call: (c) => call(m.publishJobEvents, { events: [event(c, "batch-noauth")] }),
    expect: { code: Code.Unauthenticated, messageHas: ["Authorization: Bearer"] },
  },
  {
    label: "PublishJobEvents · PERMISSION_DENIED (customer key)",
    phase: "up",
    target: "main",
    credential: "customer",
    timeoutMs: 15_000,
    call: () => call(m.publishJobEvents, { events: [event("customer", "batch-denied")] }),
    expect: { code: Code.PermissionDenied },
  },
  {
    label: "PublishJobEvents · INVALID_ARGUMENT (no events)",
    phase: "up",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: () => call(m.publishJobEvents, { events: [] }),
    expect: { code: Code.InvalidArgument, fields: ["events"] },
  },
  {
    label: "PublishJobEvents · RESOURCE_EXHAUSTED (1,001 events)",
    phase: "up",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) =>
      call(m.publishJobEvents, {
        events: Array.from({ length: 1_001 }, (_, i) => event(c, `many-${i}`)),
      }),
    expect: { code: Code.ResourceExhausted, fields: ["events"] },
  },
  {
    label: "PublishJobEvents · partial failure (per-event INVALID_ARGUMENT, RESOURCE_EXHAUSTED)",
    phase: "up",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) =>
      call(m.publishJobEvents, {
        events: [
          event(c, "partial-ok"),
          { ...event(c, "partial-invalid"), tenantId: "" },
          oversizeEvent("partial-oversize"),
        ],
      }),
    expect: {
      code: OK,
      response: (r) => {
        expect(r.results).toHaveLength(3);
        expectStored(r.results?.[0], "partial-ok.created");
        expectRefused(r.results?.[1], Code.InvalidArgument, { fields: ["events[1].tenant_id"] });
        expectRefused(r.results?.[2], Code.ResourceExhausted, { fields: ["events[2].result"] });
      },
    },
  },
  {
    label: "PublishJobEvents · partial failure (per-event UNAVAILABLE, NATS stopped)",
    phase: "nats-down",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) =>
      call(m.publishJobEvents, {
        events: [event(c, "batch-outage"), { ...event(c, "batch-outage-invalid"), tenantId: "" }],
      }),
    expect: {
      code: OK,
      response: (r) => {
        expect(r.results).toHaveLength(2);
        expectRefused(r.results?.[0], Code.Unavailable, { retryInfo: true });
        expectRefused(r.results?.[1], Code.InvalidArgument, { fields: ["events[1].tenant_id"] });
      },
    },
  },
  {
    label: "PublishJobEvents · partial failure (per-event UNAVAILABLE, server deadline, NATS frozen)",
    phase: "nats-frozen",
    target: "short-deadline",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) => call(m.publishJobEvents, { events: [event(c, "batch-frozen")] }),
    expect: {
      code: OK,
      response: (r) => {
        expect(r.results).toHaveLength(1);
        expectRefused(r.results?.[0], Code.Unavailable, { retryInfo: true });
      },
    },
  },

  // ---------------------------------------------------------------- GetPortalLink
  {
    label: "GetPortalLink · OK (service token)",
    phase: "up",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) => call(m.getPortalLink, { tenantId: tenant(c) }),
    expect: {
      code: OK,
      response: (r) => expect(r.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/portal\/login\//),
    },
  },
  {
    label: "GetPortalLink · OK (customer key)",
    phase: "up",
    target: "main",
    credential: "customer",
    timeoutMs: 15_000,
    call: () => call(m.getPortalLink, {}),
    expect: {
      code: OK,
      response: (r) => expect(r.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/portal\/login\//),
    },
  },
  {
    label: "GetPortalLink · UNAUTHENTICATED (no token)",
    phase: "up",
    target: "short-deadline",
    credential: "none",
    timeoutMs: 15_000,
    call: (c) => call(m.getPortalLink, { tenantId: tenant(c) }),
    expect: { code: Code.Unauthenticated, messageHas: ["Authorization: Bearer"] },
  },
  {
    label: "GetPortalLink · UNAUTHENTICATED (wrong token)",
    phase: "up",
    target: "short-deadline",
    credential: "wrong",
    timeoutMs: 15_000,
    call: (c) => call(m.getPortalLink, { tenantId: tenant(c) }),
    expect: { code: Code.Unauthenticated },
  },
  {
    label: "GetPortalLink · PERMISSION_DENIED (customer key, another tenant)",
    phase: "up",
    target: "main",
    credential: "customer",
    timeoutMs: 15_000,
    call: (c) => call(m.getPortalLink, { tenantId: tenant(c) }),
    expect: { code: Code.PermissionDenied },
  },
  {
    label: "GetPortalLink · INVALID_ARGUMENT (tenant Svix reserves)",
    phase: "up",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: () => call(m.getPortalLink, { tenantId: "app_x" }),
    expect: { code: Code.InvalidArgument, fields: ["tenant_id"] },
  },
  {
    label: "GetPortalLink · UNAVAILABLE (Svix answers 503)",
    phase: "svix-down",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) => call(m.getPortalLink, { tenantId: `${tenant(c)}-svix-down` }),
    expect: { code: Code.Unavailable, retryInfo: true },
  },
  {
    label: "GetPortalLink · DEADLINE_EXCEEDED (server deadline, Svix slow)",
    phase: "svix-slow",
    target: "short-deadline",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) => call(m.getPortalLink, { tenantId: `${tenant(c)}-svix-slow` }),
    expect: { code: Code.DeadlineExceeded, messageHas: [`${SHORT_RPC_DEADLINE_MS}`] },
  },
  {
    label: "GetPortalLink · DEADLINE_EXCEEDED (client deadline, Svix slow)",
    phase: "svix-slow",
    target: "main",
    credential: "service",
    timeoutMs: 1_000,
    call: (c) => call(m.getPortalLink, { tenantId: `${tenant(c)}-svix-slow-client` }),
    expect: { code: Code.DeadlineExceeded, clientDeadline: true },
  },

  // ---------------------------------------------------------------- ListJobDeliveries
  {
    label: "ListJobDeliveries · OK (a job never seen)",
    phase: "up",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) => call(m.listJobDeliveries, { tenantId: tenant(c), jobId: "never-seen" }),
    expect: { code: OK, response: (r) => expect(r).toEqual({}) },
  },
  {
    label: "ListJobDeliveries · UNAUTHENTICATED (wrong token)",
    phase: "up",
    target: "short-deadline",
    credential: "wrong",
    timeoutMs: 15_000,
    call: (c) => call(m.listJobDeliveries, { tenantId: tenant(c), jobId: "job" }),
    expect: { code: Code.Unauthenticated },
  },
  {
    label: "ListJobDeliveries · PERMISSION_DENIED (customer key, another tenant)",
    phase: "up",
    target: "main",
    credential: "customer",
    timeoutMs: 15_000,
    call: (c) => call(m.listJobDeliveries, { tenantId: tenant(c), jobId: "job" }),
    expect: { code: Code.PermissionDenied },
  },
  {
    label: "ListJobDeliveries · INVALID_ARGUMENT (job id with a dot)",
    phase: "up",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) => call(m.listJobDeliveries, { tenantId: tenant(c), jobId: "bad.job" }),
    expect: { code: Code.InvalidArgument, fields: ["job_id"] },
  },
  {
    label: "ListJobDeliveries · UNAVAILABLE (NATS stopped, 5 s deadline)",
    phase: "nats-down",
    target: "main",
    credential: "service",
    // A caller's ordinary deadline: the service must say UNAVAILABLE within it, as publishing does
    // (a fifth of it, at most a second, before it).
    timeoutMs: 5_000,
    call: (c) => call(m.listJobDeliveries, { tenantId: tenant(c), jobId: "job" }),
    expect: { code: Code.Unavailable, retryInfo: true },
  },

  // ---------------------------------------------------------------- RevokePortalSessions
  {
    label: "RevokePortalSessions · OK",
    phase: "up",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: (c) => call(m.revokePortalSessions, { tenantId: tenant(c) }),
    expect: { code: OK, response: (r) => expect(r).toEqual({}) },
  },
  {
    label: "RevokePortalSessions · PERMISSION_DENIED (customer key)",
    phase: "up",
    target: "main",
    credential: "customer",
    timeoutMs: 15_000,
    call: () => call(m.revokePortalSessions, { tenantId: CUSTOMER_TENANT }),
    expect: { code: Code.PermissionDenied },
  },
  {
    label: "RevokePortalSessions · INVALID_ARGUMENT (no tenant)",
    phase: "up",
    target: "main",
    credential: "service",
    timeoutMs: 15_000,
    call: () => call(m.revokePortalSessions, { tenantId: "" }),
    expect: { code: Code.InvalidArgument, fields: ["tenant_id"] },
  },
];
