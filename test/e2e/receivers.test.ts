import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/local/nats-server.js";
import { signatureHeaders } from "../../src/local/svix-stand-in/signing.js";
import { until } from "../support/poll.js";
import { root } from "./child.js";
import { PYTHON, untilListening } from "./local-stack-support.js";

// The two example receivers meet a newcomer's mistakes the same way: the secret from the
// environment, a file or stdin; a malformed one refused in one line saying what a secret looks
// like; a delivery signed with another secret rejected with a hint to check the secret.

const flaskMissing = spawnSync(PYTHON, ["-c", "import flask"], { timeout: 10_000 }).status !== 0;
if (flaskMissing) console.warn("skipping the Flask receiver's cases: no python3-flask");

const RECEIVERS = {
  express: [process.execPath, "--import", "tsx", "examples/express-receiver/server.ts"],
  flask: [PYTHON, "examples/flask-receiver/app.py"],
} as const;
type Name = keyof typeof RECEIVERS;

const newSecret = () => `whsec_${randomBytes(24).toString("base64")}`;

interface Run {
  stdout: string[];
  stderr: () => string;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

function run(name: Name, env: Record<string, string>, stdin = ""): Run {
  const [command, ...args] = RECEIVERS[name];
  const proc = spawn(command, args, {
    cwd: root,
    // Only what the case sets: a WEBHOOK_SECRET in the test's own environment would hide the rest.
    env: { PATH: process.env.PATH ?? "", TMPDIR: tmpdir(), ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  proc.stdin.end(stdin);
  const stdout: string[] = [];
  let stderr = "";
  proc.stdout.on("data", (chunk: Buffer) => stdout.push(...chunk.toString().split("\n").filter(Boolean)));
  proc.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return {
    stdout,
    stderr: () => stderr,
    exited,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The refusal's one line (Flask's dev server adds nothing before the app has a secret). */
async function refusal(name: Name, env: Record<string, string>, stdin = ""): Promise<string> {
  const r = run(name, env, stdin);
  expect(await r.exited, r.stderr()).toBe(2);
  const lines = r.stderr().trim().split("\n");
  expect(lines, r.stderr()).toHaveLength(1);
  return lines[0] as string;
}

async function listening(
  name: Name,
  env: Record<string, string>,
  stdin = "",
): Promise<Run & { url: string }> {
  const port = await freePort();
  const r = run(name, { ...env, PORT: String(port) }, stdin);
  running.push(r);
  const line = await until(
    `${name} listening`,
    () => {
      if (r.stderr().includes("Error") || r.stderr().includes("Traceback")) throw new Error(r.stderr());
      return r.stdout.find((l) => l.includes('"listening"'));
    },
    { timeoutMs: 20_000 },
  );
  const url = (JSON.parse(line) as { url: string }).url;
  // Flask logs the line just before its server binds the port.
  await untilListening(url);
  return { ...r, url };
}

const running: Run[] = [];
let dir = "";
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.each(Object.keys(RECEIVERS) as Name[])("the %s receiver", (name) => {
  afterAll(async () => {
    await Promise.all(running.splice(0).map((r) => r.stop()));
  });

  it("refuses a malformed secret in one line that says what a secret looks like", async (ctx) => {
    if (name === "flask" && flaskMissing) return ctx.skip();
    for (const bad of [
      "nonsense",
      "whsec_not*base64",
      "whsec_c2hvcnQ=",
      "sk_live_0123456789abcdef0123456789",
    ]) {
      const line = await refusal(name, { WEBHOOK_SECRET: bad });
      expect(line).toBe(
        `the secret from WEBHOOK_SECRET is not a signing secret: a signing secret looks like whsec_ followed by base64 (e.g. whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw); the portal shows the endpoint's: "Reveal secret", then "Copy"`,
      );
      expect(line).not.toContain(bad);
    }
  }, 60_000);

  it("without a secret anywhere says where one can come from", async (ctx) => {
    if (name === "flask" && flaskMissing) return ctx.skip();
    expect(await refusal(name, {})).toMatch(
      /^no signing secret: set WEBHOOK_SECRET or WEBHOOK_SECRET_FILE, or paste it when asked; a signing secret looks like whsec_/,
    );
    expect(await refusal(name, { WEBHOOK_SECRET_FILE: "/nonexistent/secret" })).toBe(
      "cannot read WEBHOOK_SECRET_FILE /nonexistent/secret (ENOENT)",
    );
  }, 30_000);

  it("takes the secret from a file or piped on stdin, and verifies with it", async (ctx) => {
    if (name === "flask" && flaskMissing) return ctx.skip();
    dir ||= await mkdtemp(path.join(tmpdir(), "jobhooks-receivers-"));
    const fromFile = newSecret();
    const file = path.join(dir, `${name}-secret`);
    await writeFile(file, `${fromFile}\n`, { mode: 0o600 });
    const piped = newSecret();
    for (const [secret, receiver] of [
      [fromFile, await listening(name, { WEBHOOK_SECRET_FILE: file })],
      [piped, await listening(name, {}, `${piped}\n`)],
    ] as const) {
      const body = JSON.stringify({
        type: "job.completed",
        timestamp: new Date().toISOString(),
        data: { job_id: "job_secret_source", status: "completed", metadata: {} },
      });
      const res = await fetch(receiver.url, {
        method: "POST",
        headers: {
          ...signatureHeaders(
            [secret],
            `msg_${randomBytes(6).toString("hex")}`,
            Math.floor(Date.now() / 1000),
            body,
          ),
          "content-type": "application/json",
        },
        body,
      });
      expect(res.status).toBe(200);
      await until("processed", () => receiver.stdout.some((l) => l.includes('"processed"')));
    }
  }, 60_000);

  it("ignores a job's event that arrives after a newer one, and processes what is newer", async (ctx) => {
    if (name === "flask" && flaskMissing) return ctx.skip();
    const secret = newSecret();
    const receiver = await listening(name, { WEBHOOK_SECRET: secret });
    const deliver = async (webhookId: string, type: string, jobId: string, revision: number) => {
      const body = JSON.stringify({
        type,
        timestamp: new Date().toISOString(),
        data: { job_id: jobId, revision, status: type.slice("job.".length), metadata: {} },
      });
      const res = await fetch(receiver.url, {
        method: "POST",
        headers: {
          ...signatureHeaders([secret], webhookId, Math.floor(Date.now() / 1000), body),
          "content-type": "application/json",
        },
        body,
      });
      expect(res.status, `${webhookId}: ${await res.text()}`).toBe(200);
    };
    // The job's life was created (3107) → processing (3112) → completed (3129); retries reorder it.
    await deliver("msg_completed", "job.completed", "job_late", 3129);
    await deliver("msg_processing", "job.processing", "job_late", 3112);
    await deliver("msg_created", "job.created", "job_late", 3107);
    // Another message with a revision already kept (say, one sent again from the portal).
    await deliver("msg_completed_again", "job.completed", "job_late", 3129);
    // Another job's older revision is no older news for this one.
    await deliver("msg_other", "job.created", "job_other", 12);
    // Flask's server logs its own (non-JSON) lines beside the receiver's.
    const lines = () =>
      receiver.stdout.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    await until(
      "every delivery logged",
      () => lines().filter((l) => l.msg === "processed" || l.msg === "stale").length >= 5,
    );
    const summary = (msg: string) =>
      lines()
        .filter((l) => l.msg === msg)
        .map(
          (l) => `${l.webhook_id} ${l.job_id} ${l.revision}${msg === "stale" ? ` < ${l.kept_revision}` : ""}`,
        )
        .sort();
    expect(summary("processed")).toEqual(["msg_completed job_late 3129", "msg_other job_other 12"]);
    expect(summary("stale")).toEqual([
      "msg_completed_again job_late 3129 < 3129",
      "msg_created job_late 3107 < 3129",
      "msg_processing job_late 3112 < 3129",
    ]);
  }, 30_000);

  it("rejects a delivery signed with another secret, saying to check the secret in the portal", async (ctx) => {
    if (name === "flask" && flaskMissing) return ctx.skip();
    const receiver = await listening(name, { WEBHOOK_SECRET: newSecret() });
    const body = JSON.stringify({ type: "job.created", timestamp: new Date().toISOString(), data: {} });
    const res = await fetch(receiver.url, {
      method: "POST",
      headers: {
        ...signatureHeaders([newSecret()], "msg_other_secret", Math.floor(Date.now() / 1000), body),
        "content-type": "application/json",
      },
      body,
    });
    expect(res.status).toBe(400);
    const line = await until("the rejection", () => receiver.stdout.find((l) => l.includes('"rejected"')));
    expect(JSON.parse(line)).toMatchObject({
      msg: "rejected",
      hint: `no signature matches this receiver's secret: check that it is the secret of the endpoint that sends here (the portal shows it: "Reveal secret")`,
    });
  }, 30_000);
});
