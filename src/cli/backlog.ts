import { jetstreamManager } from "@nats-io/jetstream";
import type { Command } from "commander";
import { JOBS_STREAM } from "../nats/provision.js";
import { type TenantBacklog, topWaitingTenants } from "../nats/waiting-by-tenant.js";
import { withNats } from "./nats-session.js";
import { UsageError } from "./process.js";
import { formatTable, printRecords } from "./table.js";

/** `jobhooks backlog`: the tenants with the most events waiting to be relayed — who is flooding us? */
export function registerBacklog(program: Command): void {
  program
    .command("backlog")
    .description("tenants with the most events waiting to be relayed to Svix, and their oldest event's age")
    .option("--top <n>", "how many tenants to list", "20")
    .option("--json", "one JSON object per line instead of a table")
    .action(async (opts: { top: string; json?: boolean }) => {
      const top = Number(opts.top);
      if (!Number.isInteger(top) || top < 1 || top > 100_000)
        throw new UsageError(`--top must be 1–100000, not ${opts.top}`);
      await withNats(async (nc, config) => {
        const jsm = await jetstreamManager(nc);
        const backlog = await topWaitingTenants(jsm, JOBS_STREAM, config.nats.subjectPrefix, top);
        printRecords(backlog.tenants, { json: opts.json, none: "no events waiting", table });
        if (!opts.json && backlog.totalTenants > 0) {
          process.stderr.write(
            `${backlog.totalWaiting} events of ${backlog.totalTenants} tenants waiting` +
              (backlog.totalTenants > backlog.tenants.length
                ? ` (top ${backlog.tenants.length} shown)`
                : "") +
              "\n",
          );
        }
      });
    });
}

function table(records: TenantBacklog[]): string {
  const now = Date.now();
  return formatTable(
    ["TENANT", "WAITING", "OLDEST_AGE_S", "OLDEST_STORED_AT"],
    records.map((r) => [
      r.tenant,
      String(r.waiting),
      r.oldestAt ? String(Math.max(0, Math.round((now - r.oldestAt.getTime()) / 1_000))) : "-",
      r.oldestAt?.toISOString() ?? "-",
    ]),
  );
}
