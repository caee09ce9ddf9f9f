import { createHash } from "node:crypto";
import { MessageStatus, type Svix } from "svix";
import { callFailure, type SvixCallFailure, type TimedCall, untimed } from "./call-failure.js";
import { classifySvixError } from "./classify.js";

/**
 * One message's delivery, as Svix knows it: the message (looked up by its eventId, which is the
 * jobhooks event id), where Svix sent it (list-attempted-destinations: per endpoint status and next
 * attempt) and its attempt log (list-by-msg: how many tries, the last HTTP answer and when).
 */

/** Endpoints listed per message; Svix's page limit is 250, a support answer needs far fewer. */
export const MAX_ENDPOINTS_PER_EVENT = 50;
/** Attempts read per message (one page, newest first): enough for Svix's 8-try schedule × endpoints. */
const MAX_ATTEMPTS_PER_EVENT = 250;

export type EndpointDeliveryState = "succeeded" | "pending" | "failing" | "failed";

export interface EndpointDeliveryInfo {
  endpointId: string;
  url: string;
  state: EndpointDeliveryState;
  /** 0 when no attempt answered (or none was made). */
  lastResponseStatus: number;
  attemptCount: number;
  lastAttemptAt: Date | undefined;
  nextAttemptAt: Date | undefined;
  disabled: boolean;
}

export type MessageDeliveryOutcome =
  | {
      kind: "found";
      msgId: string;
      timestamp: Date;
      endpoints: EndpointDeliveryInfo[];
      /** More endpoints than MAX_ENDPOINTS_PER_EVENT. */
      truncated: boolean;
    }
  /** Svix has no message with this eventId (or no application for the tenant). */
  | { kind: "absent" }
  | SvixCallFailure;

/** Tagged messages listed per job (one page). */
export const MAX_TAGGED_MESSAGES = 50;
const SVIX_TAG_MAX = 128;

/**
 * The Svix message tag that marks a job's messages: `job.<job_id>`, or a digest when that is over
 * Svix's 128 characters. A relay that tags its messages with it lets ListJobDeliveries find relayed
 * events whose ids it cannot derive (publisher-chosen ids, sequences).
 */
export function jobTag(jobId: string): string {
  const tag = `job.${jobId}`;
  return tag.length <= SVIX_TAG_MAX ? tag : `job.h.${createHash("sha256").update(jobId).digest("base64url")}`;
}

export type TaggedMessagesOutcome =
  | { kind: "found"; messages: Array<{ eventId: string; eventType: string }>; truncated: boolean }
  | SvixCallFailure;

export interface SvixDeliveries {
  messageDeliveries(tenantId: string, eventId: string): Promise<MessageDeliveryOutcome>;
  /** The event ids of the tenant's messages tagged `jobTag(jobId)`, newest first. */
  jobMessages(tenantId: string, jobId: string): Promise<TaggedMessagesOutcome>;
}

export interface SvixDeliveriesOptions {
  sdk: Svix;
  /** Wraps each Svix call (the gateway's timing metrics); the SDK's requestTimeout bounds each. */
  timed?: TimedCall;
}

export function createSvixDeliveries(o: SvixDeliveriesOptions): SvixDeliveries {
  const timed = o.timed ?? untimed;
  return {
    async jobMessages(tenantId, jobId) {
      try {
        const page = await timed(() =>
          o.sdk.message.list(tenantId, {
            tag: jobTag(jobId),
            limit: MAX_TAGGED_MESSAGES,
            withContent: false,
          }),
        );
        return {
          kind: "found",
          truncated: !page.done,
          messages: page.data.flatMap((m) =>
            m.eventId ? [{ eventId: m.eventId, eventType: m.eventType }] : [],
          ),
        };
      } catch (err) {
        const failure = classifySvixError(err);
        if (failure.kind === "app_missing") return { kind: "found", messages: [], truncated: false };
        return callFailure(failure);
      }
    },

    async messageDeliveries(tenantId, eventId) {
      try {
        // The message API takes a message id or the eventId it was created with.
        const msg = await timed(() => o.sdk.message.get(tenantId, eventId, { withContent: false }));
        const [destinations, attempts] = await Promise.all([
          timed(() =>
            o.sdk.messageAttempt.listAttemptedDestinations(tenantId, msg.id, {
              limit: MAX_ENDPOINTS_PER_EVENT,
            }),
          ),
          timed(() =>
            o.sdk.messageAttempt.listByMsg(tenantId, msg.id, {
              limit: MAX_ATTEMPTS_PER_EVENT,
              withContent: false,
            }),
          ),
        ]);
        const byEndpoint = new Map<string, { count: number; last?: { status: number; at: Date } }>();
        // Svix lists attempts newest first: the first one seen per endpoint is its last.
        for (const a of attempts.data) {
          const seen = byEndpoint.get(a.endpointId) ?? { count: 0 };
          seen.count++;
          seen.last ??= { status: a.responseStatusCode, at: new Date(a.timestamp) };
          byEndpoint.set(a.endpointId, seen);
        }
        return {
          kind: "found",
          msgId: msg.id,
          timestamp: new Date(msg.timestamp),
          truncated: !destinations.done,
          endpoints: destinations.data.map((d) => {
            const seen = byEndpoint.get(d.id);
            return {
              endpointId: d.id,
              url: d.url,
              state: stateOf(d.status, seen?.count ?? 0),
              lastResponseStatus: seen?.last?.status ?? 0,
              attemptCount: seen?.count ?? 0,
              lastAttemptAt: seen?.last?.at,
              nextAttemptAt: d.nextAttempt ? new Date(d.nextAttempt) : undefined,
              disabled: d.disabled ?? false,
            };
          }),
        };
      } catch (err) {
        const failure = classifySvixError(err);
        // 404: no such message (or no application yet): Svix never got this event.
        if (failure.kind === "app_missing") return { kind: "absent" };
        return callFailure(failure);
      }
    },
  };
}

/**
 * Svix's per-destination status in our four words: Pending/Sending after a failed attempt means
 * Svix is still retrying (failing); Fail and Canceled mean it gave up.
 */
function stateOf(status: MessageStatus, attempts: number): EndpointDeliveryState {
  switch (status) {
    case MessageStatus.Success:
      return "succeeded";
    case MessageStatus.Fail:
    case MessageStatus.Canceled:
      return "failed";
    default:
      return attempts > 0 ? "failing" : "pending";
  }
}
