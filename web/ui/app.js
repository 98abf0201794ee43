// trellis UI: plain JavaScript, no build step. Everything comes from /api/v1;
// the DOM is built with textContent only (no innerHTML of data).
"use strict";

const STATES = ["none", "scheduled", "queued", "running", "deferred", "success", "failed", "up_for_retry", "upstream_failed", "skipped", "removed"];
const GLYPH = { success: "✓", failed: "✕", running: "▶", deferred: "‖", queued: "…", scheduled: "·", up_for_retry: "↻", upstream_failed: "!", skipped: "–", removed: "∅", none: "" };
const RUN_STATES = ["queued", "running", "success", "failed"];

let session = null;      // {name, role, authRequired, csrfToken}
let current = null;      // {refresh(), destroy()} of the view on screen
let refreshTimer = 0;

// ---- DOM helpers ----
// h builds an element: attrs set attributes ("text" the text, "class" the
// class, "on…" listeners, "style" an object of CSSOM properties: the CSP
// forbids style attributes), children are nodes or text.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "style") Object.assign(el.style, v);
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (id) => document.getElementById(id);
const enc = encodeURIComponent;
const SVGNS = "http://www.w3.org/2000/svg";

// ---- time zones: every time is shown with its zone, in UTC (the default),
// the DAG's zone or the browser's, as the header's switch says (kept in
// localStorage) ----
const TZ_KEY = "trellis.tz";
const LOCAL_ZONE = (() => { try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"; } catch (e) { return "UTC"; } })();
let tzMode = (() => { try { const m = localStorage.getItem(TZ_KEY); return ["utc", "dag", "local"].includes(m) ? m : "utc"; } catch (e) { return "utc"; } })();
let dagZone = "";            // the zone of the DAG on screen ("" when none)
const dagInfos = new Map();  // DAG id -> its detail (zone, definition), as last read
const zones = new Map();     // DAG id -> its time zone

// zoneOf is the zone times are shown in; dz is the zone of the DAG the time
// belongs to, when it is not the one on screen.
function zoneOf(dz) {
  if (tzMode === "local") return LOCAL_ZONE;
  if (tzMode === "dag") return dz || dagZone || "UTC";
  return "UTC";
}
const formats = new Map();
function formatter(zone) {
  let f = formats.get(zone);
  if (!f) {
    const o = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", timeZoneName: "short" };
    try { f = new Intl.DateTimeFormat("en-US", Object.assign({ timeZone: zone }, o)); }
    catch (e) { f = new Intl.DateTimeFormat("en-US", Object.assign({ timeZone: "UTC" }, o)); }
    formats.set(zone, f);
  }
  return f;
}
function timeParts(s, dz) {
  const p = {};
  for (const x of formatter(zoneOf(dz)).formatToParts(new Date(s))) p[x.type] = x.value;
  return p;
}
// fmtTime is a time as 2024-01-31 03:00:00 UTC (or CET, GMT+2, ...).
function fmtTime(s, dz) {
  if (!s) return "–";
  const p = timeParts(s, dz);
  return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second + " " + p.timeZoneName;
}
// fmtShort is a time as 01-31 03:00 UTC, for axes.
function fmtShort(s, dz) {
  if (!s) return "–";
  const p = timeParts(s, dz);
  return p.month + "-" + p.day + " " + p.hour + ":" + p.minute + " " + p.timeZoneName;
}
function zoneLabel(zone) { return zone === "UTC" ? "UTC" : zone.replace(/_/g, " "); }
function setTzMode(m) {
  tzMode = m;
  try { localStorage.setItem(TZ_KEY, m); } catch (e) { /* private mode: not kept */ }
  showTzSwitch();
  if (current && current.refresh) current.refresh().catch(showError);
}
function showTzSwitch() {
  for (const b of document.querySelectorAll("#tz button")) b.setAttribute("aria-pressed", b.dataset.tz === tzMode ? "true" : "false");
  const d = $("tz-dag");
  d.textContent = dagZone ? "DAG: " + zoneLabel(dagZone) : "DAG zone";
  d.title = dagZone ? "Times in this DAG's time zone, " + dagZone : "Times in each DAG's own time zone";
  $("tz-local").title = "Times in this browser's time zone, " + LOCAL_ZONE;
}
// dagInfo is a DAG's detail (its zone, its definition), read once: info
// when the view has just read it.
async function dagInfo(dag, info) {
  if (info) dagInfos.set(dag, info);
  if (!dagInfos.has(dag)) dagInfos.set(dag, await api("GET", "/dags/" + enc(dag)));
  zones.set(dag, dagInfos.get(dag).timezone || "UTC");
  return dagInfos.get(dag);
}
// showDAG makes a DAG the one on screen: its zone is the switch's "DAG" zone.
function showDAG(info) {
  dagZone = info.timezone || "UTC";
  showTzSwitch();
}

function fmtDur(sec) {
  if (sec === undefined || sec === null) return "–";
  if (sec < 0.0005) return "< 1 ms";
  if (sec < 1) return (sec * 1000).toFixed(0) + " ms";
  if (sec < 120) return sec.toFixed(1) + " s";
  if (sec < 7200) return (sec / 60).toFixed(1) + " min";
  return (sec / 3600).toFixed(1) + " h";
}
function pill(state) { return h("span", { class: "pill st-" + state, text: state.replace(/_/g, " ") }); }
function can() { return session && session.role === "operator"; }
function flash(msg, ok) {
  const f = $("flash");
  f.textContent = msg;
  f.className = "flash" + (ok ? " ok" : "");
  f.hidden = false;
  flash.keep = true; // survives the navigation the action may cause
  clearTimeout(flash.t);
  flash.t = setTimeout(() => { f.hidden = true; }, ok ? 4000 : 10000);
}
// sr is text for screen readers only.
function sr(text) { return h("span", { class: "sr", text }); }

// ---- API ----
class APIError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || ("HTTP " + status));
    this.status = status; this.code = e.code; this.field = e.field; this.fields = e.fields;
  }
}
async function api(method, path, body) {
  const opts = { method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  if (method !== "GET" && session && session.csrfToken) opts.headers["X-CSRF-Token"] = session.csrfToken;
  const res = await fetch("/api/v1" + path, opts);
  const type = res.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const err = new APIError(res.status, data);
    if (res.status === 401 && path !== "/session") { session = null; showLogin(err.message); }
    throw err;
  }
  return data;
}

// ---- live updates: Server-Sent Events, else polling a cheap counter ----
let es = null, pollTimer = 0, lastSeq = -1;
function setLive(mode) {
  const l = $("live");
  l.className = "live " + mode;
  l.textContent = mode === "on" ? "live" : mode === "poll" ? "polling" : "offline";
}
function startLive() {
  if (es || pollTimer) return;
  if (!window.EventSource) return startPolling();
  es = new EventSource("/api/v1/events");
  let failures = 0;
  es.addEventListener("open", () => { failures = 0; setLive("on"); });
  es.addEventListener("change", (ev) => { onChange(JSON.parse(ev.data)); });
  es.addEventListener("resync", () => scheduleRefresh());
  es.addEventListener("error", () => {
    setLive("off");
    if (++failures >= 3) { es.close(); es = null; startPolling(); }
  });
}
function startPolling() {
  setLive("poll");
  const tick = async () => {
    try {
      const c = await api("GET", "/changes");
      if (lastSeq >= 0 && c.seq !== lastSeq) scheduleRefresh();
      lastSeq = c.seq;
      setLive("poll");
    } catch (e) { setLive("off"); }
    pollTimer = setTimeout(tick, 3000);
  };
  tick();
}
function onChange(ev) {
  if (current && current.onEvent) current.onEvent(ev);
  if (!current || !current.dag || current.dag === ev.dagId) scheduleRefresh();
}
function scheduleRefresh() {
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = 0;
    if ($("dialog").open) return scheduleRefreshLater();
    if (current && current.refresh) current.refresh().catch(showError);
  }, 250); // later than the server's cache staleness bound (web/cache.go)
}
function scheduleRefreshLater() { setTimeout(scheduleRefresh, 1000); }

function showError(e) {
  if (e instanceof APIError && e.status === 401) return;
  flash(e.message || String(e));
}

// ---- session ----
async function loadSession() {
  try {
    session = await api("GET", "/session");
  } catch (e) {
    if (e.status === 401) return false;
    throw e;
  }
  $("who").textContent = session.authRequired ? session.name + " (" + session.role + ")" : "";
  $("logout").hidden = !session.authRequired;
  return true;
}
function showLogin(msg) {
  if (current && current.destroy) current.destroy();
  current = { refresh: async () => {} };
  const main = $("main");
  const err = h("p", { class: "error", id: "login-error", role: "alert", text: msg && !/sign in:/.test(msg) ? msg : "" });
  const input = h("input", { type: "password", id: "token", name: "token", autocomplete: "current-password", required: true, "aria-describedby": "login-error token-hint" });
  const form = h("form", { class: "login", onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        session = await api("POST", "/session", { token: input.value });
        input.value = "";
        await loadSession();
        startLive();
        route();
      } catch (e) { err.textContent = e.message; input.focus(); }
    } },
    h("h1", { text: "Sign in to trellis" }),
    h("label", { for: "token", text: "Access token" }), input,
    h("p", { class: "hint", id: "token-hint", text: "A token from this deployment's tokens file (viewer or operator). It is exchanged for a session cookie and not stored by the page." }),
    err,
    h("p", {}, h("button", { class: "btn primary", type: "submit", text: "Sign in" })));
  main.replaceChildren(form);
  input.focus();
}


