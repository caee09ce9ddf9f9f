import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { type JetStreamClient, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, headers as natsHeaders } from "@nats-io/transport-node";
import { JobStatus, WebhookService } from "../src/gen/jobhooks/v1/webhooks_pb.js";
import { freePort, startNatsServer } from "../src/local/nats-server.js";
import { JOBS_STREAM } from "../src/nats/provision.js";
import { loadWebhookService } from "../test/support/grpc-js.js";

/**
 * `npm run bench -- publish`: PublishJobEvent through jobhooks, over gRPC (@grpc/grpc-js client, one
 * channel) and Connect JSON (HTTP/1.1 keep-alive), at 1, 16 and 64 callers, side by side with the
 * same publishes through a minimal grpc-js server and a minimal node:http JSON server written here
 * (bearer token check + JetStream publish, nothing else) and raw JetStream publishes from this process; and PublishJobEvents in
 * batches of 100 at 8 callers. One nats-server, unique events, closed-loop callers.
 *
 * Every cell runs RUNS times (rows give the range); BENCH_SCALE enlarges the seconds per cell.
 * BENCH_PROFILE=1 starts jobhooks with --cpu-prof and prints its top frames by self time.
 */

const scale = Number(process.env.BENCH_SCALE ?? 1);
const CELL_MS = Math.max(500, Math.round(1_500 * scale));
const WARMUP_MS = 300;
const RUNS = Math.max(1, Math.round(Number(process.env.BENCH_RUNS ?? 3)));
const CALLERS = (process.env.BENCH_CALLERS ?? "1,16,64").split(",").map(Number);
/** A substring of the path names to run only those (e.g. "gRPC"), for profiling one path. */
const ONLY = process.env.BENCH_ONLY ?? "";
const BATCH = 100;
const BATCH_CALLERS = 8;
const TOKEN = "bench_service_token_0123456789abcdef";
const TENANT = "bench";

type Call = (jobId: string) => Promise<unknown>;
interface Measured {
  events: number;
  seconds: number;
  latenciesMs: number[];
  /** CPU the serving process spent per event, in microseconds (undefined: no server process). */
  cpuUsPerEvent: number | undefined;
}

