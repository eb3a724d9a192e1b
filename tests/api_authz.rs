//! The permission table (`auth::table`) against a real daemon: every
//! `Command` variant, sent as every kind of caller, is refused (403
//! `denied`) exactly when the declared table (and, for tenant-scoped roles,
//! the tenant scope) says so. Through the management API, and through the
//! console for the console-only commands. The README's permission matrix
//! is the table's.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use common::api::Api;
use common::{Daemon, add_user, kpbx_as, open_socket, start_with_api};
use kpbxd::auth::{api::console_only, scope::within_tenant, table};
use kpbxd::control::Command;
use kpbxd::model::access::{Access, Area, Permission, Role};

const T1: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";
const T2: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const PASSWORD: &str = "authz-password-1";

/// A caller: its user, role, tenant (if the role is tenant-scoped) and the
/// tenant whose ids its samples name.
struct Caller {
    user: String,
    role: Role,
    tenant: Option<&'static str>,
    samples_in: &'static str,
}

/// What the declared table says: may `c` run `command`?
fn expected(c: &Caller, user: &str, command: &Command) -> bool {
    let req = table::required(command);
    let own = matches!(command, Command::UserPasswd { name, .. } if name == user);
    let scope_ok = match c.tenant {
        Some(t) if !own => within_tenant(t, command, &|_| None).is_ok(),
        _ => true,
    };
    scope_ok && req.met_by(user, &c.role)
}

fn callers() -> Vec<Caller> {
    let mut out = vec![
        Caller {
            user: "az-admin".into(),
            role: Role::builtin("admin").unwrap(),
            tenant: None,
            samples_in: T1,
        },
        Caller {
            user: "az-pbx".into(),
            role: Role::builtin("pbx_admin").unwrap(),
            tenant: Some(T1),
            samples_in: T1,
        },
        // The same pbx_admin, outside its tenant.
        Caller {
            user: "az-pbx".into(),
            role: Role::builtin("pbx_admin").unwrap(),
            tenant: Some(T1),
            samples_in: T2,
        },
        Caller {
            user: "az-sup".into(),
            role: Role::builtin("supervisor").unwrap(),
            tenant: Some(T1),
            samples_in: T1,
        },
        Caller {
            user: "az-none".into(),
            role: Role {
                name: "az-none".into(),
                permissions: vec![],
                tenant_scoped: false,
            },
            tenant: None,
            samples_in: T1,
        },
    ];
    for &area in Area::ALL {
        for access in [Access::Read, Access::Write] {
            let p = Permission { area, access };
            let name = format!("az-{}-{}", area.as_str(), access.as_str());
            out.push(Caller {
                user: name.clone(),
                role: Role {
                    name,
                    permissions: vec![p],
                    tenant_scoped: false,
                },
                tenant: None,
                samples_in: T1,
            });
        }
    }
    out
}

fn setup(d: &Daemon) {
    d.ok(&["system", "set", "multitenant=on"]);
    for t in [T1, T2] {
        d.ok(&["prov", "tenant", "add", &format!("uuid={t}"), "name=T"]);
    }
    for c in callers() {
        if c.samples_in == T2 {
            continue; // the same user as the inside caller
        }
        if Role::builtin(&c.role.name).is_none() {
            let perms = c.role.permissions_text();
            d.ok(&["role", "add", &c.role.name, &format!("permissions={perms}")]);
        }
        add_user(d, &c.user, &c.role.name, PASSWORD);
        if let Some(t) = c.tenant {
            d.ok(&["user", "set", &c.user, &format!("tenant={t}")]);
        }
    }
}

