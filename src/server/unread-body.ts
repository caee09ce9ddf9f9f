import type * as http from "node:http";
import * as http2 from "node:http2";
import type { NodeRequest, NodeResponse } from "./listener-parts.js";

/**
 * Answering before a request's body has all arrived (a refusal from the headers, a body cut off at
 * its limit or deadline): the client must still read the answer, and must not be able to hold the
 * connection by sending the rest slowly.
 */

/** How long a closing HTTP/1.1 connection still takes (and discards) what the client sends. */
const LINGER_MS = 1_000;

/**
 * A body left unread on HTTP/1.1 (refused from the headers, or cut off): the connection closes
 * after the answer rather than reading on, so a trickling client cannot hold the answer back. But
 * not at once: a client still writing its body would meet a reset (EPIPE) and could lose the
 * answer already on its way. So the rest is read and thrown away while the answer goes out, our
 * side is half-closed after it, and the socket is destroyed LINGER_MS later at the latest.
 * Returns whether the answer must say `connection: close`.
 */
export function closeAfterAnswer(req: NodeRequest, res: NodeResponse): boolean {
  if (req.httpVersionMajor !== 1 || req.complete) return false;
  const socket = (res as http.ServerResponse).socket;
  if (socket) {
    socket.destroySoon = () => {
      socket.end(() => setTimeout(() => socket.destroy(), LINGER_MS).unref());
    };
  }
  // Flowing with nobody listening: what arrives is discarded, so the client's writes never block.
  req.resume();
  return true;
}

/**
 * After the answer, an HTTP/2 client still sending a body we did not read is told to stop (RST_STREAM
 * NO_ERROR): the stream's flow-control window would otherwise hold it up.
 */
export function stopSending(res: NodeResponse): void {
  if (!("stream" in res)) return;
  const stream = res.stream;
  setImmediate(() => {
    if (!stream.closed && !stream.destroyed && stream.state?.remoteClose === 0) {
      stream.close(http2.constants.NGHTTP2_NO_ERROR);
    }
  });
}
