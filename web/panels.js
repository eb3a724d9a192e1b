// The panels. Each: {id, area (the permission area it needs to read),
// title (catalogue key), show(main, {me, can})}. Buttons that change
// something appear only with the area's write permission; the server
// checks again.

import { t } from "/i18n.js";
import { api, command, h, field, table, fmt, notice, prefs, session, ApiError } from "/ui.js";

function errorText(err) {
  return err instanceof ApiError && err.status === 403 ? t("denied", err.message) : t("error", err.message);
}

function section(title, ...children) {
  return h("section", {}, h("h2", {}, title), ...children);
}

// ------------------------------------------------------------ dashboard

function duration(secs) {
  if (secs === undefined || secs === null) return "";
  const d = Math.floor(secs / 86400), hh = Math.floor((secs % 86400) / 3600), m = Math.floor((secs % 3600) / 60);
  return t("dash.duration", d, hh, m);
}

// An audit time (UTC, RFC 3339 with microseconds) as `YYYY-MM-DD HH:MM:SS`.
function utc(text) {
  return typeof text === "string" ? text.slice(0, 19).replace("T", " ") : fmt(text);
}

async function dashboard(main, { can }) {
  main.append(h("h1", {}, t("nav.dashboard")));
  const st = await api("GET", "status");
  main.append(section(t("dash.store"),
    h("dl", { class: "facts" },
      h("dt", {}, t("dash.version")), h("dd", {}, fmt(st.version)),
      h("dt", {}, t("dash.uptime")), h("dd", {}, duration(st.uptime_secs)),
      h("dt", {}, t("dash.store_size")), h("dd", {}, t("dash.mb", ((st.store_bytes || 0) / 1e6).toFixed(1))),
      h("dt", {}, t("dash.objects")), h("dd", { id: "dash-objects" }, fmt(st.objects)),
      h("dt", {}, t("dash.audit_entries")), h("dd", {}, fmt(st.audit_entries)),
      h("dt", {}, t("dash.last_txid")), h("dd", {}, fmt(st.last_txid)))));
  const ha = (st.services || []).find((s) => s.name === "ha");
  if (ha) main.append(section(t("dash.ha"), h("p", { id: "dash-ha" }, `${ha.state}: ${ha.detail}`)));
  main.append(section(t("dash.services"), table([
    { key: "name", label: t("dash.service") },
    { key: "state", label: t("dash.state"), render: (s) => h("span", { class: "state " + s.state }, s.state) },
    { key: "detail", label: t("dash.detail") },
  ], st.services || [])));
  if (can("audit")) {
    const a = await api("GET", "audit?page_size=10");
    main.append(section(t("dash.latest"), auditTable(a.entries, ["txid", "time", "user", "action", "object_type", "description"])));
  }
}

// ------------------------------------------------------------ audit log

const AUDIT_COLUMNS = ["txid", "day", "time", "user", "ip", "action", "object_type", "object_id", "description"];
const DEFAULT_COLUMNS = ["txid", "day", "time", "user", "ip", "action", "object_type", "description"];

function auditTable(entries, columns, onRow) {
  return table(columns.map((c) => ({ key: c, label: t("col." + c), render: c === "time" ? (e) => utc(e.time) : undefined })), entries, onRow);
}

