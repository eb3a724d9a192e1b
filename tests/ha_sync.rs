//! HA data sync with two real kpbxd processes in network namespaces (root
//! and iproute2 required; every test fails, never skips, without them).
//! The rig is `tests/lab/rig.rs` (heartbeat 0.1 s, out of service 0.5 s).
//!
//! The acceptance tests of the issue: a client commits changes through
//! `kpbx` on whichever node is active while the test runs kill -9,
//! power-off, `kpbx ha switch` and LAN-down failovers, then checks that
//! every change `kpbx` reported committed survived and that both stores
//! are equal; and a secondary that already holds data is archived and made
//! equal to the coordinator when paired. The numbers are printed
//! (`--nocapture` shows them). And the case the failovers rarely hit: a
//! change still waiting for the peer when the active node hands over.

mod common;
mod lab;
#[path = "lab/rig.rs"]
mod rig;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Daemon, kpbx_at};
use lab::wait_until;
use rig::*;

fn sync(d: &Daemon) -> serde_json::Value {
    status(d)["sync"].clone()
}

/// Both nodes at the same sequence and hash.
fn converged(rig: &Rig) -> bool {
    let (a, b) = (sync(&rig.a), sync(&rig.b));
    a["local_seq"] == b["local_seq"] && a["local_hash"] == b["local_hash"]
}

#[test]
fn a_change_on_the_active_reaches_the_passive() {
    let _g = one_at_a_time();
    let rig = Rig::up("smk");
    rig.a.ok(&["system", "set", "location=rack 7"]);
    assert!(
        wait_until(Duration::from_secs(10), || converged(&rig)),
        "{}\n{}\n{}",
        sync(&rig.a),
        sync(&rig.b),
        rig.logs()
    );
    assert_eq!(rig.b.setting("location")["value"], "rack 7");
    let out = rig.b.kpbx(&["system", "set", "location=elsewhere"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("active node"), "{err}");
    eprintln!("{}\n{}", sync(&rig.a), sync(&rig.b));
}

// ---- helpers for the failover tests --------------------------------------------

/// `kpbx ha status --json`, or `None` while the daemon does not answer.
fn try_status(d: &Daemon) -> Option<serde_json::Value> {
    let out = d.kpbx(&["ha", "status", "--json"]);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn node(rig: &Rig, i: usize) -> &Daemon {
    [&rig.a, &rig.b][i]
}

fn node_mut(rig: &mut Rig, i: usize) -> &mut Daemon {
    if i == 0 { &mut rig.a } else { &mut rig.b }
}

fn ns(rig: &Rig, i: usize) -> String {
    [&rig.a_ns, &rig.b_ns][i].clone()
}

/// The node's port on the LAN bridge.
fn port(i: usize) -> &'static str {
    ["pa", "pb"][i]
}

const NAMES: [&str; 2] = ["a", "b"];

/// The last lines of both logs (the whole logs of a long run are large),
/// without the client's commits.
fn tails(rig: &Rig) -> String {
    let tail = |d: &Daemon| {
        let log = d.log();
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| !l.contains("create placeholder"))
            .collect();
        lines[lines.len().saturating_sub(150)..].join("\n")
    };
    format!(
        "--- node a log (tail) ---\n{}\n--- node b log (tail) ---\n{}",
        tail(&rig.a),
        tail(&rig.b)
    )
}

/// Both logs from 60 lines before the first line naming `what` to 60 after
/// (how a lost change was committed and what the nodes did around it).
fn around(rig: &Rig, what: &str) -> String {
    let part = |d: &Daemon| {
        let log = d.log();
        let lines: Vec<&str> = log.lines().collect();
        match lines.iter().position(|l| l.contains(what)) {
            Some(i) => lines[i.saturating_sub(60)..(i + 60).min(lines.len())].join("\n"),
            None => format!("({what} not in this log)"),
        }
    };
    format!(
        "--- node a log around {what} ---\n{}\n--- node b log around {what} ---\n{}",
        part(&rig.a),
        part(&rig.b)
    )
}

