//! The management API's transport against a real daemon and real curl:
//! connection limits and deadlines under slowloris from one address,
//! password hashing off the loop, the console's routing for API commands,
//! RFC 6750/9110 details (auth-scheme case, WWW-Authenticate, 404/405
//! codes, Allow), the shared paging rule, and the self-signed certificate
//! checked by `curl --cacert` against an IP address.
//!
//! Figures (README "Management API figures") come from the first two tests'
//! output (`cargo test --test api_http -- --nocapture`).

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;
mod lab;
#[path = "lab/rig.rs"]
mod rig;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, add_user, start_with_api as start};

struct Api {
    port: u16,
    cert: String,
    /// The daemon's network namespace, if it runs in one.
    netns: Option<String>,
}

/// One answer: status, lower-cased head lines, JSON body.
struct Answer {
    status: u16,
    head: Vec<String>,
    body: serde_json::Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.head
            .iter()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }
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
            netns: d.netns.clone(),
        }
    }

    /// curl against `https://localhost:PORT{path}` (resolved to
    /// 127.0.0.1) from loopback `source`; `source` "direct" uses
    /// `https://127.0.0.1:PORT` without --resolve (the certificate must
    /// name the IP address).
    fn call(
        &self,
        source: &str,
        method: &str,
        path: &str,
        headers: &[&str],
        body: Option<&str>,
    ) -> Answer {
        let mut c = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "curl"]);
                c
            }
            None => Command::new("curl"),
        };
        c.args(["-sS", "--max-time", "20", "--cacert", &self.cert]);
        let url = if source == "direct" {
            format!("https://127.0.0.1:{}{path}", self.port)
        } else {
            c.args(["--interface", source, "--resolve"])
                .arg(format!("localhost:{}:127.0.0.1", self.port));
            format!("https://localhost:{}{path}", self.port)
        };
        c.args(["-X", method, "-D", "-"]);
        for h in headers {
            c.args(["-H", h]);
        }
        if let Some(b) = body {
            c.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        let out = c.arg(&url).stdin(Stdio::null()).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| {
            panic!(
                "curl {url}: no answer: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let head: Vec<String> = head.lines().map(str::to_string).collect();
        let status = head[0].split_whitespace().nth(1).unwrap().parse().unwrap();
        Answer {
            status,
            head,
            body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        }
    }

    fn login_from(&self, source: &str, user: &str, password: &str) -> Answer {
        let body = serde_json::json!({ "user": user, "password": password }).to_string();
        self.call(source, "POST", "/api/v1/login", &[], Some(&body))
    }

    fn token(&self, user: &str, password: &str) -> String {
        let a = self.login_from("127.0.0.1", user, password);
        assert_eq!(a.status, 200, "{}", a.body);
        a.body["token"].as_str().unwrap().to_string()
    }

    fn command(&self, token: &str, command: &str) -> Answer {
        let auth = format!("Authorization: Bearer {token}");
        self.call(
            "127.0.0.1",
            "POST",
            "/api/v1/command",
            &[&auth],
            Some(command),
        )
    }
}

/// A TCP connection from loopback address `source`.
fn connect_from(source: &str, to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{source}:0").parse().unwrap();
    s.bind(&from.into()).unwrap();
    s.connect_timeout(&to.into(), Duration::from_secs(2))
        .unwrap();
    s.into()
}

/// Whether the server closed `s` (FIN: read gives 0) within `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut b = [0u8; 64];
    matches!(s.read(&mut b), Ok(0))
}

