import { ApiException, Svix } from "svix";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";

let standIn: SvixStandIn;
let svix: Svix;

beforeAll(async () => {
  standIn = await startSvixStandIn({ deliver: false, maxApplications: 3, maxEndpointsPerApp: 2 });
  svix = new Svix(standIn.token, { serverUrl: standIn.url, retryScheduleInMs: [] });
});

afterAll(async () => {
  await standIn?.close();
});

const admin = (path: string, init: RequestInit = {}, token?: string) =>
  fetch(`${standIn.url}/_stand-in${path}`, {
    ...init,
    headers: {
      "content-type": "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
  });

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 0,
    (e: unknown) => (e instanceof ApiException ? e.code : -1),
  );

describe("the Svix stand-in's admin routes, logs and stores are bounded", () => {
  it("admin routes answer only to the stand-in's token", async () => {
    const outage = JSON.stringify({ route: "*", kind: "503" });
    for (const token of [undefined, "testsk_wrong", `${standIn.token}x`]) {
      expect((await admin("/faults", { method: "POST", body: outage }, token)).status).toBe(401);
      expect((await admin("/stats", {}, token)).status).toBe(401);
      expect((await admin("/requests", {}, token)).status).toBe(401);
      expect((await admin("/requests", { method: "DELETE" }, token)).status).toBe(401);
    }
    // No outage was injected by anyone without the token.
    expect(standIn.faults.list()).toEqual([]);
    expect(await codeOf(svix.application.getOrCreate({ name: "a1", uid: "a1" }))).toBe(0);

    expect((await admin("/stats", {}, standIn.token)).status).toBe(200);
    const created = await admin("/faults", { method: "POST", body: outage }, standIn.token);
    expect(created.status).toBe(201);
    expect(await codeOf(svix.application.get("a1"))).toBe(503);
    expect((await admin("/faults", { method: "DELETE" }, standIn.token)).status).toBe(204);
  });

  it("the request log keeps at most 8 KiB of any body", async () => {
    standIn.state.clearRequests();
    await svix.message.create("a1", {
      eventType: "job.created",
      payload: { blob: "b".repeat(200_000) },
    });
    const entry = standIn.state.requests().find((r) => r.route === "v1.message.create");
    expect(entry?.status).toBe(202);
    expect(entry?.truncated).toBe(true);
    expect(entry?.requestBody?.length ?? Infinity).toBeLessThanOrEqual(8 * 1024 + 1);
    const logged = (await (await admin("/requests", {}, standIn.token)).json()) as {
      data: Array<{ requestBody?: string }>;
    };
    expect(Math.max(...logged.data.map((d) => d.requestBody?.length ?? 0))).toBeLessThanOrEqual(8 * 1024 + 1);
  });

  it("applications and endpoints stop at their caps with a 400, and existing ones keep working", async () => {
    expect(await codeOf(svix.application.create({ name: "a2", uid: "a2" }))).toBe(0);
    expect(await codeOf(svix.application.create({ name: "a3", uid: "a3" }))).toBe(0);
    expect(await codeOf(svix.application.create({ name: "a4", uid: "a4" }))).toBe(400);
    // Inline creation with a message is the same creation.
    expect(
      await codeOf(
        svix.message.create("a5", {
          eventType: "job.created",
          payload: {},
          application: { name: "a5", uid: "a5" },
        }),
      ),
    ).toBe(400);
    expect(standIn.state.apps()).toHaveLength(3);

    const endpoint = (n: number) =>
      svix.endpoint.create("a2", { url: `http://127.0.0.1:9/hook-${n}`, description: `e${n}` });
    expect(await codeOf(endpoint(1))).toBe(0);
    expect(await codeOf(endpoint(2))).toBe(0);
    expect(await codeOf(endpoint(3))).toBe(400);
    expect(standIn.state.endpoints("a2")).toHaveLength(2);
    expect(await codeOf(svix.message.create("a2", { eventType: "job.created", payload: {} }))).toBe(0);
  });
});
