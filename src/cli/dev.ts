import type { Command } from "commander";
import { pino } from "pino";
import { type LogLevel, loadConfig } from "../config/config.js";
import { tenantIdProblem } from "../events/validate.js";
import { portOrFree, startDevStack } from "../local/dev-stack.js";
import { devStackBanner } from "../local/dev-stack-banner.js";
import { createLogger } from "../log/logger.js";
import { guardProcess, onShutdown, UsageError } from "./process.js";

/** The example receiver's default port, which the banner's endpoint URL uses when it is free. */
const RECEIVER_PORT = 3000;

/** `jobhooks dev`: the local stack in the foreground (README "Two commands"). */
export function registerDev(program: Command): void {
  program
    .command("dev")
    .description("run nats-server, a Svix stand-in and the service on loopback, with a demo tenant")
    .option("--tenant <id>", "the demo tenant's id", "demo")
    .action(async (opts: { tenant: string }) => {
      const problem = tenantIdProblem(opts.tenant);
      if (problem) throw new UsageError(`--tenant ${problem}`);
      // Only LOG_LEVEL is read: the stack chooses its own addresses, tokens and stores. The default
      // is serve's (info), so a refused credential or a dead letter shows up here as in production.
      const level: LogLevel = loadConfig({ LOG_LEVEL: process.env.LOG_LEVEL }, { requireSvixToken: false })
        .log.level;
      // Logs go to stderr, so stdout carries just the banner a newcomer (or a script) reads.
      const log = createLogger(level, pino.destination({ fd: 2, sync: false }));
      guardProcess(log);
      const starting = startDevStack({ log, logLevel: level, tenant: opts.tenant });
      // Listening from the start: nats-server runs in its own process group, so a Ctrl-C during
      // start-up must still reach the code that stops it.
      onShutdown(log, async () => {
        const stack = await starting.catch(() => undefined);
        await stack?.stop();
      });
      // Closing the terminal (SIGHUP) stops the stack like Ctrl-C does; a second signal of any of
      // these exits at once, and the stack's 'exit' handler still kills nats-server and deletes
      // the temp dir.
      process.on("SIGHUP", () => process.emit("SIGTERM", "SIGTERM"));
      const stack = await starting;
      const receiverPort = await portOrFree(RECEIVER_PORT);
      process.stdout.write(devStackBanner(stack, { logLevel: level, receiverPort }));
    });
}
