import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { startNatsServer } from "../src/local/nats-server.js";
import { openApiKeyStore } from "../src/nats/api-key-store.js";
import { JOBS_STREAM } from "../src/nats/provision.js";
import {
  bigValidBatches,
  closeGrpcJsClients,
  customerKeyOversize,
  grpcJsCall,
  healthCheckFlood,
  holdStreams,
  IMAGE_NODE_OPTIONS,
  MIB_16,
  procStatusMb,
} from "../test/support/attacks.js";
import { grpcFrame, grpcStatusOf, type WireAnswer } from "../test/support/raw-wire.js";
import { type ServiceProcess, spawnService } from "../test/support/spawn-service.js";

/**
 * `npm run bench -- attack` (and after `npm run bench -- publish`): peak RSS (VmHWM) of one
 * `jobhooks serve` replica — compiled, with the container image's NODE_OPTIONS — under the attacks
 * of issue 20's rows 1–3, beside the same replica at rest and under one legitimate batch near
 * 16 MiB; and while streams are held open unfinished (the issue's "one connection with 20
 * unfinished streams", and a stranger's 2,000 unfinished health checks), with a small publish
 * meanwhile. A fresh replica for every row of every run, so each peak is that row's alone.
 * Goal: no row kills the replica, and its peak RSS stays ≤ 300 MB.
 *
 * BENCH_RUNS (default 3) runs per row; the table gives ranges.
 */

const RUNS = Math.max(1, Math.round(Number(process.env.BENCH_RUNS ?? 3)));
const GOAL_MB = 300;
const TOKEN = "bench_attack_service_token_0123456789abcdef";
const BATCH_BYTES = 16 * 1024 * 1024 - 1_024;

interface Row {
  name: string;
  /** Runs the attack against the replica; returns what the callers saw, briefly. */
  attack(url: string, run: number): Promise<string>;
}

interface Measured {
  alive: boolean;
  restMb: number;
  peakMb: number;
  seen: string;
  seconds: number;
  death?: string;
}

