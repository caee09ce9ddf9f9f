import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll } from "vitest";
import { loadConfig } from "../../src/config/config.js";
import { type NatsServer, startNatsServer } from "../../src/local/nats-server.js";
import { createLogger } from "../../src/log/logger.js";
import { type Jobhooks, startJobhooks } from "../../src/main.js";
import { JOBS_STREAM } from "../../src/nats/provision.js";

export const SERVICE_TOKEN = "svc_test_token_0123456789abcdef_0123";

/** Log lines the service wrote, for assertions (e.g. that no secret was logged). */
export class CapturedLog extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.lines.push(...chunk.toString().split("\n").filter(Boolean));
    done();
  }
  text(): string {
    return this.lines.join("\n");
  }
}

export interface TestService {
  app: Jobhooks;
  url: string;
  log: CapturedLog;
  stop(): Promise<void>;
}

/** The real service in this process, wired exactly as `jobhooks serve` wires it. */
export async function startTestService(
  natsUrl: string,
  env: Record<string, string> = {},
): Promise<TestService> {
  const dir = await mkdtemp(path.join(tmpdir(), "jobhooks-svc-"));
  // The tokens file goes however the service ends, also when it never starts (failed-start tests).
  try {
    const tokensFile = path.join(dir, "tokens");
    await writeFile(tokensFile, `# test tokens\n${SERVICE_TOKEN}\n`);
    const config = loadConfig({
      JOBHOOKS_ADDR: "127.0.0.1:0",
      NATS_URL: natsUrl,
      SVIX_TOKEN: "testsk_unused",
      JOBHOOKS_SERVICE_TOKENS_FILE: tokensFile,
      LOG_LEVEL: "debug",
      JOBHOOKS_SHUTDOWN_GRACE_MS: "5000",
      // Tests of the API alone keep the events in the stream to inspect them; relay tests turn it on.
      JOBHOOKS_RELAY_ENABLED: "false",
      ...env,
    });
    const log = new CapturedLog();
    const app = await startJobhooks(config, createLogger(config.log.level, log));
    return {
      app,
      url: app.url,
      log,
      async stop() {
        try {
          await app.stop();
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A nats-server and the service storing into it, shared by the tests of one file or block. */
export interface ServiceWithNats {
  readonly nats: NatsServer;
  readonly svc: TestService;
}

/**
 * Starts a nats-server and the service on it before the tests of the calling file (or `describe`
 * block), and stops both after them. Read `nats` and `svc` inside the tests: they exist from the
 * `beforeAll` on.
 */
export function useServiceWithNats(env: Record<string, string> = {}): ServiceWithNats {
  let nats: NatsServer | undefined;
  let svc: TestService | undefined;
  beforeAll(async () => {
    nats = await startNatsServer();
    svc = await startTestService(nats.url, env);
  });
  afterAll(async () => {
    await svc?.stop();
    await nats?.dispose();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("useServiceWithNats: read nats and svc inside tests or hooks");
    return value;
  };
  return {
    get nats() {
      return started(nats);
    },
    get svc() {
      return started(svc);
    },
  };
}

export interface StoredMessage {
  seq: number;
  subject: string;
  headers: Record<string, string>;
  json: Record<string, unknown>;
}

/** Every message in the JOBS stream, read with direct gets (the relay's consumer is untouched). */
export async function readStream(natsUrl: string, stream = JOBS_STREAM): Promise<StoredMessage[]> {
  const nc: NatsConnection = await connect({ servers: natsUrl.split(",") });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(stream);
    const out: StoredMessage[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
      if (!m) continue;
      const headers: Record<string, string> = {};
      for (const [k, v] of m.header ?? []) headers[k] = v.join(",");
      out.push({ seq: m.seq, subject: m.subject, headers, json: m.json<Record<string, unknown>>() });
    }
    return out;
  } finally {
    await nc.close();
  }
}
