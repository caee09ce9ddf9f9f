import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findNatsServer, freePort } from "../../src/local/nats-server.js";
import { signatureHeaders } from "../../src/local/svix-stand-in/signing.js";
import { publishToNats, waitFor } from "../support/publish.js";
import { type Child, startChild } from "./child.js";

// What a newcomer does on day one: `jobhooks dev`, the two example receivers, endpoints added in the
// portal page with a real browser, events of all five types, and the portal's delivery log.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const PYTHON = "/usr/bin/python3";
const ARTIFACTS = path.join(root, "artifacts/e2e");
const RPC = "jobhooks.v1.WebhookService";

function missingPrerequisite(): string | undefined {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;
  if (spawnSync(PYTHON, ["-c", "import flask"], { timeout: 10_000 }).status !== 0)
    return `no Flask for ${PYTHON} (apt-get install -y python3-flask)`;
  try {
    findNatsServer();
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

const skipReason = missingPrerequisite();
if (skipReason) console.warn(`skipping the local-stack end-to-end test: ${skipReason}`);

interface ReceiverLine {
  msg: string;
  webhook_id?: string;
  type?: string;
  job_id?: string;
  reason?: string;
}

function receiverLog(child: Child): ReceiverLine[] {
  return child.lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as ReceiverLine];
    } catch {
      return [];
    }
  });
}

const processed = (child: Child) =>
  receiverLog(child)
    .filter((l) => l.msg === "processed")
    .map((l) => `${l.type} ${l.job_id}`)
    .sort();

async function untilListening(url: string): Promise<void> {
  const up = await waitFor(async () => {
    try {
      await fetch(url, { signal: AbortSignal.timeout(1_000) });
      return true;
    } catch {
      return false;
    }
  }, 20_000);
  if (!up) throw new Error(`${url} did not start listening`);
}

