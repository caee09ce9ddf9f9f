import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Code } from "@connectrpc/connect";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebhookService } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { type SvixStandIn, startSvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { openApiKeyStore } from "../../src/nats/api-key-store.js";
import { until } from "../support/poll.js";
import { SERVICE_TOKEN } from "../support/service.js";
import { type ServiceProcess, spawnService } from "../support/spawn-service.js";
import { buildGrpcGoClient, type MatrixClient, matrixClients, type WireCall } from "./matrix-clients.js";
import {
  type Credential,
  CUSTOMER_TENANT,
  call,
  type Json,
  OK,
  oversizeEvent,
  type Phase,
  PUBLISH_TIMEOUT_MS,
  type Row,
  rows,
  SHORT_RPC_DEADLINE_MS,
  type Target,
} from "./matrix-rows.js";
import type { Detail, Seen } from "./seen.js";

// Every client reads every status: the same RPCs, made by seven real clients (four in this
// process, three as child processes) against a real nats-server, the Svix stand-in and the real
// service, must each see the same code, the same readable message and the same google.rpc
// details. The reference for message and details is the Connect JSON client, whose protocol
// carries them as plain JSON: nothing to decode, nothing a client could read differently.
//
// The service runs as `jobhooks serve` in its own process, as deployed: the in-process clients
// would otherwise share its event loop and blur what it answers near a deadline.

const REFERENCE = "connect-node-json";

const phases: ReadonlyArray<{ phase: Phase; title: string }> = [
  { phase: "up", title: "NATS and Svix up" },
  { phase: "svix-down", title: "Svix answers 503 with Retry-After" },
  { phase: "svix-slow", title: "Svix slower than the server's deadline" },
  { phase: "nats-frozen", title: "NATS frozen (SIGSTOP)" },
  // Last: after it nothing waits for the services to be back on NATS.
  { phase: "nats-down", title: "NATS stopped" },
];

let nats: NatsServer;
let standIn: SvixStandIn;
const services = {} as Record<Target, ServiceProcess>;
let tokenDir = "";
let customerKey = "";
/** What each client saw in the current phase: client → call id → Seen. */
const seen = new Map<string, Map<string, Seen>>();
/** How long each phase took (set-up, every client's calls, recovery), for the summary. */
const phaseMs = new Map<Phase, number>();
let startupMs = 0;
/** The whole matrix, for the summary printed at the end. */
const summary: Array<{ row: string; client: string; code: number; ms?: number; ok: boolean }> = [];

for (const c of matrixClients) {
  if (c.missing) console.warn(`status matrix: ${c.name} rows are skipped: ${c.missing}`);
}

beforeAll(async () => {
  const started = performance.now();
  const go = matrixClients.find((c) => c.name === "grpc-go");
  // The Go build (about 20 s the first time, cached after) runs while the servers start.
  const built = go && !go.missing ? buildGrpcGoClient().catch((e: unknown) => e) : undefined;
  nats = await startNatsServer();
  standIn = await startSvixStandIn({ deliver: false });
  tokenDir = await mkdtemp(path.join(tmpdir(), "jobhooks-matrix-"));
  const tokensFile = path.join(tokenDir, "tokens");
  await writeFile(tokensFile, `${SERVICE_TOKEN}\n`, { mode: 0o600 });
  const env = {
    NATS_URL: nats.url,
    SVIX_TOKEN: standIn.token,
    SVIX_SERVER_URL: standIn.url,
    JOBHOOKS_SERVICE_TOKENS_FILE: tokensFile,
    // The matrix reads what the API answers; nothing needs relaying.
    JOBHOOKS_RELAY_ENABLED: "false",
    LOG_LEVEL: "warn",
  };
  [services.main, services["short-deadline"]] = await Promise.all([
    // Publishing gives up after 3 s while NATS is away, long before the outage rows' deadlines, so
    // they read the service's UNAVAILABLE, never a deadline race on a busy machine.
    spawnService({ ...env, JOBHOOKS_PUBLISH_TIMEOUT_MS: String(PUBLISH_TIMEOUT_MS) }),
    spawnService({ ...env, JOBHOOKS_RPC_DEADLINE_MS: String(SHORT_RPC_DEADLINE_MS) }),
  ]);
  const nc = await connect({ servers: nats.url });
  try {
    customerKey = (await (await openApiKeyStore(nc, { replicas: 1 })).create(CUSTOMER_TENANT)).key;
  } finally {
    await nc.close();
  }
  await built;
  startupMs = Math.round(performance.now() - started);
}, 300_000);

afterAll(async () => {
  if (nats?.pid !== undefined && nats.running) process.kill(nats.pid, "SIGCONT");
  await Promise.all(Object.values(services).map((s) => s.terminate()));
  await standIn?.close();
  await nats?.dispose();
  if (tokenDir) await rm(tokenDir, { recursive: true, force: true });
  printSummary();
});

function headersFor(credential: Credential): Record<string, string> {
  switch (credential) {
    case "none":
      return {};
    case "wrong":
      return { authorization: "Bearer jh_wrong_0123456789abcdef0123456789abcdef" };
    case "customer":
      return { authorization: `Bearer ${customerKey}` };
    case "service":
      return { authorization: `Bearer ${SERVICE_TOKEN}` };
  }
}

const callId = (row: Row) => row.label;

/** Every client makes every row of the phase, clients side by side, each against both services. */
async function runPhase(phase: Phase): Promise<void> {
  seen.clear();
  const phaseRows = rows.filter((r) => r.phase === phase);
  await Promise.all(
    matrixClients
      .filter((c) => !c.missing)
      .map(async (client) => {
        const mine = new Map<string, Seen>();
        for (const target of ["main", "short-deadline"] as const) {
          const calls: WireCall[] = phaseRows
            .filter((r) => r.target === target && !(r.expect.clientDeadline && client.noDeadline))
            .map((r) => ({
              id: callId(r),
              ...r.call(client.name),
              headers: headersFor(r.credential),
              timeoutMs: r.timeoutMs,
            }));
          if (calls.length === 0) continue;
          const got = await client
            .run(services[target].url, calls)
            .catch((e: unknown) => new Map(calls.map((c) => [c.id, crashed(e)])));
          for (const [id, s] of got) mine.set(id, s);
        }
        seen.set(client.name, mine);
      }),
  );
}

function crashed(e: unknown): Seen {
  return { code: -1, message: "", details: [], raw: `the client could not run: ${String(e)}` };
}

const readyz = async (svc: ServiceProcess) => (await fetch(`${svc.url}/readyz`)).status;

async function enter(phase: Phase): Promise<void> {
  switch (phase) {
    case "up":
      return;
    case "svix-down":
      standIn.faults.inject({ route: "authentication.*", kind: "503", retryAfterSeconds: 7 });
      return;
    case "svix-slow":
      standIn.faults.inject({
        route: "authentication.*",
        kind: "latency",
        latencyMs: 4 * SHORT_RPC_DEADLINE_MS,
      });
      return;
    case "nats-down":
      await nats.stop();
      return;
    case "nats-frozen":
      process.kill(nats.pid as number, "SIGSTOP");
      return;
  }
}

async function leave(phase: Phase): Promise<void> {
  switch (phase) {
    case "svix-down":
    case "svix-slow":
      standIn.faults.clear();
      return;
    case "nats-down":
      // Back, so the services drain quickly when they stop; the next phase, if any, needs them on it.
      await nats.restart();
      if (phases[phases.length - 1]?.phase === phase) return;
      for (const svc of Object.values(services)) {
        await until("the service to reconnect to NATS", async () => (await readyz(svc)) === 200, {
          timeoutMs: 30_000,
          everyMs: 100,
        });
      }
      return;
    case "nats-frozen":
      process.kill(nats.pid as number, "SIGCONT");
      return;
    default:
      return;
  }
}

/** Calls per client in the repeated-refusal check: enough to catch a race that loses 1 in 5. */
const REFUSALS = 12;

// A refusal decided from the headers answers before the body is read. Whether the client still
// reads that answer while it is sending its body is a race (HTTP/1.1: the server must not close
// the socket under a client still writing; HTTP/2: the stream is reset only after the answer), so
// one call per client is not enough: each client makes a dozen. buf curl, one process per call,
// is left out for time.
describe("a refusal from the headers reaches the client every time", () => {
  for (const client of matrixClients.filter((c) => c.name !== "buf-curl")) {
    const title = `${client.name}: ${REFUSALS} × PublishJobEvents with a 300 KiB body and a customer key`;
    it.skipIf(client.missing !== undefined)(
      title,
      async () => {
        const calls: WireCall[] = Array.from({ length: REFUSALS }, (_, i) => ({
          id: `refusal-${i}`,
          ...call(WebhookService.method.publishJobEvents, { events: [oversizeEvent(`refused-${i}`)] }),
          headers: headersFor("customer"),
          timeoutMs: 15_000,
        }));
        // One after another on one connection: a refusal must also leave a kept-alive connection
        // fit for the next call (or close it in a way the client sees before reusing it).
        const got = [...(await client.run(services.main.url, calls, 1)).values()];
        const outcomes = new Map<string, number>();
        for (const s of got) {
          const key = `${s.code} ${s.code === Code.PermissionDenied ? s.message : s.raw}`;
          outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
        }
        expect(Object.fromEntries(outcomes)).toEqual({
          [`${Code.PermissionDenied} PublishJobEvents is for internal services only`]: REFUSALS,
        });
      },
      120_000,
    );
  }
});

describe.each(phases)("$title", ({ phase }) => {
  beforeAll(async () => {
    const started = performance.now();
    await enter(phase);
    try {
      await runPhase(phase);
    } finally {
      await leave(phase);
      phaseMs.set(phase, Math.round(performance.now() - started));
    }
  }, 120_000);

  for (const client of matrixClients) {
    const title = client.missing ? `${client.name} (skipped: ${client.missing})` : client.name;
    describe.skipIf(client.missing !== undefined)(title, () => {
      for (const row of rows.filter((r) => r.phase === phase)) {
        const cannot = row.expect.clientDeadline ? client.noDeadline : undefined;
        if (cannot) it.skip(`${row.label} (skipped: ${cannot})`, () => undefined);
        else it(row.label, () => check(row, client));
      }
    });
  }
});

/** What a client saw of a row, held against the row's expectation and the reference client. */
function check(row: Row, client: MatrixClient): void {
  const got = seen.get(client.name)?.get(callId(row));
  // The reference is compared against only where it saw the expected code itself (its own row
  // fails otherwise): one wrong answer to it should not fail every other client's row.
  const refSeen = seen.get(REFERENCE)?.get(callId(row));
  const ref = refSeen?.code === row.expect.code ? refSeen : undefined;
  if (!got) throw new Error(`${client.name} reported nothing for this call`);
  const printed = `${client.name} printed${got.ms === undefined ? "" : ` after ${got.ms} ms`}: ${got.raw}`;
  summary.push({
    row: `${row.phase} · ${row.label}`,
    client: client.name,
    code: got.code,
    ms: got.ms,
    ok: false,
  });
  const entry = summary[summary.length - 1] as (typeof summary)[number];

  expect(got.code, printed).toBe(row.expect.code);
  if (row.expect.code === OK) {
    row.expect.response?.(got.response as Json);
    if (ref && client.name !== REFERENCE) {
      expect(comparable(got.response, client.name), printed).toEqual(comparable(ref.response, REFERENCE));
    }
    entry.ok = true;
    return;
  }
  if (row.expect.clientDeadline) {
    entry.ok = true;
    return;
  }
  expect(got.message, printed).not.toBe("");
  expect(got.message, `${printed}\n(the message still holds a percent-escape)`).not.toMatch(
    /%[0-9A-Fa-f]{2}/,
  );
  for (const words of row.expect.messageHas ?? []) expect(got.message, printed).toContain(words);
  if (row.expect.fields) expect(fieldsOf(got.details), printed).toEqual(row.expect.fields);
  if (row.expect.retryInfo) expect(retryDelayOf(got.details), printed).toMatch(/^\d+(\.\d+)?s$/);
  if (ref && client.name !== REFERENCE) {
    expect(got.message, `${printed}\n(the same message as ${REFERENCE})`).toBe(ref.message);
    expect(got.details, `${printed}\n(the same details as ${REFERENCE})`).toEqual(ref.details);
  }
  entry.ok = true;
}

function fieldsOf(details: Detail[]): string[] {
  return details
    .filter((d) => d.type === "google.rpc.BadRequest")
    .flatMap((d) =>
      ((d.value as { fieldViolations?: Array<{ field: string }> }).fieldViolations ?? []).map((v) => v.field),
    );
}

function retryDelayOf(details: Detail[]): string | undefined {
  return (
    details.find((d) => d.type === "google.rpc.RetryInfo")?.value as { retryDelay?: string } | undefined
  )?.retryDelay;
}

/**
 * A response with what legitimately differs between two clients' calls taken out: stream
 * sequences, portal URLs and times, and the client's own name in its ids.
 */
function comparable(response: unknown, client: string): unknown {
  return JSON.parse(JSON.stringify(response ?? null), (key, value: unknown) => {
    if (["streamSequence", "url", "expiresAt", "appId"].includes(key)) return undefined;
    return typeof value === "string" ? value.replaceAll(client, "<client>") : value;
  });
}

function printSummary(): void {
  if (summary.length === 0) return;
  const clients = matrixClients.map((c) => c.name);
  const byRow = new Map<string, Map<string, { code: number; ms?: number; ok: boolean }>>();
  for (const s of summary) {
    if (!byRow.has(s.row)) byRow.set(s.row, new Map());
    byRow.get(s.row)?.set(s.client, s);
  }
  const lines = [`| row | ${clients.join(" | ")} |`, `|---|${clients.map(() => "---").join("|")}|`];
  for (const [row, cells] of byRow) {
    const cell = (c: string) => {
      const s = cells.get(c);
      return s ? `${s.ok ? "pass" : "FAIL"} ${s.code}${s.ms === undefined ? "" : ` ${s.ms}ms`}` : "skipped";
    };
    lines.push(`| ${row} | ${clients.map(cell).join(" | ")} |`);
  }
  const times = [`start-up ${startupMs} ms`, ...[...phaseMs].map(([p, ms]) => `${p} ${ms} ms`)];
  console.log(
    `status matrix (pass/FAIL, the code each client saw, how long the call took):\n${lines.join("\n")}\n${times.join(", ")}`,
  );
}