#[test]
fn slowloris_from_one_address_does_not_lock_out_another() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let api = Api::new(&d);
    add_user(&d, "ann", "admin", "ann-password");
    let to: SocketAddr = format!("127.0.0.1:{}", api.port).parse().unwrap();

    // 200 connections from 127.0.0.2: half idle, half trickling a TLS
    // ClientHello: a valid record header announcing 16 KiB, then one byte
    // every 300 ms.
    let mut held: Vec<TcpStream> = (0..200).map(|_| connect_from("127.0.0.2", to)).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trickle = {
        let mut slow: Vec<TcpStream> = held
            .iter()
            .step_by(2)
            .map(|s| s.try_clone().unwrap())
            .collect();
        for s in &mut slow {
            let _ = s.write(&[0x16, 0x03, 0x01, 0x3f, 0xff]);
        }
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for s in &mut slow {
                    let _ = s.write(&[0]);
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));

    // Another address logs in at once, while all 200 are held.
    let mut worst = Duration::ZERO;
    for _ in 0..3 {
        let t = Instant::now();
        let a = api.login_from("127.0.0.1", "ann", "ann-password");
        let took = t.elapsed();
        assert_eq!(a.status, 200, "{}", a.body);
        worst = worst.max(took);
    }
    println!(
        "FIGURE login latency from another address, 200 slowloris held: {worst:?} (worst of 3)"
    );
    assert!(worst < Duration::from_secs(1), "login took {worst:?}");

    // Over the per-address limit: closed cleanly (FIN) at once, no TLS.
    let mut extra = connect_from("127.0.0.2", to);
    assert!(
        closed_within(&mut extra, Duration::from_secs(1)),
        "a connection over the per-address limit is closed at once"
    );
    // A held idle connection is cut by the handshake deadline (3 s), well
    // before the old 10 s.
    let t = Instant::now();
    assert!(
        closed_within(&mut held[1], Duration::from_secs(6)),
        "idle connection not closed by the handshake deadline"
    );
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    trickle.join().unwrap();
    held.clear();
}

/// `kpbx status` wall time, process start included.
fn status_latency(d: &Daemon) -> Duration {
    let t = Instant::now();
    let out = d.kpbx(&["status"]);
    assert!(out.status.success());
    t.elapsed()
}

#[test]
fn parallel_password_changes_do_not_stall_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let api = Api::new(&d);
    add_user(&d, "ann", "admin", "ann-password");
    add_user(&d, "bob", "supervisor", "bob-password");
    let ann = api.token("ann", "ann-password");

    let mut base: Vec<Duration> = (0..10).map(|_| status_latency(&d)).collect();
    base.sort();
    let base_median = base[base.len() / 2];

    // 50 parallel password changes: 4 curl processes from 4 addresses
    // (each within the per-address connection limit), 13 transfers each.
    let body = r#"{"UserPasswd":{"name":"bob","password":"new-bob-password-1"}}"#;
    let auth = format!("Authorization: Bearer {ann}");
    let url = format!("https://localhost:{}/api/v1/command", api.port);
    let resolve = format!("localhost:{}:127.0.0.1", api.port);
    let storm: Vec<_> = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .enumerate()
        .map(|(i, source)| {
            let n = if i < 2 { 13 } else { 12 };
            let mut c = Command::new("curl");
            c.args(["-sS", "--max-time", "90", "--cacert", &api.cert])
                .args(["--resolve", &resolve, "--interface", source])
                .args(["-Z", "--parallel-immediate"])
                .args(["--parallel-max", "13", "-H", &auth])
                .args([
                    "-H",
                    "Content-Type: application/json",
                    "--data-binary",
                    body,
                ])
                .args(["-w", "%{http_code}\\n"]);
            for _ in 0..n {
                c.args(["-o", "/dev/null", &url]);
            }
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Status while the storm runs.
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let mut during = Vec::new();
    while during.len() < 20 && t.elapsed() < Duration::from_secs(8) {
        during.push(status_latency(&d));
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut codes = Vec::new();
    let mut errors = String::new();
    for c in storm {
        let out = c.wait_with_output().unwrap();
        codes.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string),
        );
        // Only curl's error lines: with -Z its progress meter fills stderr.
        for line in String::from_utf8_lossy(&out.stderr).split(['\n', '\r']) {
            if let Some(at) = line.find("curl: (") {
                errors.push_str(&line[at..]);
                errors.push('\n');
            }
        }
    }
    let worst = during.iter().max().copied().unwrap();
    println!(
        "FIGURE kpbx status during 50 parallel password changes: worst {worst:?}, \
         median before {base_median:?}, {} samples",
        during.len()
    );
    assert_eq!(codes.len(), 50, "{codes:?}");
    assert!(
        codes.iter().all(|c| c == "200"),
        "every change done: {codes:?}\ncurl errors:\n{errors}"
    );
    assert!(
        worst < base_median + Duration::from_millis(50),
        "status delayed: worst {worst:?}, median before {base_median:?}"
    );
    // The new password works: the hash really was set.
    assert_eq!(
        api.login_from("127.0.0.1", "bob", "new-bob-password-1")
            .status,
        200
    );
}

