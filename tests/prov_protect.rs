//! Protecting the credentials: scanning addresses are blocked on HTTP and
//! TFTP while real phones go on, a User-Agent naming another MAC is
//! refused, and the fetch log and the unassigned devices are reported.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use std::process::Command;

use common::Daemon;

/// curl from a given loopback source address; returns (HTTP status or
/// curl's exit code as negative, body).
fn curl(source: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-s", "--interface", source, "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl (apt-get install curl; make test does it as root)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "000"));
    match code.parse::<i32>() {
        Ok(c) if c > 0 => (c, body.to_string()),
        _ => (-out.status.code().unwrap_or(-1), body.to_string()),
    }
}

#[test]
fn scanners_are_blocked_phones_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::with(
        dir.path(),
        &[
            ("http_listen", "127.0.0.1:0"),
            ("tftp_listen", "127.0.0.1:0"),
        ],
    );
    d.start();
    d.ok(&[
        "system",
        "set",
        "prov_scan_misses=4",
        "prov_scan_window=60",
        "prov_scan_block=600",
    ]);
    d.ok(&[
        "prov",
        "account",
        "add",
        "extension=201",
        "sip_password=guarded",
    ]);
    d.ok(&[
        "prov",
        "device",
        "add",
        "mac=00:15:65:aa:bb:01",
        "model=Yealink-T4x",
        "template=yealink-t4x",
        "account=201",
    ]);
    let http = format!("http://{}/provisioning", d.listen("http"));
    let tftp = format!("tftp://{}", d.listen("tftp"));
    let phone = "127.0.0.1";
    let scanner = "127.0.0.2";

    // The User-Agent's MAC must be the file's.
    let yealink = |mac: &str| format!("Yealink SIP-T46G 66.86.0.15 {mac}");
    let (code, body) = curl(
        phone,
        &[
            "-A",
            &yealink("00:15:65:aa:bb:01"),
            &format!("{http}/001565aabb01.cfg"),
        ],
    );
    assert_eq!(code, 200);
    assert!(body.contains("guarded"));
    let (code, _) = curl(
        phone,
        &[
            "-A",
            &yealink("00:15:65:aa:bb:02"),
            &format!("{http}/001565aabb01.cfg"),
        ],
    );
    assert_eq!(code, 403, "a phone asking for another phone's file");
    let (code, _) = curl(
        phone,
        &[
            "-A",
            &yealink("00:15:65:aa:bb:02"),
            &format!("{http}/y000000000066.cfg"),
        ],
    );
    assert_eq!(code, 200, "model-wide files belong to no device");

    // A scanner walks MACs: four misses block it, on HTTP and TFTP alike.
    for i in 0..4 {
        let (code, _) = curl(scanner, &[&format!("{http}/00156500{i:04x}.cfg")]);
        assert_eq!(code, 404);
    }
    let (code, _) = curl(scanner, &[&format!("{http}/001565aabb01.cfg")]);
    assert!(code != 200, "the blocked address gets nothing (got {code})");
    let (code, body) = curl(scanner, &["-o", "-", &format!("{tftp}/001565aabb01.cfg")]);
    assert!(
        code != 200 && !body.contains("guarded"),
        "tftp too (got {code})"
    );

    // The real phone goes on.
    let (code, _) = curl(phone, &[&format!("{http}/001565aabb01.cfg")]);
    assert_eq!(code, 200);
    let out = Command::new("curl")
        .args([
            "-s",
            "--interface",
            phone,
            &format!("{tftp}/001565aabb01.cfg"),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("guarded"));

    // What the console sees.
    let unknown = d.json(&["prov", "unknown"]);
    let macs: Vec<&str> = unknown["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["mac"].as_str().unwrap())
        .collect();
    assert_eq!(macs.len(), 4, "{unknown}");
    assert!(macs.contains(&"001565000003"));
    assert_eq!(unknown["blocked"][0]["address"], scanner);
    // A TFTP transfer is logged when the server handles the last ACK,
    // which may come just after the client exits.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let log = loop {
        let log = d.json(&["prov", "log", "00:15:65:aa:bb:01"]);
        let sent = log
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["protocol"] == "tftp" && f["result"] == "sent" && f["address"] == phone);
        if sent {
            break log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no tftp fetch logged: {log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let rows = log.as_array().unwrap();
    assert!(
        rows.iter()
            .any(|f| f["protocol"] == "http" && f["result"] == "403"),
        "{log}"
    );
    assert!(
        rows.iter().any(|f| f["user_agent"]
            .as_str()
            .unwrap()
            .contains("00:15:65:aa:bb:01")),
        "{log}"
    );
    let table = d.ok(&["prov", "log"]);
    assert!(table.starts_with("TIME"), "{table}");
    assert!(!d.log().contains("guarded"), "no secrets in the log");
    assert_eq!(d.stop(), Some(0));
}

/// Issue 21: a configured device that gets no file (disabled, or without
/// an account) is counted and listed with the reason, and its fetches are
/// its own: it is never listed among the unassigned devices.
#[test]
fn devices_without_files_are_counted_and_never_unassigned() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::with(dir.path(), &[("http_listen", "127.0.0.1:0")]);
    d.start();
    d.ok(&["prov", "account", "add", "extension=201", "sip_password=pw"]);
    d.ok(&[
        "prov",
        "device",
        "add",
        "mac=00:15:65:aa:bb:01",
        "model=Yealink-T4x",
        "template=yealink-t4x",
        "account=201",
        "enabled=no",
    ]);
    d.ok(&[
        "prov",
        "device",
        "add",
        "mac=00:15:65:aa:bb:02",
        "model=Yealink-T4x",
        "template=yealink-t4x",
    ]);
    let files = d.json(&["prov", "files"]);
    let idle: Vec<&str> = files["idle"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(idle.len(), 2, "{files}");
    assert!(
        idle.iter()
            .any(|p| p.contains("001565AABB01") && p.contains("disabled")),
        "{files}"
    );
    assert!(
        idle.iter()
            .any(|p| p.contains("001565AABB02") && p.contains("no account")),
        "{files}"
    );
    let text = d.ok(&["prov", "files"]);
    assert!(text.contains("no file by configuration"), "{text}");
    let status = d.json(&["status"]);
    let prov = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "provisioning")
        .unwrap();
    assert!(
        prov["detail"]
            .as_str()
            .unwrap()
            .contains("2 devices without files"),
        "{prov}"
    );
    assert_eq!(
        prov["state"], "running",
        "configuration, not a fault: {prov}"
    );

    // The disabled phone asks anyway: 404, in its own fetch log.
    let http = format!("http://{}/provisioning", d.listen("http"));
    let (code, _) = curl("127.0.0.1", &[&format!("{http}/001565aabb01.cfg")]);
    assert_eq!(code, 404);
    let unknown = d.json(&["prov", "unknown"]);
    assert!(
        unknown["devices"].as_array().unwrap().is_empty(),
        "a configured device is not unassigned: {unknown}"
    );
    let fetches = d.ok(&["prov", "log", "00:15:65:aa:bb:01"]);
    assert!(fetches.contains("001565aabb01.cfg"), "{fetches}");
    assert_eq!(d.stop(), Some(0));
}
