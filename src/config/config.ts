import { BlockList } from "node:net";
import { z } from "zod";
import { addToBlockList } from "./ip-ranges.js";

/**
 * The service's whole configuration, from the environment (README "Configuration").
 * loadConfig reports every bad variable at once, so an operator fixes a deployment in one pass.
 */
export interface Config {
  server: {
    host: string;
    port: number;
    /** Largest accepted event (its stored JSON), in bytes. */
    maxPayloadBytes: number;
    serviceTokensFile: string | undefined;
    /** PEM files to terminate TLS in-process (both or neither); without them the port is cleartext. */
    tls: { certFile: string; keyFile: string } | undefined;
    /** How long SIGTERM waits for in-flight RPCs before closing connections. */
    shutdownGraceMs: number;
    /** The whole stop (server, relay, NATS drain) ends within this, below the orchestrator's grace. */
    stopDeadlineMs: number;
    /** Upper bound on a PublishJobEvent call's wait for JetStream when the caller sets no deadline. */
    publishTimeoutMs: number;
    maxConnections: number;
    rpcDeadlineMs: number;
    /** Longest a request's body may take to arrive. */
    bodyDeadlineMs: number;
    /** Bytes of request bodies read and decoded at once, all callers together; undefined: half the heap. */
    requestMemoryBytes: number | undefined;
    /** Connections nobody has authenticated on, per TCP peer address. */
    maxUnprovenConnectionsPerAddress: number;
    /** Proxies allowed to name the client's address (CIDR or address), and the header they use. */
    clientAddress: { trustedProxies: string[]; header: string };
  };
  nats: NatsConfig;
  svix: {
    token: string | undefined;
    serverUrl: string | undefined;
    /** Per-request time limit for Svix calls. */
    requestTimeoutMs: number;
    /** Verifies Svix's operational webhooks; without it POST /svix/operational-webhooks is 404. */
    operationalSecret: string | undefined;
  };
  relay: {
    /** Off for API-only replicas: they accept events; other replicas relay them. */
    enabled: boolean;
    /** Ceiling of Svix requests in flight per replica (adapted down on 429s). */
    concurrency: number;
    /** Failed Svix attempts after which an event Svix keeps failing (while it accepts others) is dead-lettered. */
    maxAttempts: number;
    /** Age after which such an event is dead-lettered. */
    maxAgeMs: number;
    /** How long JetStream waits for an ack before redelivering; bounds the stall after a crash. */
    ackWaitMs: number;
    /** `tenant weight` lines: tenants' shares of the Svix budget (1 unless listed); re-read on change. */
    tenantWeightsFile: string | undefined;
  };
  portal: {
    /** GetPortalLink calls a caller may make per minute, sustained (token bucket refill). */
    ratePerMinute: number;
    /** Calls a caller may make at once before the rate applies (bucket size). */
    burst: number;
  };
  log: {
    level: LogLevel;
  };
}

