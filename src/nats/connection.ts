import { readFile } from "node:fs/promises";
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
} from "@nats-io/transport-node";
import type { NatsConfig } from "../config/config.js";
import type { Logger } from "../log/logger.js";

export interface NatsLink {
  readonly nc: NatsConnection;
  /** False while the client is disconnected and reconnecting; /readyz reports it. */
  readonly connected: boolean;
  /** Resolves when the connection is (again) up, or rejects when `signal` aborts first. */
  whenConnected(signal?: AbortSignal): Promise<void>;
  /** Flushes what was published, lets subscriptions finish, closes. */
  drain(): Promise<void>;
}

/**
 * Connects and keeps reconnecting for as long as the process lives: a NATS outage must only delay
 * work, never end the process. The first connect waits too, so a service started before NATS
 * comes up by itself once NATS does.
 */
export async function connectNats(config: NatsConfig, log: Logger, name = "jobhooks"): Promise<NatsLink> {
  const nc = await connect({
    ...(await natsConnectOptions(config, name)),
    maxReconnectAttempts: -1,
    waitOnFirstConnect: true,
    reconnectTimeWait: 500,
    // Notice a dead server in seconds rather than the default two minutes.
    pingInterval: 5_000,
    maxPingOut: 2,
    // The client otherwise builds an Error (a stack trace) for every request up front, to give a
    // later failure an async stack: ~5% of PublishJobEvent's CPU (bench -- publish) and a fifth of
    // the relay's (a direct get per event). Failures still say what failed.
    noAsyncTraces: true,
  });
  log.info({ server: nc.getServer() }, "nats connected");

  let connected = true;
  let waiters: Array<() => void> = [];
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          if (connected) log.warn({ server: s.server }, "nats disconnected; reconnecting");
          connected = false;
          break;
        case "reconnect":
          connected = true;
          log.info({ server: s.server }, "nats reconnected");
          for (const w of waiters) w();
          waiters = [];
          break;
        case "error":
          log.warn({ err: s.error }, "nats error");
          break;
        case "close":
          connected = false;
          break;
      }
    }
  })();

  return {
    nc,
    get connected() {
      return connected && !nc.isClosed();
    },
    whenConnected(signal) {
      if (connected) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal?.reason ?? new Error("aborted"));
        signal?.addEventListener("abort", onAbort, { once: true });
        waiters.push(() => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        });
      });
    },
    async drain() {
      if (nc.isClosed()) return;
      await nc.drain().catch((err: unknown) => log.warn({ err }, "nats drain failed"));
    },
  };
}

/** Servers and credentials from config, shared by the service and the CLI. */
export async function natsConnectOptions(config: NatsConfig, name: string): Promise<ConnectionOptions> {
  return {
    servers: config.servers,
    name,
    ...(config.token ? { token: config.token } : {}),
    ...(config.user ? { user: config.user, pass: config.password } : {}),
    ...(config.creds ? { authenticator: credsAuthenticator(await readFile(config.creds)) } : {}),
    ...(config.tlsCa ? { tls: { caFile: config.tlsCa } } : {}),
  };
}
