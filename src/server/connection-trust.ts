import type * as net from "node:net";

/**
 * Connections nobody has authenticated on, per client address: one stranger's thousands of idle or
 * probe-only connections must not use up the port for everyone else. A connection counts as proven
 * once a request on it presented a valid credential; proven connections count only against the
 * port's overall limit (JOBHOOKS_MAX_CONNECTIONS). The address is the TCP peer's: behind a load
 * balancer every connection shares it, and the balancer's own connections carry authenticated calls.
 */
export interface ConnectionTrust {
  /** Whether a new connection from this socket's address may stay; call once, when accepted. */
  admit(socket: net.Socket): boolean;
  /** Marks the connection a request arrived on as proven (a valid credential was presented on it). */
  prove(socket: unknown): void;
}

const trustKey = Symbol("jobhooks connection trust");

interface Record {
  address: string;
  proven: boolean;
}

export function createConnectionTrust(maxUnprovenPerAddress: number): ConnectionTrust {
  const unproven = new Map<string, number>();
  const decrement = (address: string) => {
    const left = (unproven.get(address) ?? 1) - 1;
    if (left <= 0) unproven.delete(address);
    else unproven.set(address, left);
  };
  return {
    admit(socket) {
      const address = socket.remoteAddress ?? "unknown";
      const count = unproven.get(address) ?? 0;
      if (count >= maxUnprovenPerAddress) return false;
      unproven.set(address, count + 1);
      const record: Record = { address, proven: false };
      (socket as unknown as { [trustKey]: Record })[trustKey] = record;
      socket.once("close", () => {
        if (!record.proven) decrement(address);
      });
      return true;
    },
    prove(socket) {
      // HTTP/2's request socket is a proxy that reads through to the TCP (or TLS) socket.
      const record = (socket as { [trustKey]?: Record } | undefined)?.[trustKey];
      if (!record || record.proven) return;
      record.proven = true;
      decrement(record.address);
    },
  };
}
