/**
 * Calls that nobody authenticated (health Check and Watch, reflection) open at once, per connection
 * and per client address: one stranger's thousand Watch streams or unfinished checks must not leave
 * a load balancer's health check without one. A call takes a slot when it starts and gives it back
 * when its answer is done.
 */
export interface OpenStreamLimitOptions {
  /** Default 16. */
  perConnection?: number;
  /** Default 64. */
  perAddress?: number;
}

export interface OpenStreamLimits {
  /** A release function, or undefined when the connection or the address has no slot left. */
  take(connection: object, address: string): (() => void) | undefined;
}

export function createOpenStreamLimits(o: OpenStreamLimitOptions = {}): OpenStreamLimits {
  const perConnection = o.perConnection ?? 16;
  const perAddress = o.perAddress ?? 64;
  const byConnection = new WeakMap<object, number>();
  const byAddress = new Map<string, number>();
  return {
    take(connection, address) {
      const c = byConnection.get(connection) ?? 0;
      const a = byAddress.get(address) ?? 0;
      if (c >= perConnection || a >= perAddress) return undefined;
      byConnection.set(connection, c + 1);
      byAddress.set(address, a + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        byConnection.set(connection, (byConnection.get(connection) ?? 1) - 1);
        const left = (byAddress.get(address) ?? 1) - 1;
        if (left <= 0) byAddress.delete(address);
        else byAddress.set(address, left);
      };
    },
  };
}
