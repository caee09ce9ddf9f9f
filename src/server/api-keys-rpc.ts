import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { isApiKeyId } from "../credentials/api-key.js";
import {
  type ApiKey,
  ApiKeySchema,
  type CreateApiKeyRequest,
  type CreateApiKeyResponse,
  CreateApiKeyResponseSchema,
  type ListApiKeysRequest,
  type ListApiKeysResponse,
  ListApiKeysResponseSchema,
  type RevokeApiKeyRequest,
  type RevokeApiKeyResponse,
  RevokeApiKeyResponseSchema,
} from "../gen/jobhooks/v1/webhooks_pb.js";
import type { ApiKeyRecord } from "../nats/api-key-store.js";
import { actorOf, requireTenantId } from "./admin-call.js";
import type { Principal } from "./auth.js";
import { badRequest } from "./rpc-errors.js";
import type { TenantAdmin } from "./tenant-admin.js";

/**
 * CreateApiKey, ListApiKeys, RevokeApiKey: the same store and rules as `jobhooks keys` (the key
 * returned once, only its SHA-256 kept; revocation reaches every replica through the bucket watch
 * of api-key-verifier.ts).
 */

export async function createApiKey(
  req: CreateApiKeyRequest,
  caller: Principal,
  o: Pick<TenantAdmin, "keys" | "audit">,
): Promise<CreateApiKeyResponse> {
  requireTenantId(req.tenantId);
  const { key, record } = await o.keys.create(req.tenantId);
  await o.audit.record({
    act: "api_key.created",
    tenant: record.tenantId,
    by: actorOf(caller),
    details: { key_id: record.id },
  });
  return create(CreateApiKeyResponseSchema, { key, apiKey: apiKeyOf(record) });
}

export async function listApiKeys(
  req: ListApiKeysRequest,
  o: Pick<TenantAdmin, "keys">,
): Promise<ListApiKeysResponse> {
  if (req.tenantId !== "") requireTenantId(req.tenantId);
  const records = (await o.keys.list()).filter((r) => req.tenantId === "" || r.tenantId === req.tenantId);
  return create(ListApiKeysResponseSchema, { apiKeys: records.map(apiKeyOf) });
}

export async function revokeApiKey(
  req: RevokeApiKeyRequest,
  caller: Principal,
  o: Pick<TenantAdmin, "keys" | "audit">,
): Promise<RevokeApiKeyResponse> {
  if (!isApiKeyId(req.keyId)) {
    throw badRequest(Code.InvalidArgument, [
      {
        field: "key_id",
        description: "must be a key id such as key_…, as CreateApiKey and ListApiKeys return (not the key)",
      },
    ]);
  }
  const revoked = await o.keys.revoke(req.keyId);
  if (!revoked) {
    throw new ConnectError(
      `no key with id ${req.keyId}; ListApiKeys (optionally with tenant_id) lists the live key ids`,
      Code.NotFound,
    );
  }
  await o.audit.record({
    act: "api_key.revoked",
    tenant: revoked.tenantId,
    by: actorOf(caller),
    details: { key_id: revoked.id },
  });
  return create(RevokeApiKeyResponseSchema, { apiKey: apiKeyOf(revoked) });
}

function apiKeyOf(r: ApiKeyRecord): ApiKey {
  return create(ApiKeySchema, {
    id: r.id,
    tenantId: r.tenantId,
    createdAt: timestampFromDate(new Date(r.createdAt)),
    ...(r.lastUsedAt ? { lastUsedAt: timestampFromDate(new Date(r.lastUsedAt)) } : {}),
  });
}
