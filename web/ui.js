import { t } from "/i18n.js";

// Small helpers shared by the panels: element building (never innerHTML,
// so no data is ever parsed as markup), the API client, per-user
// preferences.

// h("tag", {attr: value, onclick: fn}, child, ...): children are nodes or
// text (text nodes, never markup).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// The session token lives in sessionStorage: it survives a reload of the
// tab, is not shared with other tabs and is gone when the tab closes
// (localStorage would keep a bearer token on disk indefinitely). Script
// injection is what could read either; the Content-Security-Policy
// admits no inline or foreign script.
const TOKEN = "kpbx.token";

export const session = {
  token: () => sessionStorage.getItem(TOKEN),
  set: (t) => sessionStorage.setItem(TOKEN, t),
  clear: () => sessionStorage.removeItem(TOKEN),
};

// An answer from the API that is not 2xx.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(f) {
  onUnauthorized = f;
}

// One API call: JSON in and out; a 401 ends the session in the UI.
export async function api(method, path, body, token = session.token()) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch("/api/v1/" + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!res.ok) {
    if (res.status === 401 && !path.startsWith("login")) onUnauthorized();
    throw new ApiError(res.status, data?.code || "error", data?.message || res.statusText);
  }
  return data;
}

// A command as `kpbx` sends it (POST /api/v1/command).
export const command = (c) => api("POST", "command", c);

// Preferences per user, kept in this browser (language, audit columns).
export const prefs = {
  get(user, key, fallback) {
    try {
      const v = localStorage.getItem(`kpbx.${user}.${key}`);
      return v === null ? fallback : JSON.parse(v);
    } catch {
      return fallback;
    }
  },
  set(user, key, value) {
    localStorage.setItem(`kpbx.${user}.${key}`, JSON.stringify(value));
  },
};

// A labelled form field; `input` is the control.
export function field(label, input, hint) {
  const id = input.id || "f-" + Math.random().toString(36).slice(2);
  input.id = id;
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("small", { class: "hint" }, hint) : null);
}

// A table of `rows` with `columns` [{key, label, render?}]; `onRow` makes
// rows activatable by click and by Enter/Space.
export function table(columns, rows, onRow) {
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))),
    h("tbody", {}, rows.map((r) => {
      const tr = h("tr", {}, columns.map((c) => h("td", {}, c.render ? c.render(r) : fmt(r[c.key]))));
      if (onRow) {
        tr.tabIndex = 0;
        tr.classList.add("clickable");
        tr.addEventListener("click", () => onRow(r));
        tr.addEventListener("keydown", (e) => {
          if (e.key === "Enter" || e.key === " ") {
            e.preventDefault();
            onRow(r);
          }
        });
      }
      return tr;
    })));
}

export function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// A status line for messages and errors (announced to screen readers).
export function notice(kind, text) {
  return h("p", { class: "notice " + kind, role: kind === "error" ? "alert" : "status" }, text);
}

// An API error as the panels show it: a refusal by role says so.
export function errorText(err) {
  return err instanceof ApiError && err.status === 403 ? t("denied", err.message) : t("error", err.message);
}

// A titled part of a panel.
export function section(title, ...children) {
  return h("section", {}, h("h2", {}, title), ...children);
}

// A value from the daemon shown through the catalogue when it has a word
// for it (`prefix.value`), as it is otherwise (names, addresses).
export function word(prefix, value) {
  const key = `${prefix}.${value}`;
  const s = t(key);
  return s === key ? fmt(value) : s;
}

// A UTC time in microseconds as `YYYY-MM-DD HH:MM:SS` (UTC).
export function usTime(us) {
  return us ? new Date(us / 1000).toISOString().replace("T", " ").slice(0, 19) : "";
}

// A single-object command reply: the daemon answers lists of one.
export const one = (r) => (Array.isArray(r) ? r[0] : r) || {};

// Asks before a change that is hard to undo (keyboard accessible: the
// browser's own dialog).
export const confirmed = (text) => window.confirm(text);

// A list with search (every column), sort (any column) and paging, drawn
// in memory: `set(rows)` replaces the rows, `onOpen(row)` runs on click or
// Enter/Space on a row. Ids: `${id}-search`, `${id}-count`, `${id}-table`,
// `${id}-sort-${col}`, `${id}-prev`, `${id}-next`, `${id}-page`.
export function pagedList(id, cols, onOpen, { pageSize = 50, countKey = "list.count" } = {}) {
  let all = [];
  let query = "";
  let sortKey = cols[0].key;
  let asc = true;
  let page = 0;
  const box = h("div", { id: id + "-list" });
  const search = h("input", { type: "search", id: id + "-search", "aria-label": t("search"), placeholder: t("search") });
  let timer = 0;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      query = search.value.trim().toLowerCase();
      page = 0;
      draw();
    }, 120);
  });
  const text = (r, c) => (c.text ? c.text(r) : fmt(r[c.key]));
  function draw() {
    const rows = query ? all.filter((r) => cols.some((c) => text(r, c).toLowerCase().includes(query))) : all.slice();
    const sc = cols.find((c) => c.key === sortKey);
    rows.sort((a, b) => {
      const x = text(a, sc), y = text(b, sc);
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    });
    const pages = Math.max(1, Math.ceil(rows.length / pageSize));
    page = Math.min(page, pages - 1);
    const slice = rows.slice(page * pageSize, page * pageSize + pageSize);
    const head = h("tr", {}, cols.map((c) => h("th", { scope: "col", "aria-sort": c.key === sortKey ? (asc ? "ascending" : "descending") : false },
      h("button", { type: "button", class: "sort", id: `${id}-sort-${c.key}`, onclick: () => { asc = c.key === sortKey ? !asc : true; sortKey = c.key; draw(); } },
        c.label, c.key === sortKey ? (asc ? " \u25B2" : " \u25BC") : ""))));
    const body = slice.map((r) => {
      const tr = h("tr", {}, cols.map((c) => h("td", {}, c.render ? c.render(r) : text(r, c))));
      if (onOpen) {
        tr.tabIndex = 0;
        tr.classList.add("clickable");
        tr.addEventListener("click", () => onOpen(r));
        tr.addEventListener("keydown", (e) => {
          if (e.target === tr && (e.key === "Enter" || e.key === " ")) {
            e.preventDefault();
            onOpen(r);
          }
        });
      }
      return tr;
    });
    box.replaceChildren(
      h("p", { id: id + "-count" }, t(countKey, rows.length)),
      h("table", { id: id + "-table" }, h("thead", {}, head), h("tbody", {}, body)),
      h("div", { class: "pager" },
        h("button", { type: "button", id: id + "-prev", disabled: page === 0, onclick: () => { page--; draw(); } }, t("prev")),
        h("span", { id: id + "-page" }, t("page", page + 1, pages)),
        h("button", { type: "button", id: id + "-next", disabled: page >= pages - 1, onclick: () => { page++; draw(); } }, t("next"))));
  }
  return {
    el: h("div", {}, search, box),
    set(rows) {
      all = rows;
      draw();
    },
  };
}
