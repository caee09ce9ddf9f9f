import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findNatsServer } from "../../src/local/nats-server.js";
import { until } from "../support/poll.js";
import { bannerExports, type Child, processesOf, root, startChild } from "./child.js";

// The README is executable truth: the stack starts with the README's own first command
// (`npm run dev -- --demo`, through npm), and every command of every `sh` block then runs as
// written, in order, in bash with the `export` lines the stack printed; a `# …` line under a
// command is the answer the README promises, checked against the real one ("…" stands for
// anything: ids, times, sequence numbers). The `ts` block runs too.

const README = readFileSync(path.join(root, "README.md"), "utf8");
const ARTIFACTS = path.join(root, "artifacts/e2e");

/**
 * Not run here, each for its reason: installing is what set this clone up (CI runs `npm ci`
 * itself); `npm test` would run this very suite again; installing Node changes the user's home.
 */
const NOT_RUN = [/^npm ci\b/, /^npm test\b/, /^npm install --global\b/];

let skipReason: string | undefined;
try {
  findNatsServer();
} catch (err) {
  skipReason = (err as Error).message;
}

interface ReadmeCommand {
  command: string;
  /** The answer the README shows under it, if any; `again`: the same command run a second time. */
  expected: { text: string; again: boolean }[];
}

/** The commands of the README's `sh` blocks, each with the answers shown under it. */
function readmeCommands(markdown: string): ReadmeCommand[] {
  const commands: ReadmeCommand[] = [];
  for (const block of markdown.matchAll(/```sh\n([\s\S]*?)```/g)) {
    let pending = "";
    for (const line of (block[1] as string).split("\n")) {
      if (pending === "" && line.startsWith("#")) {
        const last = commands.at(-1);
        if (!last) continue;
        const text = line.replace(/^#\s?/, "");
        // A continuation (indented) belongs to the answer above it.
        if (/^#\s{2,}/.test(line) && last.expected.length > 0) {
          const answer = last.expected.at(-1) as { text: string };
          answer.text += text.trim();
        } else {
          const again = /^the same again: /.test(text);
          last.expected.push({ text: text.replace(/^the same again: /, "").trim(), again });
        }
        continue;
      }
      if (pending === "" && line.trim() === "") continue;
      pending += (pending ? "\n" : "") + line;
      // A command ends where its quotes are balanced and no backslash continues it.
      const quotes = (pending.match(/'/g) ?? []).length;
      if (quotes % 2 === 0 && !pending.endsWith("\\")) {
        // A trailing "# comment" on the command line is for the reader, not the shell's output.
        commands.push({ command: pending.replace(/\s+#[^'"\n]*$/, ""), expected: [] });
        pending = "";
      }
    }
  }
  return commands;
}

/** "…" stands for anything; the rest must be exact. */
function answerPattern(expected: string, ports: Record<string, string>): RegExp {
  let text = expected;
  for (const [preferred, actual] of Object.entries(ports)) text = text.replaceAll(preferred, actual);
  const escaped = text
    .split("…")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*?");
  return new RegExp(`^${escaped}$`, "s");
}

describe.skipIf(skipReason !== undefined)("the README, run as written", () => {
  let dev: Child;
  let devTmp = "";
  let startedAt = 0;
  let firstVerifiedAt = 0;
  let env: Record<string, string> = {};
  const commands = readmeCommands(README);

  beforeAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    const first = commands[0]?.command ?? "";
    // The first block's last step is the one this test takes: the rest set up this clone.
    const stackCommand = first.split("&&").at(-1)?.trim() as string;
    expect(stackCommand).toBe("npm run dev -- --demo");
    devTmp = await mkdtemp(path.join(tmpdir(), "readme-"));
    startedAt = Date.now();
    dev = startChild(
      "bash",
      ["-c", stackCommand],
      {
        TMPDIR: devTmp,
        LOG_LEVEL: "warn",
        // npm's shebang runs `env node`: this test's Node, whatever the machine's is.
        PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`,
      },
      { group: true },
    );
    const shown = (text: string) => () => dev.lines.some((l) => l.includes(text));
    await until("the first verified webhook", shown('"msg":"processed"'), { timeoutMs: 90_000 })
      .then(() => {
        firstVerifiedAt = Date.now();
      })
      .catch(() => undefined);
    await until("the demo's verified webhooks", shown("The receiver verified"), {
      timeoutMs: 90_000,
    }).catch(() => {
      throw new Error(`npm run dev -- --demo did not finish:\n${dev.lines.join("\n")}\n${dev.stderr()}`);
    });
    env = bannerExports(dev.lines);
  }, 120_000);

  afterAll(async () => {
    // A Ctrl-C, as the terminal sends it: to npm and the stack at once.
    if (dev) expect(await dev.stop("SIGINT")).toBe(0);
    if (devTmp) {
      expect(await processesOf(devTmp), "the stack's nats-server").toEqual([]);
      await rm(devTmp, { recursive: true, force: true });
    }
  }, 60_000);

  it("npm run dev -- --demo shows a verified webhook of each status, with the portal that shows them", async () => {
    const firstVerified = dev.lines.findIndex((l) => l.includes('"msg":"processed"'));
    expect(firstVerified).toBeGreaterThan(0);
    const types = dev.lines
      .filter((l) => l.startsWith("receiver: ") && l.includes('"msg":"processed"'))
      .map((l) => (JSON.parse(l.slice("receiver: ".length)) as { type: string; job_id: string }).type)
      .sort();
    expect(types).toEqual(["job.cancelled", "job.completed", "job.created", "job.failed", "job.processing"]);
    expect(dev.lines).toContain(
      "The receiver verified all 5; the portal link in step 1 shows the messages and attempts.",
    );
    const banner = dev.lines.join("\n");
    expect(banner).toMatch(/shows the endpoint, each message[\s\S]*\/portal\/login\/\w+/);
    expect(banner).toMatch(
      /receiver {2}http:\/\/127\.0\.0\.1:\d+\/webhook {3}the example Express receiver, endpoint ep_/,
    );
    // What a person waits for; the goal (10 s) is reported, not asserted: timings belong in benchmarks.
    const seconds = (firstVerifiedAt - startedAt) / 1000;
    console.log(
      `npm run dev -- --demo: first verified webhook on screen ${seconds.toFixed(1)} s after the command`,
    );
    await writeFile(
      path.join(ARTIFACTS, "demo.json"),
      `${JSON.stringify({ secondsToFirstVerifiedWebhook: seconds, at: new Date().toISOString() })}\n`,
    );
  });

  it("a request for the service sent to the stand-in's port says which port the service is on", async () => {
    const res = await fetch(`${env.SVIX_URL}/jobhooks.v1.WebhookService/PublishJobEvent`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.SERVICE_TOKEN}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(404);
    const port = new URL(env.JOBHOOKS_URL as string).port;
    expect(await res.json()).toMatchObject({
      message: `this is the Svix stand-in; the jobhooks service is on port ${port} (${env.JOBHOOKS_URL})`,
    });
  });

  it("every command the README shows runs as written and answers what the README says", async () => {
    const ports = {
      "127.0.0.1:8080": new URL(env.JOBHOOKS_URL as string).host,
      "127.0.0.1:8071": new URL(env.SVIX_URL as string).host,
    };
    const run = (command: string) =>
      spawnSync("bash", ["-c", command], {
        cwd: root,
        env: {
          ...process.env,
          ...env,
          PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}`,
        },
        encoding: "utf8",
        timeout: 60_000,
      });
    let ran = 0;
    for (const { command, expected } of commands.slice(1)) {
      if (NOT_RUN.some((re) => re.test(command))) continue;
      ran++;
      // Deliveries take a moment: the README's answer is what the call gives once Svix has sent.
      const reads = command.includes("ListJobDeliveries");
      const first = expected.find((e) => !e.again);
      // Asked again until it matches or time is up; the expect below then says what differs.
      let result = run(command);
      if (reads && first)
        await until(
          "the README's answer",
          () => {
            if (answerPattern(first.text, ports).test(result.stdout.trim())) return true;
            result = run(command);
            return false;
          },
          { timeoutMs: 15_000, everyMs: 500 },
        ).catch(() => undefined);
      expect(result.status, `${command}\n${result.stderr}`).toBe(0);
      for (const answer of expected) {
        const out = answer.again ? run(command).stdout : result.stdout;
        expect(out.trim(), command).toMatch(answerPattern(answer.text, ports));
      }
    }
    expect(ran).toBeGreaterThanOrEqual(12);
  }, 180_000);

  it("the gRPC example (TypeScript) runs as written and stores its events", () => {
    const code = /```ts\n([\s\S]*?)```/.exec(README)?.[1] as string;
    expect(code).toContain("PublishJobEvents");
    const result = spawnSync(process.execPath, ["--input-type=module-typescript", "-e", code], {
      cwd: root,
      env: { ...process.env, ...env },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain("3 stored []");
    expect(result.stdout).toMatch(/eventId: 'job_125\.failed'/);
  }, 60_000);
});
