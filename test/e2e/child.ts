import { type ChildProcess, spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** A child process whose stdout lines are kept; stop() ends it (SIGTERM, then SIGKILL) and says how. */
export interface Child {
  proc: ChildProcess;
  lines: string[];
  stderr: () => string;
  exited: Promise<number | null>;
  stop(sig?: NodeJS.Signals): Promise<number | null>;
}

/** `group`: its own process group, so stop() also ends what it started (a shell line, npx). */
export function startChild(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  opts: { group?: boolean } = {},
): Child {
  const proc = spawn(command, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: opts.group ?? false,
  });
  const signal = (sig: NodeJS.Signals) => {
    try {
      if (opts.group && proc.pid !== undefined) process.kill(-proc.pid, sig);
      else proc.kill(sig);
    } catch {
      // already gone
    }
  };
  const lines: string[] = [];
  let partial = "";
  let stderr = "";
  proc.stdout?.on("data", (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split("\n");
    partial = parts.pop() ?? "";
    lines.push(...parts);
  });
  proc.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-20_000);
  });
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return {
    proc,
    lines,
    stderr: () => stderr,
    exited,
    async stop(sig = "SIGTERM") {
      if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
      signal(sig);
      const timer = setTimeout(() => signal("SIGKILL"), 20_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** The `export NAME=value` lines `jobhooks dev` prints, as a map. */
export function bannerExports(lines: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of lines) {
    const m = /^\s*export ([A-Z_]+)=(\S+)$/.exec(line);
    if (m) env[m[1] as string] = m[2] as string;
  }
  return env;
}

/**
 * Processes whose command line names this run's TMPDIR: its nats-server (its store lives there).
 * Asked of the process table, not of the port: another test's dev stack may take the default ports
 * the moment this one frees them.
 */
export async function processesOf(tmp: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(tmp)) pids.push(Number(entry));
  }
  return pids;
}
