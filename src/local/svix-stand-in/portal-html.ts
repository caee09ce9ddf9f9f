import type { StandInContext } from "./context.js";
import { can, type EndpointForm } from "./portal-actions.js";
import type { PortalSession } from "./portal-sessions.js";
import type { AttemptRecord, EndpointRecord, EventTypeRecord, MessageRecord } from "./store.js";

/**
 * The portal page's HTML: server-rendered, plain forms, one small script that refreshes the message
 * log. Every list here is read through the session's own app id and nothing else.
 */

const RECENT_MESSAGES = 50;
const EXCERPT_CHARS = 300;
const MASK = "•••";
/** Headers every delivery carries; any other one is an endpoint's custom header, often a credential. */
const DELIVERY_HEADERS = new Set([
  "webhook-id",
  "webhook-timestamp",
  "webhook-signature",
  "content-type",
  "user-agent",
]);

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const CSS = `
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
header{background:#1f2a44;color:#fff;padding:1rem}
header h1{margin:0;font-size:1.35rem}header p{margin:.25rem 0 0;color:#d5dbe8}header code{background:#33416a;color:#fff}
main{max-width:60rem;margin:0 auto;padding:1rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}h3{font-size:1rem;margin:0;overflow-wrap:anywhere}
.card{background:#fff;border:1px solid #d0d5dd;border-radius:8px;padding:.75rem 1rem;margin:.75rem 0}
.muted{color:#555d69;font-size:.9rem}
.badge{display:inline-block;border-radius:999px;padding:0 .5rem;font-size:.8rem;font-weight:600;vertical-align:middle}
.on{background:#dff5e3;color:#0b5d1e}.off{background:#f0f0f0;color:#454c56}
.ok{color:#0b5d1e;font-weight:600}.fail{color:#a4161a;font-weight:600}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .75rem;margin:.5rem 0}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
code{font:.85rem ui-monospace,monospace;background:#eef0f3;padding:0 .2rem;border-radius:3px;overflow-wrap:anywhere}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end;margin-top:.5rem}
.actions form{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end;margin:0}
label{font-weight:600;display:block}
input,select,textarea,button{font:inherit}
input[type=url],input[type=text],input[type=password],textarea,select{width:100%;padding:.45rem;border:1px solid #8a93a0;border-radius:6px;background:#fff}
textarea{min-height:4.5rem}
.field{margin:.75rem 0}.hint{font-weight:400;color:#555d69;font-size:.9rem}
fieldset{border:1px solid #d0d5dd;border-radius:6px;margin:.75rem 0;padding:.5rem .75rem}
legend{font-weight:600;padding:0 .25rem}
.check{display:flex;gap:.5rem;align-items:baseline;font-weight:400;margin:.2rem 0}
button,.button{background:#2451b3;color:#fff;border:0;border-radius:6px;padding:.45rem .9rem;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary,.button.secondary{background:#e7eaf0;color:#1b1f24}
button.danger{background:#a4161a}
:focus-visible{outline:3px solid #f0a500;outline-offset:2px}
.notice{background:#dff5e3;border:1px solid #7cc38b;padding:.5rem .75rem;border-radius:6px}
.error{background:#fde8e8;border:1px solid #e39a9a;padding:.5rem .75rem;border-radius:6px}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin-top:.5rem}
th,td{border-bottom:1px solid #e3e6ea;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f2f5}
.fail-badge{background:#fde8e8;color:#a4161a}
h4{font-size:.95rem;margin:.75rem 0 0;overflow-wrap:anywhere;display:flex;flex-wrap:wrap;gap:.4rem;align-items:center}
form.inline{display:inline;margin:0}form.inline button{padding:.15rem .6rem;font-size:.85rem}
pre{font:.8rem ui-monospace,monospace;background:#eef0f3;padding:.5rem;border-radius:6px;overflow-x:auto;white-space:pre-wrap;overflow-wrap:anywhere}
summary{cursor:pointer;color:#2451b3}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:40rem){main{padding:.5rem}.card{padding:.6rem}.actions{flex-direction:column;align-items:stretch}.actions form{flex-direction:column;align-items:stretch}
dl{grid-template-columns:1fr}dd{margin-bottom:.35rem}
table,tbody,tr,td{display:block}thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
tr{border-top:1px solid #d0d5dd;padding:.35rem 0}td{border:0;padding:.1rem 0}td::before{content:attr(data-label) ": ";font-weight:600}}
`;

