import type { ServerResponse } from "node:http";
import type { Registry } from "prom-client";
import type { NodeRequest as Req, NodeResponse as Res } from "./listener-parts.js";
import { isReady, type Readiness } from "./readiness.js";

/**
 * Plain HTTP beside the RPCs: /healthz (the process answers), /readyz (it can do its job: 503 with
 * the failing checks otherwise), /metrics (Prometheus text) and, when configured, Svix's operational
 * webhooks (POST /svix/operational-webhooks). Anything else is 404.
 */
export function httpEndpoints(o: {
  readiness: Readiness;
  registry: Registry;
  /** `POST /svix/operational-webhooks`; without it (no secret configured) that path is 404. */
  operationalWebhooks?: ((req: Req, res: Res) => void) | undefined;
}) {
  return (req: Req, res: Res): void => {
    const path = (req.url ?? "").split("?", 1)[0];
    if (path === "/svix/operational-webhooks" && req.method === "POST" && o.operationalWebhooks) {
      return o.operationalWebhooks(req, res);
    }
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 404, "text/plain", "not found\n");
    switch (path) {
      case "/healthz":
        return send(res, 200, "application/json", `${JSON.stringify({ status: "ok" })}\n`);
      case "/readyz": {
        const checks = o.readiness.checks();
        const ready = isReady(checks);
        const body = Object.fromEntries(
          Object.entries(checks).map(([name, c]) => [
            name,
            c.detail ? { ok: c.ok, detail: c.detail } : { ok: c.ok },
          ]),
        );
        return send(
          res,
          ready ? 200 : 503,
          "application/json",
          `${JSON.stringify({ ready, checks: body })}\n`,
        );
      }
      case "/metrics":
        o.registry.metrics().then(
          (text) => send(res, 200, o.registry.contentType, text),
          () => send(res, 500, "text/plain", "metrics unavailable\n"),
        );
        return;
      default:
        return send(res, 404, "text/plain", "not found\n");
    }
  };
}

function send(res: Res, status: number, contentType: string, body: string): void {
  // The http and http2 compat responses share these methods, but not one TypeScript signature.
  const r = res as ServerResponse;
  r.writeHead(status, { "content-type": contentType, "cache-control": "no-store" });
  r.end(body);
}
