import { readFileSync } from "node:fs";
import { createInterface } from "node:readline/promises";
import express from "express";
import { Webhook, WebhookVerificationError } from "svix";

/**
 * A webhook endpoint for jobhooks' job events, as the docs recommend building one: verify the
 * signature on the raw body, answer 2xx at once, process asynchronously, treat a repeated
 * `webhook-id` as already handled (Svix retries until it sees a 2xx, so a delivery can arrive twice),
 * and ignore an event whose `data.revision` is not greater than the last one kept for its job (a
 * retried delivery can arrive after a newer event of the same job).
 *
 *   WEBHOOK_SECRET=whsec_... PORT=3000 npx tsx server.ts
 *
 * The secret comes from WEBHOOK_SECRET, else from the file WEBHOOK_SECRET_FILE names, else from
 * stdin: asked for on a terminal, the first line when piped (`pass show hooks | npx tsx server.ts`).
 */

interface JobWebhook {
  type: string;
  timestamp: string;
  data: {
    job_id: string;
    /** Greater for every later event of the job: the one value to order a job's events by. */
    revision?: number;
    status: string;
    [field: string]: unknown;
  };
}

/** What every receiver says where a secret is needed; the same words in the Flask example. */
const SECRET_SHAPE =
  'a signing secret looks like whsec_ followed by base64 (e.g. whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw); the portal shows the endpoint\'s: "Reveal secret", then "Copy"';
const MISMATCH_HINT =
  'no signature matches this receiver\'s secret: check that it is the secret of the endpoint that sends here (the portal shows it: "Reveal secret")';

/** Exits with one line on stderr: the reason and what to do, never a stack trace. */
function refuse(reason: string): never {
  process.stderr.write(`${reason}\n`);
  process.exit(2);
}

/** The first line of stdin: asked for on a terminal, read as sent when piped. */
async function readSecretFromStdin(): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: process.stdin.isTTY });
  try {
    if (process.stdin.isTTY)
      return await rl.question("Paste the endpoint's signing secret (whsec_…, from the portal): ");
    for await (const line of rl) return line;
    return "";
  } finally {
    rl.close();
  }
}

async function loadSecret(): Promise<{ secret: string; from: string }> {
  if (process.env.WEBHOOK_SECRET) return { secret: process.env.WEBHOOK_SECRET, from: "WEBHOOK_SECRET" };
  const file = process.env.WEBHOOK_SECRET_FILE;
  if (file) {
    try {
      return { secret: readFileSync(file, "utf8"), from: `WEBHOOK_SECRET_FILE (${file})` };
    } catch (err) {
      refuse(`cannot read WEBHOOK_SECRET_FILE ${file} (${(err as NodeJS.ErrnoException).code ?? err})`);
    }
  }
  return { secret: await readSecretFromStdin(), from: "stdin" };
}

/**
 * Checked before the SDK sees it: the SDK's own error for a bad secret is "Base64Coder: incorrect
 * characters for decoding", which says nothing about where the secret comes from.
 */
function checkedSecret({ secret, from }: { secret: string; from: string }): string {
  const trimmed = secret.trim();
  if (trimmed === "")
    refuse(
      `no signing secret: set WEBHOOK_SECRET or WEBHOOK_SECRET_FILE, or paste it when asked; ${SECRET_SHAPE}`,
    );
  const base64 = trimmed.startsWith("whsec_") ? trimmed.slice("whsec_".length) : "";
  const key = /^[A-Za-z0-9+/]+={0,2}$/.test(base64) ? Buffer.from(base64, "base64") : Buffer.alloc(0);
  // The secret itself is never echoed: it may be nearly right, and logs outlive terminals.
  if (key.length < 24) refuse(`the secret from ${from} is not a signing secret: ${SECRET_SHAPE}`);
  return trimmed;
}

const secret = checkedSecret(await loadSecret());
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

/**
 * The last revision kept per job. In memory for the example; in production it is a column of your
 * job table, and keeping an event is one conditional write in the transaction that stores it:
 * `UPDATE jobs SET status = $1, revision = $2 WHERE id = $3 AND revision < $2` (no row changed:
 * the event is older news, ignore it).
 */
const REVISIONS_LIMIT = 10_000;
const lastRevision = new Map<string, number>();

/**
 * The revision kept for the event's job when the event's is not greater (it is older news, or a
 * retry of one already kept): the caller ignores it. Otherwise the event's revision becomes the
 * job's and undefined is returned. Runs before the answer, so no other delivery interleaves.
 */
function staleAgainst(event: JobWebhook): number | undefined {
  const { job_id: job, revision } = (event.data ?? {}) as Partial<JobWebhook["data"]>;
  // A payload without a revision (sent before jobhooks had it) has nothing to compare.
  if (typeof revision !== "number" || typeof job !== "string") return undefined;
  const last = lastRevision.get(job);
  if (last !== undefined && revision <= last) return last;
  lastRevision.delete(job);
  lastRevision.set(job, revision);
  if (lastRevision.size > REVISIONS_LIMIT) lastRevision.delete(lastRevision.keys().next().value as string);
  return undefined;
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
    revision: event.data.revision,
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
    const reason = (err as Error).message;
    // A mismatch is nearly always the wrong secret (another endpoint's, or a rotated one).
    const hint =
      err instanceof WebhookVerificationError && /signature/i.test(reason) ? MISMATCH_HINT : undefined;
    log({ level: "warn", msg: "rejected", reason, ...(hint ? { hint } : {}) });
    res.status(400).json({ error: "invalid signature" });
    return;
  }
  const id = String(req.headers["webhook-id"] ?? req.headers["svix-id"]);
  if (!firstTime(id)) {
    log({ level: "info", msg: "duplicate", webhook_id: id });
    res.status(200).json({ received: true, duplicate: true });
    return;
  }
  const kept = staleAgainst(event);
  if (kept !== undefined) {
    // Answered 2xx all the same: an error would only make Svix send the old news again.
    log({
      level: "info",
      msg: "stale",
      webhook_id: id,
      type: event.type,
      job_id: event.data.job_id,
      revision: event.data.revision,
      kept_revision: kept,
    });
    res.status(200).json({ received: true, stale: true });
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
