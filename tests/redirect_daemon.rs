//! The real daemon registering devices through every redirection API with
//! the in-memory vendor services of `redirectkit::cloud`: work queued while
//! the services are down survives a restart and completes exactly once
//! when they are back; a move deregisters then registers; deletions
//! deregister; a SIGKILL in the middle of a request is finished after the
//! restart; errors are shown per device (parked or retried); credentials
//! are masked and never logged.
#![allow(clippy::unwrap_used)]

mod common;
mod redirectkit;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Daemon;
use redirectkit::Service;
use redirectkit::cloud::{self, Cloud};
use serde_json::Value;

const PROV_A: &str = "https://pbx-a.example.com/provisioning/";
const PROV_B: &str = "https://pbx-b.example.com/provisioning/";

/// Each API: its name, a device's MAC, and the write that registers it
/// (the cloud's `writes` prefix).
const APIS: [(&str, &str, &str); 5] = [
    ("sraps", "000413aa0001", "sraps:put"),
    ("snom_xmlrpc", "000413aa0002", "snom:register"),
    ("ymcs", "001565aa0003", "ymcs:add"),
    ("rps_json", "001565aa0004", "rps_json:add"),
    ("rps_xmlrpc", "001565aa0005", "rps:register"),
];

fn brand(api: &str) -> &'static str {
    if api.starts_with("s") {
        "snom"
    } else {
        "yealink"
    }
}

/// `prov redirect_server add` fields for `api` with the cloud's credentials.
fn server_fields(api: &str, name: &str, url: &str) -> Vec<String> {
    let mut f = vec![
        format!("name={name}"),
        format!("brand={}", brand(api)),
        format!("api={api}"),
        format!("url={url}"),
    ];
    let (user, password, id, secret) = match api {
        "sraps" => ("", "", cloud::SRAPS_ID, cloud::SRAPS_KEY),
        "snom_xmlrpc" => (cloud::SNOM_USER, cloud::SNOM_PASSWORD, "", ""),
        "rps_xmlrpc" => (cloud::RPS_USER, cloud::RPS_PASSWORD, "", ""),
        "rps_json" => ("", "", cloud::RPS_AK, cloud::RPS_SK),
        "ymcs" => ("", "", cloud::YMCS_ID, cloud::YMCS_SECRET),
        _ => unreachable!(),
    };
    for (k, v) in [
        ("user", user),
        ("password", password),
        ("access_key_id", id),
        ("access_key_secret", secret),
    ] {
        if !v.is_empty() {
            f.push(format!("{k}={v}"));
        }
    }
    f
}

fn add_server(d: &Daemon, api: &str, name: &str, url: &str) {
    let f = server_fields(api, name, url);
    let mut args = vec!["prov", "redirect_server", "add"];
    args.extend(f.iter().map(String::as_str));
    d.ok(&args);
}