export interface NatsConfig {
  servers: string[];
  creds: string | undefined;
  token: string | undefined;
  user: string | undefined;
  password: string | undefined;
  tlsCa: string | undefined;
  subjectPrefix: string;
  /** Replicas of the JOBS and JOBS_DLQ streams and of the relay consumer (3 on a cluster). */
  streamReplicas: number;
  /** JetStream's de-duplication window for Nats-Msg-Id; publish retries stay inside it. */
  duplicateWindowMs: number;
  /** JOBS' byte limit; when reached, new events are refused (never stored ones deleted). */
  streamMaxBytes: number;
  /** JOBS_DLQ's limits: dead letters older or beyond these go first. */
  dlqMaxBytes: number;
  dlqMaxAgeMs: number;
  /** JOBHOOKS_AUDIT's limits: audit records older or beyond these go first. */
  auditMaxBytes: number;
  auditMaxAgeMs: number;
}

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join("; ")}`);
    this.name = "ConfigError";
  }
}

const optional = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));
const int = (def: number, min: number, max: number) =>
  z
    .string()
    .optional()
    .transform((v) => (v === undefined || v.trim() === "" ? String(def) : v.trim()))
    .pipe(
      z.coerce
        .number<string>({ error: "must be a whole number" })
        .int("must be a whole number")
        .min(min, `must be at least ${min}`)
        .max(max, `must be at most ${max}`),
    );

const schema = z.object({
  JOBHOOKS_ADDR: z
    .string()
    .optional()
    .transform((v) => v?.trim() || "0.0.0.0:8080")
    .pipe(z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, "must be host:port, e.g. 0.0.0.0:8080"))
    .transform((v, ctx) => {
      const i = v.lastIndexOf(":");
      const port = Number(v.slice(i + 1));
      if (port > 65535) ctx.addIssue({ code: "custom", message: "port must be 0-65535" });
      return { host: v.slice(0, i).replace(/^\[|\]$/g, ""), port };
    }),
  NATS_URL: z
    .string()
    .optional()
    .transform((v) => (v?.trim() || "nats://127.0.0.1:4222").split(",").map((s) => s.trim()))
    .pipe(
      z
        .array(
          z.string().regex(/^(nats|tls|ws|wss):\/\/[^\s]+$|^[^\s:/]+:\d+$/, "must be nats://host:port[,…]"),
        )
        .min(1),
    ),
  NATS_CREDS: optional,
  NATS_TOKEN: optional,
  NATS_USER: optional,
  NATS_PASSWORD: optional,
  NATS_TLS_CA: optional,
  SVIX_TOKEN: optional,
  SVIX_SERVER_URL: optional.pipe(z.url("must be a URL, e.g. https://api.eu.svix.com").optional()),
  JOBHOOKS_SVIX_OPERATIONAL_SECRET: optional.pipe(
    z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/=]{24,}$/, "must be Svix's signing secret, whsec_ followed by base64")
      .optional(),
  ),
  JOBHOOKS_SERVICE_TOKENS_FILE: optional,
  JOBHOOKS_TLS_CERT_FILE: optional,
  JOBHOOKS_TLS_KEY_FILE: optional,
  JOBHOOKS_RELAY_TENANT_WEIGHTS_FILE: optional,
  JOBHOOKS_SUBJECT_PREFIX: z
    .string()
    .optional()
    .transform((v) => v?.trim() || "jobs")
    .pipe(
      z
        .string()
        .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "must be dot-separated tokens of [A-Za-z0-9_-]"),
    ),
  JOBHOOKS_RELAY_CONCURRENCY: int(64, 1, 10_000),
  JOBHOOKS_SVIX_TIMEOUT_MS: int(10_000, 100, 60_000),
  JOBHOOKS_RELAY_ACK_WAIT_MS: int(30_000, 1_000, 600_000),
  JOBHOOKS_RELAY_MAX_ATTEMPTS: int(10_000, 1, 1_000_000_000),
  JOBHOOKS_RELAY_MAX_AGE_MS: int(24 * 3_600_000, 1_000, 365 * 24 * 3_600_000),
  JOBHOOKS_RELAY_ENABLED: z
    .string()
    .optional()
    .transform((v) => v?.trim().toLowerCase() || "true")
    .pipe(z.enum(["true", "false", "1", "0"], "must be true or false"))
    .transform((v) => v === "true" || v === "1"),
  JOBHOOKS_MAX_PAYLOAD_BYTES: int(256 * 1024, 1024, 1024 * 1024),
  JOBHOOKS_STREAM_REPLICAS: int(1, 1, 5),
  JOBHOOKS_DUPLICATE_WINDOW_MS: int(120_000, 1_000, 24 * 3_600_000),
  JOBHOOKS_STREAM_MAX_BYTES: int(1024 ** 3, 64 * 1024, 2 ** 50),
  JOBHOOKS_DLQ_MAX_BYTES: int(256 * 1024 ** 2, 64 * 1024, 2 ** 50),
  JOBHOOKS_DLQ_MAX_AGE_MS: int(30 * 24 * 3_600_000, 60_000, 10 * 365 * 24 * 3_600_000),
  JOBHOOKS_AUDIT_MAX_BYTES: int(256 * 1024 ** 2, 64 * 1024, 2 ** 50),
  JOBHOOKS_AUDIT_MAX_AGE_MS: int(400 * 24 * 3_600_000, 60_000, 10 * 365 * 24 * 3_600_000),
  JOBHOOKS_SHUTDOWN_GRACE_MS: int(10_000, 0, 600_000),
  JOBHOOKS_STOP_DEADLINE_MS: int(20_000, 1_000, 600_000),
  JOBHOOKS_PUBLISH_TIMEOUT_MS: int(10_000, 100, 600_000),
  JOBHOOKS_MAX_CONNECTIONS: int(4_096, 1, 1_000_000),
  JOBHOOKS_RPC_DEADLINE_MS: int(30_000, 100, 600_000),
  JOBHOOKS_MAX_UNAUTHENTICATED_CONNECTIONS_PER_ADDRESS: int(256, 1, 1_000_000),
  JOBHOOKS_BODY_DEADLINE_MS: optional.pipe(
    z.coerce.number<string>().int("must be a whole number").min(100).max(600_000).optional(),
  ),
  JOBHOOKS_REQUEST_MEMORY_BYTES: optional.pipe(
    z.coerce
      .number<string>()
      .int("must be a whole number")
      .min(32 * 1024 * 1024, "must be at least 33554432 (32 MiB: one 16 MiB batch and its decoding)")
      .max(2 ** 40)
      .optional(),
  ),
  JOBHOOKS_TRUSTED_PROXIES: optional.transform((v, ctx) => {
    const entries = (v ?? "")
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e !== "");
    for (const entry of entries) {
      try {
        addToBlockList(new BlockList(), entry);
      } catch (err) {
        ctx.addIssue({ code: "custom", message: (err as Error).message });
      }
    }
    return entries;
  }),
  JOBHOOKS_CLIENT_ADDRESS_HEADER: z
    .string()
    .optional()
    .transform((v) => v?.trim().toLowerCase() || "x-forwarded-for")
    .pipe(z.string().regex(/^[a-z0-9-]+$/, "must be a header name, e.g. x-forwarded-for")),
  JOBHOOKS_PORTAL_RATE_PER_MIN: int(30, 1, 100_000),
  JOBHOOKS_PORTAL_BURST: int(10, 1, 10_000),
  LOG_LEVEL: z
    .string()
    .optional()
    .transform((v) => v?.trim().toLowerCase() || "info")
    .pipe(z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])),
});

export interface LoadConfigOptions {
  /** Svix is optional only for the local stack, which starts its own stand-in. */
  requireSvixToken?: boolean;
}

export function loadConfig(env: NodeJS.ProcessEnv, opts: LoadConfigOptions = {}): Config {
  const parsed = schema.safeParse(env);
  const problems: string[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // Never echo the value: some of these variables hold secrets.
      problems.push(`${issue.path.join(".") || "environment"}: ${issue.message}`);
    }
  }
  // Cross-variable rules read the raw environment, so they are reported even when other
  // variables failed to parse.
  const set = (name: string) => (env[name]?.trim() ?? "") !== "";
  if (opts.requireSvixToken !== false && !set("SVIX_TOKEN")) problems.push("SVIX_TOKEN: required");
  if (set("NATS_USER") && !set("NATS_PASSWORD"))
    problems.push("NATS_PASSWORD: required when NATS_USER is set");
  if (set("NATS_PASSWORD") && !set("NATS_USER"))
    problems.push("NATS_USER: required when NATS_PASSWORD is set");
  if (["NATS_CREDS", "NATS_TOKEN", "NATS_USER"].filter(set).length > 1) {
    problems.push("NATS_CREDS, NATS_TOKEN, NATS_USER: set at most one way to authenticate");
  }
  if (set("JOBHOOKS_TLS_CERT_FILE") !== set("JOBHOOKS_TLS_KEY_FILE")) {
    problems.push("JOBHOOKS_TLS_CERT_FILE, JOBHOOKS_TLS_KEY_FILE: set both or neither");
  }
  const v = parsed.data;
  if (v && v.JOBHOOKS_RELAY_ACK_WAIT_MS < 2 * v.JOBHOOKS_SVIX_TIMEOUT_MS) {
    problems.push("JOBHOOKS_RELAY_ACK_WAIT_MS: must be at least twice JOBHOOKS_SVIX_TIMEOUT_MS");
  }
  if (v && v.JOBHOOKS_STOP_DEADLINE_MS <= v.JOBHOOKS_SHUTDOWN_GRACE_MS) {
    problems.push("JOBHOOKS_STOP_DEADLINE_MS: must be above JOBHOOKS_SHUTDOWN_GRACE_MS");
  }
  if (problems.length > 0 || !v) throw new ConfigError(problems);
  return {
    server: {
      host: v.JOBHOOKS_ADDR.host,
      port: v.JOBHOOKS_ADDR.port,
      maxPayloadBytes: v.JOBHOOKS_MAX_PAYLOAD_BYTES,
      serviceTokensFile: v.JOBHOOKS_SERVICE_TOKENS_FILE,
      tls:
        v.JOBHOOKS_TLS_CERT_FILE && v.JOBHOOKS_TLS_KEY_FILE
          ? { certFile: v.JOBHOOKS_TLS_CERT_FILE, keyFile: v.JOBHOOKS_TLS_KEY_FILE }
          : undefined,
      shutdownGraceMs: v.JOBHOOKS_SHUTDOWN_GRACE_MS,
      stopDeadlineMs: v.JOBHOOKS_STOP_DEADLINE_MS,
      publishTimeoutMs: v.JOBHOOKS_PUBLISH_TIMEOUT_MS,
      maxConnections: v.JOBHOOKS_MAX_CONNECTIONS,
      rpcDeadlineMs: v.JOBHOOKS_RPC_DEADLINE_MS,
      bodyDeadlineMs: Math.min(
        v.JOBHOOKS_BODY_DEADLINE_MS ?? v.JOBHOOKS_RPC_DEADLINE_MS,
        v.JOBHOOKS_RPC_DEADLINE_MS,
      ),
      requestMemoryBytes: v.JOBHOOKS_REQUEST_MEMORY_BYTES,
      maxUnprovenConnectionsPerAddress: v.JOBHOOKS_MAX_UNAUTHENTICATED_CONNECTIONS_PER_ADDRESS,
      clientAddress: { trustedProxies: v.JOBHOOKS_TRUSTED_PROXIES, header: v.JOBHOOKS_CLIENT_ADDRESS_HEADER },
    },
    nats: {
      servers: v.NATS_URL,
      creds: v.NATS_CREDS,
      token: v.NATS_TOKEN,
      user: v.NATS_USER,
      password: v.NATS_PASSWORD,
      tlsCa: v.NATS_TLS_CA,
      subjectPrefix: v.JOBHOOKS_SUBJECT_PREFIX,
      streamReplicas: v.JOBHOOKS_STREAM_REPLICAS,
      duplicateWindowMs: v.JOBHOOKS_DUPLICATE_WINDOW_MS,
      streamMaxBytes: v.JOBHOOKS_STREAM_MAX_BYTES,
      dlqMaxBytes: v.JOBHOOKS_DLQ_MAX_BYTES,
      dlqMaxAgeMs: v.JOBHOOKS_DLQ_MAX_AGE_MS,
      auditMaxBytes: v.JOBHOOKS_AUDIT_MAX_BYTES,
      auditMaxAgeMs: v.JOBHOOKS_AUDIT_MAX_AGE_MS,
    },
    svix: {
      token: v.SVIX_TOKEN,
      serverUrl: v.SVIX_SERVER_URL,
      requestTimeoutMs: v.JOBHOOKS_SVIX_TIMEOUT_MS,
      operationalSecret: v.JOBHOOKS_SVIX_OPERATIONAL_SECRET,
    },
    relay: {
      enabled: v.JOBHOOKS_RELAY_ENABLED,
      concurrency: v.JOBHOOKS_RELAY_CONCURRENCY,
      maxAttempts: v.JOBHOOKS_RELAY_MAX_ATTEMPTS,
      maxAgeMs: v.JOBHOOKS_RELAY_MAX_AGE_MS,
      ackWaitMs: v.JOBHOOKS_RELAY_ACK_WAIT_MS,
      tenantWeightsFile: v.JOBHOOKS_RELAY_TENANT_WEIGHTS_FILE,
    },
    portal: { ratePerMinute: v.JOBHOOKS_PORTAL_RATE_PER_MIN, burst: v.JOBHOOKS_PORTAL_BURST },
    log: { level: v.LOG_LEVEL },
  };
}