// ---- router ----
function route() {
  if (flash.keep) flash.keep = false; else $("flash").hidden = true;
  if (current) { current.gone = true; if (current.destroy) current.destroy(); }
  current = null;
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const q = new URLSearchParams(query || "");
  const p = path.split("/").filter(Boolean).map(decodeURIComponent);
  const section = ["audit", "pools", "assets"].includes(p[0]) ? p[0] : "dags";
  for (const n of ["dags", "assets", "pools", "audit"]) {
    if (n === section) $("nav-" + n).setAttribute("aria-current", "page"); else $("nav-" + n).removeAttribute("aria-current");
  }
  dagZone = p[0] === "dags" && p[1] ? zones.get(p[1]) || "" : "";
  showTzSwitch();
  let v;
  if (p.length === 0) v = dagsView(q);
  else if (p[0] === "audit") v = auditView();
  else if (p[0] === "pools") v = poolsView();
  else if (p[0] === "assets") v = assetsView(q.get("uri") || "");
  else if (p[0] === "dags" && p.length === 2) v = gridView(p[1]);
  else if (p[0] === "dags" && p[2] === "graph") v = graphView(p[1], q.get("run") || "", q.get("expand") || "");
  else if (p[0] === "dags" && p[2] === "calendar" && p.length === 3) v = calendarView(p[1]);
  else if (p[0] === "dags" && p[2] === "durations" && p.length === 3) v = durationsView(p[1]);
  else if (p[0] === "dags" && p[2] === "runs" && p.length === 4) v = runView(p[1], p[3]);
  else if (p[0] === "dags" && p[2] === "runs" && p[4] === "tasks" && p[6] === "instances") v = instancesView(p[1], p[3], p[5], Number(q.get("offset")) || 0);
  else if (p[0] === "dags" && p[2] === "runs" && p[4] === "tasks") v = tryView(p[1], p[3], p[5], p[7] ? Number(p[7]) : 0, q.has("map_index") ? Number(q.get("map_index")) : -1);
  else v = { refresh: async () => { $("main").replaceChildren(h("h1", { text: "Not found" }), h("p", {}, h("a", { href: "#/", text: "Back to the DAGs" }))); } };
  current = v;
  v.refresh().then(() => { if (v.focus !== false) { const h1 = $("main").querySelector("h1"); if (h1) { h1.tabIndex = -1; h1.focus({ preventScroll: true }); } } v.focus = false; }).catch(showError);
}

function legend(states, label) {
  return h("ul", { class: "legend", "aria-label": label || "Legend of task states" },
    (states || STATES).map((s) => h("li", {}, h("span", { class: "sw st-" + s, "aria-hidden": "true", text: GLYPH[s] || "" }), s.replace(/_/g, " "))));
}

function dagTabs(dag, which, run) {
  const g = run ? "?run=" + enc(run) : "";
  const tab = (key, href, text) => h("a", { href: "#/dags/" + enc(dag) + href, "aria-current": which === key ? "page" : null, text });
  return h("nav", { class: "tabs", "aria-label": "DAG views" },
    tab("grid", "", "Grid"), tab("graph", "/graph" + g, "Graph"), tab("calendar", "/calendar", "Calendar"), tab("durations", "/durations", "Task durations"));
}
function crumbs(dag, ...rest) {
  return h("div", { class: "crumbs" }, h("a", { href: "#/", text: "DAGs" }), " / ",
    rest.length ? [h("a", { href: "#/dags/" + enc(dag), text: dag }), rest.map((r) => [" / ", r])] : dag);
}

// ---- DAG list: search, tag filter, run counts, next run ----
function dagsView(q) {
  let search = q.get("search") || "";
  let tag = q.get("tag") || "";
  let data = null;
  const input = h("input", { type: "search", id: "dag-search", name: "search", autocomplete: "off", spellcheck: "false", placeholder: "id or description",
    "aria-describedby": "dag-count", oninput: () => { search = input.value; keep(); show(); } });
  input.value = search;
  const chips = h("div", { class: "chips", role: "group", "aria-labelledby": "tags-label" });
  const count = h("p", { class: "hint", id: "dag-count", role: "status" });
  const table = h("div", { class: "scroll" });
  // The filters live in the URL (#/?search=…&tag=…), so a link shows the same
  // list; replaceState keeps typing from adding history entries.
  const keep = () => {
    const p = new URLSearchParams();
    if (search) p.set("search", search);
    if (tag) p.set("tag", tag);
    const s = p.toString();
    history.replaceState(null, "", "#/" + (s ? "?" + s : ""));
  };
  const setTag = (t) => { tag = tag === t ? "" : t; keep(); show(); };
  const matches = (d) => {
    const s = search.trim().toLowerCase();
    if (s && !d.id.toLowerCase().includes(s) && !(d.description || "").toLowerCase().includes(s)) return false;
    return !tag || (d.tags || []).includes(tag);
  };
  function show() {
    if (!data) return;
    // A refresh rebuilds the chips and rows: keep the focus on the same control.
    const f = document.activeElement;
    let again = null;
    if (f && chips.contains(f) && f.dataset.tag) again = 'button.chip[data-tag="' + CSS.escape(f.dataset.tag) + '"]';
    else if (f && table.contains(f) && f.getAttribute("aria-label")) again = f.tagName.toLowerCase() + '[aria-label="' + CSS.escape(f.getAttribute("aria-label")) + '"]';
    const tags = data.tags.includes(tag) || !tag ? data.tags : data.tags.concat([tag]);
    chips.replaceChildren(...tags.map((t) => h("button", { type: "button", class: "chip", "aria-pressed": t === tag ? "true" : "false", "data-tag": t, text: t, onclick: () => setTag(t) })));
    const shown = data.dags.filter(matches);
    count.textContent = shown.length === data.all ? data.all + " DAG(s)" : shown.length + " of " + data.all + " DAG(s) match";
    const rows = shown.map((d) => dagRow(d, setTag));
    table.replaceChildren(h("table", { class: "dags" },
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "DAG" }), h("th", { scope: "col", class: "hide-sm", text: "Schedule" }),
        h("th", { scope: "col", class: "hide-sm", text: "State" }), h("th", { scope: "col", title: "States of the latest 25 runs" }, "Runs ", h("span", { class: "hint", text: "(latest 25)" })),
        h("th", { scope: "col", class: "hide-sm", text: "Recent runs" }), h("th", { scope: "col", class: "hide-sm", text: "Next run" }),
        h("th", { scope: "col", text: "Actions" }))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: "7", class: "muted", text: "No DAG matches." })))));
    if (again) { const el = $("main").querySelector(again); if (el) el.focus({ preventScroll: true }); }
  }
  const v = {
    refresh: async () => {
      const got = await api("GET", "/dags");
      if (v.gone) return;
      data = got;
      for (const d of data.dags) zones.set(d.id, d.timezone);
      if (!input.isConnected) {
        $("main").replaceChildren(
          h("h1", { text: "DAGs" }),
          h("div", { class: "toolbar" },
            h("div", { class: "field" }, h("label", { for: "dag-search", text: "Search" }), input),
            h("div", { class: "field" }, h("span", { class: "label", id: "tags-label", text: "Tags" }), chips),
            h("div", { class: "field runs-legend" }, h("span", { class: "label", text: "Runs" }),
              h("ul", { class: "counts", "aria-label": "The run states counted, in order" }, RUN_STATES.map((s) => h("li", { class: "cnt key st-" + s, text: s }))))),
          count, table);
      }
      show();
    },
  };
  return v;
}

function runCounts(d) {
  const c = d.runCounts || { of: 0 };
  const label = c.of ? "Latest " + c.of + " runs: " + RUN_STATES.map((s) => c[s] + " " + s).join(", ") : "No runs";
  return h("ul", { class: "counts", "aria-label": label, title: label },
    RUN_STATES.map((s) => h("li", { class: "cnt " + (c[s] ? "st-" + s : "zero"), "data-state": s }, h("span", { text: String(c[s] || 0) }), sr(" " + s))));
}

function dagRow(d, setTag) {
  const runs = d.latestRuns.slice().reverse().map((r) =>
    h("a", { href: "#/dags/" + enc(d.id) + "/runs/" + enc(r.runId), class: "dot st-" + r.state, title: r.runId + ": " + r.state, "aria-label": "run " + r.runId + ": " + r.state }));
  const pause = h("button", { type: "button", class: "btn", disabled: !can(), "aria-pressed": d.paused ? "true" : "false",
    text: d.paused ? "Unpause" : "Pause", "aria-label": (d.paused ? "Unpause " : "Pause ") + d.id,
    onclick: async () => {
      try { await api("PATCH", "/dags/" + enc(d.id), { paused: !d.paused }); flash((d.paused ? "Unpaused " : "Paused ") + d.id, true); current.refresh(); }
      catch (e) { showError(e); }
    } });
  const trig = h("button", { type: "button", class: "btn primary", disabled: !can(), text: "Trigger", "aria-label": "Trigger " + d.id, onclick: () => triggerDialog(d) });
  const tags = (d.tags || []).length ? h("div", { class: "tags" }, d.tags.map((t) => h("button", { type: "button", class: "chip small", text: t,
    "aria-label": "Show only the DAGs tagged " + t, onclick: () => setTag(t) }))) : null;
  return h("tr", { "data-dag": d.id },
    h("th", { scope: "row" }, h("a", { href: "#/dags/" + enc(d.id), text: d.id }), d.paused ? h("span", { class: "pill show-sm", text: "paused" }) : null,
      d.description ? h("div", { class: "hint", text: d.description }) : null, tags),
    h("td", { class: "hide-sm" }, d.schedule ? h("code", { text: d.schedule }) : h("span", { class: "muted", text: "manual" }),
      d.schedule ? h("div", { class: "hint", text: zoneLabel(d.timezone || "UTC") }) : null),
    h("td", { class: "hide-sm" }, d.paused ? h("span", { class: "pill", text: "paused" }) : h("span", { class: "muted", text: "active" })),
    h("td", {}, runCounts(d)),
    h("td", { class: "hide-sm" }, h("div", { class: "runs" }, runs.length ? runs : h("span", { class: "muted", text: "no runs" }))),
    h("td", { class: "hide-sm next" }, d.nextRun ? [h("span", { class: "time", text: fmtTime(d.nextRun, d.timezone) }), h("div", { class: "hint", text: "created " + fmtTime(d.nextRunAt, d.timezone) })]
      : h("span", { class: "muted", text: d.paused && d.schedule ? "paused" : "–" })),
    h("td", {}, h("div", { class: "actions" }, trig, pause)));
}