async function main(): Promise<void> {
  if (!existsSync("dist/cli.js"))
    throw new Error("run `npm run build` first: the bench measures the compiled service");
  const dir = mkdtempSync(path.join(tmpdir(), "jobhooks-bench-publish-"));
  const tokensFile = path.join(dir, "tokens");
  writeFileSync(tokensFile, `${TOKEN}\n`);
  const nats = await startNatsServer();
  const children: ChildProcess[] = [];
  // BENCH_PROFILE=1 profiles into a temp dir; BENCH_PROFILE=<dir> keeps the .cpuprofile there.
  const profile = process.env.BENCH_PROFILE;
  const profileDir = profile ? (profile === "1" ? path.join(dir, "prof") : path.resolve(profile)) : undefined;
  try {
    const jobhooksPort = await freePort();
    children.push(
      (
        await startChild(
          [...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []), "dist/cli.js", "serve"],
          {
            JOBHOOKS_ADDR: `127.0.0.1:${jobhooksPort}`,
            NATS_URL: nats.url,
            SVIX_TOKEN: "testsk_unused",
            JOBHOOKS_SERVICE_TOKENS_FILE: tokensFile,
            JOBHOOKS_RELAY_ENABLED: "false",
            LOG_LEVEL: "warn",
          },
          `http://127.0.0.1:${jobhooksPort}/readyz`,
        )
      ).child,
    );
    // Port 0: the server says which port it got (a port picked here could be taken meanwhile).
    const minimal = await startChild(
      ["--import", "tsx", "bench/publish.ts", "minimal-server", nats.url, "0"],
      {},
      undefined,
      "minimal JSON server listening on ",
    );
    children.push(minimal.child);
    const minimalPort = Number(/minimal server listening on (\d+)/.exec(minimal.output())?.[1]);
    const minimalJsonPort = Number(/minimal JSON server listening on (\d+)/.exec(minimal.output())?.[1]);
    const jobhooks = `127.0.0.1:${jobhooksPort}`;
    const nc = await connect({ servers: nats.url });
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const grpcJobhooks = grpcClient(jobhooks);
    const grpcMinimal = grpcClient(`127.0.0.1:${minimalPort}`);
    const connectJson = createClient(
      WebhookService,
      createConnectTransport({ baseUrl: `http://${jobhooks}`, httpVersion: "1.1", useBinaryFormat: false }),
    );
    const auth = { authorization: `Bearer ${TOKEN}` };
    const connectJsonMinimal = createClient(
      WebhookService,
      createConnectTransport({
        baseUrl: `http://127.0.0.1:${minimalJsonPort}`,
        httpVersion: "1.1",
        useBinaryFormat: false,
      }),
    );
    const connectPublish = (client: typeof connectJson) => (job: string) =>
      client.publishJobEvent(
        { event: { tenantId: TENANT, jobId: job, status: JobStatus.CREATED } },
        { headers: auth },
      );

    // The server process whose CPU each path costs: throughput on a shared machine swings with
    // whatever else runs, CPU per event much less.
    const jobhooksPid = children[0]?.pid;
    const minimalPid = minimal.child.pid;
    const paths: Array<[string, Call, number, number | undefined]> = [
      ["raw JetStream publish", (job) => rawPublish(js, job), 1, undefined],
      ["minimal grpc-js server", (job) => grpcPublish(grpcMinimal, job), 1, minimalPid],
      ["jobhooks PublishJobEvent, gRPC", (job) => grpcPublish(grpcJobhooks, job), 1, jobhooksPid],
      ["jobhooks PublishJobEvent, Connect JSON", connectPublish(connectJson), 1, jobhooksPid],
      ["minimal node:http JSON server", connectPublish(connectJsonMinimal), 1, minimalPid],
    ];
    const results = new Map<string, Measured[]>();
    const record = (key: string, m: Measured) => results.set(key, [...(results.get(key) ?? []), m]);
    let n = 0;
    for (let run = 0; run < RUNS; run++) {
      for (const callers of CALLERS) {
        for (const [name, call, , pid] of paths) {
          if (!name.includes(ONLY)) continue;
          await jsm.streams.purge(JOBS_STREAM);
          const prefix = `r${run}_${n++}`;
          await measure(call, callers, WARMUP_MS, `${prefix}w`);
          record(`${name}|${callers}`, await measure(call, callers, CELL_MS, prefix, 1, pid));
        }
      }
      if (!"PublishJobEvents".includes(ONLY) && ONLY !== "") continue;
      await jsm.streams.purge(JOBS_STREAM);
      const batchPrefix = `r${run}_${n++}`;
      const batchCall: Call = (job) => grpcBatch(grpcJobhooks, job);
      await measure(batchCall, BATCH_CALLERS, WARMUP_MS, `${batchPrefix}w`, BATCH);
      record(
        `jobhooks PublishJobEvents, gRPC, batches of ${BATCH}|${BATCH_CALLERS}`,
        await measure(batchCall, BATCH_CALLERS, CELL_MS, batchPrefix, BATCH, jobhooksPid),
      );
    }

    const rows = [...results].map(([key, runs]) => {
      const [name, callers] = key.split("|");
      const rates = runs.map((m) => m.events / m.seconds);
      const p50 = runs.map((m) => percentile(m.latenciesMs, 0.5));
      const p99 = runs.map((m) => percentile(m.latenciesMs, 0.99));
      const cpu = runs.map((m) => m.cpuUsPerEvent).filter((c): c is number => c !== undefined);
      return {
        path: name,
        callers: Number(callers),
        "events/s": range(rates),
        "p50 ms": range(p50, 1),
        "p99 ms": range(p99, 1),
        "server CPU µs/event": cpu.length > 0 ? range(cpu) : "—",
        median: median(rates),
        cpuMedian: cpu.length > 0 ? median(cpu) : Number.NaN,
      };
    });
    rows.sort((a, b) => a.callers - b.callers);
    console.log(
      `PublishJobEvent, ${RUNS} runs of ${CELL_MS} ms per cell, one nats-server, loopback, unique events`,
    );
    console.table(rows.map(({ median: _m, cpuMedian: _c, ...r }) => r));
    const at = (p: string, c: number) =>
      rows.find((r) => r.path === p && r.callers === c)?.median ?? Number.NaN;
    const ratios = {
      "jobhooks gRPC / minimal server, 64 callers":
        at(paths[2]?.[0] as string, 64) / at(paths[1]?.[0] as string, 64),
      "jobhooks Connect JSON / minimal node:http JSON server, 64 callers":
        at(paths[3]?.[0] as string, 64) / at(paths[4]?.[0] as string, 64),
      "PublishJobEvents (100 x 8) / raw JetStream, 64 callers":
        at(`jobhooks PublishJobEvents, gRPC, batches of ${BATCH}`, BATCH_CALLERS) /
        at(paths[0]?.[0] as string, 64),
    };
    console.log("Ratios of median events/s (goals: gRPC ≥ 0.9, Connect JSON ≥ 0.8, batches ≥ 0.8):");
    for (const [k, v] of Object.entries(ratios)) console.log(`  ${k}: ${v.toFixed(2)}`);
    const cpuAt = (p: string, c: number) =>
      rows.find((r) => r.path === p && r.callers === c)?.cpuMedian ?? Number.NaN;
    console.log("Server CPU per event, the minimal server's ÷ jobhooks' (1.0: as cheap; higher is better):");
    console.log(
      `  gRPC, 64 callers: ${(cpuAt(paths[1]?.[0] as string, 64) / cpuAt(paths[2]?.[0] as string, 64)).toFixed(2)}`,
    );
    console.log(
      `  Connect JSON, 64 callers: ${(cpuAt(paths[4]?.[0] as string, 64) / cpuAt(paths[3]?.[0] as string, 64)).toFixed(2)}`,
    );
    grpcJobhooks.close();
    grpcMinimal.close();
    await nc.drain();
  } finally {
    for (const child of children) child.kill("SIGTERM");
    await Promise.all(
      children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once("exit", r)))),
    );
    if (profileDir) printProfile(profileDir);
    await nats.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Closed-loop callers for `ms`: each sends the next call when its last one answered. */
