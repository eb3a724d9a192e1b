// The console's shell: sign-in, the menu of the areas the user's role
// grants, the language choice, and the router (#/panel). The server
// enforces every permission regardless of what the menu shows.

import { STRINGS, LANGS, lang, setLang, t } from "/i18n.js";
import { api, h, prefs, session, whenUnauthorized, notice } from "/ui.js";
import { PANELS } from "/panels.js";

const app = document.getElementById("app");
let me = null; // {user, role, permissions, tenant}

// Whether the role grants `access` ("read"/"write") on `area`; write
// stands for read.
export function can(area, access = "read") {
  if (!me) return false;
  return me.permissions.includes(`${area}:write`) ||
    (access === "read" && me.permissions.includes(`${area}:read`));
}

function initialLang() {
  const user = me?.user;
  const saved = user ? prefs.get(user, "lang", null) : localStorage.getItem("kpbx.lang");
  if (saved && STRINGS[saved]) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("it") ? "it" : "en";
}

function langPicker() {
  const sel = h("select", { id: "lang", "aria-label": t("lang.choose") },
    LANGS.map((l) => h("option", { value: l, selected: l === lang() }, STRINGS[l]["lang.name"])));
  sel.addEventListener("change", () => {
    setLang(sel.value);
    localStorage.setItem("kpbx.lang", sel.value);
    if (me) prefs.set(me.user, "lang", sel.value);
    render();
  });
  return sel;
}

function loginView(message) {
  const user = h("input", { name: "user", autocomplete: "username", required: true, maxlength: 64 });
  const pass = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const out = h("div", {}, message ? notice("error", message) : null);
  const form = h("form", { class: "login", id: "login" },
    h("h1", {}, t("app.title")),
    h("h2", {}, t("login.title")),
    h("label", { for: "user" }, t("login.user")), Object.assign(user, { id: "user" }),
    h("label", { for: "password" }, t("login.password")), Object.assign(pass, { id: "password" }),
    h("button", { type: "submit", id: "login-submit" }, t("login.submit")),
    out,
    h("div", { class: "lang" }, langPicker()));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    out.replaceChildren(notice("info", t("loading")));
    try {
      const r = await api("POST", "login", { user: user.value, password: pass.value });
      session.set(r.token);
      await start();
    } catch (err) {
      out.replaceChildren(notice("error", t("login.failed", err.message)));
    }
  });
  app.replaceChildren(form);
  user.focus();
}

async function logout() {
  // Forget the token first: a reload while the server is answering must
  // not use it again.
  const token = session.token();
  session.clear();
  me = null;
  location.hash = "";
  loginView();
  try {
    await api("POST", "logout", undefined, token);
  } catch {
    // The session may be gone already; signing out locally is what counts.
  }
}

function allowed() {
  return PANELS.filter((p) => can(p.area, "read"));
}

function render() {
  if (!me) return loginView();
  const panels = allowed();
  const wanted = location.hash.replace(/^#\//, "").split("?")[0];
  const panel = panels.find((p) => p.id === wanted) || panels[0];
  const nav = h("nav", { "aria-label": t("app.title") },
    h("ul", {}, panels.map((p) => h("li", {},
      h("a", {
        href: "#/" + p.id, id: "nav-" + p.id,
        "aria-current": p === panel ? "page" : false,
      }, t(p.title))))));
  const main = h("main", { id: "main", tabindex: "-1" });
  const header = h("header", {},
    h("span", { class: "brand" }, t("app.title")),
    h("span", { class: "who", id: "who" }, t("signed_in_as", me.user, me.role)),
    langPicker(),
    h("button", { id: "logout", onclick: logout }, t("logout")));
  app.replaceChildren(header, h("div", { class: "body" }, nav, main));
  if (!panel) {
    main.append(notice("error", t("nav.none")));
    return;
  }
  main.dataset.panel = panel.id;
  panel.show(main, { me, can })
    .catch((err) => main.append(notice("error", t("error", err.message))))
    .finally(() => {
      // After a menu choice, the keyboard starts in the panel, unless
      // the user is already in it (typing into a field that came first).
      const at = document.activeElement;
      if (moved && (!at || at === document.body || nav.contains(at))) main.focus({ preventScroll: true });
      moved = false;
    });
}

let moved = false;

async function start() {
  try {
    me = await api("GET", "session");
  } catch {
    session.clear();
    me = null;
  }
  setLang(initialLang());
  render();
}

whenUnauthorized(() => {
  session.clear();
  me = null;
  loginView();
});
window.addEventListener("hashchange", () => {
  moved = true;
  if (me) render();
});
setLang(initialLang());
if (session.token()) start();
else loginView();
