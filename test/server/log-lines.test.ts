import { describe, expect, it } from "vitest";
import { SERVICE_TOKEN, useServiceWithNats } from "../support/service.js";

// What an operator (or a newcomer running `jobhooks dev`) reads in the log: a line per refused
// credential at info, with no part of the credential, and a line per published event at debug.

const RPC = "jobhooks.v1.WebhookService";

describe("the service's log lines", () => {
  const stack = useServiceWithNats();

  const lines = (msg: string) =>
    stack.svc.log.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);

  it("a refused credential logs one info line naming the call, never the credential", async () => {
    const wrong = "jh_live_this-is-a-wrong-key-0123456789";
    const res = await fetch(`${stack.svc.url}/${RPC}/GetPortalLink`, {
      method: "POST",
      headers: { authorization: `Bearer ${wrong}`, "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(401);
    const refused = lines("credential refused: unknown or revoked");
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: "info", procedure: "GetPortalLink" });
    expect(stack.svc.log.text()).not.toContain("this-is-a-wrong-key");
  });

  it("each published event logs one debug line with its tenant, id and stream sequence", async () => {
    const res = await fetch(`${stack.svc.url}/${RPC}/PublishJobEvent`, {
      method: "POST",
      headers: { authorization: `Bearer ${SERVICE_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({
        event: { tenantId: "demo", jobId: "job_log", status: "JOB_STATUS_CREATED", sequence: "1" },
      }),
    });
    const body = await res.text();
    expect(res.status, body).toBe(200);
    expect(lines("event published")).toEqual([
      expect.objectContaining({
        level: "debug",
        tenant: "demo",
        event_id: "job_log.created.1",
        stream_seq: (JSON.parse(body) as { streamSequence: string }).streamSequence,
        duplicate: false,
      }),
    ]);
  });
});
