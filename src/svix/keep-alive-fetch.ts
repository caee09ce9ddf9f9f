import http from "node:http";
import https from "node:https";

export const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

/** Svix did not answer within the request's time limit (classified like the SDK's own timeouts). */
export class SvixTimeoutError extends Error {
  constructor(ms: number) {
    super(`Svix did not answer within ${ms} ms`);
    this.name = "TimeoutError";
  }
}

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
 * and hands back a `BufferedResponse`.
 */
export function keepAliveFetch(opts: {
  maxSockets: number;
  /**
   * Largest response body read (default 1 MiB; Svix's answers are a few KiB, message.create's
   * without the payload). A bigger one — a broken proxy, a hostile server at SVIX_SERVER_URL —
   * ends the connection and fails the call as a network error instead of filling memory.
   */
  maxResponseBytes?: number;
  /**
   * Time limit of one request, sending to last byte (default none). Kept here rather than in
   * the SDK's `requestTimeout`, which gives every call an AbortSignal.timeout and an abort
   * listener on the request: about a sixth of a message.create's client CPU, for a plain timer.
   */
  timeoutMs?: number;
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
      const timer =
        opts.timeoutMs === undefined
          ? undefined
          : setTimeout(() => req.destroy(new SvixTimeoutError(opts.timeoutMs as number)), opts.timeoutMs);
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
            resolve(new BufferedResponse(status, res.headers, Buffer.concat(chunks)) as unknown as Response);
          });
        },
      );
      // Emitted once the exchange is over, whichever way it ended.
      req.once("close", () => clearTimeout(timer));
      req.on("error", (err) => {
        // Keep the abort reason (the SDK's TimeoutError) so a timeout is classified as one.
        reject(init.signal?.aborted ? (init.signal.reason ?? err) : err);
      });
      req.end(body);
    });
  return send as typeof fetch;
}

/**
 * The answer, already read whole, with the parts of a Response the svix SDK reads: `status`, `ok`,
 * `headers` (its errors copy them) and the body as text, JSON or bytes. A real Response wraps its
 * body in a WHATWG stream: building one per Svix call was a tenth of the relay's CPU, for a body
 * of a few hundred bytes that is already in memory.
 */
export class BufferedResponse {
  readonly ok: boolean;
  #headers: Headers | undefined;

  constructor(
    readonly status: number,
    private readonly rawHeaders: http.IncomingHttpHeaders,
    private readonly body: Buffer,
  ) {
    this.ok = status >= 200 && status < 300;
  }

  get headers(): Headers {
    if (this.#headers === undefined) {
      const headers = new Headers();
      for (const [name, value] of Object.entries(this.rawHeaders)) {
        if (value === undefined) continue;
        for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
      }
      this.#headers = headers;
    }
    return this.#headers;
  }

  async text(): Promise<string> {
    return this.body.toString("utf8");
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return this.body.buffer.slice(
      this.body.byteOffset,
      this.body.byteOffset + this.body.byteLength,
    ) as ArrayBuffer;
  }
}
