import { type ChildProcess, spawn } from "node:child_process";
import { freePort } from "../../src/local/nats-server.js";
import { until, WaitTimedOut } from "./poll.js";

export interface ServiceProcess {
  child: ChildProcess;
  url: string;
  /** Resolves with the exit code (null when killed by a signal). */
  exit: Promise<number | null>;
  output(): string;
  /** Sends SIGKILL and waits for the process to be gone. */
  kill(): Promise<void>;
  /** Sends SIGTERM and waits for the exit code. */
  terminate(): Promise<number | null>;
}

export interface SpawnServiceOptions {
  /** Keeps a restarted replica at its old address (as behind a service name); default a free port. */
  port?: number;
  /** Runs the build in `dist/` (`npm run build` first), as production does, instead of the sources. */
  compiled?: boolean;
}

/** `jobhooks serve` as its own process, as an orchestrator runs it; resolves once /readyz is 200. */
export async function spawnService(
  env: Record<string, string>,
  opts: SpawnServiceOptions = {},
): Promise<ServiceProcess> {
  const port = opts.port ?? (await freePort());
  const entry = opts.compiled ? ["dist/cli.js", "serve"] : ["--import", "tsx", "src/cli.ts", "serve"];
  const child = spawn(process.execPath, entry, {
    env: { ...process.env, JOBHOOKS_ADDR: `127.0.0.1:${port}`, LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (c: Buffer) => {
    output = (output + c.toString()).slice(-200_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const proc: ServiceProcess = {
    child,
    url,
    exit,
    output: () => output,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exit;
    },
    async terminate() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exit;
    },
  };
  try {
    await until(
      "jobhooks serve to be ready",
      () => {
        if (child.exitCode !== null) throw new Error(`jobhooks serve exited early:\n${output}`);
        return fetch(`${url}/readyz`).then(
          (r) => r.ok,
          () => false,
        );
      },
      // Compiling the sources with tsx takes seconds, tens of them on a loaded machine.
      { timeoutMs: 60_000, everyMs: 100 },
    );
  } catch (err) {
    await proc.kill();
    throw err instanceof WaitTimedOut ? new Error(`jobhooks serve did not become ready:\n${output}`) : err;
  }
  return proc;
}

/**
 * The relay replicas of one test file: each `start()` spawns a real `jobhooks serve` against the
 * file's nats-server and Svix stand-in (read when it starts, so they may be created in beforeAll);
 * `killAll()` (in afterEach) ends every one still running.
 */
export function relayReplicas(
  deps: () => { natsUrl: string; svix: { token: string; url: string } },
  baseEnv: Record<string, string> = {},
) {
  const running: ServiceProcess[] = [];
  return {
    async start(env: Record<string, string> = {}): Promise<ServiceProcess> {
      const { natsUrl, svix } = deps();
      const p = await spawnService({
        NATS_URL: natsUrl,
        SVIX_TOKEN: svix.token,
        SVIX_SERVER_URL: svix.url,
        JOBHOOKS_SVIX_TIMEOUT_MS: "1000",
        ...baseEnv,
        ...env,
      });
      running.push(p);
      return p;
    },
    async killAll(): Promise<void> {
      await Promise.all(running.splice(0).map((p) => p.kill()));
    },
  };
}
