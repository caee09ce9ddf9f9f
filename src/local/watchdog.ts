import { type ChildProcess, spawn } from "node:child_process";

/**
 * A second, tiny process that cleans up after `jobhooks dev` when `jobhooks dev` cannot: after
 * `kill -9` nothing in the process runs, so its nats-server (in its own process group, see
 * nats-server.ts) would keep 4222 and its temp dir (which holds the service token) would stay on disk.
 *
 * The watchdog holds the read end of a pipe from this process. The kernel closes that pipe when this
 * process ends, however it ends, so the watchdog learns of it at once (no polling of pids). It then
 * kills the processes and deletes the dirs it was told about and still owns. A clean stop tells it to
 * forget each one as it is undone, so it never signals a pid the system has since reused.
 *
 * It runs detached (its own session): neither Ctrl-C nor a closed terminal's SIGHUP reaches it, and it
 * ignores them anyway.
 */

const KILL_GRACE_MS = 3_000;

// Plain JavaScript for `node -e`, so it runs the same from dist/ and from src/ under tsx.
const SCRIPT = `// jobhooks dev: watchdog
const { readFileSync, rmSync } = require("node:fs");
const pids = new Set(), dirs = new Set();
for (const s of ["SIGINT", "SIGHUP", "SIGTERM"]) process.on(s, () => {});
let buffered = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  const lines = (buffered + chunk).split("\\n");
  buffered = lines.pop();
  for (const line of lines) {
    const [op, kind, ...rest] = line.split(" ");
    const value = rest.join(" ");
    const set = kind === "pid" ? pids : dirs;
    if (op === "+") set.add(kind === "pid" ? Number(value) : value);
    if (op === "-") set.delete(kind === "pid" ? Number(value) : value);
  }
});
// A killed child of a dead parent stays a zombie where nobody reaps it (pid 1 of a container): dead.
const zombie = (pid) => { try { return readFileSync("/proc/" + pid + "/stat", "utf8").split(") ")[1].startsWith("Z"); } catch { return false; } };
const alive = (pid) => { try { process.kill(pid, 0); return !zombie(pid); } catch { return false; } };
process.stdin.on("end", () => {
  for (const pid of pids) try { process.kill(pid, "SIGTERM"); } catch {}
  const deadline = Date.now() + ${KILL_GRACE_MS};
  const finish = () => {
    const left = [...pids].filter(alive);
    if (left.length > 0 && Date.now() < deadline) return setTimeout(finish, 50);
    for (const pid of left) try { process.kill(pid, "SIGKILL"); } catch {}
    for (const dir of dirs) try { rmSync(dir, { recursive: true, force: true }); } catch {}
    process.exit(0);
  };
  finish();
});
`;

export interface Watchdog {
  /** Kill this process (SIGTERM, then SIGKILL) if we die without undoing it. */
  watchPid(pid: number): void;
  forgetPid(pid: number): void;
  /** Delete this dir if we die without deleting it. */
  watchDir(dir: string): void;
  forgetDir(dir: string): void;
  /** Ends the watchdog with nothing left to clean (after a clean stop). */
  close(): void;
}

export function startWatchdog(): Watchdog {
  const child: ChildProcess = spawn(process.execPath, ["-e", SCRIPT], {
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  // Neither the process nor its pipe may keep this process alive; the pipe only has to exist.
  child.unref();
  const stdin = child.stdin;
  (stdin as unknown as { _handle?: { unref?: () => void } })?._handle?.unref?.();
  stdin?.on("error", () => {}); // the watchdog gone early: nothing to tell it any more
  const tell = (line: string) => {
    if (stdin && !stdin.destroyed) stdin.write(`${line}\n`);
  };
  return {
    watchPid: (pid) => tell(`+ pid ${pid}`),
    forgetPid: (pid) => tell(`- pid ${pid}`),
    watchDir: (dir) => tell(`+ dir ${dir}`),
    forgetDir: (dir) => tell(`- dir ${dir}`),
    close: () => stdin?.end(),
  };
}
