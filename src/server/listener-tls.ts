import * as http2 from "node:http2";
import type * as net from "node:net";
import {
  type BuiltServer,
  type CloseState,
  checkingIntervalFor,
  type OnePortHandler,
  type OnePortTimeouts,
  trackSessions,
} from "./listener-parts.js";

/**
 * The listener with TLS terminated in-process (JOBHOOKS_TLS_CERT_FILE/KEY_FILE): HTTP/1.1 and
 * HTTP/2 are told apart by ALPN (`createSecureServer` with `allowHTTP1`), not by sniffing.
 */
export function buildTlsServer(
  handler: OnePortHandler,
  tls: { cert: string | Buffer; key: string | Buffer },
  timeouts: Required<OnePortTimeouts>,
  state: CloseState,
  settings: http2.Settings,
): BuiltServer {
  const server = http2.createSecureServer(
    {
      settings,
      cert: tls.cert,
      key: tls.key,
      allowHTTP1: true,
      handshakeTimeout: timeouts.firstBytesMs,
    },
    handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  );
  // With allowHTTP1 the secure server runs Node's HTTP/1.1 machinery itself and reads these.
  const http1Settings = server as unknown as {
    headersTimeout: number;
    requestTimeout: number;
    keepAliveTimeout: number;
    connectionsCheckingInterval: number;
    closeIdleConnections?: () => void;
  };
  http1Settings.headersTimeout = timeouts.headersMs;
  http1Settings.requestTimeout = timeouts.requestMs;
  http1Settings.keepAliveTimeout = timeouts.keepAliveMs;
  http1Settings.connectionsCheckingInterval = checkingIntervalFor(timeouts);

  const sessions = trackSessions(server, timeouts.idleSessionMs);
  const sockets = new Set<net.Socket>();
  const handshaking = new Set<net.Socket>();
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket);
    handshaking.add(socket);
    socket.once("close", () => {
      sockets.delete(socket);
      handshaking.delete(socket);
    });
  });
  server.on("secureConnection", (tlsSocket: net.Socket) => {
    sockets.add(tlsSocket);
    tlsSocket.once("close", () => sockets.delete(tlsSocket));
  });
  server.on("request", (_request, response: http2.Http2ServerResponse) => {
    response.once("finish", () => {
      if (state.closing) setImmediate(() => http1Settings.closeIdleConnections?.call(server));
    });
  });
  server.on("secureConnection", (tlsSocket: net.Socket & { _parent?: net.Socket }) => {
    // `_parent` is Node's (undocumented) link from a TLS socket to its TCP socket. Without it a
    // handshaken connection would merely count as undecided: close() would cut it at once.
    if (tlsSocket._parent) handshaking.delete(tlsSocket._parent);
  });

  return {
    server,
    sockets,
    sessions,
    closeIdleHttp1: () => http1Settings.closeIdleConnections?.call(server),
    dropUndecided: () => {
      for (const socket of handshaking) socket.destroy();
    },
    // server.close() in closeGracefully already stopped everything this server runs.
    dispose: () => {},
  };
}
