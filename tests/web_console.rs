//! The web console against the real daemon: its files as served (curl:
//! gzip, validators, Content-Security-Policy), and the console itself in a
//! real headless Chromium (Debian's `chromium` + `chromium-driver`, driven
//! over W3C WebDriver by `webkit/`): sign-in, menus by role with the
//! server refusing the rest, a device added in the browser and its file
//! fetched over HTTP with curl, the audit log by day with chosen columns,
//! exported in the four formats (the XLSX read back by calamine), restore
//! with its conflict, both languages, and no console errors (a
//! CSP violation is one).
//!
//! The HA status of a real pair: two daemons in network namespaces
//! (tests/lab, names prefixed `wb`), the browser inside the active node's
//! namespace, the switch pressed there and the holder seen moving.
//!
//! `WEB_SCREENSHOTS=DIR` also saves a screenshot of every panel in both
//! languages into DIR (`make screenshots` uses docs/screenshots).

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;
mod lab;
#[path = "lab/rig.rs"]
mod rig;
mod webkit;

use std::process::Command;

use common::{Daemon, add_user};
use serde_json::{Value, json};
use webkit::{Browser, Driver};

fn start(dir: &std::path::Path) -> (Daemon, String, u16) {
    let mut d = Daemon::with(
        dir,
        &[
            ("mgmt_listen", "127.0.0.1:0"),
            ("http_listen", "127.0.0.1:0"),
        ],
    );
    d.start();
    let base = format!("https://127.0.0.1:{}", d.listen("mgmt").port());
    let http = d.listen("http").port();
    (d, base, http)
}

/// curl's status, lower-cased head and body.
fn curl(args: &[&str]) -> (u16, String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sk", "--max-time", "10", "-D", "-"])
        .args(args)
        .output()
        .expect("curl is missing: apt-get install curl");
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, raw[split + 4..].to_vec())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        (n == name).then_some(v.trim())
    })
}

#[test]
fn console_files_are_gzipped_revalidated_and_under_a_strict_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, base, _) = start(dir.path());
    let (status, head, gz) = curl(&["-H", "Accept-Encoding: gzip", &format!("{base}/")]);
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "content-encoding"), Some("gzip"));
    let csp = header(&head, "content-security-policy").unwrap();
    for part in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("http"),
        "{csp}"
    );
    assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
    assert_eq!(header(&head, "referrer-policy"), Some("no-referrer"));
    assert_eq!(header(&head, "cache-control"), Some("no-cache"));
    let etag = header(&head, "etag").unwrap().to_string();
    // No Accept-Encoding: any coding will do (RFC 9110 12.5.3), the same
    // gzip bytes; curl --compressed inflates them to the page.
    let (status, head_none, same) = curl(&[&format!("{base}/")]);
    assert_eq!(status, 200);
    assert_eq!(header(&head_none, "content-encoding"), Some("gzip"));
    assert_eq!(same, gz);
    let (_, _, plain) = curl(&["--compressed", &format!("{base}/")]);
    let text = String::from_utf8(plain.clone()).unwrap();
    assert!(text.starts_with("<!doctype html>"), "{text}");
    assert!(gz.len() < plain.len(), "{} vs {}", gz.len(), plain.len());
    // A client that refuses gzip outright: 406, under the same policy.
    let (status, head, _) = curl(&["-H", "Accept-Encoding: identity", &format!("{base}/")]);
    assert_eq!(status, 406, "{head}");
    assert!(header(&head, "content-security-policy").is_some());
    // Revalidation: 304, no body.
    let (status, _, body) = curl(&[
        "-H",
        "Accept-Encoding: gzip",
        "-H",
        &format!("If-None-Match: {etag}"),
        &format!("{base}/"),
    ]);
    assert_eq!((status, body.len()), (304, 0));
    // Scripts and styles with their types; nothing else is there.
    for (path, ty) in [
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
        ("/i18n.js", "text/javascript"),
    ] {
        let (status, head, _) = curl(&["--compressed", &format!("{base}{path}")]);
        assert_eq!(status, 200, "{path}");
        assert!(
            header(&head, "content-type").unwrap().starts_with(ty),
            "{path}: {head}"
        );
    }
    let (status, head, _) = curl(&[&format!("{base}/../etc/passwd")]);
    assert_eq!(status, 404, "{head}");
    assert!(header(&head, "content-security-policy").is_some());
    let (status, _, _) = curl(&["-X", "POST", &format!("{base}/")]);
    assert_eq!(status, 405);
    // The API is where it was, with its JSON 404.
    let (status, head, body) = curl(&[&format!("{base}/api/v1/nowhere")]);
    assert_eq!(status, 404);
    assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["code"], "not_found");
}

/// The browser scenarios, each a `#[test]` per browser it runs in:
/// `NAME::chromium`, `NAME::firefox` (`cargo test --test web_console
/// firefox` runs Firefox's). Every scenario runs in Chromium; Firefox runs
/// the ones that between them open every panel in both languages and use
/// every form (the tablet walk, the editors, the audit log, tasks and mail,
/// the clerk's devices with the CSP check), not the long-list timings or
/// the HA pair in namespaces (same pages, a browser's worth of CI time).
macro_rules! in_browsers {
    ($($name:ident: $($browser:ident),+;)+) => {$(
        mod $name {$(
            #[test]
            fn $browser() {
                super::$name(super::browser(stringify!($browser)));
            }
        )+}
    )+};
}

fn browser(name: &str) -> Browser {
    match name {
        "chromium" => Browser::Chromium,
        _ => Browser::Firefox,
    }
}

in_browsers! {
    provisioning_clerk_sees_only_devices_and_adds_one_fetched_over_http: chromium, firefox;
    admin_browses_the_audit_log_by_day_chooses_columns_restores_in_both_languages: chromium, firefox;
    ten_thousand_devices_list_search_sort_and_page_fast: chromium;
    mail_settings_and_test_then_a_weekly_task_from_the_form_runs_now_and_its_delivery_shows: chromium, firefox;
    ha_switch_is_confirmed_and_its_refusal_shown_users_added_see_their_role: chromium;
    ha_status_of_a_pair_in_namespaces_and_the_switch_pressed_in_the_browser: chromium;
    admin_edits_templates_models_devices_roles_and_ha_settings_with_errors_at_the_field: chromium, firefox;
    a_month_of_100_000_audit_entries_pages_and_filters_in_the_browser: chromium;
    on_a_tablet_every_panel_fits_the_width_and_the_menu_stays_reachable: chromium, firefox;
}

/// Signs in through the form and waits for the menu.
fn sign_in(b: &Driver, base: &str, user: &str, password: &str) {
    b.goto(&format!("{base}/"));
    b.type_into("#user", user);
    b.type_into("#password", password);
    b.click("#login-submit");
    b.find("nav a");
}