#[test]
fn api_commands_take_the_consoles_route() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let api = Api::new(&d);
    add_user(&d, "ann", "admin", "ann-password");
    let ann = api.token("ann", "ann-password");

    // Answered on the loop for the console, "answered elsewhere" (503)
    // on the API's old shortcut.
    let a = api.command(&ann, r#""CdrStatus""#);
    assert_eq!(a.status, 200, "{}", a.body);
    let console = d.json(&["cdr", "status"]);
    assert_eq!(
        a.body.as_object().map(|o| o.keys().collect::<Vec<_>>()),
        console.as_object().map(|o| o.keys().collect::<Vec<_>>()),
        "same answer as the console"
    );
    // Exports stream a file to the console: refused clearly, not a 503.
    for c in [
        r#"{"AuditExport":{"query":{},"format":"csv"}}"#,
        r#"{"CdrImport":{"callcenter":false,"path":"/etc/shadow"}}"#,
    ] {
        let a = api.command(&ann, c);
        assert_eq!(a.status, 400, "{c}: {}", a.body);
        assert_eq!(a.body["code"], "console_only", "{c}");
    }
}

#[test]
fn rfc_6750_and_9110_details() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let api = Api::new(&d);
    add_user(&d, "ann", "admin", "ann-password");
    let ann = api.token("ann", "ann-password");

    // The auth-scheme is case-insensitive.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let h = format!("Authorization: {scheme} {ann}");
        let a = api.call("127.0.0.1", "GET", "/api/v1/status", &[&h], None);
        assert_eq!(a.status, 200, "{scheme}: {}", a.body);
    }
    // 401 names the scheme; with a bad token, the RFC 6750 error.
    let a = api.call("127.0.0.1", "GET", "/api/v1/status", &[], None);
    assert_eq!(a.status, 401);
    assert_eq!(
        a.header("WWW-Authenticate").as_deref(),
        Some(r#"Bearer realm="kpbx""#)
    );
    let a = api.call(
        "127.0.0.1",
        "GET",
        "/api/v1/status",
        &["Authorization: Bearer nonsense"],
        None,
    );
    assert_eq!(a.status, 401);
    assert_eq!(
        a.header("WWW-Authenticate").as_deref(),
        Some(r#"Bearer realm="kpbx", error="invalid_token""#)
    );
    assert_eq!(a.body["code"], "invalid_token");
    // 404 and 405 have their own codes; 405 says what is allowed.
    let a = api.call("127.0.0.1", "GET", "/api/v1/nowhere", &[], None);
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (404, Some("not_found"))
    );
    let a = api.call("127.0.0.1", "DELETE", "/api/v1/status", &[], None);
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    assert_eq!(a.header("Allow").as_deref(), Some("GET"));
    let a = api.call("127.0.0.1", "GET", "/api/v1/login", &[], None);
    assert_eq!(a.header("Allow").as_deref(), Some("POST"));
}

#[test]
fn session_endpoint_says_who_the_token_is_and_what_it_may_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    d.ok(&[
        "role",
        "add",
        "clerk",
        "permissions=provisioning:write,audit:read",
    ]);
    add_user(&d, "clerk1", "clerk", "clerk-pass-1");
    add_user(&d, "boss1", "admin", "boss-pass-1");
    let api = Api::new(&d);
    let a = api.call("127.0.0.1", "GET", "/api/v1/session", &[], None);
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    let clerk = api.token("clerk1", "clerk-pass-1");
    let a = api.call(
        "127.0.0.1",
        "GET",
        "/api/v1/session",
        &[&bearer(&clerk)],
        None,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.body["user"], "clerk1");
    assert_eq!(a.body["role"], "clerk");
    assert_eq!(
        a.body["permissions"],
        serde_json::json!(["provisioning:write", "audit:read"])
    );
    assert_eq!(a.header("Cache-Control").as_deref(), Some("no-store"));
    let boss = api.token("boss1", "boss-pass-1");
    let a = api.call(
        "127.0.0.1",
        "GET",
        "/api/v1/session",
        &[&bearer(&boss)],
        None,
    );
    assert_eq!(a.body["role"], "admin");
    assert_eq!(
        a.body["permissions"].as_array().unwrap().len(),
        7,
        "{}",
        a.body
    );
    // Reading it is no permission of its own: the clerk still gets 403
    // for what the role lacks.
    let a = api.call(
        "127.0.0.1",
        "GET",
        "/api/v1/status",
        &[&bearer(&clerk)],
        None,
    );
    assert_eq!(a.status, 403);
    // A role change ends the session, as for every call.
    d.ok(&["user", "set", "clerk1", "role=supervisor"]);
    let a = api.call(
        "127.0.0.1",
        "GET",
        "/api/v1/session",
        &[&bearer(&clerk)],
        None,
    );
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (401, Some("invalid_token"))
    );
    let a = api.call(
        "127.0.0.1",
        "POST",
        "/api/v1/session",
        &[&bearer(&boss)],
        Some(""),
    );
    assert_eq!((a.status, a.header("Allow").as_deref()), (405, Some("GET")));
}

