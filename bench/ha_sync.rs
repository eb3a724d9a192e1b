//! `make bench`, HA data sync part (issue 4): commit latency on the active
//! node with the passive node connected (synchronous: the reply waits for
//! the peer's acknowledgement) and without it, and the time to bring a
//! fresh secondary in sync with a primary holding 100,000 configuration
//! objects (SIP accounts).
//!
//! Two real release daemons run in network namespaces, on the topology of
//! the HA tests (`tests/lab`: LAN 198.51.100.0/24 on a bridge with two
//! ping-group hosts, sync 192.0.2.0/24 on a direct veth; heartbeat 0.1 s,
//! out of service 0.5 s, which is also the bound of the wait for an ack).
//! Commits go through the control socket over one connection, like
//! `bench/store.rs`; the anchor is `Store::commit` in-process (fsync'd) on
//! the same disk. Needs root and iproute2, like the namespace tests; every
//! daemon is killed by PID and every namespace deleted on the way out.
//!
//! Part 1, a small store: latency with the passive connected and in sync,
//! what the idle pair costs (CPU, packets on sync0), one large import with
//! the passive connected, latency with the passive stopped.
//! Part 2, 100,000 accounts: the primary is filled in-process (100
//! transactions of 1,000) before its daemon starts; then a fresh secondary
//! is started and timed until both report the same `local_seq` and
//! `local_hash` (a snapshot); latency with both holding the objects; then
//! the secondary is stopped, 100,000 more accounts are imported, and the
//! returning secondary is timed while it follows the log.
//!
//! `HA_SYNC_ONLY=latency` or `=secondary` runs one part;
//! `HA_SYNC_PERF=<dir>` records `perf` profiles of both daemons while a
//! secondary comes in sync and during the synchronous commits of part 2. Before each timed part it waits (at most 10
//! minutes) while the HTTP/TFTP rigs of another benchmark run.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/lab/mod.rs"]
mod lab;
#[path = "../tests/lab/rig.rs"]
mod rig;
#[path = "support.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kpbxd::clock::{Clock, SystemClock};
use kpbxd::control::{Command as Cmd, HaStatusView};
use kpbxd::model::{Account, Change, Object, Origin, Setting, Source};
use kpbxd::store::Store;
use lab::{Lab, wait_until};
use rig::{PING1, PING2, configure, ha_fields};
use support::{Client, bench_dir};

/// Single-object commits per latency run.
const COMMITS: usize = 500;
/// Commits before each run, not measured.
const WARMUP: usize = 20;
/// Accounts in the one large import (one transaction, one log entry of
/// about 11 MB: more than one sync frame, `ha::sync::MAX_FRAME`, holds).
const LARGE: usize = 40_000;
/// Configuration objects on the primary for the fresh-secondary run.
const OBJECTS: usize = 100_000;
/// Objects per transaction when filling the primary's store.
const FILL_BATCH: usize = 1000;
/// LMDB map size of both nodes (sparse; the 100,000-object store, its
/// audit entries and log are a few hundred MB).
const STORE_MB: &str = "2048";

