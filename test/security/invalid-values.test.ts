import { create, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { decodeNatsEvent } from "../../src/events/decode-nats-event.js";
import { BadRequestSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { JobEventSchema, JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { SERVICE_TOKEN, useServiceWithNats } from "../support/service.js";

/** Issue 11.3: a body value invalid for its type is refused, never dropped for what the subject says. */
const text = (s: string) => new TextEncoder().encode(s);
const decode = (body: string, status = "completed") =>
  decodeNatsEvent({
    subject: { tenantId: "acme", jobId: "job_1", status },
    data: text(body),
    contentType: "application/json",
    storedAtMs: 1_700_000_000_000,
    maxPayloadBytes: 64 * 1024,
  });

describe("a NATS body whose values its schema does not allow is dead-lettered as invalid", () => {
  it.each([
    ["an unknown status name", '{"status":"JOB_STATUS_DONE"}', "status"],
    ["a status in the wrong case of word", '{"status":"finished"}', "status"],
    ["a string for a number", '{"sequence":"seven"}', "sequence"],
    ["a number for a string", '{"tenantId":7}', "tenant_id"],
    ["a metadata value that is not a string", '{"metadata":{"a":1}}', "metadata"],
    ["an error code that is an object", '{"status":"JOB_STATUS_FAILED","error":{"code":{}}}', "error.code"],
  ])("%s names the field", (_name, body, field) => {
    const r = decode(body, body.includes("FAILED") ? "failed" : "completed");
    expect(r.kind).toBe("dead");
    if (r.kind !== "dead") return;
    expect(r.reason).toBe("invalid");
    expect(r.violations?.map((v) => v.field)).toContain(field);
  });

  it("keys jobhooks does not know are still ignored", () => {
    const r = decode('{"status":"JOB_STATUS_COMPLETED","extra":{"any":"thing"}}');
    expect(r.kind).toBe("event");
  });
});

describe("the RPC path refuses the same values with INVALID_ARGUMENT naming the field", () => {
  const stack = useServiceWithNats();

  it("Connect JSON with an unknown status name", async () => {
    const res = await fetch(`${stack.svc.url}/jobhooks.v1.WebhookService/PublishJobEvent`, {
      method: "POST",
      headers: { authorization: `Bearer ${SERVICE_TOKEN}`, "content-type": "application/json" },
      body: '{"event":{"tenantId":"acme","jobId":"j","status":"JOB_STATUS_DONE"}}',
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/^event\.status: /);
  });

  it("gRPC with a status number outside the enum", async () => {
    const client = createClient(WebhookService, createGrpcTransport({ baseUrl: stack.svc.url }));
    const err = await client
      .publishJobEvent(
        { event: { tenantId: "acme", jobId: "j", status: 42 as JobStatus } },
        { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } },
      )
      .catch((e: unknown) => ConnectError.from(e));
    expect(err).toBeInstanceOf(ConnectError);
    const e = err as ConnectError;
    expect(e.code).toBe(Code.InvalidArgument);
    expect(e.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("event.status");
    // The body itself is well-formed JSON for any value the enum has.
    expect(toJsonString(JobEventSchema, create(JobEventSchema, { status: JobStatus.CREATED }))).toContain(
      "JOB_STATUS_CREATED",
    );
  });
});
