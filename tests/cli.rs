//! The console CLI against a real daemon: every command, both output modes,
//! and the exit-code conventions.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use common::{Daemon, kpbx_at};

#[test]
fn status_answers_with_stable_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    let s = d.json(&["status"]);
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["pid"], d.pid());
    assert_eq!(s["data_dir"], d.data_dir().display().to_string());
    assert_eq!(s["schema"], 1);
    assert_eq!(s["audit_entries"], 0);
    assert!(s["uptime_secs"].is_u64());
    let services: Vec<_> = s["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].clone())
        .collect();
    assert_eq!(
        services,
        [
            "store",
            "control",
            "provisioning",
            "tftp",
            "http",
            "https",
            "ha",
            "sip_pnp",
            "mgmt",
            "ha_sync"
        ]
    );
    assert_eq!(s["services"][6]["state"], "disabled", "ha not configured");
    assert_eq!(s["services"][7]["state"], "disabled", "sip_pnp = off");
    assert_eq!(s["services"][3]["state"], "disabled", "tftp_listen = off");
    assert_eq!(s["services"][9]["state"], "idle", "no HA peer");
    let text = d.ok(&["status"]);
    assert!(text.contains("control       running"), "{text}");
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn settings_changes_are_committed_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();

    let out = d.ok(&["system", "set", "hostname=PBX-1", "location=Rack 7"]);
    assert_eq!(
        out,
        "committed txid 1\n  set hostname to \"pbx-1\"\n  set location to \"Rack 7\"\n"
    );
    let c = d.json(&["system", "set", "hostname=pbx-2"]);
    assert_eq!(c["txid"], 2);
    assert_eq!(c["changes"][0]["action"], "update");
    assert_eq!(
        d.ok(&["system", "set", "hostname=pbx-2"]),
        "nothing changed\n"
    );

    let hostname = d.setting("hostname");
    assert_eq!(hostname["value"], "pbx-2");
    assert_eq!(hostname["is_default"], false);

    let c = d.json(&["system", "unset", "hostname", "timezone"]);
    assert_eq!(
        c["txid"], 3,
        "unset of a default key is a no-op inside the transaction"
    );
    assert_eq!(c["changes"].as_array().unwrap().len(), 1);

    let log = d.json(&["audit", "list", "--limit", "20"]);
    let rows: Vec<(u64, &str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["txid"].as_u64().unwrap(),
                e["action"].as_str().unwrap(),
                e["object_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (3, "delete", "hostname"),
            (2, "update", "hostname"),
            (1, "create", "location"),
            (1, "create", "hostname")
        ]
    );
    let update = &log[1];
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    assert_eq!(update["user"], me.as_str(), "SO_PEERCRED user name");
    assert_eq!(update["source"], "console");
    assert_eq!(update["object_type"], "setting");
    assert_eq!(update["before"]["value"], "pbx-1");
    assert_eq!(update["after"]["value"], "pbx-2");
    assert!(update["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        d.json(&["audit", "list", "--limit", "1"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let table = d.ok(&["audit", "list", "--limit", "20"]);
    assert!(table.starts_with("TXID  TIME"), "{table}");
    // Bare: the current month, as a page.
    let month = d.ok(&["audit", "list"]);
    assert!(month.starts_with("TXID  DAY  TIME"), "{month}");
    assert!(month.contains("set location to \"Rack 7\""), "{month}");
    assert_eq!(
        d.ok(&["audit", "verify"]),
        "audit log intact: 4 entries verified\n"
    );

    // Log lines name objects, never values.
    let log = d.log();
    assert!(log.contains("txid 2 by"), "{log}");
    assert!(!log.contains("pbx-2"), "{log}");
}

#[test]
fn refusals_change_nothing_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    for (args, message) in [
        (
            &["system", "set", "sip_port=0"][..],
            "kpbx: sip_port: \"0\" is not a port number 1-65535\n",
        ),
        (
            &["system", "set", "hostname=ok", "colour=red"],
            "kpbx: unknown setting \"colour\"",
        ),
        (
            &["system", "set", "timezone=Mars/Base"],
            "kpbx: timezone: \"Mars/Base\" is not a known IANA time zone\n",
        ),
        (
            &["system", "unset", "nope"],
            "kpbx: unknown setting \"nope\"\n",
        ),
    ] {
        let out = d.kpbx(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.starts_with(message), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one-line error: {err}");
    }
    assert_eq!(d.json(&["status"])["audit_entries"], 0);
}

#[test]
fn usage_errors_exit_2_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    for args in [
        &["frobnicate"][..],
        &["audit", "list", "--limit", "0"],
        &["system", "set"],
    ] {
        let out = kpbx_at(&socket, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);
    }
    let out = kpbx_at(&socket, &["audit", "--help"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("kpbx audit verify")
    );
}

#[test]
fn unreachable_daemon_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = kpbx_at(&dir.path().join("none.sock"), &["status"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("kpbx: cannot reach kpbxd at"), "{err}");
    // And how to point the console at the daemon.
    for hint in ["--socket", "KPBX_SOCKET", "var/kpbxd.sock"] {
        assert!(err.contains(hint), "no {hint} in {err}");
    }
}

#[test]
fn a_mistyped_kind_is_a_usage_error_naming_the_provisioning_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    for args in [
        &["prov", "devic", "list"][..],
        &["prov", "task", "list"],
        &["prov", "mail", "set", "x", "server=a"],
        &["prov", "devic", "import", "/dev/null"],
    ] {
        let out = kpbx_at(&socket, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("known: tenant, account,"), "{err}");
        assert!(!err.contains("task") || args[1] == "task", "{err}");
        assert!(!err.contains("mail,"), "{err}");
    }
}

#[test]
fn a_list_of_one_is_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    d.ok(&["user", "add", "alice", "role=supervisor"]);
    d.ok(&["system", "set", "multitenant=on"]);
    d.ok(&[
        "prov",
        "tenant",
        "add",
        "uuid=6f1c2a52-0000-4000-8000-000000000001",
        "name=T",
    ]);
    for (args, header) in [
        (&["user", "list"][..], ["ID", "ROLE", "TENANT"]),
        (&["prov", "tenant", "list"], ["ID", "BUILTIN", "NAME"]),
    ] {
        let out = d.ok(args);
        let first = out.lines().next().unwrap_or_default();
        for h in header {
            assert!(
                first.contains(h),
                "{args:?}: no {h} in the header of\n{out}"
            );
        }
        assert_eq!(
            out.lines().count(),
            2,
            "{args:?}: header and one row\n{out}"
        );
    }
    // `show` of one object stays a key/value record.
    let out = d.ok(&["prov", "tenant", "list"]);
    let id = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let show = d.ok(&["prov", "tenant", "show", id]);
    assert!(show.starts_with("type"), "{show}");
    // Roles list their permissions.
    let roles = d.ok(&["role", "list"]);
    assert!(
        roles.lines().next().unwrap().contains("PERMISSIONS"),
        "{roles}"
    );
    assert!(roles.contains("cdr:write"), "{roles}");
}