/// The cluster is whole and in sync: one node active, holding the resource
/// alone, in synchronous mode; the other passive and following; both see
/// both ping-group members and hear each other on both paths; both stores
/// at the same sequence and hash.
/// Returns the active node's index.
fn settled(rig: &Rig, archives: &mut BTreeSet<String>) -> Option<usize> {
    let s = [try_status(&rig.a)?, try_status(&rig.b)?];
    for x in &s {
        let text = x["sync"]["last_archive"].as_str().unwrap_or_default();
        if !text.is_empty() {
            archives.insert(text.to_string());
        }
    }
    let act = s.iter().position(|x| x["state"] == "active")?;
    let (sa, sp) = (&s[act], &s[1 - act]);
    let ok = sp["state"] == "passive"
        && sa["sync"]["mode"] == "sync"
        && sp["sync"]["mode"] == "following"
        && sa["sync"]["local_seq"] == sp["sync"]["local_seq"]
        && sa["sync"]["local_hash"] == sp["sync"]["local_hash"]
        // Each sees both ping-group members and knows the peer does (a
        // switch is refused while the peer seems to see fewer).
        && s.iter().all(|x| {
            x["ping_seen"] == 2
                && x["peer_ping_seen"] == 2
                && x["degraded"] == false
                && x["peer_out_of_service"] == false
        })
        && rig.sole(&ns(rig, act));
    ok.then_some(act)
}

/// Waits until the cluster is [`settled`], and still is (same active node)
/// after 0.8 s, longer than a ping round and its dampening: a LAN flap
/// makes a node see no ping-group member a while after its link is back,
/// and a switch is refused then. `gate` pauses the client during each
/// check, so both nodes are seen at one sequence. Returns the active
/// node's index and its sequence number.
fn wait_settled(
    rig: &Rig,
    gate: &Mutex<()>,
    archives: &mut BTreeSet<String>,
    what: &str,
) -> (usize, u64) {
    let start = Instant::now();
    let mut check = |limit: Duration| {
        let _paused = gate.lock().unwrap_or_else(|p| p.into_inner());
        let mut active = None;
        wait_until(limit, || {
            active = settled(rig, archives);
            active.is_some()
        });
        active.map(|a| {
            let seq = sync(node(rig, a))["local_seq"].as_u64().expect("seq");
            (a, seq)
        })
    };
    for _ in 0..20 {
        let left = Duration::from_secs(30).saturating_sub(start.elapsed());
        let Some((first, _)) = check(left) else {
            break;
        };
        std::thread::sleep(Duration::from_millis(800));
        if let Some((again, seq)) = check(Duration::from_secs(2))
            && again == first
        {
            return (again, seq);
        }
    }
    panic!(
        "{what}: the cluster did not get back in sync within 30 s\na: {}\nb: {}\n{}",
        try_status(&rig.a).map_or("down".to_string(), |s| s.to_string()),
        try_status(&rig.b).map_or("down".to_string(), |s| s.to_string()),
        tails(rig)
    )
}

/// Node `to` is active and holds the resource.
fn took_over(rig: &Rig, to: usize) -> bool {
    try_status(node(rig, to)).is_some_and(|s| s["state"] == "active") && rig.holds(&ns(rig, to))
}

fn wait_takeover(rig: &Rig, to: usize, what: &str) {
    assert!(
        wait_until(Duration::from_secs(10), || took_over(rig, to)),
        "{what}: node {} did not take over within 10 s\n{}",
        NAMES[to],
        tails(rig)
    );
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    Kill9,
    Switch,
    PowerOff,
    LanDown,
}

