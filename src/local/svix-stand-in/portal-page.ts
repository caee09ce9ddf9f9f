import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { StandInContext } from "./context.js";
import { runPortalAction } from "./portal-actions.js";
import { notePage, renderActivity, renderPortal } from "./portal-html.js";
import type { PortalSession } from "./portal-sessions.js";

/**
 * The stand-in's app portal, the page a portal link opens: `/portal/login/{code}` (single use, then
 * a cookie), `/portal` (endpoints, the add form, the message log), `/portal/activity` (the log
 * alone, for the page's refresh) and the forms' POSTs under `/portal/endpoints`. Only the
 * session's own app is ever read or changed here.
 */

const COOKIE = "svix_stand_in_portal";
const MAX_FORM_BYTES = 64 * 1024;

/** One message for the page after a redirect, kept server-side so no URL can put words on the page. */
const flash = new WeakMap<PortalSession, string>();

function send(
  res: ServerResponse,
  status: number,
  html: string,
  headers: Record<string, string> = {},
  nonce?: string,
): void {
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    // The page shows secrets: nothing from elsewhere may run on it, frame it, or receive its forms.
    "content-security-policy":
      `default-src 'none'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; ` +
      `base-uri 'none'; frame-ancestors 'none'${nonce ? `; script-src 'nonce-${nonce}'` : ""}`,
    // Not no-referrer: with it, Chromium sends `Origin: null` on the page's own form posts.
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
    ...headers,
  });
  res.end(html);
}

function redirect(res: ServerResponse, location: string, headers: Record<string, string> = {}): void {
  res.writeHead(303, { location, "cache-control": "no-store", ...headers });
  res.end();
}

function sessionFromCookie(
  req: IncomingMessage,
  ctx: StandInContext,
  now: number,
): PortalSession | undefined {
  const cookies = req.headers.cookie?.split(/;\s*/) ?? [];
  const token = cookies.find((c) => c.startsWith(`${COOKIE}=`))?.slice(COOKIE.length + 1);
  return token ? ctx.portal.session(token, now) : undefined;
}

function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_FORM_BYTES) {
        resolve(undefined);
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(new URLSearchParams(Buffer.concat(chunks).toString("utf8"))));
    req.on("error", () => resolve(undefined));
  });
}

/**
 * The cookie is SameSite=Strict, so another site's form cannot post with it; a foreign Origin is
 * refused as well, for browsers that do not enforce SameSite.
 */
function sameOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined || origin === "null") return origin === undefined;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}

/** Where a new link comes from; the stand-in serves jobhooks, so it says how jobhooks gives one. */
const NEW_LINK =
  "Get a new link the way you got this one: from the application that gave it to you. With jobhooks, " +
  "that is GetPortalLink with your API key (`jobhooks dev` prints the curl command under step 5).";

function login(
  req: IncomingMessage,
  res: ServerResponse,
  code: string,
  ctx: StandInContext,
  now: number,
): void {
  const outcome = ctx.portal.login(code, now);
  if (outcome.kind === "refused") {
    // The same browser re-opening its own link (a reload, the link pasted again) is already logged in.
    if (outcome.reason === "used" && sessionFromCookie(req, ctx, now)) return redirect(res, "/portal");
    const [status, title, text] =
      outcome.reason === "used"
        ? [403, "Link already used", `Each portal link logs in once, and this one was used. ${NEW_LINK}`]
        : outcome.reason === "expired"
          ? [403, "Link expired", `This portal link has expired. ${NEW_LINK}`]
          : [404, "Unknown link", `This is not a portal link this server issued. ${NEW_LINK}`];
    send(res, status, notePage(title, text));
    return;
  }
  const maxAge = Math.max(0, Math.floor((outcome.session.expiresAt - now) / 1000));
  redirect(res, "/portal", {
    "set-cookie": `${COOKIE}=${outcome.session.token}; Path=/portal; HttpOnly; SameSite=Strict; Max-Age=${maxAge}`,
  });
}

function showPortal(
  res: ServerResponse,
  ctx: StandInContext,
  session: PortalSession,
  status: number,
  view: Omit<Parameters<typeof renderPortal>[2], "nonce">,
): void {
  const nonce = randomBytes(16).toString("base64");
  send(res, status, renderPortal(ctx, session, { ...view, nonce }), {}, nonce);
}

export async function servePortal(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  ctx: StandInContext,
): Promise<void> {
  const now = Date.now();
  const method = req.method ?? "GET";
  const read = method === "GET" || method === "HEAD";
  const loginMatch = /^\/portal\/login\/([A-Za-z0-9]+)$/.exec(path);
  if (loginMatch) {
    if (!read) return send(res, 405, notePage("Method not allowed", "Open the link."), { allow: "GET" });
    return login(req, res, loginMatch[1] as string, ctx, now);
  }
  const action = /^\/portal\/endpoints(?:\/([A-Za-z0-9_-]+)\/([a-z-]+))?$/.exec(path);
  const known = path === "/portal" || path === "/portal/" || path === "/portal/activity" || action;
  if (!known) return send(res, 404, notePage("Not found", "There is no such page."));

  const session = sessionFromCookie(req, ctx, now);
  if (!session)
    return send(res, 401, notePage("Not logged in", `This page needs a portal link. ${NEW_LINK}`));

  if (action) {
    if (method !== "POST")
      return send(res, 405, notePage("Method not allowed", "Use the page's forms."), { allow: "POST" });
    if (!sameOrigin(req)) return send(res, 403, notePage("Refused", "This form was sent from another site."));
    const form = await readForm(req);
    if (!form) return send(res, 413, notePage("Too large", "The form is larger than the portal accepts."));
    const [, endpointId, verb] = action;
    const outcome = runPortalAction(ctx, session, verb ?? "create", endpointId, form);
    if (outcome.kind === "refused")
      return showPortal(res, ctx, session, outcome.status, { error: outcome.error, form: outcome.form });
    flash.set(session, outcome.notice);
    return redirect(res, `/portal#${outcome.anchor}`);
  }
  if (!read)
    return send(res, 405, notePage("Method not allowed", "This page is read with GET."), { allow: "GET" });
  if (path === "/portal/activity") return send(res, 200, renderActivity(ctx, session));

  const notice = flash.get(session);
  flash.delete(session);
  const reveal = new URL(req.url ?? "/", "http://portal").searchParams.get("reveal") ?? undefined;
  showPortal(res, ctx, session, 200, { notice, reveal });
}
