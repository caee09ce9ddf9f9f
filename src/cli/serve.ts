import type { Command } from "commander";
import { loadConfig } from "../config/config.js";
import { createLogger } from "../log/logger.js";
import { startJobhooks } from "../main.js";
import { startTracing } from "../tracing/tracing.js";
import { guardProcess, onShutdown } from "./process.js";

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the service, configured from the environment (see README)")
    .action(async () => {
      const config = loadConfig(process.env);
      const log = createLogger(config.log.level);
      guardProcess(log);
      const tracing = await startTracing(process.env, log);
      const app = await startJobhooks(config, log);
      onShutdown(log, () => app.stop().then(tracing.shutdown));
      // Rotating a service token: edit the file, then `kill -HUP`; no restart, no dropped request.
      process.on("SIGHUP", () => void app.reloadServiceTokens());
    });
}
