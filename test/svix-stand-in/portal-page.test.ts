import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { AppPortalCapability, type Svix } from "svix";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { sdkFor } from "./support.js";

// The portal page's forms, driven as a browser without scripts would: posts with the session cookie.

async function sessionCookie(svix: Svix, app: string, readOnly = false): Promise<string> {
  const { url } = await svix.authentication.appPortalAccess(app, {
    ...(readOnly ? { capabilities: [AppPortalCapability.ViewBase] } : {}),
  });
  const opened = await fetch(url, { redirect: "manual" });
  await opened.arrayBuffer();
  return opened.headers.get("set-cookie")?.split(";")[0] ?? "";
}

function post(standIn: SvixStandIn, path: string, cookie: string, form: Record<string, string | string[]>) {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(form))
    for (const v of Array.isArray(value) ? value : [value]) body.append(name, v);
  return fetch(`${standIn.url}${path}`, {
    method: "POST",
    redirect: "manual",
    headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
    body,
  });
}

describe("the portal page's forms", () => {
  let standIn: SvixStandIn;
  let svix: Svix;

  beforeAll(async () => {
    standIn = await startSvixStandIn({ deliver: false });
    svix = sdkFor(standIn);
    await svix.eventType.create({ name: "job.completed", description: "Job completed successfully" });
    await svix.eventType.create({ name: "job.failed", description: "Job failed with error" });
    for (const uid of ["tenant-a", "tenant-b"]) await svix.application.getOrCreate({ name: uid, uid });
  });

  afterAll(async () => {
    await standIn?.close();
  });

  it("adds an endpoint with its event-type filter and custom headers, then shows it", async () => {
    const cookie = await sessionCookie(svix, "tenant-a");
    const added = await post(standIn, "/portal/endpoints", cookie, {
      url: "http://127.0.0.1:9/a-hooks",
      description: "orders",
      eventTypes: ["job.completed", "job.failed"],
      headers: "X-Team: billing\nAuthorization: Bearer hidden-token",
    });
    expect(added.status).toBe(303);
    const [endpoint] = standIn.state.endpoints("tenant-a");
    expect(endpoint).toMatchObject({
      url: "http://127.0.0.1:9/a-hooks",
      description: "orders",
      eventTypes: ["job.completed", "job.failed"],
      headers: { "X-Team": "billing", Authorization: "Bearer hidden-token" },
    });
    const html = await (await fetch(`${standIn.url}/portal`, { headers: { cookie } })).text();
    expect(html).toContain("Endpoint http://127.0.0.1:9/a-hooks added.");
    // Custom header values are often credentials: shown by name only, as in Svix's portal.
    expect(html).toContain("X-Team: •••");
    expect(html).not.toContain("billing");
    expect(html).not.toContain("hidden-token");
    expect(html).not.toContain(endpoint?.secrets[0]?.key);
    const revealed = await fetch(`${standIn.url}/portal?reveal=${endpoint?.id}`, { headers: { cookie } });
    expect(await revealed.text()).toContain(endpoint?.secrets[0]?.key);
  });

  it("a refused URL shows the reason and keeps what was typed", async () => {
    const cookie = await sessionCookie(svix, "tenant-a");
    const refused = await post(standIn, "/portal/endpoints", cookie, { url: "ftp://x", description: "kept" });
    expect(refused.status).toBe(400);
    const html = await refused.text();
    expect(html).toContain("url: invalid or missing URL scheme");
    expect(html).toContain('value="kept"');
  });

  it("disables and deletes only endpoints of the session's own app", async () => {
    const other = await svix.endpoint.create("tenant-b", { url: "http://127.0.0.1:9/b-hooks" });
    const cookie = await sessionCookie(svix, "tenant-a");
    expect((await post(standIn, `/portal/endpoints/${other.id}/disable`, cookie, {})).status).toBe(404);
    expect((await post(standIn, `/portal/endpoints/${other.id}/delete`, cookie, {})).status).toBe(404);
    expect(standIn.state.endpoints("tenant-b")[0]?.disabled).toBe(false);

    const own = await svix.endpoint.create("tenant-a", { url: "http://127.0.0.1:9/a-other" });
    expect((await post(standIn, `/portal/endpoints/${own.id}/disable`, cookie, {})).status).toBe(303);
    expect((await svix.endpoint.get("tenant-a", own.id)).disabled).toBe(true);
    expect((await post(standIn, `/portal/endpoints/${own.id}/delete`, cookie, {})).status).toBe(303);
    await expect(svix.endpoint.get("tenant-a", own.id)).rejects.toMatchObject({ code: 404 });
  });

  it("a read-only session sees endpoints and messages but no forms, and its posts are refused", async () => {
    const cookie = await sessionCookie(svix, "tenant-a", true);
    const html = await (await fetch(`${standIn.url}/portal`, { headers: { cookie } })).text();
    expect(html).toContain("a-hooks");
    expect(html).toContain("read only");
    expect(html).not.toContain("<form");
    expect(html).not.toContain("Reveal secret");
    const before = standIn.state.endpoints("tenant-a").length;
    const refused = await post(standIn, "/portal/endpoints", cookie, { url: "http://127.0.0.1:9/ro" });
    expect(refused.status).toBe(403);
    expect(standIn.state.endpoints("tenant-a")).toHaveLength(before);
    const [endpoint] = standIn.state.endpoints("tenant-a");
    const revealed = await fetch(`${standIn.url}/portal?reveal=${endpoint?.id}`, { headers: { cookie } });
    expect(await revealed.text()).not.toContain(endpoint?.secrets[0]?.key);
  });

  it("a form posted from another site is refused", async () => {
    const cookie = await sessionCookie(svix, "tenant-a");
    const res = await fetch(`${standIn.url}/portal/endpoints`, {
      method: "POST",
      redirect: "manual",
      headers: {
        cookie,
        origin: "https://evil.example",
        "content-type": "application/x-www-form-urlencoded",
      },
      body: "url=http%3A%2F%2F127.0.0.1%3A9%2Fevil",
    });
    expect(res.status).toBe(403);
    expect(standIn.state.endpoints("tenant-a").map((e) => e.url)).not.toContain("http://127.0.0.1:9/evil");
  });

  it("the message log is served alone for the page's refresh, and only the session's app's", async () => {
    await svix.message.create("tenant-a", { eventType: "job.completed", eventId: "a-evt", payload: {} });
    await svix.message.create("tenant-b", { eventType: "job.completed", eventId: "b-evt", payload: {} });
    const cookie = await sessionCookie(svix, "tenant-a");
    const res = await fetch(`${standIn.url}/portal/activity`, { headers: { cookie } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain("a-evt");
    expect(html).not.toContain("b-evt");
    expect(html).not.toContain("<html");
  });
});

describe("the portal page's message log, as in Svix's portal", () => {
  let standIn: SvixStandIn;
  let svix: Svix;
  let receiver: Server;
  let receiverUrl: string;

  beforeAll(async () => {
    // Fast retries: the whole schedule (eight attempts) runs in about a second.
    standIn = await startSvixStandIn({ timeScale: 0.00001 });
    svix = sdkFor(standIn);
    await svix.eventType.create({ name: "job.completed", description: "Job completed successfully" });
    await svix.eventType.create({ name: "job.failed", description: "Job failed with error" });
    await svix.application.getOrCreate({ name: "tenant-a", uid: "tenant-a" });
    receiver = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(200).end("ok"));
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  });

  afterAll(async () => {
    await standIn?.close();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  const page = async (cookie: string) =>
    (await fetch(`${standIn.url}/portal`, { headers: { cookie } })).text();

  it("basic auth is its own field, stored as the Authorization header Svix sends, and shown masked", async () => {
    const cookie = await sessionCookie(svix, "tenant-a");
    const added = await post(standIn, "/portal/endpoints", cookie, {
      url: `${receiverUrl}?basic`,
      eventTypes: ["job.failed"],
      basicUser: "hooks",
      basicPassword: "s3cret-pass",
      headers: "X-Api-Key: key-123",
    });
    expect(added.status).toBe(303);
    const endpoint = standIn.state.endpoints("tenant-a").find((e) => e.url.endsWith("?basic"));
    expect(endpoint?.headers).toEqual({
      "X-Api-Key": "key-123",
      Authorization: `Basic ${Buffer.from("hooks:s3cret-pass").toString("base64")}`,
    });
    const html = await page(cookie);
    expect(html).toContain("Authorization: Basic •••");
    expect(html).toContain("X-Api-Key: •••");
    for (const secret of ["s3cret-pass", "key-123", Buffer.from("hooks:s3cret-pass").toString("base64")])
      expect(html).not.toContain(secret);
    // The test-event type is one the endpoint subscribes to.
    const select = /<select id="send-[^"]+" name="eventType">(.*?)<\/select>/.exec(
      html.slice(html.indexOf(`${receiverUrl}?basic`)),
    );
    expect(select?.[1]).toBe("<option>job.failed</option>");
  });

  it("a message shows its payload and, per endpoint, its attempts, the headers they sent, and resend", async () => {
    const cookie = await sessionCookie(svix, "tenant-a");
    await post(standIn, "/portal/endpoints", cookie, { url: `${receiverUrl}?all` });
    const msg = await svix.message.create("tenant-a", {
      eventType: "job.failed",
      payload: { data: { job_id: "job_payload_shown" } },
    });
    await expect.poll(() => standIn.state.attempts({ msgId: msg.id }).length).toBe(2);
    const resent = await post(
      standIn,
      `/portal/endpoints/${standIn.state.endpoints("tenant-a").find((e) => e.url.endsWith("?all"))?.id}/resend`,
      cookie,
      { msgId: msg.id },
    );
    expect(resent.status).toBe(303);
    await expect.poll(() => standIn.state.attempts({ msgId: msg.id }).length).toBe(3);
    const html = await page(cookie);
    const card = html.slice(html.indexOf(`id="msg-${msg.id}"`));
    expect(card).toContain("job_payload_shown");
    expect(card.match(/<section class="attempts"/g)).toHaveLength(2);
    expect(card).toContain("(manual)");
    expect(card).toContain("webhook-signature: v1,");
    expect(card).toContain("Authorization: Basic •••");
    expect(card).not.toContain("key-123");
  });

  it("a failing endpoint shows its next attempt, then a final failed state", async () => {
    const cookie = await sessionCookie(svix, "tenant-a");
    await post(standIn, "/portal/endpoints", cookie, {
      url: "http://127.0.0.1:9/closed",
      eventTypes: ["job.completed"],
    });
    const msg = await svix.message.create("tenant-a", { eventType: "job.completed", payload: {} });
    await expect
      .poll(() => standIn.state.attempts({ msgId: msg.id }).some((a) => a.nextAttempt === null), {
        timeout: 15_000,
      })
      .toBe(true);
    const html = await page(cookie);
    const card = html.slice(html.indexOf(`id="msg-${msg.id}"`));
    expect(card).toMatch(/failed<\/span> after 8 attempts; no more are scheduled/);
    const first = standIn.state.attempts({ msgId: msg.id }).find((a) => a.nextAttempt);
    expect(first?.nextAttempt).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("a re-opened login link says it was used and how to get a new one; the same browser goes straight in", async () => {
    const { url } = await svix.authentication.appPortalAccess("tenant-a", {});
    const opened = await fetch(url, { redirect: "manual" });
    await opened.arrayBuffer();
    const cookie = opened.headers.get("set-cookie")?.split(";")[0] ?? "";
    const again = await fetch(url, { redirect: "manual" });
    expect(again.status).toBe(403);
    const text = await again.text();
    expect(text).toContain("Link already used");
    expect(text).toContain("GetPortalLink");
    const sameBrowser = await fetch(url, { redirect: "manual", headers: { cookie } });
    expect(sameBrowser.status).toBe(303);
    expect(sameBrowser.headers.get("location")).toBe("/portal");
  });
});
