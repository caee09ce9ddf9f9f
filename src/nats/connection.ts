import { readFile } from "node:fs/promises";
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  type Server,
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
    // Notice a hung server (or host, or network path: the connection stays open and says
    // nothing) within 4-6 s, the next ping after two unanswered, rather than the default two
    // minutes. Until then relaying through it stops: a cluster's other nodes take over the
    // leaderships within a Raft election, so noticing later than that is what would hold the
    // relay up (docs/operations.md, "Measured: failover stalls", a hung node).
    pingInterval: 2_000,
    maxPingOut: 2,
    // Dial the server tried least long ago. nats.js would otherwise dial the server it just lost
    // first: instantly refused when that server is dead, but a hung one accepts the TCP
    // connection and never answers, holding the reconnect until the handshake times out (20 s).
    reconnectToServer: leastRecentlyDialed,
    // The client otherwise builds an Error (a stack trace) for every request up front, to give a
    // later failure an async stack: a share of every publish's and direct get's CPU that buys
    // nothing (docs/operations.md, "Measured: the publish path"). Failures still say what failed.
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

/** The pool's server whose last dial is oldest (never dialed first); null: nats.js's own choice. */
export function leastRecentlyDialed(pool: ReadonlyArray<Server>): Server | null {
  let best: Server | null = null;
  for (const s of pool) if (best === null || s.lastConnect < best.lastConnect) best = s;
  return best;
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