// ---- trigger: a form built from the DAG's params (GET /dags/{dag}/params, a JSON Schema) ----
async function triggerDialog(d) {
  let schema;
  try { schema = await api("GET", "/dags/" + enc(d.id) + "/params"); } catch (e) { showError(e); return; }
  const dlg = $("dialog");
  const required = new Set(schema.required || []);
  const fields = Object.entries(schema.properties || {}).map(([name, s], i) => paramField(name, s, required.has(name), i));
  const err = h("p", { class: "error", id: "conf-error", role: "alert" });
  const formConf = () => {
    const conf = {};
    for (const f of fields) { const v = f.read(); if (v !== undefined) conf[f.name] = v; }
    return conf;
  };
  const ta = h("textarea", { id: "conf", name: "conf", "aria-describedby": "conf-hint conf-error", spellcheck: "false" });
  const raw = h("details", { class: "raw", ontoggle: () => {
      if (!raw.open) return;
      try { ta.value = JSON.stringify(formConf(), null, 2); } catch (e) { ta.value = "{}"; }
    } },
    h("summary", { text: "Advanced: the conf as JSON" }),
    h("label", { for: "conf", text: "Conf (a JSON object; while this is open it is sent instead of the fields above)" }), ta);
  const form = h("form", { method: "dialog", id: "trigger-form", novalidate: true, onsubmit: async (ev) => {
      ev.preventDefault();
      err.textContent = "";
      for (const f of fields) f.setError("");
      let conf;
      if (raw.open) {
        try { conf = ta.value.trim() ? JSON.parse(ta.value) : {}; }
        catch (e) { err.textContent = "conf is not valid JSON: " + e.message; ta.focus(); return; }
      } else {
        try { conf = formConf(); }
        catch (e) { if (e.param) { e.param.setError(e.message); e.param.input.focus(); return; } throw e; }
      }
      try {
        const run = await api("POST", "/dags/" + enc(d.id) + "/runs", { conf });
        dlg.close();
        flash("Triggered " + run.runId, true);
        location.hash = "#/dags/" + enc(d.id);
      } catch (e) {
        // One message per bad field, next to its input; the others above the buttons.
        const byName = new Map(fields.map((f) => [f.name, f]));
        const list = e.fields || (e.field ? [{ field: e.field, message: e.message }] : []);
        let first = null;
        const rest = [];
        for (const fe of list) {
          const f = !raw.open && fe.field.startsWith("conf.") ? byName.get(fe.field.slice(5)) : null;
          if (f) { f.setError(fe.message); first = first || f; }
          else rest.push(fe.field.startsWith("conf.") ? fe.field.slice(5) + " " + fe.message : fe.message);
        }
        err.textContent = first ? "Some params need a change: see the marked fields." + (rest.length ? " " + rest.join("; ") : "") : e.message;
        (first ? first.input : raw.open ? ta : err).focus();
      }
    } },
    h("h2", { id: "dialog-title", text: "Trigger " + d.id }),
    fields.length ? h("div", { class: "params" }, fields.map((f) => f.el)) : null,
    h("p", { class: "hint", id: "conf-hint", text: fields.length ? "Fields start at the params' defaults." : "This DAG declares no params: its runs take no conf." }),
    fields.length ? raw : null,
    err,
    h("div", { class: "actions" }, h("button", { class: "btn primary", type: "submit", text: "Trigger run" }),
      h("button", { class: "btn", type: "button", text: "Cancel", onclick: () => dlg.close() })));
  err.tabIndex = -1;
  dlg.replaceChildren(form);
  dlg.showModal();
  (fields.length ? fields[0].input : form.querySelector("button[type=submit]")).focus();
}

// paramField is the input of one param, from its JSON Schema: a select for an
// enum, a checkbox for a boolean, a number input (with its bounds) for a number,
// a text input for a string, JSON text otherwise. read() returns its value
// (undefined: not set, the server applies the default or says it is required).
function paramField(name, s, required, i) {
  const id = "param-" + i;
  const type = [].concat(s.type || []).find((t) => t !== "null") || "";
  const has = Object.prototype.hasOwnProperty.call(s, "default");
  const def = s.default;
  const facts = [type === "array" && s.items ? "array of " + s.items.type : type || "any JSON value"];
  if (s.minimum !== undefined && s.maximum !== undefined) facts.push("from " + s.minimum + " to " + s.maximum);
  else if (s.minimum !== undefined) facts.push("at least " + s.minimum);
  else if (s.maximum !== undefined) facts.push("at most " + s.maximum);
  if (!["string", "integer", "number", "boolean"].includes(type) && !s.enum) facts.push("as JSON");
  const hint = h("span", { class: "hint", id: id + "-hint", text: (s.description ? s.description + " · " : "") + facts.join(", ") });
  const msg = h("span", { class: "error field-error", id: id + "-error" });
  const common = { id, name, "aria-describedby": id + "-hint " + id + "-error", required, "data-param": name };
  const bad = (f, message) => Object.assign(new Error(message), { param: f });
  let input, read;
  if (s.enum) {
    input = h("select", common, required || !has ? h("option", { value: "", text: required ? "(choose one)" : "(default)" }) : null,
      s.enum.map((v, k) => h("option", { value: String(k), selected: has && JSON.stringify(v) === JSON.stringify(def), text: typeof v === "string" ? v : JSON.stringify(v) })));
    read = () => (input.value === "" ? undefined : s.enum[Number(input.value)]);
  } else if (type === "boolean") {
    input = h("input", Object.assign({ type: "checkbox", checked: def === true }, common));
    read = () => input.checked;
  } else if (type === "integer" || type === "number") {
    input = h("input", Object.assign({ type: "number", step: type === "integer" ? "1" : "any", min: s.minimum, max: s.maximum,
      inputmode: type === "integer" ? "numeric" : "decimal" }, common));
    if (typeof def === "number") input.value = String(def);
    read = () => {
      if (input.validity.badInput) throw bad(f, "must be a number");
      return input.value.trim() === "" ? undefined : Number(input.value);
    };
  } else if (type === "string") {
    input = h("input", Object.assign({ type: "text", spellcheck: "false" }, common));
    input.value = typeof def === "string" ? def : "";
    read = () => (input.value === "" && !has ? undefined : input.value);
  } else {
    input = h("input", Object.assign({ type: "text", class: "json", spellcheck: "false" }, common));
    input.value = has ? JSON.stringify(def) : "";
    read = () => {
      const t = input.value.trim();
      if (t === "") return undefined;
      try { return JSON.parse(t); } catch (e) { throw bad(f, "is not valid JSON: " + e.message); }
    };
  }
  const label = h("label", { for: id, class: type === "boolean" ? "inline" : null }, type === "boolean" ? input : null, h("code", { text: name }),
    required ? h("span", { class: "req", text: " (required)" }) : null);
  const f = {
    name, input, read,
    el: h("div", { class: "param" }, label, type === "boolean" ? null : input, hint, msg),
    setError(m) {
      msg.textContent = m ? name + " " + m : "";
      if (m) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
    },
  };
  return f;
}


// ---- a DAG's header: doc, tags, zone, schedule, next run, version ----
function dagHeader(info) {
  const facts = [
    ["Schedule", info.schedule ? h("code", { text: info.schedule }) : h("span", { class: "muted", text: "manual only" })],
    ["Time zone", h("span", { id: "dag-zone", text: info.timezone || "UTC" })],
    ["Next run", info.nextRun ? h("span", { id: "next-run" }, h("span", { class: "time", text: fmtTime(info.nextRun) }),
      h("span", { class: "hint", text: " created " + fmtTime(info.nextRunAt) })) : h("span", { id: "next-run", class: "muted", text: info.paused && info.schedule ? "none while paused" : "–" })],
    ["Version", h("code", { id: "dag-version", text: info.version || "–" })],
    ["Tasks", String(info.tasks)],
    ["Tags", (info.tags || []).length ? h("span", { class: "tags", id: "dag-tags" }, info.tags.map((t) => h("a", { class: "chip small", href: "#/?tag=" + enc(t), text: t }))) : h("span", { class: "muted", text: "none" })],
  ];
  const doc = info.definition && info.definition.doc;
  return h("section", { class: "dag-head", "aria-label": "About " + info.id },
    h("div", { class: "actions" },
      info.paused ? h("span", { class: "pill", text: "paused" }) : null,
      info.description ? h("span", { class: "desc", text: info.description }) : null,
      h("button", { type: "button", class: "btn primary", disabled: !can(), text: "Trigger", onclick: () => triggerDialog(info) })),
    h("dl", { class: "facts" }, facts.map(([k, v]) => h("div", {}, h("dt", { text: k }), h("dd", {}, v)))),
    doc ? h("details", { class: "doc", open: doc.length < 600 }, h("summary", { text: "Documentation" }), h("pre", { id: "dag-doc", text: doc })) : null);
}

// runSeconds is a run's duration, or how long it has run so far.
function runSeconds(r) {
  if (r.duration !== undefined && r.duration !== null) return r.duration;
  if (r.started) return Math.max(0, (Date.now() - Date.parse(r.started)) / 1000);
  return null;
}

// ---- task groups: the groups of a DAG drawn collapsed, in the grid and in
// the graph alike, kept per DAG in localStorage (trellis.collapsed.<dag>, a
// JSON array of group ids); a group not in it is expanded ----
const COLLAPSED_KEY = "trellis.collapsed.";
function collapsedOf(dag) {
  try {
    const v = JSON.parse(localStorage.getItem(COLLAPSED_KEY + dag) || "[]");
    return new Set(Array.isArray(v) ? v.filter((x) => typeof x === "string") : []);
  } catch (e) { return new Set(); }
}
function keepCollapsed(dag, set) {
  try {
    if (set.size) localStorage.setItem(COLLAPSED_KEY + dag, JSON.stringify([...set].sort()));
    else localStorage.removeItem(COLLAPSED_KEY + dag);
  } catch (e) { /* private mode: not kept */ }
}
// shortName is a task's or group's id without its group's prefix.
function shortName(id, group) { return group && id.startsWith(group + ".") ? id.slice(group.length + 1) : id; }
// refocus focuses what sel finds in main, after a rebuild.
function refocus(sel) {
  if (!sel) return;
  const el = $("main").querySelector(sel);
  if (el) el.focus({ preventScroll: true });
}
// focusedGroupControl is a selector of the group control that has the focus
// (a rebuild replaces it), or "".
function focusedGroupControl() {
  const f = document.activeElement;
  if (!f || f.tagName !== "BUTTON" || !$("main").contains(f) || !f.dataset.group) return "";
  return f.tagName.toLowerCase() + "." + [...f.classList].map((c) => CSS.escape(c)).join(".") + '[data-group="' + CSS.escape(f.dataset.group) + '"]';
}
const GROUP_RULE = "A group's state in a run is the first of these that one of its tasks has (Airflow's rule): failed, upstream failed, up for retry, queued, scheduled, deferred, running, none, success, skipped, removed.";