describe.skipIf(skipReason !== undefined)("the local stack, end to end", () => {
  let dev: Child;
  let env: Record<string, string> = {};
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const receivers: Record<"express" | "flask", { port: number; url: string; secret: string; child?: Child }> =
    {
      express: { port: 0, url: "", secret: "" },
      flask: { port: 0, url: "", secret: "" },
    };

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    dev = startChild(process.execPath, ["--import", "tsx", "src/cli.ts", "dev"], { LOG_LEVEL: "warn" });
    const ready = await waitFor(() => dev.lines.some((l) => l.includes("export SVIX_TOKEN=")), 90_000);
    if (!ready) throw new Error(`jobhooks dev did not come up:\n${dev.lines.join("\n")}\n${dev.stderr()}`);
    for (const line of dev.lines) {
      const m = /^\s*export ([A-Z_]+)=(\S+)$/.exec(line);
      if (m) env[m[1] as string] = m[2] as string;
    }
    for (const name of ["express", "flask"] as const) {
      receivers[name].port = await freePort();
      receivers[name].url = `http://127.0.0.1:${receivers[name].port}/webhook`;
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    page = await context.newPage();
  }, 120_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await Promise.all([receivers.express.child?.stop(), receivers.flask.child?.stop()]);
    await dev?.stop();
  }, 60_000);

  /** The way a customer gets there: GetPortalLink with the tenant's API key. */
  async function portalLink(): Promise<string> {
    const res = await fetch(`${env.JOBHOOKS_URL}/${RPC}/GetPortalLink`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.API_KEY}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { url: string }).url;
  }

  async function addEndpoint(name: "express" | "flask", eventTypes: string[]): Promise<void> {
    const form = page.locator("form[action='/portal/endpoints']");
    await form.getByLabel("Endpoint URL").fill(receivers[name].url);
    await form.getByLabel("Description").fill(`${name} receiver`);
    for (const type of eventTypes) await form.getByRole("checkbox", { name: type }).check();
    await form.getByLabel("Custom headers").fill(`X-Receiver: ${name}`);
    await form.getByRole("button", { name: "Add endpoint" }).click();
    await expect.poll(() => page.getByRole("status").textContent()).toContain("added");
    const card = page.locator("article", { hasText: receivers[name].url });
    await card.getByRole("link", { name: "Reveal secret" }).click();
    receivers[name].secret =
      (await page.locator(`article:has-text("${receivers[name].url}") code[data-secret]`).textContent()) ??
      "";
    expect(receivers[name].secret).toMatch(/^whsec_/);
  }

  it("prints where everything is and the commands to try it", () => {
    const banner = dev.lines.join("\n");
    expect(env).toMatchObject({ JOBHOOKS_URL: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) });
    expect(env.SERVICE_TOKEN).toBeTruthy();
    expect(env.API_KEY).toBeTruthy();
    expect(env.NATS_URL).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    expect(banner).toMatch(/\/portal\/login\/\w+/);
    expect(banner).toContain("PublishJobEvent");
    expect(banner).toContain("nats --server $NATS_URL pub jobs.demo.job_1.completed");
  });

  it("a newcomer adds an endpoint per receiver in the portal page, each with its own event types", async () => {
    await page.goto(await portalLink());
    await expect.poll(() => page.getByRole("heading", { level: 1 }).textContent()).toContain("demo");
    await page.screenshot({ path: path.join(ARTIFACTS, "portal-empty.png"), fullPage: true });
    await addEndpoint("express", ["job.completed", "job.failed"]);
    await addEndpoint("flask", ["job.created", "job.processing", "job.completed", "job.cancelled"]);
    await page.screenshot({ path: path.join(ARTIFACTS, "portal-endpoints.png"), fullPage: true });

    receivers.express.child = startChild(
      process.execPath,
      ["--import", "tsx", "examples/express-receiver/server.ts"],
      {
        WEBHOOK_SECRET: receivers.express.secret,
        PORT: String(receivers.express.port),
      },
    );
    receivers.flask.child = startChild(PYTHON, ["examples/flask-receiver/app.py"], {
      WEBHOOK_SECRET: receivers.flask.secret,
      PORT: String(receivers.flask.port),
    });
    await Promise.all([untilListening(receivers.express.url), untilListening(receivers.flask.url)]);
  }, 90_000);

  it("each receiver verifies and logs exactly the events its filter allows", async () => {
    for (const [status, seq] of [
      ["JOB_STATUS_CREATED", "1"],
      ["JOB_STATUS_PROCESSING", "2"],
    ] as const) {
      const res = await fetch(`${env.JOBHOOKS_URL}/${RPC}/PublishJobEvent`, {
        method: "POST",
        headers: { authorization: `Bearer ${env.SERVICE_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ event: { tenantId: "demo", jobId: "job_a", status, sequence: seq } }),
      });
      expect(res.status, await res.text()).toBe(200);
    }
    await publishToNats(env.NATS_URL as string, [
      {
        subject: "jobs.demo.job_a.completed",
        body: JSON.stringify({ sequence: "3", result: { pages: 12 } }),
      },
      {
        subject: "jobs.demo.job_b.failed",
        body: JSON.stringify({ error: { code: "timeout", message: "too slow" } }),
      },
      { subject: "jobs.demo.job_c.cancelled", body: "{}" },
    ]);
    const express = receivers.express.child as Child;
    const flask = receivers.flask.child as Child;
    await waitFor(() => processed(express).length >= 2 && processed(flask).length >= 4, 30_000);
    // Anything the filters let through by mistake would arrive alongside; give it a moment to show.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(processed(express)).toEqual(["job.completed job_a", "job.failed job_b"]);
    expect(processed(flask)).toEqual([
      "job.cancelled job_c",
      "job.completed job_a",
      "job.created job_a",
      "job.processing job_a",
    ]);
    for (const child of [express, flask])
      expect(receiverLog(child).filter((l) => l.msg === "rejected")).toEqual([]);
  }, 60_000);

  it("a tampered or stale delivery is answered 400 by both receivers", async () => {
    for (const name of ["express", "flask"] as const) {
      const { url, secret, child } = receivers[name];
      const body = JSON.stringify({
        type: "job.completed",
        timestamp: new Date().toISOString(),
        data: { job_id: "job_x", status: "completed", metadata: {} },
      });
      const now = Math.floor(Date.now() / 1000);
      const tampered = await fetch(url, {
        method: "POST",
        headers: {
          ...signatureHeaders([secret], "msg_tampered", now, body),
          "content-type": "application/json",
        },
        body: body.replace("job_x", "job_y"),
      });
      expect(tampered.status, name).toBe(400);
      const stale = await fetch(url, {
        method: "POST",
        headers: {
          ...signatureHeaders([secret], "msg_stale", now - 600, body),
          "content-type": "application/json",
        },
        body,
      });
      expect(stale.status, name).toBe(400);
      await waitFor(() => receiverLog(child as Child).filter((l) => l.msg === "rejected").length >= 2, 5_000);
      expect(receiverLog(child as Child).filter((l) => l.msg === "rejected")).toHaveLength(2);
      expect(processed(child as Child)).not.toContain("job.completed job_x");
    }
  });

  it("the portal page lists every delivery attempt without being reloaded", async () => {
    // The page was last loaded before any event: its own refresh must bring the five messages in.
    await expect.poll(() => page.locator("[data-message]").count(), { timeout: 15_000 }).toBe(5);
    const text = (await page.locator("#activity").textContent()) ?? "";
    for (const type of ["job.created", "job.processing", "job.completed", "job.failed", "job.cancelled"])
      expect(text).toContain(type);
    const rows = page.locator("#activity tbody tr");
    await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(6);
    for (const row of await rows.all())
      expect(await row.textContent()).toMatch(/127\.0\.0\.1:\d+\/webhook200\s*succeeded\d+ ms/);
    await page.screenshot({ path: path.join(ARTIFACTS, "portal-attempts.png"), fullPage: true });

    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    await phone.addCookies(await context.cookies());
    const small = await phone.newPage();
    await small.goto(new URL("/portal", env.SVIX_URL).toString());
    // A string, evaluated in the page: this project's TypeScript has no DOM types.
    const overflow = Number(await small.evaluate("document.documentElement.scrollWidth - window.innerWidth"));
    expect(overflow).toBeLessThanOrEqual(0);
    await small.screenshot({ path: path.join(ARTIFACTS, "portal-phone.png"), fullPage: true });
    await phone.close();
  }, 60_000);

  it("a test event sent from the portal reaches that endpoint", async () => {
    const card = page.locator("article", { hasText: receivers.express.url });
    await card.getByLabel("Test event type").selectOption("job.processing");
    await card.getByRole("button", { name: "Send test event" }).click();
    await expect
      .poll(() => page.getByRole("status").textContent())
      .toContain("Test event job.processing sent");
    const express = receivers.express.child as Child;
    // The example payload's job; sent to this endpoint even though its filter leaves job.processing out.
    expect(await waitFor(() => processed(express).includes("job.processing job_123"), 10_000)).toBe(true);
    expect(processed(receivers.flask.child as Child)).not.toContain("job.processing job_123");
  });

  it("Ctrl-C stops the whole stack and exits 0", async () => {
    const code = await dev.stop("SIGINT");
    expect(code).toBe(0);
    await expect(fetch(`${env.JOBHOOKS_URL}/healthz`)).rejects.toThrow();
    await expect(fetch(`${env.SVIX_URL}/portal`)).rejects.toThrow();
  }, 60_000);
});