async function measure(
  call: Call,
  callers: number,
  ms: number,
  prefix: string,
  perCall = 1,
  serverPid?: number,
): Promise<Measured> {
  const latenciesMs: number[] = [];
  let calls = 0;
  const cpuBefore = cpuMsOf(serverPid);
  const started = performance.now();
  const end = started + ms;
  await Promise.all(
    Array.from({ length: callers }, async (_, c) => {
      for (let i = 0; performance.now() < end && i < 10_000_000; i++) {
        const t0 = performance.now();
        await call(`${prefix}_${c}_${i}`);
        latenciesMs.push(performance.now() - t0);
        calls++;
      }
    }),
  );
  const cpuAfter = cpuMsOf(serverPid);
  const events = calls * perCall;
  const cpuUsPerEvent =
    cpuBefore === undefined || cpuAfter === undefined || events === 0
      ? undefined
      : ((cpuAfter - cpuBefore) * 1_000) / events;
  return { events, seconds: (performance.now() - started) / 1_000, latenciesMs, cpuUsPerEvent };
}

/** User + system CPU of a process so far, in ms (Linux /proc; clock ticks of 10 ms). */
function cpuMsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

function eventJson(jobId: string) {
  return {
    eventId: `${jobId}.created`,
    tenantId: TENANT,
    jobId,
    status: "JOB_STATUS_CREATED",
    occurredAt: new Date().toISOString(),
  };
}

const encoder = new TextEncoder();
function rawPublish(js: JetStreamClient, jobId: string) {
  const h = natsHeaders();
  h.set("Content-Type", "application/json");
  return js.publish(`jobs.${TENANT}.${jobId}.created`, encoder.encode(JSON.stringify(eventJson(jobId))), {
    msgID: `${TENANT}.${jobId}.created`,
    headers: h,
  });
}

type GrpcClient = grpc.Client &
  Record<string, (req: unknown, md: grpc.Metadata, cb: (err: Error | null, res?: unknown) => void) => void>;
const metadata = new grpc.Metadata();
metadata.set("authorization", `Bearer ${TOKEN}`);

function grpcClient(address: string): GrpcClient {
  const Service = loadWebhookService();
  return new Service(address, grpc.credentials.createInsecure()) as unknown as GrpcClient;
}

function grpcPublish(client: GrpcClient, jobId: string): Promise<unknown> {
  return new Promise((resolve, reject) =>
    client.PublishJobEvent?.(
      { event: { tenantId: TENANT, jobId, status: "JOB_STATUS_CREATED" } },
      metadata,
      (err, res) => (err ? reject(err) : resolve(res)),
    ),
  );
}

function grpcBatch(client: GrpcClient, jobId: string): Promise<unknown> {
  const events = Array.from({ length: BATCH }, (_, i) => ({
    tenantId: TENANT,
    jobId: `${jobId}_${i}`,
    status: "JOB_STATUS_CREATED",
  }));
  return new Promise((resolve, reject) =>
    client.PublishJobEvents?.({ events }, metadata, (err, res) => {
      if (err) return reject(err);
      const failed = (res as { results: Array<{ error: unknown }> }).results.find((r) => r.error);
      return failed ? reject(new Error(`batch event refused: ${JSON.stringify(failed)}`)) : resolve(res);
    }),
  );
}

