// Provisioning: devices, templates (editor with line/column errors and a
// rendered preview), device models with their file-name rules, custom
// placeholders, redirection servers and their status, the generated files
// with a viewer, the fetch log and the unassigned devices. Lists are
// searched, sorted and paged in memory (10,000 devices stay fast); the
// daemon checks every field, and its refusal is shown at the field it names.

import { t } from "/i18n.js";
import { command, h, field, table, fmt, notice, errorText, section, word, usTime, confirmed, pagedList } from "/ui.js";

// The three MAC formats the daemon accepts (README: device fields).
const MAC = /^([0-9a-f]{12}|[0-9a-f]{2}(:[0-9a-f]{2}){5}|[0-9a-f]{2}(-[0-9a-f]{2}){5})$/i;
const list = (kind) => command({ ProvList: { kind } });
const yesNo = (v) => word("v", v);

// The field a refusal names: messages start with the field's key
// (`mac is required`, `file rule ...`, `ip "x" is not ...`).
function fieldOf(message, keys) {
  const m = /^(?:[a-z_]+ [^ :]+: )?([a-z_]+)/.exec(message)?.[1];
  if (message.startsWith("file rule")) return keys.includes("files") ? "files" : null;
  if (/placeholder name/.test(message)) return "name";
  return keys.includes(m) ? m : null;
}

// A form for one object of `kind`: new (`id` null: ProvAdd with the
// non-empty fields) or existing (ProvSet with the changed ones). `spec`:
// [{key, type: text|select|yesno|password|code, options?: [[value, label]]}].
function objectForm(kind, prefix, spec, cur, id, done, { readOnly = false, toFields = (f) => f } = {}) {
  const inputs = {};
  const errors = {};
  const wraps = spec.map((f) => {
    const fid = `${prefix}-${f.key}`;
    const value = cur[f.key] ?? f.initial ?? "";
    let el;
    if (f.type === "select" || f.type === "yesno") {
      const options = f.type === "yesno" ? [["yes", t("yes")], ["no", t("no")]] : f.options;
      el = h("select", { id: fid }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
    } else if (f.type === "code") {
      el = h("textarea", { id: fid, rows: 18, cols: 90, spellcheck: "false", wrap: "off", class: "code" });
      el.value = value;
    } else {
      el = h("input", {
        id: fid, type: f.type === "password" ? "password" : "text", autocomplete: "off", size: f.size || 24,
        value: f.type === "password" ? "" : value, placeholder: f.type === "password" && value ? "********" : false,
      });
    }
    el.disabled = readOnly || (id !== null && f.fixed);
    el.setAttribute("aria-describedby", fid + "-error");
    inputs[f.key] = el;
    errors[f.key] = h("span", { id: fid + "-error", class: "field-error", "aria-live": "polite" });
    const w = field(t(f.label || `${kind}.${f.key}`), el, f.hint ? t(f.hint) : null);
    w.append(errors[f.key]);
    if (f.type === "code") w.classList.add("wide");
    return w;
  });
  const msg = h("div", { id: prefix + "-out" });
  const form = h("form", { id: prefix + "-form", class: "grid", novalidate: true }, wraps,
    readOnly ? null : h("button", { type: "submit", id: prefix + "-save" }, t(id === null ? "add" : "save")), msg);
  const keys = spec.map((f) => f.key);
  function clear() {
    for (const k of keys) {
      errors[k].textContent = "";
      inputs[k].removeAttribute("aria-invalid");
    }
  }
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear();
    const fields = [];
    for (const f of spec) {
      const v = inputs[f.key].value;
      if (id === null ? v !== "" : f.type === "password" ? v !== "" : !f.fixed && v !== String(cur[f.key] ?? "")) fields.push([f.key, v]);
    }
    if (!fields.length) {
      msg.replaceChildren(notice("info", t("unchanged")));
      return;
    }
    try {
      const sent = toFields(fields, inputs);
      const r = await command(id === null ? { ProvAdd: { kind, fields: sent } } : { ProvSet: { kind, id, fields: sent } });
      msg.replaceChildren(notice("ok", t("saved", r.txid ?? "")));
      for (const [k, v] of fields) cur[k] = v;
      await done(r);
    } catch (err) {
      const k = err.status === 422 ? fieldOf(err.message, keys) : null;
      if (k) {
        errors[k].textContent = err.message;
        inputs[k].setAttribute("aria-invalid", "true");
        inputs[k].focus();
      }
      msg.replaceChildren(notice("error", errorText(err)));
      onError(err);
    }
  });
  let onError = () => {};
  return { form, inputs, errors, msg, onError: (f) => { onError = f; } };
}

