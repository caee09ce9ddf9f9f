import type { ServerResponse } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import { Counter, type Registry } from "prom-client";
import { Webhook } from "svix";
import { opsSubject } from "../events/subjects.js";
import { HEADER } from "../events/wire-names.js";
import type { Logger } from "../log/logger.js";
import { readBody } from "./body-reader.js";
import type { NodeRequest as Req, NodeResponse as Res } from "./listener-parts.js";
import { createMemoryBudget } from "./memory-budget.js";
import { closeAfterAnswer, stopSending } from "./unread-body.js";

/** Svix's operational payloads are a few hundred bytes; anything near this is not one. */
const MAX_BODY_BYTES = 64 * 1024;

/** Svix's signature tolerance: a replay older than this fails verification anyway. */
const REPLAY_WINDOW_MS = 5 * 60_000;
/** Ids remembered at most; far above what Svix sends in five minutes. */
const MAX_REMEMBERED_IDS = 50_000;

export interface OperationalWebhooksOptions {
  /** `whsec_…`, from Svix's operational-webhook endpoint settings. */
  secret: string;
  /** Core NATS publish with headers (no stream captures `jobhooks.ops.>` by default: listeners react live). */
  publish(subject: string, body: Uint8Array, headers: Record<string, string>): void;
  now?: () => number;
  /** False while NATS is down: answer 503 so Svix retries later instead of losing the event. */
  connected(): boolean;
  registry: Registry;
  log: Logger;
  /** The whole body must arrive within this (JOBHOOKS_BODY_DEADLINE_MS); a trickle is cut off. */
  bodyDeadlineMs: number;
}

/** Bodies of this path being read at once: 64 of the largest. Anyone can post here before a signature is checked. */
const BODIES_IN_FLIGHT_BYTES = 64 * MAX_BODY_BYTES;

/**
 * `POST /svix/operational-webhooks`: Svix tells us about the tenants' endpoints (`endpoint.disabled`,
 * `message.attempt.exhausted`, `…failing`, `…recovered`). A request is believed only with a valid
 * Standard Webhooks signature made with the operational-webhook secret, fresh within Svix's
 * 5-minute tolerance (the SDK's verifier checks both); then its body goes, unchanged, to NATS as
 * `jobhooks.ops.<tenant>.<type>` for internal services to react to, and is counted by type.
 *
 * Once: Svix retries a webhook it got no 2xx for, and anyone who saw a signed request can replay it
 * within the tolerance. A `svix-id` already published in that window is acknowledged (204) and not
 * published again, and the id travels as `Nats-Msg-Id` (a JetStream stream capturing
 * `jobhooks.ops.>` de-duplicates it across replicas) and as `Svix-Id`, for listeners to de-duplicate.
 */
export function operationalWebhooks(o: OperationalWebhooksOptions): (req: Req, res: Res) => void {
  const verifier = new Webhook(o.secret);
  const now = o.now ?? Date.now;
  // svix-id → when it was published; insertion order is age order, so the oldest go first.
  const published = new Map<string, number>();
  const seenRecently = (id: string): boolean => {
    const at = published.get(id);
    return at !== undefined && now() - at < REPLAY_WINDOW_MS;
  };
  const remember = (id: string): void => {
    published.set(id, now());
    for (const [old, at] of published) {
      if (published.size <= MAX_REMEMBERED_IDS && now() - at < REPLAY_WINDOW_MS) break;
      published.delete(old);
    }
  };
  const received = new Counter({
    name: "jobhooks_svix_operational_webhooks_total",
    help: "Svix operational webhooks received (signature verified) and published to NATS, by type",
    labelNames: ["type"] as const,
    registers: [o.registry],
  });
  const rejected = new Counter({
    name: "jobhooks_svix_operational_webhooks_rejected_total",
    help: "Operational webhook requests refused: signature (401), malformed or unreadable (400), too_slow (408), too_large (413), nats_unavailable (503)",
    labelNames: ["reason"] as const,
    registers: [o.registry],
  });

  const replayed = new Counter({
    name: "jobhooks_svix_operational_webhooks_replayed_total",
    help: "Operational webhooks whose svix-id was already published within the signature window: acknowledged, not published again",
    registers: [o.registry],
  });

  const budget = createMemoryBudget(BODIES_IN_FLIGHT_BYTES);
  return (req, res) => {
    readBody(req, {
      maxBytes: MAX_BODY_BYTES,
      envelopeBytes: 0,
      deadlineMs: o.bodyDeadlineMs,
      budget,
      procedure: "the operational webhook",
    }).then(
      ({ bytes: body, reserved }) => {
        budget.release(reserved);
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers[k] = v;
        try {
          verifier.verify(body, headers);
        } catch {
          // Nothing about the request is logged beyond the fact: it may be an attacker's probe.
          rejected.inc({ reason: "signature" });
          o.log.warn("operational webhook refused: missing, stale or invalid signature");
          return send(res, 401, "invalid signature\n");
        }
        const event = parseEvent(body);
        if (!event) {
          rejected.inc({ reason: "malformed" });
          return send(res, 400, "not an operational webhook\n");
        }
        if (!o.connected()) {
          rejected.inc({ reason: "nats_unavailable" });
          return send(res, 503, "NATS unavailable; retry\n");
        }
        const svixId = headers["svix-id"] ?? headers["webhook-id"] ?? "";
        if (seenRecently(svixId)) {
          replayed.inc();
          return send(res, 204, "");
        }
        const subject = opsSubject(event.tenant, event.type);
        o.publish(subject, body, { [HEADER.natsMsgId]: svixId, [HEADER.svixId]: svixId });
        remember(svixId);
        received.inc({ type: event.type });
        o.log.info(
          { type: event.type, tenant: event.tenant, subject, svix_id: svixId },
          "operational webhook",
        );
        return send(res, 204, "");
      },
      (err: unknown) => {
        const code = ConnectError.from(err).code;
        const [status, reason] =
          code === Code.ResourceExhausted
            ? ([413, "too_large"] as const)
            : code === Code.DeadlineExceeded
              ? ([408, "too_slow"] as const)
              : ([400, "unreadable"] as const);
        rejected.inc({ reason });
        if (res.headersSent) return;
        const close = closeAfterAnswer(req, res);
        send(res, status, `${reason.replace("_", " ")}\n`, close ? { connection: "close" } : {});
        stopSending(res);
      },
    );
  };
}

/** `{type, data: {appUid?, appId?}}`: the tenant is the app's uid (our tenant id), else its id. */
function parseEvent(body: Buffer): { type: string; tenant: string } | undefined {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { type?: unknown; data?: Record<string, unknown> };
    if (typeof parsed.type !== "string" || parsed.type === "") return undefined;
    const data = parsed.data ?? {};
    const tenant =
      typeof data.appUid === "string" && data.appUid !== ""
        ? data.appUid
        : typeof data.appId === "string"
          ? data.appId
          : "_";
    return { type: parsed.type, tenant };
  } catch {
    return undefined;
  }
}

function send(res: Res, status: number, body: string, extra: Record<string, string> = {}): void {
  const r = res as ServerResponse;
  r.writeHead(status, { "content-type": "text/plain", "cache-control": "no-store", ...extra });
  r.end(body);
}
