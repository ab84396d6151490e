// The dashboard: follows the server's stream into one state object and redraws the panels
// that changed, at most once per animation frame (a replay at full speed sends hundreds of
// messages a second).

import { call, initAuth, streamUrl } from "./api.js";
import { Feed } from "./feed.js";
import * as V from "./views.js";

const $ = (id) => document.getElementById(id);
let st = null;
const dirty = new Set();
let scheduled = false;

const PANELS = {
  header: () => V.header(st),
  symbols: () => { V.symbols(st); slotSymbols(); V.ladder(st); },
  book: () => V.ladder(st),
  orders: () => V.orders(st),
  counters: () => V.counters(st),
  latency: () => V.latency(st),
  positions: () => { V.positions(st); V.showCurrent($("slot-form"), st.slots[$("slot-symbol").value]); },
  control: () => { V.kill(st); V.strategy(st); V.showCurrent($("risk-form"), st.risk); },
  alerts: () => V.alerts(st),
  audit: () => V.audit(st),
};
const ALL = Object.keys(PANELS);

function mark(...panels) {
  for (const p of panels) dirty.add(p);
  if (scheduled) return;
  scheduled = true;
  requestAnimationFrame(() => {
    scheduled = false;
    if (!st) return;
    for (const p of dirty) PANELS[p]();
    dirty.clear();
  });
}

function snapshot(state) {
  st = state;
  ensureForms();
  mark(...ALL);
}

function where(m) {
  if (m.pass !== undefined) { st.pass = m.pass; st.position = m.position; }
}

function message(m) {
  where(m);
  switch (m.type) {
    case "book":
      Object.assign(st.book, m.symbols);
      mark("book", "header");
      break;
    case "orders":
      st.orders.push(...m.orders);
      if (st.orders.length > 400) st.orders.splice(0, st.orders.length - 200);
      st.orders_total = m.total;
      mark("orders", "header");
      break;
    case "counters":
      Object.assign(st.counters, m.counters);    // the counters that changed
      mark("counters", "header");
      break;
    case "state":
      for (const k of ["risk", "slots", "positions", "control", "status", "gross", "strategy",
        "strategy_params", "symbols"]) st[k] = m[k];
      ensureForms();
      mark("symbols", "positions", "control", "header");
      break;
    case "latency":
      st.latency = m.latency;
      mark("latency");
      break;
    case "alert":
      st.alerts.push(m.alert);
      if (st.alerts.length > 200) st.alerts.splice(0, 100);
      mark("alerts");
      break;
    case "audit":
      st.audit.push(m.entry);
      mark("audit");
      break;
    case "pass":
      if (m.event === "start") st.book = {};
      mark("header", "book");
      break;
    default:
      break;
  }
}

function say(text, bad = false) {
  const box = $("message");
  box.textContent = text;
  box.className = bad ? "bad" : "ok";
}

async function act(method, path, body) {
  try {
    const r = await call(method, path, body);
    const n = r.applied?.length ?? 0;
    say(`${method} ${path}: applied at pass ${r.pass}, frame ${r.position}` +
      (n ? ` (${n} change${n > 1 ? "s" : ""})` : ""));
    return r;
  } catch (e) {
    say(`${method} ${path}: ${e.status ?? ""} ${e.message}`, true);
    throw e;
  }
}

// ------------------------------------------------------------------------ forms, controls
let formsBuilt = false;

function ensureForms() {
  if (formsBuilt || !st.risk || !Object.keys(st.risk).length) return;
  formsBuilt = true;
  V.buildForm($("risk-form"), Object.keys(st.risk).filter((k) => k !== "kill"),
    (body) => act("PUT", "/api/risk", body));
  const params = Object.keys(st.strategy_params).filter((k) => k !== "poll_messages");
  V.buildForm($("strategy-params"), params,
    (body) => act("PUT", "/api/strategies/parameters", body));
  const first = Object.values(st.slots)[0] || { enable: 0, ref_price: 0, max_long: 0, max_short: 0 };
  V.buildForm($("slot-form"), Object.keys(first),
    (body) => act("PUT", `/api/risk/symbols/${encodeURIComponent($("slot-symbol").value)}`, body));
}

function slotSymbols() {
  const sel = $("slot-symbol");
  if ([...sel.options].map((o) => o.value).join(",") === st.symbols.join(",")) return;
  const keep = sel.value;
  sel.replaceChildren(...st.symbols.map((s) => V.el("option", { value: s }, s)));
  if (st.symbols.includes(keep)) sel.value = keep;
}

function wire() {
  $("symbol").addEventListener("change", () => mark("book"));
  $("slot-symbol").addEventListener("change", () => mark("positions"));
  window.addEventListener("edit-slot", (ev) => {
    $("slot-symbol").value = ev.detail;
    mark("positions");
    $("slot-form").querySelector("input")?.focus();
  });
  $("kill-button").addEventListener("click", () => {
    const on = $("kill-button").dataset.on === "1";
    act("PUT", "/api/kill", { kill: !on }).catch(() => {});
  });
  $("clear-trip").addEventListener("click", () => act("POST", "/api/kill/clear-trip").catch(() => {}));
  $("strategy-start").addEventListener("click", () =>
    act("POST", `/api/strategies/${$("strategy-kind").value}/start`).catch(() => {}));
  $("strategy-stop").addEventListener("click", () =>
    act("POST", "/api/strategies/stop").catch(() => {}));
  $("auth").addEventListener("submit", (ev) => ev.preventDefault());
  $("token").addEventListener("change", () => feed.ws.close());
}

initAuth();
const feed = new Feed(streamUrl(), {
  onSnapshot: snapshot,
  onMessage: message,
  onStatus: (s) => V.link(s),
});
// a new token takes effect on the next connection
$("token").addEventListener("change", () => { feed.url = streamUrl(); });
wire();