// ---- grid: runs as columns (with their durations as bars above), tasks as
// rows; a task group is a row with a disclosure button and its summary state
// per run, its tasks (and nested groups) under it, indented ----
function gridView(dag) {
  let last = null; // the grid and the DAG's detail on screen
  const runHref = (r) => "#/dags/" + enc(dag) + "/runs/" + enc(r.runId);
  const setGroups = (ids, collapse) => {
    const set = collapsedOf(dag);
    for (const id of ids) if (collapse) set.add(id); else set.delete(id);
    keepCollapsed(dag, set);
    const again = focusedGroupControl();
    const box = $("main").querySelector(".grid-box");
    if (box && last) box.replaceChildren(gridTable());
    refocus(again);
  };
  function groupRow(gr, open) {
    const g = last.g;
    const toggle = h("button", { type: "button", class: "disclosure", "aria-expanded": open ? "true" : "false", "data-group": gr.id,
      title: (open ? "Collapse" : "Expand") + " the group " + gr.id, onclick: () => setGroups([gr.id], open) },
      h("span", { class: "chev", "aria-hidden": "true", text: open ? "▾" : "▸" }),
      gr.parent ? sr(gr.parent + ".") : null, shortName(gr.id, gr.parent),
      h("span", { class: "count", text: " " + gr.tasks + (gr.tasks === 1 ? " task" : " tasks") }));
    return h("tr", { class: "group", "data-group": gr.id },
      h("th", { scope: "row", class: "task", style: { paddingLeft: (gr.depth * 1.1 + 0.1).toFixed(1) + "em" } }, toggle),
      g.runs.map((r, c) => {
        const s = gr.states[c] || "none";
        const label = "group " + gr.id + " in run " + r.runId + ": " + s.replace(/_/g, " ") + " (of its " + gr.tasks + " tasks)";
        return h("td", {}, h("a", { class: "cell group st-" + s, href: runHref(r), "data-group": gr.id, "data-run": r.runId, "data-state": s,
          title: gr.id + " · " + r.runId + " · " + s + " (group)", "aria-label": label, text: GLYPH[s] }));
      }));
  }
  function taskRow(t, i, depth) {
    const g = last.g;
    return h("tr", { "data-task": t.id },
      h("th", { scope: "row", class: "task", title: t.id, style: g.groups ? { paddingLeft: (depth * 1.1 + 0.1).toFixed(1) + "em" } : null },
        g.groups ? h("span", { class: "chev", "aria-hidden": "true" }) : null,
        t.group ? sr(t.group + ".") : null, shortName(t.id, t.group),
        t.setup ? h("span", { class: "role", text: "setup" }) : null, t.teardown ? h("span", { class: "role", text: "teardown" }) : null,
        t.mapped ? h("span", { class: "role map", title: "mapped: one task instance per element of a list", text: "[ ]" }) : null),
      g.runs.map((r, c) => {
        const cell = g.cells[i][c];
        const s = cell.s || "none";
        const tasks = "#/dags/" + enc(dag) + "/runs/" + enc(r.runId) + "/tasks/" + enc(t.id);
        if (t.mapped) {
          // One cell for all the instances: their summary state; it opens
          // the drill-down into them.
          const n = cell.n || 0;
          const what = n ? s.replace(/_/g, " ") + " (summary of " + n + " mapped instance" + (n === 1 ? "" : "s") + ")" : s.replace(/_/g, " ") + " (not expanded)";
          return h("td", {}, h("a", { class: "cell mapped st-" + s, href: n ? tasks + "/instances" : tasks, "data-task": t.id, "data-run": r.runId, "data-state": s,
            "data-mapped": String(n), title: t.id + " [" + n + "] · " + r.runId + " · " + what, "aria-label": t.id + " in run " + r.runId + ": " + what, text: GLYPH[s] }));
        }
        const href = tasks + (cell.t ? "/tries/" + cell.t : "");
        return h("td", {}, h("a", { class: "cell st-" + s, href, "data-task": t.id, "data-run": r.runId, "data-state": s,
          title: t.id + " · " + r.runId + " · " + s, "aria-label": t.id + " in run " + r.runId + ": " + s.replace(/_/g, " "), text: GLYPH[s] }));
      }));
  }
  function gridTable() {
    const g = last.g;
    const groups = g.groups || [];
    const byId = new Map(groups.map((x) => [x.id, x]));
    const collapsed = collapsedOf(dag);
    const hidden = (id) => { for (let x = id; x; x = (byId.get(x) || {}).parent) if (collapsed.has(x)) return true; return false; };
    const starts = new Map(); // row -> the groups whose first task it is, outer first
    for (const gr of groups) starts.set(gr.row, (starts.get(gr.row) || []).concat([gr]));
    const secs = g.runs.map(runSeconds);
    const top = Math.max(0, ...secs.filter((x) => x !== null));
    const bars = h("tr", { class: "durations" },
      h("th", { scope: "row", class: "task" }, h("span", { class: "axis-label", text: "Run duration" }), h("span", { class: "hint", id: "dur-max", text: "max " + fmtDur(top) })),
      g.runs.map((r, c) => {
        const label = "run " + r.runId + ": " + r.state + ", " + (secs[c] === null ? "not started" : fmtDur(secs[c]) + (r.duration === undefined ? " so far" : ""));
        const bar = h("a", { class: "dbar st-" + r.state, href: runHref(r), title: label, "aria-label": label, "data-run": r.runId,
          style: { height: (secs[c] === null || top === 0 ? 0 : Math.max(3, 100 * secs[c] / top)).toFixed(1) + "%" } });
        return h("td", {}, h("div", { class: "dcol" }, bar));
      }));
    const head = h("tr", { class: "labels" }, h("th", { scope: "col", class: "task" }, h("span", { class: "hint", text: "task \\ run" })),
      g.runs.map((r) => h("th", { scope: "col" }, h("a", { href: runHref(r), title: r.runId + " (" + r.state + ")",
        "aria-label": "run " + r.runId + ", " + r.state }, h("span", { class: "bar st-" + r.state }), " " + fmtShort(r.logicalDate)))));
    const body = [];
    g.tasks.forEach((t, i) => {
      for (const gr of starts.get(i) || []) if (!hidden(gr.parent)) body.push(groupRow(gr, !collapsed.has(gr.id)));
      if (!hidden(t.group)) body.push(taskRow(t, i, t.group && byId.has(t.group) ? byId.get(t.group).depth + 1 : 0));
    });
    return h("table", { class: "grid" + (groups.length ? " tree" : ""), "aria-label": "Runs (columns, oldest first, with their durations as bars) by task (rows" + (groups.length ? ", under their groups" : "") + ")",
      style: { minWidth: "calc(12em + " + (g.runs.length * 22) + "px)" } },
      h("thead", {}, bars, head), h("tbody", {}, body));
  }
  const v = {
    dag,
    refresh: async () => {
      const [g, info] = await Promise.all([api("GET", "/dags/" + enc(dag) + "/grid"), api("GET", "/dags/" + enc(dag))]);
      await dagInfo(dag, info);
      if (v.gone) return;
      showDAG(info);
      last = { g, info };
      const again = focusedGroupControl();
      const groups = g.groups || [];
      const all = groups.map((x) => x.id);
      $("main").replaceChildren(...[
        crumbs(dag),
        h("h1", { text: dag }),
        dagHeader(info),
        dagTabs(dag, "grid", g.runs.length ? g.runs[g.runs.length - 1].runId : ""),
        legend(),
        g.runs.length && groups.length ? h("div", { class: "actions group-actions" },
          h("button", { type: "button", class: "btn", id: "expand-all", text: "Expand all groups", onclick: () => setGroups(all, false) }),
          h("button", { type: "button", class: "btn", id: "collapse-all", text: "Collapse all groups", onclick: () => setGroups(all, true) }),
          h("span", { class: "hint", text: GROUP_RULE })) : null,
        g.runs.length === 0 ? h("p", { class: "muted", text: "No runs yet. Trigger one." }) : h("div", { class: "scroll grid-box" }, gridTable())].filter(Boolean));
      refocus(again);
    },
  };
  return v;
}

