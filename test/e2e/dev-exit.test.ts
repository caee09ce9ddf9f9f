import { mkdtemp, readdir, rm } from "node:fs/promises";
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

async function startDev(preload: string[] = []): Promise<Run> {
  const tmp = await mkdtemp(path.join(tmpdir(), "dev-exit-"));
  tmpDirs.push(tmp);
  const dev = startChild(process.execPath, [...preload, "--import", "tsx", "src/cli.ts", "dev"], {
    LOG_LEVEL: "warn",
    TMPDIR: tmp,
  });
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