/// Runs `fault` on the active node `act`, waits until the other node took
/// over, and brings the faulty node back (it rejoins as passive).
fn fail_over(rig: &mut Rig, act: usize, fault: Fault) {
    let to = 1 - act;
    let what = format!("{fault:?} of {}", NAMES[act]);
    let n = ns(rig, act);
    match fault {
        Fault::Kill9 => {
            node_mut(rig, act).kill9();
            wait_takeover(rig, to, &what);
            node_mut(rig, act).start();
        }
        Fault::PowerOff => {
            node_mut(rig, act).kill9();
            rig.lab.ip(&rig.sw, &format!("link set {} down", port(act)));
            rig.lab.ip(&n, "link set sync0 down");
            rig.lab.ip(&n, "link set lan0 down");
            // A powered-off node holds no address.
            rig.lab.ip(&n, &format!("addr flush dev lan0 to {VIP}/32"));
            wait_takeover(rig, to, &what);
            // Power on.
            rig.lab.ip(&n, "link set lan0 up");
            rig.lab.ip(&n, "link set sync0 up");
            rig.lab.ip(&rig.sw, &format!("link set {} up", port(act)));
            node_mut(rig, act).start();
        }
        Fault::Switch => {
            node(rig, act).ok(&["ha", "switch"]);
            wait_takeover(rig, to, &what);
        }
        Fault::LanDown => {
            rig.lab.ip(&rig.sw, &format!("link set {} down", port(act)));
            wait_takeover(rig, to, &what);
            rig.lab.ip(&rig.sw, &format!("link set {} up", port(act)));
        }
    }
}

/// What the client saw.
#[derive(Default)]
struct ClientLog {
    /// Names of the placeholders `kpbx` reported created (exit 0).
    committed: Vec<String>,
    /// Time spent in the successful calls.
    ok_time: Duration,
    attempts: u64,
    /// Failures by their first line of stderr (at most 20 kinds kept).
    failures: BTreeMap<String, u64>,
}