export function portalDocument(title: string, body: string, nonce?: string, script?: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style>${CSS}</style></head><body>${body}${
    nonce && script ? `<script nonce="${nonce}">${script}</script>` : ""
  }</body></html>`;
}

/** A page that only says something (login refused, not found…). */
export function notePage(title: string, text: string): string {
  return portalDocument(title, `<main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(text)}</p></main>`);
}

function liveEventTypes(ctx: StandInContext): EventTypeRecord[] {
  return [...ctx.store.eventTypes.values()]
    .filter((e) => !e.archived)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function endpointsOf(ctx: StandInContext, session: PortalSession): EndpointRecord[] {
  return [...(ctx.store.endpoints.get(session.appId)?.values() ?? [])];
}

function postForm(action: string, fields: string, button: string, extra = ""): string {
  return `<form method="post" action="${escapeHtml(action)}"${extra}>${fields}${button}</form>`;
}

/** A custom header by name only: its value is often a credential (Svix's portal hides it too). */
function maskedHeader(name: string, value?: string): string {
  const basic = name.toLowerCase() === "authorization" && value?.startsWith("Basic ");
  return `<code>${escapeHtml(name)}: ${basic ? "Basic " : ""}${MASK}</code>`;
}

/** Reveal, then copy: the secret is on the page only after the user asked for it. */
function renderSecret(session: PortalSession, e: EndpointRecord, revealed: boolean): string {
  if (!can(session, "ViewEndpointSecret")) return "hidden (no access)";
  const id = escapeHtml(e.id);
  if (!revealed)
    return `<a class="button secondary" href="/portal?reveal=${encodeURIComponent(e.id)}#ep-${id}">Reveal secret</a>`;
  return `<code data-secret id="secret-${id}">${escapeHtml(e.secrets[0]?.key ?? "")}</code>
<button type="button" class="secondary" data-copy="secret-${id}" aria-label="Copy the signing secret">Copy</button>
<a href="/portal#ep-${id}">Hide</a>`;
}

function renderEndpoint(
  session: PortalSession,
  e: EndpointRecord,
  revealed: boolean,
  eventTypes: EventTypeRecord[],
): string {
  const base = `/portal/endpoints/${encodeURIComponent(e.id)}`;
  const headerNames = Object.keys(e.headers);
  const headers =
    headerNames.length === 0
      ? "none"
      : headerNames.map((name) => maskedHeader(name, e.headers[name])).join(" ");
  const actions: string[] = [];
  const testTypes = e.eventTypes ? eventTypes.filter((t) => e.eventTypes?.includes(t.name)) : eventTypes;
  if (can(session, "CreateAttempts") && !e.disabled && testTypes.length > 0) {
    const selectId = `send-${e.id}`;
    // Only the types this endpoint subscribes to: a test event of another type would prove nothing.
    actions.push(
      postForm(
        `${base}/send-example`,
        `<div><label for="${escapeHtml(selectId)}">Test event type</label><select id="${escapeHtml(selectId)}" name="eventType">${testTypes
          .map((t) => `<option>${escapeHtml(t.name)}</option>`)
          .join("")}</select></div>`,
        `<button type="submit">Send test event</button>`,
      ),
    );
  }
  if (can(session, "ManageEndpoint")) {
    actions.push(
      postForm(
        `${base}/${e.disabled ? "enable" : "disable"}`,
        "",
        `<button type="submit" class="secondary">${e.disabled ? "Enable" : "Disable"}</button>`,
      ),
      postForm(
        `${base}/delete`,
        "",
        `<button type="submit" class="danger" aria-label="Delete endpoint ${escapeHtml(e.url)}">Delete</button>`,
        ` data-confirm="Delete the endpoint ${escapeHtml(e.url)}?"`,
      ),
    );
  }
  return `<article class="card" id="ep-${escapeHtml(e.id)}" aria-labelledby="ep-${escapeHtml(e.id)}-url">