fn nav_ids(b: &Driver) -> Vec<String> {
    let v = b.exec(
        "return [...document.querySelectorAll('nav a')].map(a => a.id);",
        json!([]),
    );
    serde_json::from_value(v).unwrap()
}

/// A call from the page with the page's session token: (status, JSON).
fn fetch_in_page(b: &Driver, method: &str, path: &str, body: Option<Value>) -> (u64, Value) {
    let r = b.exec_async(
        "const [method, path, body, done] = arguments;
         fetch(path, {method, headers: {Authorization: 'Bearer ' + sessionStorage.getItem('kpbx.token'),
           'Content-Type': 'application/json'}, body: body === null ? undefined : JSON.stringify(body)})
           .then(async r => done([r.status, await r.json()]))
           .catch(e => done([0, String(e)]));",
        json!([method, path, body]),
    );
    (r[0].as_u64().unwrap(), r[1].clone())
}

fn provisioning_clerk_sees_only_devices_and_adds_one_fetched_over_http(browser: Browser) {
    let dir = tempfile::tempdir().unwrap();
    let (d, base, http) = start(dir.path());
    d.ok(&[
        "prov",
        "account",
        "add",
        "extension=201",
        "sip_password=s3cret",
        "display_name=Anna Rossi",
    ]);
    d.ok(&["role", "add", "clerk", "permissions=provisioning:write"]);
    add_user(&d, "webclerk", "clerk", "clerk-pass-1");
    let b = Driver::start(browser);
    sign_in(&b, &base, "webclerk", "clerk-pass-1");
    assert_eq!(
        nav_ids(&b),
        ["nav-devices", "nav-templates", "nav-models", "nav-files"],
        "only provisioning is offered"
    );
    b.find("#dev-form");
    b.assert_clean_console("after sign-in");

    // The server refuses the rest whatever the page shows.
    let (status, v) = fetch_in_page(&b, "GET", "/api/v1/status", None);
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("lacks system:read"),
        "{v}"
    );
    let (status, v) = fetch_in_page(&b, "POST", "/api/v1/command", Some(json!("HaSwitch")));
    assert_eq!(status, 403, "{v}");
    let (status, v) = fetch_in_page(&b, "GET", "/api/v1/audit", None);
    assert_eq!(status, 403, "{v}");
    let (status, v) = fetch_in_page(&b, "GET", "/api/v1/audit/export?format=csv", None);
    assert_eq!(status, 403, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("lacks audit:read"),
        "{v}"
    );
    b.console(); // the refusals above are logged as failed loads

    // A malformed MAC is refused at the field, before any request.
    b.type_into("#dev-mac", "00:15:65:AB");
    b.click("#dev-save");
    b.wait_text("#dev-mac-error", "AA:BB:CC:DD:EE:FF");
    // Each of the three formats is accepted.
    for (i, mac) in ["00-15-65-ab-cd-01", "001565ABCD02", "00:15:65:AB:CD:03"]
        .iter()
        .enumerate()
    {
        b.type_into("#dev-mac", mac);
        b.set_value("#dev-model", "Yealink-T4x");
        b.set_value("#dev-template", "yealink-t4x");
        b.set_value("#dev-account", "201");
        b.click("#dev-save");
        b.wait_text("#dev-out", &format!("001565ABCD0{}", i + 1));
        b.wait_text("#dev-count", &format!("{}", i + 1));
    }
    // Search narrows the list.
    b.type_into("#dev-search", "abcd02");
    b.wait_text("#dev-count", "1");
    assert!(b.text("#dev-table tbody").contains("001565ABCD02"));
    b.assert_clean_console("after adding devices");

    // The policy holds in the browser, and the console check sees a
    // violation: an injected inline script and style are refused.
    b.exec(
        "const s = document.createElement('script'); s.textContent = 'window.pwned = 1'; \
         document.body.append(s); const st = document.createElement('style'); \
         st.textContent = 'body { display: none }'; document.head.append(st);",
        json!([]),
    );
    assert_eq!(
        b.exec("return window.pwned === undefined;", json!([])),
        json!(true)
    );
    let seen = b.console();
    assert!(
        seen.iter().any(|(level, m)| level == "SEVERE"
            && m.contains("Content Security Policy")
            && m.contains("inline script")),
        "{seen:#?}"
    );
    // And an uncaught error in the page is seen too.
    b.exec(
        "setTimeout(() => { throw new Error('wf-probe'); }, 0);",
        json!([]),
    );
    let mut seen = Vec::new();
    common::wait_until(
        std::time::Duration::from_secs(10),
        "the page's uncaught error in the console",
        || {
            seen.extend(b.console());
            seen.iter()
                .any(|(level, m)| level == "SEVERE" && m.contains("wf-probe"))
        },
    );
    if browser == Browser::Firefox {
        // Seen in Firefox's own output too (`JavaScript error: <url>, line
        // N: ...`), which covers what happens before the hook is in.
        common::wait_until(
            std::time::Duration::from_secs(10),
            "Firefox to print the page's error",
            || {
                seen.extend(b.console());
                seen.iter()
                    .any(|(_, m)| m.starts_with("http") && m.contains("wf-probe"))
            },
        );
    }
    b.console();

    // Its generated files in the browser: Enter on the row, then a file.
    b.type_into("#dev-search", "abcd01");
    b.wait_text("#dev-table tbody", "001565ABCD01");
    b.exec(
        "document.querySelector('#dev-table tbody tr').focus();",
        json!([]),
    );
    b.keys("\u{E007}");
    b.wait_text("#dev-files", "001565abcd01.cfg");
    b.click("#dev-files button[data-path$='.cfg']");
    b.wait_text("#dev-file", "account.1.user_name = 201");

    // The phone's file, over plain HTTP, with curl.
    let files = d.json(&["prov", "files"]);
    let name = files["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["device"] == "001565ABCD01" && f["path"].as_str().unwrap().ends_with(".cfg"))
        .map(|f| f["path"].as_str().unwrap().to_string())
        .unwrap_or_else(|| panic!("no file for the device: {files}"));
    let (status, _, body) = curl(&[&format!("http://127.0.0.1:{http}/provisioning/{name}")]);
    assert_eq!(status, 200, "{name}");
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("201"),
        "the account's extension is in the file: {text}"
    );
}

