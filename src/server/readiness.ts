import type { NatsLink } from "../nats/connection.js";

export interface ReadinessCheck {
  ok: boolean;
  detail?: string;
  /** Whether a failing check makes the replica unready; a check that does not gate is reported only. */
  gates: boolean;
}

/** Named checks, read afresh on every /readyz, health Check and health sync. */
export interface Readiness {
  checks(): Record<string, ReadinessCheck>;
}

/** The one readiness rule: every check that gates is ok. */
export function isReady(checks: Record<string, ReadinessCheck>): boolean {
  return Object.values(checks).every((c) => c.ok || !c.gates);
}

/**
 * The service's readiness policy. NATS gates: without it nothing can be accepted. The relay gates
 * when this replica runs one: a replica that cannot consume should be replaced. Svix is reported
 * but never gates: accepting events needs only NATS, and a Svix outage only delays delivery, so
 * taking replicas out of rotation for it would turn a delay into refused publishes.
 */
export function serviceReadiness(o: {
  nats: Pick<NatsLink, "connected">;
  /** The relay, where this replica runs one (only its readiness is read: the server never reaches into it). */
  relay: { readiness(): { consuming: boolean; circuit: "closed" | "open" } } | undefined;
}): Readiness {
  return {
    checks() {
      const natsOk = o.nats.connected;
      const checks: Record<string, ReadinessCheck> = {
        nats: { ok: natsOk, gates: true, ...(natsOk ? {} : { detail: "disconnected; reconnecting" }) },
      };
      if (o.relay) {
        const r = o.relay.readiness();
        checks.relay = {
          ok: r.consuming,
          gates: true,
          ...(r.consuming ? {} : { detail: "not attached to the relay consumer; reconnecting" }),
        };
        checks.svix = {
          ok: r.circuit === "closed",
          gates: false,
          ...(r.circuit === "open" ? { detail: "circuit open: Svix failing, sending probes" } : {}),
        };
      }
      return checks;
    },
  };
}
