import { Ordering, type Svix } from "svix";
import { callFailure, type SvixCallFailure, type TimedCall, untimed } from "./call-failure.js";
import { classifySvixError } from "./classify.js";

/**
 * A tenant's Svix application (uid = tenant id) as GetTenant shows it and DeleteTenant removes it.
 * Endpoint URLs are cut to their host: a path or query may carry the customer's own secret.
 */

/** Endpoints listed at most. */
export const TENANT_ENDPOINTS_MAX = 50;

export interface TenantApplicationView {
  appId: string;
  createdAt: Date;
  endpoints: Array<{ id: string; urlHost: string; disabled: boolean; filterTypes: string[] }>;
  endpointsTruncated: boolean;
  /** When Svix accepted the newest message. */
  lastMessageAt: Date | undefined;
}

export type DescribeOutcome =
  | { kind: "found"; app: TenantApplicationView }
  | { kind: "none" }
  | SvixCallFailure;

export type DeleteOutcome = { kind: "deleted"; appId: string } | { kind: "none" } | SvixCallFailure;

export interface TenantApplications {
  describe(tenantId: string): Promise<DescribeOutcome>;
  /** Svix deletes the application with its endpoints, secrets and messages. */
  delete(tenantId: string): Promise<DeleteOutcome>;
}

export function createTenantApplications(o: { sdk: Svix; timed?: TimedCall }): TenantApplications {
  const timed = o.timed ?? untimed;
  return {
    async describe(tenantId) {
      try {
        const app = await timed(() => o.sdk.application.get(tenantId));
        const endpoints = await timed(() =>
          o.sdk.endpoint.list(app.id, { limit: TENANT_ENDPOINTS_MAX, order: Ordering.Ascending }),
        );
        const last = await timed(() => o.sdk.message.list(app.id, { limit: 1, withContent: false }));
        return {
          kind: "found",
          app: {
            appId: app.id,
            createdAt: app.createdAt,
            endpoints: endpoints.data.map((e) => ({
              id: e.id,
              urlHost: hostOf(e.url),
              disabled: e.disabled ?? false,
              filterTypes: e.eventTypes ?? [],
            })),
            endpointsTruncated: !endpoints.done,
            lastMessageAt: last.data[0]?.timestamp,
          },
        };
      } catch (err) {
        const failure = classifySvixError(err);
        return failure.kind === "app_missing" ? { kind: "none" } : callFailure(failure);
      }
    },

    async delete(tenantId) {
      try {
        const app = await timed(() => o.sdk.application.get(tenantId));
        await timed(() => o.sdk.application.delete(app.id));
        return { kind: "deleted", appId: app.id };
      } catch (err) {
        // 404: never created, or deleted already (by us, a moment ago, on another replica).
        const failure = classifySvixError(err);
        return failure.kind === "app_missing" ? { kind: "none" } : callFailure(failure);
      }
    },
  };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "";
  }
}