<h3 id="ep-${escapeHtml(e.id)}-url">${escapeHtml(e.url)} <span class="badge ${e.disabled ? "off" : "on"}">${e.disabled ? "disabled" : "enabled"}</span></h3>
${e.description ? `<p class="muted">${escapeHtml(e.description)}</p>` : ""}
<dl><dt>Event types</dt><dd>${e.eventTypes ? e.eventTypes.map((t) => `<code>${escapeHtml(t)}</code>`).join(" ") : "all"}</dd>
<dt>Custom headers</dt><dd>${headers}</dd>
<dt>Signing secret</dt><dd>${renderSecret(session, e, revealed)}</dd>
<dt>Id</dt><dd><code>${escapeHtml(e.id)}</code></dd></dl>
${actions.length > 0 ? `<div class="actions">${actions.join("")}</div>` : ""}
</article>`;
}

function renderAddForm(eventTypes: EventTypeRecord[], form: EndpointForm | undefined): string {
  const checked = new Set(form?.eventTypes ?? []);
  const boxes = eventTypes
    .map(
      (t) =>
        `<label class="check"><input type="checkbox" name="eventTypes" value="${escapeHtml(t.name)}"${
          checked.has(t.name) ? " checked" : ""
        }> <span><code>${escapeHtml(t.name)}</code> <span class="hint">${escapeHtml(t.description)}</span></span></label>`,
    )
    .join("");
  return `<section class="card" aria-labelledby="add-h"><h3 id="add-h">Add endpoint</h3>
<form method="post" action="/portal/endpoints">
<div class="field"><label for="url">Endpoint URL</label>
<input type="url" id="url" name="url" required placeholder="https://example.com/webhooks" value="${escapeHtml(form?.url ?? "")}" autocomplete="url"></div>
<div class="field"><label for="description">Description <span class="hint">(optional)</span></label>
<input type="text" id="description" name="description" value="${escapeHtml(form?.description ?? "")}"></div>
<fieldset><legend>Event types</legend><p class="hint" id="types-hint">Tick the events this endpoint should receive; none ticked means all of them.</p>${
    boxes || `<p class="hint">No event types are registered yet.</p>`
  }</fieldset>
<div class="field"><label for="headers">Custom headers <span class="hint">(optional; one <code>Name: value</code> per line, sent with every delivery)</span></label>
<textarea id="headers" name="headers" placeholder="Authorization: Bearer my-token" spellcheck="false">${escapeHtml(form?.headers ?? "")}</textarea></div>
<fieldset><legend>Basic auth <span class="hint">(optional; sent as the <code>Authorization: Basic …</code> header)</span></legend>
<div class="field"><label for="basicUser">User name</label>
<input type="text" id="basicUser" name="basicUser" autocomplete="off" value="${escapeHtml(form?.basicUser ?? "")}"></div>
<div class="field"><label for="basicPassword">Password</label>
<input type="password" id="basicPassword" name="basicPassword" autocomplete="new-password"></div></fieldset>
<button type="submit">Add endpoint</button>
</form></section>`;
}

function statusCell(a: AttemptRecord): string {
  const ok = a.status === 0;
  const text = a.responseStatusCode === 0 ? "no response" : String(a.responseStatusCode);
  return `<span class="${ok ? "ok" : "fail"}">${escapeHtml(text)}</span><span class="sr-only">${ok ? " succeeded" : " failed"}</span>`;
}

function clock(iso: string): string {
  return iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function pretty(body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

/** Where delivery to one endpoint stands, from its newest attempt (newest first in `attempts`). */
function deliveryState(attempts: AttemptRecord[]): string {
  const last = attempts[0];
  if (!last) return '<span class="badge off">sending</span>';
  if (last.status === 0) return '<span class="badge on">succeeded</span>';
  if (last.nextAttempt)
    return `<span class="badge fail-badge">failing</span> next attempt <time datetime="${escapeHtml(last.nextAttempt)}">${escapeHtml(clock(last.nextAttempt))}</time>`;
  if (last.nextAttempt === null)
    return `<span class="badge fail-badge">failed</span> after ${attempts.length} attempt${attempts.length === 1 ? "" : "s"}; no more are scheduled`;
  return '<span class="badge fail-badge">failing</span>';
}

/** What an attempt sent: Svix's headers in clear, the endpoint's own ones masked. */
function renderRequestHeaders(a: AttemptRecord): string {
  const headers = a.requestHeaders;
  if (!headers) return "";
  const lines = Object.entries(headers)
    .map(([name, value]) =>
      DELIVERY_HEADERS.has(name.toLowerCase())
        ? `<code>${escapeHtml(`${name}: ${value}`)}</code>`
        : maskedHeader(name, value),
    )
    .join("<br>");
  return `<details data-key="headers-${escapeHtml(a.id)}"><summary>Request headers</summary><p>${lines}</p></details>`;
}

function renderAttemptRow(a: AttemptRecord): string {
  const excerpt = a.response.length > EXCERPT_CHARS ? `${a.response.slice(0, EXCERPT_CHARS)}…` : a.response;
  return `<tr><td data-label="Time"><time datetime="${escapeHtml(a.timestamp)}">${escapeHtml(clock(a.timestamp))}</time>${a.triggerType === 1 ? ' <span class="muted">(manual)</span>' : ""}</td><td data-label="Status">${statusCell(a)}</td><td data-label="Duration">${a.responseDurationMs} ms</td><td data-label="Response">${excerpt ? `<code>${escapeHtml(excerpt)}</code>` : '<span class="muted">(empty)</span>'}${renderRequestHeaders(a)}</td></tr>`;
}

/** One endpoint's attempts at one message, its state, and "resend" when the session may. */
function renderEndpointAttempts(
  ctx: StandInContext,
  session: PortalSession,
  m: MessageRecord,
  endpointId: string,
  attempts: AttemptRecord[],
): string {
  const endpoint = ctx.store.findEndpoint(session.appId, endpointId);
  const url = endpoint?.url ?? attempts[0]?.url ?? endpointId;
  const resend =
    endpoint && can(session, "CreateAttempts")
      ? postForm(
          `/portal/endpoints/${encodeURIComponent(endpointId)}/resend`,
          `<input type="hidden" name="msgId" value="${escapeHtml(m.id)}">`,
          `<button type="submit" class="secondary" aria-label="Resend ${escapeHtml(m.id)} to ${escapeHtml(url)}">Resend</button>`,
          ' class="inline"',
        )
      : "";
  const rows = attempts.map(renderAttemptRow).join("");
  return `<section class="attempts" data-endpoint="${escapeHtml(endpointId)}"><h4>${escapeHtml(url)} · ${deliveryState(attempts)} ${resend}</h4>
