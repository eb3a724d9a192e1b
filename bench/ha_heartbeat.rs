//! `make bench`, HA heartbeat gaps (issue 18, item 6): the longest silence
//! between consecutive heartbeats a node sends while the daemon does its
//! heaviest work, against the warning time, at the product's defaults and
//! at faster settings.
//!
//! Two real release daemons in network namespaces, on the topology of the
//! HA tests (`tests/lab`: LAN on a bridge with two ping-group hosts, sync
//! on a direct veth). A thread in the receiving node's namespace records
//! the kernel receive stamp of every heartbeat the other node sends on the
//! sync path (`AF_PACKET`, so the receiving daemon keeps its port:
//! `tests/lab/rig.rs`, `HeartbeatLog`). Per setting, on the active node
//! unless said otherwise:
//! 1. one import of 40,000 accounts (one transaction);
//! 2. one import of 10,000 devices: commit, then generate and write
//!    10,000 devices' files;
//! 3. a CDR backlog: 200,000 calls appear at once in `Master.csv`;
//! 4. 50 parallel password changes over the management API (PBKDF2);
//! 5. on the passive node: a snapshot install (the passive node was stopped
//!    while the active node committed more than the replication log keeps,
//!    10,000 transactions, and is started again).
//!
//! The gap of an operation is the largest between consecutive heartbeats
//! that overlaps the operation (the last heartbeat before it and the first
//! after it count). `took over` says whether the other node acquired the
//! resource meanwhile (a healthy node replaced: the failure this guards
//! against). `KPBXD_BIN` runs another kpbxd binary (the figures before the
//! HA thread were taken with the previous release build that way);
//! `HA_GAP_SETTINGS=default,fast,fastest` picks settings,
//! `HA_GAP_OPS=accounts,devices,cdr,passwords,snapshot` operations (devices
//! need the accounts). During the password changes `kpbx status` is timed
//! too (process start included; the median of 10 before the storm against
//! the worst during it). Needs root and iproute2; every daemon is killed by
//! PID and every namespace deleted.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/lab/mod.rs"]
mod lab;
#[path = "../tests/lab/rig.rs"]
mod rig;
#[path = "support.rs"]
mod support;

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use kpbxd::control::Command as Cmd;
use lab::{Lab, wait_until};
use rig::{HeartbeatLog, PING1, PING2, configure, ha_fields, wall_now};
use support::{Client, bench_dir};

const ACCOUNTS: usize = 40_000;
const DEVICES: usize = 10_000;
const CALLS: u64 = 200_000;
const PASSWORDS: usize = 50;
/// More than the replication log keeps (`store::repl::KEEP`, 10,000).
const BEHIND: usize = 10_100;

/// Heartbeat timing: (name, heartbeat interval, warning, out of service).
const SETTINGS: [(&str, &str, &str, &str); 3] = [
    // The product's defaults (ha::Config::DEFAULT_*).
    ("default", "0.2", "1", "3"),
    // The fast setting of the README's figures and of the namespace tests.
    ("fast", "0.1", "0.3", "0.5"),
    // The shortest heartbeat interval the configuration accepts (10 ms).
    ("fastest", "0.01", "0.1", "0.3"),
];

struct Row {
    setting: &'static str,
    warning: f64,
    op: String,
    took: Duration,
    gap: Duration,
    beats: usize,
    took_over: bool,
}

/// Whether `HA_GAP_OPS` (empty: all) asks for operation `op`.
fn wanted(op: &str) -> bool {
    let ops = std::env::var("HA_GAP_OPS").unwrap_or_default();
    ops.is_empty() || ops.split(',').any(|o| o == op)
}

