#!/usr/bin/env node
import { Command } from "commander";
import { registerAudit } from "./cli/audit.js";
import { registerBacklog } from "./cli/backlog.js";
import { registerDlq } from "./cli/dlq.js";
import { registerKeys } from "./cli/keys.js";
import { registerServe } from "./cli/serve.js";

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
registerBacklog(program);
registerKeys(program);
registerAudit(program);
await registerLocalCommands(program);

/**
 * `dev` and `svix-stand-in` live in src/cli/local.ts, which the production build leaves out. The
 * specifier is a variable so that tsc does not follow it into dist/; without the module (the image),
 * the commands say where they run instead of "unknown command".
 */
async function registerLocalCommands(cli: Command): Promise<void> {
  const specifier = "./cli/local.js";
  try {
    const local = (await import(specifier)) as { registerLocalCommands(cli: Command): void };
    local.registerLocalCommands(cli);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND";
    if (!missing || !String((err as Error).message).includes("cli/local.js")) throw err;
    for (const name of ["dev", "svix-stand-in"]) {
      cli
        .command(name, { hidden: true })
        // Whatever follows (`--port 1`) must reach the explanation, not commander's usage errors.
        .allowUnknownOption()
        .allowExcessArguments()
        .action(() => {
          process.stderr.write(
            `jobhooks: \`${name}\` is not part of the production build; from a clone of the repository run \`npm run ${name}\`\n`,
          );
          process.exit(2);
        });
    }
  }
}

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`jobhooks: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
