import { userInfo } from "node:os";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Command } from "commander";
import type { Config } from "../config/config.js";
import { tenantIdProblem } from "../events/validate.js";
import { createLogger } from "../log/logger.js";
import { type AuditRecord, type AuditTrail, listAuditRecords, openAuditTrail } from "../nats/audit-trail.js";
import { withNats } from "./nats-session.js";
import { UsageError } from "./process.js";
import { formatTable, printRecords } from "./table.js";

/** `jobhooks audit list`: who did what to which tenant, from the JOBHOOKS_AUDIT stream. */
export function registerAudit(program: Command): void {
  const audit = program
    .command("audit")
    .description(
      "the audit trail: keys created and revoked, portal links, sessions revoked, tenants deleted, replays",
    );

  audit
    .command("list")
    .description("list audit records, oldest first: time, act, tenant, by, details")
    .option("--tenant <id>", "only this tenant's records")
    .option(
      "--since <when>",
      "only records from then on: an ISO time (2026-12-01T00:00:00Z) or an age (30m, 24h, 7d)",
    )
    .option("--json", "one JSON object per line instead of a table")
    .action(async (opts: { tenant?: string; since?: string; json?: boolean }) => {
      if (opts.tenant !== undefined) {
        const problem = tenantIdProblem(opts.tenant);
        if (problem) throw new UsageError(`--tenant ${problem}`);
      }
      const since = opts.since === undefined ? undefined : parseSince(opts.since, Date.now());
      await withNats(async (nc) => {
        const records = await listAuditRecords(nc, { tenant: opts.tenant, since });
        printRecords(records, { json: opts.json, none: "no audit records", table });
      });
    });
}

/** `30m`, `24h`, `7d` before `now`, or an ISO 8601 time; a UsageError saying what to type otherwise. */
export function parseSince(text: string, now: number): Date {
  const age = /^(\d+)([smhd])$/.exec(text.trim());
  if (age) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as "s" | "m" | "h" | "d"];
    return new Date(now - Number(age[1]) * unit);
  }
  const at = Date.parse(text);
  if (Number.isNaN(at) || !/^\d{4}-\d{2}-\d{2}/.test(text)) {
    throw new UsageError(
      `--since ${text}: give an ISO time such as 2026-12-01T00:00:00Z, or an age such as 24h or 7d`,
    );
  }
  return new Date(at);
}

/** The audit trail for a CLI command's acts, recorded as `cli:<os user>`; its log lines go to stderr. */
export function cliAuditTrail(nc: NatsConnection, config: Config): Promise<AuditTrail> {
  return openAuditTrail(
    nc,
    {
      maxAgeMs: config.nats.auditMaxAgeMs,
      maxBytes: config.nats.auditMaxBytes,
      replicas: config.nats.streamReplicas,
    },
    createLogger("warn", process.stderr),
  );
}

export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return "cli:unknown";
  }
}

function table(records: AuditRecord[]): string {
  return formatTable(
    ["AT", "ACT", "TENANT", "BY", "DETAILS"],
    records.map((r) => [r.at, r.act, r.tenant, r.by, JSON.stringify(r.details)]),
  );
}
