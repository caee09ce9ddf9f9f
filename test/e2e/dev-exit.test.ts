import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findNatsServer } from "../../src/local/nats-server.js";
import { until } from "../support/poll.js";
import { bannerExports, type Child, processesOf, startChild } from "./child.js";

// `jobhooks dev` leaves nothing behind, however it ends: no nats-server still listening, no temp dir
// (which holds the service-tokens file). Each case runs the real CLI with its own TMPDIR, so what is
// left over is exactly what this run created.

let skipReason: string | undefined;
try {
  findNatsServer();
} catch (err) {
  skipReason = (err as Error).message;
}

const CRASH_PRELOAD = path.join(import.meta.dirname, "fixtures/crash-after-banner.mjs");
const CLEANUP_MS = 15_000;

interface Run {
  dev: Child;
  tmp: string;
  env: Record<string, string>;
  banner: string;
}

const tmpDirs: string[] = [];

/**
 * `viaNpm`: as the README starts it, `npm run dev`, with this test's Node first on PATH (npm's
 * shebang runs `env node`). `group`: in its own process group, as a terminal's foreground job is.
 */
async function startDev(
  preload: string[] = [],
  opts: { viaNpm?: boolean; group?: boolean } = {},
): Promise<Run> {
  const tmp = await mkdtemp(path.join(tmpdir(), "dev-exit-"));
  tmpDirs.push(tmp);
  const env = {
    LOG_LEVEL: opts.viaNpm ? "info" : "warn",
    TMPDIR: tmp,
    PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`,
  };
  const dev = opts.viaNpm
    ? startChild("npm", ["run", "dev"], env, { group: opts.group ?? false })
    : startChild(process.execPath, [...preload, "--import", "tsx", "src/cli.ts", "dev"], env);
  try {
    await until("the banner", () => dev.lines.some((l) => l.includes("export SVIX_TOKEN=")), {
      timeoutMs: 60_000,
    });
  } catch {
    await dev.stop("SIGKILL");
    throw new Error(`jobhooks dev did not come up:\n${dev.lines.join("\n")}\n${dev.stderr()}`);
  }
  // What expectNothingLeft later finds gone must be found here first.
  expect(await processesOf(tmp), "this run's nats-server").not.toEqual([]);
  return { dev, tmp, env: bannerExports(dev.lines), banner: dev.lines.join("\n") };
}

/** Files this run left in its TMPDIR (tsx's compile cache is not ours). */
async function leftovers(tmp: string): Promise<string[]> {
  return (await readdir(tmp)).filter((name) => name.startsWith("jobhooks-"));
}

async function expectNothingLeft(run: Run): Promise<void> {
  // Timing out is not the failure reported: the two lines after it say what was left.
  await until(
    "nothing left of the run",
    async () => (await processesOf(run.tmp)).length === 0 && (await leftovers(run.tmp)).length === 0,
    { timeoutMs: CLEANUP_MS },
  ).catch(() => undefined);
  expect(await processesOf(run.tmp), "nats-server still running").toEqual([]);
  expect(await leftovers(run.tmp)).toEqual([]);
}

/** Processes whose parent is `pid` (what npm runs: with `exec`, the stack's own node process). */
async function childrenOf(pid: number): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    if (Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]) === pid) found.push(Number(entry));
  }
  return found;
}

/** Alive and not a zombie (an orphan's exit is reaped by pid 1, which in a container may never do it). */
const isRunning = async (pid: number) => {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat !== "" && !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
};

describe.skipIf(skipReason !== undefined)("npm run dev stops cleanly however it is told to", () => {
  afterAll(async () => {
    await Promise.all(tmpDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    it(`${signal} to the npm process (as a process manager sends it) stops everything; npm exits 0`, async () => {
      const run = await startDev([], { viaNpm: true });
      const [stack] = await childrenOf(run.dev.proc.pid as number);
      expect(stack).toBeDefined();
      expect(await run.dev.stop(signal)).toBe(0);
      expect(await isRunning(stack as number), "the stack's process").toBe(false);
      expect(run.dev.stderr()).toContain('"msg":"stopped"');
      await expectNothingLeft(run);
    }, 90_000);
  }

  it("a Ctrl-C in a terminal (to npm and the stack at once) stops it once, cleanly, exit 0", async () => {
    const run = await startDev([], { viaNpm: true, group: true });
    // The terminal signals the whole foreground group; npm then forwards its own copy.
    expect(await run.dev.stop("SIGINT")).toBe(0);
    expect(run.dev.stderr()).not.toContain("second signal");
    expect(run.dev.stderr()).toContain('"msg":"stopped"');
    await expectNothingLeft(run);
  }, 90_000);

  it("npm killed with SIGKILL: the stack sees its parent gone, stops and deletes its files", async () => {
    const run = await startDev([], { viaNpm: true });
    const [stack] = await childrenOf(run.dev.proc.pid as number);
    run.dev.proc.kill("SIGKILL");
    await run.dev.exited;
    await until("the orphaned stack to exit", async () => !(await isRunning(stack as number)), {
      timeoutMs: CLEANUP_MS,
    });
    await expectNothingLeft(run);
  }, 90_000);
});

describe.skipIf(skipReason !== undefined)("jobhooks dev cleans up on every exit path", () => {
  afterAll(async () => {
    await Promise.all(tmpDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it("one Ctrl-C stops everything, deletes the temp dir and exits 0", async () => {
    const run = await startDev();
    expect(await leftovers(run.tmp)).toHaveLength(1);
    expect(await run.dev.stop("SIGINT")).toBe(0);
    await expectNothingLeft(run);
  }, 90_000);

  it("a second Ctrl-C exits at once and still leaves nothing behind", async () => {
    const run = await startDev();
    run.dev.proc.kill("SIGINT");
    // On purpose: the second Ctrl-C comes while the first one's shutdown is under way.
    await new Promise((resolve) => setTimeout(resolve, 20));
    run.dev.proc.kill("SIGINT");
    expect(await run.dev.exited).toBe(1);
    expect(run.dev.stderr()).toContain("second signal");
    await expectNothingLeft(run);
  }, 90_000);

  it("SIGTERM stops everything and exits 0", async () => {
    const run = await startDev();
    expect(await run.dev.stop("SIGTERM")).toBe(0);
    await expectNothingLeft(run);
  }, 90_000);

  it("closing the terminal (SIGHUP) stops everything and exits 0", async () => {
    const run = await startDev();
    expect(await run.dev.stop("SIGHUP")).toBe(0);
    await expectNothingLeft(run);
  }, 90_000);

  it("a crash of jobhooks dev itself kills nats-server and deletes the temp dir", async () => {
    const run = await startDev(["--import", CRASH_PRELOAD]);
    expect(await run.dev.exited).toBe(1);
    expect(run.dev.stderr()).toContain("a bug in jobhooks dev");
    await expectNothingLeft(run);
  }, 90_000);

  it("kill -9 of jobhooks dev: its watchdog kills nats-server and deletes the temp dir", async () => {
    const run = await startDev();
    run.dev.proc.kill("SIGKILL");
    await run.dev.exited;
    await expectNothingLeft(run);
  }, 90_000);

  it("a second jobhooks dev says which default ports were taken, and its banner uses the ports in use", async () => {
    const first = await startDev();
    try {
      const second = await startDev();
      try {
        const port = (url: string | undefined) => new URL(url as string).port;
        for (const [name, preferred] of [
          ["JOBHOOKS_URL", "8080"],
          ["NATS_URL", "4222"],
          ["SVIX_URL", "8071"],
        ] as const) {
          // The first run holds the default unless something else already did; either way it is taken.
          expect(port(second.env[name])).not.toBe(preferred);
          expect(second.banner).toContain(
            `${preferred} is taken — is another \`jobhooks dev\` running? using ${port(second.env[name])}`,
          );
        }
        expect(second.banner).toContain(`export JOBHOOKS_URL=${second.env.JOBHOOKS_URL}`);
        expect(second.banner).toMatch(new RegExp(`${second.env.SVIX_URL}/portal/login/\\w+`));
      } finally {
        await second.dev.stop("SIGINT");
      }
    } finally {
      await first.dev.stop("SIGINT");
    }
  }, 120_000);
});