export async function runAttackBench(): Promise<void> {
  if (!existsSync("dist/cli.js"))
    throw new Error("run `npm run build` first: the bench measures the compiled service");
  const dir = mkdtempSync(path.join(tmpdir(), "jobhooks-bench-attack-"));
  const tokensFile = path.join(dir, "tokens");
  writeFileSync(tokensFile, `${TOKEN}\n`);
  const nats = await startNatsServer();
  const nc = await connect({ servers: nats.url });
  let replica: ServiceProcess | undefined;
  try {
    const start = () =>
      spawnService(
        {
          NODE_OPTIONS: IMAGE_NODE_OPTIONS,
          NODE_ENV: "production",
          NATS_URL: nats.url,
          SVIX_TOKEN: "testsk_unused",
          JOBHOOKS_SERVICE_TOKENS_FILE: tokensFile,
          JOBHOOKS_RELAY_ENABLED: "false",
          LOG_LEVEL: "warn",
        },
        { compiled: true },
      );
    // The key store exists once a replica has provisioned it.
    replica = await start();
    const customerKey = (await (await openApiKeyStore(nc, { replicas: 1 })).create("acme")).key;
    await replica.terminate();
    replica = undefined;
    const jsm = await jetstreamManager(nc);

    const rows: Row[] = [
      { name: "at rest (ready, no calls)", attack: async () => "-" },
      {
        name: "legitimate: one 1,000-event batch near 16 MiB",
        attack: async (url, run) => codes(await bigValidBatches(url, TOKEN, `legit${run}`, 1)),
      },
      {
        name: "row 1: 16 × 16 MiB anonymous Connect JSON Health/Check, twice",
        attack: async (url) => {
          const answers = [...(await healthCheckFlood(url)), ...(await healthCheckFlood(url))];
          return answerCodes(answers);
        },
      },
      {
        name: "row 2: customer key, 13.4 MiB PublishJobEvent + 15.3 MiB PublishJobEvents",
        attack: async (url, run) => {
          const { single, batch } = await customerKeyOversize(url, customerKey, `row2r${run}`);
          return codes([single, batch]);
        },
      },
      {
        name: "row 3: 4 × 1,000-event batches near 16 MiB, service token",
        attack: async (url, run) => codes(await bigValidBatches(url, TOKEN, `row3r${run}`, 4)),
      },
      {
        // The issue's row 1 note: one connection with 20 unfinished streams held +300 MB.
        name: "row 1b: one connection, 20 unfinished 16 MiB PublishJobEvents (service token), held; a publish meanwhile",
        attack: async (url, run) => {
          const body = grpcFrame(new Uint8Array(BATCH_BYTES), 0);
          const { streams, during } = await holdStreams(
            url,
            {
              connections: 1,
              perConnection: 20,
              path: "/jobhooks.v1.WebhookService/PublishJobEvents",
              headers: {
                "content-type": "application/grpc",
                te: "trailers",
                authorization: `Bearer ${TOKEN}`,
              },
              body,
              sendBytes: body.byteLength - 1_024,
              settleMs: 3_000,
            },
            () => publishOne(url, `row1b-r${run}`),
          );
          return `streams: ${tallyOf(streams)}; publish meanwhile: ${codes([during])}`;
        },
      },
      {
        name: "stranger: 20 connections × 100 unfinished 1 KiB Health/Check, held; a publish meanwhile",
        attack: async (url, run) => {
          const body = grpcFrame(new Uint8Array(1_000).fill(0x73), 0);
          const { streams, during } = await holdStreams(
            url,
            {
              connections: 20,
              perConnection: 100,
              path: "/grpc.health.v1.Health/Check",
              headers: { "content-type": "application/grpc", te: "trailers" },
              body,
              sendBytes: body.byteLength - 8,
              settleMs: 2_000,
            },
            () => publishOne(url, `held-r${run}`),
          );
          return `streams: ${tallyOf(streams)}; publish meanwhile: ${codes([during])}`;
        },
      },
    ];

    const results = new Map<string, Measured[]>();
    for (let run = 0; run < RUNS; run++) {
      for (const row of rows) {
        replica = await start();
        const pid = replica.child.pid as number;
        await new Promise((r) => setTimeout(r, 500));
        const restMb = procStatusMb(pid, "VmRSS");
        const started = performance.now();
        // Sampled while the attack runs: a replica that dies takes its /proc entry with it.
        let peakMb = procStatusMb(pid, "VmHWM");
        const sampler = setInterval(() => {
          const now = procStatusMb(pid, "VmHWM");
          if (Number.isFinite(now)) peakMb = now;
        }, 100);
        const seen = await row.attack(replica.url, run).catch((e: unknown) => `client error: ${String(e)}`);
        clearInterval(sampler);
        const seconds = (performance.now() - started) / 1_000;
        const last = procStatusMb(pid, "VmHWM");
        if (Number.isFinite(last)) peakMb = last;
        const alive =
          replica.child.exitCode === null &&
          (await fetch(`${replica.url}/healthz`, { signal: AbortSignal.timeout(5_000) }).then(
            (r) => r.ok,
            () => false,
          ));
        const death = alive
          ? undefined
          : /Reached heap limit|out of memory|FATAL ERROR[^\n]*/i.exec(replica.output())?.[0];
        results.set(row.name, [
          ...(results.get(row.name) ?? []),
          { alive, restMb, peakMb, seen, seconds, ...(death ? { death } : {}) },
        ]);
        await replica.kill();
        replica = undefined;
        closeGrpcJsClients();
        await jsm.streams.purge(JOBS_STREAM).catch(() => undefined);
      }
    }

    console.log(
      `Peak RSS of one replica (compiled, NODE_OPTIONS="${IMAGE_NODE_OPTIONS}") under issue 20's rows 1–3 and held streams, ${RUNS} runs, a fresh replica each`,
    );
    console.table(
      [...results].map(([name, runs]) => ({
        row: name,
        alive: `${runs.filter((r) => r.alive).length}/${runs.length}`,
        "RSS at rest MB": range(runs.map((r) => r.restMb)),
        "peak RSS MB": range(runs.map((r) => r.peakMb)),
        [`≤ ${GOAL_MB} MB`]: runs.every((r) => r.alive && r.peakMb <= GOAL_MB) ? "yes" : "no",
        seconds: range(
          runs.map((r) => r.seconds),
          1,
        ),
        "callers saw (last run)": runs.at(-1)?.seen ?? "",
        died: [...new Set(runs.flatMap((r) => (r.death ? [r.death] : [])))].join("; "),
      })),
    );
  } finally {
    closeGrpcJsClients();
    await replica?.kill();
    await nc.close();
    await nats.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One small valid publish, as any service sends while the attack goes on. */
function publishOne(url: string, jobId: string) {
  return grpcJsCall(
    url,
    "PublishJobEvent",
    { event: { tenantId: "acme", jobId, status: "JOB_STATUS_CREATED" } },
    TOKEN,
    10_000,
  );
}

function tallyOf(counts: Record<string, number>): string {
  return Object.entries(counts)
    .map(([k, n]) => `${k} ×${n}`)
    .join(", ");
}

/** grpc-js outcomes as "code × count" (0 = OK; a batch with refused events says how many). */
function codes(outcomes: Array<{ code: number; failedEvents?: number; retryInfo?: boolean }>): string {
  return tally(
    outcomes.map(
      (o) =>
        `${o.code}${o.failedEvents ? ` (${o.failedEvents} events refused)` : ""}${o.retryInfo ? " +RetryInfo" : ""}`,
    ),
  );
}

function answerCodes(answers: WireAnswer[]): string {
  return tally(
    answers.map((a) => {
      const code = /"code"\s*:\s*"([a-z_]+)"/.exec(a.body.toString("utf8"))?.[1] ?? grpcStatusOf(a) ?? "";
      const size = a.bodyBytes >= MIB_16 / 16 ? ` ${Math.round(a.bodyBytes / 1024 / 1024)} MiB answer` : "";
      return `${a.outcome === "answered" ? a.status : a.outcome} ${code}${size}`.trim();
    }),
  );
}

function tally(xs: string[]): string {
  const counts = new Map<string, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k} ×${n}`).join(", ");
}

function range(values: number[], digits = 0): string {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return "-";
  const lo = Math.min(...finite).toFixed(digits);
  const hi = Math.max(...finite).toFixed(digits);
  return lo === hi ? lo : `${lo}–${hi}`;
}
