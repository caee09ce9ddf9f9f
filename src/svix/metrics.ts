import { Histogram, type Registry } from "prom-client";

/**
 * Every Svix call's latency and outcome class: the relay's messages, portal links, delivery
 * look-ups and event-type registration alike, so an API-only replica (no relay) still shows how
 * Svix answers its GetPortalLink and ListJobDeliveries calls.
 */
export function createSvixMetrics(registry: Registry) {
  const seconds = new Histogram({
    name: "jobhooks_svix_request_duration_seconds",
    help: "Svix API request latency, by status class (2xx, 4xx, 5xx, error)",
    labelNames: ["status_class"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return {
    /** The gateway's `onRequest`. */
    observe(secondsTaken: number, statusClass: string): void {
      seconds.observe({ status_class: statusClass }, secondsTaken);
    },
  };
}
