import { type DestinationStream, type Logger, pino } from "pino";
import type { LogLevel } from "../config/config.js";

export type { Logger };

/**
 * Paths pino blanks out wherever they appear in a log object. Secrets should never be logged in
 * the first place; this is the net under that rule, for an error object or a request that carries one.
 */
const REDACT = [
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "token",
  "*.token",
  "apiKey",
  "*.apiKey",
  "password",
  "*.password",
  "creds",
  "*.creds",
  "secret",
  "*.secret",
];

/** JSON lines on stdout (or `destination`, which tests use to read what was logged). */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "jobhooks" },
      redact: { paths: REDACT, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
