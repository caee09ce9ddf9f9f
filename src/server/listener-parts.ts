import type * as http from "node:http";
import type * as http2 from "node:http2";
import type * as net from "node:net";

/** A request or response of either HTTP version, as Node's two servers hand them to one handler. */
export type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

/**
 * The request handler both HTTP versions share — in practice the function returned by
 * `connectNodeAdapter`. It receives `http.IncomingMessage`/`ServerResponse` for HTTP/1.1 and the
 * `http2` compatibility objects for HTTP/2.
 */
export type OnePortHandler = (request: NodeRequest, response: NodeResponse) => void;

/** Time limits that keep slow or idle clients from holding sockets forever. All in milliseconds. */
export interface OnePortTimeouts {
  /**
   * A new connection must send enough bytes to tell HTTP/1.1 from HTTP/2 (with TLS: finish the
   * handshake) within this time, or it is dropped. Guards against connections that send nothing.
   * Default 10 000.
   */
  firstBytesMs?: number;
  /** HTTP/1.1: time to receive a request's headers (Node's `headersTimeout`). Default 10 000. */
  headersMs?: number;
  /**
   * HTTP/1.1: time to receive a whole request, body included (Node's `requestTimeout`). It does not
   * limit the response, so a long server stream is not cut. Default 30 000: a 16 MiB batch needs
   * well under a second on any link a publisher uses; a client trickling a body holds a socket no
   * longer than this.
   */
  requestMs?: number;
  /** HTTP/1.1: how long a keep-alive connection may sit idle between requests. Default 5 000. */
  keepAliveMs?: number;
  /**
   * HTTP/2: how long a session with no open stream stays open before the server sends GOAWAY.
   * Open streams (a long `Watch`) keep a session alive however quiet they are. Default 120 000.
   */
  idleSessionMs?: number;
}

/** What the one-port listener needs of the server it built (sniffing or TLS) to close it gracefully. */
export interface BuiltServer {
  /** The server that owns the port; its `close` callback fires once every accepted socket is gone. */
  server: net.Server;
  /** Every socket accepted and not yet closed. */
  sockets: Set<net.Socket>;
  sessions: Set<http2.Http2Session>;
  /** Closes HTTP/1.1 connections that have no request in flight. */
  closeIdleHttp1(): void;
  /** Connections still being sniffed, or handshaking: nothing is in flight on them. */
  dropUndecided(): void;
  /** Stops the inner servers' timers once no socket is left. */
  dispose(): void;
}

export interface CloseState {
  closing: boolean;
}

/**
 * Keeps the set of live sessions, and closes (GOAWAY) a session that has had no open stream for
 * `idleMs`. Node's own session time-out counts any quiet period, open streams or not, and would cut
 * a long-lived server stream; this one only counts time without streams, like Go's IdleTimeout.
 */
export function trackSessions(
  server: http2.Http2Server | http2.Http2SecureServer,
  idleMs: number,
): Set<http2.Http2Session> {
  const sessions = new Set<http2.Http2Session>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    let openStreams = 0;
    let idleTimer: NodeJS.Timeout | undefined;
    const armIdleTimer = () => {
      idleTimer = setTimeout(() => {
        if (!session.closed && !session.destroyed) session.close();
      }, idleMs);
      idleTimer.unref();
    };
    armIdleTimer();
    session.on("stream", (stream) => {
      openStreams++;
      clearTimeout(idleTimer);
      stream.once("close", () => {
        openStreams--;
        if (openStreams === 0 && !session.closed && !session.destroyed) armIdleTimer();
      });
    });
    session.once("close", () => {
      clearTimeout(idleTimer);
      sessions.delete(session);
    });
    // A session error is the peer's problem; without a listener it would be thrown.
    session.on("error", () => {});
  });
  return sessions;
}

/** How often Node checks HTTP/1.1 connections against the header and request time-outs. */
export function checkingIntervalFor(timeouts: Required<OnePortTimeouts>): number {
  const shortest = Math.min(timeouts.headersMs, timeouts.requestMs || timeouts.headersMs);
  return Math.min(30_000, Math.max(100, Math.floor(shortest / 4)));
}
