import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { jetstream } from "@nats-io/jetstream";
import { connect, headers as natsHeaders } from "@nats-io/transport-node";
import { sleep } from "../src/resilience/clock.js";

/**
 * The fairness bench's bulk importer, in a process of its own with its own NATS connection, as a
 * real one is: run inside the bench process it kept that process's event loop busy for seconds,
 * and that process also answers as Svix and stamps each arrival, so the importer's own pauses were
 * measured as the small tenants' latency.
 *
 * `n` events of one tenant over `jobs` jobs (each job's events in sequence), as fast as JetStream
 * takes them (256 in flight) or at `perSecond` (16 in flight).
 */
export async function publishBurst(o: {
  natsUrl: string;
  tenant: string;
  n: number;
  jobs: number;
  perSecond?: number;
}): Promise<void> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(import.meta.url), JSON.stringify(o)],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", resolve);
  });
  if (code !== 0) throw new Error(`the burst publisher exited with ${code}`);
}

async function publishAll(o: Parameters<typeof publishBurst>[0]): Promise<void> {
  const nc = await connect({ servers: o.natsUrl });
  const js = jetstream(nc);
  const h = natsHeaders();
  h.set("Content-Type", "application/json");
  const began = Date.now();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < o.n; i = next++) {
      if (o.perSecond) {
        const wait = began + (i * 1_000) / o.perSecond - Date.now();
        if (wait > 0) await sleep(wait);
      }
      const body = JSON.stringify({
        sequence: String(Math.floor(i / o.jobs) + 1),
        metadata: { t: String(Date.now()) },
      });
      await js.publish(`jobs.${o.tenant}.job-${i % o.jobs}.processing`, body, {
        headers: h,
        timeout: 60_000,
      });
    }
  };
  try {
    await Promise.all(Array.from({ length: o.perSecond ? 16 : 256 }, worker));
  } finally {
    await nc.drain();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  publishAll(JSON.parse(process.argv[2] as string)).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
