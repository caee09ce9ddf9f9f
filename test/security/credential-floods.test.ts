import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { apiKeyDigest, generateApiKey } from "../../src/credentials/api-key.js";
import { RetryInfoSchema } from "../../src/gen/google/rpc/error_details_pb.js";
import { JobStatus, WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import type { ApiKeyRecord } from "../../src/nats/api-key-store.js";
import { startApiKeyVerifier } from "../../src/server/api-key-verifier.js";
import { SERVICE_TOKEN, useServiceWithNats } from "../support/service.js";

/** Issue 11.6: a flood of credentials costs us little and NATS nothing much. */
const log = pino({ level: "silent" });

/** A key store whose look-ups take a while, counting how many run and how many at once. */
function slowStore(delayMs = 20) {
  const records = new Map<string, ApiKeyRecord>();
  const store = {
    records,
    lookups: new Map<string, number>(),
    inFlight: 0,
    maxInFlight: 0,
    async findByDigest(digest: string) {
      store.lookups.set(digest, (store.lookups.get(digest) ?? 0) + 1);
      store.inFlight++;
      store.maxInFlight = Math.max(store.maxInFlight, store.inFlight);
      // The delay is the point: look-ups in flight at once are what these tests count.
      await new Promise((r) => setTimeout(r, delayMs));
      store.inFlight--;
      const record = records.get(digest);
      return record ? { digest, record } : undefined;
    },
    async watchChanges() {
      return () => {};
    },
  };
  return store;
}

describe("API key look-ups under a flood", () => {
  it("concurrent checks of one key share a single store look-up", async () => {
    const store = slowStore();
    const v = await startApiKeyVerifier({ store, log });
    const { key } = generateApiKey();
    await Promise.all(Array.from({ length: 50 }, () => v.verify(key)));
    expect(store.lookups.get(apiKeyDigest(key))).toBe(1);
  });

  it("look-ups in flight are bounded; the rest are told to retry, never queued without limit", async () => {
    const store = slowStore(50);
    const v = await startApiKeyVerifier({ store, log, maxInFlight: 8 });
    const outcomes = await Promise.all(
      Array.from({ length: 100 }, () =>
        Promise.resolve()
          .then(() => v.verify(generateApiKey().key))
          .then(
            () => "checked",
            (e: unknown) => Code[ConnectError.from(e).code],
          ),
      ),
    );
    expect(store.maxInFlight).toBeLessThanOrEqual(8);
    expect(outcomes.filter((o) => o === "Unavailable").length).toBeGreaterThan(0);
  });

  it("random keys never push a valid key out of the cache", async () => {
    const store = slowStore(1);
    const { key } = generateApiKey();
    store.records.set(apiKeyDigest(key), { id: "key_a", tenantId: "acme", createdAt: "" });
    const v = await startApiKeyVerifier({ store, log, maxCached: 10, cacheMs: 60_000 });
    expect(await v.verify(key)).toMatchObject({ tenantId: "acme" });
    for (let i = 0; i < 200; i++) await v.verify(generateApiKey().key);
    expect(await v.verify(key)).toMatchObject({ tenantId: "acme" });
    expect(store.lookups.get(apiKeyDigest(key))).toBe(1);
  });
});

describe("failed authentications per client address", () => {
  const stack = useServiceWithNats();

  it("an address that keeps guessing is refused with RESOURCE_EXHAUSTED and a retry delay", async () => {
    const client = createClient(WebhookService, createGrpcTransport({ baseUrl: stack.svc.url }));
    const req = { event: { tenantId: "acme", jobId: "j-flood", status: JobStatus.CREATED } };
    const codes: Array<Code | -1> = [];
    let last: ConnectError | undefined;
    for (let i = 0; i < 60; i++) {
      last = await client
        .publishJobEvent(req, { headers: { authorization: `Bearer ${generateApiKey().key}` } })
        .then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
      codes.push(last?.code ?? -1);
    }
    expect(codes[0]).toBe(Code.Unauthenticated);
    expect(codes.at(-1)).toBe(Code.ResourceExhausted);
    expect(codes.filter((c) => c === Code.Unauthenticated).length).toBeLessThanOrEqual(31);
    const delay = last?.findDetails(RetryInfoSchema)[0]?.retryDelay;
    expect(Number(delay?.seconds ?? 0) + (delay?.nanos ?? 0) / 1e9).toBeGreaterThan(0);
    // The valid token of the same address still works: known credentials are checked in memory
    // before the address's failures are, and only a guess that would cost a look-up waits.
    const ok = await client.publishJobEvent(req, { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } });
    expect(ok.eventId).toBe("j-flood.created");
  });
});
