//! Bad input never panics and never loses data: malformed configuration,
//! damaged or foreign data dirs, garbage on the control socket. Each gives a
//! clear error and a distinct exit code.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::{Daemon, kpbxd_exit, raw_env};

const EXIT_CONFIG: i32 = 3;
const EXIT_STORE: i32 = 4;
const EXIT_BIND: i32 = 5;
const EXIT_LOCKED: i32 = 6;

fn no_panic(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn malformed_config_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "data_dir = /x\nthis is not a setting\n",
            "line 2: expected `key = value`",
        ),
        (
            "# comment\n\ndata_dri = /x\n",
            "line 3: unknown key \"data_dri\"",
        ),
        (
            "log_level = chatty\n",
            "line 1: log_level: \"chatty\" is not one of",
        ),
        (
            "http_listen = 0.0.0.0\n",
            "line 1: http_listen: \"0.0.0.0\" is not `off` or an address:port",
        ),
    ];
    for (text, needle) in cases {
        let path = dir.path().join("bad.conf");
        std::fs::write(&path, text).unwrap();
        let (code, err) = kpbxd_exit(&["--config", path.to_str().unwrap()]);
        assert_eq!(code, EXIT_CONFIG, "{text:?}: {err}");
        assert!(err.contains(needle), "{text:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        no_panic(&err);
        let (code, _) = kpbxd_exit(&["--config", path.to_str().unwrap(), "--check-config"]);
        assert_eq!(code, EXIT_CONFIG);
    }
    std::fs::write(dir.path().join("bin.conf"), [0xff, 0xfe, b'\n']).unwrap();
    let (code, err) = kpbxd_exit(&["--config", dir.path().join("bin.conf").to_str().unwrap()]);
    assert_eq!(
        (code, err.contains("not UTF-8")),
        (EXIT_CONFIG, true),
        "{err}"
    );
    let (code, err) = kpbxd_exit(&["--config", "/nonexistent/kpbxd.conf"]);
    assert_eq!(code, EXIT_CONFIG, "{err}");
    let (code, err) = kpbxd_exit(&["--bogus"]);
    assert_eq!(code, 2, "{err}");
}

/// Starts a daemon, commits two changes, stops it, and returns it.
fn daemon_with_data(dir: &std::path::Path) -> Daemon {
    let mut d = Daemon::new(dir);
    d.start();
    d.ok(&["system", "set", "hostname=keep-me"]);
    d.ok(&["system", "set", "location=lab"]);
    assert_eq!(d.stop(), Some(0));
    d
}

fn assert_data_intact(d: &mut Daemon) {
    d.start();
    let host = d.setting("hostname");
    assert_eq!(host["value"], "keep-me");
    assert!(d.kpbx(&["audit", "verify"]).status.success());
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn future_schema_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = daemon_with_data(dir.path());
    let env = raw_env(&d.data_dir());
    let mut wtxn = env.write_txn().unwrap();
    let meta: heed::Database<heed::types::Bytes, heed::types::Bytes> =
        env.open_database(&wtxn, Some("meta")).unwrap().unwrap();
    meta.put(&mut wtxn, b"schema", &99u32.to_be_bytes())
        .unwrap();
    wtxn.commit().unwrap();
    env.prepare_for_closing().wait();

    let data = std::fs::read(d.data_dir().join("store/data.mdb")).unwrap();
    let (code, err) = kpbxd_exit(&["--config", d.config.to_str().unwrap()]);
    assert_eq!(code, EXIT_STORE, "{err}");
    assert!(
        err.contains("schema version 99, newer than this kpbxd supports (1)"),
        "{err}"
    );
    no_panic(&err);
    assert_eq!(
        std::fs::read(d.data_dir().join("store/data.mdb")).unwrap(),
        data,
        "file untouched"
    );

    // Put the version back: everything is still there.
    let env = raw_env(&d.data_dir());
    let mut wtxn = env.write_txn().unwrap();
    let meta: heed::Database<heed::types::Bytes, heed::types::Bytes> =
        env.open_database(&wtxn, Some("meta")).unwrap().unwrap();
    meta.put(&mut wtxn, b"schema", &1u32.to_be_bytes()).unwrap();
    wtxn.commit().unwrap();
    env.prepare_for_closing().wait();
    assert_data_intact(&mut d);
}

#[test]
fn truncated_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = daemon_with_data(dir.path());
    let file = d.data_dir().join("store/data.mdb");
    let len = std::fs::metadata(&file).unwrap().len();
    for cut in [0, 100, 4096 + 7, len - 4096] {
        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let (code, err) = kpbxd_exit(&["--config", d.config.to_str().unwrap()]);
        assert_eq!(code, EXIT_STORE, "cut at {cut}: {err}");
        assert!(err.contains("store is corrupt"), "cut at {cut}: {err}");
        assert!(err.contains("data.mdb"), "names the file: {err}");
        no_panic(&err);
    }
}

