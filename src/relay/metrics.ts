import { Counter, Gauge, type Registry } from "prom-client";

/** The relay's metrics, on the registry the /metrics endpoint serves. */
export function createRelayMetrics(registry: Registry) {
  return {
    received: new Counter({
      name: "jobhooks_relay_events_received_total",
      help: "Messages the relay took from JetStream (redeliveries included)",
      registers: [registry],
    }),
    outcomes: new Counter({
      name: "jobhooks_relay_events_total",
      help: "Relay outcomes: relayed (created at Svix), already_sent (409), dead_lettered, retried (transient failure), waited (the job's earlier event is still stored), failed (a bug of ours; event kept)",
      labelNames: ["outcome"] as const,
      registers: [registry],
    }),
    deadLetters: new Counter({
      name: "jobhooks_relay_dead_letters_total",
      help: "Events moved to JOBS_DLQ, by reason",
      labelNames: ["reason"] as const,
      registers: [registry],
    }),
    circuitOpen: new Gauge({
      name: "jobhooks_relay_circuit_open",
      help: "1 while the Svix circuit is open (Svix failing; only probes are sent)",
      registers: [registry],
    }),
    consumerPending: new Gauge({
      name: "jobhooks_relay_consumer_pending",
      help: "Events stored in JetStream and not yet relayed to Svix (the backlog)",
      registers: [registry],
    }),
    consumerAckPending: new Gauge({
      name: "jobhooks_relay_consumer_ack_pending",
      help: "Events this process holds: taken from JetStream, not yet acknowledged",
      registers: [registry],
    }),
    consuming: new Gauge({
      name: "jobhooks_relay_consuming",
      help: "1 while this process is attached to the relay's JetStream consumer",
      registers: [registry],
    }),
    svixBudget: new Gauge({
      name: "jobhooks_relay_svix_budget",
      help: "Svix requests this process may have in flight now (adapts to 429s; at most JOBHOOKS_RELAY_CONCURRENCY)",
      registers: [registry],
    }),
    svixRateLimit: new Gauge({
      name: "jobhooks_relay_svix_rate_limit",
      help: "Svix calls per second this process paces itself to, learned from Svix's 429s (0: not limited)",
      registers: [registry],
    }),
    tenantsWaiting: new Gauge({
      name: "jobhooks_relay_tenants_waiting",
      help: "Tenants with events waiting in this process for their share of the Svix budget",
      registers: [registry],
    }),
    oldestWaitingSeconds: new Gauge({
      name: "jobhooks_relay_oldest_waiting_seconds",
      help: "Age of the oldest event stored in JetStream and not yet relayed (0 when none waits)",
      registers: [registry],
    }),
  };
}

export type RelayMetrics = ReturnType<typeof createRelayMetrics>;
