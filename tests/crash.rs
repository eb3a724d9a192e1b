//! Crash safety: a client commits changes in a loop while the daemon is
//! killed with SIGKILL at random moments. After every restart each change
//! the CLI reported as committed is present with its audit entry, and the
//! audit chain verifies.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Daemon, kpbx_at};

const KILLS: usize = 24;

#[test]
fn acknowledged_commits_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();

    // txid -> value, for every commit the CLI acknowledged.
    let acked: Arc<Mutex<BTreeMap<u64, String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    // Held by the writer around each commit and by the checker while it
    // reads, so that a check sees one consistent moment.
    let gate: Arc<Mutex<()>> = Arc::default();
    let writer = {
        let (acked, stop, socket, gate) =
            (acked.clone(), stop.clone(), d.socket.clone(), gate.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let mut attempts = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && attempts < 900 {
                attempts += 1;
                let value = format!("v{attempts}");
                let _held = gate.lock().unwrap();
                let out = kpbx_at(
                    &socket,
                    &["system", "set", &format!("location={value}"), "--json"],
                );
                if out.status.success() {
                    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                    let txid = reply["txid"].as_u64().expect("a txid for a real change");
                    acked.lock().unwrap().insert(txid, value);
                } else {
                    // Daemon down (exit 3) or killed mid-request (exit 4).
                    let code = out.status.code();
                    assert!(
                        matches!(code, Some(3) | Some(4)),
                        "unexpected failure {code:?}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            attempts
        })
    };

    let mut seed = 0x853c49e6748fea9bu64 ^ u64::from(std::process::id());
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for round in 0..KILLS {
        std::thread::sleep(Duration::from_millis(20 + rand(200)));
        d.kill9();
        std::thread::sleep(Duration::from_millis(rand(30)));
        d.start();
        let _held = gate.lock().unwrap();
        check(&d, &acked.lock().unwrap().clone(), round);
    }
    stop.store(true, Ordering::Relaxed);
    let attempts = writer.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    check(&d, &acked, KILLS);
    assert!(
        acked.len() >= KILLS,
        "too few commits to mean anything: {} of {attempts}",
        acked.len()
    );
    assert_eq!(d.stop(), Some(0));
}

/// Every acknowledged txid is in the audit log with the value it set, the
/// current value is the newest logged one, and the chain verifies.
fn check(d: &Daemon, acked: &BTreeMap<u64, String>, round: usize) {
    let verify = d.kpbx(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "round {round}: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // One commit is one entry; the writer stays below the page size.
    let log = d.json(&["audit", "list", "--limit", "1000"]);
    let log = log.as_array().unwrap();
    assert!(log.len() < 1000, "test wrote more than one page of entries");
    let by_txid: BTreeMap<u64, &serde_json::Value> = log
        .iter()
        .map(|e| (e["txid"].as_u64().unwrap(), e))
        .collect();
    for (&txid, value) in acked {
        let entry = by_txid
            .get(&txid)
            .unwrap_or_else(|| panic!("round {round}: txid {txid} has no audit entry"));
        assert_eq!(entry["object_id"], "location", "round {round} txid {txid}");
        assert_eq!(
            entry["after"]["value"],
            value.as_str(),
            "round {round} txid {txid}"
        );
    }
    let location = d.setting("location");
    if let Some((&last, _)) = acked.last_key_value() {
        assert!(
            log[0]["txid"].as_u64().unwrap() >= last,
            "round {round}: log ends before txid {last}"
        );
    }
    if let Some(newest) = log.first() {
        assert_eq!(
            location["value"], newest["after"]["value"],
            "round {round}: state matches newest entry"
        );
    }
}

/// Issue 21: the log survives a crash and a respawn (a start appends), each
/// line carries the wall-clock time with its offset, and a flood of fetches
/// is summarised instead of logged line by line.
#[test]
fn the_log_survives_kill_9_and_carries_the_wall_clock() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::with(dir.path(), &[("log_level", "info")]);
    d.start();
    d.ok(&["system", "set", "timezone=Europe/Rome"]);
    d.ok(&["system", "set", "location=before-the-crash"]);
    let first = d.log();
    assert!(!first.is_empty());
    d.kill9();
    d.start();
    let log = d.log();
    assert!(
        log.starts_with(&first),
        "the previous run's lines are kept:\n{log}"
    );
    assert!(log.len() > first.len(), "the respawn appended");
    // Every line starts with a date, a time and an offset: after the
    // `timezone` setting took effect, Rome's (+01:00 or +02:00).
    let rome = jiff::tz::TimeZone::get("Europe/Rome").unwrap();
    let offset = jiff::Timestamp::now()
        .to_zoned(rome)
        .strftime("%:z")
        .to_string();
    let last = log.lines().last().unwrap();
    assert!(
        last.get(24..30) == Some(offset.as_str()),
        "wall clock with the box's offset {offset}: {last:?}"
    );
    for line in log.lines().filter(|l| l.contains(" INFO ")) {
        let date = line.get(..10).unwrap_or_default();
        assert!(
            jiff::civil::Date::strptime("%Y-%m-%d", date).is_ok(),
            "not a wall-clock line: {line:?}"
        );
    }
    assert_eq!(d.stop(), Some(0));
}

/// Issue 21: the log is rotated at `log_max_kb`, so it is bounded on flash
/// whatever is logged; the rotated files are kept (.1 to .3).
#[test]
fn the_log_is_rotated_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::with(dir.path(), &[("log_level", "debug"), ("log_max_kb", "16")]);
    d.start();
    let third = dir.path().join("kpbxd.log.3");
    let started = Instant::now();
    let mut i = 0;
    while !third.exists() {
        assert!(
            i < 5000 && started.elapsed() < Duration::from_secs(90),
            "no third rotation after {i} changes"
        );
        d.ok(&["system", "set", &format!("location=rotation-{i:04}")]);
        i += 1;
    }
    for _ in 0..50 {
        d.ok(&["system", "set", &format!("location=rotation-{i:04}")]);
        i += 1;
    }
    assert_eq!(d.stop(), Some(0));
    let mut total = 0;
    for name in ["kpbxd.log", "kpbxd.log.1", "kpbxd.log.2", "kpbxd.log.3"] {
        let len = std::fs::metadata(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .len();
        assert!(len <= 16 * 1024, "{name}: {len} bytes");
        total += len;
    }
    assert!(!dir.path().join("kpbxd.log.4").exists());
    assert!(total <= 64 * 1024);
}

/// Issue 21: a flood of fetches does not flood the log. Each fetch is in
/// the per-device fetch log; the daemon log shows a few one by one per
/// window and then a count.
#[test]
fn a_flood_of_fetches_is_summarised_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::with(
        dir.path(),
        &[("log_level", "info"), ("http_listen", "127.0.0.1:0")],
    );
    d.start();
    let base = format!("http://{}/provisioning", d.listen("http"));
    let before = d.log().lines().count();
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}\\n"])
        .arg(format!("{base}/flood[1-3000].cfg"))
        .output()
        .expect("curl (apt-get install curl)");
    let codes = String::from_utf8_lossy(&out.stdout);
    assert_eq!(codes.lines().filter(|c| *c == "404").count(), 3000);
    let log = d.log();
    let lines = log.lines().count() - before;
    assert!(
        lines <= 3 * 20 + 5,
        "{lines} log lines for 3000 fetches:\n{log}"
    );
    assert_eq!(d.stop(), Some(0));
}