// A kind's list, its add form and, for a chosen object, its edit form,
// delete button and `extra(obj, box)` (files, preview...).
function kindManager(main, { kind, id, title, addTitle, cols, spec, can, extra, rows, toFields }) {
  const write = can("provisioning", "write");
  const detail = h("div", { id: id + "-detail" });
  const out = h("div", { id: id + "-msg" });
  const pl = pagedList(id, cols, (r) => open(r).catch((err) => out.replaceChildren(notice("error", errorText(err)))), { countKey: "list.count" });
  let current = [];
  async function load() {
    current = rows ? await rows() : await list(kind);
    pl.set(current);
  }
  async function open(r) {
    const obj = (await command({ ProvShow: { kind, id: r.id } }))[0] || r;
    const ro = !write || obj.builtin;
    const f = objectForm(kind, id + "-e", spec, { ...obj }, obj.id, async () => { await load(); }, { readOnly: ro, toFields });
    const parts = [h("h2", { id: id + "-detail-title", tabindex: "-1" }, t("object.title", word("kind", kind), obj.id)),
      obj.builtin ? notice("info", t("object.builtin")) : null, f.form];
    if (write && !obj.builtin) {
      parts.push(h("button", {
        type: "button", id: id + "-delete", class: "danger", onclick: async () => {
          if (!confirmed(t("object.delete_confirm", obj.id))) return;
          try {
            await command({ ProvDelete: { kind, ids: [obj.id] } });
            out.replaceChildren(notice("ok", t("object.deleted", obj.id)));
            detail.replaceChildren();
            await load();
          } catch (err) {
            out.replaceChildren(notice("error", errorText(err)));
          }
        },
      }, t("delete")));
    }
    detail.replaceChildren(...parts.filter(Boolean));
    // The keyboard moves to the object first; its extras load after.
    document.getElementById(id + "-detail-title").focus();
    if (extra) await extra(obj, detail, f);
  }
  const sec = section(title, pl.el, out, detail);
  main.append(sec);
  if (write && spec && addTitle) {
    const f = objectForm(kind, id + "-f", spec, {}, null, async () => {
      f.form.reset();
      await load();
    }, { toFields });
    main.append(section(t(addTitle), f.form));
  }
  return { load, open, all: () => current };
}

// ------------------------------------------------------------ devices

function deviceSpec(models, templates, accounts, servers) {
  const opts = (rows, none) => [...(none ? [["", t("none")]] : []), ...rows.map((r) => [r.id, r.id])];
  return [
    { key: "enabled", type: "yesno", label: "dev.enabled" },
    { key: "model", type: "select", options: opts(models), label: "dev.model" },
    { key: "template", type: "select", options: opts(templates), label: "dev.template" },
    { key: "account", type: "select", options: opts(accounts, true), label: "dev.account" },
    { key: "redirect_server", type: "select", options: opts(servers, true), label: "dev.redirect_server" },
    { key: "notes", label: "dev.notes", size: 30 },
    { key: "dhcp", type: "yesno", label: "dev.dhcp" },
    { key: "ip", label: "dev.ip" },
    { key: "netmask", label: "dev.netmask" },
    { key: "gateway", label: "dev.gateway" },
    { key: "dns1", label: "dev.dns1" },
    { key: "dns2", label: "dev.dns2" },
    { key: "http_user", label: "dev.http_user" },
    { key: "http_password", type: "password", label: "dev.http_password" },
  ];
}

