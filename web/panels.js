// The panels. Each: {id, area (the permission area it needs to read),
// title (catalogue key), show(main, {me, can})}. Buttons that change
// something appear only with the area's write permission; the server
// checks again.

import { t } from "/i18n.js";
import { api, command, h, field, table, fmt, notice, prefs, session, ApiError, errorText, section, word, confirmed, usTime } from "/ui.js";
import { haStatus, haConfig } from "/ha.js";
import { devices, templates, models, provFiles } from "/prov.js";

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
        h("button", { type: "button", id: "audit-prev", disabled: page <= 1, onclick: () => { page--; load(); } }, t("prev")),
        h("span", { id: "audit-page" }, t("page_n", r.page)),
        h("button", { type: "button", id: "audit-next", disabled: !r.more, onclick: () => { page++; load(); } }, t("next")));
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
      { key: "type", label: t("task.type"), render: (r) => word("task.type", r.type) },
      { key: "schedule", label: t("task.schedule"), render: (r) => word("task.schedule", r.schedule?.kind ?? r.schedule) },
      { key: "next_run", label: t("task.next_run") },
      { key: "running", label: t("task.running"), render: (r) => (r.running === "yes" ? t("yes") : t("no")) },
    ];
    if (can("tasks", "write")) {
      // Buttons in a row act on their own (a click or Enter on them does
      // not also open the row's history).
      const btn = (cls, label, f) => (r) => h("button", { type: "button", class: cls, dataset: { id: r.id }, onclick: (e) => { e.stopPropagation(); f(r); }, onkeydown: (e) => e.stopPropagation() }, t(label));
      cols.push({ key: "run", label: "", render: (r) => h("span", { class: "row-actions" },
        btn("run small", "task.run", (x) => run(x.id))(r),
        btn("edit secondary small", "task.edit", (x) => editor.edit(x))(r),
        btn("delete danger small", "delete", (x) => remove(x))(r)) });
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

  async function remove(r) {
    if (!confirmed(t("task.delete_confirm", r.name))) return;
    try {
      await command({ TaskDelete: { ids: [Number(r.id)] } });
      out.replaceChildren(notice("ok", t("object.deleted", r.name)));
      hist.replaceChildren();
      await load();
    } catch (err) {
      out.replaceChildren(notice("error", errorText(err)));
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

  const editor = can("tasks", "write") ? taskForm() : null;
  if (editor) main.append(editor.el);
  await load();
  main.append(await mailSection());

  // The SMTP settings the tasks mail through, and "send test".
  async function mailSection() {
    // Not configured: no settings (an empty list), the form starts empty.
    const r = await command("MailShow");
    const cur = (Array.isArray(r) ? r[0] : r) || {};
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
    // The outbox: the newest messages and their delivery per recipient.
    const box = h("div", { id: "mail-outbox" });
    const retryOut = h("div", { id: "mail-retry-out" });
    async function outbox() {
      try {
        const rows = await command({ MailOutbox: { limit: 20 } });
        box.replaceChildren(rows.length ? table([
          { key: "id", label: t("mail.message") },
          { key: "queued_us", label: t("mail.queued"), render: (m) => usTime(m.queued_us) },
          { key: "subject", label: t("mail.subject") },
          { key: "run", label: t("task.run_no") },
          { key: "deliveries", label: t("task.deliveries"), render: (m) => h("ul", { class: "plain" }, m.deliveries.map((d) => h("li", {}, `${d.recipient}: ${d.status}${d.detail ? " (" + d.detail + ")" : ""}`))) },
        ], rows) : notice("info", t("mail.outbox_empty")));
      } catch (err) {
        box.replaceChildren(notice("error", errorText(err)));
      }
    }
    parts.push(h("h3", {}, t("mail.outbox")), box,
      h("button", { type: "button", id: "mail-outbox-refresh", class: "secondary", onclick: outbox }, t("refresh")));
    if (write) {
      parts.push(h("button", { type: "button", id: "mail-retry", onclick: async () => {
        try {
          await command("MailRetry");
          retryOut.replaceChildren(notice("ok", t("mail.retried")));
          await outbox();
        } catch (err) {
          retryOut.replaceChildren(notice("error", errorText(err)));
        }
      } }, t("mail.retry")), retryOut);
    }
    await outbox();
    return section(t("mail.title"), ...parts);
  }

  function taskForm() {
    const sel = (id, values, value) => h("select", { id }, values.map((v) => h("option", { value: v, selected: v === value }, word(id.replace("-", "."), v))));
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
    for (const [k, el] of Object.entries(inputs)) wraps[k] = field(t("task." + k), el);
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
    // New task, or the task being edited (its id).
    let editing = null;
    const title = h("h2", { id: "task-form-title", tabindex: "-1" }, t("task.new"));
    const save = h("button", { type: "submit", id: "task-save" }, t("task.save"));
    const cancel = h("button", { type: "button", id: "task-cancel", class: "secondary", hidden: true, onclick: () => fresh() }, t("cancel"));
    const form = h("form", { id: "task-form", class: "grid" }, Object.values(wraps), save, cancel, msg);
    function fresh() {
      editing = null;
      form.reset();
      sync();
      title.textContent = t("task.new");
      save.textContent = t("task.save");
      cancel.hidden = true;
    }
    function edit(r) {
      editing = r.id;
      for (const [k, el] of Object.entries(inputs)) {
        if (el.type === "checkbox") el.checked = r[k] === "yes";
        else if (r[k] !== undefined && r[k] !== "") el.value = r[k];
      }
      sync();
      title.textContent = t("task.edit_title", r.name);
      save.textContent = t("save");
      cancel.hidden = false;
      msg.replaceChildren();
      title.focus();
    }
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
        const r = await command(editing === null ? { TaskAdd: { fields } } : { TaskSet: { id: Number(editing), fields } });
        msg.replaceChildren(notice("ok", editing === null ? t("task.created", r.txid ?? "") : t("saved", r.txid ?? "")));
        fresh();
        await load();
      } catch (err) {
        msg.replaceChildren(notice("error", errorText(err)));
      }
    });
    return { el: h("section", {}, title, form), edit };
  }
}