#[test]
fn every_command_against_every_role_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with_api(dir.path());
    setup(&d);
    let api = Api::new(&d);
    let callers = callers();
    let mut tokens = std::collections::HashMap::new();
    for c in &callers {
        if !tokens.contains_key(&c.user) {
            tokens.insert(c.user.clone(), api.token(&c.user, PASSWORD));
        }
    }
    let mut checked = 0;
    let mut wrong = Vec::new();
    // Four callers at a time: the API takes 16 connections per address.
    for group in callers.chunks(4) {
        std::thread::scope(|s| {
            let handles: Vec<_> = group
                .iter()
                .map(|c| {
                    let (api, token) = (&api, tokens[&c.user].clone());
                    s.spawn(move || {
                        let mut out = Vec::new();
                        for command in table::samples(c.samples_in) {
                            if console_only(&command) {
                                continue;
                            }
                            let json = serde_json::to_value(&command).unwrap();
                            let (status, body) = api.command(&token, &json);
                            assert!(status >= 200, "{command:?}: no HTTP answer");
                            let denied = status == 403;
                            if denied {
                                assert_eq!(body["code"], "denied", "{body}");
                            }
                            let want = expected(c, &c.user, &command);
                            let body = format!("{status} {body}");
                            out.push((c.user.clone(), c.samples_in, command, want, denied, body));
                        }
                        out
                    })
                })
                .collect();
            for h in handles {
                for (user, tenant, command, want, denied, body) in h.join().unwrap() {
                    checked += 1;
                    if want == denied {
                        wrong.push(format!(
                        "{user} (ids in {tenant}): {command:?}: table says {}, daemon {}: {body}",
                        if want { "allowed" } else { "denied" },
                        if denied { "denied" } else { "allowed" },
                    ));
                    }
                }
            }
        });
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    // 17 callers, every variant (kind-taking ones twice), less the three
    // console-only ones.
    assert!(checked > 17 * 55, "only {checked} checks");
    eprintln!("api_authz: {checked} command x caller checks through the API");
}

/// The console-only commands (`cdr import`, `cdr export`, `audit export`)
/// through the console, as Unix user `nobody` mapped to each role in turn.
#[test]
fn console_only_commands_against_every_role_on_the_console() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test runs kpbx as Unix user nobody (setpriv): run it as root"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    open_socket(&d);
    setup(&d);
    let file = dir.path().join("Master.csv");
    std::fs::write(&file, "not,a,cdr\n").unwrap();
    std::fs::set_permissions(
        &file,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644),
    )
    .unwrap();
    let file = file.display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["cdr", "import", &file], "CdrImport"),
        (
            vec!["cdr", "export", "--interval", "current-day"],
            "CdrExport",
        ),
        (vec!["audit", "export", "--format", "csv"], "AuditExport"),
    ];
    let samples = table::samples(T1);
    let mut first = true;
    let mut checked = 0;
    for c in callers().iter().filter(|c| c.samples_in == T1) {
        let mut set = vec![
            "user".to_string(),
            if first { "add" } else { "set" }.to_string(),
            "nobody".to_string(),
            format!("role={}", c.role.name),
        ];
        set.push(format!("tenant={}", c.tenant.unwrap_or("")));
        first = false;
        let set: Vec<&str> = set.iter().map(String::as_str).collect();
        d.ok(&set);
        for (args, variant) in &cases {
            let command = samples.iter().find(|s| table::name(s) == *variant).unwrap();
            assert!(console_only(command), "{variant}");
            let want = expected(c, "nobody", command);
            let out = kpbx_as(&d, "nobody", args, "");
            let stderr = String::from_utf8_lossy(&out.stderr);
            let denied = stderr.contains("permission denied");
            assert!(
                !stderr.contains("unexpected argument"),
                "kpbx {args:?}: {stderr}"
            );
            assert_eq!(
                want, !denied,
                "nobody as {} ({}): kpbx {args:?}: {stderr}",
                c.role.name, c.user
            );
            checked += 1;
        }
    }
    // admin, pbx_admin, supervisor, no permission, 14 single permissions.
    assert_eq!(checked, 3 * 18);
}

/// The README's matrix is the table's (regenerate with
/// `AUTHZ_BLESS=1 cargo test --test api_authz readme`).
#[test]
fn readme_permission_matrix_is_the_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (begin, end) = (
        "<!-- permission-matrix:begin -->\n",
        "<!-- permission-matrix:end -->",
    );
    let a = readme
        .find(begin)
        .expect("README lacks the permission-matrix markers")
        + begin.len();
    let b = readme[a..].find(end).expect("README lacks the end marker") + a;
    let want = table::matrix();
    if std::env::var_os("AUTHZ_BLESS").is_some() {
        let text = format!("{}{want}{}", &readme[..a], &readme[b..]);
        std::fs::write(path, text).unwrap();
        return;
    }
    assert_eq!(
        &readme[a..b],
        want,
        "README's permission matrix is not auth::table's; regenerate it"
    );
}

