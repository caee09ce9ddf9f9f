import { readFile } from "node:fs/promises";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { collectDefaultMetrics, Registry } from "prom-client";
import type { Config } from "./config/config.js";
import type { Logger } from "./log/logger.js";
import { openApiKeyStore } from "./nats/api-key-store.js";
import { openAuditTrail } from "./nats/audit-trail.js";
import { connectNats, type NatsLink } from "./nats/connection.js";
import { publishWithHeaders } from "./nats/core-publish.js";
import { provisionJetStream } from "./nats/provision.js";
import { createJobEventPublisher } from "./nats/publish-job-event.js";
import { openTenantDeletionMarks, watchDeletedTenants } from "./nats/tenant-deletions.js";
import { dropWhileDeleting } from "./relay/deleting-tenants.js";
import { createRelayMetrics } from "./relay/metrics.js";
import { type Relay, startRelay } from "./relay/relay.js";
import { watchTenantWeights } from "./relay/tenant-weights.js";
import { startApiKeyVerifier } from "./server/api-key-verifier.js";
import { type CredentialVerifier, readServiceTokens, serviceTokenVerifier } from "./server/auth.js";
import { createJobDeliveries } from "./server/list-job-deliveries.js";
import { operationalWebhooks } from "./server/operational-webhooks.js";
import { createRateLimiter } from "./server/rate-limit.js";
import { serviceReadiness } from "./server/readiness.js";
import { startServer } from "./server/server.js";
import { createSvixGateway } from "./svix/gateway.js";
import { createSvixMetrics } from "./svix/metrics.js";
import { createTenantApplications } from "./svix/tenant-application.js";

export interface Jobhooks {
  readonly url: string;
  readonly port: number;
  /** Graceful stop: no new RPCs, in-flight ones finish, NATS drained. */
  stop(): Promise<void>;
  /**
   * Reads the service-tokens file again (SIGHUP): the next request sees the new set. A file that
   * fails the checks keeps the current set, so a bad edit never locks every service out.
   */
  reloadServiceTokens(): Promise<void>;
}

/**
 * The composition root: builds every collaborator from config, in dependency order
 * (config → nats → svix → relay → server). Reading this function tells the whole system.
 */
export async function startJobhooks(config: Config, log: Logger): Promise<Jobhooks> {
  // Local files first: a bad tokens file stops start-up before anything connects.
  const serviceTokens = config.server.serviceTokensFile
    ? await readServiceTokens(config.server.serviceTokensFile, (m) => log.warn(m))
    : undefined;
  const tls = config.server.tls ? await readTlsFiles(config.server.tls) : undefined;
  const nats = await connectNats(config.nats, log);
  // What has started so far, undone in reverse if a later step fails (a taken port, a conflicting
  // stream), so a failed start leaves no consumer or connection behind.
  const undo: Array<() => unknown> = [() => nats.drain()];
  try {
    return await wire(config, log, nats, { serviceTokens, tls }, undo);
  } catch (err) {
    await undoAll(undo, log);
    throw err;
  }
}

/**
 * Runs undo steps last-first, every one of them even when one fails: a failed step is logged and
 * the rest still run, and the caller rethrows the error that made start-up fail, not an undo's.
 */
export async function undoAll(steps: ReadonlyArray<() => unknown>, log: Logger): Promise<void> {
  for (const step of [...steps].reverse()) {
    try {
      await step();
    } catch (err) {
      log.warn({ err }, "a start-up step could not be undone");
    }
  }
}

