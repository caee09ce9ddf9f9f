import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/local/nats-server.js";
import { signatureHeaders } from "../../src/local/svix-stand-in/signing.js";
import { until } from "../support/poll.js";
import { publishToNats } from "../support/publish.js";
import { bannerExports, type Child, processesOf, root, startChild } from "./child.js";
import {
  CHROMIUM,
  missingPrerequisite,
  PYTHON,
  processed,
  receiverLog,
  untilListening,
} from "./local-stack-support.js";

// What a newcomer does on day one: `jobhooks dev`, then the banner's steps as printed (portal link,
// endpoint, copied secret, the receiver command, the publish lines run by bash), the two example
// receivers, events of all five types, and what the portal shows of them, with a real browser.
// Screenshots go to artifacts/e2e/ (git-ignored), with first-day.json: seconds from starting
// `jobhooks dev` to the first verified webhook for this scripted user.

const ARTIFACTS = path.join(root, "artifacts/e2e");
const RPC = "jobhooks.v1.WebhookService";

const skipReason = missingPrerequisite();
if (skipReason) console.warn(`skipping the local-stack end-to-end test: ${skipReason}`);

describe.skipIf(skipReason !== undefined)("the local stack, end to end", () => {
  let dev: Child;
  let devStartedAt = 0;
  let devTmp = "";
  let env: Record<string, string> = {};
  let banner = "";
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const receivers: Record<"express" | "flask", { url: string; secret: string; child?: Child }> = {
    express: { url: "", secret: "" },
    flask: { url: "", secret: "" },
  };

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    devStartedAt = Date.now();
    // Its own TMPDIR names its nats-server in the process table (see the Ctrl-C test).
    devTmp = await mkdtemp(path.join(tmpdir(), "local-stack-"));
    dev = startChild(process.execPath, ["--import", "tsx", "src/cli.ts", "dev"], {
      LOG_LEVEL: "warn",
      TMPDIR: devTmp,
    });
    await until("the banner", () => dev.lines.some((l) => l.includes("export SVIX_TOKEN=")), {
      timeoutMs: 90_000,
    }).catch(() => {
      throw new Error(`jobhooks dev did not come up:\n${dev.lines.join("\n")}\n${dev.stderr()}`);
    });
    // The banner's last line, so every step is there before the test reads them.
    await until("the banner's last line", () => dev.lines.some((l) => l.includes("GetPortalLink")), {
      timeoutMs: 5_000,
    });
    banner = dev.lines.join("\n");
    env = bannerExports(dev.lines);
    receivers.flask.url = `http://127.0.0.1:${await freePort()}/webhook`;
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
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: env.SVIX_URL as string });
    page = await context.newPage();
  }, 120_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await Promise.all([receivers.express.child?.stop(), receivers.flask.child?.stop()]);
    await dev?.stop();
    if (devTmp) await rm(devTmp, { recursive: true, force: true });
  }, 60_000);

  /** The endpoint's card on the portal page. */
  const cardOf = (url: string) => page.locator("article", { hasText: url }).first();

  /** "Reveal secret", then "Copy": the secret as the clipboard has it. */
  async function copySecret(url: string): Promise<string> {
    await cardOf(url).getByRole("link", { name: "Reveal secret" }).click();
    await cardOf(url).getByRole("button", { name: "Copy the signing secret" }).click();
    await expect
      .poll(() => cardOf(url).getByRole("button", { name: "Copy the signing secret" }).textContent())
      .toBe("Copied");
    const copied = String(await page.evaluate("navigator.clipboard.readText()"));
    expect(copied).toBe(await cardOf(url).locator("code[data-secret]").textContent());
    return copied;
  }

  async function addEndpoint(
    url: string,
    fields: { description: string; eventTypes: string[]; headers?: string; basicAuth?: [string, string] },
  ): Promise<void> {
    const form = page.locator("form[action='/portal/endpoints']");
    await form.getByLabel("Endpoint URL").fill(url);
    await form.getByLabel("Description").fill(fields.description);
    for (const type of fields.eventTypes) await form.getByRole("checkbox", { name: type }).check();
    if (fields.headers) await form.getByLabel("Custom headers").fill(fields.headers);
    if (fields.basicAuth) {
      await form.getByLabel("User name").fill(fields.basicAuth[0]);
      await form.getByLabel("Password").fill(fields.basicAuth[1]);
    }
    await form.getByRole("button", { name: "Add endpoint" }).click();
    await expect.poll(() => page.getByRole("status").textContent()).toContain("added");
  }

  it("prints the first day in the order it is done, with commands that run as pasted", () => {
    expect(env).toMatchObject({ JOBHOOKS_URL: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) });
    expect(env.SERVICE_TOKEN).toBeTruthy();
    expect(env.API_KEY).toBeTruthy();
    expect(env.NATS_URL).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    const order = [
      /\/portal\/login\/\w+/,
      /Add an endpoint/,
      /Copy its signing secret/,
      /examples\/express-receiver\/server\.ts/,
      /export JOBHOOKS_URL=/,
      /PublishJobEvent/,
    ].map((re) => banner.search(re));
    expect(order.every((at) => at >= 0)).toBe(true);
    expect([...order].sort((x, y) => x - y)).toEqual(order);
    expect(banner).not.toMatch(/npm install|<[a-z][^>]*>/);
    expect(banner).toContain("node scripts/nats-pub.mjs --server $NATS_URL jobs.demo.job_1.completed");
  });

  it("a scripted newcomer follows the banner to a verified webhook at the Express receiver", async () => {
    const link = /(http:\/\/\S+\/portal\/login\/\w+)/.exec(banner)?.[1] as string;
    receivers.express.url = /Add an endpoint there with the URL (\S+)/.exec(banner)?.[1] as string;
    const receiverCommand = (/\(it asks for the secret\):\n\s*(.+)\n/.exec(banner)?.[1] ?? "").trim();
    expect(receiverCommand).toMatch(/npx tsx examples\/express-receiver\/server\.ts$/);

    await page.goto(link);
    await expect.poll(() => page.getByRole("heading", { level: 1 }).textContent()).toContain("demo");
    await page.screenshot({ path: path.join(ARTIFACTS, "portal-empty.png"), fullPage: true });
    await addEndpoint(receivers.express.url, {
      description: "express receiver",
      eventTypes: ["job.completed", "job.failed"],
      headers: "X-Receiver: express",
    });
    receivers.express.secret = await copySecret(receivers.express.url);
    expect(receivers.express.secret).toMatch(/^whsec_/);

    // The command as printed, from the repository root; the secret as the prompt would take it.
    receivers.express.child = startChild(
      "bash",
      ["-c", receiverCommand],
      { WEBHOOK_SECRET: receivers.express.secret },
      { group: true },
    );
    await untilListening(receivers.express.url);

    const publishLines = banner.slice(
      banner.indexOf("     export JOBHOOKS_URL="),
      banner.indexOf("   The receiver logs"),
    );
    const published = spawnSync("bash", ["-c", publishLines], {
      cwd: root,
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(published.stdout).toContain('"eventId":"job_1.completed.1"');

    const express = receivers.express.child;
    await until(
      "job_1 processed by the Express receiver",
      () => processed(express).includes("job.completed job_1"),
      { timeoutMs: 30_000 },
    );
    const seconds = (Date.now() - devStartedAt) / 1000;
    console.log(`first verified webhook ${seconds.toFixed(1)} s after starting jobhooks dev`);
    await writeFile(
      path.join(ARTIFACTS, "first-day.json"),
      `${JSON.stringify({ secondsFromDevToFirstVerifiedWebhook: seconds, at: new Date().toISOString() })}\n`,
    );
  }, 120_000);

  it("a second endpoint with basic auth shows its credentials masked, and its receiver starts", async () => {
    await addEndpoint(receivers.flask.url, {
      description: "flask receiver",
      eventTypes: ["job.created", "job.processing", "job.completed", "job.cancelled"],
      headers: "X-Receiver: flask",
      basicAuth: ["hooks", "flask-password"],
    });
    const card = (await cardOf(receivers.flask.url).textContent()) ?? "";
    expect(card).toContain("Authorization: Basic •••");
    expect(card).toContain("X-Receiver: •••");
    expect(card).not.toContain("flask-password");
    receivers.flask.secret = await copySecret(receivers.flask.url);
    await page.screenshot({ path: path.join(ARTIFACTS, "portal-endpoints.png"), fullPage: true });
    receivers.flask.child = startChild(PYTHON, ["examples/flask-receiver/app.py"], {
      WEBHOOK_SECRET: receivers.flask.secret,
      PORT: new URL(receivers.flask.url).port,
    });
    await untilListening(receivers.flask.url);
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
    await until(
      "the events each receiver subscribed to",
      () => processed(express).length >= 3 && processed(flask).length >= 4,
      { timeoutMs: 30_000 },
    );
    // A wait on purpose: anything the filters let through by mistake would arrive alongside, and
    // only time shows that nothing more is coming.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(processed(express)).toEqual(["job.completed job_1", "job.completed job_a", "job.failed job_b"]);
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
      await until(
        `${name} logging both rejections`,
        () => receiverLog(child as Child).filter((l) => l.msg === "rejected").length >= 2,
        { timeoutMs: 5_000 },
      );
      expect(receiverLog(child as Child).filter((l) => l.msg === "rejected")).toHaveLength(2);
      expect(processed(child as Child)).not.toContain("job.completed job_x");
    }
  });

  it("the portal lists every message with its payload and attempts per endpoint, without a reload", async () => {
    // The page was last loaded before most events: its own refresh must bring the messages in. The
    // last (oldest) is the first day's job_1.completed.
    await expect.poll(() => page.locator("[data-message]").count(), { timeout: 15_000 }).toBe(6);
    const text = (await page.locator("#activity").textContent()) ?? "";
    for (const type of ["job.created", "job.processing", "job.completed", "job.failed", "job.cancelled"])
      expect(text).toContain(type);
    const groups = page.locator("#activity section.attempts");
    await expect.poll(() => groups.count(), { timeout: 10_000 }).toBe(7);
    for (const group of await groups.all()) {
      expect(await group.locator("h4").textContent()).toMatch(/127\.0\.0\.1:\d+\/webhook · succeeded/);
      expect(await group.locator("tbody tr").first().textContent()).toMatch(/200\s*succeeded\d+ ms/);
    }
    const first = page.locator("[data-message]").last();
    await first.locator("summary", { hasText: "Payload" }).click();
    expect(await first.locator("details.payload pre").textContent()).toContain('"job_id": "job_1"');
    await first.locator("summary", { hasText: "Request headers" }).first().click();
    const sent = (await first.locator("details[open]").last().textContent()) ?? "";
    expect(sent).toContain("webhook-signature: v1,");
    expect(sent).toContain("X-Receiver: •••");
    // An opened payload stays open across the page's refresh. A wait on purpose: the page refreshes
    // itself every few seconds, and the point is that one refresh has happened.
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    expect(await first.locator("details.payload").getAttribute("open")).not.toBeNull();
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

  it("a test event is chosen among the endpoint's own event types and reaches that endpoint", async () => {
    const select = cardOf(receivers.express.url).getByLabel("Test event type");
    expect(await select.locator("option").allTextContents()).toEqual(["job.completed", "job.failed"]);
    await select.selectOption("job.failed");
    await cardOf(receivers.express.url).getByRole("button", { name: "Send test event" }).click();
    await expect.poll(() => page.getByRole("status").textContent()).toContain("Test event job.failed sent");
    const express = receivers.express.child as Child;
    // The example payload's job, sent to this endpoint only.
    await until("job_123 processed by the Express receiver", () =>
      processed(express).includes("job.failed job_123"),
    );
    expect(processed(receivers.flask.child as Child)).not.toContain("job.failed job_123");
  });

  it("resend delivers a message to one endpoint again, with the same webhook-id", async () => {
    const message = page.locator("[data-message]").last();
    const msgId = (await message.getAttribute("data-message")) as string;
    await message.getByRole("button", { name: `Resend ${msgId} to ${receivers.express.url}` }).click();
    await expect.poll(() => page.getByRole("status").textContent()).toContain(`Message ${msgId} sent again`);
    const express = receivers.express.child as Child;
    // The receiver de-duplicates on webhook-id, which a resend keeps, as Svix's does.
    await until("the resend seen as a duplicate by the Express receiver", () =>
      receiverLog(express).some((l) => l.msg === "duplicate" && l.webhook_id === msgId),
    );
    await expect
      .poll(() => page.locator(`[data-message="${msgId}"]`).textContent(), { timeout: 10_000 })
      .toContain("(manual)");
  });

  it("an endpoint that does not answer shows as failing, with the time of the next attempt", async () => {
    const dead = `http://127.0.0.1:${await freePort()}/webhook`;
    await addEndpoint(dead, { description: "nobody listens", eventTypes: ["job.cancelled"] });
    await cardOf(dead).getByRole("button", { name: "Send test event" }).click();
    await expect
      .poll(() => page.getByRole("status").textContent())
      .toContain("Test event job.cancelled sent");
    const group = page.locator(`section.attempts`, { hasText: dead }).first();
    await expect
      .poll(() => group.locator("h4").textContent(), { timeout: 15_000 })
      .toMatch(/failing next attempt \d{4}-/);
    await page.screenshot({ path: path.join(ARTIFACTS, "portal-failing.png"), fullPage: true });
  }, 60_000);

  it("a login link opened a second time, elsewhere, says how to get a new one", async () => {
    const link = /(http:\/\/\S+\/portal\/login\/\w+)/.exec(banner)?.[1] as string;
    const elsewhere = await browser.newContext();
    const other = await elsewhere.newPage();
    await other.goto(link);
    expect(await other.getByRole("heading", { level: 1 }).textContent()).toBe("Link already used");
    expect(await other.locator("main").textContent()).toContain("GetPortalLink");
    await other.screenshot({ path: path.join(ARTIFACTS, "portal-link-used.png"), fullPage: true });
    await elsewhere.close();
  });

  it("Ctrl-C stops the whole stack and exits 0", async () => {
    expect(await processesOf(devTmp), "its nats-server while it runs").not.toEqual([]);
    const code = await dev.stop("SIGINT");
    expect(code).toBe(0);
    // The service and the stand-in lived in the exited process; its nats-server must be gone too.
    // Not asked of the ports: dev-exit.test.ts may start a stack on the same defaults meanwhile.
    expect(await until("nats-server gone", async () => (await processesOf(devTmp)).length === 0)).toBe(true);
  }, 60_000);
});
