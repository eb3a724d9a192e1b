//! The real daemon registering devices with local stand-ins of the
//! redirection services: work queued while the service is down survives a
//! restart and completes exactly once when it is back; deletions
//! deregister; a disabled server does nothing; errors are shown per device;
//! credentials are masked and never logged.
#![allow(clippy::unwrap_used)]

mod common;
mod redirectkit;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Daemon;
use redirectkit::{Req, Resp, Service, json, resp, verify_hawk, xml_answer};
use serde_json::Value;

const HAWK_ID: &str = "kpbx-key";
const HAWK_KEY: &str = "hawk-secret-Zq81";
const RPS_PASSWORD: &str = "rps-secret-Kw22";
const PROV: &str = "https://pbx.example.com/provisioning/";
const OWNED: &str = "001565aabb03";

type Counts = Arc<Mutex<BTreeMap<String, u32>>>;

/// Yealink RPS and Snom SRAPS on one port; counts operations per
/// `verb mac`.
fn services(counts: Counts) -> impl Fn(&Req) -> Resp + Send + Sync {
    move |req: &Req| {
        let bump = |what: String| *counts.lock().unwrap().entry(what).or_insert(0) += 1;
        if req.path.starts_with("/api/open/") {
            // This Yealink account has no open-API access key.
            json(
                401,
                serde_json::json!({"ret": -1, "data": null, "error": "Unauthorized"}),
            )
        } else if req.path == "/yealink/xmlrpc" {
            if redirectkit::basic(req) != format!("rps-user:{RPS_PASSWORD}") {
                return resp(401, "");
            }
            let (method, params) = redirectkit::xmlrpc_call(&req.text());
            match method.as_str() {
                "redirect.registerDevice" => {
                    assert_eq!(params[1], "yea", "registered by server name");
                    bump(format!("register {}", params[0]));
                    if params[0] == OWNED {
                        xml_answer(false, "Are you sure you want to override MAC addresses")
                    } else {
                        xml_answer(true, "OK")
                    }
                }
                "redirect.deRegisterDevice" => {
                    bump(format!("deregister {}", params[0]));
                    xml_answer(true, "OK")
                }
                other => panic!("unexpected {other}"),
            }
        } else if let Some(rest) = req.path.strip_prefix("/api/v1/") {
            let host = req.header("host").unwrap().to_string();
            let (h, p) = host.split_once(':').unwrap();
            assert_eq!(verify_hawk(req, HAWK_KEY, h, p.parse().unwrap()), HAWK_ID);
            let base = format!("https://{host}/api/v1/");
            match (req.method.as_str(), rest) {
                ("GET", "tokens/kpbx-key") => json(
                    200,
                    serde_json::json!({"links": {"company": format!("{base}companies/9")}}),
                ),
                ("GET", "companies/9") => json(
                    200,
                    serde_json::json!({"links": {"endpoints": format!("{base}companies/9/endpoints/")}}),
                ),
                ("PUT", path) => {
                    let mac = path.strip_prefix("companies/9/endpoints/").unwrap();
                    let body: Value = serde_json::from_slice(&req.body).unwrap();
                    assert_eq!(body["provisioning_url"], PROV);
                    bump(format!("register {mac}"));
                    json(200, body)
                }
                ("DELETE", path) => {
                    let mac = path.strip_prefix("companies/9/endpoints/").unwrap();
                    bump(format!("deregister {mac}"));
                    resp(204, "")
                }
                _ => resp(404, ""),
            }
        } else {
            resp(404, "")
        }
    }
}

fn status(d: &Daemon) -> BTreeMap<String, Value> {
    d.json(&["prov", "redirect", "status"])
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["mac"].as_str().unwrap().to_ascii_lowercase(), v.clone()))
        .collect()
}

fn wait_for(
    d: &Daemon,
    what: &str,
    ok: impl Fn(&BTreeMap<String, Value>) -> bool,
) -> BTreeMap<String, Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(d);
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {s:#?}\nlog:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn count(counts: &Counts, what: &str) -> u32 {
    counts.lock().unwrap().get(what).copied().unwrap_or(0)
}

