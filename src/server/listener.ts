import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { ConnectionTrust } from "./connection-trust.js";
import {
  type BuiltServer,
  type CloseState,
  checkingIntervalFor,
  type OnePortHandler,
  type OnePortTimeouts,
  trackSessions,
} from "./listener-parts.js";
import { buildTlsServer } from "./listener-tls.js";

export type { OnePortHandler, OnePortTimeouts } from "./listener-parts.js";

export interface OnePortOptions {
  /** Address to bind, e.g. "0.0.0.0" or "127.0.0.1". */
  host: string;
  /** Port to bind; 0 picks a free one (read it back from `port`). */
  port: number;
  handler: OnePortHandler;
  /**
   * Terminate TLS in-process. HTTP/1.1 and HTTP/2 are then told apart by ALPN
   * (`http2.createSecureServer` with `allowHTTP1`), not by sniffing.
   */
  tls?: { cert: string | Buffer; key: string | Buffer };
  timeouts?: OnePortTimeouts;
  /**
   * Connections open at once, both HTTP versions together; further ones are closed as they arrive
   * (Node's `maxConnections`), so a flood of idle sockets cannot exhaust file descriptors or memory.
   * Default 4 096.
   */
  maxConnections?: number;
  /**
   * HTTP/2 streams a client may have open on one connection (SETTINGS_MAX_CONCURRENT_STREAMS,
   * announced to the client). Node's default announces 2^32-1, i.e. no limit. Default 100, as
   * grpc-go and most proxies.
   */
  maxConcurrentStreams?: number;
  /**
   * Caps connections nobody has authenticated on, per client address; a connection over the cap
   * is closed as it arrives. Without it only `maxConnections` applies.
   */
  connectionTrust?: ConnectionTrust;
  /**
   * Called once when `close()` begins, after the port stops accepting. End long-lived streams here
   * (e.g. `health.shutdown()` ends `Watch`), or they hold the close open until the grace period ends.
   */
  onClosing?: () => void;
}

export interface OnePortCloseOptions {
  /**
   * How long in-flight requests may take to finish before their connections are destroyed.
   * Default 10 000.
   */
  graceMs?: number;
}

export interface OnePortListener {
  /** The bound port (the real one when 0 was asked for). */
  readonly port: number;
  readonly host: string;
  /** `http://host:port` (or `https://` with TLS); IPv6 hosts in brackets. */
  readonly url: string;
  /**
   * Stops accepting connections at once, lets in-flight requests finish (HTTP/1.1 idle keep-alive
   * connections are closed, HTTP/2 sessions get GOAWAY), destroys whatever is left after `graceMs`,
   * and resolves when every socket is gone. Calling it again returns the same promise.
   */
  close(options?: OnePortCloseOptions): Promise<void>;
}

/** The client connection preface every HTTP/2 connection without TLS starts with (RFC 9113 §3.4). */
const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const defaultTimeouts: Required<OnePortTimeouts> = {
  firstBytesMs: 10_000,
  headersMs: 10_000,
  requestMs: 30_000,
  keepAliveMs: 5_000,
  idleSessionMs: 120_000,
};

/**
 * Serves gRPC (HTTP/2), gRPC-Web and Connect (HTTP/1.1 or HTTP/2) on one port.
 *
 * Node's cleartext `http2` server ignores `allowHTTP1`, so without TLS each connection's first bytes
 * are read: the HTTP/2 preface hands the socket to an `http2` server, anything else to an `http`
 * server. Both call the same handler.
 */
export async function listenOnePort(options: OnePortOptions): Promise<OnePortListener> {
  const timeouts = withDefaults(options.timeouts ?? {});
  const state = { closing: false };
  const handler = closeAwareHandler(options.handler, state);
  const h2Settings: http2.Settings = { maxConcurrentStreams: options.maxConcurrentStreams ?? 100 };
  const built = options.tls
    ? buildTlsServer(handler, options.tls, timeouts, state, h2Settings)
    : buildSniffingServer(handler, timeouts, state, h2Settings);
  built.server.maxConnections = options.maxConnections ?? 4_096;
  const trust = options.connectionTrust;
  if (trust) {
    // Plain: the TCP socket is the one requests see. TLS: the TLS socket, once its handshake is done.
    built.server.on(options.tls ? "secureConnection" : "connection", (socket: net.Socket) => {
      if (!trust.admit(socket)) socket.destroy();
    });
  }

  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error) => {
      built.dispose();
      reject(error);
    };
    built.server.once("error", failed);
    built.server.listen({ host: options.host, port: options.port }, () => {
      built.server.off("error", failed);
      resolve();
    });
  });
  const address = built.server.address() as net.AddressInfo;
  const scheme = options.tls ? "https" : "http";
  const hostInUrl = net.isIPv6(options.host) ? `[${options.host}]` : options.host;

  let closed: Promise<void> | undefined;
  return {
    port: address.port,
    host: options.host,
    url: `${scheme}://${hostInUrl}:${address.port}`,
    close(closeOptions = {}) {
      closed ??= closeGracefully(built, state, closeOptions.graceMs ?? 10_000, options.onClosing);
      return closed;
    },
  };
}

/**
 * Once closing has begun, an HTTP/1.1 response asks the client to close the connection, so a
 * keep-alive client does not send another request on a connection about to go away; when the
 * response is done the connection is idle and gets closed.
 */
