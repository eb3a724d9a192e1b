// High availability: the status of both nodes with its actions and recent
// events, and the configuration form. The daemon checks every rule (the
// same code as `kpbx ha configure`); its refusal is shown at the field it
// names.

import { t } from "/i18n.js";
import { command, h, field, table, fmt, notice, errorText, section, word, usTime, one, confirmed } from "/ui.js";

// ------------------------------------------------------------ status

function holderText(st) {
  const serial = (n) => (n?.serial ? ` (${n.serial})` : "");
  switch (st.holder) {
    case "local": return t("ha.local") + serial(st.local);
    case "remote": return t("ha.remote") + serial(st.remote);
    default: return word("ha.holder", st.holder);
  }
}

function age(ms) {
  return ms === null || ms === undefined ? t("ha.never") : t("ha.ms_ago", ms);
}

function drawStatus(st) {
  const holds = (who) => st.holder === who || st.holder === "both";
  const nodes = table([
    { key: "who", label: t("ha.node") },
    { key: "serial", label: t("ha.serial") },
    { key: "lan_ip", label: t("ha.lan_ip") },
    { key: "sync_ip", label: t("ha.sync_ip") },
    { key: "holds", label: t("ha.holds"), render: (n) => (n.holds ? t("yes") : t("no")) },
  ], [
    { who: t("ha.local"), ...st.local, holds: holds("local") },
    { who: t("ha.remote"), ...st.remote, holds: holds("remote") },
  ]);
  nodes.id = "ha-nodes";
  const paths = (st.paths || []).length ? table([
    { key: "path", label: t("ha.path") },
    { key: "heartbeat_age_ms", label: t("ha.heartbeat"), render: (p) => age(p.heartbeat_age_ms) },
    { key: "warning", label: t("ha.warning"), render: (p) => (p.warning ? t("yes") : t("no")) },
  ], st.paths) : notice("info", t("ha.no_paths"));
  const sync = st.sync || {};
  return h("div", {},
    section(t("ha.status"),
      h("dl", { class: "facts", id: "ha-facts" },
        h("dt", {}, t("ha.role")), h("dd", { id: "ha-role" }, word("ha.role", st.role)),
        h("dt", {}, t("ha.state")), h("dd", { id: "ha-state" }, word("ha.state", st.state), st.detail ? ` (${st.detail})` : ""),
        h("dt", {}, t("ha.paired")), h("dd", { id: "ha-paired" }, st.paired ? t("yes") : t("no")),
        h("dt", {}, t("ha.holder")), h("dd", { id: "ha-holder" }, holderText(st)),
        h("dt", {}, t("ha.resources")), h("dd", {}, (st.resources || []).join(", ")),
        h("dt", {}, t("ha.health")), h("dd", { id: "ha-health" },
          st.peer_out_of_service ? t("ha.peer_oos") : st.degraded ? t("ha.degraded") : t("ha.healthy")),
        h("dt", {}, t("ha.ping")), h("dd", {}, t("ha.ping_seen", st.ping_seen ?? 0, (st.ping_group || []).length, st.peer_ping_seen ?? "-")),
        h("dt", {}, t("ha.sync")), h("dd", { id: "ha-sync" }, word("ha.sync", sync.mode),
          sync.lag ? " " + t("ha.lag", sync.lag) : "", sync.last_error ? ` (${sync.last_error})` : ""))),
    section(t("ha.nodes"), nodes),
    section(t("ha.paths"), paths));
}

export async function haStatus(main, { can }) {
  main.append(h("h1", {}, t("nav.ha")));
  const box = h("div", { id: "ha-box" });
  const out = h("div", { id: "ha-out" });
  const events = h("div", { id: "ha-events-box" });
  let busy = false;

  async function load() {
    const st = await command("HaStatus");
    box.replaceChildren(drawStatus(st));
    try {
      const ev = await command("HaEvents");
      const rows = (Array.isArray(ev) ? ev : []).slice(-20).reverse();
      events.replaceChildren(section(t("ha.events"), rows.length ? table([
        { key: "time_us", label: t("col.time"), render: (e) => usTime(e.time_us) },
        { key: "state", label: t("ha.state"), render: (e) => word("ha.state", e.state) },
        { key: "reason", label: t("ha.reason") },
      ], rows) : notice("info", t("ha.no_events"))));
      events.firstChild.id = "ha-events";
    } catch (err) {
      events.replaceChildren(notice("error", errorText(err)));
    }
  }

  // Each action asks first (but pairing again), then shows the new status.
  const action = (id, cmd, label, ask, done) => h("button", {
    type: "button", id, onclick: async () => {
      if (ask && !confirmed(t(ask))) return;
      busy = true;
      out.replaceChildren(notice("info", t("loading")));
      try {
        await command(cmd);
        out.replaceChildren(notice("ok", t(done)));
      } catch (err) {
        out.replaceChildren(notice("error", errorText(err)));
      } finally {
        busy = false;
      }
      await load().catch((err) => out.append(notice("error", errorText(err))));
    },
  }, t(label));

  main.append(box);
  if (can("ha", "write")) {
    main.append(h("div", { class: "actions", role: "group", "aria-label": t("ha.actions") },
      action("ha-switch", "HaSwitch", "ha.switch", "ha.switch_confirm", "ha.switched"),
      action("ha-pair", "HaPair", "ha.pair", null, "ha.paired_again"),
      action("ha-unpair", "HaUnpair", "ha.unpair", "ha.unpair_confirm", "ha.unpaired"),
      action("ha-disable", "HaDisable", "ha.disable", "ha.disable_confirm", "ha.disabled_both")));
  }
  main.append(out, h("button", { type: "button", id: "ha-refresh", class: "secondary", onclick: () => load().catch((err) => out.replaceChildren(notice("error", errorText(err)))) }, t("refresh")), events);
  await load();
  // Kept current while shown; stops when the panel is left.
  const timer = setInterval(() => {
    if (!box.isConnected) clearInterval(timer);
    else if (!busy) load().catch(() => {});
  }, 3000);
}

