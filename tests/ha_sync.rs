//! HA data sync with two real kpbxd processes in network namespaces (root
//! and iproute2 required; every test fails, never skips, without them).
//! The rig is `tests/lab/rig.rs` (heartbeat 0.1 s, out of service 0.5 s).

mod common;
mod lab;
#[path = "lab/rig.rs"]
mod rig;

use std::time::Duration;

use lab::wait_until;
use rig::*;

fn sync(d: &common::Daemon) -> serde_json::Value {
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