// ---- graph: a server-drawn SVG; collapsed task groups are one box each,
// toggled by the buttons above it or by clicking a group's box ----
function graphView(dag, run, expand) {
  const base = "#/dags/" + enc(dag) + "/graph" + (run ? "?run=" + enc(run) : "");
  let again = ""; // what to focus after the next rebuild
  const setGroups = (ids, collapse, focus) => {
    const set = collapsedOf(dag);
    for (const id of ids) if (collapse) set.add(id); else set.delete(id);
    keepCollapsed(dag, set);
    again = focus || focusedGroupControl();
    v.refresh().catch(showError);
  };
  const v = {
    dag,
    refresh: async () => {
      const [runs, info] = await Promise.all([api("GET", "/dags/" + enc(dag) + "/runs?limit=50"), dagInfo(dag)]);
      const def = info.definition || {};
      const groups = def.groups || [];
      const parent = new Map(groups.map((x) => [x.id, x.parent || ""]));
      // The groups kept collapsed that this DAG still has; a link with
      // expand=G (a group's box) expands G.
      const collapsed = collapsedOf(dag);
      for (const id of [...collapsed]) if (!parent.has(id)) collapsed.delete(id);
      if (expand) {
        collapsed.delete(expand);
        keepCollapsed(dag, collapsed);
        again = again || 'button.group-toggle[data-group="' + CSS.escape(expand) + '"]';
        expand = "";
        history.replaceState(null, "", base);
      }
      const q = new URLSearchParams();
      if (run) q.set("run", run);
      if (collapsed.size) q.set("collapsed", [...collapsed].sort().join(","));
      const qs = q.toString();
      const sel = h("select", { id: "graph-run", onchange: () => { location.hash = "#/dags/" + enc(dag) + "/graph?run=" + enc(sel.value); } },
        h("option", { value: "", text: "(no run: the definition only)" }),
        runs.runs.map((r) => h("option", { value: r.runId, selected: r.runId === run, text: r.runId + " – " + r.state })));
      const res = await fetch("/api/v1/dags/" + enc(dag) + "/graph.svg" + (qs ? "?" + qs : ""), { credentials: "same-origin" });
      if (!res.ok) throw new Error("graph: HTTP " + res.status);
      const doc = new DOMParser().parseFromString(await res.text(), "image/svg+xml");
      const svg = document.importNode(doc.documentElement, true);
      if (v.gone) return;
      showDAG(info);
      const box = h("div", { class: "graph", tabindex: "0", "aria-label": "Graph, scrollable" }, svg);
      // A collapsed group's box links to the graph with it expanded: done
      // here, keeping the scroll position.
      box.addEventListener("click", (ev) => {
        const a = ev.target.closest && ev.target.closest("a[data-group]");
        if (!a) return;
        ev.preventDefault();
        setGroups([a.dataset.group], false, 'button.group-toggle[data-group="' + CSS.escape(a.dataset.group) + '"]');
      });
      const counts = new Map();
      for (const t of def.tasks || []) for (let x = t.group; x; x = parent.get(x)) counts.set(x, (counts.get(x) || 0) + 1);
      const inside = (id) => { for (let x = parent.get(id); x; x = parent.get(x)) if (collapsed.has(x)) return x; return ""; };
      const toggles = groups.length ? h("div", { class: "group-toggles", role: "group", "aria-labelledby": "groups-label" },
        h("span", { class: "label", id: "groups-label", text: "Task groups" }),
        groups.map((gr) => {
          const open = !collapsed.has(gr.id), n = counts.get(gr.id) || 0, in_ = inside(gr.id);
          return h("button", { type: "button", class: "chip group-toggle", "aria-expanded": open ? "true" : "false", "data-group": gr.id, disabled: !!in_,
            title: in_ ? "Inside the collapsed group " + in_ : (open ? "Collapse " : "Expand ") + "the group " + gr.id + " (" + n + " tasks)",
            onclick: () => setGroups([gr.id], open) },
            h("span", { class: "chev", "aria-hidden": "true", text: open ? "▾" : "▸" }), gr.id, h("span", { class: "count", text: " " + n }, sr(n === 1 ? " task" : " tasks")));
        }),
        h("button", { type: "button", class: "btn", id: "graph-expand-all", text: "Expand all",
          onclick: () => setGroups(groups.map((x) => x.id), false, "#graph-expand-all") }),
        h("button", { type: "button", class: "btn", id: "graph-collapse-all", text: "Collapse all",
          onclick: () => setGroups(groups.map((x) => x.id), true, "#graph-collapse-all") })) : null;
      const old = $("main").querySelector(".graph");
      const keep = old ? [old.scrollLeft, old.scrollTop] : null;
      const focus = again || focusedGroupControl();
      again = "";
      $("main").replaceChildren(...[
        crumbs(dag, "graph"),
        h("h1", { text: dag + " – graph" }),
        dagTabs(dag, "graph", run),
        h("label", { for: "graph-run", text: "Colour by run" }), sel,
        legend(),
        h("p", { class: "hint", text: "Each box shows the task's kind (go, bash, pod, branch, short_circuit, sensor), its trigger rule when it is not all_success, and whether it is a setup or a teardown (the edge from a setup to its teardown is dashed)." +
          (groups.length ? " A collapsed task group is one box; click it, or its button, to expand it. " + GROUP_RULE : "") }),
        toggles,
        box].filter(Boolean));
      if (keep) { box.scrollLeft = keep[0]; box.scrollTop = keep[1]; }
      refocus(focus);
    },
  };
  return v;
}

// ---- calendar: a cell per day, coloured by that day's runs ----
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const WEEKDAYS = [["Mon", "Monday"], ["Tue", "Tuesday"], ["Wed", "Wednesday"], ["Thu", "Thursday"], ["Fri", "Friday"], ["Sat", "Saturday"], ["Sun", "Sunday"]];
function calendarView(dag) {
  const v = {
    dag,
    refresh: async () => {
      const info = await dagInfo(dag);
      const zone = zoneOf(info.timezone);
      const c = await api("GET", "/dags/" + enc(dag) + "/calendar?months=12&tz=" + enc(zone));
      if (v.gone) return;
      showDAG(info);
      const byDay = new Map(c.days.map((d) => [d.date, d]));
      const planned = new Set(c.planned);
      const [fy, fm] = c.from.split("-").map(Number);
      const [ty, tm] = c.today.split("-").map(Number);
      const months = [];
      for (let y = fy, m = fm; y < ty || (y === ty && m <= tm); m === 12 ? (y++, m = 1) : m++) months.push(calMonth(y, m, byDay, planned, c.today));
      const runs = c.days.reduce((n, d) => n + d.total, 0);
      const failedDays = c.days.filter((d) => d.failed > 0).length;
      $("main").replaceChildren(
        crumbs(dag, "calendar"),
        h("h1", { text: dag + " – calendar" }),
        dagTabs(dag, "calendar"),
        h("p", { class: "hint", id: "cal-summary" }, runs + " run(s) on " + c.days.length + " day(s) since " + c.from + (failedDays ? ", " + failedDays + " day(s) with a failed run" : "") +
          ". Days of the logical date in " + zoneLabel(c.timezone) + " (the time zone switch above)." + (c.truncated ? " Only the newest 10,000 runs are counted." : "")),
        h("ul", { class: "legend", "aria-label": "Legend of the calendar" },
          [["success", "all runs succeeded"], ["failed", "a run failed"], ["running", "a run is queued or running"]].map(([s, t]) => h("li", {}, h("span", { class: "sw st-" + s, "aria-hidden": "true" }), t)),
          h("li", {}, h("span", { class: "sw planned", "aria-hidden": "true" }), "planned"), h("li", {}, h("span", { class: "sw", "aria-hidden": "true" }), "no run")),
        h("div", { class: "calendar" }, months));
    },
  };
  return v;
}
function calMonth(y, m, byDay, planned, today) {
  const pad = (n) => String(n).padStart(2, "0");
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  const lead = (new Date(Date.UTC(y, m - 1, 1)).getUTCDay() + 6) % 7; // Monday first
  const cells = [];
  for (let k = 0; k < lead; k++) cells.push(h("td", { class: "pad" }));
  for (let d = 1; d <= days; d++) {
    const date = y + "-" + pad(m) + "-" + pad(d);
    const info = byDay.get(date);
    let label = d + " " + MONTHS[m - 1] + " " + y + ": ";
    let cls = "day";
    if (info) {
      label += info.total + " run(s), " + RUN_STATES.filter((s) => info[s]).map((s) => info[s] + " " + s).join(", ");
      cls += " st-" + info.state;
    } else if (planned.has(date)) {
      label += "a run is planned"; cls += " planned";
    } else {
      label += date > today ? "in the future" : "no run";
      if (date > today) cls += " future";
    }
    if (planned.has(date) && info) { label += "; another is planned"; cls += " planned"; }
    if (date === today) { cls += " today"; label += " (today)"; }
    cells.push(h("td", {}, h("span", { class: cls, "data-date": date, "data-state": info ? info.state : "", title: label, "aria-label": label, role: "img", text: String(d) })));
  }
  const rows = [];
  for (let k = 0; k < cells.length; k += 7) rows.push(h("tr", {}, cells.slice(k, k + 7)));
  return h("table", { class: "cal" }, h("caption", { text: MONTHS[m - 1] + " " + y }),
    h("thead", {}, h("tr", {}, WEEKDAYS.map(([s, l]) => h("th", { scope: "col" }, h("abbr", { title: l, text: s.slice(0, 2) }))))), h("tbody", {}, rows));
}

