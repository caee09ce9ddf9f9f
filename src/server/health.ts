import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import {
  Health,
  type HealthCheckRequest,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
} from "../gen/health/v1/health_pb.js";
import { clip } from "./rpc-errors.js";

export { HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/health/v1/health_pb.js";

/** The service name that stands for the whole server in `grpc.health.v1`. */
export const overallHealth = "";

/**
 * The gRPC health service (`grpc.health.v1.Health`) over a small status registry.
 *
 * Follows https://github.com/grpc/grpc/blob/master/doc/health-checking.md: `Check` of an unknown
 * service is NOT_FOUND; `Watch` of one answers SERVICE_UNKNOWN and keeps watching, since the service
 * may be registered later.
 */
export interface HealthService {
  /** Adds `grpc.health.v1.Health` to the router, with the handler options given (e.g. a read limit). */
  registerOn(router: ConnectRouter, handlerOptions?: Parameters<ConnectRouter["service"]>[2]): void;
  /**
   * Sets a service's status (`true` = SERVING, `false` = NOT_SERVING); `""` is the whole server.
   * Watchers of the service get the new status. Ignored after `shutdown()`.
   */
  set(service: string, status: boolean | HealthCheckResponse_ServingStatus): void;
  /** The status of a service, or undefined if it was never set. */
  get(service: string): HealthCheckResponse_ServingStatus | undefined;
  /**
   * Marks every service NOT_SERVING, tells the watchers, and then ends their `Watch` streams, so
   * open streams do not hold a graceful close open. Later `set` calls are ignored: a server on its
   * way down must not announce itself healthy again.
   */
  shutdown(): void;
}

export interface HealthOptions {
  /** Statuses to start with. Default: the whole server (`""`) SERVING. */
  initial?: Record<string, boolean | HealthCheckResponse_ServingStatus>;
  /**
   * `Watch` streams open at once; one more is refused with RESOURCE_EXHAUSTED. Each holds a stream
   * (and an HTTP/2 stream slot) until the client leaves, so without a cap unauthenticated clients
   * could hold memory forever. Default 1 000, far more than load balancers and probes open.
   */
  maxWatchers?: number;
}

/** The spec's limit for `List`: beyond it the answer would be too large to be useful. */
const maxListedServices = 100;

export function createHealth(options: HealthOptions = {}): HealthService {
  const statuses = new Map<string, HealthCheckResponse_ServingStatus>();
  const watchers = new Set<() => void>();
  const maxWatchers = options.maxWatchers ?? 1_000;
  let shutDown = false;

  function wakeWatchers(): void {
    for (const wake of watchers) wake();
  }

  function set(service: string, status: boolean | HealthCheckResponse_ServingStatus): void {
    if (shutDown) return;
    statuses.set(service, toServingStatus(status));
    wakeWatchers();
  }

  for (const [service, status] of Object.entries(options.initial ?? { [overallHealth]: true })) {
    set(service, status);
  }

  function check(request: HealthCheckRequest): HealthCheckResponse {
    const status = statuses.get(request.service);
    if (status === undefined) {
      // Echo the name, but never much of it: anyone may ask.
      throw new ConnectError(`unknown service ${JSON.stringify(clip(request.service, 100))}`, Code.NotFound);
    }
    return create(HealthCheckResponseSchema, { status });
  }

  /**
   * Sends the current status, then each change. Changes that happen faster than the client reads
   * are coalesced into the latest one (as grpc-go does): a watcher wants the state, not a log.
   */
  async function* watch(
    request: HealthCheckRequest,
    context: HandlerContext,
  ): AsyncGenerator<HealthCheckResponse> {
    if (watchers.size >= maxWatchers) {
      throw new ConnectError(
        `more than ${maxWatchers} health watchers; use Check, or retry later`,
        Code.ResourceExhausted,
      );
    }
    let wake: () => void = () => {};
    const onWake = () => wake();
    watchers.add(onWake);
    context.signal.addEventListener("abort", onWake);
    try {
      let sent: HealthCheckResponse_ServingStatus | undefined;
      for (;;) {
        const now = statuses.get(request.service) ?? HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN;
        if (now !== sent && !context.signal.aborted) {
          sent = now;
          yield create(HealthCheckResponseSchema, { status: now });
          continue;
        }
        if (shutDown || context.signal.aborted) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
    } finally {
      watchers.delete(onWake);
      context.signal.removeEventListener("abort", onWake);
    }
  }

  return {
    registerOn(router, handlerOptions) {
      router.service(
        Health,
        {
          check,
          watch,
          list() {
            if (statuses.size > maxListedServices) {
              throw new ConnectError(
                `more than ${maxListedServices} services; use Check or Watch`,
                Code.ResourceExhausted,
              );
            }
            return create(HealthListResponseSchema, {
              statuses: Object.fromEntries(
                [...statuses].map(([service, status]) => [
                  service,
                  create(HealthCheckResponseSchema, { status }),
                ]),
              ),
            });
          },
        },
        handlerOptions,
      );
    },
    set,
    get: (service) => statuses.get(service),
    shutdown() {
      if (shutDown) return;
      for (const service of statuses.keys())
        statuses.set(service, HealthCheckResponse_ServingStatus.NOT_SERVING);
      shutDown = true;
      wakeWatchers();
    },
  };
}

function toServingStatus(
  status: boolean | HealthCheckResponse_ServingStatus,
): HealthCheckResponse_ServingStatus {
  if (status === true) return HealthCheckResponse_ServingStatus.SERVING;
  if (status === false) return HealthCheckResponse_ServingStatus.NOT_SERVING;
  return status;
}
