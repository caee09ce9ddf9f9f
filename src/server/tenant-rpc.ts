import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type GetTenantRequest,
  type GetTenantResponse,
  GetTenantResponseSchema,
  TenantApplicationSchema,
  TenantEndpointSchema,
} from "../gen/jobhooks/v1/webhooks_pb.js";
import { countTenantHoldings } from "../nats/tenant-data.js";
import type { DescribeOutcome } from "../svix/tenant-application.js";
import { requireTenantId } from "./admin-call.js";
import type { TenantAdmin } from "./tenant-admin.js";

/**
 * GetTenant: a support ticket's first look at one tenant, from NATS (keys, waiting events, dead
 * letters) and Svix (application, endpoints, newest message). Svix being away does not fail the
 * call: the NATS half still answers, with `svix_checked` false.
 */
export async function getTenant(
  req: GetTenantRequest,
  o: Pick<TenantAdmin, "keys" | "jsm" | "subjectPrefix" | "svix" | "log">,
): Promise<GetTenantResponse> {
  requireTenantId(req.tenantId);
  const [keys, held, described] = await Promise.all([
    o.keys.list(),
    countTenantHoldings(o.jsm, o.subjectPrefix, req.tenantId),
    o.svix ? o.svix.applications.describe(req.tenantId) : Promise.resolve(undefined),
  ]);
  const svix = svixPart(described);
  if (described && (described.kind === "transient" || described.kind === "failed")) {
    o.log.warn({ tenant: req.tenantId, reason: described.reason }, "tenant lookup: Svix not answering");
  }
  return create(GetTenantResponseSchema, {
    tenantId: req.tenantId,
    apiKeyIds: keys.filter((k) => k.tenantId === req.tenantId).map((k) => k.id),
    eventsWaiting: BigInt(held.waiting),
    deadLetters: BigInt(held.deadLetters),
    ...(held.oldestWaitingAt ? { oldestWaitingAt: timestampFromDate(held.oldestWaitingAt) } : {}),
    ...(held.oldestDeadLetterAt ? { oldestDeadLetterAt: timestampFromDate(held.oldestDeadLetterAt) } : {}),
    ...svix,
  });
}

function svixPart(d: DescribeOutcome | undefined): MessageInitShape<typeof GetTenantResponseSchema> {
  if (!d || d.kind === "transient" || d.kind === "failed") return { svixChecked: false };
  if (d.kind === "none") return { svixChecked: true };
  const { app } = d;
  return {
    svixChecked: true,
    application: create(TenantApplicationSchema, {
      appId: app.appId,
      createdAt: timestampFromDate(app.createdAt),
      endpointsTruncated: app.endpointsTruncated,
      endpoints: app.endpoints.map((e) =>
        create(TenantEndpointSchema, {
          endpointId: e.id,
          urlHost: e.urlHost,
          disabled: e.disabled,
          filterTypes: e.filterTypes,
        }),
      ),
    }),
    ...(app.lastMessageAt ? { lastMessageAt: timestampFromDate(app.lastMessageAt) } : {}),
  };
}