/// Every `Command` variant (as serde lists them) has a sample, so the
/// tests above cover every command there is.
#[test]
fn samples_cover_every_variant() {
    let names: std::collections::BTreeSet<&str> =
        table::samples(T1).iter().map(table::name).collect();
    let all: std::collections::BTreeSet<&str> = table::variant_names().iter().copied().collect();
    assert!(all.len() > 50, "{all:?}");
    assert_eq!(names, all);
}

/// Issue 17 item 1: six clients guessing in parallel get at most
/// `api_lockout_failures` password checks for one (user, address), and
/// the right password is then refused (429) while the lock lasts; from many
/// addresses, at most 4 × that for the user.
#[test]
fn parallel_guesses_get_at_most_the_threshold_of_checks() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with_api(dir.path());
    let api = Api::new(&d);
    add_user(&d, "ann", "admin", PASSWORD);
    let guess = |source: &'static str, n: usize| {
        let api = &api;
        move || {
            (0..n)
                .map(|i| api.login_from(source, "ann", &format!("wrong-{i}")).0)
                .collect::<Vec<u16>>()
        }
    };
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..6).map(|_| s.spawn(guess("127.0.0.1", 10))).collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let checks = statuses.iter().filter(|&&s| s == 401).count();
    let locked = statuses.iter().filter(|&&s| s == 429).count();
    eprintln!("6 x 10 parallel wrong passwords: {checks} password checks, {locked} refused (429)");
    assert!(checks <= 5, "{checks} checks: {statuses:?}");
    assert_eq!(checks + locked, 60, "{statuses:?}");
    let (s, body) = api.login_from("127.0.0.1", "ann", PASSWORD);
    assert_eq!((s, body["code"].as_str()), (429, Some("locked")), "{body}");
    // Another address still gets in, but many addresses share a per-user
    // ceiling of 4 × 5 checks.
    let sources: [&'static str; 6] = [
        "127.0.0.21",
        "127.0.0.22",
        "127.0.0.23",
        "127.0.0.24",
        "127.0.0.25",
        "127.0.0.26",
    ];
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = sources.iter().map(|&a| s.spawn(guess(a, 10))).collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let more = statuses.iter().filter(|&&s| s == 401).count();
    eprintln!("6 addresses x 10 wrong passwords more: {more} password checks");
    assert!(checks + more <= 20, "{checks} + {more} checks for one user");
}

/// `kpbx status`'s store size in bytes.
fn store_bytes(d: &Daemon) -> u64 {
    d.json(&["status"])["store_bytes"].as_u64().unwrap()
}

