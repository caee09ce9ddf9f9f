import type * as http2 from "node:http2";
import type * as net from "node:net";
import type { OnePortTimeouts } from "./listener.js";

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