// ---- task durations: per task, its latest try's duration in each recent run ----
function durationsView(dag) {
  const v = {
    dag,
    refresh: async () => {
      const [d, info] = await Promise.all([api("GET", "/dags/" + enc(dag) + "/durations?runs=25"), dagInfo(dag)]);
      if (v.gone) return;
      showDAG(info);
      const rows = d.tasks.map((t) => {
        const vals = t.durations.filter((x) => x !== null);
        const top = Math.max(0, ...vals);
        const mean = vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : null;
        const bars = d.runs.map((r, c) => {
          const v = t.durations[c], s = t.states[c] || "none";
          const label = t.taskId + " in run " + r.runId + " (" + fmtShort(r.logicalDate) + "): " + s.replace(/_/g, " ") + (v === null ? "" : ", " + fmtDur(v));
          if (v === null) return h("span", { class: "slot empty", title: label, "aria-label": label, role: "img" });
          const href = "#/dags/" + enc(dag) + "/runs/" + enc(r.runId) + "/tasks/" + enc(t.taskId) + (t.tries[c] ? "/tries/" + t.tries[c] : "");
          return h("span", { class: "slot" }, h("a", { class: "tbar st-" + s, href, title: label, "aria-label": label, "data-run": r.runId,
            style: { height: (top > 0 ? Math.max(4, 100 * v / top) : 4).toFixed(1) + "%" } }));
        });
        return h("tr", { "data-task": t.taskId },
          h("th", { scope: "row" }, t.taskId, h("div", { class: "hint", text: t.kind || "" })),
          h("td", { class: "spark-cell" }, h("div", { class: "spark", role: "group", "aria-label": "Durations of " + t.taskId + ", oldest run first; the tallest bar is " + fmtDur(top) }, bars)),
          h("td", { class: "num", text: fmtDur(vals.length ? vals[vals.length - 1] : null) }),
          h("td", { class: "num hide-sm", text: fmtDur(mean) }),
          h("td", { class: "num", text: fmtDur(vals.length ? top : null) }));
      });
      const span = d.runs.length ? fmtShort(d.runs[0].logicalDate) + " → " + fmtShort(d.runs[d.runs.length - 1].logicalDate) : "";
      $("main").replaceChildren(
        crumbs(dag, "task durations"),
        h("h1", { text: dag + " – task durations" }),
        dagTabs(dag, "durations"),
        ...(d.runs.length === 0 ? [h("p", { class: "muted", text: "No runs yet." })] : [
          h("p", { class: "hint", id: "dur-summary", text: "The latest try of each task in the latest " + d.runs.length + " run(s), oldest first (" + span + "). Each row has its own scale: the tallest bar is its Max. A gap: the task did not finish a try in that run." }),
          legend(["success", "failed", "up_for_retry", "running", "skipped"], "Legend of the bars' colours"),
          h("div", { class: "scroll" }, h("table", { class: "durations-table" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Task" }), h("th", { scope: "col", text: "Duration per run" }), h("th", { scope: "col", class: "num", text: "Last" }),
              h("th", { scope: "col", class: "num hide-sm", text: "Mean" }), h("th", { scope: "col", class: "num", text: "Max" }))),
            h("tbody", {}, rows)))]));
    },
  };
  return v;
}


// ---- run: details, Gantt, task instances ----
function runView(dag, run) {
  const v = {
    dag,
    refresh: async () => {
      const base = "/dags/" + enc(dag) + "/runs/" + enc(run);
      const [g, tis, info] = await Promise.all([api("GET", base + "/gantt"), api("GET", base + "/tasks"), api("GET", "/dags/" + enc(dag))]);
      await dagInfo(dag, info);
      if (v.gone) return;
      showDAG(info);
      const r = g.run;
      const version = !r.dagVersion ? "-" : r.dagVersion === info.version ? r.dagVersion
        : r.dagVersion + " (this binary's is " + info.version + "; the graph shows the run's)";
      const rows = tis.taskInstances.map((ti) => h("tr", { "data-task": ti.taskId },
        h("th", { scope: "row" }, h("a", { href: "#/dags/" + enc(dag) + "/runs/" + enc(run) + "/tasks/" + enc(ti.taskId) + (ti.mapCount ? "/instances" : ""),
          text: ti.taskId + (ti.mapped ? " [" + (ti.mapCount || " ") + "]" : "") }),
          ti.mapCount ? h("span", { class: "muted map-counts", text: " " + stateCounts(ti.stateCounts) }) : null,
          ti.removed ? h("span", { class: "muted", text: " (no longer in the DAG)" }) : null),
        h("td", {}, pill(ti.state)),
        h("td", { text: ti.try + "/" + ti.maxTries }),
        h("td", { class: "hide-sm", text: fmtTime(ti.started) }),
        h("td", { text: fmtDur(ti.duration) }),
        h("td", { class: "hide-sm why-cell" + (ti.error ? " error" : ""), text: ti.waiting || ti.error || "" })));
      $("main").replaceChildren(
        crumbs(dag, "run"),
        h("h1", { text: run }),
        h("div", { class: "actions" }, pill(r.state),
          h("a", { class: "btn", href: "#/dags/" + enc(dag) + "/graph?run=" + enc(run), text: "Graph" }),
          h("button", { class: "btn", type: "button", disabled: !can(), text: "Clear failed tasks", onclick: () => doClear(dag, run, { failedOnly: true }) })),
        h("dl", { class: "kv" },
          h("dt", { text: "Logical date" }), h("dd", { text: fmtTime(r.logicalDate) }),
          h("dt", { text: "Data interval" }), h("dd", { text: fmtTime(r.dataIntervalStart) + " → " + fmtTime(r.dataIntervalEnd) }),
          h("dt", { text: "Started" }), h("dd", { text: fmtTime(r.started) }),
          h("dt", { text: "Ended" }), h("dd", { text: fmtTime(r.ended) }),
          h("dt", { text: "Duration" }), h("dd", { text: fmtDur(r.duration) }),
          h("dt", { text: "DAG version" }), h("dd", { class: "run-version", text: version }),
          h("dt", { text: "Conf" }), h("dd", {}, h("code", { text: r.conf ? JSON.stringify(r.conf) : "{}" }))),
        h("h2", { text: "Gantt" }), gantt(dag, run, g),
        h("h2", { text: "Task instances" }),
        h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, ["Task", "State", "Try", "Started", "Duration", "Why"].map((c, i) => h("th", { scope: "col", class: i === 3 || i === 5 ? "hide-sm" : null, text: c })))), h("tbody", {}, rows))));
    },
  };
  return v;
}

function gantt(dag, run, g) {
  const tries = g.tries.filter((t) => t.queued || t.started);
  if (!tries.length) return h("p", { class: "muted", text: "No try has started yet." });
  const t0 = Math.min(...tries.map((t) => Date.parse(t.queued || t.started)));
  const now = Date.now();
  const t1 = Math.max(...tries.map((t) => (t.ended ? Date.parse(t.ended) : now)), t0 + 1);
  const span = t1 - t0;
  const pct = (ms) => (100 * (ms - t0) / span).toFixed(3) + "%";
  const rows = tries.map((t) => {
    const q = Date.parse(t.queued || t.started), s = t.started ? Date.parse(t.started) : null, e = t.ended ? Date.parse(t.ended) : now;
    const track = h("div", { class: "track" });
    track.append(h("div", { class: "q", style: { left: pct(q), width: (100 * ((s || e) - q) / span).toFixed(3) + "%" } }));
    if (s) {
      const label = instName(t) + " try " + t.try + ": " + t.state + ", " + fmtDur((e - s) / 1000) + ", from " + fmtTime(t.started);
      track.append(h("a", { class: "b st-" + t.state, href: "#/dags/" + enc(dag) + "/runs/" + enc(run) + "/tasks/" + enc(t.taskId) + "/tries/" + t.try + miQuery(t.mapIndex),
        title: label, "aria-label": label, style: { left: pct(s), width: (100 * (e - s) / span).toFixed(3) + "%" } }));
    }
    return h("div", { class: "row" }, h("div", { class: "name", title: instName(t), text: instName(t) + (t.try > 1 ? " #" + t.try : "") }), track);
  });
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => h("span", { text: "+" + fmtDur(f * span / 1000) }));
  return h("div", { class: "scroll" }, h("div", { class: "gantt", role: "group", "aria-label": "Gantt chart of the run's tries, from " + fmtTime(new Date(t0).toISOString()) },
    rows, h("div", { class: "axis" }, h("span", { text: fmtShort(new Date(t0).toISOString()) }), h("div", { class: "ticks" }, ticks))));
}

async function doClear(dag, run, body, path) {
  try {
    const r = await api("POST", path || "/dags/" + enc(dag) + "/runs/" + enc(run) + "/clear", body);
    flash(r.cleared.length ? "Cleared " + r.cleared.join(", ") : "Nothing to clear", true);
    if (current) current.refresh().catch(showError);
  } catch (e) { showError(e); }
}

// whyOf says why a task instance is in its state: the try's error, what it
// waits for, a deferred sensor's next poke, the upstream tasks that failed.
function whyOf(ti, tr, def, tis) {
  const out = [];
  const st = tr ? tr.state : ti.state;
  const err = (tr && tr.error) || ti.error;
  if (st === "failed" || st === "up_for_retry") {
    out.push(["This try failed", h("span", { class: "error", id: "why-error", text: err || "no error message" }),
      tr && tr.exitCode !== undefined ? " (exit code " + tr.exitCode + ")" : null]);
  }
  if (ti.state === "up_for_retry" && ti.nextRetry && (!tr || tr.try === ti.try)) out.push(["Next try", "try " + (ti.try + 1) + " of " + ti.maxTries + " at " + fmtTime(ti.nextRetry)]);
  if (ti.state === "deferred") {
    out.push(["Deferred sensor", h("span", { id: "why-poke" }, "condition not met after " + (ti.pokes || 0) + " poke(s); next poke at ", h("strong", { text: fmtTime(ti.nextPoke || ti.nextRetry) }), " (it holds no slot meanwhile)")]);
  }
  if (ti.waiting && ti.state !== "deferred") out.push(["Waiting for", h("span", { id: "waiting", text: ti.waiting })]);
  const rule = def ? def.triggerRule || "all_success" : "";
  if ((ti.state === "upstream_failed" || ti.state === "skipped") && def && tis) {
    const by = new Map(tis.taskInstances.map((x) => [x.taskId, x.state]));
    const ups = (def.upstream || []).map((u) => u + " (" + (by.get(u) || "none").replace(/_/g, " ") + ")");
    out.push([ti.state === "skipped" ? "Skipped" : "Not run",
      (ti.state === "skipped" ? "a branch or short circuit upstream skipped it, or its trigger rule " + rule + " did"
        : "its trigger rule " + rule + " cannot be met") + (ups.length ? "; upstream: " + ups.join(", ") : "")]);
  }
  if (ti.removed) out.push(["Removed", "this DAG no longer has the task; its tries, log and result stay readable"]);
  return out;
}

