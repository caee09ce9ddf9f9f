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

export interface BannerOptions {
  /** The logs' destination and level, said once so nobody looks for them elsewhere. */
  logLevel: string;
  /** Where the example receiver will listen: 3000 unless that port is taken. */
  receiverPort: number;
  /** `--demo`: the receiver that already runs as an endpoint of the tenant; no steps by hand. */
  demo?: { receiverUrl: string; endpointId: string };
}

/** The steps of a first day, in the order they are done; every command carries the ports in use. */
export function devStackBanner(stack: DevStack, opts: BannerOptions): string {
  const t = stack.tenant;
  const receiverUrl = `http://127.0.0.1:${opts.receiverPort}/webhook`;
  const receiverEnv = opts.receiverPort === 3000 ? "" : `PORT=${opts.receiverPort} `;
  const notes = stack.notes.map((note) => `  note: ${note}\n`).join("");
  const header = `
jobhooks dev: the local stack is up. Ctrl-C stops all of it and deletes its temporary files.
${notes}
  service   ${stack.serviceUrl}   gRPC, gRPC-Web, Connect; /healthz /readyz /metrics
  NATS      ${stack.natsUrl}   JetStream, temporary store
  Svix      ${stack.svixUrl}   stand-in: signs and delivers webhooks
  tenant    ${t}
  logs      JSON lines on stderr at ${opts.logLevel} (e.g. LOG_LEVEL=debug npm run dev)
`;
  if (opts.demo)
    return `${header}  receiver  ${opts.demo.receiverUrl}   the example Express receiver, endpoint ${opts.demo.endpointId}

1. Tenant "${t}"'s webhook portal shows the endpoint, each message, its payload and delivery attempts
   (the link logs in once; step 3 shows how to get another):
     ${stack.portalUrl}
${publishSteps(stack, 2, 3, 'The receiver\'s lines appear here ("receiver:")')}
   To add an endpoint and start a receiver by hand instead: npm run dev (without --demo).
`;
  return `${header}
1. Open tenant "${t}"'s webhook portal (the link logs in once; step 5 shows how to get another):
     ${stack.portalUrl}
2. Add an endpoint there with the URL ${receiverUrl}
3. Copy its signing secret: "Reveal secret", then "Copy".
4. In a second terminal, at the repository root, start a receiver that verifies every signature
   (it asks for the secret):
     ${receiverEnv}npx tsx examples/express-receiver/server.ts
${publishSteps(stack, 5, 5, 'The receiver logs "processed"')}`;
}

/** Publishing an event (HTTP, then NATS) and a new portal link: the same in both first days. */
function publishSteps(stack: DevStack, step: number, linkStep: number, receiverNote: string): string {
  const t = stack.tenant;
  const exports = Object.entries(devStackExports(stack))
    .map(([name, value]) => `     export ${name}=${value}`)
    .join("\n");
  const event = `{"event":{"tenantId":"${t}","jobId":"job_1","status":"JOB_STATUS_COMPLETED","sequence":"1","result":{"pages":12}}}`;
  const link = `   A new portal link, as the customer gets one (tenant "${t}"'s API key):
     curl -sS $JOBHOOKS_URL/${RPC}/GetPortalLink \\
       -H "Authorization: Bearer $API_KEY" -H 'content-type: application/json' -d '{}'`;
  return `${step}. In ${step === 2 ? "another" : "a third"} terminal, at the repository root, paste these lines, then publish a job event:
${exports}
     curl -sS $JOBHOOKS_URL/${RPC}/PublishJobEvent \\
       -H "Authorization: Bearer $SERVICE_TOKEN" -H 'content-type: application/json' \\
       -d '${event}'
   ${receiverNote}; the portal shows the message and its delivery attempts.
   The same event over NATS (the repository's own NATS client; \`nats pub\` works alike):
     node scripts/nats-pub.mjs --server $NATS_URL jobs.${t}.job_1.completed '{"sequence":"1","result":{"pages":12}}'
   Both carry event id job_1.completed.1, so the endpoint receives it once.
${linkStep === step ? link : link.replace("   A new portal link", `${linkStep}. A new portal link`)}
`;
}