/// Issue 17 item 4: failed logins for made-up names write nothing, the
/// names are not logged verbatim, over-long names are a 400, and no store
/// error text reaches a client.
#[test]
fn failed_logins_write_nothing_and_log_no_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with_api(dir.path());
    let api = Api::new(&d);
    add_user(&d, "ann", "admin", PASSWORD);
    let before = store_bytes(&d);
    let count = 200;
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let api = &api;
            s.spawn(move || {
                for i in 0..count / 4 {
                    let source = format!("127.{}.{}.{}", 1 + t, i / 200 + 1, i % 200 + 1);
                    let name = format!("secret-typed-as-name-{t}-{i}");
                    let (s, _) = api.login_from(&source, &name, "whatever-password");
                    assert_eq!(s, 401, "{name} from {source}");
                }
            });
        }
    });
    let after = store_bytes(&d);
    assert_eq!(after, before, "failed logins grew the store");
    let log = d.log();
    assert!(
        !log.contains("secret-typed-as-name"),
        "an unknown user name reached the log"
    );
    assert!(log.contains("unknown user name (27 bytes)") || log.contains("bytes)"));
    let long = "x".repeat(65);
    let (s, body) = api.login_from("127.0.0.1", &long, "whatever-password");
    assert_eq!(
        (s, body["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let (s, body) = api.login_from("127.0.0.1", &"x".repeat(64), "whatever-password");
    assert_eq!(s, 401, "{body}");
    assert!(!body.to_string().to_lowercase().contains("mdb"), "{body}");
}

/// Issue 17 item 3: a restore needs the write permission of everything it
/// puts back. A user demoted to `audit:write` only cannot restore the
/// transaction that demoted it; the refusal names what is missing.
#[test]
fn audit_write_alone_cannot_restore_a_demotion() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with_api(dir.path());
    let api = Api::new(&d);
    d.ok(&["role", "add", "auditw", "permissions=audit:write"]);
    add_user(&d, "eve", "admin", PASSWORD);
    let demotion = d.json(&["user", "set", "eve", "role=auditw"])["txid"]
        .as_u64()
        .unwrap();
    let token = api.token("eve", PASSWORD);
    let restore = serde_json::json!({"AuditRestore": {"txid": demotion, "force": true}});
    let (s, body) = api.command(&token, &restore);
    assert_eq!(s, 403, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("users:write"), "{message}");
    let users = d.json(&["user", "list"]);
    assert!(users.to_string().contains("auditw"), "{users}");
    // An admin may.
    add_user(&d, "ann", "admin", PASSWORD);
    let ann = api.token("ann", PASSWORD);
    let (s, body) = api.command(&ann, &restore);
    assert_eq!(s, 200, "{body}");
}

/// Issue 17, low: a user grants only permissions it holds; `users:write`
/// alone cannot make itself (or anyone, or a role) admin.
#[test]
fn users_write_alone_cannot_make_itself_admin() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with_api(dir.path());
    let api = Api::new(&d);
    d.ok(&["role", "add", "clerk", "permissions=users:write"]);
    add_user(&d, "mal", "clerk", PASSWORD);
    let token = api.token("mal", PASSWORD);
    for command in [
        serde_json::json!({"UserSet": {"name": "mal", "fields": [["role", "admin"]]}}),
        serde_json::json!({"UserAdd": {"fields": [["name", "mal2"], ["role", "admin"]]}}),
        serde_json::json!({"RoleAdd": {"fields": [["name", "x"], ["permissions", "system:write"]]}}),
        serde_json::json!({"RoleSet": {"name": "clerk", "fields": [["permissions", "users:write,ha:write"]]}}),
    ] {
        let (s, body) = api.command(&token, &command);
        assert_eq!(s, 403, "{command}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("lacks"),
            "{command}: {body}"
        );
    }
    // Within what it holds, it may.
    let (s, body) = api.command(
        &token,
        &serde_json::json!({"UserAdd": {"fields": [["name", "mal3"], ["role", "clerk"]]}}),
    );
    assert_eq!(s, 200, "{body}");
    assert!(!d.json(&["user", "list"]).to_string().contains("mal2"));
}

/// Issue 17 item 8: a tenant admin cannot copy another tenant's template
/// (both ends of the copy are checked), nor point its device at one.
#[test]
fn template_copy_checks_both_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with_api(dir.path());
    setup(&d);
    let api = Api::new(&d);
    d.ok(&[
        "prov",
        "template",
        "copy",
        "fanvil-x",
        "theirs",
        &format!("tenant={T2}"),
    ]);
    let token = api.token("az-pbx", PASSWORD);
    let copy = |from: String| serde_json::json!({"ProvCopyTemplate": {"from": from, "name": "mine", "tenant": T1}});
    let (s, body) = api.command(&token, &copy(format!("{T2}/theirs")));
    assert_eq!(s, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("outside tenant"),
        "{body}"
    );
    let (s, body) = api.command(&token, &copy("fanvil-x".into()));
    assert_eq!(s, 200, "{body}");
}

