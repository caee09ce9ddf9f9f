import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { MsgHdrs } from "@nats-io/transport-node";
import {
  type Context,
  context,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";

/**
 * Spans that let one event be followed from PublishJobEvent through NATS to each Svix attempt:
 * a server span per RPC (continuing the caller's traceparent), the trace context carried in the
 * stored message's NATS headers, and a consumer span per relay attempt linked to it. Links, not
 * parents: one publish can lead to many attempts, minutes or hours later.
 */
const tracer = trace.getTracer("jobhooks");

export function rpcTracing(): Interceptor {
  return (next) => async (req) => {
    const parent = propagation.extract(ROOT_CONTEXT, req.header, {
      get: (h, key) => h.get(key) ?? undefined,
      keys: (h) => [...h.keys()],
    });
    const span = tracer.startSpan(
      `${req.service.typeName}/${req.method.name}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "rpc.system": "connect_rpc",
          "rpc.service": req.service.typeName,
          "rpc.method": req.method.name,
        },
      },
      parent,
    );
    try {
      return await context.with(trace.setSpan(parent, span), () => next(req));
    } catch (err) {
      const code = ConnectError.from(err).code;
      span.setAttribute("rpc.connect_rpc.error_code", Code[code] ?? String(code));
      span.setStatus({ code: SpanStatusCode.ERROR, message: ConnectError.from(err).rawMessage });
      throw err;
    } finally {
      span.end();
    }
  };
}

/** Writes the active trace context (W3C traceparent) into NATS headers. */
export function injectTraceContext(headers: MsgHdrs, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, { set: (h, key, value) => h.set(key, value) });
}

/** A span for one relay attempt, linked to the trace that published the event (if any). */
export function startRelaySpan(
  headers: MsgHdrs | undefined,
  attributes: Record<string, string | number>,
): Span {
  const links: Link[] = [];
  if (headers) {
    const published = propagation.extract(ROOT_CONTEXT, headers, {
      get: (h, key) => h.get(key) || undefined,
      keys: (h) => h.keys(),
    });
    const spanContext = trace.getSpanContext(published);
    if (spanContext) links.push({ context: spanContext });
  }
  return tracer.startSpan(
    "jobhooks relay attempt",
    { kind: SpanKind.CONSUMER, links, attributes },
    ROOT_CONTEXT,
  );
}

export function endRelaySpan(span: Span, outcome: string, error?: string): void {
  span.setAttribute("jobhooks.outcome", outcome);
  if (error) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  span.end();
}