#[test]
fn foreign_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::new(dir.path());
    std::fs::create_dir_all(d.data_dir().join("store")).unwrap();
    std::fs::write(d.data_dir().join("store/data.mdb"), vec![0x42; 1 << 16]).unwrap();
    let (code, err) = kpbxd_exit(&["--config", d.config.to_str().unwrap()]);
    assert_eq!(code, EXIT_STORE, "{err}");
    assert!(err.contains("is not a valid LMDB file"), "{err}");
    no_panic(&err);
}

#[test]
fn second_daemon_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    let (code, err) = kpbxd_exit(&["--config", d.config.to_str().unwrap()]);
    assert_eq!(code, EXIT_LOCKED, "{err}");
    assert!(err.contains("in use by another kpbxd"), "{err}");
    assert!(
        d.kpbx(&["status"]).status.success(),
        "first daemon unharmed"
    );
}

#[test]
fn unbindable_socket_is_a_bind_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::new(dir.path());
    // A directory where the socket file should go.
    std::fs::create_dir_all(&d.socket).unwrap();
    let (code, err) = kpbxd_exit(&["--config", d.config.to_str().unwrap()]);
    assert_eq!(code, EXIT_BIND, "{err}");
    assert!(err.contains("exists and is not a socket"), "{err}");
}

/// Sends raw bytes and returns what the daemon answered before closing.
fn raw_exchange(d: &Daemon, bytes: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    // End of input: a frame cut short here is truncated, not pending.
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn garbage_on_the_control_socket_is_answered_and_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    d.ok(&["system", "set", "hostname=before"]);

    let v = kpbxd::control::wire::VERSION;
    let mut huge = vec![b'K', b'P', v, 0];
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "not a kpbx control frame",
        ),
        (
            b"KP\x07\x00\x00\x00\x00\x01\x00".to_vec(),
            "unsupported control protocol version 7",
        ),
        (huge, "exceeds the limit"),
        (
            [&[b'K', b'P', v][..], b"\x00\x00\x00\x00\x03\xff\xff\xff"].concat(),
            "undecodable frame payload",
        ),
        (
            [&[b'K', b'P', v][..], b"\x00\x00\x00\x00\x02\x00\x00"].concat(),
            "unexpected bytes after the payload",
        ),
        (
            [&[b'K', b'P', v][..], b"\x00\x00\x00\x00\x10abc"].concat(),
            "truncated frame",
        ),
    ];
    for (bytes, needle) in cases {
        let answer = raw_exchange(&d, &bytes);
        let text = String::from_utf8_lossy(&answer);
        assert!(text.contains(needle), "{bytes:?} -> {text:?}");
    }
    // A client that connects and closes, and an empty write, are nothing.
    assert!(raw_exchange(&d, b"").is_empty());

    assert!(d.kpbx(&["status"]).status.success(), "daemon still serves");
    let host = d.setting("hostname");
    assert_eq!(host["value"], "before", "nothing lost");
    assert_eq!(d.json(&["status"])["audit_entries"], 1, "nothing added");
    let log = d.log();
    assert!(log.contains("sent a bad frame"), "{log}");
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn tampered_audit_record_fails_verify_naming_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    for v in ["a", "b", "c", "d"] {
        d.ok(&["system", "set", &format!("location={v}")]);
    }
    assert!(d.kpbx(&["audit", "verify"]).status.success());
    assert_eq!(d.stop(), Some(0));

    // Rewrite who made txid 2, as an intruder with file access would.
    let env = raw_env(&d.data_dir());
    let mut wtxn = env.write_txn().unwrap();
    let audit: heed::Database<heed::types::Bytes, heed::types::Bytes> =
        env.open_database(&wtxn, Some("audit")).unwrap().unwrap();
    let key = kpbxd::store::records::audit_key(2, 0);
    let raw = audit.get(&wtxn, &key).unwrap().unwrap().to_vec();
    let kpbxd::store::records::AuditRecord::V1 {
        mut body,
        prev_hash,
        hash,
    } = kpbxd::store::records::decode_audit(&raw).unwrap();
    body.user = "somebody-else".to_string();
    let forged = kpbxd::store::records::AuditRecord::V1 {
        body,
        prev_hash,
        hash,
    };
    audit
        .put(
            &mut wtxn,
            &key,
            &kpbxd::store::records::encode_audit(&forged),
        )
        .unwrap();
    wtxn.commit().unwrap();
    env.prepare_for_closing().wait();

    d.start();
    let out = d.kpbx(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("audit log damaged at entry 2.0: record altered"),
        "{err}"
    );
    let json = d.kpbx(&["audit", "verify", "--json"]);
    assert_eq!(json.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (v["ok"].clone(), v["first_bad"]["txid"].clone()),
        (false.into(), 2.into())
    );
    assert_eq!(v["entries"], 1, "entries before the bad one verified");
}