/// Issue 17, low: a session ends when its user's password is reset, its
/// role changes, or it is deleted and created again.
#[test]
fn sessions_end_when_the_user_changes() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with_api(dir.path());
    let api = Api::new(&d);
    add_user(&d, "ann", "admin", PASSWORD);
    let works = |token: &str| api.call("GET", "/api/v1/status", Some(token), None).0 == 200;
    let ended = |token: &str| {
        let (s, body) = api.call("GET", "/api/v1/status", Some(token), None);
        s == 401 && body["code"] == "invalid_token"
    };
    // Password reset.
    let t = api.token("ann", PASSWORD);
    assert!(works(&t));
    let mut child = std::process::Command::new(common::KPBX)
        .arg("--socket")
        .arg(&d.socket)
        .args(["user", "passwd", "ann"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "another-password-2").unwrap();
    assert!(child.wait().unwrap().success());
    assert!(ended(&t), "a password reset left the session alive");
    // Role change.
    let t = api.token("ann", "another-password-2");
    assert!(works(&t));
    d.ok(&["user", "set", "ann", "role=supervisor"]);
    assert!(ended(&t), "a role change left the session alive");
    // Deleted and created again with the same password.
    let t = api.token("ann", "another-password-2");
    d.ok(&["user", "del", "ann"]);
    add_user(&d, "ann", "supervisor", "another-password-2");
    assert!(ended(&t), "a re-created user inherited the old session");
}