// A device's files as a preview (rendered now, nothing saved) or as
// generated, each shown as text in a viewer (never parsed as markup).
function fileViewer(id, files, load) {
  const viewer = h("pre", { id: id + "-file", class: "file", tabindex: "0" });
  return h("div", {},
    files.length ? h("ul", { class: "plain" }, files.map((f) => h("li", {},
      h("button", { type: "button", class: "link", dataset: { path: f.path }, onclick: async () => {
        try {
          viewer.textContent = await load(f);
        } catch (err) {
          viewer.textContent = errorText(err);
        }
      } }, f.size !== undefined ? t("file.sized", f.path, f.size) : f.path)))) : notice("info", t("dev.no_files")),
    viewer);
}

export async function devices(main, { can }) {
  main.append(h("h1", {}, t("nav.devices")));
  const [models, templates, accounts, servers] = await Promise.all([list("model"), list("template"), list("account"), list("redirect_server")]);
  let files = null;
  const cols = [
    { key: "mac", label: t("dev.mac") },
    { key: "model", label: t("dev.model") },
    { key: "template", label: t("dev.template") },
    { key: "account", label: t("dev.account") },
    { key: "enabled", label: t("dev.enabled"), text: (d) => yesNo(d.enabled) },
    { key: "notes", label: t("dev.notes") },
  ];
  const mgr = kindManager(main, {
    kind: "device", id: "dev", title: t("dev.list"), cols, can,
    spec: deviceSpec(models, templates, accounts, servers),
    extra: async (d, box) => {
      // Generated files, the fetch log and a preview of what it would get.
      files = files || (await command("ProvFiles")).files;
      const mine = files.filter((f) => f.device === d.mac);
      box.append(h("div", { id: "dev-files" },
        h("h3", {}, t("dev.files", d.mac)),
        fileViewer("dev", mine, async (f) => (await command({ ProvFile: { path: f.path } }))[0]?.content ?? "")));
      const log = await command({ ProvLog: { mac: d.mac } });
      box.append(h("h3", {}, t("log.title_of", d.mac)), logTable(log, "dev-log"));
      const prev = h("div", { id: "dev-preview" });
      box.append(h("h3", {}, t("dev.preview")), h("button", {
        type: "button", id: "dev-render", onclick: async () => {
          try {
            const r = await command({ ProvRender: { mac: d.mac } });
            prev.replaceChildren(fileViewer("dev-render", r, async (f) => f.content));
          } catch (err) {
            prev.replaceChildren(notice("error", errorText(err)));
          }
        },
      }, t("dev.render")), prev);
    },
  });
  const out = h("div", { id: "dev-out" });
  if (can("provisioning", "write")) main.append(addForm(), out);
  await mgr.load();
  // The accounts (extensions) devices are bound to.
  const acc = kindManager(main, {
    kind: "account", id: "acc", title: t("acc.list"), addTitle: "acc.add", can,
    cols: [
      { key: "id", label: t("acc.extension") },
      { key: "display_name", label: t("acc.display_name") },
      { key: "sip_user", label: t("acc.sip_user") },
      { key: "email", label: t("user.email") },
    ],
    spec: [
      { key: "extension", label: "acc.extension", fixed: true },
      { key: "display_name", label: "acc.display_name", size: 30 },
      { key: "first_name", label: "acc.first_name" },
      { key: "last_name", label: "acc.last_name" },
      { key: "email", label: "user.email", size: 30 },
      { key: "sip_user", label: "acc.sip_user", hint: "acc.sip_user_hint" },
      { key: "sip_password", type: "password", label: "acc.sip_password" },
    ],
  });
  await acc.load();
  const reload = async () => {
    files = null;
    await mgr.load();
  };

  function addForm() {
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
        await reload();
      } catch (err) {
        out.replaceChildren(notice("error", errorText(err)));
      }
    });
    return section(t("dev.add"), form);
  }
}

// ------------------------------------------------------------ templates

// The line and column a template refusal names ("at line 2, column 3").
export function position(message) {
  const m = /line (\d+)(?:, column (\d+))?/.exec(message);
  return m ? { line: Number(m[1]), column: Number(m[2] || 1) } : null;
}

// Puts the caret at `line`:`column` of a textarea and scrolls it there.
function caretAt(area, { line, column }) {
  const lines = area.value.split("\n");
  let at = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i++) at += lines[i].length + 1;
  at += Math.min(column - 1, (lines[line - 1] || "").length);
  area.focus();
  area.setSelectionRange(at, at);
  const lh = parseFloat(getComputedStyle(area).lineHeight) || 18;
  area.scrollTop = Math.max(0, (line - 3) * lh);
}

