/**
 * RSS of `jobhooks serve` started outside the image, after it drained a 20,000-event backlog
 * (500 jobs × 40 events), for each way of starting it given on the command line:
 *
 *   npm run build && node --import tsx scripts/measure-start-rss.ts "npm start" "node dist/cli.js serve"
 *
 * Each run: a fresh nats-server and Svix stand-in on loopback; the command starts once to create
 * the streams and stops; 20,000 events are published; the command starts again and drains them;
 * then the server process' RSS (now, and its peak: VmHWM) is read. Runs alternate between the
 * commands (RUNS rounds, default 3). Prints one line per run and a summary with ranges.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { jetstream } from "@nats-io/jetstream";
import { connect, headers as natsHeaders } from "@nats-io/transport-node";
import { freePort, startNatsServer } from "../src/local/nats-server.js";
import { startSvixStandIn } from "../src/local/svix-stand-in/index.js";
import { sleep } from "../src/resilience/clock.js";

const JOBS = 500;
const PER_JOB = 40;
const RUNS = Number(process.env.RUNS ?? 3);

/** The process among `root` and its descendants that runs dist/cli.js (npm start puts a shell between). */
function serverPid(root: number): number | undefined {
  const queue = [root];
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("dist/cli.js")) {
        const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        if ((argv[0] ?? "").endsWith("node")) return pid;
      }
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        const children = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
        if (children) queue.push(...children.split(" ").map(Number));
      }
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

function memoryMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rss: Math.round(kb("VmRSS") / 1024), peak: Math.round(kb("VmHWM") / 1024) };
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000}s`);
    await sleep(250);
  }
}

async function ready(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1_000) })).ok;
  } catch {
    return false;
  }
}

async function stopped(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  // To the process group: npm and the shell pass SIGTERM on unreliably.
  process.kill(-(child.pid as number), "SIGTERM");
  const timer = setTimeout(() => process.kill(-(child.pid as number), "SIGKILL"), 30_000);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

async function measure(command: string): Promise<{ rss: number; peak: number; seconds: number }> {
  const nats = await startNatsServer();
  const svix = await startSvixStandIn({ port: 0 });
  try {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const start = () =>
      spawn("sh", ["-c", `exec ${command}`], {
        detached: true,
        stdio: ["ignore", "ignore", "inherit"],
        env: {
          ...process.env,
          JOBHOOKS_ADDR: `127.0.0.1:${port}`,
          NATS_URL: nats.url,
          SVIX_TOKEN: svix.token,
          SVIX_SERVER_URL: svix.url,
          LOG_LEVEL: "warn",
          npm_config_update_notifier: "false",
        },
      });
    const first = start();
    await until("the service's first start", () => ready(url), 60_000);
    await stopped(first);

    const nc = await connect({ servers: nats.url });
    const js = jetstream(nc);
    const h = natsHeaders();
    h.set("Content-Type", "application/json");
    let next = 0;
    const worker = async () => {
      for (let j = next++; j < JOBS; j = next++)
        for (let s = 1; s <= PER_JOB; s++)
          await js.publish(`jobs.rss.job-${j}.processing`, JSON.stringify({ sequence: String(s) }), {
            headers: h,
            timeout: 30_000,
          });
    };
    await Promise.all(Array.from({ length: 128 }, worker));
    await nc.close();

    const began = Date.now();
    const child = start();
    try {
      const total = JOBS * PER_JOB;
      await until(
        `${total} messages at the stand-in`,
        () => svix.state.stats().messagesCreated >= total,
        600_000,
      );
      const seconds = (Date.now() - began) / 1000;
      await sleep(1_000);
      const pid = serverPid(child.pid as number);
      if (pid === undefined) throw new Error(`no node process running dist/cli.js under "${command}"`);
      return { ...memoryMb(pid), seconds };
    } finally {
      // npm re-raises the signal on itself once its child is gone (exit code null): only a
      // number other than 0 is the server's own failure.
      const code = await stopped(child);
      if (code !== null && code !== 0) process.stderr.write(`"${command}" exited ${code} on SIGTERM\n`);
    }
  } finally {
    await svix.close();
    await nats.dispose();
  }
}

const commands = process.argv.slice(2);
if (commands.length === 0)
  throw new Error('usage: measure-start-rss.ts "npm start" "node dist/cli.js serve"');
const results = new Map<string, Array<{ rss: number; peak: number }>>();
for (let run = 1; run <= RUNS; run++) {
  for (const command of commands) {
    const r = await measure(command);
    results.set(command, [...(results.get(command) ?? []), r]);
    console.log(
      `run ${run}  ${command.padEnd(40)} RSS ${r.rss} MB, peak ${r.peak} MB, drained in ${r.seconds.toFixed(1)} s`,
    );
  }
}
const range = (xs: number[]) => `${Math.min(...xs)}–${Math.max(...xs)}`;
for (const [command, rs] of results)
  console.log(
    `${command.padEnd(40)} RSS after draining ${range(rs.map((r) => r.rss))} MB, peak ${range(rs.map((r) => r.peak))} MB (${rs.length} runs)`,
  );
