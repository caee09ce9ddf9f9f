import { execFile, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  create,
  type DescFile,
  type DescMessage,
  type DescMethodUnary,
  type JsonValue,
  type MessageShape,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { ConnectError, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import * as grpc from "@grpc/grpc-js";
import { file_google_rpc_error_details } from "../../src/gen/google/rpc/error_details_pb.js";
import { file_jobhooks_v1_webhooks } from "../../src/gen/jobhooks/v1/webhooks_pb.js";
import {
  type Detail,
  decodeDetail,
  detailsOfStatus,
  registry,
  responseFromBinary,
  responseFromJson,
  responseOf,
  type Seen,
} from "./seen.js";

/** One unary call as every client makes it: the same request message, headers and deadline. */
export interface WireCall {
  id: string;
  method: DescMethodUnary;
  request: MessageShape<DescMessage>;
  headers: Record<string, string>;
  timeoutMs: number;
}

/** A client library or tool the matrix drives; `missing` says why it cannot run on this machine. */
export interface MatrixClient {
  readonly name: string;
  readonly missing: string | undefined;
  /** Why this client cannot set a deadline on a call, when it cannot. */
  readonly noDeadline?: string;
  /**
   * Makes every call against the service at `baseUrl`, on one connection where the client keeps
   * one, at most `inFlight` at a time (external clients: one at a time); what it saw, by call id.
   */
  run(baseUrl: string, calls: readonly WireCall[], inFlight?: number): Promise<Map<string, Seen>>;
}

const repoRoot = path.resolve(import.meta.dirname, "../..");
const cacheDir = path.join(repoRoot, ".cache/status-matrix");
/** No external client may take longer than this for one batch of calls. */
const PROCESS_LIMIT_MS = 90_000;

const pathOf = (m: DescMethodUnary) => `/${m.parent.typeName}/${m.name}`;
const requestBytes = (c: WireCall) => toBinary(c.method.input, c.request);
const failedRun = (what: string, detail: string): Seen => ({
  code: -1,
  message: "",
  details: [],
  raw: `${what}: ${detail}`,
});

/** An OK call: its response as proto3 JSON. */
const okSeen = (response: JsonValue, ms: number): Seen => ({
  code: 0,
  message: "",
  details: [],
  response,
  raw: JSON.stringify(response),
  ms,
});

/**
 * Runs `fn` over `items`, `n` at a time. A client's calls share one connection but are not all
 * started at once: the matrix checks what each client reads of a status, and a burst of dozens
 * of calls with 300 KiB bodies on a loaded two-core machine turns that into a test of timing.
 */
async function inPool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: Math.min(n, queue.length) }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
    }),
  );
}

/**
 * Calls an in-process client has in flight at once. MATRIX_IN_FLIGHT=64 sends a client's calls
 * all at once on its connection, as a busy publisher would.
 */
const IN_FLIGHT = Number(process.env.MATRIX_IN_FLIGHT) || 4;

// ---------------------------------------------------------------------------------------------
// In-process clients: connect-es transports and @grpc/grpc-js.

function connectClient(name: string, transport: (baseUrl: string) => Transport): MatrixClient {
  return {
    name,
    missing: undefined,
    async run(baseUrl, calls, inFlight = IN_FLIGHT) {
      const t = transport(baseUrl);
      const seen = new Map<string, Seen>();
      await inPool(calls, inFlight, async (c) => {
        const started = performance.now();
        const ms = () => Math.round(performance.now() - started);
        try {
          const res = await t.unary(c.method, undefined, c.timeoutMs, c.headers, c.request);
          seen.set(c.id, okSeen(responseOf(c.method.output, res.message), ms()));
        } catch (e) {
          const err = ConnectError.from(e);
          const details: Detail[] = err.details.map((d) =>
            "desc" in d
              ? decodeDetail(d.desc.typeName, toBinary(d.desc, create(d.desc, d.value as never)))
              : decodeDetail(d.type, d.value),
          );
          seen.set(c.id, { code: err.code, message: err.rawMessage, details, raw: err.message, ms: ms() });
        }
      });
      return seen;
    },
  };
}

