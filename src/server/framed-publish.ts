import type { EventEmitter } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type PublishJobEventRequest,
  type PublishJobEventResponse,
  WebhookService,
} from "../gen/jobhooks/v1/webhooks_pb.js";
import { type CallRules, deadlineOf, runCall } from "./call-rules.js";
import type { Admitted } from "./rpc-edge.js";

/** What a fast framing of PublishJobEvent is given: the service call and the call rules. */
export interface PublishFramingOptions {
  publish(
    req: PublishJobEventRequest,
    timeoutMs: number | undefined,
    signal: AbortSignal,
  ): Promise<PublishJobEventResponse>;
  rules: CallRules;
  /** False while something needs Connect's interceptors for this call too (tracing on). */
  enabled(): boolean;
}

/** How one wire format reads a request and writes an answer; the rest is the same for every format. */
export interface PublishFraming {
  /** The caller's deadline from the headers, in ms; throws a ConnectError for a malformed one. */
  timeoutMs(): number | undefined;
  decode(body: Buffer): PublishJobEventRequest;
  respond(response: PublishJobEventResponse): void;
  respondError(error: ConnectError): void;
  /** Emits "close" when the caller goes away: the call is then aborted. */
  closes: EventEmitter;
}

const methodName = `${WebhookService.typeName}/${WebhookService.method.publishJobEvent.name}`;

/**
 * A framed PublishJobEvent: answers a refusal the edge decided, else decodes the body, runs the
 * call under the call rules (deadline, metrics) and answers — in the framing's own wire format.
 */
export async function serveFramedPublish(
  admitted: Admitted,
  framing: PublishFraming,
  o: PublishFramingOptions,
): Promise<void> {
  if (admitted.refusal || !admitted.principal || !admitted.body) {
    framing.respondError(admitted.refusal ?? new ConnectError("not authenticated", Code.Unauthenticated));
    return;
  }
  const abort = new AbortController();
  const onClose = () => abort.abort();
  framing.closes.once("close", onClose);
  try {
    const timeout = framing.timeoutMs();
    const request = framing.decode(admitted.body);
    const deadlineMs = deadlineOf(o.rules, timeout);
    const response = await runCall(o.rules, methodName, deadlineMs, () =>
      o.publish(request, deadlineMs, abort.signal),
    );
    framing.respond(response);
  } catch (err) {
    framing.respondError(ConnectError.from(err));
  } finally {
    framing.closes.off("close", onClose);
  }
}
