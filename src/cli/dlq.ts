import type { Command } from "commander";
import { parseStoredSubject } from "../events/subjects.js";
import { NO_TENANT } from "../nats/audit-trail.js";
import { type DeadLetterRecord, listDeadLetters, replayDeadLetters } from "../relay/dlq.js";
import { cliActor, cliAuditTrail } from "./audit.js";
import { withNats } from "./nats-session.js";
import { UsageError } from "./process.js";
import { formatTable, printRecords } from "./table.js";

/** `jobhooks dlq list|replay`: why events were dead-lettered, and sending them through again. */
export function registerDlq(program: Command): void {
  const dlq = program.command("dlq").description("dead letters: events the relay could not deliver, and why");

  dlq
    .command("list")
    .description("list dead letters: sequence, age, reason, subject, detail")
    .option("--json", "one JSON object per line instead of a table")
    .action(async (opts: { json?: boolean }) => {
      await withNats(async (nc) => {
        printRecords(await listDeadLetters(nc), { json: opts.json, none: "no dead letters", table });
      });
    });

  dlq
    .command("replay")
    .description("publish dead letters again to their original subject and remove them from the DLQ")
    .argument("[seq...]", "DLQ sequences (from `dlq list`)")
    .option("--all", "replay every dead letter")
    .action(async (seqArgs: string[], opts: { all?: boolean }) => {
      if (opts.all && seqArgs.length > 0) throw new UsageError("give either --all or sequences, not both");
      if (!opts.all && seqArgs.length === 0) throw new UsageError("give --all or at least one sequence");
      const seqs = seqArgs.map((s) => {
        if (!/^\d+$/.test(s) || Number(s) < 1) throw new UsageError(`not a DLQ sequence: ${s}`);
        return Number(s);
      });
      await withNats(async (nc, config) => {
        let ok = 0;
        const results = await replayDeadLetters(nc, opts.all ? "all" : seqs, (r) => {
          if (r.kind === "replayed") ok++;
          process.stderr.write(
            r.kind === "replayed" ? `replayed ${r.seq} → ${r.subject}\n` : `failed ${r.seq}: ${r.error}\n`,
          );
        });
        process.stderr.write(`${ok} of ${results.length} replayed\n`);
        // One record per tenant whose dead letters went back (the subject names the tenant).
        const byTenant = new Map<string, string[]>();
        for (const r of results) {
          if (r.kind !== "replayed") continue;
          const tenant = parseStoredSubject(config.nats.subjectPrefix, r.subject)?.tenantId ?? NO_TENANT;
          byTenant.set(tenant, [...(byTenant.get(tenant) ?? []), String(r.seq)]);
        }
        const audit = await cliAuditTrail(nc, config);
        for (const [tenant, seqs] of byTenant) {
          await audit.record({
            act: "dead_letters.replayed",
            tenant,
            by: cliActor(),
            details: { dlq_seqs: seqs },
          });
        }
        if (ok < results.length) process.exitCode = 1;
      });
    });
}

function table(records: DeadLetterRecord[]): string {
  const now = Date.now();
  return formatTable(
    ["SEQ", "AGE", "REASON", "SUBJECT", "DETAIL"],
    records.map((r) => [String(r.seq), age(now - r.deadAt.getTime()), r.reason, r.subject, r.detail]),
  );
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1_000));
  if (s < 120) return `${s}s`;
  if (s < 7_200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3_600)}h`;
  return `${Math.round(s / 86_400)}d`;
}
