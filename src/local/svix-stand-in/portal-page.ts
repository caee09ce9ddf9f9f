import type { IncomingMessage, ServerResponse } from "node:http";
import type { StandInContext } from "./context.js";
import type { PortalSession } from "./portal-sessions.js";

/**
 * The stand-in's app portal: the page a portal link opens. Minimal for now — one app's endpoints and
 * recent messages, server-rendered; a later task replaces the page, not the login around it. Only the
 * session's own app is ever read here.
 */

const COOKIE = "svix_stand_in_portal";
const RECENT_MESSAGES = 50;

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function send(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    // The page shows secrets-adjacent data; nothing on it needs scripts from elsewhere or framing.
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    ...headers,
  });
  res.end(html);
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}</style>
</head><body>${body}</body></html>`;
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

function renderApp(ctx: StandInContext, session: PortalSession): string {
  const app = ctx.store.apps.get(session.appId);
  if (!app) return page("Application not found", "<h1>This application no longer exists</h1>");
  const endpoints = [...(ctx.store.endpoints.get(app.id)?.values() ?? [])];
  const messages = [...ctx.store.messages.values()]
    .filter((m) => m.appId === app.id)
    .slice(-RECENT_MESSAGES)
    .reverse();
  const lastStatus = new Map<string, string>();
  for (const attempt of ctx.store.attempts.values()) {
    if (attempt.appId === app.id)
      lastStatus.set(attempt.msgId, String(attempt.responseStatusCode || attempt.response));
  }
  const endpointRows = endpoints
    .map(
      (e) =>
        `<tr><td>${escapeHtml(e.url)}</td><td>${escapeHtml((e.eventTypes ?? ["all"]).join(", "))}</td>` +
        `<td>${escapeHtml((e.channels ?? []).join(", "))}</td><td>${e.disabled ? "disabled" : "enabled"}</td></tr>`,
    )
    .join("");
  const messageRows = messages
    .map(
      (m) =>
        `<tr><td>${escapeHtml(m.timestamp)}</td><td>${escapeHtml(m.eventType)}</td><td>${escapeHtml(m.eventId ?? "")}</td>` +
        `<td>${escapeHtml(m.id)}</td><td>${escapeHtml(lastStatus.get(m.id) ?? "")}</td></tr>`,
    )
    .join("");
  return page(
    `${app.name} — webhooks`,
    `<h1>${escapeHtml(app.name)}</h1><p>Application <code>${escapeHtml(app.uid ?? app.id)}</code>` +
      `${session.readOnly ? " (read only)" : ""}</p>` +
      `<h2>Endpoints</h2><table><tr><th>URL</th><th>Event types</th><th>Channels</th><th>State</th></tr>${endpointRows}</table>` +
      `<h2>Recent messages</h2><table><tr><th>Time</th><th>Event type</th><th>Event id</th><th>Message</th><th>Last response</th></tr>${messageRows}</table>`,
  );
}

/** `/portal/login/{code}` (single use, then a cookie) and `/portal` (the page itself). */
export function servePortal(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  ctx: StandInContext,
): void {
  const now = Date.now();
  if (req.method !== "GET" && req.method !== "HEAD") {
    send(res, 405, page("Method not allowed", "<h1>Method not allowed</h1>"), { allow: "GET" });
    return;
  }
  const login = /^\/portal\/login\/([A-Za-z0-9]+)$/.exec(path);
  if (login) {
    const outcome = ctx.portal.login(login[1] as string, now);
    if (!outcome.ok) {
      const [status, text] =
        outcome.reason === "used"
          ? [403, "This login link was already used. Ask for a new one."]
          : outcome.reason === "expired"
            ? [403, "This login link has expired. Ask for a new one."]
            : [404, "Unknown login link."];
      send(res, status, page("Login refused", `<h1>${text}</h1>`));
      return;
    }
    const maxAge = Math.max(0, Math.floor((outcome.session.expiresAt - now) / 1000));
    res.writeHead(303, {
      location: "/portal",
      "set-cookie": `${COOKIE}=${outcome.session.token}; Path=/portal; HttpOnly; SameSite=Strict; Max-Age=${maxAge}`,
      "cache-control": "no-store",
    });
    res.end();
    return;
  }
  if (path === "/portal" || path === "/portal/") {
    const session = sessionFromCookie(req, ctx, now);
    if (!session) {
      send(res, 401, page("Not logged in", "<h1>Not logged in</h1><p>Open a fresh portal link.</p>"));
      return;
    }
    send(res, 200, renderApp(ctx, session));
    return;
  }
  send(res, 404, page("Not found", "<h1>Not found</h1>"));
}
