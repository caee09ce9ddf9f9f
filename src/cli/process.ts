import type { Logger } from "../log/logger.js";

export interface ShutdownOptions {
  /**
   * The same signal again within this many ms counts as the first one delivered twice, not as a
   * second signal. Under `npm run`, a Ctrl-C reaches the process from the terminal and once more
   * from npm, which forwards SIGINT/SIGTERM to its child. Default 0 (every repeat counts).
   */
  sameSignalWithinMs?: number;
}

/** Stops on the first SIGTERM/SIGINT and exits 0; a second signal while stopping exits at once. */
export function onShutdown(log: Logger, stop: () => Promise<void>, opts: ShutdownOptions = {}): void {
  let stopping = false;
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  const handle = (signal: NodeJS.Signals) => {
    const echo =
      first !== undefined &&
      first.signal === signal &&
      Date.now() - first.at < (opts.sameSignalWithinMs ?? 0);
    if (echo) return;
    if (stopping) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    first = { signal, at: Date.now() };
    log.info({ signal }, "shutting down");
    stop().then(
      () => {
        log.flush?.();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", handle);
  process.on("SIGINT", handle);
}

/** A bug must be loud: log it; an exception that escaped every handler ends the process. */
export function guardProcess(log: Logger): void {
  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled promise rejection"));
  process.on("uncaughtException", (err) => {
    log.fatal({ err }, "uncaught exception");
    process.exit(1);
  });
}

/** For CLI commands: a one-line reason on stderr and a non-zero exit. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
