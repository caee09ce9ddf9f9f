import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SpanKind } from "@opentelemetry/api";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import type { SvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { tracingRequested } from "../../src/tracing/tracing.js";
import { until } from "../support/poll.js";
import { type RelayStack, startRelayStack } from "../support/relay-stack.js";
import { SERVICE_TOKEN, type TestService } from "../support/service.js";

const exporter = new InMemorySpanExporter();
// The SDK as `jobhooks serve` starts it from OTEL_* variables, with an in-memory exporter to read.
const sdk = new NodeSDK({
  serviceName: "jobhooks-test",
  spanProcessors: [new SimpleSpanProcessor({ exporter })],
});
let svix: SvixStandIn;
let svc: TestService;
let stack: RelayStack;

beforeAll(async () => {
  sdk.start();
  stack = await startRelayStack();
  ({ svix, svc } = stack);
});

afterAll(async () => {
  await stack?.stop();
  await sdk.shutdown();
});

describe("tracing", () => {
  it("is off unless the OTEL_* variables ask for it", () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: "none" })).toBe(false);
    expect(tracingRequested({ OTEL_TRACES_EXPORTER: "otlp" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://x", OTEL_SDK_DISABLED: "true" })).toBe(
      false,
    );
  });

  it("follows one event from the caller's PublishJobEvent through NATS to the Svix attempt", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const callerSpanId = "00f067aa0ba902b7";
    const client = createClient(WebhookService, createGrpcTransport({ baseUrl: svc.url }));
    const res = await client.publishJobEvent(
      { event: { tenantId: "traced", jobId: "job-1", status: JobStatus.CREATED } },
      {
        headers: {
          authorization: `Bearer ${SERVICE_TOKEN}`,
          traceparent: `00-${traceId}-${callerSpanId}-01`,
        },
      },
    );
    await until("the message at Svix", () => svix.state.messages("traced").length === 1);
    await until(
      "the relay attempt span",
      () => exporter.getFinishedSpans().some((s) => s.name === "jobhooks relay attempt"),
      { timeoutMs: 5_000 },
    );

    const spans = exporter.getFinishedSpans();
    const rpc = spans.find((s) => s.name === "jobhooks.v1.WebhookService/PublishJobEvent");
    expect(rpc?.kind).toBe(SpanKind.SERVER);
    expect(rpc?.spanContext().traceId).toBe(traceId);
    expect(rpc?.parentSpanContext?.spanId).toBe(callerSpanId);

    const attempt = spans.find(
      (s) => s.name === "jobhooks relay attempt" && s.attributes["jobhooks.event_id"] === res.eventId,
    );
    expect(attempt?.kind).toBe(SpanKind.CONSUMER);
    expect(attempt?.attributes["jobhooks.outcome"]).toBe("created");
    expect(attempt?.links.map((l) => l.context.traceId)).toEqual([traceId]);
    expect(attempt?.links[0]?.context.spanId).toBe(rpc?.spanContext().spanId);
  });
});
