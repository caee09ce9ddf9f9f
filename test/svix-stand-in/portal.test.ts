import { AppPortalCapability, type Svix } from "svix";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { sdkFor } from "./support.js";

// The app portal a customer reaches through jobhooks' GetPortalLink: single-use links to one app's page.

/** Opens a portal link like a browser would, returning the session cookie it set. */
async function openLink(url: string): Promise<{ status: number; cookie: string | undefined }> {
  const response = await fetch(url, { redirect: "manual" });
  await response.arrayBuffer();
  return { status: response.status, cookie: response.headers.get("set-cookie")?.split(";")[0] };
}

describe("the stand-in's app portal", () => {
  let standIn: SvixStandIn;
  let svix: Svix;

  beforeAll(async () => {
    // An hour of link validity (the spec's minimum) becomes 0.36 s.
    standIn = await startSvixStandIn({ deliver: false, timeScale: 0.0001 });
    svix = sdkFor(standIn);
    for (const uid of ["tenant-a", "tenant-b"]) {
      await svix.application.getOrCreate({ name: uid === "tenant-a" ? "Tenant <A>" : "Tenant B", uid });
      await svix.endpoint.create(uid, { url: `http://127.0.0.1:9/${uid}-hooks` });
      await svix.message.create(uid, {
        eventType: "job.completed",
        eventId: `${uid}-job.completed`,
        payload: {},
      });
    }
  });

  afterAll(async () => {
    await standIn?.close();
  });

  it("a portal link opens a page with that app's endpoints and messages and nothing of other apps", async () => {
    const { url } = await svix.authentication.appPortalAccess("tenant-a", { expiry: 604_800 });
    const opened = await openLink(url);
    expect(opened.status).toBe(303);
    const page = await fetch(`${standIn.url}/portal`, { headers: { cookie: opened.cookie ?? "" } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("tenant-a-hooks");
    expect(html).toContain("tenant-a-job.completed");
    expect(html).toContain("Tenant &#60;A&#62;");
    expect(html).not.toContain("tenant-b");
  });

  it("a portal link logs in once: opening it a second time is refused", async () => {
    const { url } = await svix.authentication.appPortalAccess("tenant-a", { expiry: 604_800 });
    expect((await openLink(url)).status).toBe(303);
    const second = await openLink(url);
    expect(second.status).toBe(403);
    expect(second.cookie).toBeUndefined();
  });

  it("a portal link past its expiry is refused", async () => {
    // Only Date is faked: the stand-in runs in this process and reads the clock from Date.now(),
    // while sockets and the SDK keep their real timers. An hour at timeScale 0.0001 is 360 ms.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    try {
      const { url } = await svix.authentication.appPortalAccess("tenant-a", { expiry: 3600 });
      vi.setSystemTime(Date.now() + 361);
      expect((await openLink(url)).status).toBe(403);
    } finally {
      vi.useRealTimers();
    }
  });

  it("the page without a session is refused", async () => {
    expect((await fetch(`${standIn.url}/portal`)).status).toBe(401);
  });

  it("the portal token reaches its own app's API and no other app's", async () => {
    const { token } = await svix.authentication.appPortalAccess("tenant-a", { expiry: 604_800 });
    const asPortal = sdkFor({ url: standIn.url, token });
    expect((await asPortal.endpoint.list("tenant-a")).data).toHaveLength(1);
    await expect(asPortal.endpoint.list("tenant-b")).rejects.toMatchObject({ code: 403 });
    await expect(asPortal.application.list()).rejects.toMatchObject({ code: 403 });
  });

  it("a read-only grant may read but not change endpoints", async () => {
    const { token } = await svix.authentication.appPortalAccess("tenant-a", {
      expiry: 604_800,
      capabilities: [AppPortalCapability.ViewBase],
    });
    const asPortal = sdkFor({ url: standIn.url, token });
    expect((await asPortal.endpoint.list("tenant-a")).data).toHaveLength(1);
    await expect(asPortal.endpoint.create("tenant-a", { url: "http://127.0.0.1:9/x" })).rejects.toMatchObject(
      { code: 403 },
    );
  });

  it("an expiry below the spec's minimum is answered 422", async () => {
    await expect(svix.authentication.appPortalAccess("tenant-a", { expiry: 60 })).rejects.toMatchObject({
      code: 422,
    });
  });
});
