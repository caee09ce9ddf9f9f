import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { type LogLevel, loadConfig } from "../config/config.js";
import type { Logger } from "../log/logger.js";
import { startJobhooks } from "../main.js";
import { createDemoApiKey } from "./demo-api-key.js";
import { freePort, startNatsServer } from "./nats-server.js";
import { startSvixStandIn } from "./svix-stand-in/index.js";
import { startWatchdog } from "./watchdog.js";

/**
 * The local stack behind `jobhooks dev`: nats-server, the Svix stand-in and the service, all on
 * loopback, plus a demo tenant to try them with. Everything it creates (processes, one temp dir
 * holding the NATS store and the service-tokens file) is undone by stop(), also when start-up fails
 * half-way; when the process ends without stop() (a second Ctrl-C, a crash) an 'exit' handler kills
 * nats-server and deletes the dir synchronously, and after `kill -9` a watchdog process does it.
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
  /**
   * Starts processes that belong to the stack alongside it (the demo's receiver), so they are
   * ready when it is; called first thing, with the stack's `adopt`.
   */
  alongside?: (adopt: AdoptProcess) => void;
}

/**
 * Makes a process part of the stack: stop() stops it (after whatever started later), and it is
 * killed with nats-server when this process ends without stop().
 */
export type AdoptProcess = (what: string, pid: number, stop: () => Promise<void>) => void;

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
  /** Preferred ports that were taken, said out loud: "8080 is taken — … using 42889". */
  notes: string[];
  /** Stops everything in reverse start order and deletes the temp dir; safe to call twice. */
  stop(): Promise<void>;
}

const PORT_NAMES: Record<keyof typeof DEV_PORTS, string> = {
  nats: "NATS",
  svix: "the Svix stand-in",
  service: "the service",
};

/** The preferred port when nothing listens on it, else a random free one. */
export async function portOrFree(preferred: number): Promise<number> {
  return (await isFree(preferred)) ? preferred : freePort();
}

function isFree(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const probe = net.createServer();
    probe.unref();
    probe.once("error", () => resolve(false));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(true)));
  });
}

/** Like portOrFree, with a note saying so when the preferred port was taken. */
async function devPort(which: keyof typeof DEV_PORTS, preferred: number, notes: string[]): Promise<number> {
  if (await isFree(preferred)) return preferred;
  const port = await freePort();
  notes.push(
    `${preferred} is taken — is another \`jobhooks dev\` running? using ${port} for ${PORT_NAMES[which]}`,
  );
  return port;
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

  const notes: string[] = [];
  const watchdog = startWatchdog();
  undo.push({ what: "watchdog", run: async () => watchdog.close() });
  // What must not outlive this process even when stop() never runs: the 'exit' handler can only
  // run synchronous code, so it signals and deletes without waiting.
  const leftovers = { pids: new Set<number>(), dirs: new Set<string>() };
  const cleanUpNow = () => {
    for (const pid of leftovers.pids) signal(pid, "SIGKILL");
    for (const dir of leftovers.dirs) rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", cleanUpNow);
  undo.push({ what: "exit handler", run: async () => void process.off("exit", cleanUpNow) });
  const adopt: AdoptProcess = (what, pid, stopIt) => {
    leftovers.pids.add(pid);
    watchdog.watchPid(pid);
    undo.push({
      what,
      run: async () => {
        await stopIt();
        leftovers.pids.delete(pid);
        watchdog.forgetPid(pid);
      },
    });
  };

  try {
    opts.alongside?.(adopt);
    const dir = await mkdtemp(path.join(tmpdir(), "jobhooks-dev-"));
    leftovers.dirs.add(dir);
    watchdog.watchDir(dir);
    undo.push({
      what: "temp dir",
      run: async () => {
        await rm(dir, { recursive: true, force: true });
        leftovers.dirs.delete(dir);
        watchdog.forgetDir(dir);
      },
    });

    let natsPid: number | undefined;
    const storeDir = path.join(dir, "nats");
    await mkdir(storeDir);
    const nats = await startNatsServer({
      port: await devPort("nats", ports.nats, notes),
      storeDir,
      serverName: "jobhooks-dev",
      // Its own process group, so a Ctrl-C reaches only us and the service drains before NATS stops.
      detached: true,
      // Watched from the moment it exists: a kill -9 while it starts up must not leave it running.
      onSpawn: (pid) => {
        natsPid = pid;
        leftovers.pids.add(pid);
        watchdog.watchPid(pid);
      },
    }).catch((err: unknown) => {
      // A server that failed to start was killed (or exited): its pid may be reused, so forget it.
      if (natsPid !== undefined) {
        leftovers.pids.delete(natsPid);
        watchdog.forgetPid(natsPid);
      }
      throw err;
    });
    undo.push({
      what: "nats-server",
      run: async () => {
        await nats.dispose();
        if (natsPid !== undefined) {
          leftovers.pids.delete(natsPid);
          watchdog.forgetPid(natsPid);
        }
      },
    });

    // Before the service starts, so its key verifier finds the key already there.
    const apiKey = await createDemoApiKey(nats.url, tenant);

    const standInLog = log.child({ component: "svix-stand-in" });
    // Chosen before the stand-in starts, so the stand-in knows where to send operational webhooks.
    const servicePort = await devPort("service", ports.service, notes);
    // Svix's operational webhooks (endpoint disabled, attempts exhausted) go to the service.
    const opsSecret = `whsec_${randomBytes(24).toString("base64")}`;
    const standIn = await startSvixStandIn({
      port: await devPort("svix", ports.svix, notes),
      log: (obj, msg) => standInLog.warn(obj, msg),
      jobhooksUrl: `http://127.0.0.1:${servicePort}`,
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
      notes,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
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