// ------------------------------------------------------------ configuration

// Every field of `kpbx ha configure`, in the order of the manual's page.
const HA_FIELDS = [
  ["role", "select", ["disabled", "enabled", "coordinator"]],
  ["remote_serial", "text"],
  ["pairing_code", "password"],
  ["interface", "text"],
  ["local_ip", "text"],
  ["remote_ip", "text"],
  ["prefix", "number"],
  ["resources", "text"],
  ["ping_group", "text"],
  ["sync_interface", "text"],
  ["sync_local_ip", "text"],
  ["sync_remote_ip", "text"],
  ["sync_prefix", "number"],
  ["default_active", "select", ["local", "remote"]],
  ["heartbeat_interval", "text"],
  ["keepalive_warning", "text"],
  ["keepalive_out_of_service", "text"],
  ["init_timeout", "text"],
  ["ping_interval", "text"],
  ["ping_dampen", "text"],
  ["serial_source", "text"],
  ["hook_dir", "text"],
];
const KEYS = HA_FIELDS.map(([k]) => k);

// The field a refusal is about: the daemon's messages start with the
// field's key, or name it in words (src/ha/config.rs ConfigError).
export function haFieldOf(message, values) {
  const m = /^([a-z_]+)/.exec(message);
  const onSync = (text) => {
    const iface = / on (\S+?)(?: |$)/.exec(text)?.[1];
    return iface && iface === values.sync_interface;
  };
  const words = [
    [/^prefix length on /, () => (onSync(message) ? "sync_prefix" : "prefix")],
    [/remote IP on /, () => (onSync(message) ? "sync_remote_ip" : "remote_ip")],
    [/^resource/, () => "resources"],
    [/remote serial/, () => "remote_serial"],
    [/^pairing code/, () => "pairing_code"],
    [/^sync interface/, () => "sync_interface"],
    [/^ping group/, () => "ping_group"],
    [/^ping_group/, () => "ping_group"],
    [/^heartbeat interval/, () => "heartbeat_interval"],
    [/^out-of-service/, () => "keepalive_out_of_service"],
    [/^warning threshold/, () => "keepalive_warning"],
    [/^init timeout/, () => "init_timeout"],
    [/^ping interval/, () => "ping_interval"],
  ];
  for (const [re, f] of words) if (re.test(message)) return f();
  if (m && KEYS.includes(m[1])) return m[1];
  return null;
}

export async function haConfig(main, { can }) {
  main.append(h("h1", {}, t("nav.ha_config")));
  const cur = one(await command("HaShow"));
  const write = can("ha", "write");
  const inputs = {};
  const errors = {};
  // An address not set yet is stored as 0.0.0.0: shown empty.
  const shown = (k) => (cur[k] === "0.0.0.0" ? "" : String(cur[k] ?? ""));
  const wraps = HA_FIELDS.map(([key, kind, options]) => {
    const id = "hacfg-" + key;
    const value = shown(key);
    let el;
    if (kind === "select") {
      el = h("select", { id, disabled: !write }, options.map((o) => h("option", { value: o, selected: o === value }, word("hacfg." + key, o))));
    } else {
      el = h("input", {
        id, disabled: !write, type: kind === "number" ? "number" : kind === "password" ? "password" : "text",
        value: kind === "password" ? "" : value, autocomplete: "off",
        placeholder: kind === "password" && value ? "********" : false,
        "aria-describedby": id + "-error " + id + "-hint",
      });
    }
    inputs[key] = el;
    errors[key] = h("span", { id: id + "-error", class: "field-error", "aria-live": "polite" });
    const w = field(t("hacfg." + key), el, t("hacfg." + key + "_hint"));
    w.lastChild.id = id + "-hint";
    w.append(errors[key]);
    return w;
  });
  const msg = h("div", { id: "hacfg-out" });
  const form = h("form", { id: "hacfg-form", class: "grid", novalidate: true }, wraps,
    write ? h("button", { type: "submit", id: "hacfg-save" }, t("hacfg.save")) : null, msg);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    for (const k of KEYS) {
      errors[k].textContent = "";
      inputs[k].removeAttribute("aria-invalid");
    }
    const fields = [];
    for (const k of KEYS) {
      const v = inputs[k].value;
      if (k === "pairing_code" ? v !== "" : v !== shown(k)) fields.push([k, v]);
    }
    if (!fields.length) {
      msg.replaceChildren(notice("info", t("hacfg.unchanged")));
      return;
    }
    try {
      const r = await command({ HaConfigure: { fields } });
      for (const [k, v] of fields) cur[k] = k === "pairing_code" ? "********" : v;
      inputs.pairing_code.value = "";
      msg.replaceChildren(notice("ok", t("hacfg.saved", r.txid ?? "")));
    } catch (err) {
      const values = Object.fromEntries(KEYS.map((k) => [k, inputs[k].value]));
      const k = haFieldOf(err.message, values);
      if (k && err.status === 422) {
        errors[k].textContent = err.message;
        inputs[k].setAttribute("aria-invalid", "true");
        inputs[k].focus();
        msg.replaceChildren(notice("error", t("hacfg.fix", t("hacfg." + k))));
      } else {
        msg.replaceChildren(notice("error", errorText(err)));
      }
    }
  });
  main.append(section(t("hacfg.title"), form));
}