function closeAwareHandler(handler: OnePortHandler, state: CloseState): OnePortHandler {
  return (request, response) => {
    if (state.closing && request.httpVersionMajor === 1) {
      (response as http.ServerResponse).setHeader("connection", "close");
    }
    handler(request, response);
  };
}

function buildSniffingServer(
  handler: OnePortHandler,
  timeouts: Required<OnePortTimeouts>,
  state: CloseState,
  settings: http2.Settings,
): BuiltServer {
  const http1 = http.createServer(
    {
      headersTimeout: timeouts.headersMs,
      requestTimeout: timeouts.requestMs,
      keepAliveTimeout: timeouts.keepAliveMs,
      // Node checks headersTimeout/requestTimeout on this interval; 30 s would make a 10 s limit 40 s.
      connectionsCheckingInterval: checkingIntervalFor(timeouts),
    },
    handler as http.RequestListener,
  );
  // http.Server starts tracking connections (the headers/request time-outs, closeIdleConnections)
  // on its 'listening' event. This server never listens itself — sockets are handed to it — so
  // start the tracking by hand.
  http1.emit("listening");
  http1.on("request", (_request, response: http.ServerResponse) => {
    response.once("finish", () => {
      if (state.closing) setImmediate(() => http1.closeIdleConnections());
    });
  });

  const h2 = http2.createServer(
    { settings },
    handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  );
  const sessions = trackSessions(h2, timeouts.idleSessionMs);

  const sockets = new Set<net.Socket>();
  const undecided = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    if (state.closing) {
      socket.destroy();
      return;
    }
    undecided.add(socket);
    sniffProtocol(socket, timeouts.firstBytesMs, (protocol) => {
      undecided.delete(socket);
      if (protocol === "h2") h2.emit("connection", socket);
      else if (protocol === "http/1.1") http1.emit("connection", socket);
    });
  });

  return {
    server,
    sockets,
    sessions,
    closeIdleHttp1: () => http1.closeIdleConnections(),
    dropUndecided: () => {
      for (const socket of undecided) socket.destroy();
    },
    dispose: () => {
      // Neither listens, so close() only stops http1's time-out checker and h2's session tracking.
      http1.close();
      h2.close();
    },
  };
}

/**
 * Reads until the bytes either are the HTTP/2 preface or cannot become it, then puts them back
 * (`unshift`) for the server that takes the socket. Bytes may arrive in pieces of any size.
 */
function sniffProtocol(
  socket: net.Socket,
  timeoutMs: number,
  decided: (protocol: "h2" | "http/1.1" | "none") => void,
): void {
  let seen: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => finish("none"), timeoutMs);
  const ignoreError = () => {};
  const onClose = () => finish("none");

  function finish(protocol: "h2" | "http/1.1" | "none"): void {
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("close", onClose);
    if (protocol === "none") {
      socket.destroy();
      socket.off("error", ignoreError);
      decided(protocol);
      return;
    }
    socket.pause();
    socket.unshift(seen);
    socket.off("error", ignoreError);
    decided(protocol);
    // The http parser reads through the JS stream and needs it flowing again. An http2 session
    // must not get that: it takes the bytes left in the stream's buffer, then reads the TCP handle
    // itself, and a flowing JS stream would swallow frames meant for it.
    if (protocol === "http/1.1") process.nextTick(() => socket.resume());
  }

  function onData(chunk: Buffer): void {
    seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    const n = Math.min(seen.length, http2Preface.length);
    const matchesSoFar = seen.subarray(0, n).equals(http2Preface.subarray(0, n));
    if (!matchesSoFar) finish("http/1.1");
    else if (seen.length >= http2Preface.length) finish("h2");
  }

  // Until a server owns the socket, a reset must not become an uncaught 'error'.
  socket.on("error", ignoreError);
  socket.on("close", onClose);
  socket.on("data", onData);
}

function withDefaults(timeouts: OnePortTimeouts): Required<OnePortTimeouts> {
  return {
    firstBytesMs: timeouts.firstBytesMs ?? defaultTimeouts.firstBytesMs,
    headersMs: timeouts.headersMs ?? defaultTimeouts.headersMs,
    requestMs: timeouts.requestMs ?? defaultTimeouts.requestMs,
    keepAliveMs: timeouts.keepAliveMs ?? defaultTimeouts.keepAliveMs,
    idleSessionMs: timeouts.idleSessionMs ?? defaultTimeouts.idleSessionMs,
  };
}

async function closeGracefully(
  built: BuiltServer,
  state: CloseState,
  graceMs: number,
  onClosing: (() => void) | undefined,
): Promise<void> {
  state.closing = true;
  // The close callback fires when the port is released and every accepted socket has closed.
  const allSocketsGone = new Promise<void>((resolve) => built.server.close(() => resolve()));
  let onClosingFailure: unknown;
  try {
    onClosing?.();
  } catch (error) {
    // Still close the port; report the failure once the sockets are gone.
    onClosingFailure = error ?? new Error("onClosing failed");
  }
  built.dropUndecided();
  built.closeIdleHttp1();
  for (const session of built.sessions) {
    // GOAWAY: the client opens no new streams here; open streams run to their end.
    if (!session.closed && !session.destroyed) session.close();
  }
  const deadline = setTimeout(() => {
    for (const session of built.sessions) session.destroy();
    for (const socket of built.sockets) socket.destroy();
  }, graceMs);
  try {
    await allSocketsGone;
  } finally {
    clearTimeout(deadline);
    built.dispose();
  }
  if (onClosingFailure !== undefined) throw onClosingFailure;
}