fn main() {
    let root = tempfile::tempdir_in(bench_dir()).expect("temp dir");
    let noisy = wait_for_quiet();
    println!("(load average at the start: {})", load_average());

    // HA_SYNC_ONLY=latency or =secondary runs one part.
    let only = std::env::var("HA_SYNC_ONLY").unwrap_or_default();
    if only != "secondary" {
        println!(
            "== ha sync: commit latency, {COMMITS} single-object commits via the control socket"
        );
        let anchor = inproc_latencies(&root.path().join("anchor"));
        let (sync, alone, idle) = pair_latencies(root.path());
        let row = |label: &str, v: &[f64]| {
            println!(
                "{label:<52} median {:>7.2} ms   p99 {:>7.2} ms",
                pct(v, 50),
                pct(v, 99)
            );
        };
        row("active, passive connected (mode sync)", &sync);
        row("active, passive stopped (mode alone)", &alone);
        row("anchor: Store::commit in-process (fsync'd)", &anchor);
        println!(
            "{:<52} median {:>7.2}x    p99 {:>7.2}x",
            "ratio sync / alone",
            pct(&sync, 50) / pct(&alone, 50),
            pct(&sync, 99) / pct(&alone, 99)
        );
        println!(
            "{:<52} {:>5.1}% / {:.1}% CPU, sync0 {:.0} packets/s",
            "idle in sync mode: active / passive daemon",
            idle.active_cpu,
            idle.passive_cpu,
            idle.packets
        );
        println!(
            "{:<52} {:>5.1}% CPU, sync0 {:.0} packets/s",
            "idle alone: active daemon", idle.alone_cpu, idle.alone_packets
        );
        let label = format!("one import of {LARGE} accounts, passive connected");
        match &idle.large_synced {
            Ok(t) => println!(
                "{label:<52} {:>8.2} s    (commit {:.2} s; until the passive holds it)",
                t.as_secs_f64(),
                idle.large_commit.as_secs_f64()
            ),
            Err(why) => println!(
                "{label:<52} {:>8}      (commit {:.2} s; the passive did not get it: {why})",
                "-",
                idle.large_commit.as_secs_f64()
            ),
        }
        println!();
    }
    if only != "latency" {
        let _ = wait_for_quiet();
        println!(
            "== ha sync: a fresh secondary comes in sync with a primary holding {OBJECTS} objects"
        );
        fresh_secondary(root.path());
    }
    if noisy {
        println!("note: other benchmarks were running at the start; numbers may be noisy");
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

// ------------------------------------------------------------ the pair

/// The HA topology of the tests with the two ping-group hosts the nodes'
/// `ping_group` names (no phone).
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

/// A node's daemon (not started): on the bench disk, less logging than the
/// tests' (info: the sync lines), a store large enough for 100,000 objects.
fn node(dir: &Path, ns: &str, serial: &str) -> common::Daemon {
    std::fs::create_dir_all(dir).expect("node dir");
    std::fs::write(dir.join("serial"), format!("{serial}\n")).expect("serial file");
    let mut d = common::Daemon::with(dir, &[("log_level", "info"), ("store_max_mb", STORE_MB)]);
    d.netns = Some(ns.to_string());
    d
}

fn coordinator_fields(dir: &Path) -> Vec<String> {
    // The rig's serials: KP-SCN-A (coordinator), KP-SCN-B.
    with_default_times(ha_fields(dir, 1, true))
}

fn secondary_fields(dir: &Path) -> Vec<String> {
    with_default_times(ha_fields(dir, 2, false))
}

/// The rig's thresholds are the tests' (out of service 0.5 s); the bench
/// uses the product's defaults (3 s), so that a large import, which holds
/// the loop for a fraction of a second, is not taken for a dead node. The
/// out-of-service time is also the bound of a synchronous commit.
fn with_default_times(fields: Vec<String>) -> Vec<String> {
    fields
        .into_iter()
        .map(|f| match f.split_once('=') {
            Some(("heartbeat_interval", _)) => "heartbeat_interval=0.2".to_string(),
            Some(("keepalive_warning", _)) => "keepalive_warning=1".to_string(),
            Some(("keepalive_out_of_service", _)) => "keepalive_out_of_service=3".to_string(),
            Some(("init_timeout", _)) => "init_timeout=10".to_string(),
            _ => f,
        })
        .collect()
}

fn converged(a: &HaStatusView, b: &HaStatusView) -> bool {
    a.sync.local_seq == b.sync.local_seq && a.sync.local_hash == b.sync.local_hash
}

/// Polls both nodes every 100 ms, for at most 10 minutes, until the secondary (`cb`)
/// follows the primary's log at its last entry; `seen` gets each status of the
/// secondary. Returns the time since `t0`; at the bound, fails with `what` and both
/// daemons' `logs`.
fn until_following(
    (ca, cb): (&mut Client, &mut Client),
    t0: Instant,
    what: &str,
    logs: impl Fn() -> String,
    mut seen: impl FnMut(&HaStatusView),
) -> Duration {
    for _ in 0..6000 {
        let (sa, sb) = (ca.ha(), cb.ha());
        seen(&sb);
        if converged(&sa, &sb) && sb.sync.mode == "following" {
            return t0.elapsed();
        }
        if t0.elapsed() > Duration::from_secs(600) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} within 600 s: {:?}\n{:?}\n{}",
        ca.ha().sync,
        cb.ha().sync,
        logs()
    );
}

struct Idle {
    active_cpu: f64,
    passive_cpu: f64,
    packets: f64,
    alone_cpu: f64,
    alone_packets: f64,
    /// One import of `LARGE` accounts with the passive connected: the
    /// commit's time, and the time until the passive holds it (or why not).
    large_commit: Duration,
    large_synced: Result<Duration, String>,
}

/// Commit latencies (ms) on the active node with the passive connected,
/// then with it stopped; and what the idle pair costs.
fn pair_latencies(root: &Path) -> (Vec<f64>, Vec<f64>, Idle) {
    let (lab, a_ns, b_ns) = topology("hsl");
    let (da, db) = (root.join("lat-a"), root.join("lat-b"));
    let mut a = node(&da, &a_ns, "KP-SCN-A");
    let mut b = node(&db, &b_ns, "KP-SCN-B");
    a.start();
    b.start();
    configure(&b, &secondary_fields(&db));
    configure(&a, &coordinator_fields(&da));
    let mut ca = Client::connect(&a.socket);
    let mut cb = Client::connect(&b.socket);
    let paired = wait_until(Duration::from_secs(30), || {
        let (sa, sb) = (ca.ha(), cb.ha());
        sa.state == "active"
            && sb.state == "passive"
            && sa.sync.mode == "sync"
            && converged(&sa, &sb)
    });
    assert!(
        paired,
        "the pair did not reach sync mode: {:?}\n{:?}\n{}\n{}",
        ca.ha().sync,
        cb.ha().sync,
        a.log(),
        b.log()
    );

    let (cpu_a, cpu_b, pk) = (
        cpu_ticks(a.pid()),
        cpu_ticks(b.pid()),
        tx_packets(&lab, &a_ns),
    );
    let window = Duration::from_secs(3);
    std::thread::sleep(window);
    let active_cpu = cpu_percent(cpu_ticks(a.pid()) - cpu_a, window);
    let passive_cpu = cpu_percent(cpu_ticks(b.pid()) - cpu_b, window);
    let packets = (tx_packets(&lab, &a_ns) - pk) as f64 / window.as_secs_f64();

    let sync = latencies(&mut ca, "sync", COMMITS);
    let (sa, sb) = (ca.ha(), cb.ha());
    assert_eq!(
        sa.sync.mode, "sync",
        "the pair left sync mode during the run: {:?}",
        sa.sync
    );
    assert!(
        wait_until(Duration::from_secs(10), || converged(&ca.ha(), &cb.ha())),
        "the passive node did not follow: {:?} {:?}",
        sa.sync,
        sb.sync
    );

    // One large transaction (a CSV import) with the passive connected.
    let mut csv = String::from("extension,sip_password,display_name\n");
    for i in 0..LARGE {
        csv.push_str(&format!("{},pw-{i},User {i}\n", 500_000 + i));
    }
    let t0 = Instant::now();
    let large_commit = ca.commit(Cmd::ProvImport {
        kind: "account".into(),
        csv,
    });
    let large_synced = if wait_until(Duration::from_secs(30), || converged(&ca.ha(), &cb.ha())) {
        Ok(t0.elapsed())
    } else {
        let (sa, sb) = (ca.ha(), cb.ha());
        let ended = a
            .log()
            .lines()
            .filter(|l| l.contains("sync: primary session") && l.contains("ended"))
            .count();
        Err(format!(
            "not in 30 s: active at {} mode {}, passive at {}, last error {:?}, \
             {ended} sessions ended on the active",
            sa.sync.local_seq, sa.sync.mode, sb.sync.local_seq, sa.sync.last_error
        ))
    };

    // The passive node goes away; the active node carries on alone.
    drop(cb);
    b.stop();
    assert!(
        wait_until(Duration::from_secs(20), || {
            let s = ca.ha();
            s.state == "active" && s.sync.mode == "alone"
        }),
        "the active node did not go on alone: {:?}",
        ca.ha()
    );
    let (cpu_a, pk) = (cpu_ticks(a.pid()), tx_packets(&lab, &a_ns));
    std::thread::sleep(window);
    let alone_cpu = cpu_percent(cpu_ticks(a.pid()) - cpu_a, window);
    let alone_packets = (tx_packets(&lab, &a_ns) - pk) as f64 / window.as_secs_f64();
    let alone = latencies(&mut ca, "alone", COMMITS);
    drop(ca);
    a.kill9();
    drop(lab);
    (
        sync,
        alone,
        Idle {
            active_cpu,
            passive_cpu,
            packets,
            alone_cpu,
            alone_packets,
            large_commit,
            large_synced,
        },
    )
}

/// `COMMITS` single-setting commits after a warm-up; milliseconds each.
fn latencies(c: &mut Client, tag: &str, n: usize) -> Vec<f64> {
    for i in 0..WARMUP {
        c.commit(Cmd::SystemSet {
            values: vec![("location".into(), format!("warm-up {tag} {i}"))],
        });
    }
    (0..n)
        .map(|i| {
            c.commit(Cmd::SystemSet {
                values: vec![("location".into(), format!("{tag} {i}"))],
            })
            .as_secs_f64()
                * 1000.0
        })
        .collect()
}

/// The same commits in-process on the bench disk: what one fsync'd LMDB
/// transaction costs without a daemon or a peer.
fn inproc_latencies(dir: &Path) -> Vec<f64> {
    let clock = SystemClock::default();
    let store = Store::open(dir, 256, clock.wall()).expect("open store");
    let origin = origin();
    let one = |i: usize| {
        let s = Setting::parse("location", &format!("value {i}")).expect("setting");
        let t = Instant::now();
        let r = store
            .commit(&origin, clock.wall(), &[Change::put(Object::Setting(s))])
            .expect("commit");
        assert!(r.txid.is_some());
        t.elapsed().as_secs_f64() * 1000.0
    };
    (0..WARMUP).for_each(|i| {
        one(i);
    });
    (0..COMMITS).map(|i| one(WARMUP + i)).collect()
}

// ------------------------------------------------------ fresh secondary

/// Fills a primary with `OBJECTS` accounts, starts it alone, then starts a
/// fresh secondary and times it until both stores are equal.
fn fresh_secondary(root: &Path) {
    let (da, db) = (root.join("big-a"), root.join("big-b"));
    std::fs::create_dir_all(&da).expect("dir");
    let fill = Instant::now();
    let data_dir = da.join("data");
    fill_store(&data_dir);
    let fill = fill.elapsed();
    let store_bytes = std::fs::metadata(data_dir.join("store/data.mdb")).map_or(0, |m| m.len());
    println!(
        "{:<52} {:>8.1} s    ({} transactions of {FILL_BATCH}, store {:.0} MB)",
        "fill the primary in-process (setup, not timed)",
        fill.as_secs_f64(),
        OBJECTS / FILL_BATCH,
        store_bytes as f64 / 1e6
    );

    let (lab, a_ns, b_ns) = topology("hsf");
    let mut a = node(&da, &a_ns, "KP-SCN-A");
    let mut b = node(&db, &b_ns, "KP-SCN-B");
    a.start();
    configure(&a, &coordinator_fields(&da));
    let mut ca = Client::connect(&a.socket);
    // A coordinator waits in `pairing` for its secondary.
    assert!(
        wait_until(Duration::from_secs(60), || ca.ha().state == "pairing"),
        "the coordinator did not start pairing: {:?}\n{}",
        ca.ha(),
        a.log()
    );
    let a_hwm_before = hwm_kib(a.pid());
    let a_seq = ca.ha().sync.local_seq;
    let tx_before = tx_bytes(&lab, &a_ns);

    let _ = wait_for_quiet();
    let t0 = Instant::now();
    b.start();
    let perf = Perf::start("fresh", &[("primary", a.pid()), ("secondary", b.pid())]);
    configure(&b, &secondary_fields(&db));
    let configured = t0.elapsed();
    let mut cb = Client::connect(&b.socket);
    let mut snapshot_seen = None;
    let mut passive_seen = None;
    let done = until_following(
        (&mut ca, &mut cb),
        t0,
        "the secondary did not come in sync",
        || format!("{}\n{}", a.log(), b.log()),
        |sb| {
            if passive_seen.is_none() && sb.state == "passive" {
                passive_seen = Some(t0.elapsed());
            }
            if snapshot_seen.is_none() && sb.sync.mode == "receiving snapshot" {
                snapshot_seen = Some(t0.elapsed());
            }
        },
    );
    drop(perf);
    let (a_hwm, b_hwm) = (hwm_kib(a.pid()), hwm_kib(b.pid()));
    let sent = tx_bytes(&lab, &a_ns) - tx_before;
    let records = sent_records(&a.log());
    let sa = ca.ha();
    let sb = cb.ha();

    println!(
        "{:<52} {:>8.2} s    (primary at transaction {a_seq}; start + `ha configure` {:.2} s, passive at {})",
        "secondary started -> stores equal",
        done.as_secs_f64(),
        configured.as_secs_f64(),
        passive_seen.map_or("-".to_string(), |t| format!("{:.2} s", t.as_secs_f64()))
    );
    match snapshot_seen {
        Some(s) => println!(
            "{:<52} {:>8.2} s    (first seen \"receiving snapshot\" at {:.2} s, 100 ms polls)",
            "of which snapshot transfer + install",
            (done - s).as_secs_f64(),
            s.as_secs_f64()
        ),
        None => println!(
            "{:<52} {:>8}      (no \"receiving snapshot\" seen: the log was followed)",
            "of which snapshot transfer + install", "-"
        ),
    }
    match records {
        Some(n) => println!(
            "{:<52} {:>8}      ({:.0} records/s from the secondary's start)",
            "records sent (snapshot)",
            n,
            n as f64 / done.as_secs_f64()
        ),
        None => println!(
            "{:<52} {:>8}      (no snapshot in the primary's log)",
            "records sent (snapshot)", "-"
        ),
    }
    println!(
        "{:<52} {:>8.1} MB   ({:.1} MB/s)",
        "bytes sent on the primary's sync0",
        sent as f64 / 1e6,
        sent as f64 / 1e6 / done.as_secs_f64()
    );
    println!(
        "{:<52} {:>8} KiB  (before the secondary started: {a_hwm_before} KiB)",
        "peak RSS (VmHWM), primary daemon", a_hwm
    );
    println!(
        "{:<52} {:>8} KiB",
        "peak RSS (VmHWM), secondary daemon", b_hwm
    );
    println!(
        "{:<52} {:>8}      (at {} / {}; secondary archive: {})",
        "after: primary mode",
        sa.sync.mode,
        sa.sync.local_seq,
        sb.sync.local_seq,
        if sb.sync.last_archive.is_empty() {
            "none"
        } else {
            &sb.sync.last_archive
        }
    );
    // Synchronous commits again, now that both stores hold the objects.
    let perf = Perf::start(
        "sync-commits",
        &[("primary", a.pid()), ("secondary", b.pid())],
    );
    let big = latencies(&mut ca, "sync big", COMMITS / 5);
    drop(perf);
    let sa = ca.ha();
    println!(
        "{:<52} median {:>7.2} ms   p99 {:>7.2} ms  ({} commits, mode after: {})",
        "commit latency, mode sync, 100,000 objects",
        pct(&big, 50),
        pct(&big, 99),
        COMMITS / 5,
        sa.sync.mode
    );
    drop(cb);

    // The same secondary returns after missing `OBJECTS` more objects, in
    // transactions of `FILL_BATCH` made through the daemon: it follows the
    // log instead of taking a snapshot.
    b.stop();
    assert!(
        wait_until(Duration::from_secs(20), || ca.ha().sync.mode == "alone"),
        "the primary did not notice the secondary leave: {:?}",
        ca.ha().sync
    );
    let alone = latencies(&mut ca, "alone big", COMMITS / 5);
    println!(
        "{:<52} median {:>7.2} ms   p99 {:>7.2} ms  ({} commits)",
        "commit latency, mode alone, 100,000 objects",
        pct(&alone, 50),
        pct(&alone, 99),
        COMMITS / 5
    );
    let imports = Instant::now();
    for batch in 0..OBJECTS / FILL_BATCH {
        let mut csv = String::from("extension,sip_password,display_name\n");
        for j in 0..FILL_BATCH {
            let i = OBJECTS + batch * FILL_BATCH + j;
            csv.push_str(&format!("{},pw-{i},User {i}\n", 100_000 + i));
        }
        ca.commit(Cmd::ProvImport {
            kind: "account".into(),
            csv,
        });
    }
    let imports = imports.elapsed();
    let from = sb.sync.local_seq;
    let to = ca.ha().sync.local_seq;
    let tx_before = tx_bytes(&lab, &a_ns);
    let _ = wait_for_quiet();
    let t0 = Instant::now();
    b.start();
    let perf = Perf::start("catch-up", &[("primary", a.pid()), ("secondary", b.pid())]);
    let mut cb = Client::connect(&b.socket);
    let mut snapshot = false;
    let done = until_following(
        (&mut ca, &mut cb),
        t0,
        "the returning secondary did not catch up",
        || format!("{}\n{}", a.log(), b.log()),
        |sb| snapshot |= sb.sync.mode == "receiving snapshot",
    );
    drop(perf);
    let sent = tx_bytes(&lab, &a_ns) - tx_before;
    let entries = to - from;
    println!(
        "{:<52} {:>8.1} s    ({} imports of {FILL_BATCH} accounts via the socket, setup)",
        "primary alone: the secondary misses 100,000 more",
        imports.as_secs_f64(),
        OBJECTS / FILL_BATCH
    );
    println!(
        "{:<52} {:>8.2} s    ({entries} log entries {from}..{to}, {:.0} objects/s{})",
        "returning secondary started -> stores equal",
        done.as_secs_f64(),
        OBJECTS as f64 / done.as_secs_f64(),
        if snapshot { ", took a snapshot" } else { "" }
    );
    println!(
        "{:<52} {:>8.1} MB   ({:.1} MB/s)",
        "bytes sent on the primary's sync0",
        sent as f64 / 1e6,
        sent as f64 / 1e6 / done.as_secs_f64()
    );
    println!(
        "{:<52} {:>8} KiB  / {} KiB",
        "peak RSS (VmHWM), primary / returning secondary",
        hwm_kib(a.pid()),
        hwm_kib(b.pid())
    );
    drop(ca);
    drop(cb);
    b.kill9();
    a.kill9();
    drop(lab);
}

/// `OBJECTS` SIP accounts, `FILL_BATCH` per transaction, straight into the
/// store (the daemon is not running yet).
fn fill_store(data_dir: &Path) {
    let clock = SystemClock::default();
    let store = Store::open(data_dir, STORE_MB.parse().expect("mb"), clock.wall()).expect("store");
    let origin = origin();
    for batch in 0..OBJECTS / FILL_BATCH {
        let changes: Vec<Change> = (0..FILL_BATCH)
            .map(|j| {
                let i = batch * FILL_BATCH + j;
                let ext = (100_000 + i).to_string();
                Change::put(Object::Account(Account {
                    tenant: None,
                    extension: ext.clone(),
                    sip_user: ext,
                    sip_password: format!(
                        "pw-{:016x}",
                        (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    ),
                    display_name: format!("User {i}"),
                    first_name: "First".into(),
                    last_name: format!("Last {i}"),
                    email: format!("user{i}@example.com"),
                }))
            })
            .collect();
        let r = store
            .commit(&origin, clock.wall(), &changes)
            .expect("fill commit");
        assert!(r.txid.is_some());
    }
}

/// The record count of the primary's last "sent a snapshot" log line.
fn sent_records(log: &str) -> Option<u64> {
    log.lines()
        .rev()
        .find_map(|l| l.split_once("sent a snapshot at ").map(|(_, r)| r))
        .and_then(|r| r.split_once('(').map(|(_, r)| r))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

// ------------------------------------------------------------ helpers

fn origin() -> Origin {
    Origin {
        user: "bench".into(),
        source: Source::Console,
    }
}

/// With `HA_SYNC_PERF=<dir>`, `perf record --call-graph dwarf` of the
/// daemons during one phase (`<dir>/<phase>-<node>.data`); stopped (SIGINT
/// by PID, bounded wait) on drop.
struct Perf(Vec<std::process::Child>);

impl Perf {
    fn start(phase: &str, pids: &[(&str, u32)]) -> Perf {
        let Some(dir) = std::env::var_os("HA_SYNC_PERF") else {
            return Perf(Vec::new());
        };
        let dir = Path::new(&dir);
        std::fs::create_dir_all(dir).expect("HA_SYNC_PERF dir");
        Perf(
            pids.iter()
                .map(|(node, pid)| {
                    Command::new("perf")
                        .args([
                            "record",
                            "-q",
                            "--call-graph",
                            "dwarf,32768",
                            "-F",
                            "499",
                            "-p",
                            &pid.to_string(),
                            "-o",
                        ])
                        .arg(dir.join(format!("{phase}-{node}.data")))
                        .stdout(std::process::Stdio::null())
                        .spawn()
                        .expect("perf (HA_SYNC_PERF is set)")
                })
                .collect(),
        )
    }
}

impl Drop for Perf {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `p`th percentile (nearest rank) of `v`.
fn pct(v: &[f64], p: usize) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = (s.len() * p).div_ceil(100).clamp(1, s.len());
    s[rank - 1]
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which ends with the last ')').
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    field(11) + field(12)
}

fn cpu_percent(ticks: u64, window: Duration) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / hz / window.as_secs_f64() * 100.0
}

fn hwm_kib(pid: u32) -> u64 {
    support::status_kib(&pid.to_string(), "VmHWM")
}

fn link_stat(lab: &Lab, ns: &str, what: &str) -> u64 {
    let out = lab.ip(ns, "-s -j link show dev sync0");
    let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j output is JSON");
    v[0]["stats64"]["tx"][what].as_u64().expect("tx counter")
}

fn tx_packets(lab: &Lab, ns: &str) -> u64 {
    link_stat(lab, ns, "packets")
}

fn tx_bytes(lab: &Lab, ns: &str) -> u64 {
    link_stat(lab, ns, "bytes")
}

/// Waits (at most 10 minutes) while the HTTP/TFTP rigs of another
/// benchmark run; returns whether they were still running at the end.
fn wait_for_quiet() -> bool {
    let busy = || {
        Command::new("pgrep")
            .args(["-fa", "nginx|tftpd|http.sh|tftp.sh"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    for i in 0..60 {
        match busy() {
            None => return false,
            Some(p) if i == 0 => {
                println!(
                    "(waiting for other benchmarks to finish: {})",
                    p.lines().count()
                )
            }
            Some(_) => {}
        }
        std::thread::sleep(Duration::from_secs(10));
    }
    busy().is_some()
}