fn admin_browses_the_audit_log_by_day_chooses_columns_restores_in_both_languages(browser: Browser) {
    let dir = tempfile::tempdir().unwrap();
    let (d, base, _) = start(dir.path());
    add_user(&d, "webadmin", "admin", "admin-pass-1");
    d.ok(&["prov", "account", "add", "extension=301", "sip_password=a"]);
    d.ok(&["prov", "account", "set", "301", "display_name=Before"]);
    let changed = d.json(&["prov", "account", "set", "301", "display_name=Later"]);
    let set_txid = changed["txid"].as_u64().unwrap() - 1;
    let entries = d.json(&["audit", "list"]);
    let today = entries["entries"][0]["day"].as_u64().unwrap();
    let other = if today == 1 { 2 } else { today - 1 };

    let b = Driver::start(browser);
    sign_in(&b, &base, "webadmin", "admin-pass-1");
    assert_eq!(
        nav_ids(&b),
        [
            "nav-dashboard",
            "nav-audit",
            "nav-devices",
            "nav-templates",
            "nav-models",
            "nav-files",
            "nav-tasks",
            "nav-ha",
            "nav-ha-config",
            "nav-users"
        ]
    );
    b.wait_text("main", "mgmt");
    b.find("#dash-ha");

    // The catalogue: the same keys in both languages.
    let keys = b.exec_async(
        "const done = arguments[0]; import('/i18n.js').then(m => \
         done([Object.keys(m.STRINGS.en).sort(), Object.keys(m.STRINGS.it).sort()]));",
        json!([]),
    );
    assert_eq!(keys[0], keys[1], "every key in English and Italian");
    assert!(keys[0].as_array().unwrap().len() > 100);

    // The audit log of today, then of a day without entries.
    b.click("#nav-audit");
    b.find("#audit-results table");
    b.set_value("#audit-day", &today.to_string());
    b.wait_text("#audit-results", "updated account 301");
    b.set_value("#audit-day", &other.to_string());
    b.wait_text("#audit-results", "No entries.");
    b.set_value("#audit-day", &today.to_string());
    b.find("#audit-results table");

    // Columns: drop Address, add Object; remembered for this user.
    let headers = |b: &Driver| -> Vec<String> {
        serde_json::from_value(b.exec(
            "return [...document.querySelectorAll('#audit-results th')].map(t => t.innerText);",
            json!([]),
        ))
        .unwrap()
    };
    assert!(headers(&b).contains(&"Address".to_string()));
    b.exec(
        "document.querySelector('#audit-columns').closest('details').open = true;",
        json!([]),
    );
    b.click("#col-ip");
    b.click("#col-object_id");
    b.wait_for(
        "the chosen columns",
        "const h = [...document.querySelectorAll('#audit-results th')].map(t => t.innerText); \
         return h.includes('Object') && !h.includes('Address');",
        json!([]),
    );
    b.goto(&format!("{base}/#/audit"));
    b.find("#audit-results table");
    let h = headers(&b);
    assert!(
        h.contains(&"Object".to_string()) && !h.contains(&"Address".to_string()),
        "{h:?}"
    );

    // Export of the day shown, with the columns shown, in the four formats:
    // the daemon's exporter streamed by GET /api/v1/audit/export.
    b.set_value("#audit-day", &today.to_string());
    b.find("#audit-results table");
    for f in ["csv", "xlsx", "json", "xml"] {
        b.click(&format!("#export-{f}"));
        b.wait_text("#audit-export-out", &format!(".{f} ("));
    }
    let saved = b.text("#audit-export-out");
    assert!(saved.starts_with("Saved audit-"), "{saved}");
    let token = b
        .exec("return sessionStorage.getItem('kpbx.token');", json!([]))
        .as_str()
        .unwrap()
        .to_string();
    let month = entries["month"].as_str().unwrap();
    let (status, head, xlsx) = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!(
            "{base}/api/v1/audit/export?format=xlsx&month={month}&day={today}&columns=txid,user,object_type,description"
        ),
    ]);
    assert_eq!(status, 200, "{head}");
    assert_eq!(header(&head, "transfer-encoding"), Some("chunked"));
    assert!(
        header(&head, "content-disposition")
            .unwrap()
            .contains(&format!("audit-{month}-{today:02}.xlsx"))
    );
    let path = dir.path().join("audit.xlsx");
    std::fs::write(&path, &xlsx).unwrap();
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook(&path).unwrap();
    let sheet = calamine::Reader::sheet_names(&wb)[0].clone();
    let range = calamine::Reader::worksheet_range(&mut wb, &sheet).unwrap();
    let rows: Vec<String> = range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    assert!(
        rows[0].contains("Object type") && !rows[0].contains("IP"),
        "{rows:?}"
    );
    assert!(
        rows.iter().any(|r| r.contains("updated account 301")),
        "{rows:?}"
    );
    let (status, _, _) = curl(&[&format!("{base}/api/v1/audit/export?format=csv")]);
    assert_eq!(status, 401, "no token, no export");

    // The diff of a transaction, and its restore: conflict, then forced.
    b.set_value("#audit-day", &today.to_string());
    b.wait_for(
        "the row of the first display_name change",
        "return [...document.querySelectorAll('#audit-results tbody tr')] \
         .some(r => r.cells[0].innerText === String(arguments[0]));",
        json!([set_txid]),
    );
    b.exec(
        "[...document.querySelectorAll('#audit-results tbody tr')] \
         .find(r => r.cells[0].innerText === String(arguments[0])).focus();",
        json!([set_txid]),
    );
    b.keys("\u{E007}"); // Enter on the focused row
    b.wait_text("#audit-detail", "Before");
    b.click("#audit-restore");
    b.wait_text("#restore-out", "Conflict");
    b.click("#audit-restore-force");
    b.wait_text("#restore-out", "Restored as transaction");
    let account = d.json(&["prov", "account", "show", "301"]);
    assert_eq!(account[0]["display_name"], "", "{account}");
    b.console(); // the 409 of the first restore is logged as a failed load

    // Italian, remembered for this user across a reload.
    b.set_value("#lang", "it");
    b.wait_text("nav", "Registro delle modifiche");
    b.goto(&format!("{base}/#/dashboard"));
    b.wait_text("nav", "Cruscotto");
    b.wait_text("main", "Servizi");
    b.assert_clean_console("after browsing");

    if let (Ok(out), Browser::Chromium) = (std::env::var("WEB_SCREENSHOTS"), browser) {
        let out = std::path::PathBuf::from(out);
        std::fs::create_dir_all(&out).unwrap();
        // Something to show on the devices and tasks panels.
        d.ok(&[
            "mail",
            "configure",
            "server=smtp.example.org",
            "security=starttls",
            "sender=pbx@example.org",
        ]);
        for (mac, notes) in [
            ("00:15:65:12:34:56", "reception"),
            ("00:15:65:12:34:57", "office 2"),
        ] {
            d.ok(&[
                "prov",
                "device",
                "add",
                &format!("mac={mac}"),
                "model=Yealink-T4x",
                "template=yealink-t4x",
                "account=301",
                &format!("notes={notes}"),
            ]);
        }
        d.ok(&[
            "task",
            "add",
            "name=weekly calls",
            "type=send_cdr",
            "schedule=weekly",
            "weekday=monday",
            "time=06:30",
            "recipients=ops@example.org",
        ]);
        for lang in ["en", "it"] {
            b.set_value("#lang", lang);
            for panel in [
                "dashboard",
                "audit",
                "devices",
                "templates",
                "models",
                "files",
                "tasks",
                "ha",
                "ha-config",
                "users",
            ] {
                b.goto(&format!("{base}/#/dashboard"));
                b.find("main[data-panel='dashboard'] h1");
                b.goto(&format!("{base}/#/{panel}"));
                b.find(&format!("main[data-panel='{panel}'] h1"));
                std::thread::sleep(std::time::Duration::from_millis(300));
                b.exec("window.scrollTo(0, 0);", json!([]));
                b.screenshot(&out.join(format!("{panel}-{lang}.png")));
            }
            // The template editor, open on a built-in template.
            b.goto(&format!("{base}/#/templates"));
            open_row(&b, "tpl", "yealink-t4x");
            std::thread::sleep(std::time::Duration::from_millis(300));
            b.exec(
                "document.getElementById('tpl-detail').scrollIntoView();",
                json!([]),
            );
            b.screenshot(&out.join(format!("template-editor-{lang}.png")));
        }
        b.click("#logout");
        b.find("#login");
        b.screenshot(&out.join("login.png"));
    }

    // Sign out ends the session on the server too.
    let token = b
        .exec("return sessionStorage.getItem('kpbx.token');", json!([]))
        .as_str()
        .map(str::to_string);
    if let Some(token) = token {
        b.click("#logout");
        b.find("#login");
        // The page forgets the token at once; the server's logout follows.
        common::wait_until(
            std::time::Duration::from_secs(10),
            "the token to be gone after signing out",
            || {
                curl(&[
                    "-H",
                    &format!("Authorization: Bearer {token}"),
                    &format!("{base}/api/v1/session"),
                ])
                .0 == 401
            },
        );
    }
    b.assert_clean_console("at the end");
}