/** @grpc/grpc-js with identity (de)serializers: the status exactly as grpc-js reads it. */
const grpcJs: MatrixClient = {
  name: "grpc-js",
  missing: undefined,
  async run(baseUrl, calls, inFlight = IN_FLIGHT) {
    const client = new grpc.Client(new URL(baseUrl).host, grpc.credentials.createInsecure());
    const seen = new Map<string, Seen>();
    try {
      await inPool(
        calls,
        inFlight,
        (c) =>
          new Promise<void>((resolve) => {
            const started = performance.now();
            const metadata = new grpc.Metadata();
            for (const [k, v] of Object.entries(c.headers)) metadata.set(k, v);
            client.makeUnaryRequest<Buffer, Buffer>(
              pathOf(c.method),
              (b) => b,
              (b) => b,
              Buffer.from(requestBytes(c)),
              metadata,
              { deadline: Date.now() + c.timeoutMs },
              (err, value) => {
                if (err) {
                  const bin = err.metadata?.get("grpc-status-details-bin")[0];
                  seen.set(c.id, {
                    code: err.code,
                    message: err.details,
                    details: detailsOfStatus(typeof bin === "string" ? bin : bin && new Uint8Array(bin)),
                    raw: err.message,
                    ms: Math.round(performance.now() - started),
                  });
                } else {
                  const response = responseFromBinary(c.method.output, value ?? new Uint8Array());
                  seen.set(c.id, okSeen(response, Math.round(performance.now() - started)));
                }
                resolve();
              },
            );
          }),
      );
    } finally {
      client.close();
    }
    return seen;
  },
};

// ---------------------------------------------------------------------------------------------
// External clients: one process per batch of calls (JSON in, JSON out), except `buf curl`, which
// makes one call per run.

interface ProcessResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runProcess(
  cmd: string,
  args: readonly string[],
  stdin: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ProcessResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), PROCESS_LIMIT_MS);
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", (err) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}${err.message}` });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(stdin);
  });
}

interface JsonCallInput {
  id: string;
  path: string;
  request: string;
  metadata: Record<string, string>;
  timeoutMs: number;
}

function jsonInput(calls: readonly WireCall[]): string {
  const list: JsonCallInput[] = calls.map((c) => ({
    id: c.id,
    path: pathOf(c.method),
    request: Buffer.from(requestBytes(c)).toString("base64"),
    metadata: c.headers,
    timeoutMs: c.timeoutMs,
  }));
  return JSON.stringify(list);
}

/** Runs a JSON-in/JSON-out client and maps each printed result with `toSeen`. */
async function runJsonClient<R extends { id: string }>(
  what: string,
  cmd: string,
  args: readonly string[],
  calls: readonly WireCall[],
  toSeen: (r: R, call: WireCall) => Seen,
  env?: NodeJS.ProcessEnv,
): Promise<Map<string, Seen>> {
  const seen = new Map<string, Seen>();
  if (calls.length === 0) return seen;
  const out = await runProcess(cmd, args, jsonInput(calls), env);
  let results: R[];
  try {
    results = JSON.parse(out.stdout) as R[];
  } catch {
    const why = `exit ${out.code}, stderr: ${out.stderr.slice(-2_000)}`;
    for (const c of calls) seen.set(c.id, failedRun(what, why));
    return seen;
  }
  const byId = new Map(calls.map((c) => [c.id, c]));
  for (const r of results) {
    const call = byId.get(r.id);
    if (call) seen.set(r.id, toSeen(r, call));
  }
  return seen;
}

const PYTHON = "/usr/bin/python3";
const GRPCIO_SCRIPT = path.join(import.meta.dirname, "grpcio_client.py");

function pythonGrpcioMissing(): string | undefined {
  if (!existsSync(PYTHON)) return `${PYTHON} not found (apt-get install python3-grpcio)`;
  return checkSync(PYTHON, ["-c", "import grpc"])
    ? undefined
    : `${PYTHON} cannot import grpc: python3-grpcio is not installed (apt-get install python3-grpcio)`;
}

