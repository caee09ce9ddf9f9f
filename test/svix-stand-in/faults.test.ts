import { ApiException, type Svix } from "svix";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { until } from "../support/poll.js";
import { loadOpenApiContract } from "./openapi-contract.js";
import { rejectionOf, sdkFor } from "./support.js";

// Each injected fault, as the official SDK (retries off, as jobhooks' relay runs it) experiences it.

describe("fault injection", () => {
  let standIn: SvixStandIn;
  let svix: Svix;
  let eventCount = 0;
  const message = () => ({
    eventType: "job.created",
    eventId: `evt-${++eventCount}`,
    payload: { n: eventCount },
  });

  beforeAll(async () => {
    standIn = await startSvixStandIn({ deliver: false });
    svix = sdkFor(standIn);
    await svix.application.getOrCreate({ name: "Tenant", uid: "tenant" });
  });

  afterEach(() => {
    standIn.faults.clear();
    expect(loadOpenApiContract().problems(standIn.state.requests())).toEqual([]);
    standIn.state.clearRequests();
  });

  afterAll(async () => {
    await standIn?.close();
  });

  it("a 429 reaches the SDK as an ApiException with code 429 and a Retry-After header", async () => {
    standIn.faults.inject({ route: "message.create", kind: "429", count: 1, retryAfterSeconds: 7 });
    const error = await rejectionOf(svix.message.create("tenant", message()));
    expect(error).toBeInstanceOf(ApiException);
    expect((error as ApiException<{ code: string }>).code).toBe(429);
    expect((error as ApiException<unknown>).headers["retry-after"]).toBe("7");
    expect((await svix.message.create("tenant", message())).id).toMatch(/^msg_/);
  });

  it.each([500, 503])(
    "a %i reaches the SDK as an ApiException with that code and nothing is stored",
    async (code) => {
      const before = standIn.state.messages().length;
      standIn.faults.inject({ route: "v1.message.create", kind: String(code) as "500" | "503", count: 1 });
      const error = await rejectionOf(svix.message.create("tenant", message()));
      expect((error as ApiException<unknown>).code).toBe(code);
      expect(standIn.state.messages()).toHaveLength(before);
    },
  );

  it("a non-JSON answer makes the SDK fail parsing the body", async () => {
    standIn.faults.inject({ route: "message.create", kind: "non-json", count: 1 });
    const error = await rejectionOf(svix.message.create("tenant", message()));
    expect(error).toBeInstanceOf(SyntaxError);
  });

  it("latency beyond the SDK's requestTimeout is a timeout to the client while the message is still created", async () => {
    const slow = sdkFor(standIn, { requestTimeout: 200 });
    standIn.faults.inject({ route: "message.create", kind: "latency", latencyMs: 700, count: 1 });
    const lost = message();
    const error = await rejectionOf(slow.message.create("tenant", lost, { idempotencyKey: lost.eventId }));
    expect((error as Error).name).toBe("TimeoutError");
    await until("the late message", () => standIn.state.messages().some((m) => m.eventId === lost.eventId));
    // The retry after a lost response: same key, same answer, still one message.
    const retried = await svix.message.create("tenant", lost, { idempotencyKey: lost.eventId });
    expect(
      standIn.state
        .messages()
        .filter((m) => m.eventId === lost.eventId)
        .map((m) => m.id),
    ).toEqual([retried.id]);
  });

  it("a connection reset reaches the SDK as a network error", async () => {
    standIn.faults.inject({ route: "message.create", kind: "reset", count: 1 });
    const error = await rejectionOf(svix.message.create("tenant", message()));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error & { cause?: { code?: string } }).cause?.code).toMatch(/ECONNRESET|UND_ERR_SOCKET/);
  });

  it("a total outage fails every API call until it is cleared", async () => {
    standIn.faults.inject({ route: "*", kind: "503", fraction: 1 });
    for (const call of [
      () => svix.message.create("tenant", message()),
      () => svix.application.get("tenant"),
      () => svix.eventType.list(),
      () => svix.message.create("tenant", message()),
    ]) {
      expect(((await rejectionOf(call())) as ApiException<unknown>).code).toBe(503);
    }
    standIn.faults.clear();
    expect((await svix.application.get("tenant")).uid).toBe("tenant");
  });

  it("a rule with a count hits exactly that many requests", async () => {
    standIn.faults.inject({ route: "message.create", kind: "500", count: 3 });
    const outcomes: (number | "ok")[] = [];
    for (let i = 0; i < 5; i++) {
      outcomes.push(
        await svix.message.create("tenant", message()).then(
          () => "ok" as const,
          (e: ApiException<unknown>) => e.code,
        ),
      );
    }
    expect(outcomes).toEqual([500, 500, 500, "ok", "ok"]);
    expect(standIn.faults.list()).toEqual([]);
  });

  it("a fraction hits roughly that share of matching requests", async () => {
    standIn.faults.inject({ route: "application.get", kind: "500", fraction: 0.5 });
    let failed = 0;
    for (let i = 0; i < 200; i++) {
      await svix.application.get("tenant").catch(() => {
        failed++;
      });
    }
    // Binomial(200, 0.5): outside 50..150 has a probability below 1e-12.
    expect(failed).toBeGreaterThan(50);
    expect(failed).toBeLessThan(150);
  });

  it("a path pattern with a method selects only that route", async () => {
    standIn.faults.inject({ route: "POST /api/v1/app/{app_id}/msg", kind: "500" });
    expect(
      ((await rejectionOf(svix.message.create("tenant", message()))) as ApiException<unknown>).code,
    ).toBe(500);
    expect(
      await svix.message.get("tenant", `evt-${eventCount - 1}`).catch((e: ApiException<unknown>) => e.code),
    ).not.toBe(500);
    expect((await svix.application.get("tenant")).uid).toBe("tenant");
  });

  it("a body match fails one job's messages while the same application's other jobs are created", async () => {
    // Quoted, the tag matches job-7 only, not job-70.
    standIn.faults.inject({ route: "message.create", bodyContains: '"job.job-7"', kind: "503" });
    const ofJob = (job: string) => svix.message.create("tenant", { ...message(), tags: [`job.${job}`] });
    for (let i = 0; i < 3; i++)
      expect(((await rejectionOf(ofJob("job-7"))) as ApiException<unknown>).code).toBe(503);
    expect((await ofJob("job-70")).id).toMatch(/^msg_/);
    expect((await svix.message.create("tenant", message())).id).toMatch(/^msg_/);
    expect(standIn.faults.list()).toMatchObject([{ bodyContains: '"job.job-7"', injected: 3 }]);
  });

  it("the admin API takes a body match and refuses an empty one", async () => {
    const post = (rule: unknown) =>
      fetch(`${standIn.url}/_stand-in/faults`, {
        method: "POST",
        headers: { authorization: `Bearer ${standIn.token}`, "content-type": "application/json" },
        body: JSON.stringify(rule),
      });
    const empty = await post({ kind: "500", bodyContains: "" });
    expect(empty.status).toBe(422);
    expect(JSON.stringify(await empty.json())).toContain("bodyContains");
    expect((await post({ kind: "500", route: "message.create", bodyContains: "job.x" })).status).toBe(201);
    await rejectionOf(svix.message.create("tenant", { ...message(), tags: ["job.x"] }));
    expect((await svix.message.create("tenant", { ...message(), tags: ["job.y"] })).id).toMatch(/^msg_/);
  });

  it("a rate limit lets N requests a second through across applications and answers the rest 429 with Retry-After", async () => {
    // A latency rule before it does not hide it.
    standIn.faults.inject({ route: "message.create", kind: "latency", latencyMs: 1 });
    const post = await fetch(`${standIn.url}/_stand-in/faults`, {
      method: "POST",
      headers: { authorization: `Bearer ${standIn.token}`, "content-type": "application/json" },
      body: JSON.stringify({ route: "message.create", kind: "rate-limit", ratePerSecond: 5 }),
    });
    expect(post.status).toBe(201);
    await svix.application.getOrCreate({ name: "Other", uid: "other" });
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        svix.message.create(i % 2 ? "tenant" : "other", message()).then(
          () => 201,
          (err: ApiException<unknown>) => `${err.code} ${err.headers["retry-after"]}`,
        ),
      ),
    );
    expect(answers.filter((a) => a === 201)).toHaveLength(5);
    expect(answers.filter((a) => a === "429 1")).toHaveLength(3);
    const rule = await post.clone().json();
    expect(rule).toMatchObject({ kind: "rate-limit", ratePerSecond: 5 });
  });

  it("the admin API injects, lists and clears the same rules and reports counters", async () => {
    const admin = (path: string, init: RequestInit = {}) =>
      fetch(`${standIn.url}/_stand-in${path}`, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${standIn.token}` },
      });
    const created = await admin("/faults", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ route: "message.create", kind: "429", count: 1 }),
    });
    expect(created.status).toBe(201);
    expect(((await (await admin("/faults")).json()) as { data: unknown[] }).data).toHaveLength(1);
    expect(
      ((await rejectionOf(svix.message.create("tenant", message()))) as ApiException<unknown>).code,
    ).toBe(429);

    const duplicate = message();
    await svix.message.create("tenant", duplicate);
    await rejectionOf(svix.message.create("tenant", duplicate));
    const stats = (await (await admin("/stats")).json()) as {
      requests: Record<string, Record<string, number>>;
      messagesStored: number;
      duplicatesRefused: number;
    };
    expect(stats.requests["v1.message.create"]?.["429"]).toBeGreaterThanOrEqual(1);
    expect(stats.requests["v1.message.create"]?.["409"]).toBeGreaterThanOrEqual(1);
    expect(stats.messagesStored).toBe(standIn.state.messages().length);
    expect(stats.duplicatesRefused).toBeGreaterThanOrEqual(1);

    const bad = await admin("/faults", {
      method: "POST",
      body: JSON.stringify({ kind: "teapot", fraction: 2 }),
    });
    expect(bad.status).toBe(422);
    await admin("/faults", { method: "POST", body: JSON.stringify({ kind: "503" }) });
    expect((await admin("/faults", { method: "DELETE" })).status).toBe(204);
    expect(standIn.faults.list()).toEqual([]);
  });

  it("an invalid rule is refused in code as well", () => {
    expect(() => standIn.faults.inject({ kind: "latency" })).toThrow(/latencyMs/);
  });
});