fn ten_thousand_devices_list_search_sort_and_page_fast(browser: Browser) {
    let dir = tempfile::tempdir().unwrap();
    let (d, base, _) = start(dir.path());
    add_user(&d, "webadmin", "admin", "admin-pass-1");
    let mut csv = String::from("mac,model,template,notes\n");
    for i in 0..10_000u32 {
        csv.push_str(&format!(
            "0015{:08X},Yealink-T4x,yealink-t4x,phone {i}\n",
            0x0010_0000 + i
        ));
    }
    let file = dir.path().join("phones.csv");
    std::fs::write(&file, csv).unwrap();
    d.ok(&["prov", "device", "import", file.to_str().unwrap()]);

    let b = Driver::start(browser);
    sign_in(&b, &base, "webadmin", "admin-pass-1");
    let t = std::time::Instant::now();
    b.goto(&format!("{base}/#/devices"));
    b.wait_text("#dev-count", "10000 entries");
    let load = t.elapsed();
    // Sorting and paging redraw synchronously in the click handler: time
    // them in the page.
    let ms = |script: &str| b.exec(script, json!([])).as_f64().unwrap();
    let sort = ms(
        "const t = performance.now(); document.getElementById('dev-sort-notes').click(); \
                   return performance.now() - t;",
    );
    assert!(b.text("#dev-table tbody").contains("phone 0"));
    let sort_back = ms(
        "const t = performance.now(); document.getElementById('dev-sort-notes').click(); \
                        return performance.now() - t;",
    );
    assert!(b.text("#dev-table tbody").contains("phone 9999"));
    let page = ms(
        "const t = performance.now(); document.getElementById('dev-next').click(); \
                   return performance.now() - t;",
    );
    assert!(
        b.text("#dev-page").contains("2 of 200"),
        "{}",
        b.text("#dev-page")
    );
    // Search: filter on every field (debounced 120 ms), from the keystroke.
    b.exec(
        "window.searchStart = performance.now(); const s = document.getElementById('dev-search'); \
         s.value = '00150010270F'; s.dispatchEvent(new Event('input'));",
        json!([]),
    );
    b.wait_text("#dev-count", "1 entries");
    let search = ms("return performance.now() - window.searchStart;");
    println!(
        "FIGURE 10,000 devices: panel shown {load:?} after navigation (ProvList over the API, \
         debug daemon); sort {sort:.0} / {sort_back:.0} ms, next page {page:.0} ms, search \
         {search:.0} ms from the keystroke (120 ms of it debounce)"
    );
    assert!(
        sort < 500.0 && sort_back < 500.0 && page < 200.0,
        "{sort} {sort_back} {page}"
    );
    assert!(search < 1000.0, "{search}");
    assert!(load < std::time::Duration::from_secs(15), "{load:?}");
    b.assert_clean_console("with 10,000 devices");
}

