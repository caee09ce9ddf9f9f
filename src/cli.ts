#!/usr/bin/env node
import { Command } from "commander";
import { registerDev } from "./cli/dev.js";
import { registerDlq } from "./cli/dlq.js";
import { registerKeys } from "./cli/keys.js";
import { registerServe } from "./cli/serve.js";
import { registerSvixStandIn } from "./cli/svix-stand-in.js";

/**
 * `jobhooks <command>`: wiring only; each command lives in src/cli/. Every command prints --help,
 * exits non-zero with a one-line reason on bad input, and the long-running ones stop gracefully
 * on SIGTERM/SIGINT with exit 0.
 */
const program = new Command()
  .name("jobhooks")
  .description("Job-status webhooks: durable in NATS JetStream, delivered by Svix")
  .showHelpAfterError()
  .exitOverride((err) => {
    // commander already printed the problem (or the help text).
    process.exit(err.exitCode);
  });

registerServe(program);
registerDlq(program);
registerKeys(program);
registerDev(program);
registerSvixStandIn(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`jobhooks: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
