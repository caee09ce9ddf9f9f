import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsServer } from "../../src/local/nats-server.js";
import type { SvixStandIn } from "../../src/local/svix-stand-in/index.js";
import { listDeadLetters } from "../../src/relay/dlq.js";
import { until } from "../support/poll.js";
import { publishToNats } from "../support/publish.js";
import { type RelayStack, startRelayStack } from "../support/relay-stack.js";
import type { TestService } from "../support/service.js";

let nats: NatsServer;
let svix: SvixStandIn;
let svc: TestService;
let stack: RelayStack;
let nc: NatsConnection;

beforeAll(async () => {
  stack = await startRelayStack();
  ({ nats, svix, svc } = stack);
  nc = await connect({ servers: nats.url });
});

afterAll(async () => {
  await nc?.close();
  await stack?.stop();
});

const cli = (...args: string[]) =>
  promisify(execFile)(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], {
    env: { ...process.env, NATS_URL: nats.url },
    timeout: 30_000,
  });

describe("poison published straight to NATS", () => {
  it("lands in JOBS_DLQ with a reason a person understands, the relay keeps going, and replay delivers once fixed", async () => {
    svix.faults.inject({ route: "POST /api/v1/app/svix-rejects/msg", kind: "422" });
    const big = JSON.stringify({ metadata: { blob: "x".repeat(300_000) } });
    await publishToNats(nats.url, [
      { subject: "jobs.poison.not-json.created", body: "this is {not json" },
      { subject: "jobs.poison.wrong-type.created", body: JSON.stringify({ sequence: "abc" }) },
      { subject: "jobs.poison.unknown-status.finished", body: "{}" },
      { subject: "jobs.poison.disagrees.created", body: JSON.stringify({ tenantId: "someone-else" }) },
      { subject: "jobs.poison.oversize.created", body: big },
      {
        subject: "jobs.poison.bad-proto.created",
        body: new Uint8Array([0xff, 0xff, 0xff]),
        contentType: "application/protobuf",
      },
      { subject: "jobs.poison.failed-no-error.failed", body: "{}" },
      { subject: "jobs.svix-rejects.job-1.created", body: "{}" },
      { subject: "jobs.poison.fine.completed", body: JSON.stringify({ result: { ok: true } }) },
    ]);

    await until("8 dead letters", async () => (await listDeadLetters(nc)).length >= 8, { timeoutMs: 20_000 });
    await until("the one good message at Svix", () => svix.state.messages("poison").length === 1);
    expect(svix.state.messages("poison")[0]?.eventId).toBe("fine.completed");

    const bySubject = new Map((await listDeadLetters(nc)).map((d) => [d.subject, d]));
    const expectations: Array<[string, string, RegExp]> = [
      ["jobs.poison.not-json.created", "malformed", /not valid JSON/],
      ["jobs.poison.wrong-type.created", "invalid", /^sequence: /],
      ["jobs.poison.unknown-status.finished", "bad_subject", /unknown status token "finished"/],
      [
        "jobs.poison.disagrees.created",
        "subject_mismatch",
        /tenant_id: body says someone-else, subject says poison/,
      ],
      ["jobs.poison.oversize.created", "too_large", /over the 262144-byte limit/],
      ["jobs.poison.bad-proto.created", "malformed", /not a binary JobEvent/],
      ["jobs.poison.failed-no-error.failed", "invalid", /error: is required when status is failed/],
      ["jobs.svix-rejects.job-1.created", "svix_rejected", /HTTP 422: body.application.uid/],
    ];
    for (const [subject, reason, detail] of expectations) {
      const d = bySubject.get(subject);
      expect(d, subject).toBeDefined();
      expect(d?.reason, subject).toBe(reason);
      expect(d?.detail, subject).toMatch(detail);
    }
    expect(svc.log.lines.filter((l) => l.includes('"msg":"dead letter"'))).toHaveLength(8);

    const list = await cli("dlq", "list");
    expect(list.stdout).toMatch(/SEQ\s+AGE\s+REASON\s+SUBJECT\s+DETAIL/);
    expect(list.stdout).toContain("svix_rejected");
    expect(list.stdout.trim().split("\n")).toHaveLength(9);

    // The cause is fixed on Svix's side: replaying everything delivers that one; the rest are
    // still poison and come back to the DLQ with the same reasons.
    svix.faults.clear();
    const replay = await cli("dlq", "replay", "--all");
    expect(replay.stderr).toContain("8 of 8 replayed");
    await until("the one accepted message at Svix", () => svix.state.messages("svix-rejects").length === 1, {
      timeoutMs: 15_000,
    });
    await until("7 dead letters", async () => (await listDeadLetters(nc)).length === 7, {
      timeoutMs: 15_000,
    });
    const again = await listDeadLetters(nc);
    expect(again.map((d) => d.subject).sort()).toEqual(
      expectations
        .map(([s]) => s)
        .filter((s) => !s.startsWith("jobs.svix-rejects"))
        .sort(),
    );
    expect(svix.state.messages("svix-rejects")[0]?.eventId).toBe("job-1.created");
  });

  it("rejects bad dlq replay arguments with a one-line reason", async () => {
    const err = (await cli("dlq", "replay").catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(1);
    expect(err.stderr.trim()).toBe("jobhooks: give --all or at least one sequence");
  });
});