/// Creates placeholders `C000000`, `C000001`, ... one per `kpbx` call, each
/// name tried once, on the node believed active, turning to the other on
/// any failure. Holds `gate` during each call so the test can pause it.
fn client(sockets: [PathBuf; 2], gate: Arc<Mutex<()>>, stop: Arc<AtomicBool>) -> ClientLog {
    let mut log = ClientLog::default();
    let mut target = 0;
    let started = Instant::now();
    // Bounded in count and time.
    for n in 0..100_000u64 {
        let g = gate.lock().unwrap_or_else(|p| p.into_inner());
        if stop.load(Ordering::Relaxed) || started.elapsed() > Duration::from_secs(300) {
            break;
        }
        let name = format!("C{n:06}");
        let t = Instant::now();
        let out = kpbx_at(
            &sockets[target],
            &[
                "prov",
                "placeholder",
                "add",
                &format!("name={name}"),
                &format!("value=v{n}"),
            ],
        );
        drop(g);
        log.attempts += 1;
        if out.status.success() {
            log.committed.push(name);
            log.ok_time += t.elapsed();
            std::thread::sleep(Duration::from_millis(5));
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err.lines().next().unwrap_or("");
            let first = first.strip_prefix("kpbx: ").unwrap_or(first).to_string();
            // Refusals name the active node: one kind, whatever its address.
            let kind = if first.contains("active node") {
                first.split(':').next().unwrap_or("").to_string()
            } else {
                first
            };
            if log.failures.len() < 20 || log.failures.contains_key(&kind) {
                *log.failures.entry(kind).or_default() += 1;
            }
            target = 1 - target;
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    log
}

/// The names of the placeholders on a node, and the whole listing.
fn placeholders(d: &Daemon) -> (BTreeSet<String>, serde_json::Value) {
    let list = d.json(&["prov", "placeholder", "list"]);
    let names = list
        .as_array()
        .expect("placeholder list is an array")
        .iter()
        .filter_map(|p| p["name"].as_str())
        // Listed as used in templates: %%_NAME%%.
        .map(|n| {
            n.trim_start_matches("%%_")
                .trim_end_matches("%%")
                .to_string()
        })
        .collect();
    (names, list)
}

/// Every audit entry of the current month, all pages.
fn audit_month(d: &Daemon) -> Vec<serde_json::Value> {
    let mut all = Vec::new();
    for page in 1..=200 {
        let p = d.json(&[
            "audit",
            "list",
            "--page-size",
            "1000",
            "--page",
            &page.to_string(),
        ]);
        all.extend(p["entries"].as_array().expect("entries").iter().cloned());
        if p["more"] != true {
            return all;
        }
    }
    panic!("more than 200 pages of audit entries");
}

/// The archive directories under a node's data dir.
fn archive_dirs(d: &Daemon) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(d.data_dir().join("archive")) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    dirs.sort();
    dirs
}

/// Both stores equal: placeholder listing and the month's audit entries;
/// the audit chain verifies on both.
fn assert_equal_stores(rig: &Rig) {
    let (_, pa) = placeholders(&rig.a);
    let (_, pb) = placeholders(&rig.b);
    assert!(
        pa == pb,
        "the placeholder listings differ\na: {pa}\nb: {pb}"
    );
    let (aa, ab) = (audit_month(&rig.a), audit_month(&rig.b));
    assert_eq!(aa.len(), ab.len(), "audit entries this month: a vs b");
    assert!(aa == ab, "the audit listings differ");
    for d in [&rig.a, &rig.b] {
        d.ok(&["audit", "verify"]);
    }
}

// ---- the acceptance tests ---------------------------------------------------

/// 20 failovers (kill -9, switch, power-off, LAN-down of the active, in
/// turn) while a client commits continuously on whichever node is active:
/// every change `kpbx` reported committed is on the active node at the
/// end, the two stores are equal and their audit chains verify.
#[test]
fn failovers_lose_no_acknowledged_change() {
    const ROUNDS: usize = 20;
    let _g = one_at_a_time();
    let mut rig = Rig::up("fo");
    let started = Instant::now();
    let gate = Arc::new(Mutex::new(()));
    let stop = Arc::new(AtomicBool::new(false));
    let handle = {
        let sockets = [rig.a.socket.clone(), rig.b.socket.clone()];
        let (gate, stop) = (gate.clone(), stop.clone());
        std::thread::spawn(move || client(sockets, gate, stop))
    };
    let mut archives = BTreeSet::new();
    let mut failovers = 0;
    let mut kinds: BTreeMap<String, u32> = BTreeMap::new();
    // The active node alternates, so a cycle of eight gives each fault to
    // each node.
    let faults = [
        Fault::Kill9,
        Fault::Switch,
        Fault::PowerOff,
        Fault::LanDown,
        Fault::Switch,
        Fault::Kill9,
        Fault::LanDown,
        Fault::PowerOff,
    ];
    let mut back = Instant::now();
    for round in 0..ROUNDS {
        let (act, seq) = wait_settled(&rig, &gate, &mut archives, &format!("round {round}"));
        let resync = back.elapsed();
        // Let the client commit for a while (varied, so that the faults
        // hit commits at different points), then the fault hits.
        std::thread::sleep(Duration::from_millis(150 + (round as u64 * 97) % 300));
        let fault = faults[round % faults.len()];
        let t = Instant::now();
        fail_over(&mut rig, act, fault);
        back = Instant::now();
        eprintln!(
            "round {round}: in sync at {seq} on {} after {} ms; {fault:?} of {}: over and back in {} ms",
            NAMES[act],
            resync.as_millis(),
            NAMES[act],
            t.elapsed().as_millis()
        );
        failovers += 1;
        *kinds.entry(format!("{fault:?}")).or_default() += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let log = handle.join().expect("client thread");
    let (act, _) = wait_settled(&rig, &gate, &mut archives, "at the end");

    let (present, _) = placeholders(node(&rig, act));
    let lost: Vec<&String> = log
        .committed
        .iter()
        .filter(|n| !present.contains(*n))
        .collect();
    eprintln!(
        "failovers: {failovers} {kinds:?} in {} s; changes committed: {} of {} attempts; \
         on the active node ({}): {} placeholders; lost: {}",
        started.elapsed().as_secs(),
        log.committed.len(),
        log.attempts,
        NAMES[act],
        present.len(),
        lost.len()
    );
    eprintln!(
        "mean time of a committed change (kpbx process, commit, peer's ack): {} ms",
        log.ok_time.as_millis() / (log.committed.len().max(1) as u128)
    );
    eprintln!("client failures: {:?}", log.failures);
    eprintln!("archives reported: {}", archives.len());
    for a in &archives {
        eprintln!("  {a}");
    }
    for (name, d) in NAMES.iter().zip([&rig.a, &rig.b]) {
        eprintln!(
            "archive dirs of {name}: {:?}",
            archive_dirs(d)
                .iter()
                .filter_map(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
        );
    }
    eprintln!("{}\n{}", sync(&rig.a), sync(&rig.b));
    assert!(failovers >= 20, "{failovers} failovers");
    assert!(
        log.committed.len() >= ROUNDS,
        "the client committed only {} changes",
        log.committed.len()
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged changes are missing on the active node {}: {:?}\n{}\n{}",
        lost.len(),
        NAMES[act],
        &lost[..lost.len().min(20)],
        around(&rig, lost.first().map_or("", |n| n.as_str())),
        tails(&rig)
    );
    assert!(converged(&rig), "{}\n{}", sync(&rig.a), sync(&rig.b));
    assert_equal_stores(&rig);
}

/// Whether the LMDB file `data_mdb` holds a configuration object whose id
/// is `id` (opened from a copy, so the archive is left as it is).
fn archive_holds(data_mdb: &Path, id: &str) -> bool {
    let copy = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(copy.path().join("store")).expect("mkdir");
    std::fs::copy(data_mdb, copy.path().join("store/data.mdb")).expect("copy the archive");
    let env = common::raw_env(copy.path());
    let rtxn = env.read_txn().expect("read txn");
    let objects: heed::Database<heed::types::Bytes, heed::types::Bytes> = env
        .open_database(&rtxn, Some("objects"))
        .expect("open objects")
        .expect("objects database in the archive");
    let mut key = b"placeholder\0".to_vec();
    key.extend_from_slice(id.as_bytes());
    let found = objects.get(&rtxn, &key).expect("read").is_some();
    drop(rtxn);
    env.prepare_for_closing().wait();
    found
}

/// b holds its own settings and objects before it is paired: at pairing
/// they are archived in its data dir (a copy of the store and the
/// transactions a never had), and b ends up equal to a.
#[test]
fn pairing_a_secondary_with_data_archives_it() {
    let _g = one_at_a_time();
    let own = ["B_OWN_1", "B_OWN_2", "B_OWN_3"];
    let rig = Rig::up_with(
        "arc",
        |a, b| {
            a.ok(&["prov", "placeholder", "add", "name=FROM_A", "value=a"]);
            a.ok(&["system", "set", "location=rack a"]);
            b.ok(&["system", "set", "location=rack b"]);
            for id in own {
                b.ok(&[
                    "prov",
                    "placeholder",
                    "add",
                    &format!("name={id}"),
                    "value=b",
                ]);
            }
        },
        false,
    );
    let mut archives = BTreeSet::new();
    let (act, _) = wait_settled(&rig, &Mutex::new(()), &mut archives, "after pairing");
    assert_eq!(act, 0, "a is the coordinator and default active");
    let (sa, sb) = (sync(&rig.a), sync(&rig.b));
    eprintln!("a: {sa}\nb: {sb}");

    // b's old data is archived: a copy of its store and its transactions.
    let dirs = archive_dirs(&rig.b);
    eprintln!("archive dirs of b: {dirs:?}");
    let dir = dirs
        .iter()
        .find(|d| d.join("data.mdb").is_file() && d.join("transactions.txt").is_file())
        .unwrap_or_else(|| panic!("no archive with data.mdb and transactions.txt in {dirs:?}"));
    let text = std::fs::read_to_string(dir.join("transactions.txt")).expect("transactions.txt");
    eprintln!("{}/transactions.txt:\n{text}", dir.display());
    for id in own {
        assert!(
            text.contains(id),
            "the archived transactions do not name {id}"
        );
        assert!(
            archive_holds(&dir.join("data.mdb"), id),
            "the archived store lacks {id}"
        );
    }
    // The status names the latest archive (the first one, unless b had to
    // start again from a snapshot since).
    let reported = sb["last_archive"].as_str().unwrap_or_default();
    let root = rig.b.data_dir().join("archive");
    assert!(
        dirs.iter()
            .any(|d| reported.contains(&d.display().to_string()))
            && reported.contains(&root.display().to_string()),
        "b's status does not report an archive in {}: {sb}",
        root.display()
    );

    // b equals a, and its own objects are gone from its live store.
    assert!(converged(&rig), "a: {sa}\nb: {sb}");
    let (names_b, _) = placeholders(&rig.b);
    for id in own {
        assert!(!names_b.contains(id), "{id} is still live on b");
    }
    assert!(names_b.contains("FROM_A"), "{names_b:?}");
    assert_eq!(rig.b.setting("location")["value"], "rack a");
    assert_equal_stores(&rig);
}

/// A change the active node has committed but the passive node has not
/// stored yet, when the active hands the resource over (`kpbx ha switch`)
/// within the acknowledgement bound: `kpbx` may report it committed only
/// if the new active node holds it. The passive node is kept from
/// receiving the log (its sync TCP input from the active is dropped), so
/// the change waits for its acknowledgement when the switch comes.
#[test]
fn a_change_waiting_for_the_peer_at_a_switch_is_kept_or_not_confirmed() {
    let _g = one_at_a_time();
    let rig = Rig::up("hand");
    let mut archives = BTreeSet::new();
    let (act, _) = wait_settled(&rig, &Mutex::new(()), &mut archives, "after pairing");
    assert_eq!(act, 0);
    // b receives nothing more from a's sync listener; heartbeats (UDP)
    // still cross both paths.
    let block = "src 192.0.2.1/32 dst 192.0.2.2/32 proto tcp sport 7411 dir in";
    rig.lab
        .ip(&rig.b_ns, &format!("xfrm policy add {block} action block"));
    let socket = rig.a.socket.clone();
    let started = Instant::now();
    let commit = std::thread::spawn(move || {
        kpbx_at(
            &socket,
            &["prov", "placeholder", "add", "name=HANDOVER", "value=x"],
        )
    });
    // The change is stored on a and waits for b's acknowledgement (the
    // bound is 0.5 s).
    assert!(
        wait_until(Duration::from_millis(300), || sync(&rig.a)["waiting"] == 1),
        "the change does not wait for the peer: {}",
        sync(&rig.a)
    );
    // Its own reply is a change's too, so it may wait as well: only the
    // takeover below counts.
    let switch = rig.a.kpbx(&["ha", "switch"]);
    let switched = started.elapsed();
    eprintln!(
        "kpbx ha switch exit {:?}: {}",
        switch.status.code(),
        String::from_utf8_lossy(&switch.stderr)
    );
    // Past the bound the cluster goes asynchronous and confirms the change
    // anyway (as the issue allows); this test is about the switch coming
    // first.
    assert!(
        switched < Duration::from_millis(450),
        "the switch came {switched:?} after the change, too close to the 0.5 s bound"
    );
    let out = commit.join().expect("client thread");
    let confirmed = out.status.success();
    eprintln!(
        "kpbx exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wait_takeover(&rig, 1, "switch of a");
    rig.lab.ip(&rig.b_ns, &format!("xfrm policy del {block}"));
    let (act, _) = wait_settled(&rig, &Mutex::new(()), &mut archives, "after the switch");
    assert_eq!(act, 1);
    let (on_b, _) = placeholders(&rig.b);
    eprintln!(
        "confirmed: {confirmed}; on the active node b: {}; archives: {archives:?}",
        on_b.contains("HANDOVER")
    );
    assert!(
        !confirmed || on_b.contains("HANDOVER"),
        "kpbx reported HANDOVER committed, but the new active node b does not hold it \
         (a archived it when it rejoined): {archives:?}\n{}",
        tails(&rig)
    );
    assert_equal_stores(&rig);
}
