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