/// The SMTP server of tests/tasks_mail.rs (python3-aiosmtpd,
/// tests/fixtures/mail/smtp_sink.py), plain SMTP on loopback; killed by
/// PID on drop.
struct Sink {
    child: std::process::Child,
    out: std::path::PathBuf,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sink {
    fn start(dir: &std::path::Path) -> (Sink, u16) {
        use std::io::BufRead;
        let ok = Command::new("/usr/bin/python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "python3-aiosmtpd is required (make test-deps)");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = dir.join("sink");
        std::fs::create_dir_all(&out).unwrap();
        let mut child = Command::new("/usr/bin/python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/mail/smtp_sink.py"
            ))
            .args(["--port", &port.to_string(), "--out", out.to_str().unwrap()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let got = rx.recv_timeout(std::time::Duration::from_secs(15));
        let sink = Sink { child, out };
        assert_eq!(got.as_deref().map(str::trim), Ok("READY"), "SMTP sink");
        (sink, port)
    }

    fn recipients(&self) -> Vec<String> {
        std::fs::read_dir(&self.out)
            .unwrap()
            .filter_map(|e| std::fs::read(e.unwrap().path()).ok())
            .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
            .map(|m| m.to_string())
            .collect()
    }
}

fn mail_settings_and_test_then_a_weekly_task_from_the_form_runs_now_and_its_delivery_shows(
    browser: Browser,
) {
    let dir = tempfile::tempdir().unwrap();
    let (d, base, _) = start(dir.path());
    let (sink, smtp) = Sink::start(dir.path());
    add_user(&d, "webadmin", "admin", "admin-pass-1");
    let b = Driver::start(browser);
    // Sign in with the keyboard alone: the user field has the focus.
    b.goto(&format!("{base}/"));
    b.find("#user");
    b.keys("webadmin\u{E004}admin-pass-1\u{E007}");
    b.find("#nav-dashboard");
    b.goto(&format!("{base}/#/tasks"));
    b.find("#task-form");
    // Mail settings from the panel, then "send test" to the real server.
    b.find("#mail-form");
    // Unconfigured, `mail show` answers no settings (not a 404 the browser
    // would log): the panel shows an empty form, the console stays clean.
    b.assert_clean_console("on the tasks panel with mail not configured");
    assert_eq!(d.json(&["mail", "show"]), json!([]));
    b.type_into("#mail-server", "127.0.0.1");
    b.type_into("#mail-port", &smtp.to_string());
    b.set_value("#mail-security", "none");
    b.type_into("#mail-sender", "pbx@example.org");
    b.click("#mail-save");
    b.wait_text("#mail-out", "Saved");
    assert_eq!(d.json(&["mail", "show"])[0]["server"], "127.0.0.1");
    b.type_into("#mail-test-to", "check@example.org");
    b.click("#mail-test-send");
    b.wait_text("#mail-test-out", "Accepted for check@example.org");
    b.find("#mail-outbox");
    let shown = |b: &Driver, id: &str| -> bool {
        b.exec(
            "return !document.getElementById(arguments[0]).closest('.field').hidden;",
            json!([id]),
        )
        .as_bool()
        .unwrap()
    };
    // The fields follow the schedule, the type and the format.
    assert!(!shown(&b, "task-weekday") && !shown(&b, "task-day_of_month"));
    b.set_value("#task-schedule", "monthly");
    assert!(!shown(&b, "task-weekday") && shown(&b, "task-day_of_month"));
    b.set_value("#task-schedule", "weekly");
    assert!(shown(&b, "task-weekday") && !shown(&b, "task-day_of_month"));
    assert!(!shown(&b, "task-notify_supervisors") && !shown(&b, "task-operator_events"));
    b.set_value("#task-type", "send_callcenter_cdr");
    assert!(shown(&b, "task-notify_supervisors") && !shown(&b, "task-operator_events"));
    b.set_value("#task-format", "csv_detailed");
    assert!(shown(&b, "task-operator_events"));
    b.set_value("#task-type", "send_cdr");
    b.set_value("#task-format", "csv");
    assert!(!shown(&b, "task-operator_events") && !shown(&b, "task-notify_supervisors"));
    // Recipients or supervisors: refused at the form.
    b.type_into("#task-name", "weekly calls");
    b.set_value("#task-weekday", "friday");
    b.set_value("#task-time", "06:30");
    b.click("#task-save");
    b.wait_text("#task-form-out", "needs recipients");
    b.type_into("#task-recipients", "ops@example.org");
    b.click("#task-save");
    b.wait_text("#task-form-out", "Task created");
    b.wait_text("#task-list", "weekly calls");
    assert!(
        b.text("#task-list").contains("06:30"),
        "{}",
        b.text("#task-list")
    );
    let tasks = d.json(&["task", "list"]);
    assert_eq!(tasks[0]["weekday"], "friday", "{tasks}");
    assert_eq!(tasks[0]["schedule"], "weekly", "{tasks}");
    assert_eq!(tasks[0]["format"], "csv", "{tasks}");
    // Run now; the run and its delivery show in the history.
    b.click("#task-list button.run");
    b.wait_text("#task-out", "started");
    let start = std::time::Instant::now();
    while !b.text("#task-history").contains("ops@example.org: sent") {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no delivery shown: {}",
            b.text("#task-history")
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
        b.click("#task-history-refresh");
    }
    let got = sink.recipients();
    assert!(
        got.iter().any(|m| m.contains("ops@example.org")),
        "the SMTP server got it: {got:?}"
    );
    // The outbox shows the message and its delivery.
    b.click("#mail-outbox-refresh");
    b.wait_text("#mail-outbox", "ops@example.org: sent");
    b.click("#mail-retry");
    b.wait_text("#mail-retry-out", "due now");
    b.assert_clean_console("after the task");

    // Edited in the same form (its fields follow the stored schedule),
    // then deleted.
    b.click("#task-list button.edit");
    b.wait_text("#task-form-title", "Task weekly calls");
    assert!(shown(&b, "task-weekday") && !shown(&b, "task-day_of_month"));
    assert_eq!(
        b.exec(
            "return document.getElementById('task-weekday').value;",
            json!([])
        ),
        json!("friday")
    );
    b.set_value("#task-time", "07:15");
    b.set_value("#task-schedule", "monthly");
    b.type_into("#task-day_of_month", "3");
    b.click("#task-save");
    b.wait_text("#task-form-out", "Saved");
    b.wait_text("#task-list", "07:15");
    let tasks = d.json(&["task", "list"]);
    assert_eq!(tasks.as_array().unwrap().len(), 1, "{tasks}");
    assert_eq!(tasks[0]["time"], "07:15", "{tasks}");
    assert_eq!(tasks[0]["schedule"], "monthly", "{tasks}");
    assert_eq!(tasks[0]["day_of_month"], "3", "{tasks}");
    b.click("#task-list button.delete");
    assert!(b.accept_alert().contains("weekly calls"));
    b.wait_text("#task-out", "deleted");
    b.wait_text("#task-list", "No tasks.");
    assert_eq!(d.json(&["task", "list"]), json!([]));
    b.assert_clean_console("after editing and deleting the task");
}

fn ha_switch_is_confirmed_and_its_refusal_shown_users_added_see_their_role(browser: Browser) {
    let dir = tempfile::tempdir().unwrap();
    let (d, base, _) = start(dir.path());
    add_user(&d, "webadmin", "admin", "admin-pass-1");
    let b = Driver::start(browser);
    sign_in(&b, &base, "webadmin", "admin-pass-1");
    // HA is not configured here: the switch is asked for, confirmed, and
    // the daemon's refusal shown (the real move is api_http's
    // ha_switch_over_the_api_is_answered_after_the_move, in namespaces).
    b.click("#nav-ha");
    b.wait_text("#ha-role", "disabled");
    b.click("#ha-switch");
    let asked = b.accept_alert();
    assert!(asked.contains("other node"), "{asked}");
    b.wait_text("#ha-out", "HA is not running");
    b.console(); // the refusal's 422 is logged as a failed load

    // A user added in the browser signs in and sees what its role grants:
    // supervisor = system:read (and cdr): the dashboard only.
    b.click("#nav-users");
    b.wait_text("#role-list", "supervisor");
    b.type_into("#user-name", "websup");
    b.set_value("#user-role", "supervisor");
    b.type_into("#user-password", "sup-pass-1");
    b.click("#user-save");
    b.wait_text("#user-out", "Saved");
    b.wait_text("#user-list", "websup");
    b.assert_clean_console("after adding a user");
    b.click("#logout");
    b.find("#login");
    sign_in(&b, &base, "websup", "sup-pass-1");
    assert_eq!(nav_ids(&b), ["nav-dashboard"]);
    b.wait_text("main", "mgmt");
    assert!(
        !b.text("main").contains("Latest audit entries"),
        "no audit entries without audit:read"
    );
    b.assert_clean_console("as supervisor");
}

fn ha_status_of_a_pair_in_namespaces_and_the_switch_pressed_in_the_browser(browser: Browser) {
    let _one = rig::one_at_a_time();
    let rig = rig::Rig::up_in(lab::Lab::prefixed("wb", "ha"), |_, _| {}, false);
    add_user(&rig.a, "webadmin", "admin", "admin-pass-1");
    // The console of the active node, on its management port inside its
    // namespace; the browser runs in that namespace too.
    let base = format!("https://127.0.0.1:{}", rig.a.listen("mgmt").port());
    let b = Driver::start_in(browser, Some(&rig.a_ns));
    sign_in(&b, &base, "webadmin", "admin-pass-1");
    b.click("#nav-ha");
    b.wait_text("#ha-state", "active");
    b.wait_text("#ha-role", "coordinator");
    b.wait_text("#ha-paired", "yes");
    b.wait_text("#ha-holder", "This node (KP-SCN-A)");
    let nodes = b.text("#ha-nodes");
    for seen in [
        "This node",
        "KP-SCN-A",
        "198.51.100.1",
        "192.0.2.1",
        "Peer",
        "KP-SCN-B",
        "198.51.100.2",
        "192.0.2.2",
    ] {
        assert!(nodes.contains(seen), "{seen} in {nodes}");
    }
    b.wait_text("#ha-facts", "198.51.100.10");
    b.find("#ha-events");
    b.assert_clean_console("on the HA status of a pair");
    if let (Ok(out), Browser::Chromium) = (std::env::var("WEB_SCREENSHOTS"), browser) {
        let out = std::path::PathBuf::from(out);
        std::fs::create_dir_all(&out).unwrap();
        for lang in ["it", "en"] {
            b.set_value("#lang", lang);
            b.find("#ha-nodes");
            std::thread::sleep(std::time::Duration::from_millis(300));
            b.screenshot(&out.join(format!("ha-pair-{lang}.png")));
        }
        b.wait_text("#ha-holder", "This node (KP-SCN-A)");
    }

    // The switch, asked for and confirmed; answered once the resource has
    // moved, and the page shows the new holder.
    b.click("#ha-switch");
    let asked = b.accept_alert();
    assert!(asked.contains("other node"), "{asked}");
    b.wait_text("#ha-out", "Switch done.");
    b.wait_text("#ha-holder", "Peer (KP-SCN-B)");
    b.wait_text("#ha-state", "passive");
    assert!(
        rig.sole(&rig.b_ns),
        "b should hold the resource alone\n{}",
        rig.logs()
    );
    assert_eq!(rig::status(&rig.b)["holder"], "local");
    b.wait_text("#ha-events", "passive");
    b.assert_clean_console("after the switch");
}

/// Opens the row of a paged list whose first cell is `what`, after
/// searching the list for it.
fn open_row(b: &Driver, list: &str, what: &str) {
    b.type_into(&format!("#{list}-search"), what);
    // Once the search is applied (every row matches it), the row is
    // clicked in the same script: a redraw cannot come in between.
    b.wait_for(
        "the searched row",
        "const rows = [...document.querySelectorAll(`#${arguments[0]}-table tbody tr`)]; \
         const q = arguments[1].toLowerCase(); \
         if (!rows.every(r => r.innerText.toLowerCase().includes(q))) return false; \
         const row = rows.find(r => r.cells[0].innerText === arguments[1]); \
         if (row) row.click(); return !!row;",
        json!([list, what]),
    );
    b.wait_text(&format!("#{list}-detail h2"), what);
}

/// The console messages since the last look, all of them the failed loads
/// of refusals the test asked for (the browser logs every 4xx answer).
fn only_refusals(b: &Driver, status: u16) {
    let seen = b.console();
    assert!(
        seen.iter()
            .filter(|(level, _)| level == "SEVERE" || level == "WARNING")
            .all(|(_, m)| m.contains("/api/v1/command")
                && m.contains(&format!("status of {status}"))),
        "{seen:#?}"
    );
}

fn admin_edits_templates_models_devices_roles_and_ha_settings_with_errors_at_the_field(
    browser: Browser,
) {
    let dir = tempfile::tempdir().unwrap();
    let (d, base, http) = start(dir.path());
    add_user(&d, "webadmin", "admin", "admin-pass-1");
    d.ok(&["prov", "account", "add", "extension=401", "sip_password=p"]);
    for mac in ["001565AA0001", "001565AA0002"] {
        d.ok(&[
            "prov",
            "device",
            "add",
            &format!("mac={mac}"),
            "model=Yealink-T4x",
            "template=yealink-t4x",
            "account=401",
        ]);
    }
    // One fetch by a known phone, one by a phone nobody configured.
    let (status, _, _) = curl(&[&format!(
        "http://127.0.0.1:{http}/provisioning/001565aa0001.cfg"
    )]);
    assert_eq!(status, 200);
    let (status, _, _) = curl(&[&format!(
        "http://127.0.0.1:{http}/provisioning/001565bb0009.cfg"
    )]);
    assert_eq!(status, 404);

    let b = Driver::start(browser);
    sign_in(&b, &base, "webadmin", "admin-pass-1");

    // Templates: a copy of the built-in one, an unknown placeholder refused
    // with its line and column (the caret goes there), then fixed, then a
    // preview for a device that uses it.
    b.click("#nav-templates");
    b.find("#tpl-table");
    b.set_value("#tpl-new-from", "yealink-t4x");
    b.type_into("#tpl-new-name", "wb-mine");
    b.click("#tpl-new-save");
    b.wait_text("#tpl-detail h2", "wb-mine");
    let original = b
        .exec(
            "return document.getElementById('tpl-e-content').value;",
            json!([]),
        )
        .as_str()
        .unwrap()
        .to_string();
    let first = original.lines().next().unwrap().to_string();
    b.exec(
        "const a = document.getElementById('tpl-e-content'); \
         a.value = arguments[0] + '\\n## wb  %%NOPE%% here\\n' + arguments[1];",
        json!([first, original[first.len() + 1..]]),
    );
    b.click("#tpl-e-save");
    b.wait_text("#tpl-e-content-error", "Line 2, column 8");
    assert!(b.text("#tpl-e-content-error").contains("%%NOPE%%"));
    let caret = b.exec(
        "const a = document.getElementById('tpl-e-content'); \
         return [document.activeElement === a, a.selectionStart];",
        json!([]),
    );
    assert_eq!(
        caret,
        json!([true, first.chars().count() + 1 + 7]),
        "the caret at line 2, column 8"
    );
    assert_eq!(
        b.exec(
            "return document.getElementById('tpl-e-content').getAttribute('aria-invalid');",
            json!([])
        ),
        json!("true")
    );
    only_refusals(&b, 422);
    b.exec(
        "const a = document.getElementById('tpl-e-content'); \
         a.value = arguments[0] + '\\n## wb-marker %%MAC%%\\n' + arguments[1];",
        json!([first, original[first.len() + 1..]]),
    );
    b.click("#tpl-e-save");
    b.wait_text("#tpl-e-out", "Saved");
    d.ok(&["prov", "device", "set", "001565AA0002", "template=wb-mine"]);
    b.goto(&format!("{base}/#/files"));
    b.goto(&format!("{base}/#/templates"));
    open_row(&b, "tpl", "wb-mine");
    b.set_value("#tpl-preview-device", "001565AA0002");
    b.click("#tpl-render");
    b.click("#tpl-preview button[data-path$='.cfg']");
    b.wait_text("#tpl-render-file", "## wb-marker 001565AA0002");
    // The text being edited, not saved, previewed for the device (the
    // daemon renders it without saving: ProvPreview).
    b.exec(
        "const a = document.getElementById('tpl-e-content'); \
         a.value = a.value.replace('## wb-marker', '## wf-draft');",
        json!([]),
    );
    b.click("#tpl-render");
    b.click("#tpl-preview button[data-path$='.cfg']");
    b.wait_text("#tpl-render-file", "## wf-draft 001565AA0002");
    let saved = d.json(&["prov", "template", "show", "wb-mine"]);
    assert!(
        saved[0]["content"]
            .as_str()
            .unwrap()
            .contains("## wb-marker"),
        "the preview saved nothing: {saved}"
    );
    // A draft's unknown placeholder: its line and column, nothing saved.
    b.exec(
        "const a = document.getElementById('tpl-e-content'); \
         a.value = a.value.replace('## wf-draft %%MAC%%', '## wf-draft %%NOPE%%');",
        json!([]),
    );
    b.click("#tpl-render");
    b.wait_text("#tpl-preview", "Line 2, column");
    only_refusals(&b, 422);
    b.assert_clean_console("in the template editor");

    // Models: a file-name rule refused at its field, then a good one; a
    // custom placeholder; the redirection status.
    b.click("#nav-models");
    b.find("#model-f-form");
    b.type_into("#model-f-name", "wb-phone");
    b.set_value("#model-f-brand", "Yealink");
    b.type_into("#model-f-files", "{nope}.cfg");
    b.click("#model-f-save");
    b.wait_text("#model-f-files-error", "MAC format \"nope\"");
    only_refusals(&b, 422);
    b.type_into("#model-f-files", "wb-{aabbccddeeff}.cfg");
    b.click("#model-f-save");
    b.wait_text("#model-f-out", "Saved");
    b.wait_text("#model-table", "wb-phone");
    assert_eq!(
        d.json(&["prov", "model", "show", "wb-phone"])[0]["files"],
        "wb-{aabbccddeeff}.cfg"
    );
    b.type_into("#ph-f-name", "SITE");
    b.type_into("#ph-f-value", "Roma");
    b.click("#ph-f-save");
    b.wait_text("#ph-table", "%%_SITE%%");
    b.set_value("#ph-f-type", "interface");
    b.type_into("#ph-f-name", "LANIP");
    b.type_into("#ph-f-value", "eth0");
    b.click("#ph-f-save");
    b.wait_text("#ph-table", "%%_LANIP%%");
    let ph = d.json(&["prov", "placeholder", "list"]);
    assert!(ph.to_string().contains("\"interface\""), "{ph}");
    b.wait_text("#rs-status", "No device uses a redirection server");
    b.assert_clean_console("on the models panel");

    // Generated files with a viewer, the fetch log, the unassigned phone.
    b.click("#nav-files");
    open_row_plain(&b, "files", "001565aa0001.cfg");
    b.wait_text("#files-view", "account.1.user_name = 401");
    b.wait_text("#log-table", "001565aa0001.cfg");
    assert!(b.text("#log-table").contains("curl"));
    b.wait_text("#unknown-table", "001565BB0009");
    b.assert_clean_console("on the files panel");

    // Devices: edit one, delete the other.
    b.click("#nav-devices");
    open_row(&b, "dev", "001565AA0001");
    b.type_into("#dev-e-notes", "front desk");
    b.click("#dev-e-save");
    b.wait_text("#dev-e-out", "Saved");
    b.wait_text("#dev-table", "front desk");
    b.wait_text("#dev-detail", "Fetches of 001565AA0001");
    open_row(&b, "dev", "001565AA0002");
    b.click("#dev-delete");
    assert!(b.accept_alert().contains("001565AA0002"));
    b.wait_text("#dev-msg", "001565AA0002 deleted");
    b.type_into("#dev-search", "001565");
    b.wait_text("#dev-count", "1 entries");
    assert_eq!(
        d.json(&["prov", "device", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    b.assert_clean_console("on the devices panel");

    // An account added in the browser.
    b.type_into("#acc-f-extension", "402");
    b.type_into("#acc-f-display_name", "Bruno Verdi");
    b.type_into("#acc-f-sip_password", "s3cret-402");
    b.click("#acc-f-save");
    b.wait_text("#acc-table", "Bruno Verdi");
    assert_eq!(
        d.json(&["prov", "account", "show", "402"])[0]["sip_user"],
        "402"
    );
    b.assert_clean_console("on the accounts list");

    // A role defined in the browser.
    b.click("#nav-users");
    b.type_into("#role-name", "wbprov");
    b.set_value("#role-area-provisioning", "write");
    b.set_value("#role-area-audit", "read");
    b.click("#role-save");
    b.wait_text("#role-list", "wbprov");
    let role = d.json(&["role", "show", "wbprov"]);
    assert!(
        role.to_string().contains("provisioning:write") && role.to_string().contains("audit:read"),
        "{role}"
    );
    b.assert_clean_console("on the users panel");

    // HA configuration: the daemon's rules, shown at the field they name.
    b.click("#nav-ha-config");
    b.find("#hacfg-form");
    b.set_value("#hacfg-role", "coordinator");
    for (id, v) in [
        ("interface", "lan0"),
        ("local_ip", "198.51.100.1"),
        ("remote_ip", "198.51.100.2"),
        ("sync_interface", "sync0"),
        ("sync_local_ip", "192.0.2.1"),
        ("sync_remote_ip", "192.0.2.2"),
        ("resources", "198.51.100.10"),
    ] {
        b.type_into(&format!("#hacfg-{id}"), v);
    }
    b.click("#hacfg-save");
    b.wait_text("#hacfg-remote_serial-error", "remote serial number");
    b.wait_text("#hacfg-out", "Remote serial number");
    b.type_into("#hacfg-remote_serial", "KP-WB-B");
    b.type_into("#hacfg-sync_remote_ip", "192.0.3.2");
    b.click("#hacfg-save");
    b.wait_text("#hacfg-sync_remote_ip-error", "not in the local subnet");
    assert_eq!(b.text("#hacfg-remote_serial-error"), "");
    b.type_into("#hacfg-sync_remote_ip", "192.0.2.2");
    b.type_into("#hacfg-keepalive_warning", "9");
    b.click("#hacfg-save");
    b.wait_text("#hacfg-keepalive_warning-error", "warning threshold");
    b.type_into("#hacfg-local_ip", "198.51.100");
    b.click("#hacfg-save");
    b.wait_text("#hacfg-local_ip-error", "is not an IPv4 address");
    only_refusals(&b, 422);
    // Nothing was saved; a setting saved with HA left disabled.
    assert_eq!(d.json(&["ha", "show"])[0]["role"], "disabled");
    b.click("#nav-dashboard");
    b.find("#dash-objects");
    b.click("#nav-ha-config");
    b.find("#hacfg-form");
    b.type_into("#hacfg-heartbeat_interval", "0.5");
    b.click("#hacfg-save");
    b.wait_text("#hacfg-out", "Saved");
    assert_eq!(d.json(&["ha", "show"])[0]["heartbeat_interval"], "0.5");
    b.assert_clean_console("on the HA configuration");
}

/// Opens a row of a list whose rows open no detail box (the files list).
fn open_row_plain(b: &Driver, list: &str, what: &str) {
    b.type_into(&format!("#{list}-search"), what);
    b.wait_for(
        "the searched row alone",
        "const rows = document.querySelectorAll(`#${arguments[0]}-table tbody tr`); \
         if (rows.length !== 1 || !rows[0].innerText.includes(arguments[1])) return false; \
         rows[0].click(); return true;",
        json!([list, what]),
    );
}

fn a_month_of_100_000_audit_entries_pages_and_filters_in_the_browser(browser: Browser) {
    let dir = tempfile::tempdir().unwrap();
    // 100,000 entries take ~75 MB of store.
    let mut d = Daemon::with(
        dir.path(),
        &[("mgmt_listen", "127.0.0.1:0"), ("store_max_mb", "256")],
    );
    d.start();
    let base = format!("https://127.0.0.1:{}", d.listen("mgmt").port());
    add_user(&d, "webadmin", "admin", "admin-pass-1");
    // 10,000 phones imported, then updated nine times: 100,000 entries
    // in this month, one transaction per import.
    let t = std::time::Instant::now();
    for round in 0..10u32 {
        let mut csv = String::from("mac,model,template,notes\n");
        for i in 0..10_000u32 {
            csv.push_str(&format!(
                "0015{:08X},Yealink-T4x,yealink-t4x,round {round} phone {i}\n",
                0x0030_0000 + i
            ));
        }
        let file = dir.path().join("phones.csv");
        std::fs::write(&file, csv).unwrap();
        d.ok(&["prov", "device", "import", file.to_str().unwrap()]);
    }
    let status = d.json(&["status"]);
    assert!(
        status["audit_entries"].as_u64().unwrap() >= 100_000,
        "{status}"
    );
    let made = t.elapsed();

    let b = Driver::start(browser);
    sign_in(&b, &base, "webadmin", "admin-pass-1");
    let t = std::time::Instant::now();
    b.click("#nav-audit");
    b.wait_text("#audit-results tbody", "updated device 0015003");
    let first = t.elapsed();
    // The next page and a page far in, by the pager (server-side paging).
    let t = std::time::Instant::now();
    b.click("#audit-next");
    b.wait_text("#audit-page", "2");
    b.find("#audit-results tbody tr");
    let next = t.elapsed();
    // A filter that matches nothing reads the whole month.
    let t = std::time::Instant::now();
    b.type_into("#audit-user", "nobody");
    b.click("#audit-apply");
    b.wait_text("#audit-results", "No entries.");
    let none = t.elapsed();
    // One day, the newest first.
    b.type_into("#audit-user", "");
    let today = d.json(&["audit", "list", "--page-size", "1"])["entries"][0]["day"]
        .as_u64()
        .unwrap();
    let t = std::time::Instant::now();
    b.set_value("#audit-day", &today.to_string());
    b.wait_text("#audit-results tbody", "updated device 0015003");
    let day = t.elapsed();
    println!(
        "FIGURE 100,000 audit entries in a month (debug daemon): made in {made:?}; \
         first page {first:?}, next page {next:?}, a filter matching nothing {none:?}, \
         one day {day:?} (50 entries a page, paged by the daemon)"
    );
    // Generous: a debug daemon on a shared 2-CPU machine (the figures
    // above are what was measured).
    let limit = std::time::Duration::from_secs(15);
    for (what, took) in [
        ("first page", first),
        ("next page", next),
        ("filter", none),
        ("day", day),
    ] {
        assert!(took < limit, "{what}: {took:?}");
    }
    b.assert_clean_console("with 100,000 audit entries");
}

fn on_a_tablet_every_panel_fits_the_width_and_the_menu_stays_reachable(browser: Browser) {
    let dir = tempfile::tempdir().unwrap();
    let (d, base, _) = start(dir.path());
    add_user(&d, "webadmin", "admin", "admin-pass-1");
    d.ok(&["prov", "account", "add", "extension=501", "sip_password=p"]);
    d.ok(&[
        "prov",
        "device",
        "add",
        "mac=001565CC0001",
        "model=Yealink-T4x",
        "template=yealink-t4x",
        "account=501",
        "notes=a rather long note that should wrap and not widen the page",
    ]);
    let b = Driver::start(browser);
    // A 10-inch tablet held upright (CSS pixels).
    b.set_window(800, 1280);
    sign_in(&b, &base, "webadmin", "admin-pass-1");
    let width = b.exec("return window.innerWidth;", json!([]));
    assert!(width.as_u64().unwrap() <= 800, "{width}");
    let ids = nav_ids(&b);
    assert_eq!(ids.len(), 10, "{ids:?}");
    for lang in ["en", "it"] {
        b.set_value("#lang", lang);
        for id in &ids {
            let panel = id.trim_start_matches("nav-").to_string();
            // The menu is above the panel on a narrow screen: every entry
            // is on screen and can be clicked.
            b.click(&format!("#{id}"));
            b.find(&format!("main[data-panel='{panel}'] h1"));
            let fits = b.exec(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                json!([]),
            );
            assert!(
                fits[0].as_u64().unwrap() <= fits[1].as_u64().unwrap(),
                "{panel}: the page is wider than the screen: {fits}"
            );
            // Every string shown comes from the catalogue: no key shows
            // itself (what `t` does for a key it lacks: any word shaped
            // like the catalogue's keys), nor a `{0}`.
            let raw = b.exec_async(
                "const done = arguments[0]; import('/i18n.js').then(m => { \
                   const text = document.body.innerText; \
                   const heads = [...new Set(Object.keys(m.STRINGS.en).filter(k => k.includes('.')).map(k => k.split('.')[0]))]; \
                   const re = new RegExp('(?:^|[^A-Za-z0-9_.@-])((?:' + heads.join('|') + ')[.][a-z_][a-z_.]*)', 'g'); \
                   done([...[...text.matchAll(re)].map(x => x[1]), ...(/[{][0-9][}]/.test(text) ? ['{n}'] : [])]); });",
                json!([]),
            );
            assert_eq!(raw, json!([]), "{panel} in {lang}: keys shown raw");
        }
    }
    b.assert_clean_console("on a tablet");
}
