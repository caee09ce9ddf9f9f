import { appFrom, appOrInline, readApplicationIn } from "./api-applications.js";
import { FieldChecks, SESSION_ID_PATTERN, UID_PATTERN } from "./checks.js";
import type { StandInContext } from "./context.js";
import { json, noContent, type RouteDef } from "./router.js";

/**
 * app-portal-access: a single-use login link to the stand-in's own portal page, plus the session
 * token the page (and any client) may use as a Bearer token for that one app.
 */

const CAPABILITIES = [
  "ViewBase",
  "ViewEndpointSecret",
  "ManageEndpointSecret",
  "ManageTransformations",
  "CreateAttempts",
  "ManageEndpoint",
];
const DEFAULT_EXPIRY_SECONDS = 604_800;

export const portalAccessRoutes: RouteDef<StandInContext>[] = [
  {
    method: "POST",
    template: "/api/v1/auth/app-portal-access/{app_id}",
    operationId: "v1.authentication.app-portal-access",
    handle(req, ctx) {
      const checks = new FieldChecks();
      const loc = ["body"];
      const body = req.body === undefined ? {} : checks.object(req.body, loc);
      const application =
        body.application == null
          ? undefined
          : readApplicationIn(checks, body.application, ["body", "application"]);
      const expiry = checks.integer(body, "expiry", loc, 3600, 604_800) ?? DEFAULT_EXPIRY_SECONDS;
      const readOnly = checks.boolean(body, "readOnly", loc) ?? false;
      const capabilities = checks.stringArray(body, "capabilities", loc, { item: {} });
      capabilities?.forEach((c, i) => {
        if (!CAPABILITIES.includes(c))
          checks.fail(
            ["body", "capabilities", String(i)],
            "value is not a valid enumeration member",
            "type_error.enum",
          );
      });
      const featureFlags = checks.stringArray(body, "featureFlags", loc, {
        item: { pattern: UID_PATTERN, maxLength: 256 },
        minItems: 1,
        maxItems: 25,
      });
      const sessionId = checks.string(body, "sessionId", loc, {
        pattern: SESSION_ID_PATTERN,
        minLength: 1,
        maxLength: 64,
      });
      checks.orThrow();
      const app = appOrInline(ctx, req, application);
      const grant = ctx.portal.grant({
        appId: app.id,
        // Scaled like Svix's other long waits, so a test can watch a link expire.
        expiresAt: req.now + expiry * 1000 * ctx.timeScale,
        readOnly: readOnly || (capabilities !== undefined && !capabilities.includes("ManageEndpoint")),
        capabilities: capabilities ?? [
          "ViewBase",
          "ViewEndpointSecret",
          "ManageEndpointSecret",
          "CreateAttempts",
          "ManageEndpoint",
        ],
        featureFlags: featureFlags ?? [],
        sessionId: sessionId ?? null,
      });
      return json(200, { url: `${ctx.publicUrl()}/portal/login/${grant.loginCode}`, token: grant.token });
    },
  },
  {
    method: "POST",
    template: "/api/v1/auth/app/{app_id}/expire-all",
    operationId: "v1.authentication.expire-all",
    handle(req, ctx) {
      const checks = new FieldChecks();
      const loc = ["body"];
      const body = checks.object(req.body ?? {}, loc);
      // Svix's grace period before the tokens stop working; scaled like the portal expiry.
      const expiry = checks.integer(body, "expiry", loc, 0, 259_200) ?? 0;
      const sessionIds = checks.stringArray(body, "sessionIds", loc, {
        item: { pattern: SESSION_ID_PATTERN, minLength: 1, maxLength: 64 },
        maxItems: 1000,
      });
      checks.orThrow();
      const app = appFrom(ctx, req);
      ctx.portal.expireAll(app.id, sessionIds, req.now + expiry * 1000 * ctx.timeScale);
      return noContent;
    },
  },
];