#[test]
fn control_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(d.stop(), Some(0));
    assert!(!d.socket.exists(), "socket removed on clean stop");
}

#[test]
fn kpbxd_called_kpbx_is_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    let link = dir.path().join("kpbx");
    std::os::unix::fs::symlink(common::KPBXD, &link).unwrap();
    let out = std::process::Command::new(&link)
        .args(["--socket", d.socket.to_str().unwrap(), "status", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["pid"], d.pid());
}

/// Issue 21: every time the console shows is in the box's zone (the
/// `timezone` setting, sent by the daemon with each answer), whatever the
/// console's own `TZ`, and the zone is named. A call at 00:30 on
/// 1 December in Rome is 23:30 on 30 November in UTC: the month boundary
/// is where a wrong zone shows.
#[test]
fn console_times_are_in_the_box_zone() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    d.ok(&["system", "set", "timezone=Europe/Rome"]);
    d.ok(&["system", "set", "cdr_master_csv=off", "cdr_queue_log=off"]);
    // Master.csv stamps are in the box's zone (Asterisk writes local time).
    let csv = dir.path().join("Master.csv");
    std::fs::write(
        &csv,
        "\"\",\"201\",\"202\",\"from-internal\",\"\"\"A\"\" <201>\",\"PJSIP/201-1\",\"PJSIP/202-2\",\
         \"Dial\",\"PJSIP/202\",\"2026-12-01 00:30:00\",\"2026-12-01 00:30:04\",\
         \"2026-12-01 00:31:04\",64,60,\"ANSWERED\",\"DOCUMENTATION\",\"1764545400.1\",\"\",\"\",\
         \"1764545400.1\",1\n",
    )
    .unwrap();
    let kpbx_utc = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kpbx"))
            .env("TZ", "UTC")
            .arg("--socket")
            .arg(&d.socket)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "kpbx {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    kpbx_utc(&["cdr", "import", csv.to_str().unwrap()]);
    let status = kpbx_utc(&["cdr", "status"]);
    assert!(
        status.contains("oldest 2026-12-01 00:30:00"),
        "box time, not UTC: {status}"
    );
    assert!(status.contains("times in        Europe/Rome"), "{status}");

    // The audit list: the entries just made, at Rome's time of day.
    let rome = jiff::tz::TimeZone::get("Europe/Rome").unwrap();
    let now = jiff::Timestamp::now();
    let month = now.to_zoned(rome.clone()).strftime("%Y-%m").to_string();
    let list = kpbx_utc(&["audit", "list", "--month", &month]);
    assert!(list.contains("times in Europe/Rome"), "{list}");
    let expected: Vec<String> = [now - jiff::SignedDuration::from_secs(60), now]
        .iter()
        .map(|t| {
            t.to_zoned(rome.clone())
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        })
        .collect();
    assert!(
        expected.iter().any(|e| list.contains(e.as_str())),
        "expected Rome time {expected:?} in {list}"
    );
    let status = kpbx_utc(&["status"]);
    assert!(
        status.contains("Europe/Rome"),
        "started names the zone: {status}"
    );
    assert_eq!(d.stop(), Some(0));
}

