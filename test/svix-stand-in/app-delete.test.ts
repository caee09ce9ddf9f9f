import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { until } from "../support/poll.js";
import { loadOpenApiContract } from "./openapi-contract.js";
import { startWebhookReceiver, type WebhookReceiver } from "./support.js";

// Svix's `DELETE /api/v1/app/{app_id}` (v1.application.delete), as DeleteTenant relies on it: 204
// without a body; the application, its endpoints (and secrets), messages and attempts are gone;
// asking again is 404; the uid is free for a new application that starts empty.

const contract = loadOpenApiContract();

describe("deleting an application", () => {
  let standIn: SvixStandIn;
  let receiver: WebhookReceiver;
  let appId = "";
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${standIn.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${standIn.token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    standIn = await startSvixStandIn({});
    const app = await call("POST", "/api/v1/app", { name: "Leaving", uid: "leaving" });
    appId = ((await app.json()) as { id: string }).id;
    expect((await call("POST", "/api/v1/app/leaving/endpoint", { url: receiver.url })).status).toBe(201);
    expect(
      (await call("POST", "/api/v1/app/leaving/msg", { eventType: "a", payload: { n: 1 } })).status,
    ).toBe(202);
    await until("the message attempted", () => standIn.state.attempts().some((a) => a.appId === appId));
    // Another application, which must keep all of its own.
    await call("POST", "/api/v1/app", { name: "Staying", uid: "staying" });
    await call("POST", "/api/v1/app/staying/msg", { eventType: "a", payload: { n: 2 } });
  });

  afterAll(async () => {
    await standIn?.close();
    await receiver?.close();
  });

  it("answers 204 without a body, with or without a trailing slash, and removes everything of it", async () => {
    const deleted = await call("DELETE", "/api/v1/app/leaving/");
    expect(deleted.status).toBe(204);
    expect(await deleted.text()).toBe("");
    expect(standIn.state.apps().map((a) => a.uid)).toEqual(["staying"]);
    expect(standIn.state.endpoints().filter((e) => e.appId === appId)).toEqual([]);
    expect(standIn.state.messages().filter((m) => m.appId === appId)).toEqual([]);
    expect(standIn.state.attempts().filter((a) => a.appId === appId)).toEqual([]);
    expect(standIn.state.messages("staying")).toHaveLength(1);
    for (const path of [`/api/v1/app/${appId}`, "/api/v1/app/leaving/endpoint", "/api/v1/app/leaving/msg"]) {
      expect((await call("GET", path)).status, path).toBe(404);
    }
  });

  it("a second delete is 404; a new application with the uid starts empty", async () => {
    expect((await call("DELETE", "/api/v1/app/leaving")).status).toBe(404);
    const again = await call("POST", "/api/v1/app", { name: "Leaving", uid: "leaving" });
    expect(again.status).toBe(201);
    expect(((await again.json()) as { id: string }).id).not.toBe(appId);
    const messages = (await (await call("GET", "/api/v1/app/leaving/msg")).json()) as { data: unknown[] };
    expect(messages.data).toEqual([]);
  });

  it("every answer matches the OpenAPI document", () => {
    expect(contract.problems(standIn.state.requests())).toEqual([]);
  });
});