interface GrpcioResult {
  id: string;
  ms: number;
  code: number;
  message: string;
  response?: string;
  trailers?: Record<string, string>;
}

const pythonGrpcio: MatrixClient = {
  name: "python-grpcio",
  missing: pythonGrpcioMissing(),
  run: (baseUrl, calls) =>
    runJsonClient<GrpcioResult>(
      "python grpcio",
      PYTHON,
      [GRPCIO_SCRIPT, new URL(baseUrl).host],
      calls,
      (r, c) => ({
        code: r.code,
        message: r.message,
        details: detailsOfStatus(r.trailers?.["grpc-status-details-bin"]),
        ...(r.code === 0 && r.response !== undefined
          ? { response: responseFromBinary(c.method.output, r.response) }
          : {}),
        raw: JSON.stringify({ code: r.code, details: r.message, trailers: r.trailers }),
        ms: r.ms,
      }),
    ),
};

const GO_SOURCE = path.join(import.meta.dirname, "grpcgo/main.go");
const GOPATH = "/usr/share/gocode";
const goEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  GOPATH,
  GO111MODULE: "off",
  GOFLAGS: "",
  GOCACHE: path.join(repoRoot, ".cache/go-build"),
});

function grpcGoMissing(): string | undefined {
  if (!checkSync("go", ["version"])) return "go is not installed (apt-get install golang-go)";
  if (!existsSync(path.join(GOPATH, "src/google.golang.org/grpc/go.mod")))
    return `grpc-go is not in ${GOPATH} (apt-get install golang-google-grpc-dev)`;
  return undefined;
}

let goBinary: Promise<string> | undefined;

/**
 * Builds the grpc-go client once per source version into the git-ignored cache (about 20 s the
 * first time on two cores, instant after). A build error fails the tests that need it: only a
 * missing toolchain skips them.
 */
export function buildGrpcGoClient(): Promise<string> {
  goBinary ??= (async () => {
    const hash = createHash("sha256").update(readFileSync(GO_SOURCE)).digest("hex").slice(0, 12);
    const bin = path.join(cacheDir, `grpcgo-client-${hash}`);
    if (existsSync(bin)) return bin;
    await mkdir(cacheDir, { recursive: true });
    await new Promise<void>((resolve, reject) => {
      execFile(
        "go",
        ["build", "-o", bin, "."],
        { cwd: path.dirname(GO_SOURCE), env: goEnv(), timeout: 240_000 },
        (err, _out, stderr) =>
          err ? reject(new Error(`go build failed: ${err.message}\n${stderr}`)) : resolve(),
      );
    });
    return bin;
  })();
  return goBinary;
}

interface GoResult {
  id: string;
  ms: number;
  code: number;
  message: string;
  status?: string;
  response?: string;
  error?: string;
}

const grpcGo: MatrixClient = {
  name: "grpc-go",
  missing: grpcGoMissing(),
  async run(baseUrl, calls) {
    const bin = await buildGrpcGoClient();
    return runJsonClient<GoResult>("grpc-go", bin, [new URL(baseUrl).host], calls, (r, c) => ({
      code: r.error ? -1 : r.code,
      message: r.message,
      details: detailsOfStatus(r.status),
      // An empty response message is zero bytes, which the Go side leaves out.
      ...(r.code === 0 && !r.error
        ? { response: responseFromBinary(c.method.output, r.response ?? "") }
        : {}),
      raw: r.error ? `client error: ${r.error}` : `rpc error: code = ${r.code} desc = ${r.message}`,
      ms: r.ms,
    }));
  },
};

// buf curl: the schema comes from a descriptor set the test writes from the generated code, so
// it needs neither reflection nor a compile of the .proto files per call.

let schemaFile: Promise<string> | undefined;

