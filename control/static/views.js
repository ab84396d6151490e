// Rendering of the page's panels from the followed state. Lists and tables are redrawn
// whole (they are small); the editing forms are built once and never redrawn under the
// operator's cursor: they show the current value beside an empty input for the new one.

const USD = 10000;                       // prices and notionals are in 1/10000 USD

export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v);
  }
  for (const k of kids.flat()) e.append(k instanceof Node ? k : String(k));
  return e;
}

const $ = (id) => document.getElementById(id);

export function price(p) {
  const d = p % 100 === 0 ? 2 : 4;
  return (p / USD).toFixed(d);
}

function usd(x) {
  return (x / USD).toLocaleString(undefined, { maximumFractionDigits: 0 });
}

function replace(tbody, rows) {
  tbody.replaceChildren(...rows);
}

export function header(st, feed) {
  const id = st.identity;
  $("identity").textContent = id
    ? `${st.backend} · map v${id.version.join(".")} ${id.hash}` +
      `${id.build_id ? ` · build ${id.build_id}` : ""} · ${st.capture} · ${st.speed}`
    : `${st.backend} · starting`;
  $("pass").textContent = `pass ${st.pass}`;
  $("progress").max = st.frames || 1;
  $("progress").value = st.position || 0;
  const pos = $("position");
  pos.textContent = `frame ${(st.position || 0).toLocaleString()} / ` +
    `${(st.frames || 0).toLocaleString()}`;
  pos.dataset.position = st.position || 0;
  pos.dataset.pass = st.pass || 0;
}

export function link(s) {
  $("ws-state").className = `dot ${s.state === "open" ? "on" : "off"}`;
  $("seq").textContent = s.seq ?? "–";
  $("resyncs").textContent = s.resyncs;
  $("gaps").textContent = s.gaps;
}

export function symbols(st) {
  const sel = $("symbol");
  const have = [...sel.options].map((o) => o.value).join(",");
  if (have === st.symbols.join(",")) return;
  const keep = sel.value;
  sel.replaceChildren(...st.symbols.map((s) => el("option", { value: s }, s)));
  if (st.symbols.includes(keep)) sel.value = keep;
}

export function ladder(st) {
  const sym = $("symbol").value;
  const b = st.book[sym] || { asks: [], bids: [] };
  const max = Math.max(1, ...b.asks.map((l) => l[1]), ...b.bids.map((l) => l[1]));
  const bar = (n, side) => el("div", { class: `bar ${side}`,
    style: `width:${Math.round(100 * n / max)}%` });
  const rows = [];
  for (const [p, n] of [...b.asks].reverse()) {
    rows.push(el("tr", { class: "level ask" }, el("td"), el("td", { class: "px" }, price(p)),
      el("td", {}, bar(n, "ask"), el("span", {}, n.toLocaleString()))));
  }
  for (const [p, n] of b.bids) {
    rows.push(el("tr", { class: "level bid" },
      el("td", {}, bar(n, "bid"), el("span", {}, n.toLocaleString())),
      el("td", { class: "px" }, price(p)), el("td")));
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 3, class: "muted" },
    "no levels yet")));
  replace($("ladder").tBodies[0], rows);
}

export function orders(st) {
  $("orders-total").textContent = st.orders_total;
  const rows = st.orders.slice(-60).reverse().map((o) => el("tr", { class: "order" },
    el("td", {}, o.n), el("td", {}, o.symbol ?? "?"),
    el("td", { class: o.side === "B" ? "buy" : "sell" }, o.side === "B" ? "buy" : "sell"),
    el("td", {}, o.quantity), el("td", {}, price(o.price)), el("td", {}, o.user_ref),
    el("td", { class: "muted" }, `${o.pass}:${o.position}`)));
  replace($("orders").tBodies[0], rows);
}

export function counters(st) {
  const loss = new Set(st.loss_counters ?? []);      // the server's list (spec/counters.py)
  const rows = Object.entries(st.counters)
    .filter(([k, v]) => v || ["frames", "messages", "orders_sent", "risk_rejects"].includes(k))
    .map(([k, v]) => el("tr", {
      class: v && (k.startsWith("reject_") || k === "risk_rejects" || loss.has(k)) ? "bad" : "",
    }, el("td", {}, k), el("td", { class: "num", "data-counter": k }, v.toLocaleString())));
  replace($("counters").tBodies[0], rows);
}