<div class="scroll"><table><caption class="sr-only">Delivery attempts of ${escapeHtml(m.id)} to ${escapeHtml(url)}</caption><thead><tr><th scope="col">Time</th><th scope="col">Status</th><th scope="col">Duration</th><th scope="col">Response</th></tr></thead><tbody>${rows}</tbody></table></div></section>`;
}

function renderMessage(
  ctx: StandInContext,
  session: PortalSession,
  m: MessageRecord,
  attempts: AttemptRecord[],
): string {
  const byEndpoint = new Map<string, AttemptRecord[]>();
  for (const a of attempts.slice().reverse()) {
    const list = byEndpoint.get(a.endpointId) ?? [];
    list.push(a);
    byEndpoint.set(a.endpointId, list);
  }
  const groups = [...byEndpoint].map(([endpointId, list]) =>
    renderEndpointAttempts(ctx, session, m, endpointId, list),
  );
  const none = `<p class="muted">No delivery attempts${m.onlyEndpointId === null ? " (yet, or no enabled endpoint takes this event type)" : " yet"}.</p>`;
  return `<article class="card" id="msg-${escapeHtml(m.id)}" data-message="${escapeHtml(m.id)}"><h3><code>${escapeHtml(m.eventType)}</code> <span class="muted">${escapeHtml(clock(m.timestamp))}</span>${m.onlyEndpointId === null ? "" : ' <span class="badge off">test event</span>'}</h3>