function bufSchema(): Promise<string> {
  schemaFile ??= (async () => {
    const files = new Map<string, DescFile>();
    const add = (f: DescFile) => {
      if (files.has(f.name)) return;
      for (const d of f.dependencies) add(d);
      files.set(f.name, f);
    };
    add(file_jobhooks_v1_webhooks);
    add(file_google_rpc_error_details);
    const set = create(FileDescriptorSetSchema, { file: [...files.values()].map((f) => f.proto) });
    await mkdir(cacheDir, { recursive: true });
    const file = path.join(cacheDir, "webhooks.binpb");
    await writeFile(file, toBinary(FileDescriptorSetSchema, set));
    return file;
  })();
  return schemaFile;
}

/**
 * The platform's buf binary itself: node_modules/.bin/buf is a Node script that starts it, which
 * would add a Node start-up to every call.
 */
const BUF = [
  path.join(repoRoot, `node_modules/@bufbuild/buf-${process.platform}-${process.arch}/bin/buf`),
  path.join(repoRoot, "node_modules/.bin/buf"),
].find((p) => existsSync(p)) as string;

interface BufError {
  code?: string;
  message?: string;
  details?: Array<{ type: string; value: string }>;
}

/** buf curl prints a failed call's status as JSON on stderr, with the code as its Connect name. */
const connectCodeNames = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

async function bufCurlOne(baseUrl: string, c: WireCall): Promise<Seen> {
  const args = [
    "curl",
    "--protocol",
    "grpc",
    "--http2-prior-knowledge",
    "--schema",
    await bufSchema(),
    "--data",
    "@-",
  ];
  for (const [k, v] of Object.entries(c.headers)) args.push("--header", `${k}: ${v}`);
  args.push(`${baseUrl}${pathOf(c.method)}`);
  const started = performance.now();
  const out = await runProcess(BUF, args, toJsonString(c.method.input, c.request));
  const ms = Math.round(performance.now() - started);
  if (out.code === 0) {
    return okSeen(responseFromJson(c.method.output, JSON.parse(out.stdout || "{}") as JsonValue), ms);
  }
  const raw = out.stderr.trim();
  try {
    const err = JSON.parse(raw) as BufError;
    const code = connectCodeNames.indexOf(err.code ?? "");
    return {
      code,
      message: err.message ?? "",
      details: (err.details ?? []).map((d) => decodeDetail(d.type, Buffer.from(d.value, "base64"))),
      raw,
      ms,
    };
  } catch {
    return failedRun("buf curl", `exit ${out.code}: ${raw.slice(-2_000)}`);
  }
}

const bufCurl: MatrixClient = {
  name: "buf-curl",
  noDeadline: "buf curl has no deadline option (and refuses a grpc-timeout header)",
  missing: BUF ? undefined : "node_modules/.bin/buf not found (npm ci)",
  async run(baseUrl, calls) {
    const seen = new Map<string, Seen>();
    // A few processes at a time: each is a short Go program, and the machine has two cores.
    await inPool(calls, 6, async (c) => {
      seen.set(c.id, await bufCurlOne(baseUrl, c));
    });
    return seen;
  },
};

function checkSync(cmd: string, args: string[]): boolean {
  // Synchronous: which clients can run is decided when the tests are collected.
  return spawnSync(cmd, args, { timeout: 10_000 }).status === 0;
}

const allClients: readonly MatrixClient[] = [
  grpcJs,
  connectClient("connect-node-grpc", (baseUrl) =>
    createGrpcTransport({ baseUrl, idleConnectionTimeoutMs: 1_000 }),
  ),
  connectClient("connect-node-json", (baseUrl) =>
    // A batch result's google.rpc.Status holds Any details: JSON needs their types to decode them.
    createConnectTransport({
      baseUrl,
      httpVersion: "1.1",
      useBinaryFormat: false,
      jsonOptions: { registry },
    }),
  ),
  connectClient("connect-web-grpcweb", (baseUrl) => createGrpcWebTransport({ baseUrl })),
  bufCurl,
  pythonGrpcio,
  grpcGo,
];

/** MATRIX_CLIENTS=grpc-js,grpc-go runs only those (while debugging one client's rows). */
const only = process.env.MATRIX_CLIENTS?.split(",").map((n) => n.trim());

export const matrixClients: readonly MatrixClient[] = only
  ? allClients.filter((c) => only.includes(c.name) || c.name === "connect-node-json")
  : allClients;
