import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { findNatsServer } from "../../src/local/nats-server.js";
import { until } from "../support/poll.js";
import type { Child } from "./child.js";

// What the local-stack end-to-end test needs around it: its prerequisites (Debian's Chromium and
// Flask, a nats-server), the example receivers' JSON log lines, and waiting for a URL to answer.

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const PYTHON = "/usr/bin/python3";

export function missingPrerequisite(): string | undefined {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;
  if (spawnSync(PYTHON, ["-c", "import flask"], { timeout: 10_000 }).status !== 0)
    return `no Flask for ${PYTHON} (apt-get install -y python3-flask)`;
  try {
    findNatsServer();
  } catch (err) {
    return (err as Error).message;
  }
  return undefined;
}

export interface ReceiverLine {
  msg: string;
  webhook_id?: string;
  type?: string;
  job_id?: string;
  reason?: string;
}

export function receiverLog(child: Child): ReceiverLine[] {
  return child.lines.flatMap((line) => {
    try {
      return [JSON.parse(line) as ReceiverLine];
    } catch {
      return [];
    }
  });
}

/** Events the receiver verified and took in: processed, or ignored as older news for their job
 * (the stand-in delivers concurrently, so a job's events may arrive in another order). */
export const processed = (child: Child) =>
  receiverLog(child)
    .filter((l) => l.msg === "processed" || l.msg === "stale")
    .map((l) => `${l.type} ${l.job_id}`)
    .sort();

export async function untilListening(url: string): Promise<void> {
  await until(
    `${url} to listen`,
    async () => {
      try {
        await fetch(url, { signal: AbortSignal.timeout(1_000) });
        return true;
      } catch {
        return false;
      }
    },
    { timeoutMs: 20_000 },
  );
}
