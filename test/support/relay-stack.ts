import { expect } from "vitest";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import {
  type SvixStandIn,
  type SvixStandInOptions,
  startSvixStandIn,
} from "../../src/local/svix-stand-in/index.js";
import type { NatsPublication } from "./publish.js";
import { startTestService, type TestService } from "./service.js";

export interface RelayStack {
  nats: NatsServer;
  svix: SvixStandIn;
  svc: TestService;
  stop(): Promise<void>;
}

/** A real nats-server, the Svix stand-in, and the service with its relay on, wired together. */
export async function startRelayStack(
  opts: { svix?: SvixStandInOptions; env?: Record<string, string> } = {},
): Promise<RelayStack> {
  const nats = await startNatsServer();
  const svix = await startSvixStandIn({ deliver: false, ...opts.svix });
  const svc = await startTestService(nats.url, {
    JOBHOOKS_RELAY_ENABLED: "true",
    SVIX_TOKEN: svix.token,
    SVIX_SERVER_URL: svix.url,
    ...opts.env,
  });
  return {
    nats,
    svix,
    svc,
    async stop() {
      await svc.stop();
      await svix.close();
      await nats.dispose();
    },
  };
}

/** `perJob` processing events for each of `jobs` jobs of `tenant`, sequences 1..perJob. */
export function jobEvents(tenant: string, jobs: number, perJob: number): NatsPublication[] {
  const out: NatsPublication[] = [];
  for (let seq = 1; seq <= perJob; seq++) {
    for (let j = 0; j < jobs; j++) {
      out.push({
        subject: `jobs.${tenant}.job-${j}.processing`,
        body: JSON.stringify({ sequence: String(seq) }),
      });
    }
  }
  return out;
}

/** For each job, the sequences in the order Svix received them. */
export function receivedOrder(svix: SvixStandIn, tenant: string): Map<string, number[]> {
  const byJob = new Map<string, number[]>();
  for (const m of svix.state.messages(tenant)) {
    const d = m.payload.data as { job_id: string; sequence: number };
    byJob.set(d.job_id, [...(byJob.get(d.job_id) ?? []), d.sequence]);
  }
  return byJob;
}

/** What a customer would check: every event at Svix exactly once, each job's in sequence order. */
export function expectExactlyOnceInOrder(
  svix: SvixStandIn,
  tenant: string,
  jobs: number,
  perJob: number,
): void {
  const messages = svix.state.messages(tenant);
  expect(new Set(messages.map((m) => m.eventId)).size).toBe(messages.length);
  expect(messages).toHaveLength(jobs * perJob);
  for (const [job, seqs] of receivedOrder(svix, tenant)) {
    expect(seqs, job).toEqual(Array.from({ length: perJob }, (_, i) => i + 1));
  }
}