/** The yardstick: what any gRPC server must do for this RPC (check the token, publish, answer). */
async function runMinimalServer(natsUrl: string, port: number): Promise<void> {
  const nc = await connect({ servers: natsUrl });
  const js = jetstream(nc);
  const server = new grpc.Server();
  const expected = `Bearer ${TOKEN}`;
  server.addService(loadWebhookService().service, {
    PublishJobEvent(
      call: grpc.ServerUnaryCall<{ event: { tenantId: string; jobId: string; status: string } }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) {
      if (call.metadata.get("authorization")[0] !== expected) {
        callback({ code: grpc.status.UNAUTHENTICATED, details: "unknown credential" });
        return;
      }
      const e = call.request.event;
      const eventId = `${e.jobId}.created`;
      const body = encoder.encode(JSON.stringify({ ...e, eventId, occurredAt: new Date().toISOString() }));
      js.publish(`jobs.${e.tenantId}.${e.jobId}.created`, body, { msgID: `${e.tenantId}.${eventId}` }).then(
        (ack) => callback(null, { eventId, streamSequence: String(ack.seq), duplicate: ack.duplicate }),
        (err: Error) => callback({ code: grpc.status.UNAVAILABLE, details: err.message }),
      );
    },
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  console.log(`minimal server listening on ${bound}`);
  // The same for Connect JSON: what any HTTP/1.1 JSON server must do (check the token, read and
  // parse the body, publish, answer), with nothing else.
  const jsonServer = http.createServer((req, res) => {
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.headers.authorization !== expected) {
      req.resume();
      return answer(401, { code: "unauthenticated", message: "unknown credential" });
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const e = (
        JSON.parse(Buffer.concat(chunks).toString("utf8")) as { event: { tenantId: string; jobId: string } }
      ).event;
      const eventId = `${e.jobId}.created`;
      const body = encoder.encode(JSON.stringify({ ...e, eventId, occurredAt: new Date().toISOString() }));
      js.publish(`jobs.${e.tenantId}.${e.jobId}.created`, body, { msgID: `${e.tenantId}.${eventId}` }).then(
        (ack) => answer(200, { eventId, streamSequence: String(ack.seq) }),
        (err: Error) => answer(503, { code: "unavailable", message: err.message }),
      );
    });
  });
  await new Promise<void>((resolve) => jsonServer.listen(0, "127.0.0.1", resolve));
  console.log(`minimal JSON server listening on ${(jsonServer.address() as AddressInfo).port}`);
  process.once("SIGTERM", () => {
    server.forceShutdown();
    jsonServer.close();
    void nc.close().then(() => process.exit(0));
  });
}

async function startChild(
  args: string[],
  env: Record<string, string>,
  readyUrl?: string,
  readyLine?: string,
): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (c: Buffer) => {
    output = (output + c.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${args.join(" ")} exited early:\n${output}`);
    const ready = readyUrl
      ? await fetch(readyUrl).then(
          (r) => r.ok,
          () => false,
        )
      : output.includes(readyLine ?? "");
    if (ready) return { child, output: () => output };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill("SIGKILL");
  throw new Error(`${args.join(" ")} did not become ready:\n${output}`);
}

/** The profile's top frames by self time, as the note and docs/operations.md quote them. */
function printProfile(dir: string): void {
  const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) return;
  const profile = JSON.parse(readFileSync(path.join(dir, file), "utf8")) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const dt = profile.timeDeltas[i] ?? 0;
    total += dt;
    if (!node) return;
    const f = node.callFrame;
    const where = f.url
      ? `${f.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*\/(dist|src)\//, "$1/")}:${f.lineNumber + 1}`
      : "";
    const key = `${f.functionName || "(anonymous)"} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  // Percentages of busy time: idle is what the process did not spend.
  total -= (self.get("(idle)") ?? 0) + (self.get("(program)") ?? 0);
  for (const k of ["(idle)", "(program)"]) self.delete(k);
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 20);
  console.log("jobhooks CPU profile, top frames by self time:");
  console.table(
    top.map(([frame, us]) => ({
      frame,
      "self %": ((100 * us) / total).toFixed(1),
      "self ms": Math.round(us / 1_000),
    })),
  );
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

function median(values: number[]): number {
  return percentile(values, 0.5);
}

function range(values: number[], digits = 0): string {
  const lo = Math.min(...values).toFixed(digits);
  const hi = Math.max(...values).toFixed(digits);
  return lo === hi ? lo : `${lo}–${hi}`;
}

// Last, so every constant above is initialized. As its own child process: the minimal server.
if (process.argv[2] === "minimal-server") {
  await runMinimalServer(process.argv[3] as string, Number(process.argv[4]));
} else {
  await main();
}
