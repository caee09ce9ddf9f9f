import { readFileSync } from "node:fs";

/**
 * Calls `onGone` once when the process that started this one has ended. `npm run dev` runs the
 * stack under npm: when a process manager kills npm (SIGKILL, or npm dying some other way), nothing
 * tells its child, which would keep the ports, nats-server and the temp files (with the service
 * token) under pid 1. The kernel re-parents an orphan at once, so a changed parent pid says it.
 */

const CHECK_EVERY_MS = 500;

/** The current parent pid: Node's `process.ppid` is read once at start-up and never changes. */
function currentParentPid(): number | undefined {
  try {
    // /proc/self/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses.
    const stat = readFileSync("/proc/self/stat", "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function watchParent(onGone: () => void): { stop(): void } {
  const parent = process.ppid;
  const timer = setInterval(() => {
    const now = currentParentPid();
    // Without /proc (macOS), signal 0 asks whether the parent still exists.
    const gone = now === undefined ? !isRunning(parent) : now !== parent;
    if (!gone) return;
    clearInterval(timer);
    onGone();
  }, CHECK_EVERY_MS);
  // The stack's own servers keep the process alive; this check must not.
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
