// REST calls with the page's token and operator name; errors come back as the server's
// {"error", "field"} body so the page can say which field was refused.

const store = window.sessionStorage;

export function token() {
  return document.getElementById("token").value || "";
}

export function initAuth() {
  const t = document.getElementById("token");
  const o = document.getElementById("operator");
  const q = new URLSearchParams(location.search);
  t.value = q.get("token") || store.getItem("tickwire.token") || "";
  o.value = q.get("operator") || store.getItem("tickwire.operator") || "";
  t.addEventListener("change", () => store.setItem("tickwire.token", t.value));
  o.addEventListener("change", () => store.setItem("tickwire.operator", o.value));
}

export async function call(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (token()) headers["Authorization"] = `Bearer ${token()}`;
  const op = document.getElementById("operator").value.trim();
  if (op) headers["X-Operator"] = op;
  const res = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) {
    const err = new Error(data.error || res.statusText);
    err.field = data.field;
    err.status = res.status;
    throw err;
  }
  return data;
}

export function streamUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const t = token();
  return `${proto}//${location.host}/ws${t ? `?token=${encodeURIComponent(t)}` : ""}`;
}