fn main() {
    let root = tempfile::tempdir_in(bench_dir()).expect("temp dir");
    let wanted = std::env::var("HA_GAP_SETTINGS").unwrap_or_default();
    let binary = std::env::var("KPBXD_BIN").unwrap_or_else(|_| common::KPBXD.to_string());
    println!("== ha heartbeat gaps during heavy work (kpbxd {binary})");
    println!("(load average at the start: {})", load_average());
    let (mut rows, mut notes) = (Vec::new(), Vec::new());
    for (name, interval, warning, oos) in SETTINGS {
        if !wanted.is_empty() && !wanted.split(',').any(|w| w == name) {
            continue;
        }
        let (r, n) = one_setting(root.path(), name, interval, warning, oos);
        rows.extend(r);
        notes.extend(n);
    }
    println!(
        "{:<8} {:<64} {:>9} {:>11} {:>8} {:>7} {:>10}",
        "setting", "operation", "op ms", "largest gap", "warning", "beats", "took over"
    );
    for r in &rows {
        println!(
            "{:<8} {:<64} {:>9.0} {:>8.0} ms {:>5.0} ms {:>7} {:>10}",
            r.setting,
            r.op,
            r.took.as_secs_f64() * 1000.0,
            r.gap.as_secs_f64() * 1000.0,
            r.warning * 1000.0,
            r.beats,
            if r.took_over { "YES" } else { "no" }
        );
    }
    for n in &notes {
        println!("{n}");
    }
    println!(
        "(load average at the end: {}; 1 min / 5 min / 15 min)",
        load_average()
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The HA topology with the two ping-group hosts.
fn topology(tag: &str) -> (Lab, String, String) {
    let (mut lab, a, b) = Lab::pair(tag);
    let sw = lab.name("sw");
    for (role, port, ip) in [("p1", "p1", PING1), ("p2", "p2", PING2)] {
        let ns = lab.ns(role);
        lab.veth(&sw, port, &ns, "lan0");
        lab.ip(&sw, &format!("link set {port} master br0"));
        lab.ip(&ns, &format!("addr add {ip}/24 dev lan0"));
    }
    (lab, a, b)
}

fn node(dir: &Path, ns: &str, serial: &str, asterisk: &Path) -> common::Daemon {
    std::fs::create_dir_all(dir).expect("node dir");
    std::fs::write(dir.join("serial"), format!("{serial}\n")).expect("serial file");
    let mut d = common::Daemon::with(
        dir,
        &[
            ("log_level", "info"),
            ("store_max_mb", "2048"),
            ("mgmt_listen", "127.0.0.1:0"),
            ("asterisk_log_dir", &asterisk.display().to_string()),
        ],
    );
    d.netns = Some(ns.to_string());
    d
}

fn fields(dir: &Path, me: u8, interval: &str, warning: &str, oos: &str) -> Vec<String> {
    ha_fields(dir, me, me == 1)
        .into_iter()
        .map(|f| match f.split_once('=') {
            Some(("heartbeat_interval", _)) => format!("heartbeat_interval={interval}"),
            Some(("keepalive_warning", _)) => format!("keepalive_warning={warning}"),
            Some(("keepalive_out_of_service", _)) => format!("keepalive_out_of_service={oos}"),
            Some(("init_timeout", _)) => "init_timeout=10".to_string(),
            _ => f,
        })
        .collect()
}

/// Both stores at the same sequence and hash (fresh connections: the
/// daemon closes idle ones, and a node may restart in between).
fn converged(a: &common::Daemon, b: &common::Daemon) -> bool {
    let (sa, sb) = (
        Client::connect(&a.socket).ha(),
        Client::connect(&b.socket).ha(),
    );
    sa.sync.local_seq == sb.sync.local_seq && sa.sync.local_hash == sb.sync.local_hash
}

fn one_setting(
    root: &Path,
    setting: &'static str,
    interval: &str,
    warning: &str,
    oos: &str,
) -> (Vec<Row>, Vec<String>) {
    let (lab, a_ns, b_ns) = topology(&format!("hbg{}", &setting[..2]));
    let base = root.join(setting);
    let (da, db) = (base.join("a"), base.join("b"));
    let asterisk = base.join("asterisk");
    std::fs::create_dir_all(asterisk.join("cdr-csv")).expect("asterisk dir");
    let mut a = node(&da, &a_ns, "KP-SCN-A", &asterisk);
    let mut b = node(&db, &b_ns, "KP-SCN-B", &base.join("asterisk-b"));
    a.start();
    b.start();
    configure(&b, &fields(&db, 2, interval, warning, oos));
    configure(&a, &fields(&da, 1, interval, warning, oos));
    let mut ca = Client::connect(&a.socket);
    let mut cb = Client::connect(&b.socket);
    assert!(
        wait_until(Duration::from_secs(60), || {
            let (sa, sb) = (ca.ha(), cb.ha());
            sa.state == "active" && sb.state == "passive" && sa.sync.mode == "sync"
        }),
        "{setting}: the pair did not settle: {:?} {:?}\n{}\n{}",
        ca.ha(),
        cb.ha(),
        a.log(),
        b.log()
    );
    let from_a = HeartbeatLog::start(&lab, &b_ns, "sync0", Ipv4Addr::new(192, 0, 2, 1));
    let from_b = HeartbeatLog::start(&lab, &a_ns, "sync0", Ipv4Addr::new(192, 0, 2, 2));
    let warning_s: f64 = warning.parse().expect("warning");
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let mut row = |op: &str, t0: Duration, took: Duration, log: &HeartbeatLog, over: bool| {
        let t1 = wall_now();
        let gap = log.max_gap(t0, t1);
        let beats = log
            .arrivals()
            .iter()
            .filter(|t| **t >= t0 && **t <= t1)
            .count();
        // Where the largest gap ended, from the start of the operation.
        let arrivals = log.arrivals();
        let at = arrivals
            .windows(2)
            .filter(|w| w[1] >= t0 && w[0] <= t1)
            .find(|w| w[1].saturating_sub(w[0]) == gap)
            .map_or(0.0, |w| (w[1].as_secs_f64() - t0.as_secs_f64()) * 1000.0);
        println!(
            "{setting}: {op}: {:.0} ms, largest heartbeat gap {:.0} ms (ending {at:+.0} ms into it){}",
            took.as_secs_f64() * 1000.0,
            gap.as_secs_f64() * 1000.0,
            if over {
                " (the other node took over)"
            } else {
                ""
            }
        );
        rows.push(Row {
            setting,
            warning: warning_s,
            op: op.to_string(),
            took,
            gap,
            beats,
            took_over: over,
        });
    };
    // The active node lost the resource to the passive one. (A fresh
    // connection each time: the daemon closes idle control connections.)
    let b_took = |b: &common::Daemon| Client::connect(&b.socket).ha().state == "active";
    let settle = || std::thread::sleep(Duration::from_millis(400));
    // An import on a, timed, with the heartbeats a sent meanwhile.
    let import = |row: &mut dyn FnMut(&str, Duration, Duration, &HeartbeatLog, bool),
                  kind: &str,
                  csv: String,
                  label: &str| {
        let mut ca = Client::connect(&a.socket);
        let t0 = wall_now();
        let took = attempt(
            &mut ca,
            Cmd::ProvImport {
                kind: kind.into(),
                csv,
            },
        );
        settle();
        let over = b_took(&b);
        if over {
            restore_roles(&a, &b);
        }
        row(label, t0, took, &from_a, over);
    };

    // Set-up, not measured: users for the API, templates for the devices.
    common::add_user(&a, "ann", "admin", "ann-password");
    common::add_user(&a, "bob", "supervisor", "bob-password");
    // A fresh connection: adding the users (hashing) on a loaded box can
    // outlast the daemon's idle limit for `ca`.
    let mut ca = Client::connect(&a.socket);
    for name in ["a", "b"] {
        ca.commit(Cmd::ProvAdd {
            kind: "template".into(),
            fields: vec![
                ("name".into(), name.into()),
                ("model".into(), "Yealink-T4x".into()),
                ("content".into(), template(name)),
            ],
        });
    }
    settle();

    // 1. 40,000 accounts in one transaction.
    if wanted("accounts") {
        let mut csv = String::from("extension,sip_password,display_name\n");
        for i in 0..ACCOUNTS {
            let _ = writeln!(csv, "{},pw-{i},User {i}", 500_000 + i);
        }
        import(
            &mut row,
            "account",
            csv,
            "import 40,000 accounts (one transaction)",
        );
    }
    // 2. 10,000 devices: commit, generate and write their files.
    if wanted("devices") {
        let mut csv = String::from("mac,model,template,account\n");
        for i in 0..DEVICES {
            let _ = writeln!(
                csv,
                "001565{:06x},Yealink-T4x,{},{}",
                i,
                if i % 2 == 0 { "a" } else { "b" },
                500_000 + i
            );
        }
        import(
            &mut row,
            "device",
            csv,
            "import 10,000 devices: generate and write their files",
        );
    }
    // 3. A CDR backlog: 200,000 calls appear in Master.csv.
    if wanted("cdr") {
        let mut text = Vec::with_capacity(usize::try_from(CALLS).unwrap_or(0) * 300);
        for i in 0..CALLS {
            master_line(i, &mut text);
        }
        let t0 = wall_now();
        let started = Instant::now();
        std::fs::write(asterisk.join("cdr-csv/Master.csv"), &text).expect("Master.csv");
        let ingested = wait_until(Duration::from_secs(300), || {
            a.json(&["cdr", "status"])["calls"].as_u64() == Some(CALLS)
        });
        let took = started.elapsed();
        assert!(
            ingested,
            "{setting}: the CDR backlog was not ingested: {}",
            a.json(&["cdr", "status"])
        );
        settle();
        let over = b_took(&b);
        if over {
            restore_roles(&a, &b);
        }
        row(
            "CDR backlog: 200,000 calls appear in Master.csv",
            t0,
            took,
            &from_a,
            over,
        );
    }
    // 4. 50 parallel password changes over the management API.
    if wanted("passwords") {
        // The same sampling for 10 s before: what the box's load does to
        // `kpbx status` anyway (the loop runs at ordinary priority).
        let (mut before, mut before_direct) = (Vec::new(), Vec::new());
        let quiet = Instant::now();
        while quiet.elapsed() < Duration::from_secs(10) {
            before.push(status_time(&a));
            before_direct.push(status_direct(&a));
            std::thread::sleep(Duration::from_millis(50));
        }
        before.sort();
        before_direct.sort();
        let t0 = wall_now();
        let started = Instant::now();
        let sampling = std::sync::atomic::AtomicBool::new(true);
        let (codes, (during, direct)) = std::thread::scope(|s| {
            let sampler = s.spawn(|| {
                let (mut during, mut direct) = (Vec::new(), Vec::new());
                // Bounded: 50 ms apart, at most 10 minutes.
                while sampling.load(std::sync::atomic::Ordering::Relaxed) && during.len() < 12_000 {
                    during.push(status_time(&a));
                    direct.push(status_direct(&a));
                    std::thread::sleep(Duration::from_millis(50));
                }
                (during, direct)
            });
            let codes = password_storm(&a, &a_ns);
            sampling.store(false, std::sync::atomic::Ordering::Relaxed);
            (codes, sampler.join().expect("status sampler"))
        });
        let took = started.elapsed();
        let ok = codes.iter().filter(|c| c.as_str() == "200").count();
        settle();
        let over = b_took(&b);
        if over {
            restore_roles(&a, &b);
        }
        let (mut during, mut direct) = (during, direct);
        during.sort();
        direct.sort();
        let ms = |d: &Duration| d.as_secs_f64() * 1000.0;
        let pick =
            |v: &[Duration], q: usize| v.get(v.len().saturating_sub(1) * q / 100).map_or(0.0, ms);
        let line = |what: &str, d: &[Duration], b: &[Duration]| {
            format!(
                "{setting}: {what} during the {PASSWORDS} password changes: median {:.0} / p90 {:.0} / worst {:.0} ms \
                 ({} samples); 10 s before: median {:.0} / p90 {:.0} / worst {:.0} ms ({} samples)",
                pick(d, 50),
                pick(d, 90),
                pick(d, 100),
                d.len(),
                pick(b, 50),
                pick(b, 90),
                pick(b, 100),
                b.len()
            )
        };
        let note = format!(
            "{}\n{}",
            line("kpbx status (process start included)", &during, &before),
            line(
                "status over a fresh control connection",
                &direct,
                &before_direct
            )
        );
        println!("{note}");
        notes.push(note);
        row(
            &format!("{PASSWORDS} parallel password changes over the API ({ok} answered 200)"),
            t0,
            took,
            &from_a,
            over,
        );
    }
    // 5. A snapshot install on the passive node.
    if wanted("snapshot") {
        drop(cb);
        let mut ca = Client::connect(&a.socket);
        b.stop();
        assert!(
            wait_until(Duration::from_secs(20), || ca.ha().sync.mode == "alone"),
            "{setting}: the active node did not go on alone: {:?}",
            ca.ha().sync
        );
        for i in 0..BEHIND {
            ca.commit(Cmd::SystemSet {
                values: vec![("location".into(), format!("behind {i}"))],
            });
        }
        let t0 = wall_now();
        let started = Instant::now();
        b.start();
        let in_sync = wait_until(Duration::from_secs(120), || converged(&a, &b));
        let took = started.elapsed();
        assert!(
            in_sync,
            "{setting}: the passive node did not come back in sync: {:?} {:?}",
            Client::connect(&a.socket).ha().sync,
            Client::connect(&b.socket).ha().sync
        );
        let snapshot = b.log().contains("snapshot");
        settle();
        // The passive node's own heartbeats, from its first after the start.
        let first = from_b
            .arrivals()
            .into_iter()
            .find(|t| *t >= t0)
            .unwrap_or(t0);
        let over = Client::connect(&a.socket).ha().state != "active";
        row(
            &format!(
                "passive node: restart, {}",
                if snapshot {
                    "snapshot install (behind by more than the log)"
                } else {
                    "NO snapshot (followed the log)"
                }
            ),
            first,
            took,
            &from_b,
            over,
        );
    }
    drop(from_a);
    drop(from_b);
    drop(ca);
    a.kill9();
    b.kill9();
    drop(lab);
    (rows, notes)
}

/// Runs a command that should commit; its time. An error (the older
/// builds: the peer took over during the command) is printed, not fatal.
fn attempt(c: &mut Client, command: Cmd) -> Duration {
    let start = Instant::now();
    match c.request(command) {
        kpbxd::control::Reply::Committed(_) => {}
        other => println!("  (the command was not confirmed: {other:?})"),
    }
    start.elapsed()
}

/// `kpbx status` wall time, process start included (as `tests/api_http.rs`).
fn status_time(d: &common::Daemon) -> Duration {
    let t = Instant::now();
    let out = d.kpbx(&["status"]);
    assert!(out.status.success(), "kpbx status failed");
    t.elapsed()
}

/// A status request over a fresh control connection: the daemon's part of
/// `kpbx status`, without the client process's start.
fn status_direct(d: &common::Daemon) -> Duration {
    let t = Instant::now();
    let _ = Client::connect(&d.socket).request(Cmd::Status);
    t.elapsed()
}

/// After a takeover: back to a active, b passive (`kpbx ha switch` on a).
fn restore_roles(a: &common::Daemon, b: &common::Daemon) {
    let state = |d: &common::Daemon| Client::connect(&d.socket).ha().state;
    let settled = |want_a: &str| {
        wait_until(Duration::from_secs(30), || {
            state(a) == want_a
                && state(b)
                    == if want_a == "active" {
                        "passive"
                    } else {
                        "active"
                    }
        })
    };
    if settled("passive") {
        let _ = a.kpbx(&["ha", "switch"]);
    }
    assert!(
        settled("active"),
        "the roles did not come back: a {} b {}",
        state(a),
        state(b)
    );
}

/// 50 password changes: 4 curl processes from 4 loopback addresses inside
/// the node's namespace, 13 or 12 parallel transfers each (each address
/// within the per-address connection limit). Returns the HTTP codes.
fn password_storm(a: &common::Daemon, ns: &str) -> Vec<String> {
    let storm = rig::password_storm(a, ns);
    let mut codes = Vec::new();
    for c in storm {
        let out = c.wait_with_output().expect("curl");
        codes.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    assert_eq!(codes.len(), PASSWORDS, "curl answers: {codes:?}");
    codes
}

/// A phone file template with the usual placeholders (as `bench/provision.rs`).
fn template(name: &str) -> String {
    format!(
        "#!version:1.0.0.1\naccount.1.user_name = %%SIPUSER%%\naccount.1.password = %%SIPPASSWORD%%\n\
         account.1.display_name = %%DISPLAYNAME%%\naccount.1.sip_server.1.address = %%PBXADDRESS%%\n\
         local_time.ntp_server1 = %%NTPSERVER%%\n# {name}\n"
    )
}

/// One Master.csv line (Asterisk cdr-csv columns, as `bench/cdr.rs`).
fn master_line(i: u64, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let start = jiff::Timestamp::from_second(1_772_323_200 + i64::try_from(i).unwrap_or(0))
        .unwrap_or_default();
    let t = |ts: jiff::Timestamp| ts.strftime("%Y-%m-%d %H:%M:%S").to_string();
    let _ = writeln!(
        out,
        "\"\",\"2{:02}\",\"05012{:05}\",\"from-internal\",\"\"\"Caller {i}\"\" <2{:02}>\",\"PJSIP/2{:02}-{i:08x}\",\"PJSIP/trunk-{i:08x}\",\"Dial\",\"PJSIP/05012{:05}@trunk,60\",\"{}\",\"{}\",\"{}\",30,28,\"ANSWERED\",\"DOCUMENTATION\",\"1772323200.{i}\",\"\",\"\",\"1772323200.{i}\",{i}",
        i % 100,
        i % 100_000,
        i % 100,
        i % 100,
        i % 100_000,
        t(start),
        t(start + jiff::SignedDuration::from_secs(2)),
        t(start + jiff::SignedDuration::from_secs(30))
    );
}