export async function templates(main, { can }) {
  main.append(h("h1", {}, t("nav.templates")));
  const [models, devs] = await Promise.all([list("model"), list("device")]);
  const spec = [
    { key: "name", label: "tpl.name", fixed: true },
    { key: "model", type: "select", options: models.map((m) => [m.id, m.id]), label: "tpl.model" },
    { key: "content", type: "code", label: "tpl.content", hint: "tpl.content_hint" },
  ];
  const write = can("provisioning", "write");
  const mgr = kindManager(main, {
    kind: "template", id: "tpl", title: t("tpl.list"), addTitle: null, can, spec,
    cols: [
      { key: "id", label: t("tpl.name") },
      { key: "model", label: t("tpl.model") },
      { key: "builtin", label: t("object.builtin_col"), text: (r) => (r.builtin ? t("yes") : t("no")) },
      { key: "used", label: t("tpl.devices"), text: (r) => String(devs.filter((d) => d.template === r.id).length) },
    ],
    extra: async (tpl, box, f) => {
      const area = f.inputs.content;
      // An error names its line and column: the caret goes there.
      f.onError((err) => {
        const pos = position(err.message);
        if (pos) {
          f.errors.content.textContent = t("tpl.error_at", pos.line, pos.column, err.message);
          area.setAttribute("aria-invalid", "true");
          caretAt(area, pos);
        }
      });
      const where = h("span", { id: "tpl-caret", class: "hint", "aria-live": "off" });
      const showCaret = () => {
        const before = area.value.slice(0, area.selectionStart).split("\n");
        where.textContent = t("tpl.caret", before.length, before[before.length - 1].length + 1);
      };
      area.addEventListener("keyup", showCaret);
      area.addEventListener("click", showCaret);
      area.after(where);
      if (tpl.builtin && write) {
        const name = h("input", { id: "tpl-copy-name", size: 24 });
        const msg = h("div", { id: "tpl-copy-out" });
        const copy = h("form", { id: "tpl-copy", class: "grid" }, field(t("tpl.copy_as"), name),
          h("button", { type: "submit", id: "tpl-copy-save" }, t("tpl.copy")), msg);
        copy.addEventListener("submit", async (e) => {
          e.preventDefault();
          try {
            await command({ ProvCopyTemplate: { from: tpl.id, name: name.value, tenant: null } });
            await mgr.load();
            await mgr.open({ id: name.value });
          } catch (err) {
            msg.replaceChildren(notice("error", errorText(err)));
          }
        });
        box.append(copy);
      }
      // A preview of the text in the editor, saved or not, for a device:
      // those using the template first, then the others of its model.
      const users = devs.filter((d) => d.template === tpl.id)
        .concat(devs.filter((d) => d.template !== tpl.id && d.model === tpl.model))
        .slice(0, 500);
      const pick = h("select", { id: "tpl-preview-device" }, users.map((d) => h("option", { value: d.mac }, d.mac)));
      const prev = h("div", { id: "tpl-preview" });
      const go = h("button", { type: "button", id: "tpl-render", disabled: !users.length, onclick: async () => {
        prev.replaceChildren(); // never the previous text's files beside the new text
        try {
          const r = await command({ ProvPreview: { mac: pick.value, template: tpl.id, content: area.value } });
          prev.replaceChildren(fileViewer("tpl-render", r, async (x) => x.content));
          prev.querySelector("button")?.click();
        } catch (err) {
          const pos = position(err.message || "");
          prev.replaceChildren(notice("error", pos ? t("tpl.error_at", pos.line, pos.column, err.message) : errorText(err)));
        }
      } }, t("tpl.render"));
      box.append(section(t("tpl.preview"), users.length ? field(t("tpl.preview_device"), pick) : notice("info", t("tpl.no_devices")), go, prev));
    },
  });
  if (write) {
    // A new template starts as a copy of another (its model's syntax).
    const from = h("select", { id: "tpl-new-from" }, (await list("template")).map((x) => h("option", { value: x.id }, x.id)));
    const name = h("input", { id: "tpl-new-name", size: 24 });
    const msg = h("div", { id: "tpl-new-out" });
    const form = h("form", { id: "tpl-new", class: "grid" }, field(t("tpl.copy_from"), from), field(t("tpl.name"), name),
      h("button", { type: "submit", id: "tpl-new-save" }, t("tpl.copy")), msg);
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await command({ ProvCopyTemplate: { from: from.value, name: name.value, tenant: null } });
        await mgr.load();
        await mgr.open({ id: name.value });
      } catch (err) {
        msg.replaceChildren(notice("error", errorText(err)));
      }
    });
    main.append(section(t("tpl.new"), form));
  }
  await mgr.load();
}

