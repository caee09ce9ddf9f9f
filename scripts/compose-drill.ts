/**
 * The failure drill's steps, run by scripts/compose-drill.sh once deploy/compose.yaml (with
 * deploy/compose.drill.yaml) is up: publishes a steady stream of events through both replicas,
 * kills one NATS node and one replica, restarts them, and checks what a customer and an operator
 * would: every event at Svix once, each job's in order, and JobhooksReplicaDown fired and resolved
 * in Prometheus. Throws naming the step that failed; every wait is bounded.
 *
 * Environment: DRILL_PROJECT (compose project: containers are <project>_<service>_1),
 * JOBHOOKS_URLS (comma-separated), SERVICE_TOKEN, SVIX_URL, SVIX_TOKEN, PROMETHEUS_URL,
 * DRILL_RATE (events/s, default 20), DRILL_JOBS (default 100).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { sleep } from "../src/resilience/clock.js";

const run = promisify(execFile);
const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const project = env("DRILL_PROJECT");
const replicas = env("JOBHOOKS_URLS").split(",");
const serviceToken = env("SERVICE_TOKEN");
const svixUrl = env("SVIX_URL");
const svixToken = env("SVIX_TOKEN");
const prometheusUrl = env("PROMETHEUS_URL");
const rate = Number(process.env.DRILL_RATE ?? 20);
const jobs = Number(process.env.DRILL_JOBS ?? 100);
const TENANT = "drill";
const ALERT = "JobhooksReplicaDown";
const began = Date.now();

const log = (msg: string) =>
  process.stdout.write(`[${((Date.now() - began) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);
let step = "start";
function begin(name: string): void {
  step = name;
  log(name);
}

async function until<T>(what: string, seconds: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds} s`);
    await sleep(1_000);
  }
}

async function getJson(url: string, token?: string): Promise<unknown> {
  const res = await fetch(url, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`${url}: ${res.status}`);
  return res.json();
}

const podman = (...args: string[]) =>
  run("podman", ["--cgroup-manager=cgroupfs", "--runtime", "runc", ...args], { timeout: 120_000 });
const container = (service: string) => `${project}_${service}_1`;

// ---- the publisher: each job's events one after another, jobs side by side, both replicas.

interface Publisher {
  published: Set<string>;
  failedAttempts: number;
  stop(): Promise<void>;
}

/**
 * As a client behind a load balancer would: round-robin over the replicas, and a failed call
 * (connection refused, UNAVAILABLE, timeout) retried on the next replica with the same event id,
 * which the stream's duplicate window turns into "stored once".
 */
function startPublisher(): Publisher {
  const published = new Set<string>();
  const chains: Promise<void>[] = Array.from({ length: jobs }, () => Promise.resolve());
  const state: { failedAttempts: number; stopped: boolean; error?: unknown } = {
    failedAttempts: 0,
    stopped: false,
  };
  const publishOne = async (job: number, sequence: number) => {
    const body = JSON.stringify({
      event: {
        tenantId: TENANT,
        jobId: `job-${job}`,
        status: "JOB_STATUS_PROCESSING",
        sequence: String(sequence),
      },
    });
    const deadline = Date.now() + 120_000;
    for (let attempt = 0; ; attempt++) {
      const url = replicas[(job + attempt) % replicas.length] as string;
      try {
        const res = await fetch(`${url}/jobhooks.v1.WebhookService/PublishJobEvent`, {
          method: "POST",
          headers: { authorization: `Bearer ${serviceToken}`, "content-type": "application/json" },
          body,
          signal: AbortSignal.timeout(15_000),
        });
        const reply = (await res.json()) as { eventId?: string };
        if (res.ok && reply.eventId) {
          published.add(reply.eventId);
          return;
        }
      } catch {
        // refused or timed out: the next replica
      }
      state.failedAttempts++;
      if (Date.now() > deadline)
        throw new Error(`publishing job-${job} #${sequence}: no replica took it in 120 s`);
      await sleep(250);
    }
  };
  const ticker = (async () => {
    const started = Date.now();
    for (let i = 0; !state.stopped; i++) {
      const wait = started + (i * 1000) / rate - Date.now();
      if (wait > 0) await sleep(wait);
      const job = i % jobs;
      const sequence = Math.floor(i / jobs) + 1;
      chains[job] = (chains[job] as Promise<void>)
        .then(() => publishOne(job, sequence))
        .catch((err: unknown) => {
          state.error ??= err;
        });
    }
  })();
  return {
    published,
    get failedAttempts() {
      return state.failedAttempts;
    },
    async stop() {
      state.stopped = true;
      await ticker;
      await Promise.all(chains);
      if (state.error) throw state.error;
    },
  };
}

// ---- what Svix and Prometheus saw.

interface LoggedRequest {
  method: string;
  path: string;
  status: number;
  requestBody?: string;
}

/** Each event id's first accepted create, in the order the stand-in received them. */
async function createdAtSvix(): Promise<Array<{ eventId: string; job: string; sequence: number }>> {
  const { data } = (await getJson(`${svixUrl}/_stand-in/requests`, svixToken)) as { data: LoggedRequest[] };
  const seen = new Set<string>();
  const out: Array<{ eventId: string; job: string; sequence: number }> = [];
  for (const r of data) {
    if (r.method !== "POST" || !/^\/api\/v1\/app\/[^/]+\/msg\/?$/.test(r.path) || r.status >= 300) continue;
    const body = JSON.parse(r.requestBody ?? "{}") as {
      eventId: string;
      payload: { data: { job_id: string; sequence: number } };
    };
    // An idempotent replay answers 2xx again for the same event: it is not a second message.
    if (seen.has(body.eventId)) continue;
    seen.add(body.eventId);
    out.push({ eventId: body.eventId, job: body.payload.data.job_id, sequence: body.payload.data.sequence });
  }
  return out;
}

