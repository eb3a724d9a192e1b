//! Issue 18, item 6: heartbeats must not wait for the event loop's heavy
//! work. Two real kpbxd processes in network namespaces (root and iproute2
//! required; the test fails, never skips, without them), the rig of
//! `tests/lab/rig.rs` (heartbeat 0.1 s, warning 0.3 s, out of service
//! 0.5 s). The passive node's namespace records the kernel receive stamp
//! of every heartbeat the active node sends on the sync path while the
//! active node imports 40,000 accounts in one transaction (about 0.9 s of
//! loop time in a release build, several seconds in a debug build).
//!
//! Bound: the longest gap between consecutive heartbeats stays below the
//! warning time (0.3 s, three heartbeat intervals), and the passive node
//! never takes over. Before the heartbeats had their own thread the gap
//! was the import's whole length and the passive node took over a healthy
//! node.

mod common;
mod lab;
#[path = "lab/rig.rs"]
mod rig;

use std::net::Ipv4Addr;
use std::time::Duration;

use rig::*;

/// Accounts in the import (one `prov account import`, one transaction).
const ACCOUNTS: usize = 40_000;
/// The rig's warning time: the bound on the largest heartbeat gap.
const BOUND: Duration = Duration::from_millis(300);

#[test]
fn heartbeats_keep_their_pace_during_a_large_import() {
    let _serial = one_at_a_time();
    let rig = Rig::up("hbgap");
    let a_sync: Ipv4Addr = "192.0.2.1".parse().expect("address");
    let log = HeartbeatLog::start(&rig.lab, &rig.b_ns, "sync0", a_sync);
    std::thread::sleep(Duration::from_millis(500));
    let before = log.max_gap(wall_now() - Duration::from_millis(400), wall_now());
    assert!(
        before < BOUND,
        "heartbeat gap {before:?} before the import: the rig itself is too slow"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("accounts.csv");
    let mut text = String::from("extension,sip_password,display_name\n");
    for i in 0..ACCOUNTS {
        text.push_str(&format!("{},pw-{i},User {i}\n", 500_000 + i));
    }
    std::fs::write(&csv, text).expect("csv");
    let t0 = wall_now();
    let started = std::time::Instant::now();
    let out = rig
        .a
        .kpbx(&["prov", "account", "import", csv.to_str().expect("path")]);
    let took = started.elapsed();
    // One more interval so that the heartbeat after the import is seen.
    std::thread::sleep(Duration::from_millis(300));
    let gap = log.max_gap(t0, wall_now());
    let (sa, sb) = (status(&rig.a), status(&rig.b));
    println!(
        "import of {ACCOUNTS} accounts took {} ms; largest heartbeat gap {} ms \
         ({} heartbeats seen); a {}, b {}",
        took.as_millis(),
        gap.as_millis(),
        log.arrivals().len(),
        sa["state"],
        sb["state"]
    );
    assert!(
        gap < BOUND,
        "largest heartbeat gap during the import {} ms (import {} ms), bound {} ms\n{}",
        gap.as_millis(),
        took.as_millis(),
        BOUND.as_millis(),
        rig.logs()
    );
    assert!(
        out.status.success(),
        "the import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sa["state"], "active", "a lost the resource\n{}", rig.logs());
    assert_eq!(sb["state"], "passive", "b took over\n{}", rig.logs());
    assert!(
        !rig.b.log().contains("peer out of service"),
        "b saw a healthy peer out of service\n{}",
        rig.logs()
    );
}