function currentMonth() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}`;
}

async function audit(main, { me, can }) {
  main.append(h("h1", {}, t("nav.audit")));
  let columns = prefs.get(me.user, "audit.columns", DEFAULT_COLUMNS).filter((c) => AUDIT_COLUMNS.includes(c));
  if (!columns.length) columns = DEFAULT_COLUMNS;
  let page = 1;
  const month = h("input", { type: "month", id: "audit-month", value: currentMonth() });
  const day = h("select", { id: "audit-day" },
    h("option", { value: "" }, t("audit.all_days")),
    Array.from({ length: 31 }, (_, i) => h("option", { value: i + 1 }, String(i + 1))));
  const user = h("input", { id: "audit-user", size: 12 });
  const type = h("input", { id: "audit-type", size: 12 });
  const action = h("select", { id: "audit-action" },
    ["", "create", "update", "delete"].map((a) => h("option", { value: a }, a || "*")));
  const results = h("div", { id: "audit-results" });
  const detail = h("div", { id: "audit-detail" });
  const chooser = h("fieldset", { class: "columns", id: "audit-columns" },
    h("legend", {}, t("audit.choose_columns")),
    AUDIT_COLUMNS.map((c) => {
      const box = h("input", { type: "checkbox", id: "col-" + c, value: c, checked: columns.includes(c) });
      box.addEventListener("change", () => {
        columns = AUDIT_COLUMNS.filter((k) => document.getElementById("col-" + k).checked);
        prefs.set(me.user, "audit.columns", columns);
        load();
      });
      return h("label", { class: "check" }, box, t("col." + c));
    }));
  const form = h("form", { class: "filters", id: "audit-filters" },
    field(t("audit.month"), month), field(t("audit.day"), day), field(t("audit.user"), user),
    field(t("audit.type"), type), field(t("audit.action"), action),
    h("button", { type: "submit", id: "audit-apply" }, t("audit.apply")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    page = 1;
    load();
  });
  day.addEventListener("change", () => {
    page = 1;
    load();
  });
  const exportOut = h("span", { id: "audit-export-out" });
  const exports = h("div", { class: "exports", role: "group", "aria-label": t("audit.export") },
    h("span", {}, t("audit.export")),
    ["xlsx", "csv", "json", "xml"].map((f) => h("button", { type: "button", id: "export-" + f, onclick: () => exportAs(f) }, f.toUpperCase())),
    exportOut);
  main.append(form, h("details", {}, h("summary", {}, t("audit.columns")), chooser), exports, results, detail);

  function filters(q) {
    if (month.value) q.set("month", month.value);
    if (day.value) q.set("day", day.value);
    if (user.value) q.set("user", user.value);
    if (type.value) q.set("type", type.value);
    if (action.value) q.set("action", action.value);
    return q;
  }

  // The daemon's own exporter, streamed by GET /api/v1/audit/export with
  // the filters and columns shown; saved as a download.
  async function exportAs(format) {
    const q = filters(new URLSearchParams({ format }));
    // The exporter's columns: `object_type` brings `object_id` beside it.
    const cols = columns.filter((c) => c !== "object_id");
    if (columns.includes("object_id") && !cols.includes("object_type")) cols.push("object_type");
    q.set("columns", cols.join(","));
    exportOut.replaceChildren(t("loading"));
    try {
      const res = await fetch("/api/v1/audit/export?" + q, {
        headers: { Authorization: "Bearer " + session.token() }, cache: "no-store", credentials: "omit",
      });
      if (!res.ok) {
        const e = await res.json().catch(() => ({}));
        throw new ApiError(res.status, e.code, e.message || res.statusText);
      }
      const blob = await res.blob();
      const name = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "")?.[1] || "audit." + format;
      const url = URL.createObjectURL(blob);
      const a = h("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      exportOut.replaceChildren(t("audit.exported", name, blob.size));
    } catch (err) {
      exportOut.replaceChildren(notice("error", errorText(err)));
    }
  }

  async function load() {
    const q = filters(new URLSearchParams({ page: String(page), page_size: "50" }));
    results.replaceChildren(notice("info", t("loading")));
    try {
      const r = await api("GET", "audit?" + q);
      const nav = h("div", { class: "pager" },
        h("button", { type: "button", disabled: page <= 1, onclick: () => { page--; load(); } }, t("prev")),
        h("span", {}, t("page_n", r.page)),
        h("button", { type: "button", disabled: !r.more, onclick: () => { page++; load(); } }, t("next")));
      results.replaceChildren(
        r.entries.length ? auditTable(r.entries, columns, (e) => show(e.txid)) : notice("info", t("audit.empty")),
        nav);
    } catch (err) {
      results.replaceChildren(notice("error", errorText(err)));
    }
  }

  async function show(txid) {
    detail.replaceChildren(notice("info", t("loading")));
    try {
      const r = await command({ AuditShow: { txid } });
      const parts = [h("h2", { id: "audit-detail-title", tabindex: "-1" }, t("audit.show", txid))];
      for (const o of r.objects || []) {
        parts.push(h("h3", {}, `${o.action} ${o.object_type ?? ""} ${o.object_id ?? ""}: ${o.description ?? ""}`));
        parts.push(table([
          { key: "field", label: t("audit.field") },
          { key: "before", label: t("audit.before"), render: (f) => (f.secret ? "••••" : fmt(f.before)) },
          { key: "after", label: t("audit.after"), render: (f) => (f.secret ? "••••" : fmt(f.after)) },
        ], (o.fields || []).filter((f) => f.changed)));
      }
      const out = h("div", { id: "restore-out" });
      if (can("audit", "write")) {
        parts.push(h("button", { type: "button", id: "audit-restore", onclick: () => restore(txid, false, out) }, t("audit.restore")));
      }
      parts.push(out);
      detail.replaceChildren(...parts);
      document.getElementById("audit-detail-title").focus();
    } catch (err) {
      detail.replaceChildren(notice("error", errorText(err)));
    }
  }

  async function restore(txid, force, out) {
    try {
      const r = await api("POST", `audit/${txid}/restore${force ? "?force=true" : ""}`);
      out.replaceChildren(notice("ok", t("audit.restored", r.txid)));
      load();
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        out.replaceChildren(notice("error", t("audit.restore_conflict", err.message)),
          h("button", { type: "button", id: "audit-restore-force", onclick: () => restore(txid, true, out) }, t("audit.restore_force")));
      } else {
        out.replaceChildren(notice("error", errorText(err)));
      }
    }
  }

  await load();
}

// ------------------------------------------------------------ devices

// The three MAC formats the daemon accepts (README: device fields).
const MAC = /^([0-9a-f]{12}|[0-9a-f]{2}(:[0-9a-f]{2}){5}|[0-9a-f]{2}(-[0-9a-f]{2}){5})$/i;
const PAGE = 50;

async function devices(main, { can }) {
  main.append(h("h1", {}, t("nav.devices")));
  const out = h("div", { id: "dev-out" });
  const listBox = h("div", { id: "dev-list" });
  let all = [];
  let query = "";
  let sortKey = "mac";
  let asc = true;
  let page = 0;
  const search = h("input", { type: "search", id: "dev-search", "aria-label": t("search"), placeholder: t("search") });
  let timer = 0;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      query = search.value.trim().toLowerCase();
      page = 0;
      draw();
    }, 120);
  });
  const cols = ["mac", "model", "template", "account", "enabled", "notes"];
  const labels = { mac: "dev.mac", model: "dev.model", template: "dev.template", account: "dev.account", enabled: "dev.enabled", notes: "dev.notes" };

  function draw() {
    // Filter and sort the whole list in memory, build one page of rows.
    const rows = query ? all.filter((d) => cols.some((c) => String(d[c] ?? "").toLowerCase().includes(query))) : all.slice();
    rows.sort((a, b) => {
      const x = String(a[sortKey] ?? ""), y = String(b[sortKey] ?? "");
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    });
    const pages = Math.max(1, Math.ceil(rows.length / PAGE));
    page = Math.min(page, pages - 1);
    const slice = rows.slice(page * PAGE, page * PAGE + PAGE);
    const head = h("tr", {}, cols.map((c) => h("th", { scope: "col", "aria-sort": c === sortKey ? (asc ? "ascending" : "descending") : false },
      h("button", { type: "button", class: "sort", id: "sort-" + c, onclick: () => { asc = c === sortKey ? !asc : true; sortKey = c; draw(); } },
        t(labels[c]), c === sortKey ? (asc ? " ▲" : " ▼") : ""))));
    const body = slice.map((d) => {
      const tr = h("tr", { tabindex: 0, class: "clickable", dataset: { mac: d.mac } }, cols.map((c) => h("td", {}, fmt(d[c]))));
      tr.addEventListener("click", () => showFiles(d));
      tr.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          showFiles(d);
        }
      });
      return tr;
    });
    listBox.replaceChildren(
      h("p", { id: "dev-count" }, t("dev.count", rows.length)),
      h("table", { id: "dev-table" }, h("thead", {}, head), h("tbody", {}, body)),
      h("div", { class: "pager" },
        h("button", { type: "button", id: "dev-prev", disabled: page === 0, onclick: () => { page--; draw(); } }, t("prev")),
        h("span", { id: "dev-page" }, t("page", page + 1, pages)),
        h("button", { type: "button", id: "dev-next", disabled: page >= pages - 1, onclick: () => { page++; draw(); } }, t("next"))));
  }

  async function load() {
    all = await command({ ProvList: { kind: "device" } });
    files = null;
    draw();
  }

  // The generated files of a device, and a viewer (text only: the content
  // is never parsed as markup).
  let files = null;
  const filesBox = h("div", { id: "dev-files" });
  async function showFiles(d) {
    try {
      files = files || (await command("ProvFiles")).files;
      const mine = files.filter((f) => f.device === d.mac);
      const viewer = h("pre", { id: "dev-file", class: "file" });
      filesBox.replaceChildren(
        h("h2", { id: "dev-files-title", tabindex: "-1" }, t("dev.files", d.mac)),
        mine.length ? h("ul", { class: "plain" }, mine.map((f) => h("li", {},
          h("button", { type: "button", class: "link", dataset: { path: f.path }, onclick: async () => {
            try {
              const r = await command({ ProvFile: { path: f.path } });
              viewer.textContent = (Array.isArray(r) ? r[0]?.content : r.content) ?? "";
            } catch (err) {
              viewer.textContent = errorText(err);
            }
          } }, `${f.path} (${f.size} B)`)))) : notice("info", t("dev.no_files")),
        viewer);
      document.getElementById("dev-files-title").focus();
    } catch (err) {
      filesBox.replaceChildren(notice("error", errorText(err)));
    }
  }

  main.append(section(t("dev.list"), search, listBox), filesBox);
  if (can("provisioning", "write")) main.append(await addForm());
  main.append(out);
  await load();

  async function addForm() {
    const [models, templates, accounts] = await Promise.all([
      command({ ProvList: { kind: "model" } }),
      command({ ProvList: { kind: "template" } }),
      command({ ProvList: { kind: "account" } }),
    ]);
    const mac = h("input", { id: "dev-mac", required: true, autocomplete: "off", size: 20, "aria-describedby": "dev-mac-error" });
    const macError = h("span", { id: "dev-mac-error", class: "field-error", "aria-live": "polite" });
    const model = h("select", { id: "dev-model" }, models.map((m) => h("option", { value: m.id }, m.id)));
    const template = h("select", { id: "dev-template" });
    const fillTemplates = () => {
      const fit = templates.filter((x) => !x.model || x.model === model.value);
      template.replaceChildren(...fit.map((x) => h("option", { value: x.id }, x.id)));
    };
    model.addEventListener("change", fillTemplates);
    fillTemplates();
    const account = h("select", { id: "dev-account" }, h("option", { value: "" }, t("none")),
      accounts.map((a) => h("option", { value: a.id }, `${a.id} ${a.display_name ?? ""}`)));
    const notes = h("input", { id: "dev-notes", size: 30 });
    const form = h("form", { id: "dev-form", class: "grid" },
      field(t("dev.mac"), mac, t("dev.mac_hint")), macError,
      field(t("dev.model"), model), field(t("dev.template"), template),
      field(t("dev.account"), account), field(t("dev.notes"), notes),
      h("button", { type: "submit", id: "dev-save" }, t("dev.save")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const m = mac.value.trim();
      if (!MAC.test(m)) {
        macError.textContent = t("dev.mac_bad");
        mac.setAttribute("aria-invalid", "true");
        mac.focus();
        return;
      }
      macError.textContent = "";
      mac.removeAttribute("aria-invalid");
      const fields = [["mac", m], ["model", model.value], ["template", template.value]];
      if (account.value) fields.push(["account", account.value]);
      if (notes.value) fields.push(["notes", notes.value]);
      try {
        const r = await command({ ProvAdd: { kind: "device", fields } });
        const id = r.changes?.[0]?.object_id ?? m;
        out.replaceChildren(notice("ok", t("dev.created", id)));
        form.reset();
        fillTemplates();
        await load();
      } catch (err) {
        out.replaceChildren(notice("error", errorText(err)));
      }
    });
    return section(t("dev.add"), form);
  }
}

// ------------------------------------------------------------ tasks

const SCHEDULE_FIELDS = { daily: [], weekly: ["weekday"], monthly: ["day_of_month"] };

async function tasks(main, { can }) {
  main.append(h("h1", {}, t("nav.tasks")));
  const out = h("div", { id: "task-out" });
  const list = h("div", { id: "task-list" });
  const hist = h("div", { id: "task-history" });
  main.append(section(t("task.list"), list), out, hist);

  async function load() {
    const rows = await command("TaskList");
    const cols = [
      { key: "id", label: t("task.id") },
      { key: "name", label: t("task.name") },
      { key: "type", label: t("task.type") },
      { key: "schedule", label: t("task.schedule"), render: (r) => fmt(r.schedule?.kind ?? r.schedule) },
      { key: "next_run", label: t("task.next_run") },
      { key: "running", label: t("task.running"), render: (r) => (r.running === "yes" ? t("yes") : t("no")) },
    ];
    if (can("tasks", "write")) {
      cols.push({ key: "run", label: "", render: (r) => h("button", { type: "button", class: "run", dataset: { id: r.id }, onclick: (e) => { e.stopPropagation(); run(r.id); }, onkeydown: (e) => e.stopPropagation() }, t("task.run")) });
    }
    list.replaceChildren(rows.length ? table(cols, rows, (r) => history(r.id)) : notice("info", t("task.empty")));
  }

  // The task's runs, newest first, with the delivery to each recipient.
  async function history(id) {
    try {
      const runs = await command({ TaskHistory: { id: Number(id), limit: 10 } });
      const when = (us) => (us ? new Date(us / 1000).toISOString().replace("T", " ").slice(0, 19) : "");
      hist.replaceChildren(h("h2", { id: "task-history-title", tabindex: "-1" }, t("task.history", id)),
        h("button", { type: "button", id: "task-history-refresh", onclick: () => history(id) }, t("refresh")),
        runs.length ? table([
          { key: "run", label: t("task.run_no") },
          { key: "trigger", label: t("task.trigger") },
          { key: "started_us", label: t("task.started_at"), render: (r) => when(r.started_us) },
          { key: "state", label: t("dash.state") },
          { key: "records", label: t("task.records") },
          { key: "file_name", label: t("task.file") },
          { key: "deliveries", label: t("task.deliveries"), render: (r) => h("ul", { class: "plain" }, r.deliveries.map((d) => h("li", {}, `${d.recipient}: ${d.status}${d.detail ? " (" + d.detail + ")" : ""}`))) },
          { key: "error", label: t("task.error") },
        ], runs) : notice("info", t("task.no_runs")));
      document.getElementById("task-history-title").focus();
    } catch (err) {
      hist.replaceChildren(notice("error", errorText(err)));
    }
  }

  async function run(id) {
    try {
      await command({ TaskRun: { id: Number(id) } });
      out.replaceChildren(notice("ok", t("task.started", id)));
      await load();
      await history(id);
    } catch (err) {
      out.replaceChildren(notice("error", errorText(err)));
    }
  }

  if (can("tasks", "write")) main.append(taskForm());
  await load();
  main.append(await mailSection());

  // The SMTP settings the tasks mail through, and "send test".
  async function mailSection() {
    let cur = {};
    try {
      const r = await command("MailShow");
      cur = (Array.isArray(r) ? r[0] : r) || {};
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
    const write = can("tasks", "write");
    const input = (k, attrs = {}) => h("input", { id: "mail-" + k, value: cur[k] ?? "", disabled: !write, ...attrs });
    const inputs = {
      server: input("server"),
      port: input("port", { type: "number", min: 0, max: 65535, value: cur.port ?? "0" }),
      security: h("select", { id: "mail-security", disabled: !write },
        ["none", "starttls", "tls"].map((v) => h("option", { value: v, selected: v === (cur.security || "starttls") }, v))),
      user: input("user", { autocomplete: "off" }),
      password: input("password", { type: "password", value: "", autocomplete: "new-password", placeholder: cur.password ? "********" : "" }),
      sender: input("sender", { type: "email" }),
      retry_minutes: input("retry_minutes", { type: "number", min: 1, value: cur.retry_minutes ?? "1440" }),
    };
    const msg = h("div", { id: "mail-out" });
    const form = h("form", { id: "mail-form", class: "grid" },
      Object.entries(inputs).map(([k, el]) => field(t("mail." + k), el)),
      write ? h("button", { type: "submit", id: "mail-save" }, t("mail.save")) : null);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const fields = [];
      for (const [k, el] of Object.entries(inputs)) {
        if (k === "password" && el.value === "") continue;
        fields.push([k, el.value]);
      }
      try {
        const r = await command({ MailConfigure: { fields } });
        msg.replaceChildren(notice("ok", t("saved", r.txid ?? "")));
      } catch (err) {
        msg.replaceChildren(notice("error", errorText(err)));
      }
    });
    const parts = [form, msg];
    if (write) {
      const to = h("input", { id: "mail-test-to", type: "email", size: 30 });
      const out = h("div", { id: "mail-test-out" });
      const test = h("form", { id: "mail-test", class: "grid" }, field(t("mail.test_to"), to),
        h("button", { type: "submit", id: "mail-test-send" }, t("mail.test")), out);
      test.addEventListener("submit", async (e) => {
        e.preventDefault();
        out.replaceChildren(notice("info", t("loading")));
        try {
          const r = await command({ MailTest: { address: to.value } });
          out.replaceChildren(notice(r.delivered ? "ok" : "error", r.delivered ? t("mail.delivered", r.address, r.detail) : t("mail.not_delivered", r.address, r.detail)));
        } catch (err) {
          out.replaceChildren(notice("error", errorText(err)));
        }
      });
      parts.push(test);
    }
    return section(t("mail.title"), ...parts);
  }

  function taskForm() {
    const sel = (id, values, value) => h("select", { id }, values.map((v) => h("option", { value: v, selected: v === value }, v)));
    const inputs = {
      name: h("input", { id: "task-name", required: true }),
      type: sel("task-type", ["send_cdr", "send_callcenter_cdr"]),
      schedule: sel("task-schedule", ["daily", "weekly", "monthly"]),
      time: h("input", { id: "task-time", type: "time", value: "00:00" }),
      weekday: sel("task-weekday", ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]),
      day_of_month: h("input", { id: "task-day_of_month", type: "number", min: 1, max: 31, value: 1 }),
      interval: sel("task-interval", ["current_day", "previous_day", "current_week", "previous_week", "current_month", "previous_month"], "previous_day"),
      format: sel("task-format", ["xlsx", "xlsx_detailed", "csv", "csv_detailed", "json", "xml"]),
      operator_events: h("input", { id: "task-operator_events", type: "checkbox" }),
      zip_over_mb: h("input", { id: "task-zip_over_mb", value: "5", size: 6 }),
      notify_supervisors: h("input", { id: "task-notify_supervisors", type: "checkbox" }),
      mask_numbers: h("input", { id: "task-mask_numbers", type: "checkbox" }),
      recipients: h("input", { id: "task-recipients", size: 40 }),
    };
    const wraps = {};
    for (const [k, el] of Object.entries(inputs)) wraps[k] = field(t("task." + k) === "task." + k ? k : t("task." + k), el);
    wraps.name = field(t("task.name"), inputs.name);
    wraps.type = field(t("task.type"), inputs.type);
    wraps.schedule = field(t("task.schedule"), inputs.schedule);
    // Which fields the chosen type, schedule and format take (the CLI's rules).
    const sync = () => {
      const sched = inputs.schedule.value;
      const cc = inputs.type.value === "send_callcenter_cdr";
      const detailed = inputs.format.value.endsWith("_detailed");
      wraps.weekday.hidden = !SCHEDULE_FIELDS[sched].includes("weekday");
      wraps.day_of_month.hidden = !SCHEDULE_FIELDS[sched].includes("day_of_month");
      wraps.operator_events.hidden = !(cc && detailed);
      wraps.notify_supervisors.hidden = !cc;
    };
    inputs.schedule.addEventListener("change", sync);
    inputs.type.addEventListener("change", sync);
    inputs.format.addEventListener("change", sync);
    sync();
    const msg = h("div", { id: "task-form-out" });
    const form = h("form", { id: "task-form", class: "grid" }, Object.values(wraps),
      h("button", { type: "submit", id: "task-save" }, t("task.save")), msg);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const cc = inputs.type.value === "send_callcenter_cdr";
      const notify = cc && inputs.notify_supervisors.checked;
      if (!inputs.recipients.value.trim() && !notify) {
        msg.replaceChildren(notice("error", t("task.need_recipients")));
        inputs.recipients.focus();
        return;
      }
      const fields = [];
      for (const [k, el] of Object.entries(inputs)) {
        if (wraps[k].hidden) continue;
        if (el.type === "checkbox") fields.push([k, el.checked ? "yes" : "no"]);
        else if (el.value !== "") fields.push([k, el.value]);
      }
      try {
        const r = await command({ TaskAdd: { fields } });
        msg.replaceChildren(notice("ok", t("task.created", r.txid ?? "")));
        form.reset();
        sync();
        await load();
      } catch (err) {
        msg.replaceChildren(notice("error", errorText(err)));
      }
    });
    return section(t("task.new"), form);
  }
}

// ------------------------------------------------------------ HA

async function ha(main, { can }) {
  main.append(h("h1", {}, t("nav.ha")));
  const st = await command("HaStatus");
  const node = (n) => h("dl", { class: "facts" },
    h("dt", {}, t("ha.serial")), h("dd", {}, fmt(n?.serial)),
    h("dt", {}, t("ha.lan_ip")), h("dd", {}, fmt(n?.lan_ip)),
    h("dt", {}, t("ha.sync_ip")), h("dd", {}, fmt(n?.sync_ip)));
  main.append(section(t("ha.status"),
    h("dl", { class: "facts", id: "ha-facts" },
      h("dt", {}, t("ha.role")), h("dd", { id: "ha-role" }, fmt(st.role)),
      h("dt", {}, t("ha.state")), h("dd", { id: "ha-state" }, fmt(st.state)),
      h("dt", {}, t("ha.holder")), h("dd", { id: "ha-holder" }, fmt(st.holder)),
      h("dt", {}, t("ha.paired")), h("dd", {}, st.paired ? t("yes") : t("no")),
      h("dt", {}, t("ha.sync")), h("dd", {}, fmt(st.sync?.mode)))),
  section(t("ha.local"), node(st.local)),
  section(t("ha.remote"), node(st.remote)));
  const out = h("div", { id: "ha-out" });
  if (can("ha", "write")) {
    main.append(h("button", {
      type: "button", id: "ha-switch", onclick: async () => {
        if (!window.confirm(t("ha.switch_confirm"))) return;
        try {
          await command("HaSwitch");
          out.replaceChildren(notice("ok", t("ha.switched")));
        } catch (err) {
          out.replaceChildren(notice("error", errorText(err)));
        }
      },
    }, t("ha.switch")));
  }
  main.append(out);
  try {
    const ev = await command("HaEvents");
    const rows = Array.isArray(ev) ? ev : ev.events || [];
    main.append(section(t("ha.events"), h("ul", { id: "ha-events" }, rows.slice(0, 20).map((e) => h("li", {}, typeof e === "string" ? e : fmt(e))))));
  } catch {
    // Events are a detail; the status above stands alone.
  }
}

// ------------------------------------------------------------ users

async function users(main, { can }) {
  main.append(h("h1", {}, t("nav.users")));
  const out = h("div", { id: "user-out" });
  const list = h("div", { id: "user-list" });
  const roleList = h("div", { id: "role-list" });
  let roles = [];

  async function load() {
    const [us, rs] = await Promise.all([command("UserList"), command("RoleList")]);
    roles = rs;
    list.replaceChildren(table([
      { key: "name", label: t("user.name") },
      { key: "role", label: t("user.role") },
      { key: "tenant", label: t("user.tenant") },
      { key: "email", label: t("user.email") },
    ], us));
    roleList.replaceChildren(table([
      { key: "name", label: t("role.name") },
      { key: "builtin", label: t("role.builtin"), render: (r) => (r.builtin ? t("yes") : t("no")) },
      { key: "permissions", label: t("role.permissions") },
    ], rs));
  }

  main.append(section(t("user.list"), list), section(t("role.list"), roleList));
  await load();
  if (can("users", "write")) main.append(userForm());
  main.append(out);

  function userForm() {
    const name = h("input", { id: "user-name", required: true, maxlength: 64, autocomplete: "off" });
    const role = h("select", { id: "user-role" }, roles.map((r) => h("option", { value: r.name }, r.name)));
    const email = h("input", { id: "user-email", type: "email" });
    const password = h("input", { id: "user-password", type: "password", autocomplete: "new-password", required: true });
    const form = h("form", { id: "user-form", class: "grid" },
      field(t("user.name"), name), field(t("user.role"), role), field(t("user.email"), email),
      field(t("login.password"), password),
      h("button", { type: "submit", id: "user-save" }, t("user.add")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const fields = [["name", name.value], ["role", role.value], ["password", password.value]];
      if (email.value) fields.push(["email", email.value]);
      try {
        const r = await command({ UserAdd: { fields } });
        out.replaceChildren(notice("ok", t("saved", r.txid ?? "")));
        form.reset();
        await load();
      } catch (err) {
        out.replaceChildren(notice("error", errorText(err)));
      }
    });
    return section(t("user.add"), form);
  }
}

export const PANELS = [
  { id: "dashboard", area: "system", title: "nav.dashboard", show: dashboard },
  { id: "audit", area: "audit", title: "nav.audit", show: audit },
  { id: "devices", area: "provisioning", title: "nav.devices", show: devices },
  { id: "tasks", area: "tasks", title: "nav.tasks", show: tasks },
  { id: "ha", area: "ha", title: "nav.ha", show: ha },
  { id: "users", area: "users", title: "nav.users", show: users },
];
