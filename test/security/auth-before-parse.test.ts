import * as http from "node:http";
import * as http2 from "node:http2";
import { describe, expect, it } from "vitest";
import { SERVICE_TOKEN, useServiceWithNats } from "../support/service.js";

/** Issue 11.1: nothing of an unauthenticated request is parsed; a valid body still gets field errors. */
const stack = useServiceWithNats();

const path = "/jobhooks.v1.WebhookService/PublishJobEvent";

/**
 * Sends the headers and only the first bytes of a body announced as `announced` bytes long, and
 * resolves with the response the server sends while the rest of the body never arrives.
 */
function answerToUnfinishedBody(
  headers: Record<string, string>,
  announced: number,
  timeoutMs: number,
): Promise<{ status: number; body: string } | "no answer"> {
  const url = new URL(stack.svc.url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path,
      method: "POST",
      // Without keep-alive the server need not drain the rest of the body to reuse the connection.
      headers: {
        "content-type": "application/json",
        "content-length": String(announced),
        connection: "close",
        ...headers,
      },
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve("no answer");
    }, timeoutMs);
    req.on("response", (res) => {
      let body = "";
      res.on("data", (c: Buffer) => {
        body += c.toString();
      });
      res.on("end", () => {
        clearTimeout(timer);
        req.destroy();
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.write('{"event": {"tenantId": "acme", "metadata": {"x": "');
  });
}

describe("authentication comes before parsing", () => {
  it("an anonymous request is answered UNAUTHENTICATED before its body has even arrived", async () => {
    // Were the body read (let alone parsed) before the credential check, the server would still be
    // waiting for the remaining megabyte.
    const answer = await answerToUnfinishedBody({}, 1_000_000, 5_000);
    expect(answer).not.toBe("no answer");
    if (answer === "no answer") return;
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.body).code).toBe("unauthenticated");
  });

  it("an unknown token with a huge, malformed body gets UNAUTHENTICATED, not INVALID_ARGUMENT", async () => {
    const res = await fetch(`${stack.svc.url}${path}`, {
      method: "POST",
      headers: { authorization: "Bearer not-a-real-token-0000000", "content-type": "application/json" },
      body: `{"event": {"tenantId": "${"x".repeat(2_000_000)}`,
    });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: string }).code).toBe("unauthenticated");
  });

  it("an authenticated request with a bad value still gets INVALID_ARGUMENT naming the field", async () => {
    const res = await fetch(`${stack.svc.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${SERVICE_TOKEN}`, "content-type": "application/json" },
      body: '{"event": {"tenantId": "acme", "jobId": "j", "status": "finished"}}',
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toMatch(
      /^event\.status: "finished" is not a valid value: one of "JOB_STATUS_CREATED"/,
    );
  });

  it("an anonymous gRPC call is answered UNAUTHENTICATED before its message has arrived", async () => {
    const session = http2.connect(stack.svc.url);
    try {
      const answer = await new Promise<http2.IncomingHttpHeaders | "no answer">((resolve) => {
        const timer = setTimeout(() => resolve("no answer"), 5_000);
        const stream = session.request({
          ":method": "POST",
          ":path": path,
          "content-type": "application/grpc",
          te: "trailers",
        });
        stream.on("response", (headers) => {
          clearTimeout(timer);
          resolve(headers);
        });
        stream.on("error", () => {});
        // A frame header announcing a 1 MB message, and only a little of it.
        const prefix = Buffer.alloc(5);
        prefix.writeUInt32BE(1_000_000, 1);
        stream.write(Buffer.concat([prefix, Buffer.alloc(100)]));
      });
      expect(answer).not.toBe("no answer");
      if (answer === "no answer") return;
      expect(answer["grpc-status"]).toBe("16");
    } finally {
      session.destroy();
    }
  });
});
