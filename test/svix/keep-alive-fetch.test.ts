import { once } from "node:events";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { ApiException, Svix } from "svix";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { classifySvixError } from "../../src/svix/classify.js";
import { keepAliveFetch } from "../../src/svix/keep-alive-fetch.js";

/**
 * The svix SDK reads Svix's answers through our fetch: what it needs of a Response (status, body,
 * headers on errors) must arrive intact, or the relay misreads Retry-After and 409s.
 */
describe("keepAliveFetch under the svix SDK", () => {
  let server: http.Server;
  let url: string;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === "/api/v1/app/silent") return; // never answers
      if (req.url === "/api/v1/app/limited") {
        res.writeHead(429, { "content-type": "application/json", "retry-after": "7", "x-two": ["a", "b"] });
        return void res.end(JSON.stringify({ code: "rate_limited", detail: "slow down" }));
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          uid: "app_1",
          name: "tenant-a",
          id: "app_1",
          createdAt: "2026-01-01T00:00:00Z",
          updatedAt: "2026-01-01T00:00:00Z",
          metadata: {},
        }),
      );
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });

  const sdk = (timeoutMs?: number) =>
    new Svix("testsk_abc.eu", {
      serverUrl: url,
      retryScheduleInMs: [],
      fetch: keepAliveFetch({ maxSockets: 2, ...(timeoutMs ? { timeoutMs } : {}) }),
    });

  it("hands the SDK a 2xx body it parses into its own types", async () => {
    const app = await sdk().application.get("tenant-a");
    expect(app.name).toBe("tenant-a");
    expect(app.createdAt).toBeInstanceOf(Date);
  });

  it("hands the SDK an error's status, JSON body and every header", async () => {
    const err = await sdk()
      .application.get("limited")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiException);
    const api = err as ApiException<{ code: string }>;
    expect(api.code).toBe(429);
    expect(api.body.code).toBe("rate_limited");
    expect(api.headers["retry-after"]).toBe("7");
    expect(api.headers["x-two"]).toBe("a, b");
  });

  it("ends a call Svix does not answer within the time limit, as a timeout the relay retries", async () => {
    const err = await sdk(200)
      .application.get("silent")
      .catch((e: unknown) => e);
    expect((err as Error).name).toBe("TimeoutError");
    expect(classifySvixError(err)).toEqual({ kind: "transient", reason: "Svix did not answer in time" });
  });
});