// ------------------------------------------------------------ models

export async function models(main, { can }) {
  main.append(h("h1", {}, t("nav.models")));
  const brands = await list("brand");
  const ms = kindManager(main, {
    kind: "model", id: "model", title: t("model.list"), addTitle: "model.add", can,
    cols: [
      { key: "id", label: t("model.name") },
      { key: "brand", label: t("model.brand") },
      { key: "format", label: t("model.format") },
      { key: "files", label: t("model.files") },
    ],
    spec: [
      { key: "name", label: "model.name", fixed: true },
      { key: "brand", type: "select", options: brands.map((b) => [b.id, b.id]), label: "model.brand" },
      { key: "format", type: "select", options: ["plain", "xml"].map((v) => [v, v]), label: "model.format" },
      { key: "files", label: "model.files", hint: "model.files_hint", size: 50 },
      { key: "model_files", label: "model.model_files", hint: "model.model_files_hint", size: 50 },
    ],
  });
  const ph = kindManager(main, {
    kind: "placeholder", id: "ph", title: t("ph.list"), addTitle: "ph.add", can,
    cols: [
      { key: "name", label: t("ph.name") },
      { key: "type", label: t("ph.type") },
      { key: "value", label: t("ph.value") },
    ],
    spec: [
      { key: "name", label: "ph.name", hint: "ph.name_hint", fixed: true },
      { key: "type", type: "select", options: [["static", t("ph.static")], ["interface", t("ph.interface")]], label: "ph.type" },
      { key: "value", label: "ph.value", size: 40 },
    ],
    // The daemon takes `value` (fixed text) or `interface` (its address,
    // read live); the form shows one field and a type.
    toFields: (fields, inputs) => {
      const rest = fields.filter(([k]) => k !== "type" && k !== "value");
      const key = inputs.type.value === "interface" ? "interface" : "value";
      return [...rest, [key, inputs.value.value]];
    },
  });
  const rs = kindManager(main, {
    kind: "redirect_server", id: "rs", title: t("rs.list"), addTitle: "rs.add", can,
    cols: [
      { key: "id", label: t("rs.name") },
      { key: "brand", label: t("rs.brand") },
      { key: "api", label: t("rs.api") },
      { key: "enabled", label: t("dev.enabled"), text: (r) => yesNo(r.enabled) },
      { key: "url", label: t("rs.url") },
    ],
    spec: [
      { key: "name", label: "rs.name", fixed: true },
      { key: "brand", type: "select", options: ["snom", "yealink", "escene"].map((v) => [v, v]), label: "rs.brand" },
      { key: "api", label: "rs.api", hint: "rs.api_hint" },
      { key: "url", label: "rs.url", size: 40 },
      { key: "user", label: "rs.user" },
      { key: "password", type: "password", label: "rs.password" },
      { key: "access_key_id", label: "rs.access_key_id" },
      { key: "access_key_secret", type: "password", label: "rs.access_key_secret" },
      { key: "region", type: "select", options: ["eu", "us", "au"].map((v) => [v, v]), label: "rs.region" },
      { key: "enabled", type: "yesno", label: "dev.enabled", initial: "yes" },
    ],
  });
  // Each device's registration on its redirection server.
  const status = h("div", { id: "rs-status" });
  const msg = h("div", { id: "rs-sync-out" });
  async function loadStatus() {
    const rows = await command("ProvRedirectStatus");
    status.replaceChildren((rows || []).length ? table([
      { key: "mac", label: t("dev.mac") },
      { key: "server", label: t("rs.name") },
      { key: "provisioned", label: t("rs.provisioned"), render: (r) => (r.provisioned ? t("yes") : t("no")) },
      { key: "registered_on", label: t("rs.registered_on") },
      { key: "pending", label: t("rs.pending"), render: (r) => (r.pending || []).join("; ") },
      { key: "state", label: t("rs.state") },
      { key: "last_error", label: t("rs.error") },
    ], rows) : notice("info", t("rs.none")));
  }
  main.append(section(t("rs.status"), status,
    can("provisioning", "write") ? h("button", { type: "button", id: "rs-sync", onclick: async () => {
      try {
        await command("ProvRedirectSync");
        msg.replaceChildren(notice("ok", t("rs.synced")));
        await loadStatus();
      } catch (err) {
        msg.replaceChildren(notice("error", errorText(err)));
      }
    } }, t("rs.sync")) : null, msg));
  await Promise.all([ms.load(), ph.load(), rs.load(), loadStatus()]);
}

