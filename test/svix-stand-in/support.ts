import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Svix } from "svix";
import type { SvixStandIn } from "../../src/local/svix-stand-in/index.js";

/** Shared by the stand-in tests: an SDK client for a stand-in, a webhook receiver. */

/** Retries off: the SDK's own retries would hide the very faults these tests inject. */
export function sdkFor(
  standIn: Pick<SvixStandIn, "url" | "token">,
  options: { requestTimeout?: number; retryScheduleInMs?: number[] } = {},
): Svix {
  return new Svix(standIn.token, {
    serverUrl: standIn.url,
    requestTimeout: options.requestTimeout ?? 10_000,
    retryScheduleInMs: options.retryScheduleInMs ?? [],
  });
}

export interface ReceivedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  /** Exactly as received: signatures are over these bytes. */
  rawBody: string;
  at: number;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Status to answer from now on, or a function of the request's index (0-based); 204 by default. */
  respondWith(status: number | ((index: number) => number)): void;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  let statusFor: (index: number) => number = () => 204;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const status = statusFor(received.length);
      received.push({
        path: req.url ?? "/",
        headers: req.headers,
        rawBody: Buffer.concat(chunks).toString("utf8"),
        at: Date.now(),
      });
      res.writeHead(status, { "content-type": "text/plain" });
      res.end(status >= 300 ? `failing on purpose with ${status}` : "");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    respondWith: (next) => {
      statusFor = typeof next === "number" ? () => next : next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The error an SDK call rejected with (fails the test when it resolved). */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to fail, but it succeeded");
}
