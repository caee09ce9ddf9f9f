import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type Config, loadConfig } from "../config/config.js";
import { natsConnectOptions } from "../nats/connection.js";

/**
 * One short NATS session for a CLI command, configured from the same environment as the service.
 * A CLI must fail fast with a reason rather than reconnect forever, hence no reconnect attempts;
 * the connection is drained whatever `f` does, so a command never leaves pending publishes behind.
 */
export async function withNats<T>(f: (nc: NatsConnection, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig(process.env, { requireSvixToken: false });
  const nc = await connect({
    ...(await natsConnectOptions(config.nats, "jobhooks-cli")),
    maxReconnectAttempts: 0,
  });
  try {
    return await f(nc, config);
  } finally {
    await nc.drain();
  }
}