fn add_device(d: &Daemon, mac: &str, server: &str) {
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

/// The cloud's Yealink RPS servers: `<api>-a` and `<api>-b` of each
/// Yealink API.
fn cloud_with_servers() -> Cloud {
    let cloud = Cloud::new();
    cloud.with(|s| {
        for api in ["ymcs", "rps_json", "rps_xmlrpc"] {
            s.rps_servers.push(format!("{api}-a"));
            s.rps_servers.push(format!("{api}-b"));
        }
    });
    cloud
}

fn endpoints(port: u16) -> String {
    format!(
        "\"sraps=https://127.0.0.1:{port}/api/v1/,snom_xmlrpc=https://127.0.0.1:{port}/xmlrpc/,yealink_xmlrpc=https://127.0.0.1:{port}/yealink/xmlrpc,yealink_rps=https://127.0.0.1:{port},ymcs=https://127.0.0.1:{port}\""
    )
}

/// A daemon aimed at the stand-in on `port`, with account 201.
fn started(dir: &std::path::Path, ca: &std::path::Path, port: u16) -> Daemon {
    let mut d = Daemon::with(
        dir,
        &[
            ("ca_bundle", ca.to_str().unwrap()),
            ("redirect_endpoints", &endpoints(port)),
        ],
    );
    d.start();
    d.ok(&["prov", "account", "add", "extension=201", "sip_password=x"]);
    d
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

fn provisioned_on(s: &BTreeMap<String, Value>, mac: &str, server: &str) -> bool {
    s.get(mac)
        .is_some_and(|v| v["provisioned"] == true && v["registered_on"] == server)
}

/// The service's state for a device of `api`: its URL or server.
fn held(cloud: &Cloud, api: &str, mac: &str) -> Option<String> {
    cloud.with(|s| match api {
        "sraps" => s.sraps.get(mac).map(|b| {
            b["settings_manager"][cloud::SETTING_SERVER_UUID]["value"]
                .as_str()
                .unwrap()
                .to_string()
        }),
        "snom_xmlrpc" => s.snom.get(mac).cloned(),
        _ => s.rps.get(mac).cloned(),
    })
}

#[test]
fn every_api_down_then_up_restart_move_and_delete_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let tls_dir = dir.path().join("service-tls");
    let ca = redirectkit::ca_file(&tls_dir);
    let port = redirectkit::free_port();
    let mut d = started(dir.path(), &ca, port);
    for (api, mac, _) in APIS {
        add_server(&d, api, &format!("{api}-a"), PROV_A);
        add_server(&d, api, &format!("{api}-b"), PROV_B);
        add_device(&d, mac, &format!("{api}-a"));
    }
    let shown = d.json(&["prov", "redirect_server", "show", "ymcs-a"]);
    assert_eq!(shown[0]["api"], "ymcs");
    assert_eq!(shown[0]["access_key_secret"], "********");

    // The services are down: every registration fails, and is kept.
    let s = wait_for(&d, "every device tried once", |s| {
        APIS.iter().all(|(_, m, _)| {
            s.get(*m)
                .is_some_and(|v| v["last_error"].as_str().unwrap().contains("unreachable"))
        })
    });
    for (api, mac, _) in APIS {
        let v = &s[mac];
        assert_eq!(v["provisioned"], false);
        assert_eq!(v["pending"][0], format!("register on {api}-a"));
        assert_eq!(v["state"], "waiting");
    }

    // The queue is durable: a restart keeps it.
    assert_eq!(d.stop(), Some(0));
    d.start();
    let s = status(&d);
    assert!(
        APIS.iter()
            .all(|(_, m, _)| s[*m]["pending"].as_array().unwrap().len() == 1),
        "{s:#?}"
    );

    // The services are back; a sync retries at once.
    let cloud = cloud_with_servers();
    let svc = Service::start_in(&tls_dir, port, cloud.handler());
    d.ok(&["prov", "redirect", "sync"]);
    wait_for(&d, "all registered", |s| {
        APIS.iter()
            .all(|(api, m, _)| provisioned_on(s, m, &format!("{api}-a")))
    });
    for (api, mac, write) in APIS {
        assert_eq!(cloud.count(&format!("{write}:{mac}")), 1, "{api}");
        let want = if api.starts_with('s') {
            PROV_A.to_string()
        } else {
            format!("{api}-a")
        };
        assert_eq!(
            held(&cloud, api, mac).as_deref(),
            Some(want.as_str()),
            "{api}"
        );
    }
    let field = |mac: &str, name: &str| {
        let v = d.json(&["prov", "device", "show", mac]);
        v[0][name].as_str().unwrap().to_string()
    };
    assert_eq!(field("001565aa0003", "redirect_provisioned"), "yes");
    assert_eq!(field("001565aa0003", "redirect_error"), "");

    // Another sync repeats nothing.
    let before = cloud.writes().len();
    d.ok(&["prov", "redirect", "sync"]);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(cloud.writes().len(), before, "{:#?}", cloud.writes());

    // Move every device to its API's other server: deregistered from the
    // first, registered on the second, once each.
    for (api, mac, _) in APIS {
        d.ok(&[
            "prov",
            "device",
            "set",
            mac,
            &format!("redirect_server={api}-b"),
        ]);
    }
    wait_for(&d, "all moved", |s| {
        APIS.iter()
            .all(|(api, m, _)| provisioned_on(s, m, &format!("{api}-b")))
    });
    for (api, mac, _) in APIS {
        let want = if api.starts_with('s') {
            PROV_B.to_string()
        } else {
            format!("{api}-b")
        };
        assert_eq!(
            held(&cloud, api, mac).as_deref(),
            Some(want.as_str()),
            "{api}"
        );
    }
    let moved = |prefix: &str| cloud.count(prefix);
    assert_eq!(moved("sraps:delete:000413aa0001"), 1);
    assert_eq!(moved("sraps:put:000413aa0001"), 2);
    assert_eq!(moved("snom:deregister:000413aa0002"), 1);
    assert_eq!(moved("snom:register:000413aa0002"), 2);
    assert_eq!(moved("ymcs:delete:001565aa0003"), 1);
    assert_eq!(moved("ymcs:add:001565aa0003"), 2);
    assert_eq!(moved("rps_json:delete:001565aa0004"), 1);
    assert_eq!(moved("rps_json:add:001565aa0004"), 2);
    assert_eq!(moved("rps:deregister:001565aa0005"), 1);
    assert_eq!(moved("rps:register:001565aa0005"), 2);

    // Deleting the devices deregisters them, once.
    for (_, mac, _) in APIS {
        d.ok(&["prov", "device", "del", mac]);
    }
    wait_for(&d, "deregistered", |s| {
        APIS.iter().all(|(_, m, _)| !s.contains_key(*m))
    });
    for (api, mac, _) in APIS {
        assert_eq!(held(&cloud, api, mac), None, "{api}");
    }
    assert_eq!(moved("sraps:delete:000413aa0001"), 2);
    assert_eq!(moved("snom:deregister:000413aa0002"), 2);
    assert_eq!(moved("ymcs:delete:001565aa0003"), 2);
    assert_eq!(moved("rps_json:delete:001565aa0004"), 2);
    assert_eq!(moved("rps:deregister:001565aa0005"), 2);

    // Credentials: masked when shown, never in the audit log or the log.
    let audit = d.ok(&["audit", "list", "--json"]);
    let log = d.log();
    for secret in cloud::SECRETS {
        assert!(!audit.contains(secret), "audit shows a secret");
        assert!(!log.contains(secret), "log shows a secret");
        for name in [
            "sraps-a",
            "snom_xmlrpc-a",
            "ymcs-a",
            "rps_json-a",
            "rps_xmlrpc-a",
        ] {
            let shown = d.ok(&["prov", "redirect_server", "show", name]);
            assert!(!shown.contains(secret), "{name} shows a secret");
        }
    }
    drop(svc);
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn a_kill_in_the_middle_of_a_request_is_finished_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = cloud_with_servers();
    let svc = Service::start(cloud.handler());
    let mut d = started(dir.path(), &svc.ca_file, svc.addr.port());
    // The request that changes the service's state, held while the daemon
    // is killed; the service finishes it for a client that is gone.
    let stalls = [
        ("sraps", "sraps:PUT"),
        ("snom_xmlrpc", "snom:registerPhone"),
        ("ymcs", "ymcs:addDevicesByMac"),
        ("rps_json", "rps_json:device/add"),
        ("rps_xmlrpc", "rps:registerDevice"),
    ];
    for ((api, mac, write), (_, stall)) in APIS.into_iter().zip(stalls) {
        add_server(&d, api, &format!("{api}-a"), PROV_A);
        cloud.with(|s| {
            s.stall = Some(stall.to_string());
            s.stalled = false;
        });
        add_device(&d, mac, &format!("{api}-a"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cloud.with(|s| s.stalled) {
            assert!(Instant::now() < deadline, "{api}: never reached {stall}");
            std::thread::sleep(Duration::from_millis(20));
        }
        d.kill9();
        cloud.release();
        let deadline = Instant::now() + Duration::from_secs(10);
        while cloud.count(&format!("{write}:{mac}")) == 0 {
            assert!(
                Instant::now() < deadline,
                "{api}: the held request never finished"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        d.start();
        wait_for(&d, api, |s| provisioned_on(s, mac, &format!("{api}-a")));
        std::thread::sleep(Duration::from_millis(2500));
        // The operation ran again after the restart, found (or redid) the
        // registration, and was recorded once; nothing runs after.
        let writes: Vec<String> = cloud
            .writes()
            .into_iter()
            .filter(|w| w.contains(mac))
            .map(|w| w.split(':').take(2).collect::<Vec<_>>().join(":"))
            .collect();
        let expected: &[&str] = match api {
            // PUT is idempotent: sent again.
            "sraps" => &["sraps:put", "sraps:put"],
            // checkPhone finds it: deregistered and registered, as Snom's console updates.
            "snom_xmlrpc" => &["snom:register", "snom:deregister", "snom:register"],
            // Listed on its server: done.
            "ymcs" => &["ymcs:add"],
            "rps_json" => &["rps_json:add"],
            // "Existing MAC(s)": editDevice puts it (again) on the server.
            "rps_xmlrpc" => &["rps:register", "rps:edit"],
            _ => unreachable!(),
        };
        assert_eq!(writes, expected, "{api}");
        let s = status(&d);
        assert!(s[mac]["pending"].as_array().unwrap().is_empty(), "{api}");
        assert_eq!(s[mac]["last_error"], "", "{api}");
    }
    assert_eq!(d.stop(), Some(0));
    drop(svc);
}

#[test]
fn errors_are_shown_per_device_parked_or_retried() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = cloud_with_servers();
    // SRAPS's clock is ten minutes ahead of the box's.
    cloud.with(|s| {
        s.sraps_skew_s = 600;
        s.others.insert("000413bb0001".into());
        s.others.insert("001565bb0004".into());
        s.ymcs_regular = true;
    });
    let svc = Service::start(cloud.handler());
    let mut d = started(dir.path(), &svc.ca_file, svc.addr.port());
    for api in ["sraps", "snom_xmlrpc", "ymcs", "rps_json", "rps_xmlrpc"] {
        add_server(&d, api, &format!("{api}-a"), PROV_A);
    }
    d.ok(&[
        "prov",
        "redirect_server",
        "set",
        "snom_xmlrpc-a",
        "password=wrong",
    ]);
    d.ok(&[
        "prov",
        "redirect_server",
        "add",
        "name=bare",
        "brand=snom",
        &format!("url={PROV_A}"),
    ]);
    // A Yealink server name RPS would refuse never reaches the store.
    let bad = d.kpbx(&[
        "prov",
        "redirect_server",
        "add",
        "name=office/1",
        "brand=yealink",
        &format!("url={PROV_A}"),
    ]);
    assert!(!bad.status.success());
    let devices = [
        ("000413bb0001", "sraps-a"),
        ("000413bb0002", "sraps-a"),
        ("000413bb0003", "snom_xmlrpc-a"),
        ("001565bb0004", "rps_json-a"),
        ("001565bb0005", "ymcs-a"),
        ("000413bb0006", "bare"),
    ];
    for (mac, server) in devices {
        add_device(&d, mac, server);
    }
    let s = wait_for(&d, "every device tried", |s| {
        devices
            .iter()
            .all(|(m, _)| s[*m]["provisioned"] == true || s[*m]["attempts"].as_u64() >= Some(1))
    });
    let err = |m: &str| s[m]["last_error"].as_str().unwrap().to_string();
    // Another account's MAC: parked until the device is saved or synced.
    assert_eq!(s["000413bb0001"]["state"], "parked");
    assert_eq!(err("000413bb0001"), "MAC owned by another account");
    // The clock: one stale refusal, retried on SRAPS's time; the log says by how much.
    assert_eq!(s["000413bb0002"]["provisioned"], true);
    let log = d.log();
    assert!(
        (600..610).any(|n| log.contains(&format!("clock is off by -{n} s"))),
        "{log}"
    );
    // Wrong XML-RPC password.
    assert_eq!(s["000413bb0003"]["state"], "parked");
    assert_eq!(
        err("000413bb0003"),
        format!(
            "credentials refused: {}",
            kpbxd::redirect::snom::XMLRPC_AUTH
        )
    );
    // An answer no source describes: verbatim, retried with backoff.
    assert_eq!(s["001565bb0004"]["state"], "waiting");
    assert!(
        err("001565bb0004").starts_with("unrecognised answer, will retry: RPS error: UNDOCUMENTED")
    );
    let v = &s["001565bb0004"];
    let wait_s = (v["next_attempt_us"].as_i64().unwrap() - v["last_attempt_us"].as_i64().unwrap())
        / 1_000_000;
    assert_eq!(wait_s, 30);
    // A regular YMCS account: what to ask Yealink for.
    assert_eq!(s["001565bb0005"]["state"], "parked");
    assert!(err("001565bb0005").contains("ask Yealink support to enable /v2/rps/addDevicesByMac"));
    // No credentials for the API: nothing sent.
    assert_eq!(s["000413bb0006"]["state"], "parked");
    assert_eq!(
        err("000413bb0006"),
        "not configured: api=sraps needs access_key_id and access_key_secret"
    );
    let text = d.ok(&["prov", "redirect", "status"]);
    assert!(text.contains("addDevicesByMac"), "{text}");

    // Fixing the password re-arms the parked device at once.
    d.ok(&[
        "prov",
        "redirect_server",
        "set",
        "snom_xmlrpc-a",
        &format!("password={}", cloud::SNOM_PASSWORD),
    ]);
    wait_for(&d, "registered after the fix", |s| {
        provisioned_on(s, "000413bb0003", "snom_xmlrpc-a")
    });
    // Enabled by Yealink: a sync registers.
    cloud.with(|s| s.ymcs_regular = false);
    d.ok(&["prov", "redirect", "sync"]);
    wait_for(&d, "YMCS after enabling", |s| {
        provisioned_on(s, "001565bb0005", "ymcs-a")
    });
    assert_eq!(cloud.count("ymcs:add:001565bb0005"), 1);
    assert_eq!(d.stop(), Some(0));
    drop(svc);
}

#[test]
fn rate_limits_wait_for_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let cloud = cloud_with_servers();
    cloud.with(|s| {
        s.forced.insert(
            "rps:registerDevice".into(),
            redirectkit::Resp {
                status: 429,
                headers: vec![("Retry-After".into(), "600".into())],
                body: Vec::new(),
            },
        )
    });
    let svc = Service::start(cloud.handler());
    let mut d = started(dir.path(), &svc.ca_file, svc.addr.port());
    add_server(&d, "rps_xmlrpc", "rps_xmlrpc-a", PROV_A);
    add_device(&d, "001565aabb01", "rps_xmlrpc-a");
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
    cloud.with(|s| s.forced.clear());
    d.ok(&["prov", "redirect", "sync"]);
    wait_for(&d, "registered", |s| {
        provisioned_on(s, "001565aabb01", "rps_xmlrpc-a")
    });
    assert_eq!(cloud.count("rps:register:001565aabb01"), 1);
    assert_eq!(d.stop(), Some(0));
    drop(svc);
}
