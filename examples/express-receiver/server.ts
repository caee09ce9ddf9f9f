import { createInterface } from "node:readline/promises";
import express from "express";
import { Webhook } from "svix";

/**
 * A webhook endpoint for jobhooks' job events, as the docs recommend building one: verify the
 * signature on the raw body, answer 2xx at once, process asynchronously, and treat a repeated
 * `webhook-id` as already handled (Svix retries until it sees a 2xx, so a delivery can arrive twice).
 *
 *   WEBHOOK_SECRET=whsec_... PORT=3000 npx tsx server.ts
 *
 * Without WEBHOOK_SECRET, in a terminal, it asks for the secret: the command then works as pasted.
 */

interface JobWebhook {
  type: string;
  timestamp: string;
  data: { job_id: string; status: string; sequence?: number | string; [field: string]: unknown };
}

/** Pasted at a prompt rather than typed into the command line, where `<…>` or `…` would mislead bash. */
async function askForSecret(): Promise<string | undefined> {
  if (!process.stdin.isTTY) return undefined;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await rl.question("Paste the endpoint's signing secret (whsec_…, from the portal): ");
  rl.close();
  return answer.trim() || undefined;
}

const secret = process.env.WEBHOOK_SECRET || (await askForSecret());
if (!secret) {
  console.error("WEBHOOK_SECRET is required: the endpoint's signing secret (whsec_…) from the portal");
  process.exit(2);
}
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? "127.0.0.1";
const webhook = new Webhook(secret);

/** One JSON line per event on stdout, so the log is easy to search and to parse. */
function log(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}

/**
 * Recently seen webhook ids, oldest first. In memory for the example; a real service keeps them
 * where its processing commits (a unique key in its database), so a restart forgets nothing.
 */
const SEEN_LIMIT = 10_000;
const seen = new Set<string>();
function firstTime(id: string): boolean {
  if (seen.has(id)) return false;
  seen.add(id);
  if (seen.size > SEEN_LIMIT) seen.delete(seen.values().next().value as string);
  return true;
}

/** The slow part (database writes, emails…) runs after the answer, never while Svix waits. */
async function processEvent(id: string, event: JobWebhook): Promise<void> {
  log({
    level: "info",
    msg: "processed",
    webhook_id: id,
    type: event.type,
    job_id: event.data.job_id,
    status: event.data.status,
  });
}

const app = express();

// express.raw, not express.json: the signature covers the exact bytes sent, and re-serialising
// parsed JSON changes them (key order, spacing, unicode escapes).
app.post("/webhook", express.raw({ type: () => true, limit: "1mb" }), (req, res) => {
  const body: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  let event: JobWebhook;
  try {
    // Accepts the webhook-* and svix-* headers; throws on a bad signature and on a timestamp more
    // than five minutes off (a replayed old delivery). Since svix 2.2 it returns nothing: the body
    // is parsed only once it is known to be genuine.
    webhook.verify(body, req.headers as Record<string, string>);
    event = JSON.parse(body.toString("utf8")) as JobWebhook;
  } catch (err) {
    log({ level: "warn", msg: "rejected", reason: (err as Error).message });
    res.status(400).json({ error: "invalid signature" });
    return;
  }
  const id = String(req.headers["webhook-id"] ?? req.headers["svix-id"]);
  if (!firstTime(id)) {
    log({ level: "info", msg: "duplicate", webhook_id: id });
    res.status(200).json({ received: true, duplicate: true });
    return;
  }
  res.status(200).json({ received: true });
  setImmediate(() => {
    processEvent(id, event).catch((err: unknown) =>
      log({ level: "error", msg: "processing failed", webhook_id: id, err: String(err) }),
    );
  });
});

const server = app.listen(port, host, (err?: Error) => {
  if (err) {
    log({ level: "error", msg: "cannot listen", err: err.message });
    process.exit(1);
  }
  log({ level: "info", msg: "listening", url: `http://${host}:${port}/webhook` });
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
