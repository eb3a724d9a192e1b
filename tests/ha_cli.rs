//! `kpbx ha` without namespaces: configuration rules, masking, audit, and a
//! runtime that cannot start (missing interface) reported as `failed`.

mod common;

use common::Daemon;

fn configure(d: &Daemon, fields: &[&str]) -> std::process::Output {
    let mut args = vec!["ha", "configure"];
    args.extend_from_slice(fields);
    d.kpbx(&args)
}

const GOOD: &[&str] = &[
    "role=enabled",
    "interface=kpbxnope0",
    "local_ip=198.51.100.2",
    "remote_ip=198.51.100.1",
    "sync_interface=kpbxnope1",
    "sync_local_ip=192.0.2.2",
    "sync_remote_ip=192.0.2.1",
    "resources=198.51.100.10/24@kpbxnope0",
    "pairing_code=correct-horse",
    "heartbeat_interval=0.1",
    "keepalive_warning=0.3",
    "keepalive_out_of_service=0.5",
    "init_timeout=2",
];

#[test]
fn configure_refuses_with_reasons_masks_and_audits() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();

    let h = d.json(&["ha", "status"]);
    assert_eq!(h["state"], "disabled", "{h}");
    assert_eq!(h["role"], "disabled");
    let out = d.kpbx(&["ha", "switch"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("HA is not running"));

    for (extra, reason) in [
        (
            "resources=198.51.101.10/24@kpbxnope0",
            "resource IP 198.51.101.10 is not in the interface's subnet",
        ),
        (
            "sync_interface=kpbxnope0",
            "sync interface must differ from the LAN interface",
        ),
        (
            "keepalive_out_of_service=0.2",
            "out-of-service threshold must exceed 2 x heartbeat interval",
        ),
        ("init_timeout=0.1", "init timeout must be at least"),
        ("role=leader", "must be disabled, enabled or coordinator"),
        ("heartbeat_interval=fast", "not a number of seconds"),
        ("serial_source=file:relative", "file:/ABSOLUTE/PATH"),
        ("colour=blue", "ha has no field \"colour\""),
    ] {
        let key = extra.split('=').next().unwrap();
        let mut fields: Vec<&str> = GOOD
            .iter()
            .copied()
            .filter(|f| !f.starts_with(&format!("{key}=")))
            .collect();
        fields.push(extra);
        let out = configure(&d, &fields);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra} accepted");
        assert!(err.contains(reason), "{extra}: {err}");
    }
    assert_eq!(d.json(&["ha", "show"])[0]["role"], "disabled");

    std::fs::write(dir.path().join("serial"), "KP-CLI-1\n").unwrap();
    let serial = format!("serial_source=file:{}", dir.path().join("serial").display());
    let mut good = GOOD.to_vec();
    good.push(&serial);
    let out = configure(&d, &good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = d.json(&["ha", "show"]);
    assert_eq!(show[0]["pairing_code"], "********", "{show}");
    assert_eq!(show[0]["keepalive_out_of_service"], "0.5");
    assert!(!show.to_string().contains("correct-horse"));
    let audit = d.json(&["audit", "list", "--limit", "20"]);
    assert_eq!(audit[0]["object_type"], "ha");
    assert!(!audit.to_string().contains("correct-horse"), "{audit}");

    // The interfaces do not exist: the runtime reports why it is not running.
    let ok = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        d.json(&["ha", "status"])["state"] == "failed"
    });
    let h = d.json(&["ha", "status"]);
    assert!(ok, "{h}");
    assert!(h["detail"].as_str().unwrap().contains("kpbxnope0"), "{h}");
    let st = d.json(&["status"]);
    let svc = st["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ha")
        .unwrap()
        .clone();
    assert_eq!(svc["state"], "failed", "{svc}");

    // Partial changes keep the other fields; disabling needs nothing else.
    assert!(configure(&d, &["role=disabled"]).status.success());
    let show = d.json(&["ha", "show"]);
    assert_eq!(show[0]["role"], "disabled");
    assert_eq!(show[0]["interface"], "kpbxnope0");
    let ok = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        d.json(&["ha", "status"])["state"] == "disabled"
    });
    assert!(ok);
    assert_eq!(d.stop(), Some(0));
}
