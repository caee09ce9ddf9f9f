import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config/config.js";

describe("loadConfig", () => {
  it("uses the documented defaults", () => {
    const c = loadConfig({ SVIX_TOKEN: "sk_test_abc.def" });
    expect(c.server).toMatchObject({ host: "0.0.0.0", port: 8080, maxPayloadBytes: 262_144 });
    expect(c.nats.servers).toEqual(["nats://127.0.0.1:4222"]);
    expect(c.nats.subjectPrefix).toBe("jobs");
    expect(c.relay.concurrency).toBe(64);
    expect(c.portal).toEqual({ ratePerMinute: 30, burst: 10 });
    expect(c.log.level).toBe("info");
  });

  it("reads every variable", () => {
    const c = loadConfig({
      JOBHOOKS_ADDR: "[::1]:9090",
      NATS_URL: "nats://a:4222, nats://b:4222",
      NATS_USER: "u",
      NATS_PASSWORD: "p",
      SVIX_TOKEN: "sk_x",
      SVIX_SERVER_URL: "http://127.0.0.1:8071",
      JOBHOOKS_SUBJECT_PREFIX: "acme.jobs",
      JOBHOOKS_RELAY_CONCURRENCY: "8",
      JOBHOOKS_PORTAL_RATE_PER_MIN: "120",
      JOBHOOKS_PORTAL_BURST: "20",
      LOG_LEVEL: "DEBUG",
    });
    expect(c.portal).toEqual({ ratePerMinute: 120, burst: 20 });
    expect(c.server).toMatchObject({ host: "::1", port: 9090 });
    expect(c.nats).toMatchObject({ servers: ["nats://a:4222", "nats://b:4222"], user: "u", password: "p" });
    expect(c.svix).toMatchObject({
      token: "sk_x",
      serverUrl: "http://127.0.0.1:8071",
      requestTimeoutMs: 10_000,
    });
    expect(c.nats.subjectPrefix).toBe("acme.jobs");
    expect(c.relay.concurrency).toBe(8);
    expect(c.log.level).toBe("debug");
  });

  it("names every bad variable in one error, without echoing values", () => {
    let error: unknown;
    try {
      loadConfig({
        JOBHOOKS_ADDR: "nope",
        JOBHOOKS_RELAY_CONCURRENCY: "many",
        JOBHOOKS_PORTAL_RATE_PER_MIN: "0",
        LOG_LEVEL: "loud",
        NATS_PASSWORD: "hunter2-secret",
        SVIX_SERVER_URL: "not a url",
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of [
      "JOBHOOKS_ADDR",
      "JOBHOOKS_RELAY_CONCURRENCY",
      "JOBHOOKS_PORTAL_RATE_PER_MIN",
      "LOG_LEVEL",
      "SVIX_SERVER_URL",
      "SVIX_TOKEN",
      "NATS_USER",
    ]) {
      expect(message).toContain(name);
    }
    expect(message).not.toContain("hunter2-secret");
  });

  it("lets the local stack run without a Svix token", () => {
    expect(loadConfig({}, { requireSvixToken: false }).svix.token).toBeUndefined();
  });

  it("takes Svix's operational-webhook secret only in its whsec_ form, without echoing it", () => {
    const secret = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;
    const c = loadConfig({ SVIX_TOKEN: "sk_x", JOBHOOKS_SVIX_OPERATIONAL_SECRET: secret });
    expect(c.svix.operationalSecret).toBe(secret);
    expect(loadConfig({ SVIX_TOKEN: "sk_x" }).svix.operationalSecret).toBeUndefined();
    let err: unknown;
    try {
      loadConfig({ SVIX_TOKEN: "sk_x", JOBHOOKS_SVIX_OPERATIONAL_SECRET: "hunter2-not-a-secret" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(String(err)).toContain("JOBHOOKS_SVIX_OPERATIONAL_SECRET");
    expect(String(err)).not.toContain("hunter2");
  });

  it("bounds retries and the stop by default, below Kubernetes' 30 s grace", () => {
    const c = loadConfig({ SVIX_TOKEN: "testsk_x" });
    expect(c.relay.maxAttempts).toBe(10_000);
    expect(c.relay.maxAgeMs).toBe(24 * 3_600_000);
    expect(c.server.stopDeadlineMs).toBe(20_000);
  });

  it("refuses a stop deadline that leaves no time after the RPC grace", () => {
    expect(() =>
      loadConfig({
        SVIX_TOKEN: "testsk_x",
        JOBHOOKS_SHUTDOWN_GRACE_MS: "10000",
        JOBHOOKS_STOP_DEADLINE_MS: "5000",
      }),
    ).toThrow(/JOBHOOKS_STOP_DEADLINE_MS: must be above JOBHOOKS_SHUTDOWN_GRACE_MS/);
  });
  it("terminates TLS only with both a certificate and a key file", () => {
    const both = loadConfig({
      SVIX_TOKEN: "testsk_x",
      JOBHOOKS_TLS_CERT_FILE: "/etc/jobhooks/tls.crt",
      JOBHOOKS_TLS_KEY_FILE: "/etc/jobhooks/tls.key",
    });
    expect(both.server.tls).toEqual({ certFile: "/etc/jobhooks/tls.crt", keyFile: "/etc/jobhooks/tls.key" });
    expect(loadConfig({ SVIX_TOKEN: "testsk_x" }).server.tls).toBeUndefined();
    expect(() =>
      loadConfig({ SVIX_TOKEN: "testsk_x", JOBHOOKS_TLS_CERT_FILE: "/etc/jobhooks/tls.crt" }),
    ).toThrow(/JOBHOOKS_TLS_CERT_FILE, JOBHOOKS_TLS_KEY_FILE: set both or neither/);
  });
});
