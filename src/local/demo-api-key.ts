import { connect } from "@nats-io/transport-node";
import { openApiKeyStore } from "../nats/api-key-store.js";

/**
 * The demo tenant's customer API key, made as `jobhooks keys create --tenant` makes one (stored as
 * a digest in NATS KV). The service picks it up like any other key.
 */
export async function createDemoApiKey(natsUrl: string, tenant: string): Promise<string> {
  const nc = await connect({ servers: natsUrl, maxReconnectAttempts: 0, name: "jobhooks-dev" });
  try {
    const store = await openApiKeyStore(nc, { replicas: 1 });
    return (await store.create(tenant)).key;
  } finally {
    await nc.drain();
  }
}
