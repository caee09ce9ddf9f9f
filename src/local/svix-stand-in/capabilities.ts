/**
 * What an app-portal token may call over the API, from the capabilities its grant carries (Svix's
 * `AppPortalCapability`). The portal page checks the same capabilities before showing a form; this
 * is the server-side refusal for anyone who posts the request by hand.
 */

type Capability =
  | "ViewBase"
  | "ViewEndpointSecret"
  | "ManageEndpointSecret"
  | "ManageTransformations"
  | "CreateAttempts"
  | "ManageEndpoint";

/** Operations that need more than their method implies (GET: ViewBase; else ManageEndpoint). */
const REQUIRED: Record<string, Capability> = {
  "v1.endpoint.get-secret": "ViewEndpointSecret",
  "v1.endpoint.rotate-secret": "ManageEndpointSecret",
  "v1.endpoint.send-example": "CreateAttempts",
  "v1.message-attempt.resend": "CreateAttempts",
};

export function portalTokenMay(
  grant: { readOnly: boolean; capabilities: readonly string[] },
  route: { method: string; operationId: string },
): boolean {
  const needed = REQUIRED[route.operationId] ?? (route.method === "GET" ? "ViewBase" : "ManageEndpoint");
  if (needed === "ViewBase") return true;
  if (needed === "ViewEndpointSecret") return grant.capabilities.includes(needed);
  return !grant.readOnly && grant.capabilities.includes(needed);
}
