import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { type LogLevel, loadConfig } from "../config/config.js";
import type { Logger } from "../log/logger.js";
import { startJobhooks } from "../main.js";
import { createDemoApiKey } from "./demo-api-key.js";
import { freePort, startNatsServer } from "./nats-server.js";
import { startSvixStandIn } from "./svix-stand-in/index.js";

/**
 * The local stack behind `jobhooks dev`: nats-server, the Svix stand-in and the service, all on
 * loopback, plus a demo tenant to try them with. Everything it creates (processes, temp dirs) is
 * undone by stop(), also when start-up fails half-way.
 */

export const DEV_PORTS = { nats: 4222, svix: 8071, service: 8080 } as const;
const JOB_EVENT_TYPES = 5;
const EVENT_TYPES_WAIT_MS = 15_000;
const STOP_STEP_TIMEOUT_MS = 15_000;

export interface DevStackOptions {
  log: Logger;
  /** The service's log level (its logs go to `log`'s destination). */
  logLevel: LogLevel;
  /** Default "demo". */
  tenant?: string;
  /** Preferred ports; one that is taken is replaced by a random free one. Default DEV_PORTS. */
  ports?: Partial<Record<keyof typeof DEV_PORTS, number>>;
}

export interface DevStack {
  tenant: string;
  serviceUrl: string;
  natsUrl: string;
  svixUrl: string;
  svixToken: string;
  /** May call both RPCs for any tenant. */
  serviceToken: string;
  /** The demo tenant's customer API key. */
  apiKey: string;
  /** A single-use login link to the demo tenant's portal. */
  portalUrl: string;
  /** Stops everything in reverse start order and deletes the temp dirs; safe to call twice. */
  stop(): Promise<void>;
}

/** The preferred port when nothing listens on it, else a random free one. */
async function portOrFree(preferred: number): Promise<number> {
  const free = await new Promise<boolean>((resolve) => {
    const probe = net.createServer();
    probe.unref();
    probe.once("error", () => resolve(false));
    probe.listen(preferred, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
  return free ? preferred : freePort();
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export async function startDevStack(opts: DevStackOptions): Promise<DevStack> {
  const { log } = opts;
  const tenant = opts.tenant ?? "demo";
  const ports = { ...DEV_PORTS, ...opts.ports };
  // Undo steps, run last-first by stop(): whatever started is stopped, whatever was created deleted.
  const undo: { what: string; run: () => Promise<void> }[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      for (const step of undo.reverse()) {
        try {
          await withTimeout(step.run(), STOP_STEP_TIMEOUT_MS, step.what);
        } catch (err) {
          log.warn({ err: String(err) }, `could not stop ${step.what} cleanly`);
        }
      }
    })();
    return stopping;
  };

  try {
    const dir = await mkdtemp(path.join(tmpdir(), "jobhooks-dev-"));
    undo.push({ what: "temp dir", run: () => rm(dir, { recursive: true, force: true }) });

    const nats = await startNatsServer({
      port: await portOrFree(ports.nats),
      serverName: "jobhooks-dev",
      detached: true,
    });
    // Detached, it would outlive a crash of this process; kill() signals synchronously, as 'exit' needs.
    const killNats = () => void nats.kill();
    process.once("exit", killNats);
    undo.push({
      what: "nats-server",
      run: async () => {
        process.off("exit", killNats);
        await nats.dispose();
      },
    });

    // Before the service starts, so its key verifier finds the key already there.
    const apiKey = await createDemoApiKey(nats.url, tenant);

    const standInLog = log.child({ component: "svix-stand-in" });
    const servicePort = (await portOrFree(ports.service)) || (await freePort());
    // Svix's operational webhooks (endpoint disabled, attempts exhausted) go to the service.
    const opsSecret = `whsec_${randomBytes(24).toString("base64")}`;
    const standIn = await startSvixStandIn({
      port: await portOrFree(ports.svix),
      log: (obj, msg) => standInLog.warn(obj, msg),
      operationalWebhook: {
        url: `http://127.0.0.1:${servicePort}/svix/operational-webhooks`,
        secret: opsSecret,
      },
    });
    undo.push({ what: "svix stand-in", run: () => standIn.close() });

    const serviceToken = `svc_dev_${randomBytes(24).toString("base64url")}`;
    const tokensFile = path.join(dir, "service-tokens");
    await writeFile(tokensFile, `# jobhooks dev: the local stack's service token\n${serviceToken}\n`, {
      mode: 0o600,
    });
    const config = loadConfig({
      JOBHOOKS_ADDR: `127.0.0.1:${servicePort}`,
      JOBHOOKS_SVIX_OPERATIONAL_SECRET: opsSecret,
      NATS_URL: nats.url,
      SVIX_TOKEN: standIn.token,
      SVIX_SERVER_URL: standIn.url,
      JOBHOOKS_SERVICE_TOKENS_FILE: tokensFile,
      LOG_LEVEL: opts.logLevel,
      JOBHOOKS_SHUTDOWN_GRACE_MS: "2000",
    });
    const app = await startJobhooks(config, log);
    undo.push({ what: "service", run: () => app.stop() });

    // The relay registers the event types in the background; the portal's filters and "send test
    // event" need them, so the stack is announced only once they are there.
    const deadline = Date.now() + EVENT_TYPES_WAIT_MS;
    while (standIn.state.eventTypes().length < JOB_EVENT_TYPES && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (standIn.state.eventTypes().length < JOB_EVENT_TYPES)
      log.warn("the relay has not registered the event types yet; the portal may list none");

    // The way a customer gets one; it also creates the tenant's Svix application, so the portal
    // shows it before the first event.
    const portalUrl = await portalLinkAsCustomer(app.url, apiKey);

    return {
      tenant,
      serviceUrl: app.url,
      natsUrl: nats.url,
      svixUrl: standIn.url,
      svixToken: standIn.token,
      serviceToken,
      apiKey,
      portalUrl,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function portalLinkAsCustomer(serviceUrl: string, apiKey: string): Promise<string> {
  const res = await fetch(`${serviceUrl}/jobhooks.v1.WebhookService/GetPortalLink`, {
    method: "POST",
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: "{}",
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json().catch(() => ({}))) as { url?: string; message?: string };
  if (!res.ok || !body.url)
    throw new Error(`GetPortalLink for the demo tenant failed: ${res.status} ${body.message ?? ""}`);
  return body.url;
}
