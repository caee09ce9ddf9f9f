import { fork } from "node:child_process";
import { Agent, request } from "node:http";
import { fileURLToPath } from "node:url";
import { startSvixStandIn } from "../src/local/svix-stand-in/index.js";

/**
 * Message-create throughput of the Svix stand-in, delivery off: many concurrent keep-alive clients
 * against loopback, sending what jobhooks' relay sends (eventId, idempotency key = eventId).
 * The stand-in runs in a child process so the clients and the server each get a core, as they would
 * in the local stack. Run: `node --import tsx bench/svix-stand-in.ts [seconds-per-row]`.
 */

export interface BenchRow {
  concurrency: number;
  requests: number;
  errors: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

const thisFile = fileURLToPath(import.meta.url);

/** Child mode: start the stand-in and report where it listens. */
async function serve(): Promise<void> {
  const standIn = await startSvixStandIn({ deliver: false, maxMessages: 100_000 });
  process.send?.({ url: standIn.url, token: standIn.token });
  process.on("disconnect", () => {
    void standIn.close().then(() => process.exit(0));
  });
}

function post(
  agent: Agent,
  url: URL,
  token: string,
  path: string,
  body: string,
  key?: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: "POST",
        path,
        headers: {
          authorization: `Bearer ${token}`,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
          ...(key ? { "idempotency-key": key } : {}),
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

async function measure(
  url: URL,
  token: string,
  concurrency: number,
  seconds: number,
  run: string,
): Promise<BenchRow> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let errors = 0;
  let sequence = 0;
  const deadline = performance.now() + seconds * 1000;
  const started = performance.now();
  async function client(): Promise<void> {
    while (performance.now() < deadline) {
      const n = sequence++;
      const eventId = `job_${run}_${n}.completed`;
      const body = JSON.stringify({
        eventType: "job.completed",
        eventId,
        payload: {
          type: "job.completed",
          timestamp: new Date().toISOString(),
          data: {
            job_id: `job_${run}_${n}`,
            status: "completed",
            sequence: 3,
            result: { pages: 12 },
            metadata: {},
          },
        },
      });
      const t0 = performance.now();
      const status = await post(
        agent,
        url,
        token,
        "/api/v1/app/bench-tenant/msg?with_content=false",
        body,
        eventId,
      ).catch(() => 0);
      latencies.push(performance.now() - t0);
      if (status !== 202) errors++;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, client));
  const elapsed = (performance.now() - started) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    requests: latencies.length,
    errors,
    perSecond: Math.round(latencies.length / elapsed),
    p50Ms: Number(percentile(latencies, 50).toFixed(2)),
    p99Ms: Number(percentile(latencies, 99).toFixed(2)),
  };
}

export async function runSvixStandInBench(
  secondsPerRow = 5,
  concurrencies = [16, 64, 256],
): Promise<BenchRow[]> {
  const child = fork(thisFile, ["serve"], {
    execArgv: process.execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  try {
    const { url, token } = await new Promise<{ url: string; token: string }>((resolve, reject) => {
      child.once("message", (m) => resolve(m as { url: string; token: string }));
      child.once("exit", (code) => reject(new Error(`stand-in exited with ${code}`)));
    });
    const base = new URL(url);
    const setup = new Agent({ keepAlive: true });
    const created = await post(
      setup,
      base,
      token,
      "/api/v1/app",
      JSON.stringify({ name: "Bench", uid: "bench-tenant" }),
    );
    setup.destroy();
    if (created !== 201) throw new Error(`could not create the bench app: ${created}`);
    await measure(base, token, 32, 1, "warmup");
    const rows: BenchRow[] = [];
    for (const concurrency of concurrencies)
      rows.push(await measure(base, token, concurrency, secondsPerRow, `c${concurrency}`));
    return rows;
  } finally {
    child.disconnect();
  }
}

if (process.argv[1] === thisFile) {
  if (process.argv[2] === "serve") await serve();
  else {
    const seconds = Number(process.argv[2] ?? 5);
    const rows = await runSvixStandInBench(seconds);
    console.log("Svix stand-in: message.create, delivery off, keep-alive clients on loopback");
    console.table(
      rows.map((r) => ({
        clients: r.concurrency,
        requests: r.requests,
        errors: r.errors,
        "creates/s": r.perSecond,
        "p50 ms": r.p50Ms,
        "p99 ms": r.p99Ms,
      })),
    );
  }
}
