import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Svix } from "svix";
import type { AdoptProcess, DevStack } from "./dev-stack.js";

/**
 * `jobhooks dev --demo`: the first verified webhook with no step by hand. The example Express
 * receiver runs as a child of the stack, is registered as an endpoint of the demo tenant through
 * the Svix API (as a customer's portal would), and receives one event of each status of one job.
 * Its log lines are the proof: each says the signature was verified.
 */

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const RECEIVER = "examples/express-receiver/server.ts";
/** The demo's jobs are `job_demo_<status>`: one job per status, so the receiver's ordering rule
 * (a job's older revision is ignored) never hides one when Svix delivers them out of order. */
export const DEMO_JOB = "job_demo";
const LISTEN_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

/** One event of each status, in a job's order; `failed` needs its error, `completed` has a result. */
const DEMO_EVENTS = [
  { status: "JOB_STATUS_CREATED" },
  { status: "JOB_STATUS_PROCESSING" },
  { status: "JOB_STATUS_COMPLETED", result: { pages: 12 } },
  { status: "JOB_STATUS_FAILED", error: { code: "timeout", message: "the demo job took too long" } },
  { status: "JOB_STATUS_CANCELLED" },
] as const;

export interface DemoReceiver {
  url: string;
  secret: string;
  /** Resolves once it listens; rejects when it exits first or takes too long. */
  ready: Promise<void>;
  /** Resolves once the receiver has verified every demo event, or after `timeoutMs` with what it has. */
  verified(timeoutMs: number): Promise<string[]>;
}

/** A Svix-shaped secret: `whsec_` and the base64 of 24 random bytes, as Svix generates them. */
function newSecret(): string {
  return `whsec_${randomBytes(24).toString("base64")}`;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/**
 * Starts the example receiver on `port` with a fresh secret, as part of the stack (`adopt`), so it
 * loads while the stack starts. `print` gets each line it logs, from the first on.
 */
export function startDemoReceiver(
  port: number,
  adopt: AdoptProcess,
  print: (line: string) => void,
): DemoReceiver {
  const url = `http://127.0.0.1:${port}/webhook`;
  const secret = newSecret();
  const child = spawn(process.execPath, ["--import", "tsx", RECEIVER], {
    cwd: REPO_ROOT,
    env: { ...process.env, WEBHOOK_SECRET: secret, PORT: String(port), HOST: "127.0.0.1" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (child.pid !== undefined) adopt("demo receiver", child.pid, () => stopChild(child));

  const processed: string[] = [];
  const waiting = new Set<() => void>();
  let listening: (() => void) | undefined;
  let partial = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (chunk: string) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) {
      print(line);
      if (line.includes('"msg":"listening"')) listening?.();
      if (line.includes('"msg":"processed"')) {
        processed.push(line);
        for (const wake of waiting) wake();
      }
    }
  });
  const ready = new Promise<void>((resolve, reject) => {
    listening = resolve;
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`${RECEIVER} exited (${code}) before listening`)));
    setTimeout(
      () => reject(new Error(`${RECEIVER} did not listen within ${LISTEN_TIMEOUT_MS} ms`)),
      LISTEN_TIMEOUT_MS,
    ).unref();
  });
  // Awaited by publishDemo; until then a failure to start must not count as unhandled.
  ready.catch(() => {});

  return {
    url,
    secret,
    ready,
    async verified(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (processed.length < DEMO_EVENTS.length && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          const wake = () => {
            waiting.delete(wake);
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(wake, deadline - Date.now());
          waiting.add(wake);
        });
      }
      return [...processed];
    },
  };
}

/**
 * Registers the receiver as an endpoint of the stack's tenant through the Svix API (what the portal
 * does when a customer adds one), then publishes the demo job's events. Returns the endpoint's id.
 */
export async function publishDemo(stack: DevStack, receiver: DemoReceiver): Promise<string> {
  const svix = new Svix(stack.svixToken, { serverUrl: stack.svixUrl });
  const [endpoint] = await Promise.all([
    svix.endpoint.create(stack.tenant, {
      url: receiver.url,
      description: "the example Express receiver, run by jobhooks dev --demo",
      secret: receiver.secret,
    }),
    receiver.ready,
  ]);
  await publishDemoEvents(stack);
  return endpoint.id;
}

/** PublishJobEvents, as an internal service would call it, with the stack's service token. */
async function publishDemoEvents(stack: DevStack): Promise<void> {
  const events = DEMO_EVENTS.map((event) => ({
    tenantId: stack.tenant,
    jobId: `${DEMO_JOB}_${event.status.replace("JOB_STATUS_", "").toLowerCase()}`,
    ...event,
  }));
  const res = await fetch(`${stack.serviceUrl}/jobhooks.v1.WebhookService/PublishJobEvents`, {
    method: "POST",
    headers: { authorization: `Bearer ${stack.serviceToken}`, "content-type": "application/json" },
    body: JSON.stringify({ events }),
    signal: AbortSignal.timeout(15_000),
  });
  const body = (await res.json().catch(() => ({}))) as { results?: { error?: { message?: string } }[] };
  const refused = body.results?.find((r) => r.error)?.error?.message;
  if (!res.ok || refused)
    throw new Error(`publishing the demo events failed: ${res.status} ${refused ?? ""}`);
}