#[test]
fn audit_paging_has_the_clis_rule() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let api = Api::new(&d);
    add_user(&d, "ann", "admin", "ann-password");
    let ann = api.token("ann", "ann-password");
    let auth = format!("Authorization: Bearer {ann}");
    for q in ["page_size=0", "page_size=1001", "page=0"] {
        let a = api.call(
            "127.0.0.1",
            "GET",
            &format!("/api/v1/audit?{q}"),
            &[&auth],
            None,
        );
        assert_eq!(a.status, 400, "{q}: {}", a.body);
        let flag = format!("--{}", q.split('=').next().unwrap().replace('_', "-"));
        let cli = d.kpbx(&["audit", "list", &flag, q.split('=').nth(1).unwrap()]);
        assert!(!cli.status.success(), "the CLI refuses {q} too");
    }
    // The command endpoint: the daemon refuses, not clamps.
    let a = api.command(&ann, r#"{"AuditQuery":{"page_size":1001}}"#);
    assert_eq!(a.status, 400, "{}", a.body);
    let a = api.call(
        "127.0.0.1",
        "GET",
        "/api/v1/audit?page=1&page_size=1000",
        &[&auth],
        None,
    );
    assert_eq!(a.status, 200, "{}", a.body);
}

#[test]
fn self_signed_certificate_names_the_box_and_expires_sanely() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let api = Api::new(&d);
    // curl checks the IP address against the certificate: no --resolve,
    // no -k.
    let a = api.call("direct", "GET", "/api/v1/status", &[], None);
    assert_eq!(a.status, 401, "TLS verified, then the API answered");
    let openssl = |args: &[&str]| {
        Command::new("openssl")
            .args(["x509", "-noout", "-in", &api.cert])
            .args(args)
            .output()
            .expect("openssl is missing: apt-get install openssl")
    };
    let san = String::from_utf8_lossy(&openssl(&["-ext", "subjectAltName"]).stdout).to_string();
    for name in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
    ] {
        assert!(san.contains(name), "{name} missing in {san}");
    }
    // Valid for 825 days from now: still valid in 800, not in 830.
    assert!(
        openssl(&["-checkend", &(800 * 86_400).to_string()])
            .status
            .success()
    );
    assert!(
        !openssl(&["-checkend", &(830 * 86_400).to_string()])
            .status
            .success()
    );
}

#[test]
fn ha_switch_over_the_api_is_answered_after_the_move() {
    let _one = rig::one_at_a_time();
    let rig = rig::Rig::up("apisw");
    add_user(&rig.a, "ann", "admin", "ann-password");
    let api = Api::new(&rig.a);
    let ann = api.token("ann", "ann-password");
    assert!(rig.sole(&rig.a_ns), "a holds the resource before");
    let a = api.command(&ann, r#""HaSwitch""#);
    assert_eq!(a.status, 200, "{}\n{}", a.body, rig.logs());
    // Answered once the resource has moved, as on the console: the
    // answer's own status says b holds it (the old shortcut answered with
    // "holder": "nobody", mid-switch).
    assert_eq!(a.body["holder"], "remote", "{}", a.body);
    assert!(
        rig.sole(&rig.b_ns),
        "answered before the resource moved to b\n{}",
        rig.logs()
    );
}
