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
    expect(html).toContain("X-Team: billing");
    // Credentials in custom headers are shown by name only, as in Svix's portal.
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