async function svixStats(): Promise<{
  messagesCreated: number;
  duplicatesRefused: number;
  idempotentReplays: number;
}> {
  return (await getJson(`${svixUrl}/_stand-in/stats`, svixToken)) as never;
}

/** JobhooksReplicaDown's state for jobhooks-2 (the replica the drill kills). */
async function alertState(): Promise<string> {
  const { data } = (await getJson(`${prometheusUrl}/api/v1/alerts`)) as {
    data: { alerts: Array<{ labels: { alertname: string; instance?: string }; state: string }> };
  };
  const states = data.alerts
    .filter((a) => a.labels.alertname === ALERT && a.labels.instance?.startsWith("jobhooks-2:"))
    .map((a) => a.state);
  return states.includes("firing") ? "firing" : states.includes("pending") ? "pending" : "inactive";
}

// ---- the drill.

async function main(): Promise<void> {
  begin("Prometheus loaded the jobhooks rules and scrapes both replicas");
  await until("rules group jobhooks", 60, async () => {
    const { data } = (await getJson(`${prometheusUrl}/api/v1/rules`)) as {
      data: { groups: Array<{ name: string }> };
    };
    return data.groups.some((g) => g.name === "jobhooks") ? true : undefined;
  });
  await until("both jobhooks targets up", 90, async () => {
    const { data } = (await getJson(`${prometheusUrl}/api/v1/targets`)) as {
      data: { activeTargets: Array<{ labels: { job: string }; health: string }> };
    };
    const ours = data.activeTargets.filter((t) => t.labels.job === "jobhooks");
    return ours.length === replicas.length && ours.every((t) => t.health === "up") ? true : undefined;
  });

  begin(`steady publishing: ${rate} events/s over ${jobs} jobs, through both replicas`);
  const publisher = startPublisher();
  try {
    await sleep(20_000);
    begin("kill nats-2 (SIGKILL)");
    await podman("kill", "--signal", "KILL", container("nats-2"));
    await sleep(20_000);
    begin("kill jobhooks-2 (SIGKILL)");
    await podman("kill", "--signal", "KILL", container("jobhooks-2"));
    const killedAt = Date.now();
    await sleep(30_000);
    begin("restart nats-2");
    await podman("start", container("nats-2"));

    begin(`${ALERT} fires (Prometheus API)`);
    await until(`${ALERT} firing`, 300, async () => ((await alertState()) === "firing" ? true : undefined));
    log(`${ALERT} firing ${((Date.now() - killedAt) / 1000).toFixed(0)} s after jobhooks-2 was killed`);

    begin("restart jobhooks-2");
    await podman("start", container("jobhooks-2"));
    await until("jobhooks-2 ready", 120, async () => {
      const res = await fetch(`${replicas[1]}/readyz`, { signal: AbortSignal.timeout(2_000) });
      return res.ok ? true : undefined;
    });

    begin(`${ALERT} resolves`);
    const restartedAt = Date.now();
    await until(`${ALERT} resolved`, 180, async () =>
      (await alertState()) === "inactive" ? true : undefined,
    );
    log(
      `${ALERT} resolved ${((Date.now() - restartedAt) / 1000).toFixed(0)} s after jobhooks-2 was ready again`,
    );
    await sleep(20_000);
  } finally {
    begin("stop publishing");
    await publisher.stop();
  }
  const published = publisher.published;
  log(
    `${published.size} events published (${publisher.failedAttempts} attempts failed over to the other replica)`,
  );

  begin("every published event reaches Svix");
  await until(`${published.size} events at Svix`, 180, async () => {
    const created = await createdAtSvix();
    return created.length >= published.size ? true : undefined;
  }).catch(() => undefined);
  const created = await createdAtSvix();
  const stats = await svixStats();
  const createdIds = new Set(created.map((c) => c.eventId));
  const lost = [...published].filter((id) => !createdIds.has(id));
  const unexpected = created.filter((c) => !published.has(c.eventId));
  const duplicated = stats.messagesCreated - createdIds.size;
  const outOfOrder = new Set<string>();
  const last = new Map<string, number>();
  for (const c of created) {
    if ((last.get(c.job) ?? 0) + 1 !== c.sequence) outOfOrder.add(c.job);
    last.set(c.job, c.sequence);
  }
  log(
    `published ${published.size}, at Svix ${createdIds.size}: lost ${lost.length}, duplicated ${duplicated}, ` +
      `jobs out of order ${outOfOrder.size}; Svix absorbed ${stats.duplicatesRefused} repeated eventIds ` +
      `and ${stats.idempotentReplays} idempotent replays`,
  );
  step = "check: 0 lost, 0 duplicated, per-job order";
  const problems = [
    lost.length ? `${lost.length} lost (e.g. ${lost.slice(0, 3).join(", ")})` : "",
    unexpected.length ? `${unexpected.length} at Svix that were never acknowledged to the publisher` : "",
    duplicated ? `${duplicated} duplicated` : "",
    outOfOrder.size
      ? `${outOfOrder.size} jobs out of order (e.g. ${[...outOfOrder].slice(0, 3).join(", ")})`
      : "",
  ].filter(Boolean);
  if (problems.length) throw new Error(problems.join("; "));
  log("drill passed");
}

main().catch((err: unknown) => {
  process.stderr.write(
    `compose drill: FAILED at step "${step}": ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
