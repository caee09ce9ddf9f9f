import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { collectDefaultMetrics, Registry } from "prom-client";
import type { Config } from "./config/config.js";
import type { Logger } from "./log/logger.js";
import { connectNats } from "./nats/connection.js";
import { provisionJetStream } from "./nats/provision.js";
import { createJobEventPublisher } from "./nats/publish-job-event.js";
import { type CredentialVerifier, readServiceTokens, serviceTokenVerifier } from "./server/auth.js";
import type { Readiness } from "./server/http-endpoints.js";
import { startServer } from "./server/server.js";

export interface Jobhooks {
  readonly url: string;
  readonly port: number;
  /** Graceful stop: no new RPCs, in-flight ones finish, NATS drained. */
  stop(): Promise<void>;
}

/**
 * The composition root: builds every collaborator from config, in dependency order
 * (config → nats → relay → server). Reading this function tells the whole system.
 */
export async function startJobhooks(config: Config, log: Logger): Promise<Jobhooks> {
  const nats = await connectNats(config.nats, log);
  const jsm = await jetstreamManager(nats.nc);
  const { duplicateWindowMs } = await provisionJetStream(
    jsm,
    {
      subjectPrefix: config.nats.subjectPrefix,
      replicas: config.nats.streamReplicas,
      duplicateWindowMs: config.nats.duplicateWindowMs,
      partitions: config.relay.partitions,
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

  const verifiers: CredentialVerifier[] = [];
  if (config.server.serviceTokensFile) {
    verifiers.push(serviceTokenVerifier(await readServiceTokens(config.server.serviceTokensFile)));
  } else {
    log.warn("JOBHOOKS_SERVICE_TOKENS_FILE is not set: no internal service can call PublishJobEvent");
  }

  const readiness: Readiness = {
    checks: () => ({
      nats: {
        ok: nats.connected,
        gates: true,
        ...(nats.connected ? {} : { detail: "disconnected; reconnecting" }),
      },
    }),
  };
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const server = await startServer({
    host: config.server.host,
    port: config.server.port,
    publisher,
    verifiers,
    readiness,
    registry,
    maxPayloadBytes: config.server.maxPayloadBytes,
    publishTimeoutMs: config.server.publishTimeoutMs,
    shutdownGraceMs: config.server.shutdownGraceMs,
    log,
  });

  let stopping: Promise<void> | undefined;
  return {
    url: server.url,
    port: server.port,
    stop() {
      stopping ??= (async () => {
        await server.close();
        await nats.drain();
        log.info("stopped");
      })();
      return stopping;
    },
  };
}
