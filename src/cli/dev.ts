import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { pino } from "pino";
import { type LogLevel, loadConfig } from "../config/config.js";
import { tenantIdProblem } from "../events/field-rules.js";
import { DEMO_JOB, type DemoReceiver, publishDemo, startDemoReceiver } from "../local/demo.js";
import { portOrFree, startDevStack } from "../local/dev-stack.js";
import { devStackBanner } from "../local/dev-stack-banner.js";
import { freePort } from "../local/nats-server.js";
import { watchParent } from "../local/parent-watch.js";
import { createLogger } from "../log/logger.js";
import { guardProcess, onShutdown, UsageError } from "./process.js";

/** The example receiver's default port, which the banner's endpoint URL uses when it is free. */
const RECEIVER_PORT = 3000;
/** How long `--demo` waits for the receiver's verified lines before saying where else to look. */
const DEMO_WAIT_MS = 15_000;
/**
 * npm forwards SIGINT/SIGTERM to the script it runs, and a terminal's Ctrl-C also reaches that
 * script directly (same process group): one Ctrl-C arrives twice within a few milliseconds.
 */
const NPM_ECHO_MS = 200;

/** Whether the parent is npm (`npm run dev`), which forwards the signals it gets to us. */
function startedByNpm(): boolean {
  try {
    // npm sets its title to "npm run dev …"; before that its argv reads ".../npm\0run\0dev".
    return /(^|[/\0])npm(-cli\.js)?([\0 ]|$)/.test(readFileSync(`/proc/${process.ppid}/cmdline`, "utf8"));
  } catch {
    // Without /proc: npm's own variables, inherited by everything below an `npm run`, so only the
    // script that runs this CLI counts.
    return process.env.npm_lifecycle_script?.includes("src/cli.ts") ?? false;
  }
}

/** `jobhooks dev`: the local stack in the foreground (README "Two commands"). */
export function registerDev(program: Command): void {
  program
    .command("dev")
    .description("run nats-server, a Svix stand-in and the service on loopback, with a demo tenant")
    .option("--tenant <id>", "the demo tenant's id", "demo")
    .option(
      "--demo",
      "also run the example receiver as the tenant's endpoint and send it one event of each status",
    )
    .action(async (opts: { tenant: string; demo?: boolean }) => {
      const problem = tenantIdProblem(opts.tenant);
      if (problem) throw new UsageError(`--tenant ${problem}`);
      // Only LOG_LEVEL is read: the stack chooses its own addresses, tokens and stores. The default
      // is serve's (info), so a refused credential or a dead letter shows up here as in production.
      const level: LogLevel = loadConfig({ LOG_LEVEL: process.env.LOG_LEVEL }, { requireSvixToken: false })
        .log.level;
      // Logs go to stderr, so stdout carries just the banner a newcomer (or a script) reads.
      const log = createLogger(level, pino.destination({ fd: 2, sync: false }));
      guardProcess(log);
      // The receiver's lines wait for the banner, so they read in order below it.
      let held: string[] | undefined = [];
      const print = (line: string) => process.stdout.write(`receiver: ${line}\n`);
      let receiver: DemoReceiver | undefined;
      const receiverPort = opts.demo ? await freePort() : 0;
      const starting = startDevStack({
        log,
        logLevel: level,
        tenant: opts.tenant,
        // Started with the stack: loading it takes about as long as the stack does.
        alongside: (adopt) => {
          if (opts.demo)
            receiver = startDemoReceiver(receiverPort, adopt, (line) =>
              held ? held.push(line) : print(line),
            );
        },
      });
      // Listening from the start: nats-server runs in its own process group, so a Ctrl-C during
      // start-up must still reach the code that stops it.
      onShutdown(
        log,
        async () => {
          const stack = await starting.catch(() => undefined);
          await stack?.stop();
        },
        { sameSignalWithinMs: startedByNpm() ? NPM_ECHO_MS : 0 },
      );
      // Closing the terminal (SIGHUP) stops the stack like Ctrl-C does; a second signal of any of
      // these exits at once, and the stack's 'exit' handler still kills nats-server and deletes
      // the temp dir.
      process.on("SIGHUP", () => process.emit("SIGTERM", "SIGTERM"));
      // npm killed (or whatever started us gone): nobody is left to press Ctrl-C.
      watchParent(() => {
        log.warn("the parent process is gone: stopping");
        process.emit("SIGTERM", "SIGTERM");
      });
      const stack = await starting;
      if (!receiver) {
        const port = await portOrFree(RECEIVER_PORT);
        process.stdout.write(devStackBanner(stack, { logLevel: level, receiverPort: port }));
        return;
      }
      const endpointId = await publishDemo(stack, receiver);
      process.stdout.write(
        devStackBanner(stack, {
          logLevel: level,
          receiverPort: receiverPort,
          demo: { receiverUrl: receiver.url, endpointId },
        }),
      );
      process.stdout.write(
        `\nPublished one event of each status (jobs ${DEMO_JOB}_created … ${DEMO_JOB}_cancelled). The receiver verifies each signature:\n`,
      );
      for (const line of held) print(line);
      held = undefined;
      const verified = await receiver.verified(DEMO_WAIT_MS);
      process.stdout.write(
        verified.length === 5
          ? `The receiver verified all 5; the portal link in step 1 shows the messages and attempts.\n`
          : `The receiver verified ${verified.length} of 5 within ${DEMO_WAIT_MS / 1000} s; the portal link in step 1 shows where the rest are.\n`,
      );
    });
}
