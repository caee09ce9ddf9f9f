import type { ServerResponse } from "node:http";
import type { StandInContext } from "./context.js";
import { type FaultInjector, readFaultRule } from "./faults.js";

/**
 * The stand-in's own control surface, under `/_stand-in/` so it can never collide with a Svix path:
 * fault rules, counters and the request log, for tests and benchmarks that drive the stand-in from
 * another process. `standIn.faults` / `standIn.state` expose the same in-process.
 */

export interface StandInStats {
  requests: Record<string, Record<string, number>>;
  apps: number;
  endpoints: number;
  messagesStored: number;
  messagesCreated: number;
  messagesEvicted: number;
  duplicatesRefused: number;
  idempotentReplays: number;
  faultsInjected: number;
  attemptsStored: number;
  attemptsEvicted: number;
  deliveries: { attempts: number; succeeded: number; failed: number; exhausted: number; pending: number };
}

export function statsOf(ctx: StandInContext): StandInStats {
  let endpoints = 0;
  for (const perApp of ctx.store.endpoints.values()) endpoints += perApp.size;
  return {
    requests: ctx.log.requestsByRoute(),
    apps: ctx.store.apps.size,
    endpoints,
    messagesStored: ctx.store.messages.size,
    messagesCreated: ctx.log.counters.messagesCreated,
    messagesEvicted: ctx.store.messagesEvicted,
    duplicatesRefused: ctx.log.counters.duplicatesRefused,
    idempotentReplays: ctx.log.counters.idempotentReplays,
    faultsInjected: ctx.log.counters.faultsInjected,
    attemptsStored: ctx.store.attempts.size,
    attemptsEvicted: ctx.store.attemptsEvicted,
    deliveries: { ...ctx.delivery.counters, pending: ctx.delivery.pending() },
  };
}

function reply(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status);
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

export function serveAdmin(
  method: string,
  path: string,
  rawBody: string,
  res: ServerResponse,
  ctx: StandInContext,
  faults: FaultInjector,
): void {
  if (path === "/_stand-in/faults") {
    if (method === "GET") return reply(res, 200, { data: faults.list() });
    if (method === "DELETE") {
      faults.clear();
      return reply(res, 204);
    }
    if (method === "POST") {
      let body: unknown;
      try {
        body = JSON.parse(rawBody);
      } catch {
        return reply(res, 422, {
          detail: [{ loc: ["body"], msg: "body is not valid JSON", type: "value_error.jsondecode" }],
        });
      }
      const checked = readFaultRule(body);
      if (checked.kind === "invalid") return reply(res, 422, { detail: checked.violations });
      return reply(res, 201, faults.inject(checked.rule));
    }
  }
  const single = /^\/_stand-in\/faults\/([A-Za-z0-9_]+)$/.exec(path);
  if (single && method === "DELETE") {
    return faults.remove(single[1] as string)
      ? reply(res, 204)
      : reply(res, 404, { code: "not_found", detail: "No such fault rule" });
  }
  if (path === "/_stand-in/stats" && method === "GET") return reply(res, 200, statsOf(ctx));
  if (path === "/_stand-in/requests") {
    if (method === "GET") return reply(res, 200, { data: ctx.log.entries() });
    if (method === "DELETE") {
      ctx.log.clear();
      return reply(res, 204);
    }
  }
  if (path === "/_stand-in/health" && method === "GET") return reply(res, 200, { ok: true });
  reply(res, 404, { code: "not_found", detail: "Unknown stand-in admin route" });
}
