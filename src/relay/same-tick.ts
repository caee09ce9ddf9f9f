/**
 * Resolves every caller of the same event-loop turn together, in one setImmediate callback. The
 * NATS client writes what was published since its last flush in one socket write per microtask
 * checkpoint; callers resumed together publish together, so a burst of direct gets (or acks)
 * costs one write instead of one each. On a busy host a socket write is tens of microseconds:
 * per event, that was the relay's largest single cost.
 */
export function sameTick(): () => Promise<void> {
  let waiting: Array<() => void> = [];
  const release = () => {
    const now = waiting;
    waiting = [];
    for (const resolve of now) resolve();
  };
  return () =>
    new Promise<void>((resolve) => {
      if (waiting.length === 0) setImmediate(release);
      waiting.push(resolve);
    });
}
