import { newId } from "./ids.js";
import { signatureHeaders } from "./signing.js";

/**
 * Svix's operational webhooks, as the stand-in sends them: `{type, data}` (the openapi.json
 * `EndpointDisabledEvent`, `MessageAttempt…Event` shapes) POSTed to one URL, signed the Standard
 * Webhooks way with the operational endpoint's secret. Svix retries these too; the stand-in tries
 * a few times, quickly, then logs and drops: they are notifications, not data.
 */

export type OperationalEventType =
  | "endpoint.disabled"
  | "message.attempt.exhausted"
  | "message.attempt.failing"
  | "message.attempt.recovered";

export interface OperationalWebhookTarget {
  url: string;
  /** `whsec_…` */
  secret: string;
}

export type OperationalWebhookSender = (type: OperationalEventType, data: Record<string, unknown>) => void;

const TRIES = 3;
const TIMEOUT_MS = 5_000;

export function operationalWebhookSender(
  target: OperationalWebhookTarget,
  log?: (obj: Record<string, unknown>, msg: string) => void,
): { send: OperationalWebhookSender; stop(): void } {
  const controllers = new Set<AbortController>();
  let stopped = false;

  async function post(type: OperationalEventType, data: Record<string, unknown>): Promise<void> {
    const body = JSON.stringify({ type, data });
    const msgId = newId("msg");
    for (let attempt = 1; attempt <= TRIES && !stopped; attempt++) {
      const controller = new AbortController();
      controllers.add(controller);
      const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
      try {
        const res = await fetch(target.url, {
          method: "POST",
          headers: {
            ...signatureHeaders([target.secret], msgId, Math.floor(Date.now() / 1000), body),
            "content-type": "application/json",
            "user-agent": "Svix-Webhooks/1.0 (jobhooks stand-in; operational)",
          },
          body,
          signal: controller.signal,
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return;
        log?.({ type, status: res.status, attempt }, "operational webhook refused");
      } catch (error) {
        log?.({ type, error: String(error), attempt }, "operational webhook not delivered");
      } finally {
        clearTimeout(timer);
        controllers.delete(controller);
      }
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }

  return {
    send(type, data) {
      if (!stopped) void post(type, data);
    },
    stop() {
      stopped = true;
      for (const c of controllers) c.abort();
    },
  };
}
