import type { Command } from "commander";
import { pino } from "pino";
import { loadConfig } from "../config/config.js";
import { startSvixStandIn } from "../local/svix-stand-in/index.js";
import { createLogger } from "../log/logger.js";
import { guardProcess, onShutdown, UsageError } from "./process.js";

/** `jobhooks svix-stand-in`: the Svix stand-in alone, for trying the SDK or a receiver against it. */
export function registerSvixStandIn(program: Command): void {
  program
    .command("svix-stand-in")
    .description("run the Svix stand-in alone on loopback; prints its URL and API token")
    .option("--port <n>", "port to listen on (0: a random free one)", "8071")
    .option("--token <token>", "API token to accept (default: a new random one)")
    .option("--operational-webhook-url <url>", "send Svix's operational webhooks to this URL")
    .option("--operational-webhook-secret <whsec>", "sign them with this secret (whsec_…)")
    .action(
      async (opts: {
        port: string;
        token?: string;
        operationalWebhookUrl?: string;
        operationalWebhookSecret?: string;
      }) => {
        if (!/^\d{1,5}$/.test(opts.port) || Number(opts.port) > 65_535)
          throw new UsageError(`--port must be 0-65535, not ${opts.port}`);
        if (Boolean(opts.operationalWebhookUrl) !== Boolean(opts.operationalWebhookSecret))
          throw new UsageError("--operational-webhook-url and --operational-webhook-secret go together");
        if (
          opts.operationalWebhookSecret &&
          !/^whsec_[A-Za-z0-9+/=]{24,}$/.test(opts.operationalWebhookSecret)
        )
          throw new UsageError("--operational-webhook-secret must be whsec_ followed by base64");
        const level = loadConfig({ LOG_LEVEL: process.env.LOG_LEVEL }, { requireSvixToken: false }).log.level;
        const log = createLogger(level, pino.destination({ fd: 2, sync: false }));
        guardProcess(log);
        const standIn = await startSvixStandIn({
          port: Number(opts.port),
          ...(opts.token ? { token: opts.token } : {}),
          log: (obj, msg) => log.warn(obj, msg),
          ...(opts.operationalWebhookUrl && opts.operationalWebhookSecret
            ? {
                operationalWebhook: {
                  url: opts.operationalWebhookUrl,
                  secret: opts.operationalWebhookSecret,
                },
              }
            : {}),
        });
        onShutdown(log, () => standIn.close());
        process.stdout.write(
          `Svix stand-in listening. Ctrl-C stops it.\n` +
            `  export SVIX_SERVER_URL=${standIn.url}\n` +
            `  export SVIX_TOKEN=${standIn.token}\n` +
            `e.g. new Svix(process.env.SVIX_TOKEN, { serverUrl: process.env.SVIX_SERVER_URL })\n` +
            `The admin routes (${standIn.url}/_stand-in/faults, /stats, /requests) take the same token as Bearer.\n`,
        );
      },
    );
}