<p class="muted">Message <code>${escapeHtml(m.id)}</code>${m.eventId ? ` · event <code>${escapeHtml(m.eventId)}</code>` : ""}</p>
<details class="payload" data-key="payload-${escapeHtml(m.id)}"><summary>Payload</summary><pre>${escapeHtml(pretty(m.body))}</pre></details>
${groups.length > 0 ? groups.join("") : none}</article>`;
}

/** The message log with each message's payload and its attempts per endpoint: the part the page refreshes. */
export function renderActivity(ctx: StandInContext, session: PortalSession): string {
  const messages: MessageRecord[] = [];
  for (const m of ctx.store.messages.values()) if (m.appId === session.appId) messages.push(m);
  const recent = messages.slice(-RECENT_MESSAGES).reverse();
  const shown = new Set(recent.map((m) => m.id));
  const attemptsByMsg = new Map<string, AttemptRecord[]>();
  for (const a of ctx.store.attempts.values()) {
    if (a.appId !== session.appId || !shown.has(a.msgId)) continue;
    const list = attemptsByMsg.get(a.msgId) ?? [];
    list.push(a);
    attemptsByMsg.set(a.msgId, list);
  }
  const updated = new Date().toISOString();
  const head = `<h2 id="activity-h">Messages</h2><p class="muted">The ${RECENT_MESSAGES} most recent, newest first, with every delivery attempt per endpoint. This list refreshes by itself (last update <time datetime="${updated}">${clock(updated)}</time>).</p>`;
  if (recent.length === 0)
    return `${head}<p class="card">No messages yet. Publish a job event or send a test event.</p>`;
  return head + recent.map((m) => renderMessage(ctx, session, m, attemptsByMsg.get(m.id) ?? [])).join("");
}

export interface PortalView {
  notice?: string;
  error?: string;
  form?: EndpointForm;
  /** The endpoint whose secret is shown. */
  reveal?: string;
  nonce: string;
}

/** Refreshes the message log every few seconds while the tab is visible; asks before a delete. */
const SCRIPT = `(() => {
  const box = document.getElementById("activity");
  let busy = false;
  setInterval(async () => {
    if (busy || document.hidden || !box) return;
    busy = true;
    try {
      const res = await fetch("/portal/activity", { credentials: "same-origin", cache: "no-store" });
      if (!res.ok) return;
      // Whatever the reader opened (a payload, an attempt's headers) stays open across the refresh.
      const open = [...box.querySelectorAll("details[open]")].map((d) => d.dataset.key);
      box.innerHTML = await res.text();
      for (const d of box.querySelectorAll("details")) if (open.includes(d.dataset.key)) d.open = true;
    } catch {} finally { busy = false; }
  }, 3000);
  for (const form of document.querySelectorAll("form[data-confirm]"))
    form.addEventListener("submit", (event) => { if (!confirm(form.dataset.confirm)) event.preventDefault(); });
  for (const button of document.querySelectorAll("button[data-copy]"))
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) return;
      try {
        await navigator.clipboard.writeText(source.textContent);
        button.textContent = "Copied";
      } catch {
        // No clipboard access: select the text so Ctrl-C copies it.
        getSelection().selectAllChildren(source);
        button.textContent = "Press Ctrl-C";
      }
    });
})();`;

export function renderPortal(ctx: StandInContext, session: PortalSession, view: PortalView): string {
  const app = ctx.store.apps.get(session.appId);
  if (!app) return notePage("Application not found", "This application no longer exists.");
  const eventTypes = liveEventTypes(ctx);
  const endpoints = endpointsOf(ctx, session);
  const list =
    endpoints.length === 0
      ? `<p class="card">No endpoints yet.${can(session, "ManageEndpoint") ? " Add one below to start receiving webhooks." : ""}</p>`
      : endpoints.map((e) => renderEndpoint(session, e, view.reveal === e.id, eventTypes)).join("");
  const body = `<header><h1>Webhooks — ${escapeHtml(app.name)}</h1>
<p>Application <code>${escapeHtml(app.uid ?? app.id)}</code>${session.readOnly ? ' · <span class="badge off">read only</span>' : ""}</p></header>
<main>
${view.notice ? `<p class="notice" role="status">${escapeHtml(view.notice)}</p>` : ""}
${view.error ? `<p class="error" role="alert">${escapeHtml(view.error)}</p>` : ""}
<section id="endpoints" aria-labelledby="endpoints-h"><h2 id="endpoints-h">Endpoints</h2>
${list}
${can(session, "ManageEndpoint") ? renderAddForm(eventTypes, view.form) : ""}
</section>
<section id="activity" aria-labelledby="activity-h">${renderActivity(ctx, session)}</section>
<noscript><p><a href="/portal">Refresh the page</a> to see new messages.</p></noscript>
</main>`;
  return portalDocument(`Webhooks — ${app.name}`, body, view.nonce, SCRIPT);
}
