import { BlockList, isIP } from "node:net";
import { addToBlockList } from "../config/ip-ranges.js";
import type { NodeRequest } from "./listener-parts.js";

export interface ClientAddressOptions {
  /**
   * Addresses and CIDR ranges of the proxies in front of the service (JOBHOOKS_TRUSTED_PROXIES).
   * Only a connection from one of them may say who the client is; empty (the default) trusts none,
   * so nobody can choose the address their failures are counted against.
   */
  trustedProxies: readonly string[];
  /** The header a trusted proxy names the client in (JOBHOOKS_CLIENT_ADDRESS_HEADER). */
  header: string;
}

/**
 * The address a request's failures and open streams are counted against: the peer's, or behind
 * trusted proxies the nearest address in the header that is not one of them (proxies append the
 * address they received from, so everything left of an untrusted hop may be forged).
 */
export function clientAddressOf(o: ClientAddressOptions): (req: NodeRequest) => string {
  const trusted = new BlockList();
  for (const entry of o.trustedProxies) addToBlockList(trusted, entry);
  const isTrusted = (a: string) => {
    const family = isIP(a);
    return family !== 0 && trusted.check(a, family === 6 ? "ipv6" : "ipv4");
  };
  const header = o.header.toLowerCase();
  const peerOf = (req: NodeRequest) => normalize(req.socket?.remoteAddress ?? "unknown");
  if (o.trustedProxies.length === 0) return peerOf;
  return (req) => {
    const peer = peerOf(req);
    if (!isTrusted(peer)) return peer;
    const raw = req.headers[header];
    const hops = (Array.isArray(raw) ? raw.join(",") : (raw ?? ""))
      .split(",")
      .map((h) => normalize(h.trim()))
      .filter((h) => h !== "");
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i] as string;
      if (isIP(hop) === 0) return peer;
      if (!isTrusted(hop)) return hop;
    }
    return hops[0] ?? peer;
  };
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is 10.0.0.1. */
function normalize(address: string): string {
  return address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}
