import * as http from "node:http";
import { Writable } from "node:stream";
import fc from "fast-check";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateJobEvent } from "../../src/events/validate.js";
import type { JobEvent } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { createLogger } from "../../src/log/logger.js";
import type { JobEventPublisher } from "../../src/nats/publish-job-event.js";
import { serviceTokenVerifier } from "../../src/server/auth.js";
import { createRateLimiter } from "../../src/server/rate-limit.js";
import { type RunningServer, startServer } from "../../src/server/server.js";
import { eventJson } from "./arbitraries.js";

/**
 * The Connect JSON path end to end over loopback HTTP — gate, decode, field errors, validation,
 * size limits — with an in-memory publisher in place of JetStream (what is published is what
 * would be stored), so 10,000 requests take seconds.
 */
const TOKEN = "fuzz_service_token_0123456789abcdef";
const published: Array<{ event: JobEvent; body: Uint8Array }> = [];
const publisher: JobEventPublisher = {
  async publish(event, body) {
    published.push({ event, body });
    return { streamSequence: BigInt(published.length), duplicate: false };
  },
};
let server: RunningServer;

beforeAll(async () => {
  server = await startServer({
    host: "127.0.0.1",
    port: 0,
    publisher,
    portal: undefined,
    portalRate: createRateLimiter({ perMinute: 1, burst: 1 }),
    verifiers: [serviceTokenVerifier([TOKEN])],
    readiness: { checks: () => ({}) },
    registry: new Registry(),
    maxPayloadBytes: 1_024,
    publishTimeoutMs: 5_000,
    shutdownGraceMs: 1_000,
    // Not under test here: only PublishJobEvent is fuzzed.
    deliveries: { list: () => Promise.reject(new Error("not used")) },
    log: createLogger("silent", new Writable({ write: (_c, _e, done) => done() })),
  });
});

afterAll(async () => {
  agent.destroy();
  await server?.close();
});

const body = fc.oneof(
  { weight: 8, arbitrary: eventJson.map((event) => JSON.stringify({ event })) },
  { weight: 1, arbitrary: eventJson.map((event) => JSON.stringify(event)) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 2 }) },
  { weight: 1, arbitrary: eventJson.map((event) => JSON.stringify({ event }).slice(0, -2)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
);

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

/** node:http with keep-alive: a third of fetch's cost per request, so the 10,000 stay quick. */
function post(body: string): Promise<Answer> {
  const url = new URL(`${server.url}/jobhooks.v1.WebhookService/PublishJobEvent`);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        agent,
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) });
          } catch (err) {
            reject(err);
          }
        });
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

interface Answer {
  status: number;
  json: { code?: string; message?: string; details?: Array<{ type: string }>; eventId?: string };
}

describe("the Connect JSON path under 10,000 generated requests", () => {
  it("answers each with OK for a valid event, or INVALID_ARGUMENT/RESOURCE_EXHAUSTED with BadRequest; never a crash", {
    timeout: 120_000,
  }, async () => {
    const inputs = fc.sample(body, { numRuns: 10_000, seed: 20261129 });
    const answers: Answer[] = new Array(inputs.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < inputs.length) {
          const i = next++;
          answers[i] = await post(inputs[i] as string);
        }
      }),
    );

    const tally = new Map<string, number>();
    answers.forEach((a, i) => {
      const kind = a.status === 200 ? "ok" : `${a.status} ${a.json.code}`;
      tally.set(kind, (tally.get(kind) ?? 0) + 1);
      const context = `input ${JSON.stringify(inputs[i])} answered ${a.status} ${JSON.stringify(a.json)}`;
      if (a.status === 200) {
        expect(a.json.eventId, context).toBeTruthy();
        return;
      }
      expect([400, 429], context).toContain(a.status);
      expect(a.json.code, context).toBe(a.status === 400 ? "invalid_argument" : "resource_exhausted");
      expect(a.json.message, context).toBeTruthy();
      expect(
        a.json.details?.some((d) => d.type === "google.rpc.BadRequest"),
        context,
      ).toBe(true);
    });
    // Never an invalid event accepted: everything published passes the validator again.
    expect(published.length).toBe(tally.get("ok") ?? 0);
    for (const p of published) {
      expect(validateJobEvent(p.event).kind).toBe("valid");
      expect(p.body.byteLength).toBeLessThanOrEqual(1_024);
    }
    console.log("Connect JSON fuzz outcomes:", Object.fromEntries(tally));
    expect(tally.get("ok") ?? 0).toBeGreaterThan(100);
  });
});
