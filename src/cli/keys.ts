import type { Command } from "commander";
import { isApiKeyId } from "../credentials/api-key.js";
import { tenantIdProblem } from "../events/field-rules.js";
import { type ApiKeyRecord, type ApiKeyStore, openApiKeyStore } from "../nats/api-key-store.js";
import type { AuditTrail } from "../nats/audit-trail.js";
import { cliActor, cliAuditTrail } from "./audit.js";
import { withNats } from "./nats-session.js";
import { UsageError } from "./process.js";
import { formatTable, printRecords } from "./table.js";

/**
 * `jobhooks keys create|list|revoke`: customer API keys in NATS KV. `create` prints the key alone on
 * stdout, so `KEY=$(jobhooks keys create --tenant acme)` works; everything else goes to stderr.
 */
export function registerKeys(program: Command): void {
  const keys = program
    .command("keys")
    .description("customer API keys: stored only as SHA-256 in NATS KV; a key calls GetPortalLink");

  keys
    .command("create")
    .description("create a key for a tenant and print it once (it cannot be shown again)")
    .requiredOption("--tenant <id>", "the tenant the key belongs to")
    .action(async (opts: { tenant: string }) => {
      const problem = tenantIdProblem(opts.tenant);
      if (problem) throw new UsageError(`--tenant ${problem}`);
      await withKeyStore(async (store, audit) => {
        const { key, record } = await store.create(opts.tenant);
        await audit.record({
          act: "api_key.created",
          tenant: record.tenantId,
          by: cliActor(),
          details: { key_id: record.id },
        });
        process.stderr.write(`created ${record.id} for tenant ${record.tenantId}; store the key now\n`);
        process.stdout.write(`${key}\n`);
      });
    });

  keys
    .command("list")
    .description("list keys: id, tenant, created, last used (never the key or its hash)")
    .option("--tenant <id>", "only this tenant's keys")
    .option("--json", "one JSON object per line instead of a table")
    .action(async (opts: { tenant?: string; json?: boolean }) => {
      await withKeyStore(async (store) => {
        const records = (await store.list()).filter((r) => !opts.tenant || r.tenantId === opts.tenant);
        printRecords(records, { json: opts.json, none: "no keys", table });
      });
    });

  keys
    .command("revoke")
    .description("revoke a key by id; every replica refuses it within seconds")
    .argument("<key-id>", "the key's id (from `keys list`), e.g. key_…")
    .action(async (id: string) => {
      if (!isApiKeyId(id)) throw new UsageError(`not a key id: ${id.slice(0, 40)} (ids look like key_…)`);
      await withKeyStore(async (store, audit) => {
        const revoked = await store.revoke(id);
        if (!revoked) throw new UsageError(`no key with id ${id} (\`jobhooks keys list\` shows the ids)`);
        await audit.record({
          act: "api_key.revoked",
          tenant: revoked.tenantId,
          by: cliActor(),
          details: { key_id: revoked.id },
        });
        process.stderr.write(`revoked ${revoked.id} of tenant ${revoked.tenantId}\n`);
      });
    });
}

/** The key store and the audit trail on a short CLI session (see withNats). */
function withKeyStore<T>(f: (store: ApiKeyStore, audit: AuditTrail) => Promise<T>): Promise<T> {
  return withNats(async (nc, config) =>
    f(await openApiKeyStore(nc, { replicas: config.nats.streamReplicas }), await cliAuditTrail(nc, config)),
  );
}

function table(records: ApiKeyRecord[]): string {
  return formatTable(
    ["ID", "TENANT", "CREATED", "LAST USED"],
    records.map((r) => [r.id, r.tenantId, r.createdAt, r.lastUsedAt ?? "never"]),
    Number.POSITIVE_INFINITY, // ids and tenants are short enough to show whole
  );
}