/// Issue 21: `role show NAME` shows one role, built-in or custom, with its
/// permissions; an unknown name exits 1.
#[test]
fn role_show_names_the_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    d.ok(&[
        "role",
        "add",
        "clerk",
        "permissions=provisioning:read,provisioning:write",
    ]);
    let clerk = d.ok(&["role", "show", "clerk"]);
    assert!(clerk.contains("provisioning:write"), "{clerk}");
    assert!(!clerk.contains("supervisor"), "{clerk}");
    let json = d.json(&["role", "show", "supervisor"]);
    assert_eq!(json[0]["id"], "supervisor", "{json}");
    assert_eq!(json[0]["permissions"], "system:read,cdr:write", "{json}");
    let out = d.kpbx(&["role", "show", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no role \"nobody\""));
    assert_eq!(d.stop(), Some(0));
}

/// `kpbx --help | head`: a reader that goes away is not the command's
/// failure. Output to a pipe nobody reads (its read end closed before the
/// start, so every write fails with EPIPE) is dropped without a panic; the
/// exit code is the command's own.
#[test]
fn output_to_a_closed_pipe_is_dropped_without_a_panic() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    let socket = d.socket.to_str().unwrap().to_string();
    let closed_pipe = || {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        Stdio::from(write)
    };
    let cases: [(&[&str], bool, i32); 4] = [
        (&["--help"], true, 0),
        (&["--version"], true, 0),
        (&["--socket", &socket, "status"], true, 0),
        // A usage error whose message goes to a closed standard error.
        (&["no-such-command"], false, 2),
    ];
    for (args, stdout_closed, code) in cases {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kpbx"));
        cmd.args(args).stdin(Stdio::null());
        if stdout_closed {
            cmd.stdout(closed_pipe()).stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::piped()).stderr(closed_pipe());
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "kpbx {args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(code), "kpbx {args:?}: {out:?}");
    }
}
