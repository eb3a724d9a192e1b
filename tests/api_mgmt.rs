//! The management API over real TLS (curl with the daemon's self-signed
//! certificate as CA): login, sessions, expiry, logout, lockout, roles and
//! permissions, audited changes with the client address, and bad input that
//! gets a clear 4xx and changes nothing.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{Daemon, add_user, start_with_api as start};

struct Api {
    port: u16,
    cert: String,
}

impl Api {
    fn new(d: &Daemon) -> Api {
        assert!(
            Command::new("curl").arg("--version").output().is_ok(),
            "curl is missing: apt-get install curl"
        );
        Api {
            port: d.listen("mgmt").port(),
            cert: d
                .data_dir()
                .join("tls/selfsigned-cert.pem")
                .display()
                .to_string(),
        }
    }

    /// A request from `source` (a loopback address); returns status and body.
    fn call_from(
        &self,
        source: &str,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        extra: &[&str],
    ) -> (u16, serde_json::Value) {
        let url = format!("https://localhost:{}{path}", self.port);
        let resolve = format!("localhost:{}:127.0.0.1", self.port);
        let mut args: Vec<String> = [
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            &self.cert,
            "--resolve",
            &resolve,
            "--interface",
            source,
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(t) = token {
            args.push("-H".into());
            args.push(format!("Authorization: Bearer {t}"));
        }
        if body.is_some() {
            args.extend(["-H".into(), "Content-Type: application/json".into()]);
            args.extend(["--data-binary".into(), "@-".into()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        args.push(url);
        let mut child = Command::new("curl")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.unwrap_or("").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let status: u16 = code
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("curl: {text:?} {}", String::from_utf8_lossy(&out.stderr)));
        let json = serde_json::from_str(body).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (u16, serde_json::Value) {
        self.call_from("127.0.0.1", method, path, token, body, &[])
    }

    fn login(&self, user: &str, password: &str) -> (u16, serde_json::Value) {
        let body = serde_json::json!({ "user": user, "password": password }).to_string();
        self.call("POST", "/api/v1/login", None, Some(&body))
    }

    fn token(&self, user: &str, password: &str) -> String {
        let (status, body) = self.login(user, password);
        assert_eq!(status, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

#[test]
fn roles_and_audited_changes_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let api = Api::new(&d);
    add_user(&d, "ann", "admin", "ann-password");
    add_user(&d, "sue", "supervisor", "sue-password");
    d.ok(&["role", "add", "auditor", "permissions=audit:read"]);
    add_user(&d, "aud", "auditor", "aud-password");

    // admin: everything, through the generic command endpoint and aliases.
    let ann = api.token("ann", "ann-password");
    let (s, status) = api.call("GET", "/api/v1/status", Some(&ann), None);
    assert_eq!(s, 200);
    assert_eq!(status["schema"], 1);
    let (s, c) = api.call(
        "POST",
        "/api/v1/command",
        Some(&ann),
        Some(r#"{"SystemSet":{"values":[["hostname","api-host"]]}}"#),
    );
    assert_eq!(s, 200, "{c}");
    let txid = c["txid"].as_u64().unwrap();
    // Audited with the user name and the client's address.
    let log = d.json(&["audit", "list", "--limit", "1"]);
    assert_eq!(log[0]["user"], "ann");
    assert_eq!(log[0]["source"], "127.0.0.1");
    let (s, shown) = api.call("GET", &format!("/api/v1/audit/{txid}"), Some(&ann), None);
    assert_eq!(s, 200);
    assert_eq!(shown["objects"][0]["object_id"], "hostname");
    let (s, page) = api.call(
        "GET",
        "/api/v1/audit?user=ann&columns=txid,user,ip",
        Some(&ann),
        None,
    );
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["entries"][0]["ip"], "127.0.0.1");
    let (s, r) = api.call(
        "POST",
        &format!("/api/v1/audit/{txid}/restore"),
        Some(&ann),
        None,
    );
    assert_eq!(s, 200, "{r}");
    assert_eq!(d.setting("hostname")["is_default"], true);
    // Conflict: restoring the same transaction again is refused with 409.
    let (s, e) = api.call(
        "POST",
        &format!("/api/v1/audit/{txid}/restore"),
        Some(&ann),
        None,
    );
    assert_eq!(s, 409, "{e}");

    // supervisor: status yes, audit and settings no; the refusal names the
    // missing permission.
    let sue = api.token("sue", "sue-password");
    assert_eq!(api.call("GET", "/api/v1/status", Some(&sue), None).0, 200);
    let (s, e) = api.call("GET", "/api/v1/audit", Some(&sue), None);
    assert_eq!(s, 403);
    assert!(
        e["message"].as_str().unwrap().contains("lacks audit:read"),
        "{e}"
    );
    let (s, e) = api.call(
        "POST",
        "/api/v1/command",
        Some(&sue),
        Some(r#"{"SystemSet":{"values":[["hostname","evil"]]}}"#),
    );
    assert_eq!(s, 403);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("lacks system:write")
    );
    let (s, _) = api.call(
        "POST",
        "/api/v1/command",
        Some(&sue),
        Some(r#"{"UserAdd":{"fields":[["name","x"],["role","admin"]]}}"#),
    );
    assert_eq!(s, 403);

    // pbx_admin: everything, HA included.
    add_user(&d, "pat", "pbx_admin", "pat-password");
    let pat = api.token("pat", "pat-password");
    let (s, ha) = api.call("POST", "/api/v1/command", Some(&pat), Some(r#""HaStatus""#));
    assert_eq!(s, 200, "{ha}");
    assert_eq!(api.call("GET", "/api/v1/users", Some(&pat), None).0, 200);

    // custom role: audit read only.
    let aud = api.token("aud", "aud-password");
    assert_eq!(
        api.call("GET", "/api/v1/audit/verify", Some(&aud), None).0,
        200
    );
    let (s, e) = api.call(
        "POST",
        &format!("/api/v1/audit/{txid}/restore?force=true"),
        Some(&aud),
        None,
    );
    assert_eq!(s, 403);
    assert!(e["message"].as_str().unwrap().contains("lacks audit:write"));
    assert_eq!(api.call("GET", "/api/v1/status", Some(&aud), None).0, 403);

    // Deleting a user ends their sessions (401, log in again).
    d.ok(&["user", "del", "aud"]);
    assert_eq!(api.call("GET", "/api/v1/audit", Some(&aud), None).0, 401);

    // Logout ends the session.
    let (s, _) = api.call("POST", "/api/v1/logout", Some(&ann), None);
    assert_eq!(s, 200);
    let (s, e) = api.call("GET", "/api/v1/status", Some(&ann), None);
    assert_eq!(s, 401, "{e}");
}

#[test]
fn lockout_and_session_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let api = Api::new(&d);
    add_user(&d, "ann", "admin", "ann-password");
    d.ok(&[
        "system",
        "set",
        "api_lockout_failures=3",
        "api_lockout_seconds=60",
        "api_session_seconds=4",
    ]);

    for _ in 0..3 {
        let (s, e) = api.login("ann", "wrong-password");
        assert_eq!(s, 401, "{e}");
        assert_eq!(e["message"], "wrong user or password");
    }
    // Locked out from this address, even with the right password...
    let (s, e) = api.login("ann", "ann-password");
    assert_eq!(s, 429, "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("try again in"),
        "{e}"
    );
    // ...but not from another one.
    let body = r#"{"user":"ann","password":"ann-password"}"#;
    let (s, ok) = api.call_from("127.0.0.2", "POST", "/api/v1/login", None, Some(body), &[]);
    assert_eq!(s, 200, "{ok}");
    // Unknown users get the same answer as wrong passwords.
    let (s, e) = api.login("nobody-here", "whatever-pass");
    assert_eq!(s, 401);
    assert_eq!(e["message"], "wrong user or password");

    // Sessions expire.
    let token = ok["token"].as_str().unwrap().to_string();
    let (s, _) = api.call_from(
        "127.0.0.2",
        "GET",
        "/api/v1/status",
        Some(&token),
        None,
        &[],
    );
    assert_eq!(s, 200);
    // A 4 s session: 2 s left the status call above answered 401 when a
    // loaded box (load average 12) took that long between the login and it.
    std::thread::sleep(std::time::Duration::from_millis(4500));
    let (s, e) = api.call_from(
        "127.0.0.2",
        "GET",
        "/api/v1/status",
        Some(&token),
        None,
        &[],
    );
    assert_eq!(s, 401);
    assert!(e["message"].as_str().unwrap().contains("expired"), "{e}");
}

#[test]
fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let api = Api::new(&d);
    add_user(&d, "ann", "admin", "ann-password");
    let ann = api.token("ann", "ann-password");
    let entries = || d.json(&["status"])["audit_entries"].as_u64().unwrap();
    let before = entries();

    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, u16);
    let cases: &[Case] = &[
        (
            "POST",
            "/api/v1/command",
            Some(&ann),
            Some("{not json"),
            400,
        ),
        (
            "POST",
            "/api/v1/command",
            Some(&ann),
            Some(r#"{"SystemSet":{"values":[["hostname","x"]],"extra":1}}"#),
            400,
        ),
        (
            "POST",
            "/api/v1/command",
            Some(&ann),
            Some(r#"{"SystemSet":{"values":"hostname=x"}}"#),
            400,
        ),
        (
            "POST",
            "/api/v1/command",
            Some(&ann),
            Some(r#"{"Nope":{}}"#),
            400,
        ),
        (
            "POST",
            "/api/v1/login",
            None,
            Some(r#"{"user":"ann","password":"ann-password","admin":true}"#),
            400,
        ),
        (
            "POST",
            "/api/v1/login",
            None,
            Some(r#"{"user":["ann"]}"#),
            400,
        ),
        (
            "POST",
            "/api/v1/command",
            Some("00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff"),
            Some(r#"{"SystemSet":{"values":[["hostname","x"]]}}"#),
            401,
        ),
        (
            "POST",
            "/api/v1/command",
            None,
            Some(r#"{"SystemSet":{"values":[["hostname","x"]]}}"#),
            401,
        ),
        ("GET", "/api/v1/nowhere", Some(&ann), None, 404),
        // Outside /api/ is the web console's (tests/web_console.rs); under
        // /api/ but not /api/v1/ is still the API's JSON 404.
        ("GET", "/api/index.html", None, None, 404),
        ("DELETE", "/api/v1/status", Some(&ann), None, 405),
        ("GET", "/api/v1/audit?month=13", Some(&ann), None, 422),
        ("GET", "/api/v1/audit?frob=1", Some(&ann), None, 400),
        ("GET", "/api/v1/audit/0", Some(&ann), None, 400),
        (
            "POST",
            "/api/v1/command",
            Some(&ann),
            Some(r#"{"SystemSet":{"values":[["hostname","-bad-"]]}}"#),
            422,
        ),
    ];
    for (method, path, token, body, want) in cases {
        let (s, e) = api.call(method, path, *token, *body);
        assert_eq!(s, *want, "{method} {path} {body:?}: {e}");
        assert!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{method} {path}: a message says why: {e}"
        );
    }
    // A huge body is refused from its Content-Length.
    let (s, e) = api.call_from(
        "127.0.0.1",
        "POST",
        "/api/v1/command",
        Some(&ann),
        Some("{}"),
        &["-H", "Content-Length: 50000000"],
    );
    assert_eq!(s, 413, "{e}");
    // Plain HTTP on the TLS port gets nothing useful.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("http://127.0.0.1:{}/api/v1/status", api.port))
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&out.stdout), "200");

    assert_eq!(entries(), before, "nothing changed");
    assert_eq!(d.setting("hostname")["is_default"], true);
    // The daemon still answers.
    assert_eq!(api.call("GET", "/api/v1/status", Some(&ann), None).0, 200);
}

/// Issue 17, item 2: `provisioning:write` reached the SMTP settings and the
/// tasks through `ProvSet`/`ProvDelete` with kind `mail` or `task` (a clerk
/// pointed the SMTP server at itself and got the password). Those kinds are
/// not provisioning objects: the permission follows from the kind
/// (`tasks:*`, `auth::table`), so the clerk is refused (403 naming it);
/// nothing changed.
#[test]
fn provisioning_write_does_not_reach_mail_or_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let api = Api::new(&d);
    d.ok(&[
        "mail",
        "configure",
        "server=smtp.example.net",
        "sender=pbx@example.net",
    ]);
    d.ok(&[
        "role",
        "add",
        "clerk",
        "permissions=provisioning:read,provisioning:write",
    ]);
    add_user(&d, "clerk", "clerk", "clerk-password");
    let token = api.token("clerk", "clerk-password");
    let before = d.json(&["mail", "show"]);
    for command in [
        r#"{"ProvSet":{"kind":"mail","id":"mail","fields":[["server","127.0.0.1"]]}}"#,
        r#"{"ProvDelete":{"kind":"mail","ids":["mail"]}}"#,
        r#"{"ProvDelete":{"kind":"task","ids":["1"]}}"#,
        r#"{"ProvAdd":{"kind":"task","fields":[["name","x"]]}}"#,
        r#"{"ProvList":{"kind":"mail"}}"#,
    ] {
        let (s, body) = api.call("POST", "/api/v1/command", Some(&token), Some(command));
        assert_eq!(s, 403, "{command}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("lacks tasks:"),
            "{command}: {body}"
        );
    }
    assert_eq!(
        d.json(&["mail", "show"]),
        before,
        "the SMTP settings are untouched"
    );
}
