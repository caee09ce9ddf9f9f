import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

/**
 * Vitest globalSetup: the whole run gets a temp folder of its own, and the teardown fails the run
 * when a test left anything in it. Every test and child process asks os.tmpdir(), which reads
 * TMPDIR, so what is left in this folder is exactly what this run created — whatever other runs on
 * the machine create at the same time. The folder is removed either way, so a failed run leaves
 * nothing behind either (the service-tokens files among it).
 */

/** What tools cache in the temp folder on purpose, not leftovers of a test. */
const TOOL_CACHES = [/^tsx-\d+$/, /^node-compile-cache$/];

export default function setup(): () => void {
  const dir = mkdtempSync(path.join(tmpdir(), "jobhooks-test-run-"));
  // Read by the forked test workers and every process they start.
  process.env.TMPDIR = dir;
  return () => {
    const left = readdirSync(dir).filter((name) => !TOOL_CACHES.some((cache) => cache.test(name)));
    rmSync(dir, { recursive: true, force: true });
    if (left.length > 0)
      throw new Error(
        `tests left ${left.length} entr${left.length === 1 ? "y" : "ies"} in the temp folder (deleted now): ${left.join(", ")}`,
      );
  };
}
