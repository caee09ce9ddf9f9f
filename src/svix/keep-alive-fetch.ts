import http from "node:http";
import https from "node:https";

export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

export class ResponseTooLargeError extends Error {
  constructor(limit: number) {
    super(`Svix's answer is larger than ${limit} bytes`);
    this.name = "ResponseTooLargeError";
  }
}

/**
 * A `fetch` for the svix SDK (its documented `fetch` option) over Node's http/https with a
 * keep-alive agent. The global fetch builds WHATWG streams, Request and Headers objects for every
 * call; at thousands of Svix requests a second that was the relay's largest CPU cost. This client
 * sends the same requests (the SDK still builds them: method, headers, JSON body, timeout signal)
 * and hands back a standard Response.
 */
export function keepAliveFetch(opts: {
  maxSockets: number;
  /**
   * Largest response body read (default 1 MiB; Svix's answers are a few KiB, message.create's
   * without the payload). A bigger one — a broken proxy, a hostile server at SVIX_SERVER_URL —
   * ends the connection and fails the call as a network error instead of filling memory.
   */
  maxResponseBytes?: number;
}): typeof fetch {
  const maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets, scheduling: "lifo" }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: opts.maxSockets, scheduling: "lifo" }),
  };
  const send = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> =>
    new Promise((resolve, reject) => {
      const url = input instanceof URL ? input : new URL(typeof input === "string" ? input : input.url);
      const lib = url.protocol === "https:" ? https : http;
      const agent = url.protocol === "https:" ? agents["https:"] : agents["http:"];
      const body = typeof init.body === "string" ? init.body : undefined;
      const headers: Record<string, string> = { ...(init.headers as Record<string, string> | undefined) };
      if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
      const req = lib.request(
        url,
        { method: init.method ?? "GET", headers, agent, ...(init.signal ? { signal: init.signal } : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size <= maxResponseBytes) {
              chunks.push(c);
              return;
            }
            chunks.length = 0;
            reject(new ResponseTooLargeError(maxResponseBytes));
            req.destroy();
          });
          res.on("error", reject);
          res.on("end", () => {
            const status = res.statusCode ?? 502;
            const responseHeaders = new Headers();
            for (const [name, value] of Object.entries(res.headers)) {
              if (value === undefined) continue;
              for (const v of Array.isArray(value) ? value : [value]) responseHeaders.append(name, v);
            }
            // A Response may not carry a body for these statuses.
            const noBody = status === 204 || status === 205 || status === 304;
            resolve(
              new Response(noBody ? null : Buffer.concat(chunks), { status, headers: responseHeaders }),
            );
          });
        },
      );
      req.on("error", (err) => {
        // Keep the abort reason (the SDK's TimeoutError) so a timeout is classified as one.
        reject(init.signal?.aborted ? (init.signal.reason ?? err) : err);
      });
      req.end(body);
    });
  return send as typeof fetch;
}
