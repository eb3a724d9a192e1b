//! Two real kpbxd processes form an HA pair in network namespaces (root and
//! iproute2 required; the test fails, never skips, without them).
//!
//! Topology (tests/lab): nodes `a` and `b` with `lan0` on a bridge in `sw`
//! and `sync0` on a direct veth; a `phone` namespace on the bridge.
//! LAN 198.51.100.0/24 (a .1, b .2, phone .100, resource .10), sync
//! 192.0.2.0/24 (a .1, b .2). Each daemon runs in its node's namespace
//! (`ip netns exec`); `kpbx` reaches it over its Unix socket.

mod common;
mod lab;
#[path = "lab/rig.rs"]
mod rig;

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::Daemon;
use kpbxd::net::ping::Pinger;
use lab::{Lab, addr_info, wait_until};

use rig::{PHONE, VIP};
/// Out-of-service time configured below.
const OOS: Duration = Duration::from_millis(500);

fn holds(lab: &Lab, ns: &str) -> bool {
    addr_info(lab, ns, "lan0", VIP).is_some()
}

/// The rig's HA settings (`tests/lab/rig.rs`), with this test's one ping host (the
/// phone) and serial.
fn ha_fields(dir: &Path, me: u8, coordinator: bool) -> Vec<String> {
    rig::ha_fields(dir, me, coordinator)
        .into_iter()
        .map(|f| match f.split_once('=') {
            Some(("ping_group", _)) => format!("ping_group={PHONE}"),
            Some(("remote_serial", _)) => "remote_serial=KP-TEST-B".to_string(),
            _ => f,
        })
        .collect()
}

fn node(dir: &Path, ns: &str, serial: &str) -> Daemon {
    std::fs::write(dir.join("serial"), format!("{serial}\n")).expect("serial file");
    let mut d = Daemon::new(dir);
    d.netns = Some(ns.to_string());
    d
}

fn configure(d: &Daemon, fields: &[String]) {
    let mut args = vec!["ha", "configure"];
    args.extend(fields.iter().map(String::as_str));
    d.ok(&args);
}

fn status(d: &Daemon) -> serde_json::Value {
    d.json(&["ha", "status"])
}

/// Waits until exactly `holder` (and not `other`) has the resource address.
fn wait_sole_holder(lab: &Lab, holder: &str, other: &str, limit: Duration) -> bool {
    wait_until(limit, || holds(lab, holder) && !holds(lab, other))
}

fn phone_reaches_vip(lab: &Lab, phone: &str) -> bool {
    lab.run_in(phone, || async {
        let mut p = Pinger::open().expect("ICMP socket in the phone namespace");
        let vip: Ipv4Addr = VIP.parse().expect("vip");
        for _ in 0..10 {
            if p.ping_all(&[vip], Duration::from_millis(300)).await[0].reachable {
                return true;
            }
        }
        false
    })
}

fn logs(a: &Daemon, b: &Daemon) -> String {
    format!(
        "--- node a log ---\n{}\n--- node b log ---\n{}",
        a.log(),
        b.log()
    )
}