// ---- task try ----
function tryView(dag, run, taskId, tryNo, mi) {
  let follow = 0, logPos = 0, logTry = 0, logPrev = 0, logEarlier = false;
  const base = "/dags/" + enc(dag) + "/runs/" + enc(run) + "/tasks/" + enc(taskId);
  // u is an API path of this task instance: with its map index, for one
  // instance of a mapped task.
  const u = (path, extra) => { const q = [mi >= 0 ? "map_index=" + mi : "", extra || ""].filter(Boolean).join("&"); return base + path + (q ? "?" + q : ""); };
  const name = mi >= 0 ? taskId + "[" + mi + "]" : taskId;
  const v = {
    dag,
    destroy: () => { clearTimeout(follow); },
    refresh: async () => {
      const ti = await api("GET", u(""));
      if (v.gone) return;
      if (mi < 0 && ti.mapCount) {
        // An expanded mapped task has no try of its own: show its instances.
        location.replace("#/dags/" + enc(dag) + "/runs/" + enc(run) + "/tasks/" + enc(taskId) + "/instances");
        return;
      }
      const [tries, xcom, info, tis] = await Promise.all([api("GET", u("/tries")), api("GET", u("/xcom")), dagInfo(dag),
        api("GET", "/dags/" + enc(dag) + "/runs/" + enc(run) + "/tasks")]);
      if (v.gone) return;
      showDAG(info);
      const n = tryNo || ti.try;
      const tr = tries.tries.find((t) => t.try === n);
      const def = ((info.definition && info.definition.tasks) || []).find((t) => t.id === taskId);
      const diff = logTry !== n;
      const pre = diff ? h("pre", { class: "log", id: "log", tabindex: "0", "aria-label": "Log of try " + n, "aria-live": "off" }) : $("log");
      if (diff) { logPos = 0; logTry = n; }
      const tryLinks = tries.tries.map((t) => h("a", { class: "btn try", href: "#/dags/" + enc(dag) + "/runs/" + enc(run) + "/tasks/" + enc(taskId) + "/tries/" + t.try + miQuery(mi),
        "aria-current": t.try === n ? "page" : null, text: "Try " + t.try }));
      const down = h("input", { type: "checkbox", id: "clear-down" });
      const failed = h("input", { type: "checkbox", id: "clear-failed" });
      const acts = h("fieldset", {}, h("legend", { text: "Actions" }),
        h("div", { class: "actions" },
          h("label", { class: "inline" }, down, "with downstream"),
          h("label", { class: "inline" }, failed, "failed only"),
          h("button", { class: "btn", type: "button", id: "clear", disabled: !can(), text: mi >= 0 ? "Clear this instance" : "Clear",
            onclick: () => doClear(dag, run, { downstream: down.checked, failedOnly: failed.checked }, u("/clear")) }),
          h("button", { class: "btn", type: "button", id: "mark-success", disabled: !can(), text: "Mark success", onclick: () => doMark("success") }),
          h("button", { class: "btn danger", type: "button", id: "mark-failed", disabled: !can(), text: "Mark failed", onclick: () => doMark("failed") })));
      const details = h("dl", { class: "kv" },
        h("dt", { text: "State" }), h("dd", {}, pill(tr ? tr.state : ti.state), tr && ti.state !== tr.state ? h("span", { class: "muted", text: " (task instance: " + ti.state + ")" }) : null),
        h("dt", { text: "Kind" }), h("dd", { text: ti.kind || "–" }),
        h("dt", { text: "Trigger rule" }), h("dd", { text: def ? def.triggerRule || "all_success" : "–" }),
        h("dt", { text: "Try" }), h("dd", { text: n + " of " + ti.maxTries }),
        h("dt", { text: "Queued" }), h("dd", { text: fmtTime(tr && tr.queued) }),
        h("dt", { text: "Started" }), h("dd", { text: fmtTime(tr ? tr.started : ti.started) }),
        h("dt", { text: "Ended" }), h("dd", { text: fmtTime(tr ? tr.ended : ti.ended) }),
        h("dt", { text: "Duration" }), h("dd", { text: fmtDur(tr ? tr.duration : ti.duration) }),
        h("dt", { text: "Exit code" }), h("dd", { text: tr && tr.exitCode !== undefined ? String(tr.exitCode) : "–" }),
        h("dt", { text: "Error" }), h("dd", { class: (tr && tr.error) || ti.error ? "error" : "", text: (tr ? tr.error : ti.error) || "–" }),
        h("dt", { text: "Executor" }), h("dd", { text: (tr && tr.executor) || ti.executor || "–" }),
        h("dt", { text: "Host" }), h("dd", { text: (tr && tr.host) || "–" }),
        h("dt", { text: "Pod" }), h("dd", { text: (tr && tr.pod) || "–" }));
      const why = whyOf(ti, tr, def, tis);
      const whyBox = why.length ? h("section", { class: "why", id: "why", "aria-labelledby": "why-title" }, h("h2", { id: "why-title", text: "Why" }),
        h("dl", { class: "kv" }, why.map(([k, ...v]) => [h("dt", { text: k }), h("dd", {}, v)]))) : null;
      const podBox = h("div", { id: "pod" });
      $("main").replaceChildren(
        crumbs(dag, h("a", { href: "#/dags/" + enc(dag) + "/runs/" + enc(run), text: run }),
          mi >= 0 ? h("a", { href: "#/dags/" + enc(dag) + "/runs/" + enc(run) + "/tasks/" + enc(taskId) + "/instances", text: taskId + " [ ]" }) : null),
        h("h1", { text: name }),
        h("div", { class: "actions" }, tryLinks.length ? tryLinks : h("span", { class: "muted", text: "No try yet (" + ti.state + ")" })),
        whyBox,
        h("div", { class: "two" }, h("div", {}, h("h2", { text: "Try" }), details),
          h("div", {}, h("h2", { text: "Result (XCom)" }), xcom.present ? h("pre", { class: "code", id: "xcom", text: JSON.stringify(xcom.value, null, 2) }) : h("p", { class: "muted", id: "xcom", text: "No result stored." }),
            h("h2", { text: "Pod" }), podBox)),
        acts,
        h("h2", { id: "log-title", text: "Log" + (tr && !isDone(tr.state) ? " (following)" : "") }),
        tr ? h("div", { class: "actions" },
          h("button", { class: "btn", type: "button", id: "log-earlier", hidden: diff || !logEarlier,
            text: "Load earlier", onclick: () => loadEarlier(n).catch(showError) }),
          h("a", { class: "btn", id: "log-download", href: "/api/v1" + u("/tries/" + n + "/log/download"), download: "", text: "Download the whole log" }),
          h("span", { class: "muted", text: "The log opens at its end; pages of 1 MiB." })) : null,
        pre);
      if (tr) {
        api("GET", u("/tries/" + n + "/pod")).then((p) => podBox.replaceChildren(
          p.available ? h("pre", { class: "code", text: p.yaml }) : h("p", { class: "muted", text: (p.pod ? "Pod " + p.pod + ". " : "") + "Rendered pod YAML " + p.reason.replace(/^not available/, "is not available") + "." }))).catch(showError);
        if (diff) await loadTail(n); else await followLog(n);
      } else {
        pre.textContent = "No try yet.";
        podBox.replaceChildren(h("p", { class: "muted", text: "No try yet." }));
      }
    },
  };
  function isDone(s) { return ["success", "failed", "skipped", "upstream_failed", "up_for_retry"].includes(s); }
  // loadTail shows the end of a try's log (at most a page), then follows it.
  async function loadTail(n) {
    clearTimeout(follow);
    const chunk = await api("GET", u("/tries/" + n + "/log", "tail=1"));
    const pre = $("log");
    if (!pre || logTry !== n) return;
    pre.textContent = chunk.content || (chunk.finished ? "(empty log)" : "");
    pre.scrollTop = pre.scrollHeight;
    logPos = chunk.next;
    logPrev = chunk.prev || 0;
    logEarlier = !!chunk.earlier;
    const more = $("log-earlier");
    if (more) more.hidden = !logEarlier;
    if (!chunk.finished) follow = setTimeout(() => followLog(n).catch(showError), 1000);
    else { const t = $("log-title"); if (t) t.textContent = "Log"; }
  }
  // loadEarlier puts the page before what is shown on top, keeping the view.
  async function loadEarlier(n) {
    const chunk = await api("GET", u("/tries/" + n + "/log", "before=" + logPrev));
    const pre = $("log");
    if (!pre || logTry !== n) return;
    const from = pre.scrollHeight;
    pre.prepend(chunk.content);
    pre.scrollTop += pre.scrollHeight - from;
    logPrev = chunk.prev || 0;
    logEarlier = !!chunk.earlier;
    const more = $("log-earlier");
    if (more) more.hidden = !logEarlier;
  }
  async function followLog(n) {
    clearTimeout(follow);
    const chunk = await api("GET", u("/tries/" + n + "/log", "after=" + logPos));
    const pre = $("log");
    if (!pre || logTry !== n) return;
    if (chunk.content) {
      const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.append(chunk.content);
      if (atBottom) pre.scrollTop = pre.scrollHeight;
    }
    logPos = chunk.next;
    if (!pre.textContent) pre.textContent = chunk.finished ? "(empty log)" : "";
    if (!chunk.finished) follow = setTimeout(() => followLog(n).catch(showError), chunk.more ? 0 : 1000);
    else { const t = $("log-title"); if (t) t.textContent = "Log"; }
  }
  async function doMark(state) {
    try {
      await api("POST", u("/mark"), { state });
      flash("Marked " + name + " " + state, true);
      v.refresh().catch(showError);
    } catch (e) { showError(e); }
  }
  return v;
}

// miQuery is the query of a UI link to one instance of a mapped task.
function miQuery(k) { return k === undefined || k === null || k < 0 ? "" : "?map_index=" + k; }
// instName is a task instance's name: "resize[3]" for a mapped instance.
function instName(x) { return x.mapIndex === undefined || x.mapIndex === null ? x.taskId : x.taskId + "[" + x.mapIndex + "]"; }
// stateCounts says how many instances are in each state, in the states' order.
function stateCounts(c) { return STATES.filter((s) => c && c[s]).map((s) => c[s] + " " + s.replace(/_/g, " ")).join(", "); }