#[test]
fn service_down_then_up_completes_each_registration_once() {
    let dir = tempfile::tempdir().unwrap();
    let tls_dir = dir.path().join("service-tls");
    let ca = redirectkit::ca_file(&tls_dir);
    let port = redirectkit::free_port();
    let endpoints = format!(
        "\"sraps=https://127.0.0.1:{port}/api/v1/,yealink_xmlrpc=https://127.0.0.1:{port}/yealink/xmlrpc,snom_xmlrpc=https://127.0.0.1:{port}/xmlrpc/,yealink_rps=https://127.0.0.1:{port}\""
    );
    let mut d = Daemon::with(
        dir.path(),
        &[
            ("ca_bundle", ca.to_str().unwrap()),
            ("redirect_endpoints", &endpoints),
        ],
    );
    d.start();
    d.ok(&["prov", "account", "add", "extension=201", "sip_password=x"]);
    d.ok(&[
        "prov",
        "redirect_server",
        "add",
        "name=yea",
        "brand=yealink",
        "user=rps-user",
        &format!("password={RPS_PASSWORD}"),
        &format!("url={PROV}"),
    ]);
    d.ok(&[
        "prov",
        "redirect_server",
        "add",
        "name=snm",
        "brand=snom",
        &format!("user={HAWK_ID}"),
        &format!("password={HAWK_KEY}"),
        &format!("url={PROV}"),
    ]);
    let devices = [
        ("001565aabb01", "yea"),
        ("001565aabb02", "yea"),
        (OWNED, "yea"),
        ("000413aabb04", "snm"),
    ];
    for (mac, server) in devices {
        d.ok(&[
            "prov",
            "device",
            "add",
            &format!("mac={mac}"),
            "model=Yealink-T4x",
            "template=yealink-t4x",
            "account=201",
            &format!("redirect_server={server}"),
        ]);
    }

    // The service is down: every registration fails, and is kept.
    let s = wait_for(&d, "every device tried once", |s| {
        devices.iter().all(|(m, _)| {
            s.get(*m)
                .is_some_and(|v| v["last_error"].as_str().unwrap().contains("unreachable"))
        })
    });
    for (mac, server) in devices {
        let v = &s[mac];
        assert_eq!(v["provisioned"], false);
        assert_eq!(v["server"], server);
        assert_eq!(v["pending"][0], format!("register on {server}"));
        assert_eq!(v["state"], "waiting");
    }

    // The queue is durable: a restart keeps it.
    assert_eq!(d.stop(), Some(0));
    d.start();
    let s = status(&d);
    assert!(
        devices
            .iter()
            .all(|(m, _)| s[*m]["pending"].as_array().unwrap().len() == 1),
        "{s:#?}"
    );

    // The service is back; a sync retries at once.
    let counts: Counts = Arc::default();
    let svc = Service::start_in(&tls_dir, port, services(counts.clone()));
    d.ok(&["prov", "redirect", "sync"]);
    let s = wait_for(&d, "all registered or refused", |s| {
        ["001565aabb01", "001565aabb02", "000413aabb04"]
            .iter()
            .all(|m| s[*m]["provisioned"] == true)
            && s[OWNED]["state"] == "parked"
    });
    assert_eq!(s[OWNED]["last_error"], "MAC owned by another account");
    assert_eq!(s[OWNED]["provisioned"], false);
    assert!(s["000413aabb04"]["last_error"].as_str().unwrap().is_empty());
    for (mac, _) in devices {
        assert_eq!(count(&counts, &format!("register {mac}")), 1, "{mac}");
    }
    // The text table and the device say the same.
    let table = d.ok(&["prov", "redirect", "status"]);
    assert!(table.contains("MAC owned by another account"), "{table}");
    let field = |mac: &str, name: &str| {
        let v = d.json(&["prov", "device", "show", mac]);
        v[0][name].as_str().unwrap().to_string()
    };
    assert_eq!(field(OWNED, "redirect_provisioned"), "no");
    assert_eq!(
        field(OWNED, "redirect_error"),
        "MAC owned by another account"
    );
    assert_eq!(field("001565aabb01", "redirect_provisioned"), "yes");
    assert_eq!(field("001565aabb01", "redirect_error"), "");

    // Another sync retries only what is not done; nothing runs twice.
    let before = s[OWNED]["attempts"].as_u64().unwrap();
    d.ok(&["prov", "redirect", "sync"]);
    wait_for(&d, "owned MAC retried", |s| {
        s[OWNED]["attempts"] == before + 1 && s[OWNED]["state"] == "parked"
    });
    std::thread::sleep(Duration::from_millis(2500));
    for mac in ["001565aabb01", "001565aabb02", "000413aabb04"] {
        assert_eq!(count(&counts, &format!("register {mac}")), 1, "{mac}");
    }
    assert_eq!(count(&counts, &format!("register {OWNED}")), 2);

    // Deleting a device deregisters it, once.
    d.ok(&["prov", "device", "del", "001565aabb02"]);
    d.ok(&["prov", "device", "del", "000413aabb04"]);
    wait_for(&d, "deregistered", |s| {
        !s.contains_key("001565aabb02") && !s.contains_key("000413aabb04")
    });
    assert_eq!(count(&counts, "deregister 001565aabb02"), 1);
    assert_eq!(count(&counts, "deregister 000413aabb04"), 1);

    // A disabled server keeps its settings and does nothing.
    d.ok(&["prov", "redirect_server", "set", "yea", "enabled=no"]);
    d.ok(&["prov", "device", "set", "001565aabb01", "redirect_server="]);
    let s = wait_for(&d, "held", |s| s["001565aabb01"]["state"] == "held");
    assert_eq!(s["001565aabb01"]["pending"][0], "deregister on yea");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(count(&counts, "deregister 001565aabb01"), 0);
    d.ok(&["prov", "redirect_server", "set", "yea", "enabled=yes"]);
    wait_for(&d, "deregistered after enabling", |s| {
        !s.contains_key("001565aabb01")
    });
    assert_eq!(count(&counts, "deregister 001565aabb01"), 1);

    // Credentials: masked when shown, never in the audit log or the log.
    let shown = d.ok(&["prov", "redirect_server", "show", "yea"]);
    assert!(
        shown.contains("********") && !shown.contains(RPS_PASSWORD),
        "{shown}"
    );
    let audit = d.ok(&["audit", "list", "--json"]);
    let log = d.log();
    for secret in [RPS_PASSWORD, HAWK_KEY] {
        assert!(!audit.contains(secret), "audit shows a secret");
        assert!(!log.contains(secret), "log shows a secret");
    }
    drop(svc);
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn rate_limits_wait_and_fixed_credentials_retry_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let counts: Counts = Arc::default();
    let limited = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let svc = Service::start({
        let counts = counts.clone();
        let limited = limited.clone();
        move |req: &Req| {
            if limited.load(std::sync::atomic::Ordering::SeqCst) {
                return Resp {
                    status: 429,
                    headers: vec![("Retry-After".into(), "600".into())],
                    body: Vec::new(),
                };
            }
            services(counts.clone())(req)
        }
    });
    let port = svc.addr.port();
    let endpoints = format!(
        "\"sraps=https://127.0.0.1:{port}/api/v1/,yealink_xmlrpc=https://127.0.0.1:{port}/yealink/xmlrpc,snom_xmlrpc=https://127.0.0.1:{port}/xmlrpc/,yealink_rps=https://127.0.0.1:{port}\""
    );
    let mut d = Daemon::with(
        dir.path(),
        &[
            ("ca_bundle", svc.ca_file.to_str().unwrap()),
            ("redirect_endpoints", &endpoints),
        ],
    );
    d.start();
    d.ok(&["prov", "account", "add", "extension=201", "sip_password=x"]);
    d.ok(&[
        "prov",
        "redirect_server",
        "add",
        "name=yea",
        "brand=yealink",
        "user=rps-user",
        "password=wrong",
        &format!("url={PROV}"),
    ]);
    d.ok(&[
        "prov",
        "device",
        "add",
        "mac=001565aabb01",
        "model=Yealink-T4x",
        "template=yealink-t4x",
        "account=201",
        "redirect_server=yea",
    ]);
    // 429 with Retry-After: waits about ten minutes.
    let s = wait_for(&d, "rate limited", |s| s["001565aabb01"]["attempts"] == 1);
    let v = &s["001565aabb01"];
    assert_eq!(v["state"], "waiting");
    assert!(
        v["last_error"].as_str().unwrap().contains("rate limited"),
        "{v}"
    );
    let wait_s = (v["next_attempt_us"].as_i64().unwrap() - v["last_attempt_us"].as_i64().unwrap())
        / 1_000_000;
    assert_eq!(wait_s, 600);

    // Now the service answers, but the password is wrong: parked.
    limited.store(false, std::sync::atomic::Ordering::SeqCst);
    d.ok(&["prov", "redirect", "sync"]);
    let s = wait_for(&d, "auth failure parks", |s| {
        s["001565aabb01"]["state"] == "parked"
    });
    assert_eq!(
        s["001565aabb01"]["last_error"],
        "authentication failed: check user and password"
    );
    assert_eq!(count(&counts, "register 001565aabb01"), 0);

    // Saving the server with the right password retries without a sync.
    d.ok(&[
        "prov",
        "redirect_server",
        "set",
        "yea",
        &format!("password={RPS_PASSWORD}"),
    ]);
    wait_for(&d, "registered after the fix", |s| {
        s["001565aabb01"]["provisioned"] == true
    });
    assert_eq!(count(&counts, "register 001565aabb01"), 1);
    assert_eq!(d.stop(), Some(0));
}