#[test]
fn pair_elects_fails_over_and_switches() {
    common::require_root_and_ip();
    let (mut lab, a_ns, b_ns) = Lab::pair("pair");
    let sw = lab.name("sw");
    let phone = lab.ns("phone");
    lab.veth(&sw, "pp", &phone, "lan0");
    lab.ip(&sw, "link set pp master br0");
    lab.ip(&phone, &format!("addr add {PHONE}/24 dev lan0"));

    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    let mut a = node(dir_a.path(), &a_ns, "KP-TEST-A");
    let mut b = node(dir_b.path(), &b_ns, "KP-TEST-B");
    // A release hook on b records its reason.
    let b_hooks = dir_b.path().join("hooks/release.d");
    std::fs::create_dir_all(&b_hooks).expect("hook dir");
    let released = dir_b.path().join("released");
    let b_hook = b_hooks.join("10-mark");
    std::fs::write(
        &b_hook,
        format!("#!/bin/sh\necho \"$1\" >> '{}'\n", released.display()),
    )
    .expect("hook");
    std::fs::set_permissions(&b_hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod hook");
    // An acquire hook on a records its reason.
    let hook_dir = dir_a.path().join("hooks/acquire.d");
    std::fs::create_dir_all(&hook_dir).expect("hook dir");
    let mark = dir_a.path().join("acquired");
    let hook = hook_dir.join("10-mark");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\necho \"$1\" >> '{}'\n", mark.display()),
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod hook");
    a.start();
    b.start();

    // Not configured: the ha service is listed, disabled.
    let st = a.json(&["status"]);
    let ha = st["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["name"] == "ha")
        .expect("ha service in kpbx status")
        .clone();
    assert_eq!(ha["state"], "disabled", "{ha}");

    // A refused configuration says why and changes nothing.
    let mut bad = ha_fields(dir_a.path(), 1, true);
    bad.retain(|f| !f.starts_with("resources="));
    bad.push("resources=198.51.101.10/24@lan0".to_string());
    let mut args = vec!["ha", "configure"];
    args.extend(bad.iter().map(String::as_str));
    let out = a.kpbx(&args);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("resource IP 198.51.101.10 is not in the interface's subnet"),
        "{err}"
    );
    let mut bad = ha_fields(dir_a.path(), 1, true);
    bad.push("pairing_code=short".to_string());
    let mut args = vec!["ha", "configure"];
    args.extend(bad.iter().map(String::as_str));
    assert!(!a.kpbx(&args).status.success());

    // Both configured: pairing, then the coordinator (default active) holds.
    configure(&b, &ha_fields(dir_b.path(), 2, false));
    configure(&a, &ha_fields(dir_a.path(), 1, true));
    let show = a.json(&["ha", "show"]);
    assert_eq!(show[0]["pairing_code"], "", "{show}");
    assert_eq!(show[0]["heartbeat_interval"], "0.1", "{show}");
    assert!(
        wait_sole_holder(&lab, &a_ns, &b_ns, Duration::from_secs(15)),
        "a should hold {VIP} alone after pairing\n{}\n{}",
        status(&a),
        logs(&a, &b)
    );
    // Stable for a while: no flapping, exactly one holder.
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            holds(&lab, &a_ns) && !holds(&lab, &b_ns),
            "{}",
            logs(&a, &b)
        );
    }
    let info = addr_info(&lab, &a_ns, "lan0", VIP).expect("held");
    let lft = info["valid_life_time"].as_u64().expect("finite lifetime");
    assert!(
        lft <= 1,
        "resource added with the out-of-service lifetime: {info}"
    );
    assert!(phone_reaches_vip(&lab, &phone), "phone cannot reach {VIP}");
    assert!(
        wait_until(Duration::from_secs(3), || {
            std::fs::read_to_string(&mark).is_ok_and(|t| t.contains("default active node"))
        }),
        "acquire hook did not run with the reason"
    );

    if std::env::var_os("HA_PAIR_LOG").is_some() {
        eprintln!("{}\n{}", a.ok(&["ha", "status"]), b.ok(&["ha", "events"]));
    }
    let sa = status(&a);
    let sb = status(&b);
    assert_eq!(sa["state"], "active", "{sa}");
    assert_eq!(sb["state"], "passive", "{sb}");
    assert_eq!(sa["paired"], true);
    assert_eq!(sb["paired"], true);
    assert_eq!(sa["holder"], "local", "{sa}");
    assert_eq!(sb["holder"], "remote", "{sb}");
    assert_eq!(sa["local"]["serial"], "KP-TEST-A");
    assert_eq!(sa["remote"]["serial"], "KP-TEST-B");
    assert_eq!(sa["local"]["sync_ip"], "192.0.2.1");
    assert_eq!(sa["remote"]["sync_ip"], "192.0.2.2");
    assert_eq!(sa["resources"][0], format!("{VIP}/24@lan0"));
    assert_eq!(sa["ping_group"][0], PHONE);
    assert_eq!(sa["ping_seen"], 1, "{sa}");
    assert_eq!(sa["peer_ping_seen"], 1, "{sa}");
    for s in [&sa, &sb] {
        let paths = s["paths"].as_array().expect("paths");
        assert_eq!(paths.len(), 2);
        for p in paths {
            let age = p["heartbeat_age_ms"].as_u64().expect("peer heard");
            assert!(age < 300, "heartbeat age {age} ms on {}", p["path"]);
            assert_eq!(p["warning"], false);
        }
        assert_eq!(s["degraded"], false);
        assert_eq!(s["peer_out_of_service"], false);
        assert!(s["counters"]["heartbeats_received"].as_u64().unwrap() > 0);
        assert_eq!(s["counters"]["forged"], 0);
    }
    let st = a.json(&["status"]);
    let ha = st["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["name"] == "ha")
        .expect("ha service")
        .clone();
    assert_eq!(ha["state"], "running", "{ha}");
    assert!(ha["detail"].as_str().unwrap().contains("active"), "{ha}");
    let events = a.json(&["ha", "events"]);
    let reasons: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"paired"), "{reasons:?}");

    // Changing only times applies live: no restart, no re-acquisition.
    let epoch = status(&a)["epoch"].clone();
    a.ok(&["ha", "configure", "keepalive_warning=0.35"]);
    assert_eq!(a.json(&["ha", "show"])[0]["keepalive_warning"], "0.35");
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            holds(&lab, &a_ns) && !holds(&lab, &b_ns),
            "{}",
            logs(&a, &b)
        );
    }
    let sa = status(&a);
    assert_eq!(sa["state"], "active", "{sa}");
    assert_eq!(sa["epoch"], epoch, "no re-acquisition: {sa}");
    assert!(a.log().contains("applied without a restart"));

    // Switch: the resource moves to b, break before make.
    a.ok(&["ha", "switch"]);
    assert!(
        wait_sole_holder(&lab, &b_ns, &a_ns, Duration::from_secs(5)),
        "b should hold {VIP} after the switch\n{}",
        logs(&a, &b)
    );
    assert_eq!(status(&b)["state"], "active");
    assert_eq!(status(&a)["state"], "passive");
    assert!(
        phone_reaches_vip(&lab, &phone),
        "phone cannot reach {VIP} on b"
    );

    // kill -9 of the active daemon: a takes over; b's address expires.
    let killed = Instant::now();
    b.kill9();
    // The survivor waits for the peer's silence (OOS); its ARP probe is
    // answered by the dead node's kernel with the peer's own LAN MAC,
    // which does not block: it acquires at once and b's stale address
    // expires by its lifetime (1 s + up to ~1 s kernel expiry granularity).
    let limit = OOS + Duration::from_secs(3);
    let taken = wait_until(limit, || holds(&lab, &a_ns));
    assert!(
        taken,
        "a did not take over within {limit:?}\n{}",
        logs(&a, &b)
    );
    let takeover = killed.elapsed();
    assert!(
        wait_until(Duration::from_secs(3), || !holds(&lab, &b_ns)),
        "b's stale address outlived its lifetime"
    );
    assert!(
        takeover <= OOS + Duration::from_millis(250),
        "takeover after kill -9 took {takeover:?}\n{}",
        logs(&a, &b)
    );
    eprintln!("takeover after kill -9: {} ms", takeover.as_millis());
    if std::env::var_os("HA_PAIR_LOG").is_some() {
        eprintln!("{}", a.log());
    }
    assert!(
        phone_reaches_vip(&lab, &phone),
        "phone cannot reach {VIP} on a"
    );
    let sa = status(&a);
    assert_eq!(sa["state"], "active", "{sa}");
    assert_eq!(sa["peer_out_of_service"], true, "{sa}");
    let out = a.kpbx(&["ha", "switch"]);
    assert!(!out.status.success(), "switch without a peer is refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("switch refused: the peer is out of service"),
        "{err}"
    );
    assert!(holds(&lab, &a_ns));

    // b comes back: paired from its key file, it stays passive.
    b.start();
    assert!(
        wait_until(Duration::from_secs(5), || status(&b)["state"] == "passive"),
        "b did not rejoin as passive: {}\n{}",
        status(&b),
        logs(&a, &b)
    );
    assert!(
        holds(&lab, &a_ns) && !holds(&lab, &b_ns),
        "{}",
        logs(&a, &b)
    );

    // LAN carrier lost on the active node: it releases and hands over.
    lab.ip(&a_ns, "link set lan0 down");
    assert!(
        wait_sole_holder(&lab, &b_ns, &a_ns, Duration::from_secs(3)),
        "b should take over when a's LAN is down\n{}",
        logs(&a, &b)
    );
    let events = a.json(&["ha", "events"]).to_string();
    assert!(events.contains("LAN link down"), "{events}");
    lab.ip(&a_ns, "link set lan0 up");
    assert!(
        wait_until(Duration::from_secs(5), || {
            let s = status(&a);
            s["state"] == "passive" && s["ping_seen"] == 1 && s["peer_ping_seen"] == 1
        }),
        "a did not recover its LAN: {}",
        status(&a)
    );
    assert!(holds(&lab, &b_ns) && !holds(&lab, &a_ns), "b keeps it");

    // Switch asked on the passive node: the active hands over.
    a.ok(&["ha", "switch"]);
    assert!(
        wait_sole_holder(&lab, &a_ns, &b_ns, Duration::from_secs(5)),
        "a should hold {VIP} after asking for it\n{}",
        logs(&a, &b)
    );
    assert!(
        phone_reaches_vip(&lab, &phone),
        "phone cannot reach {VIP} on a"
    );

    // Unpair from the passive node: both forget the key, a keeps the
    // resource; pairing again (secondary first) restores the pair.
    b.ok(&["ha", "unpair"]);
    assert!(
        wait_until(Duration::from_secs(3), || {
            status(&a)["state"] == "unpaired" && status(&b)["state"] == "unpaired"
        }),
        "unpair did not reach both nodes: {} {}",
        status(&a),
        status(&b)
    );
    assert_eq!(status(&a)["paired"], false);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        holds(&lab, &a_ns) && !holds(&lab, &b_ns),
        "the active keeps the resource while unpaired"
    );
    b.ok(&["ha", "pair"]);
    a.ok(&["ha", "pair"]);
    assert!(
        wait_until(Duration::from_secs(10), || {
            status(&a)["state"] == "active" && status(&b)["state"] == "passive"
        }),
        "pairing again failed: {} {}\n{}",
        status(&a),
        status(&b),
        logs(&a, &b)
    );
    assert!(
        holds(&lab, &a_ns) && !holds(&lab, &b_ns),
        "{}",
        logs(&a, &b)
    );

    // A lone node (the peer stopped) acquires after the init timeout.
    a.kill9();
    b.kill9();
    assert!(
        wait_until(Duration::from_secs(4), || !holds(&lab, &a_ns)),
        "a's address outlived its lifetime"
    );
    let started = Instant::now();
    b.start();
    assert!(
        wait_until(Duration::from_secs(8), || holds(&lab, &b_ns)),
        "lone b did not acquire after the init timeout\n{}",
        b.log()
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500),
        "acquired after {waited:?}, before the 2 s init timeout"
    );
    let events = b.json(&["ha", "events"]);
    assert!(events.to_string().contains("init timeout"), "{events}");

    // a returns: it stays passive, b keeps the resource.
    a.start();
    assert!(
        wait_until(Duration::from_secs(5), || status(&a)["state"] == "passive"),
        "a did not rejoin as passive: {}\n{}",
        status(&a),
        logs(&a, &b)
    );
    assert!(
        holds(&lab, &b_ns) && !holds(&lab, &a_ns),
        "{}",
        logs(&a, &b)
    );

    // A clean stop of the active node hands over at once (no out-of-service wait).
    let release_runs = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let before = release_runs(&released);
    let stopping = Instant::now();
    assert_eq!(b.stop(), Some(0));
    assert!(
        wait_until(Duration::from_secs(2), || holds(&lab, &a_ns)),
        "a did not take over on b's clean stop\n{}",
        logs(&a, &b)
    );
    let handover = stopping.elapsed();
    eprintln!("takeover after SIGTERM: {} ms", handover.as_millis());
    assert!(
        handover < OOS,
        "handover on SIGTERM took {handover:?}, no faster than the out-of-service time"
    );
    assert!(!holds(&lab, &b_ns));
    assert_eq!(
        release_runs(&released),
        before + 1,
        "the release hook runs before the stopping daemon exits"
    );
    b.start();
    assert!(
        wait_until(Duration::from_secs(5), || status(&b)["state"] == "passive"),
        "b did not rejoin as passive: {}",
        status(&b)
    );

    // Disable from the active node turns HA off on both; the resource is
    // released and role=disabled is stored (audited) on both nodes.
    a.ok(&["ha", "disable"]);
    assert!(
        wait_until(Duration::from_secs(3), || {
            status(&a)["state"] == "disabled" && status(&b)["state"] == "disabled"
        }),
        "disable did not reach both nodes: {} {}",
        status(&a),
        status(&b)
    );
    assert!(
        wait_until(Duration::from_secs(2), || !holds(&lab, &b_ns)
            && !holds(&lab, &a_ns)),
        "the resource is released on disable"
    );
    for d in [&a, &b] {
        assert_eq!(d.json(&["ha", "show"])[0]["role"], "disabled");
    }
    let audit = b.json(&["audit", "list", "--limit", "20"]);
    assert_eq!(audit[0]["user"], "kpbxd-ha", "{audit}");
    assert_eq!(audit[0]["object_type"], "ha", "{audit}");
    a.stop();
    b.stop();
}