// ------------------------------------------------------------ users

const AREAS = ["system", "ha", "provisioning", "tasks", "cdr", "audit", "users"];

async function users(main, { can }) {
  main.append(h("h1", {}, t("nav.users")));
  const out = h("div", { id: "user-out" });
  const list = h("div", { id: "user-list" });
  const roleList = h("div", { id: "role-list" });
  const write = can("users", "write");
  let roles = [];

  // A delete button for a row (users; custom roles), asked first.
  const del = (cmd, name) => h("button", {
    type: "button", class: "danger small", dataset: { name }, "aria-label": t("delete_named", name),
    onclick: async (e) => {
      e.stopPropagation();
      if (!confirmed(t("object.delete_confirm", name))) return;
      try {
        await command(cmd);
        out.replaceChildren(notice("ok", t("object.deleted", name)));
        await load();
      } catch (err) {
        out.replaceChildren(notice("error", errorText(err)));
      }
    },
    onkeydown: (e) => e.stopPropagation(),
  }, t("delete"));

  async function load() {
    const [us, rs] = await Promise.all([command("UserList"), command("RoleList")]);
    roles = rs;
    const ucols = [
      { key: "name", label: t("user.name") },
      { key: "role", label: t("user.role") },
      { key: "tenant", label: t("user.tenant") },
      { key: "email", label: t("user.email") },
    ];
    if (write) ucols.push({ key: "del", label: "", render: (u) => del({ UserDelete: { names: [u.name] } }, u.name) });
    list.replaceChildren(table(ucols, us, write ? editUser : undefined));
    const rcols = [
      { key: "name", label: t("role.name") },
      { key: "builtin", label: t("role.builtin"), render: (r) => (r.builtin ? t("yes") : t("no")) },
      { key: "permissions", label: t("role.permissions") },
    ];
    if (write) rcols.push({ key: "del", label: "", render: (r) => (r.builtin ? "" : del({ RoleDelete: { names: [r.name] } }, r.name)) });
    roleList.replaceChildren(table(rcols, rs, write ? (r) => (r.builtin ? null : roleEditor.load(r)) : undefined));
    roleSelects.forEach((sel) => {
      const v = sel.value;
      sel.replaceChildren(...roles.map((r) => h("option", { value: r.name, selected: r.name === v }, r.name)));
    });
  }
  const roleSelects = [];
  const editBox = h("div", { id: "user-edit" });

  // A user's role and e-mail, changed in place (UserSet).
  function editUser(u) {
    const role = h("select", { id: "user-edit-role" }, roles.map((r) => h("option", { value: r.name, selected: r.name === u.role }, r.name)));
    const email = h("input", { id: "user-edit-email", type: "email", value: u.email || "" });
    const form = h("form", { id: "user-edit-form", class: "grid" },
      h("h3", { id: "user-edit-title", tabindex: "-1" }, t("user.edit", u.name)),
      field(t("user.role"), role), field(t("user.email"), email),
      h("button", { type: "submit", id: "user-edit-save" }, t("save")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const fields = [];
      if (role.value !== u.role) fields.push(["role", role.value]);
      if (email.value !== (u.email || "")) fields.push(["email", email.value]);
      if (!fields.length) return out.replaceChildren(notice("info", t("unchanged")));
      try {
        const r = await command({ UserSet: { name: u.name, fields } });
        out.replaceChildren(notice("ok", t("saved", r.txid ?? "")));
        editBox.replaceChildren();
        await load();
      } catch (err) {
        out.replaceChildren(notice("error", errorText(err)));
      }
    });
    editBox.replaceChildren(form);
    document.getElementById("user-edit-title").focus();
  }

  // Defining a role: a name and, per area, none, read or write.
  const roleEditor = (() => {
    const name = h("input", { id: "role-name", maxlength: 64, autocomplete: "off" });
    let editing = null;
    const picks = {};
    const grid = h("fieldset", { class: "columns", id: "role-areas" }, h("legend", {}, t("role.permissions")),
      AREAS.map((a) => {
        picks[a] = h("select", { id: "role-area-" + a }, ["", "read", "write"].map((v) => h("option", { value: v }, v ? word("access", v) : t("role.no_access"))));
        return field(word("area", a), picks[a]);
      }));
    const msg = h("div", { id: "role-out" });
    const title = h("h2", {}, t("role.add"));
    const save = h("button", { type: "submit", id: "role-save" }, t("role.add"));
    const form = h("form", { id: "role-form", class: "grid" }, field(t("role.name"), name), grid, save, msg);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const perms = AREAS.filter((a) => picks[a].value).map((a) => `${a}:${picks[a].value}`).join(",");
      try {
        const r = editing
          ? await command({ RoleSet: { name: editing, fields: [["permissions", perms]] } })
          : await command({ RoleAdd: { fields: [["name", name.value], ["permissions", perms]] } });
        msg.replaceChildren(notice("ok", t("saved", r.txid ?? "")));
        reset();
        await load();
      } catch (err) {
        msg.replaceChildren(notice("error", errorText(err)));
      }
    });
    function reset() {
      editing = null;
      name.disabled = false;
      name.value = "";
      AREAS.forEach((a) => (picks[a].value = ""));
      title.textContent = save.textContent = t("role.add");
    }
    return {
      el: h("section", {}, title, form),
      load(r) {
        editing = r.name;
        name.value = r.name;
        name.disabled = true;
        AREAS.forEach((a) => (picks[a].value = ""));
        for (const p of String(r.permissions || "").split(",")) {
          const [a, v] = p.split(":");
          if (picks[a]) picks[a].value = v;
        }
        title.textContent = t("role.edit", r.name);
        save.textContent = t("save");
        name.closest("form").querySelector("select").focus();
      },
    };
  })();

  main.append(section(t("user.list"), list), editBox, section(t("role.list"), roleList), out);
  await load();
  if (write) main.append(userForm(), roleEditor.el);

  function userForm() {
    const name = h("input", { id: "user-name", required: true, maxlength: 64, autocomplete: "off" });
    const role = h("select", { id: "user-role" }, roles.map((r) => h("option", { value: r.name }, r.name)));
    roleSelects.push(role);
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
  { id: "templates", area: "provisioning", title: "nav.templates", show: templates },
  { id: "models", area: "provisioning", title: "nav.models", show: models },
  { id: "files", area: "provisioning", title: "nav.files", show: provFiles },
  { id: "tasks", area: "tasks", title: "nav.tasks", show: tasks },
  { id: "ha", area: "ha", title: "nav.ha", show: haStatus },
  { id: "ha-config", area: "ha", title: "nav.ha_config", show: haConfig },
  { id: "users", area: "users", title: "nav.users", show: users },
];