// ------------------------------------------------------------ files, log, unassigned

function logTable(rows, id) {
  if (!rows.length) return notice("info", t("log.empty"));
  const tb = table([
    { key: "time_us", label: t("col.time"), render: (r) => usTime(r.time_us) },
    { key: "device", label: t("dev.mac") },
    { key: "protocol", label: t("log.protocol") },
    { key: "address", label: t("col.ip") },
    { key: "file", label: t("log.file") },
    { key: "result", label: t("log.result") },
    { key: "bytes", label: t("log.bytes") },
    { key: "user_agent", label: t("log.user_agent") },
  ], rows);
  tb.id = id;
  return tb;
}

export async function provFiles(main) {
  main.append(h("h1", {}, t("nav.files")));
  const viewer = h("pre", { id: "files-view", class: "file", tabindex: "0" });
  const title = h("h2", { id: "files-view-title" }, t("files.viewer"));
  const pl = pagedList("files", [
    { key: "path", label: t("log.file") },
    { key: "device", label: t("dev.mac") },
    { key: "size", label: t("log.bytes") },
  ], async (f) => {
    try {
      viewer.textContent = (await command({ ProvFile: { path: f.path } }))[0]?.content ?? "";
      title.textContent = t("files.viewing", f.path);
      viewer.focus();
    } catch (err) {
      viewer.textContent = errorText(err);
    }
  });
  const missing = h("div", { id: "files-missing" });
  const log = h("div", { id: "log-box" });
  const unknown = h("div", { id: "unknown-box" });
  main.append(section(t("files.list"), pl.el), title, viewer, section(t("files.missing"), missing),
    section(t("log.title"), log), section(t("unknown.title"), unknown));
  const [files, rows, unk] = await Promise.all([command("ProvFiles"), command({ ProvLog: { mac: null } }), command("ProvUnknown")]);
  pl.set(files.files || []);
  // The daemon's own sentences: why a device got no file, or part of one.
  const none = [...(files.problems || []), ...(files.idle || []), ...(files.warnings || [])];
  missing.replaceChildren(none.length ? h("ul", { id: "files-problems" }, none.map((p) => h("li", {}, p))) : notice("info", t("files.none_missing")));
  log.replaceChildren(logTable(rows || [], "log-table"));
  const devs = unk.devices || [];
  const blocked = unk.blocked || [];
  unknown.replaceChildren(
    devs.length ? Object.assign(table([
      { key: "mac", label: t("dev.mac") },
      { key: "address", label: t("col.ip") },
      { key: "file", label: t("log.file") },
      { key: "count", label: t("unknown.count") },
      { key: "last_us", label: t("unknown.last"), render: (r) => usTime(r.last_us) },
      { key: "user_agent", label: t("log.user_agent") },
    ], devs), { id: "unknown-table" }) : notice("info", t("unknown.none")),
    h("h3", {}, t("unknown.blocked")),
    blocked.length ? table([
      { key: "address", label: t("col.ip") },
      { key: "seconds_left", label: t("unknown.seconds_left") },
    ], blocked) : notice("info", t("unknown.none_blocked")));
}
