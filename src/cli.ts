#!/usr/bin/env node
import { Command } from "commander";
import { ConfigError, loadConfig } from "./config/config.js";
import { createLogger, type Logger } from "./log/logger.js";
import { startJobhooks } from "./main.js";

/**
 * `jobhooks <command>`: wiring only. Each command exits non-zero with a one-line reason on bad
 * input; the long-running ones stop gracefully on SIGTERM/SIGINT and exit 0.
 */
const program = new Command()
  .name("jobhooks")
  .description("Job-status webhooks: durable in NATS JetStream, delivered by Svix")
  .showHelpAfterError();

program
  .command("serve")
  .description("run the service, configured from the environment (see README)")
  .action(async () => {
    const config = loadConfig(process.env);
    const log = createLogger(config.log.level);
    guardProcess(log);
    const app = await startJobhooks(config, log);
    onShutdown(log, () => app.stop());
  });

/** Stops on the first SIGTERM/SIGINT; a second one while stopping exits at once. */
export function onShutdown(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, "shutting down");
    stop().then(
      () => {
        log.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", handle);
  process.on("SIGINT", handle);
}

/** A bug must be loud: log it; an exception that escaped every handler ends the process. */
function guardProcess(log: Logger): void {
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled promise rejection"));
  process.on("uncaughtException", (err) => {
    log.fatal({ err }, "uncaught exception");
    process.exit(1);
  });
}

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof ConfigError || err instanceof Error ? err.message : String(err);
  process.stderr.write(`jobhooks: ${message}\n`);
  process.exit(1);
});