async function wire(
  config: Config,
  log: Logger,
  nats: NatsLink,
  files: { serviceTokens: string[] | undefined; tls: TlsFiles | undefined },
  undo: Array<() => unknown>,
): Promise<Jobhooks> {
  const { serviceTokens } = files;
  const jsm = await jetstreamManager(nats.nc);
  const { duplicateWindowMs } = await provisionJetStream(
    jsm,
    {
      subjectPrefix: config.nats.subjectPrefix,
      replicas: config.nats.streamReplicas,
      duplicateWindowMs: config.nats.duplicateWindowMs,
      limits: {
        jobsMaxBytes: config.nats.streamMaxBytes,
        dlqMaxBytes: config.nats.dlqMaxBytes,
        dlqMaxAgeMs: config.nats.dlqMaxAgeMs,
      },
      ackWaitMs: config.relay.ackWaitMs,
    },
    log,
  );
  const publisher = createJobEventPublisher({
    link: nats,
    js: jetstream(nats.nc),
    subjectPrefix: config.nats.subjectPrefix,
    duplicateWindowMs,
    log,
  });

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const apiKeys = await openApiKeyStore(nats.nc, { replicas: config.nats.streamReplicas });
  const replicas = config.nats.streamReplicas;
  const audit = await openAuditTrail(
    nats.nc,
    { maxAgeMs: config.nats.auditMaxAgeMs, maxBytes: config.nats.auditMaxBytes, replicas },
    log,
  );
  const deletions = await openTenantDeletionMarks(nats.nc, { replicas });

  // One Svix client for both of its users: the relay sends messages, GetPortalLink opens portals.
  const svixMetrics = createSvixMetrics(registry);
  const svix = createSvixGateway({
    token: config.svix.token ?? "",
    serverUrl: config.svix.serverUrl,
    requestTimeoutMs: config.svix.requestTimeoutMs,
    maxSockets: config.relay.concurrency * 2,
    log,
    onRequest: svixMetrics.observe,
  });

  let relay: Relay | undefined;
  if (config.relay.enabled) {
    const weights = config.relay.tenantWeightsFile
      ? await watchTenantWeights(config.relay.tenantWeightsFile, log)
      : undefined;
    undo.push(() => weights?.stop());
    const deletedTenants = await watchDeletedTenants(nats.nc, {
      replicas,
      subjectPrefix: config.nats.subjectPrefix,
    });
    undo.push(() => deletedTenants.stop());
    relay = await startRelay({
      nats,
      svix: dropWhileDeleting(svix, deletedTenants, log),
      log,
      metrics: createRelayMetrics(registry),
      subjectPrefix: config.nats.subjectPrefix,
      concurrency: config.relay.concurrency,
      maxPayloadBytes: config.server.maxPayloadBytes,
      ackWaitMs: config.relay.ackWaitMs,
      retries: { maxAttempts: config.relay.maxAttempts, maxAgeMs: config.relay.maxAgeMs },
      ...(weights ? { weightOf: weights.weightOf } : {}),
      deletedTenants,
      // The relay's part of the stop, leaving time for the NATS drain within the whole deadline.
      stopDeadlineMs: Math.max(500, config.server.stopDeadlineMs - 3_000),
    });
    undo.push(() => relay?.stop());
  }

  const verifiers: CredentialVerifier[] = [];
  const serviceTokenAuth = serviceTokens ? serviceTokenVerifier(serviceTokens) : undefined;
  if (serviceTokenAuth) {
    verifiers.push(serviceTokenAuth);
  } else {
    log.warn("JOBHOOKS_SERVICE_TOKENS_FILE is not set: no internal service can call PublishJobEvent");
  }
  const apiKeyVerifier = await startApiKeyVerifier({ store: apiKeys, log });
  undo.push(() => apiKeyVerifier.close());
  verifiers.push(apiKeyVerifier.verify);

  const readiness = serviceReadiness({ nats, relay });

  const server = await startServer({
    host: config.server.host,
    port: config.server.port,
    publisher,
    portal: config.svix.token ? svix : undefined,
    portalRate: createRateLimiter({ perMinute: config.portal.ratePerMinute, burst: config.portal.burst }),
    verifiers,
    readiness,
    registry,
    maxPayloadBytes: config.server.maxPayloadBytes,
    publishTimeoutMs: config.server.publishTimeoutMs,
    shutdownGraceMs: config.server.shutdownGraceMs,
    maxConnections: config.server.maxConnections,
    rpcDeadlineMs: config.server.rpcDeadlineMs,
    bodyDeadlineMs: config.server.bodyDeadlineMs,
    requestMemoryBytes: config.server.requestMemoryBytes,
    maxUnprovenConnectionsPerAddress: config.server.maxUnprovenConnectionsPerAddress,
    clientAddress: config.server.clientAddress,
    tls: files.tls,
    log,
    deliveries: createJobDeliveries({
      jsm,
      subjectPrefix: config.nats.subjectPrefix,
      maxPayloadBytes: config.server.maxPayloadBytes,
      svix: config.svix.token ? svix : undefined,
      // An API-only replica has no circuit of its own; each call is still bounded by the timeout.
      svixAvailable: () => relay?.readiness().circuit !== "open",
      // Its own buckets, with the portal's rate settings.
      rate: createRateLimiter({ perMinute: config.portal.ratePerMinute, burst: config.portal.burst }),
      log,
    }),
    admin: {
      keys: apiKeys,
      jsm,
      subjectPrefix: config.nats.subjectPrefix,
      svix: config.svix.token
        ? { portal: svix, applications: createTenantApplications({ sdk: svix.sdk }) }
        : undefined,
      deletions,
      audit,
      log,
    },
    operationalWebhooks: config.svix.operationalSecret
      ? operationalWebhooks({
          secret: config.svix.operationalSecret,
          publish: (subject, body, headers) => publishWithHeaders(nats.nc, subject, body, headers),
          connected: () => nats.connected,
          bodyDeadlineMs: config.server.bodyDeadlineMs,
          registry,
          log,
        })
      : undefined,
  });

  let stopping: Promise<void> | undefined;
  return {
    url: server.url,
    port: server.port,
    async reloadServiceTokens() {
      const file = config.server.serviceTokensFile;
      if (!file || !serviceTokenAuth) return;
      try {
        const tokens = await readServiceTokens(file, (m) => log.warn(m));
        serviceTokenAuth.replace(tokens);
        log.info({ tokens: tokens.length }, "service tokens reloaded");
      } catch (err) {
        log.error({ error: (err as Error).message }, "service tokens not reloaded; the previous set stays");
      }
    },
    stop() {
      stopping ??= withDeadline(
        (async () => {
          // The relay stops taking messages at once (handing back what waits) while the server
          // lets in-flight RPCs finish: a replica going away holds no event it will not send.
          await Promise.all([server.close(), relay?.stop()]);
          apiKeyVerifier.close();
          await nats.drain();
          log.info("stopped");
        })(),
        config.server.stopDeadlineMs,
        async () => {
          // Past the deadline: whatever is unacked is redelivered by JetStream; published events
          // were acknowledged only once stored, so nothing accepted is lost by closing now.
          log.warn({ deadline_ms: config.server.stopDeadlineMs }, "stop deadline passed; closing NATS now");
          await nats.nc.close().catch(() => undefined);
        },
      );
      return stopping;
    },
  };
}

type TlsFiles = { cert: Buffer; key: Buffer };

/** The certificate and key, read before anything connects so a wrong path stops start-up at once. */
async function readTlsFiles(files: { certFile: string; keyFile: string }): Promise<TlsFiles> {
  const read = (name: string, file: string) =>
    readFile(file).catch((err: NodeJS.ErrnoException) => {
      throw new Error(`${name}: cannot read ${file}: ${err.code}`, { cause: err });
    });
  return {
    cert: await read("JOBHOOKS_TLS_CERT_FILE", files.certFile),
    key: await read("JOBHOOKS_TLS_KEY_FILE", files.keyFile),
  };
}

/** `work`, or `onTimeout` once `ms` has passed without it finishing. */
async function withDeadline(work: Promise<void>, ms: number, onTimeout: () => Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), ms);
  });
  try {
    if ((await Promise.race([work, late])) === "late") await onTimeout();
  } finally {
    clearTimeout(timer);
  }
}