// ---- a mapped task's instances (the grid's drill-down), a page at a time ----
const INSTANCE_PAGE = 50;
function instancesView(dag, run, taskId, offset) {
  const base = "/dags/" + enc(dag) + "/runs/" + enc(run) + "/tasks/" + enc(taskId);
  const here = "#/dags/" + enc(dag) + "/runs/" + enc(run) + "/tasks/" + enc(taskId);
  const v = {
    dag,
    refresh: async () => {
      const [list, info] = await Promise.all([api("GET", base + "/instances?limit=" + INSTANCE_PAGE + "&offset=" + offset), dagInfo(dag)]);
      if (v.gone) return;
      showDAG(info);
      const rows = list.instances.map((ti) => h("tr", { "data-map-index": String(ti.mapIndex), "data-state": ti.state },
        h("th", { scope: "row" }, h("a", { href: here + (ti.try ? "/tries/" + ti.try : "") + miQuery(ti.mapIndex), text: instName(ti) })),
        h("td", {}, pill(ti.state)),
        h("td", { text: ti.try + "/" + ti.maxTries }),
        h("td", { class: "hide-sm", text: fmtTime(ti.started) }),
        h("td", { text: fmtDur(ti.duration) }),
        h("td", {}, ti.try ? h("a", { class: "log-link", href: here + "/tries/" + ti.try + miQuery(ti.mapIndex), "aria-label": "Log of " + instName(ti) + ", try " + ti.try, text: "Log" }) : h("span", { class: "muted", text: "–" })),
        h("td", {}, h("button", { class: "btn clear-instance", type: "button", disabled: !can() || ["none", "removed", "running", "queued"].includes(ti.state),
          "aria-label": "Clear " + instName(ti), text: "Clear",
          onclick: () => doClear(dag, run, {}, base + "/clear?map_index=" + ti.mapIndex) }))));
      const last = offset + list.instances.length;
      const pager = h("div", { class: "actions pager" },
        h("span", { id: "instances-range", text: list.total ? "Instances " + (offset + 1) + "–" + last + " of " + list.total : "No instances (the task is not expanded yet, or its list was empty)" }),
        offset > 0 ? h("a", { class: "btn", id: "instances-prev", href: here + "/instances?offset=" + Math.max(0, offset - INSTANCE_PAGE), text: "Previous" }) : null,
        last < list.total ? h("a", { class: "btn", id: "instances-next", href: here + "/instances?offset=" + last, text: "Next" }) : null);
      $("main").replaceChildren(
        crumbs(dag, h("a", { href: "#/dags/" + enc(dag) + "/runs/" + enc(run), text: run }), taskId + " [ ]"),
        h("h1", { text: taskId + " [" + list.total + "]" }),
        h("div", { class: "actions" }, pill(list.state || "none"), h("span", { id: "instance-counts", text: stateCounts(list.stateCounts) }),
          h("span", { class: "hint", text: "The task's state is the first of failed, upstream failed, up for retry, queued, scheduled, deferred, running, none, success, skipped that an instance has." })),
        pager,
        h("div", { class: "scroll" }, h("table", { class: "instances", "aria-label": "Instances of " + taskId + " by map index" },
          h("thead", {}, h("tr", {}, ["Instance", "State", "Try", "Started", "Duration", "Log", "Clear"].map((c, i) => h("th", { scope: "col", class: i === 3 ? "hide-sm" : null, text: c })))),
          h("tbody", {}, rows))));
    },
  };
  return v;
}

// ---- assets ----
function assetsView(uri) {
  return {
    refresh: async () => {
      const [list, evs] = await Promise.all([api("GET", "/assets"),
        api("GET", "/assets/events?limit=50" + (uri ? "&uri=" + enc(uri) : ""))]);
      const dagLink = (id) => h("a", { href: "#/dags/" + enc(id), text: id });
      const rows = list.assets.map((a) => h("tr", { "data-asset": a.uri },
        h("th", { scope: "row" }, h("a", { href: "#/assets?uri=" + enc(a.uri), text: a.uri })),
        h("td", {}, a.producers.length ? a.producers.map((p, i) => [i ? ", " : "", dagLink(p.split(".")[0]), "." + p.split(".").slice(1).join(".")]) : "–"),
        h("td", {}, a.consumers.length ? a.consumers.map((c, i) => [i ? ", " : "", dagLink(c)]) : "–"),
        h("td", { text: String(a.events) }),
        h("td", { text: a.lastEvent ? fmtTime(a.lastEvent) : "–" })));
      const evRows = evs.events.map((e) => h("tr", { "data-event": String(e.id) },
        h("td", { text: String(e.id) }), h("td", { text: e.uri }), h("td", { text: fmtTime(e.at) }),
        h("td", {}, e.sourceDagId ? [dagLink(e.sourceDagId), "." + e.sourceTaskId + " in ",
          h("a", { href: "#/dags/" + enc(e.sourceDagId) + "/runs/" + enc(e.sourceRunId), text: e.sourceRunId }), " (try " + e.sourceTry + ")"] : (e.source || "–")),
        h("td", {}, e.extra ? h("code", { text: JSON.stringify(e.extra) }) : "–")));
      $("main").replaceChildren(...[h("h1", { text: "Assets" }),
        h("p", { class: "hint", text: "An asset is updated by the tasks that declare it (task.Outlets) or by an event posted through the API; DAGs scheduled on it run when it has new events." }),
        h("div", { class: "scroll" }, h("table", { id: "assets" }, h("thead", {}, h("tr", {}, ["Asset", "Updated by", "Scheduled DAGs", "Events", "Last event"].map((c) => h("th", { scope: "col", text: c })))), h("tbody", {}, rows))),
        h("h2", { text: uri ? "Events of " + uri : "Latest events" }),
        uri ? h("p", {}, h("a", { href: "#/assets", text: "All assets' events" })) : null,
        evs.events.length ? h("div", { class: "scroll" }, h("table", { id: "asset-events" }, h("thead", {}, h("tr", {}, ["#", "Asset", "When", "Source", "Extra"].map((c) => h("th", { scope: "col", text: c })))), h("tbody", {}, evRows)))
          : h("p", { class: "muted", text: "No event yet." }),
        evs.total > evs.events.length ? h("p", { class: "hint", text: evs.events.length + " of " + evs.total + " events (newest first)." }) : null].filter(Boolean));
    },
  };
}

// ---- pools ----
function poolsView() {
  const v = {
    refresh: async () => {
      const list = await api("GET", "/pools");
      if (v.gone) return;
      const rows = list.pools.map((pl) => {
        const pct = pl.slots > 0 ? Math.min(100, Math.round(100 * pl.inUse / pl.slots)) : (pl.inUse > 0 ? 100 : 0);
        const input = h("input", { type: "number", min: "0", step: "1", value: String(pl.slots), "aria-label": "Slots of pool " + pl.name, disabled: !can(), class: "slots" });
        const save = h("button", { class: "btn", type: "button", disabled: !can(), text: "Set",
          onclick: async () => {
            try {
              await api("PATCH", "/pools/" + enc(pl.name), { slots: Number(input.value) });
              flash("Pool " + pl.name + " now has " + input.value + " slots.", true);
              await current.refresh();
            } catch (e) { showError(e); }
          } });
        return h("tr", { "data-pool": pl.name },
          h("th", { scope: "row", text: pl.name }),
          h("td", {}, input, " ", save, pl.setAtRunTime ? h("span", { class: "muted", text: " (set at run time; declared " + pl.declared + ")" }) : null),
          h("td", {}, h("div", { class: "meter", role: "meter", "aria-valuemin": "0", "aria-valuemax": String(pl.slots), "aria-valuenow": String(pl.inUse), "aria-label": pl.name + ": " + pl.inUse + " of " + pl.slots + " slots in use" },
            h("span", { style: { width: pct + "%" } })), " " + pl.inUse + " / " + pl.slots),
          h("td", { text: String(pl.tasks) }));
      });
      $("main").replaceChildren(h("h1", { text: "Pools" }),
        h("p", { class: "hint", text: "A pool limits how many tries of its tasks run at once; a task takes its pool_slots. Sizes set here override the binary's until set again; the scheduler uses them within a second." }),
        h("div", { class: "scroll" }, h("table", { class: "pools" }, h("thead", {}, h("tr", {}, ["Pool", "Slots", "In use", "Tasks"].map((c) => h("th", { scope: "col", text: c })))), h("tbody", {}, rows))));
    },
  };
  return v;
}

// ---- audit ----
function auditView() {
  const v = {
    refresh: async () => {
      const a = await api("GET", "/audit?limit=200");
      if (v.gone) return;
      const zone = (id) => zones.get(id) || "";
      const rows = a.entries.map((e) => h("tr", {},
        h("td", { class: "time", text: fmtTime(e.at, zone(e.dagId)) }), h("td", { text: e.actor + (e.role ? " (" + e.role + ")" : "") }),
        h("td", {}, h("code", { text: e.action })),
        h("td", {}, e.dagId ? h("a", { href: "#/dags/" + enc(e.dagId), text: e.dagId }) : "", e.runId ? [" / ", h("a", { href: "#/dags/" + enc(e.dagId) + "/runs/" + enc(e.runId), text: e.runId })] : "", e.taskId ? " / " + e.taskId : ""),
        h("td", { class: "hide-sm", text: e.detail || "" }),
        h("td", { class: e.outcome === "ok" ? "" : "error", text: e.outcome })));
      $("main").replaceChildren(h("h1", { text: "Audit log" }),
        h("p", { class: "hint", text: a.total + " action(s) recorded; newest first." }),
        h("div", { class: "scroll" }, h("table", { class: "audit" }, h("thead", {}, h("tr", {}, ["When", "Who", "Action", "Target", "Detail", "Outcome"].map((c, i) => h("th", { scope: "col", class: i === 4 ? "hide-sm" : null, text: c })))), h("tbody", {}, rows))));
    },
  };
  return v;
}

// ---- start ----
window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", async () => {
  $("logout").addEventListener("click", async () => {
    try { await api("DELETE", "/session"); } catch (e) { /* signed out anyway */ }
    session = null; if (es) { es.close(); es = null; }
    $("who").textContent = ""; $("logout").hidden = true; showLogin("");
  });
  for (const b of document.querySelectorAll("#tz button")) b.addEventListener("click", () => setTzMode(b.dataset.tz));
  showTzSwitch();
  try {
    if (await loadSession()) { startLive(); route(); } else showLogin("");
  } catch (e) { showError(e); }
});
