import type { DevStack } from "./dev-stack.js";

/**
 * What `jobhooks dev` prints once the stack is up: where everything is and what to type next. The
 * `export NAME=value` lines are meant to be pasted into a shell (the commands below use them), and
 * tests read them back, so their names are part of the output's contract.
 */

const RPC = "jobhooks.v1.WebhookService";

/** The values a shell needs for the commands below, as `export` lines. */
export function devStackExports(stack: DevStack): Record<string, string> {
  return {
    JOBHOOKS_URL: stack.serviceUrl,
    SERVICE_TOKEN: stack.serviceToken,
    API_KEY: stack.apiKey,
    NATS_URL: stack.natsUrl,
    SVIX_URL: stack.svixUrl,
    SVIX_TOKEN: stack.svixToken,
  };
}

export function devStackBanner(stack: DevStack): string {
  const t = stack.tenant;
  const exports = Object.entries(devStackExports(stack))
    .map(([name, value]) => `  export ${name}=${value}`)
    .join("\n");
  const event = `{"event":{"tenantId":"${t}","jobId":"job_1","status":"JOB_STATUS_COMPLETED","sequence":"1","result":{"pages":12}}}`;
  return `
jobhooks dev: the local stack is up. Ctrl-C stops all of it.

  service   ${stack.serviceUrl}   gRPC, gRPC-Web, Connect; /healthz /readyz /metrics
  NATS      ${stack.natsUrl}   JetStream, temporary store
  Svix      ${stack.svixUrl}   stand-in: signs and delivers webhooks
  tenant    ${t}

1. Open the webhook portal of tenant "${t}" (the link logs in once):
  ${stack.portalUrl}
  Add an endpoint there. To watch signatures being verified, run a receiver example, e.g.
    cd examples/express-receiver && npm install && WEBHOOK_SECRET=<the endpoint's secret> npx tsx server.ts
  and use http://127.0.0.1:3000/webhook as the endpoint URL (see examples/*/README.md).

2. Paste these into a shell:
${exports}

3. Publish a job event as an internal service (Connect JSON):
  curl -sS $JOBHOOKS_URL/${RPC}/PublishJobEvent \\
    -H "Authorization: Bearer $SERVICE_TOKEN" -H 'content-type: application/json' \\
    -d '${event}'
  The same event over NATS (with the NATS CLI, https://github.com/nats-io/natscli):
  nats --server $NATS_URL pub jobs.${t}.job_1.completed '{"sequence":"1","result":{"pages":12}}'
  Both carry event id job_1.completed.1, so the endpoint receives it once.

4. A new portal link, as the customer does it (tenant "${t}"'s API key):
  curl -sS $JOBHOOKS_URL/${RPC}/GetPortalLink \\
    -H "Authorization: Bearer $API_KEY" -H 'content-type: application/json' -d '{}'

The portal lists every message with its delivery attempts and refreshes by itself.
Logs are JSON lines on stderr (LOG_LEVEL=info for more).
`;
}