/// curl against the API with raw request headers: the status.
fn raw_status(api: &Api, method: &str, path: &str, headers: &[&str]) -> u16 {
    let url = format!("https://localhost:{}{path}", api.port);
    let resolve = format!("localhost:{}:127.0.0.1", api.port);
    let mut c = std::process::Command::new("curl");
    c.args([
        "-sS",
        "--max-time",
        "30",
        "--cacert",
        &api.cert,
        "--resolve",
        &resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-X",
        method,
    ]);
    for h in headers {
        c.args(["-H", h]);
    }
    let out = c
        .arg(url)
        .output()
        .expect("curl is missing: apt-get install curl");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The endpoints the web console calls beside `POST /api/v1/command`
/// (issue 23), each with the command it stands for.
fn console_endpoints(restore_txid: u64) -> Vec<(&'static str, String, Command)> {
    use kpbxd::control::AuditQuery;
    let query = AuditQuery {
        page_size: 5,
        ..AuditQuery::default()
    };
    let export = |format: &str| Command::AuditExport {
        query: AuditQuery::default(),
        format: format.to_string(),
    };
    vec![
        ("GET", "/api/v1/status".into(), Command::Status),
        ("GET", "/api/v1/settings".into(), Command::SystemShow),
        ("GET", "/api/v1/users".into(), Command::UserList),
        ("GET", "/api/v1/roles".into(), Command::RoleList),
        ("GET", "/api/v1/audit/verify".into(), Command::AuditVerify),
        (
            "GET",
            "/api/v1/audit?page_size=5".into(),
            Command::AuditQuery(query),
        ),
        (
            "GET",
            "/api/v1/audit/export?format=csv".into(),
            export("csv"),
        ),
        (
            "GET",
            "/api/v1/audit/export?format=xlsx&columns=txid,user".into(),
            export("xlsx"),
        ),
        (
            "GET",
            format!("/api/v1/audit/{restore_txid}"),
            Command::AuditShow { txid: restore_txid },
        ),
        (
            "POST",
            format!("/api/v1/audit/{restore_txid}/restore"),
            Command::AuditRestore {
                txid: restore_txid,
                force: false,
            },
        ),
    ]
}

/// The console's own endpoints, adversarially: each against every kind of
/// caller, refused exactly when the table (and the tenant scope: the audit
/// log spans every tenant) refuses the command it stands for;
/// `/api/v1/session` tells each caller its own identity and no one
/// else's; and without a live session (no token, a made-up one, another
/// scheme, the token in the query string or a cookie, a token signed out)
/// every one of them is 401 and changes nothing.
#[test]
fn console_endpoints_against_every_caller_and_without_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_with_api(dir.path());
    setup(&d);
    // Something harmless to restore: a role made last.
    let made = d.json(&["role", "add", "az-spare", "permissions=cdr:read"]);
    let txid = made["txid"].as_u64().unwrap();
    let api = Api::new(&d);
    let endpoints = console_endpoints(txid);
    let mut checked = 0;
    let mut wrong = Vec::new();
    let mut seen_users = std::collections::HashSet::new();
    for c in callers() {
        // The outside caller is the inside one again: these endpoints name
        // no tenant's ids.
        if !seen_users.insert(c.user.clone()) {
            continue;
        }
        let token = api.token(&c.user, PASSWORD);
        let (status, me) = api.call("GET", "/api/v1/session", Some(&token), None);
        assert_eq!(status, 200, "{}: {me}", c.user);
        let perms: Vec<String> = c.role.permissions.iter().map(ToString::to_string).collect();
        assert_eq!(
            me,
            serde_json::json!({
                "user": c.user, "role": c.role.name, "permissions": perms, "tenant": c.tenant,
            }),
            "{}",
            c.user
        );
        for (method, path, command) in &endpoints {
            let (status, body) = api.call(method, path, Some(&token), None);
            assert!(status >= 200, "{path}: no answer");
            let denied = status == 403;
            if denied {
                assert_eq!(body["code"], "denied", "{path}: {body}");
            }
            assert_ne!(status, 401, "{} {path}: a live session", c.user);
            let want = expected(&c, &c.user, command);
            checked += 1;
            if want == denied {
                wrong.push(format!(
                    "{} {method} {path}: table says {}, daemon answered {status} {body}",
                    c.user,
                    if want { "allowed" } else { "denied" },
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked}:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(checked >= 14 * endpoints.len(), "only {checked} checks");

    // Without a live session.
    let admin = api.token("az-admin", PASSWORD);
    let gone = api.token("az-admin", PASSWORD);
    let (status, _) = api.call("POST", "/api/v1/logout", Some(&gone), None);
    assert_eq!(status, 200);
    let before = d.json(&["audit", "list", "--limit", "1"])[0]["txid"].clone();
    let basic = format!(
        "Authorization: Basic {}",
        "YXotYWRtaW46YXV0aHotcGFzc3dvcmQtMQ=="
    );
    let cookie = format!("Cookie: token={admin}; kpbx.token={admin}");
    let made_up = format!("Authorization: Bearer {}", "A".repeat(43));
    let signed_out = format!("Authorization: Bearer {gone}");
    let lower = format!("Authorization: bearer{admin}");
    let mut paths: Vec<(&str, String)> =
        endpoints.iter().map(|(m, p, _)| (*m, p.clone())).collect();
    paths.push(("GET", "/api/v1/session".into()));
    let mut unauth = 0;
    for (method, path) in &paths {
        let sep = if path.contains('?') { '&' } else { '?' };
        let in_query = format!("{path}{sep}token={admin}&access_token={admin}");
        for (what, path, headers) in [
            ("no token", path.as_str(), vec![]),
            ("a made-up token", path.as_str(), vec![made_up.as_str()]),
            ("another scheme", path.as_str(), vec![basic.as_str()]),
            (
                "no space after the scheme",
                path.as_str(),
                vec![lower.as_str()],
            ),
            ("a cookie", path.as_str(), vec![cookie.as_str()]),
            ("the token in the query", in_query.as_str(), vec![]),
            (
                "a signed-out token",
                path.as_str(),
                vec![signed_out.as_str()],
            ),
        ] {
            let status = raw_status(&api, method, path, &headers);
            // The query string of the export is checked before the
            // session: a stray `token` parameter is a 400 there, which
            // refuses as well.
            assert!(
                status == 401 || (status == 400 && what == "the token in the query"),
                "{method} {path} with {what}: {status}"
            );
            unauth += 1;
        }
    }
    assert_eq!(
        d.json(&["audit", "list", "--limit", "1"])[0]["txid"],
        before,
        "an unauthenticated call changed something"
    );
    // The admin's own session still works after all that.
    let (status, _) = api.call("GET", "/api/v1/session", Some(&admin), None);
    assert_eq!(status, 200);
    eprintln!("api_authz: {checked} console endpoint x caller checks, {unauth} without a session");
}
