import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type RequestLogEntry,
  type SvixStandIn,
  startSvixStandIn,
} from "../../src/local/svix-stand-in/index.js";
import { loadOpenApiContract } from "./openapi-contract.js";

// The contract check itself, and the requests the spec rejects: raw HTTP, so nothing in between
// (like the SDK's serializers) can tidy a request up before the stand-in sees it.

const contract = loadOpenApiContract();

function entry(overrides: Partial<RequestLogEntry>): RequestLogEntry {
  return {
    at: "",
    method: "GET",
    path: "/",
    route: null,
    status: 200,
    requestBody: undefined,
    responseBody: "",
    ...overrides,
  };
}

const VALID_APP = {
  id: "app_2xYlR3ZcNbFEt0ncERvJWjJnY2Y",
  uid: null,
  name: "n",
  throttleRate: null,
  metadata: {},
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:00.000Z",
};

describe("the OpenAPI contract check", () => {
  it("accepts a response that matches its operation's schema, nulls included", () => {
    const ok = entry({ route: "v1.application.get", responseBody: JSON.stringify(VALID_APP) });
    expect(contract.problems([ok])).toEqual([]);
  });

  it("reports missing fields, wrong formats and out-of-range integers", () => {
    const broken = entry({
      route: "v1.application.get",
      responseBody: JSON.stringify({
        ...VALID_APP,
        id: undefined,
        createdAt: "yesterday",
        throttleRate: 70_000,
      }),
    });
    const problems = contract.problems([broken]).join("\n");
    expect(problems).toMatch(/must have required property 'id'/);
    expect(problems).toMatch(/createdAt must match format "date-time"/);
    expect(problems).toMatch(/throttleRate must match format "uint16"/);
  });

  it("reports a status the operation does not document", () => {
    expect(
      contract.problems([entry({ route: "v1.application.get", status: 418, responseBody: "{}" })]),
    ).toHaveLength(1);
  });

  it("reports a body on a response the spec says is empty", () => {
    const problems = contract.problems([
      entry({ route: "v1.endpoint.set-headers", method: "PUT", status: 204, responseBody: "{}" }),
    ]);
    expect(problems).toHaveLength(1);
  });
});

describe("requests the spec rejects", () => {
  let standIn: SvixStandIn;
  const post = (path: string, body: string, headers: Record<string, string> = {}) =>
    fetch(`${standIn.url}${path}`, {
      method: "POST",
      body,
      headers: { authorization: `Bearer ${standIn.token}`, "content-type": "application/json", ...headers },
    });

  beforeAll(async () => {
    standIn = await startSvixStandIn({ deliver: false });
    const created = await post("/api/v1/app", JSON.stringify({ name: "Tenant", uid: "tenant" }));
    expect(created.status).toBe(201);
  });

  afterAll(async () => {
    await standIn?.close();
  });

  const invalidMessages: [string, unknown, string[]][] = [
    ["no eventType", { payload: {} }, ["body", "eventType"]],
    ["an eventType with a space", { eventType: "job done", payload: {} }, ["body", "eventType"]],
    ["a payload that is not an object", { eventType: "job.created", payload: "text" }, ["body", "payload"]],
    ["no payload", { eventType: "job.created" }, ["body", "payload"]],
    ["an empty eventId", { eventType: "job.created", eventId: "", payload: {} }, ["body", "eventId"]],
    [
      "an eventId of 257 characters",
      { eventType: "job.created", eventId: "e".repeat(257), payload: {} },
      ["body", "eventId"],
    ],
    [
      "eleven channels",
      { eventType: "a", payload: {}, channels: Array.from({ length: 11 }, (_, i) => `c${i}`) },
      ["body", "channels"],
    ],
    ["a channel with a slash", { eventType: "a", payload: {}, channels: ["a/b"] }, ["body", "channels", "0"]],
    ["six tags", { eventType: "a", payload: {}, tags: ["a", "b", "c", "d", "e", "f"] }, ["body", "tags"]],
    [
      "an inline application without name",
      { eventType: "a", payload: {}, application: { uid: "x" } },
      ["body", "application", "name"],
    ],
    ["a body that is an array", [], ["body"]],
  ];

  it.each(invalidMessages)(
    "a message with %s is answered 422 with that field's loc",
    async (_what, body, loc) => {
      expect(contract.errorsAgainst("MessageIn", body)).not.toEqual([]);
      const response = await post("/api/v1/app/tenant/msg", JSON.stringify(body));
      expect(response.status).toBe(422);
      const answer = (await response.json()) as { detail: { loc: string[] }[] };
      expect(answer.detail.map((d) => d.loc)).toContainEqual(loc);
    },
  );

  it("a body that is not JSON is answered 422 at loc body", async () => {
    const response = await post("/api/v1/app/tenant/msg", "{not json");
    expect(response.status).toBe(422);
    expect(((await response.json()) as { detail: { loc: string[] }[] }).detail[0]?.loc).toEqual(["body"]);
  });

  it("an app id with characters outside the uid pattern is answered 422 at loc path.app_id", async () => {
    const response = await post("/api/v1/app/bad%20id/msg", JSON.stringify({ eventType: "a", payload: {} }));
    expect(response.status).toBe(422);
    expect(((await response.json()) as { detail: { loc: string[] }[] }).detail[0]?.loc).toEqual([
      "path",
      "app_id",
    ]);
  });

  it("a limit above 250 is answered 422 at loc query.limit", async () => {
    const response = await fetch(`${standIn.url}/api/v1/app?limit=251`, {
      headers: { authorization: `Bearer ${standIn.token}` },
    });
    expect(response.status).toBe(422);
  });

  it("an endpoint without a usable url is answered 422 at loc body.url", async () => {
    const response = await post("/api/v1/app/tenant/endpoint", JSON.stringify({ url: "not a url" }));
    expect(response.status).toBe(422);
    expect(((await response.json()) as { detail: { loc: string[] }[] }).detail[0]?.loc).toEqual([
      "body",
      "url",
    ]);
  });

  it("a message body over 1 MiB is refused with 413 and nothing is stored", async () => {
    const before = standIn.state.messages().length;
    const payload = { blob: "x".repeat(1024 * 1024) };
    const response = await post("/api/v1/app/tenant/msg", JSON.stringify({ eventType: "a", payload }));
    expect(response.status).toBe(413);
    expect(((await response.json()) as { code: string }).code).toBe("payload_too_large");
    expect(standIn.state.messages()).toHaveLength(before);
  });

  it("a message just under 1 MiB is accepted", async () => {
    const payload = { blob: "x".repeat(1000 * 1000) };
    const response = await post("/api/v1/app/tenant/msg", JSON.stringify({ eventType: "a", payload }));
    expect(response.status).toBe(202);
  });

  it("an unknown path is answered 404 in Svix's error shape", async () => {
    const response = await fetch(`${standIn.url}/api/v1/nothing-here`, {
      headers: { authorization: `Bearer ${standIn.token}` },
    });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ code: "not_found", detail: "Not found" });
  });

  it("an endpoint created with the older filterTypes field filters on those event types", async () => {
    const response = await post(
      "/api/v1/app/tenant/endpoint",
      JSON.stringify({ url: "http://127.0.0.1:9/", filterTypes: ["job.failed"] }),
    );
    expect(response.status).toBe(201);
    expect(((await response.json()) as { eventTypes: string[] }).eventTypes).toEqual(["job.failed"]);
  });

  it("every answer above matches the OpenAPI document", () => {
    expect(standIn.state.requests().length).toBeGreaterThan(10);
    expect(contract.problems(standIn.state.requests())).toEqual([]);
  });
});
