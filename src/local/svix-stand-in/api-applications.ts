import { FieldChecks, queryBoolean, UID_PATTERN } from "./checks.js";
import type { StandInContext } from "./context.js";
import { conflict, limitReached, notFound } from "./errors.js";
import { newId } from "./ids.js";
import { type ApiRequest, json, noContent, type RouteDef } from "./router.js";
import type { AppRecord } from "./store.js";
import { applicationOut, listResponse, pageFrom } from "./wire.js";

/** Applications: one per jobhooks tenant (uid = tenant id), usually created by `getOrCreate`. */

export interface ApplicationIn {
  name: string;
  uid: string | undefined;
  throttleRate: number | undefined;
  metadata: Record<string, string> | undefined;
}

/** `ApplicationIn`, also used inline by message.create and app-portal-access. */
export function readApplicationIn(checks: FieldChecks, value: unknown, loc: string[]): ApplicationIn {
  const body = checks.object(value, loc);
  return {
    name: checks.string(body, "name", loc, { required: true, minLength: 1 }) ?? "",
    uid: checks.string(body, "uid", loc, { pattern: UID_PATTERN, minLength: 1, maxLength: 256 }),
    throttleRate: checks.integer(body, "throttleRate", loc, 1, 65535),
    metadata: checks.stringMap(body, "metadata", loc) as Record<string, string> | undefined,
  };
}

export function createApp(ctx: StandInContext, input: ApplicationIn, now: number): AppRecord {
  if (ctx.store.apps.size >= ctx.store.limits.maxApps)
    throw limitReached(`The stand-in holds at most ${ctx.store.limits.maxApps} applications`);
  const at = new Date(now).toISOString();
  const app: AppRecord = {
    id: newId("app", now),
    uid: input.uid ?? null,
    name: input.name,
    throttleRate: input.throttleRate ?? null,
    metadata: input.metadata ?? {},
    createdAt: at,
    updatedAt: at,
  };
  ctx.store.putApp(app);
  return app;
}

/** An app id or uid from a path; Svix answers 404 for both kinds alike. */
export function appFrom(ctx: StandInContext, req: ApiRequest): AppRecord {
  const app = ctx.store.findApp(req.params.app_id as string);
  if (!app) throw notFound();
  return app;
}

/** An inline `application` creates the app when the path names one that does not exist yet. */
export function appOrInline(
  ctx: StandInContext,
  req: ApiRequest,
  inline: ApplicationIn | undefined,
): AppRecord {
  const existing = ctx.store.findApp(req.params.app_id as string);
  if (existing) return existing;
  if (!inline) throw notFound();
  const pathId = req.params.app_id as string;
  const uid = inline.uid ?? (pathId.startsWith("app_") ? undefined : pathId);
  return createApp(ctx, { ...inline, uid }, req.now);
}

function updateApp(ctx: StandInContext, app: AppRecord, input: Partial<ApplicationIn>, now: number): void {
  if (input.uid !== undefined && input.uid !== app.uid) {
    if (ctx.store.findApp(input.uid)) throw conflict("An application with this uid already exists");
    ctx.store.changeAppUid(app, input.uid);
  }
  if (input.name !== undefined) app.name = input.name;
  if (input.throttleRate !== undefined) app.throttleRate = input.throttleRate;
  if (input.metadata !== undefined) app.metadata = input.metadata;
  app.updatedAt = new Date(now).toISOString();
}

export const applicationRoutes: RouteDef<StandInContext>[] = [
  {
    method: "GET",
    template: "/api/v1/app",
    operationId: "v1.application.list",
    handle(req, ctx) {
      const page = pageFrom(req.query, false);
      return json(
        200,
        listResponse([...ctx.store.apps.values()], (a) => a.id, page, applicationOut),
      );
    },
  },
  {
    method: "POST",
    template: "/api/v1/app",
    operationId: "v1.application.create",
    handle(req, ctx) {
      const checks = new FieldChecks();
      const getIfExists = queryBoolean(checks, req.query, "get_if_exists") ?? false;
      const input = readApplicationIn(checks, req.body, ["body"]);
      checks.orThrow();
      const existing = input.uid === undefined ? undefined : ctx.store.findApp(input.uid);
      if (existing) {
        if (getIfExists) return json(200, applicationOut(existing));
        throw conflict("An application with this uid already exists");
      }
      return json(201, applicationOut(createApp(ctx, input, req.now)));
    },
  },
  {
    method: "GET",
    template: "/api/v1/app/{app_id}",
    operationId: "v1.application.get",
    appScoped: true,
    handle: (req, ctx) => json(200, applicationOut(appFrom(ctx, req))),
  },
  {
    method: "PUT",
    template: "/api/v1/app/{app_id}",
    operationId: "v1.application.upsert",
    handle(req, ctx) {
      const checks = new FieldChecks();
      const input = readApplicationIn(checks, req.body, ["body"]);
      checks.orThrow();
      const existing = ctx.store.findApp(req.params.app_id as string);
      if (existing) {
        updateApp(ctx, existing, input, req.now);
        return json(200, applicationOut(existing));
      }
      return json(201, applicationOut(appOrInline(ctx, req, input)));
    },
  },
  {
    method: "PATCH",
    template: "/api/v1/app/{app_id}",
    operationId: "v1.application.patch",
    handle(req, ctx) {
      const checks = new FieldChecks();
      const body = checks.object(req.body, ["body"]);
      const input = {
        name: checks.string(body, "name", ["body"], { minLength: 1 }),
        uid: checks.string(body, "uid", ["body"], { pattern: UID_PATTERN, minLength: 1, maxLength: 256 }),
        throttleRate: checks.integer(body, "throttleRate", ["body"], 0, 65535),
        metadata: checks.stringMap(body, "metadata", ["body"]) as Record<string, string> | undefined,
      };
      checks.orThrow();
      const app = appFrom(ctx, req);
      updateApp(ctx, app, input, req.now);
      return json(200, applicationOut(app));
    },
  },
  {
    method: "DELETE",
    template: "/api/v1/app/{app_id}",
    operationId: "v1.application.delete",
    handle(req, ctx) {
      ctx.store.deleteApp(appFrom(ctx, req));
      return noContent;
    },
  },
];
