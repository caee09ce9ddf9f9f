import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The service's metrics, on a registry passed in (never prom-client's global one). */
export function createServerMetrics(registry: Registry) {
  return {
    rpcs: new Counter({
      name: "jobhooks_rpc_requests_total",
      help: "RPCs answered, by method and Connect code",
      labelNames: ["method", "code"] as const,
      registers: [registry],
    }),
    rpcSeconds: new Histogram({
      name: "jobhooks_rpc_duration_seconds",
      help: "RPC latency, by method",
      labelNames: ["method"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    published: new Counter({
      name: "jobhooks_events_published_total",
      help: "PublishJobEvent outcomes: stored, duplicate, invalid, unavailable, too_large",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    requestMemoryInUse: new Gauge({
      name: "jobhooks_request_memory_bytes",
      help: "Bytes of request bodies being read and decoded now (the shared budget in use)",
      registers: [registry],
    }),
    requestMemoryLimit: new Gauge({
      name: "jobhooks_request_memory_limit_bytes",
      help: "The shared budget for request bodies being read and decoded (JOBHOOKS_REQUEST_MEMORY_BYTES)",
      registers: [registry],
    }),
    natsConnected: new Gauge({
      name: "jobhooks_nats_connected",
      help: "1 while connected to NATS",
      registers: [registry],
    }),
  };
}

export type ServerMetrics = ReturnType<typeof createServerMetrics>;
