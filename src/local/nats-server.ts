import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Real nats-server processes on loopback, for tests, benchmarks and the local stack.
 * Each server gets random free ports and its own store dir, so runs never share state.
 */

const MIN_VERSION = [2, 10] as const;
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export class NatsServerMissingError extends Error {
  constructor(detail: string) {
    super(
      `${detail}. jobhooks needs nats-server >= ${MIN_VERSION.join(".")}: run \`npm run fetch-nats-server\` ` +
        "(puts one in .cache/nats-server/), or set NATS_SERVER_BIN to a nats-server binary.",
    );
    this.name = "NatsServerMissingError";
  }
}

/** Finds nats-server in NATS_SERVER_BIN, the fetch script's cache, or PATH, refusing versions < 2.10. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string {
  const candidates = [
    env.NATS_SERVER_BIN,
    path.join(repoRoot, ".cache/nats-server/nats-server"),
    ...(env.PATH ?? "").split(path.delimiter).map((dir) => path.join(dir, "nats-server")),
  ].filter((p): p is string => Boolean(p) && existsSync(p as string));
  const tooOld: string[] = [];
  for (const bin of candidates) {
    const version = versionOf(bin);
    if (!version) continue;
    const [major, minor] = version;
    if (major > MIN_VERSION[0] || (major === MIN_VERSION[0] && minor >= MIN_VERSION[1])) return bin;
    tooOld.push(`${bin} is ${version.join(".")}`);
  }
  throw new NatsServerMissingError(
    tooOld.length ? `only an old nats-server was found (${tooOld.join("; ")})` : "nats-server was not found",
  );
}

function versionOf(bin: string): [number, number, number] | undefined {
  try {
    const out = execFileSync(bin, ["--version"], { encoding: "utf8", timeout: 5_000 });
    const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(out);
    return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
  } catch {
    return undefined;
  }
}

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port as number;
}

/**
 * `n` distinct free loopback ports. Each is held until all are found: asked one after another,
 * the kernel may hand the same just-released port out twice (a nats-server once got one port for
 * both its clients and its monitor, and could not start).
 */
export async function freePorts(n: number): Promise<number[]> {
  const held: net.Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      held.push(
        await new Promise<net.Server>((resolve, reject) => {
          const srv = net.createServer();
          srv.unref();
          srv.on("error", reject);
          srv.listen(0, "127.0.0.1", () => resolve(srv));
        }),
      );
    }
    return held.map((srv) => (srv.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(held.map((srv) => new Promise<void>((resolve) => srv.close(() => resolve()))));
  }
}

export interface NatsServerOptions {
  /** Client port; default a random free one. Kept across restart(). */
  port?: number;
  /** JetStream store; default a new temp dir, removed by stop(). Kept across restart(). */
  storeDir?: string;
  serverName?: string;
  /** Extra command-line arguments (cluster settings). */
  args?: string[];
  /** Seconds to wait for the server to report healthy. */
  startTimeoutMs?: number;
  bin?: string;
  /**
   * Runs the server in its own process group. A terminal's Ctrl-C signals the whole foreground group;
   * the local stack wants it to reach only itself, so it can drain the service before NATS goes away.
   */
  detached?: boolean;
  /** Told each server process's pid as soon as it is spawned, before it is healthy (a watchdog needs it). */
  onSpawn?: (pid: number) => void;
}

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly name: string;
  readonly running: boolean;
  /** The server process's id while it runs (a watchdog kills it if its owner dies). */
  readonly pid: number | undefined;
  /** Its HTTP monitoring endpoint (`/connz`, `/jsz`, …), on loopback. */
  readonly monitorUrl: string;
  /** Stops gracefully (SIGTERM, then SIGKILL) and keeps the store for restart(). */
  stop(): Promise<void>;
  /** Crashes the server (SIGKILL): JetStream recovers from its file store on restart(). */
  kill(): Promise<void>;
  /** Starts it again on the same port and store. */
  restart(): Promise<void>;
  /** Stops it for good and deletes the store dir if this helper created it. */
  dispose(): Promise<void>;
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const bin = opts.bin ?? findNatsServer();
  const [clientPort, monitorPort] = (await freePorts(3)).filter((p) => p !== opts.port) as [number, number];
  const port = opts.port ?? clientPort;
  const ownsStore = !opts.storeDir;
  const storeDir = opts.storeDir ?? (await mkdtemp(path.join(tmpdir(), "jobhooks-nats-")));
  const name = opts.serverName ?? `jobhooks-test-${port}`;
  const args = [
    "-js",
    "-a",
    "127.0.0.1",
    "-p",
    String(port),
    "-m",
    String(monitorPort),
    "-sd",
    storeDir,
    "-n",
    name,
    ...(opts.args ?? []),
  ];
  let child: ChildProcess | undefined;
  let output = "";

  const launch = async (): Promise<void> => {
    output = "";
    const proc = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"], detached: opts.detached ?? false });
    child = proc;
    if (proc.pid !== undefined) opts.onSpawn?.(proc.pid);
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8_000);
    };
    proc.stdout?.on("data", keep);
    proc.stderr?.on("data", keep);
    await waitHealthy(proc, monitorPort, opts.startTimeoutMs ?? 20_000, () => output);
  };

  const terminate = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  };

  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    monitorUrl: `http://127.0.0.1:${monitorPort}`,
    storeDir,
    name,
    get running() {
      return !!child && child.exitCode === null && child.signalCode === null;
    },
    get pid() {
      return child?.pid;
    },
    stop: () => terminate("SIGTERM"),
    kill: () => terminate("SIGKILL"),
    restart: async () => {
      await terminate("SIGTERM");
      await launch();
    },
    dispose: async () => {
      await terminate("SIGTERM");
      if (ownsStore) await rm(storeDir, { recursive: true, force: true });
    },
  };
}

async function waitHealthy(
  proc: ChildProcess,
  monitorPort: number,
  timeoutMs: number,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(
        `nats-server exited during start-up (${proc.exitCode ?? proc.signalCode}):\n${output()}`,
      );
    }
    try {
      // JetStream is usable only once healthz says so (for a cluster: a meta leader exists).
      const res = await fetch(`http://127.0.0.1:${monitorPort}/healthz`, {
        signal: AbortSignal.timeout(1_000),
      });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill("SIGKILL");
  throw new Error(`nats-server did not become healthy within ${timeoutMs} ms:\n${output()}`);
}

export interface NatsCluster {
  readonly servers: NatsServer[];
  /** All client URLs, comma-separated, as NATS_URL takes them. */
  readonly url: string;
  dispose(): Promise<void>;
}

/** A JetStream cluster of `size` nodes on loopback (tests use 3, for R3 streams). */
export async function startNatsCluster(size = 3, opts: { bin?: string } = {}): Promise<NatsCluster> {
  const bin = opts.bin ?? findNatsServer();
  const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = clusterPorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
  const clusterName = `jobhooks-${clusterPorts[0]}`;
  // Nodes only report healthy once the meta group has a leader, which needs a quorum: start all at once.
  const servers = await Promise.all(
    clusterPorts.map((cport, i) =>
      startNatsServer({
        bin,
        serverName: `${clusterName}-n${i + 1}`,
        args: ["--cluster_name", clusterName, "--cluster", `nats://127.0.0.1:${cport}`, "--routes", routes],
        startTimeoutMs: 30_000,
      }),
    ),
  );
  return {
    servers,
    url: servers.map((s) => s.url).join(","),
    dispose: async () => {
      await Promise.all(servers.map((s) => s.dispose()));
    },
  };
}
