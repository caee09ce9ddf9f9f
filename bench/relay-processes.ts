import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { freePort } from "../src/local/nats-server.js";
import type { SvixStandIn } from "../src/local/svix-stand-in/index.js";
import { sleep } from "../src/resilience/clock.js";

/**
 * The processes `bench/relay.ts` measures: relay replicas of the compiled service and the bare
 * baseline loop, each sampled for peak RSS, and how to read their outcomes and stop them.
 */

export interface Measured {
  children: ChildProcess[];
  peakRssMb(): number;
  /** CPU seconds (user + system) the processes have used so far, summed. */
  cpuSeconds(): number;
  /** /metrics of each relay replica (none for the bare loop). */
  metricsUrls?: string[];
}

/** utime + stime of a live process, in seconds (0 once it is gone). */
function cpuSecondsOf(child: ChildProcess): number {
  try {
    // Fields after the parenthesised command name: state is field 3, utime 14 and stime 15.
    const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Linux's USER_HZ, which /proc reports times in: 100 on every architecture Node runs on here. */
const CLOCK_TICKS_PER_SECOND = 100;

const cpuSecondsOfAll = (children: ChildProcess[]) => () =>
  children.reduce((sum, child) => sum + cpuSecondsOf(child), 0);

function sampleRss(child: ChildProcess): () => number {
  let peak = 0;
  const timer = setInterval(() => {
    try {
      const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
      const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
      if (hwm) peak = Math.max(peak, Number(hwm[1]) / 1024);
    } catch {
      // the process is gone
    }
  }, 250);
  child.on("exit", () => clearInterval(timer));
  return () => Math.round(peak);
}

/** `replicas` relay processes of the compiled service, as production runs it; ready when /readyz is. */
export async function startRelays(
  env: Record<string, string>,
  replicas: number,
  concurrency: number,
  /** Another build of the service (a baseline), and node flags instead of the image's. */
  o: { cli?: string; nodeArgs?: string } = {},
): Promise<Measured> {
  // The container image's heap flags (Dockerfile NODE_OPTIONS), unless BENCH_NODE_ARGS overrides them.
  const nodeArgs = (
    o.nodeArgs ??
    process.env.BENCH_NODE_ARGS ??
    "--max-semi-space-size=16 --max-old-space-size=192"
  ).split(" ");
  const children: ChildProcess[] = [];
  const rss: Array<() => number> = [];
  const urls: string[] = [];
  for (let r = 0; r < replicas; r++) {
    const port = await freePort();
    urls.push(`http://127.0.0.1:${port}/metrics`);
    const child = spawn(process.execPath, [...nodeArgs.filter(Boolean), o.cli ?? "dist/cli.js", "serve"], {
      env: {
        ...process.env,
        ...env,
        JOBHOOKS_ADDR: `127.0.0.1:${port}`,
        LOG_LEVEL: "warn",
        JOBHOOKS_RELAY_CONCURRENCY: String(concurrency),
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    children.push(child);
    rss.push(sampleRss(child));
    for (let i = 0; i < 300; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
        (res) => res.ok,
        () => false,
      );
      if (ok) break;
      await sleep(100);
    }
  }
  return {
    children,
    peakRssMb: () => Math.max(...rss.map((f) => f())),
    cpuSeconds: cpuSecondsOfAll(children),
    metricsUrls: urls,
  };
}

export async function startBaseline(
  natsUrl: string,
  svix: SvixStandIn,
  concurrency: number,
): Promise<Measured> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "bench/baseline-relay.ts", natsUrl, svix.url, svix.token, String(concurrency)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const rss = sampleRss(child);
  // Ready once attached to its consumer, like the relay's /readyz: start-up (tsx compiling the
  // loop) must not count in its CPU per event.
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`baseline exited with ${code} before ready`)));
  });
  return { children: [child], peakRssMb: rss, cpuSeconds: cpuSecondsOfAll([child]) };
}

/** The relays' outcome counters (relayed, waited, retried, …), summed over replicas. */
async function outcomes(m: Measured): Promise<string> {
  const sums = new Map<string, number>();
  for (const url of m.metricsUrls ?? []) {
    const text = await fetch(url).then(
      (r) => r.text(),
      () => "",
    );
    for (const line of text.split("\n")) {
      const hit = /^jobhooks_relay_events_total\{outcome="([a-z_]+)"\} (\d+)/.exec(line);
      if (hit) sums.set(hit[1] as string, (sums.get(hit[1] as string) ?? 0) + Number(hit[2]));
    }
  }
  return [...sums].map(([k, v]) => `${k} ${v}`).join(", ");
}

export async function stop(m: Measured): Promise<void> {
  if (m.metricsUrls) console.log(`    relay outcomes: ${await outcomes(m)}`);
  await Promise.all(
    m.children.map((child) => {
      if (child.exitCode !== null || child.signalCode !== null) return undefined;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      return exited;
    }),
  );
}