export function latency(st) {
  const l = st.latency;
  const box = $("latency");
  const unit = st.identity?.time_unit;
  if (!l || !l.count) {
    $("latency-summary").textContent = "";
    box.replaceChildren(el("p", { class: "muted" }, unit === "messages"
      ? "the emulator has no clock: latency is measured by the gateware back-ends"
      : "no orders measured yet"));
    return;
  }
  const mean = l.sum / l.count;
  $("latency-summary").textContent =
    `${l.count} orders · min ${l.min} · mean ${mean.toFixed(1)} · max ${l.max} cycles`;
  const top = Math.max(...l.bins);
  const last = l.bins.reduce((a, n, i) => (n ? i : a), 0);
  const bars = l.bins.slice(0, last + 1).map((n, i) => {
    const lo = i << l.bin_shift;
    const label = i === l.bins.length - 1 ? `≥${lo}` : `${lo}`;
    return el("div", { class: "hbar", title: `${label} cycles: ${n}` },
      el("div", { class: "fill", style: `height:${Math.round(100 * n / top)}%` }),
      el("span", {}, label));
  });
  box.replaceChildren(el("div", { class: "hist" }, bars));
}

export function positions(st) {
  $("gross").textContent = usd(st.gross);
  const rows = st.symbols.map((s) => {
    const p = st.positions[s] || { position: 0, mid: 0, exposure: 0 };
    const r = st.slots[s] || {};
    return el("tr", {}, el("td", {}, s), el("td", { class: "num" }, p.position),
      el("td", { class: "num" }, p.mid ? price(p.mid) : "–"),
      el("td", { class: "num" }, usd(p.exposure)),
      el("td", { class: r.enable ? "" : "bad" }, r.enable ? "on" : "off"),
      el("td", { class: "num" }, r.max_long), el("td", { class: "num" }, r.max_short),
      el("td", {}, el("button", { type: "button", class: "small", "data-symbol": s,
        onclick: () => window.dispatchEvent(new CustomEvent("edit-slot", { detail: s })) },
      "edit")));
  });
  replace($("positions").tBodies[0], rows);
}

export function kill(st) {
  const on = !!st.control.kill, active = !!st.status.kill_active;
  const tripped = !!st.status.kill_tripped;
  const state = on ? "ON" : tripped ? "TRIPPED" : active ? "ACTIVE" : "off";
  $("kill-state").textContent = state;
  $("kill-state").className = state === "off" ? "" : "bad";
  const b = $("kill-button");
  b.dataset.on = on ? "1" : "0";
  b.textContent = on ? "release kill switch" : "KILL SWITCH";
  b.className = on ? "armed" : "";
  $("clear-trip").hidden = !tripped;
}

export function strategy(st) {
  const s = st.strategy;
  const sel = $("strategy-kind");
  if (sel.options.length !== s.kinds.length) {
    sel.replaceChildren(...s.kinds.map((k) => el("option", { value: k }, k)));
    sel.value = s.selected;
  }
  $("strategy-state").textContent = `${s.selected} ${s.running ? "running" : "stopped"}`;
  $("strategy-state").dataset.running = s.running ? "1" : "0";
  showCurrent($("strategy-params"), st.strategy_params);
}

export function alerts(st) {
  const items = st.alerts.slice(-50).reverse().map((a) => el("li", {
    class: `alert ${a.kind}`, "data-kind": a.kind, "data-reason": a.reason ?? "",
  }, el("span", { class: "muted" }, `${a.pass}:${a.position} `), a.message));
  $("alerts").replaceChildren(...items);
}

export function audit(st) {
  const items = st.audit.slice(-50).reverse().map((e) => el("li", {
    class: "audit", "data-what": e.what,
  }, el("span", { class: "muted" }, `${e.time.slice(11, 19)} ${e.who} `),
  `${e.what}: ${JSON.stringify(e.old)} → ${JSON.stringify(e.new)}`,
  el("span", { class: "muted" }, ` @${e.pass}:${e.position}`)));
  $("audit").replaceChildren(...items);
}

// ---------------------------------------------------------------------- editing forms

// A form of numeric fields: the current value, an input for the new one, one Apply button
// that sends only the fields given.
export function buildForm(form, names, onApply) {
  form.replaceChildren(...names.map((n) => el("label", { class: "field" },
    el("span", { class: "name" }, n), el("span", { class: "cur", "data-cur": n }, "–"),
    el("input", { name: n, inputmode: "numeric", placeholder: "new", size: 10 }))),
  el("button", { type: "submit" }, "apply"));
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const body = {};
    for (const inp of form.querySelectorAll("input")) {
      inp.classList.remove("refused");
      if (inp.value.trim() === "") continue;
      const v = Number(inp.value.trim());
      body[inp.name] = Number.isInteger(v) ? v : inp.value.trim();
    }
    if (!Object.keys(body).length) return;
    try {
      await onApply(body);
      for (const inp of form.querySelectorAll("input")) inp.value = "";
    } catch (e) {
      const bad = form.querySelector(`input[name="${e.field}"]`);
      if (bad) bad.classList.add("refused");
    }
  };
}

export function showCurrent(form, values) {
  for (const span of form.querySelectorAll("[data-cur]")) {
    const v = values?.[span.dataset.cur];
    span.textContent = v === undefined ? "–" : v.toLocaleString();
  }
}
