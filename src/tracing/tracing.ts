import type { Logger } from "../log/logger.js";

export interface Tracing {
  shutdown(): Promise<void>;
}

/**
 * OpenTelemetry tracing is off unless the standard OTEL_* variables ask for it (an exporter or an
 * OTLP endpoint), so a deployment that does not collect traces pays nothing: without an SDK the
 * @opentelemetry/api calls in the code are no-ops.
 */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === "true") return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (exporter) return exporter !== "none";
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Starts the OpenTelemetry Node SDK, configured entirely by the OTEL_* variables. */
export async function startTracing(env: NodeJS.ProcessEnv, log: Logger): Promise<Tracing> {
  if (!tracingRequested(env)) return { shutdown: async () => undefined };
  // Loaded only when asked for: the SDK and its exporters are a large import.
  const { NodeSDK } = await import("@opentelemetry/sdk-node");
  const sdk = new NodeSDK({
    ...(env.OTEL_SERVICE_NAME ? {} : { serviceName: "jobhooks" }),
    instrumentations: [],
  });
  sdk.start();
  log.info({ exporter: env.OTEL_TRACES_EXPORTER ?? "otlp" }, "tracing on");
  return {
    shutdown: () => sdk.shutdown().catch((err: unknown) => log.warn({ err }, "tracing shutdown failed")),
  };
}
