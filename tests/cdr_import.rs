//! `kpbx cdr import` is no confused deputy (issue 17, item 7): the daemon
//! (root) reads only a file the console opened with its caller's rights and
//! passed over the socket; only regular files, bounded in size, one import
//! at a time, cancelled when the console goes away. Real daemon, real
//! `kpbx` run as another Unix user with `setpriv`, and a raw client that
//! speaks the control protocol without the console's own checks. Needs
//! root.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Daemon, kpbx_as, open_socket, wait_until};
use kpbxd::control::{Command, Reply, Request, fdpass, wire};

const MASTER: &[u8] = include_bytes!("fixtures/Master.csv");

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "tests/cdr_import.rs runs kpbx as another Unix user: run it as root"
    );
    assert!(
        Path::new("/usr/bin/setpriv").exists(),
        "setpriv is missing: apt-get install util-linux"
    );
}

fn start(dir: &Path) -> Daemon {
    let mut d = Daemon::new(dir);
    d.start();
    // Followed files are off: only imports fill the store.
    d.ok(&["system", "set", "cdr_master_csv=off", "cdr_queue_log=off"]);
    d
}

fn calls(d: &Daemon) -> u64 {
    d.json(&["cdr", "status"])["calls"].as_u64().unwrap()
}

/// One request over a raw connection, `file` passed with it if given.
fn raw(d: &Daemon, file: Option<&std::fs::File>, command: Command) -> (UnixStream, Reply) {
    let stream = UnixStream::connect(&d.socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let bytes = wire::encode_request(&Request { command });
    match file {
        Some(f) => fdpass::send_with_file(&stream, f, &bytes).unwrap(),
        None => (&stream).write_all(&bytes).unwrap(),
    }
    let reply = read_reply(&stream);
    (stream, reply)
}

fn read_reply(mut stream: &UnixStream) -> Reply {
    let mut header = [0u8; wire::HEADER_LEN];
    stream.read_exact(&mut header).unwrap();
    let len = wire::parse_header(&header, wire::MAX_REPLY).unwrap();
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).unwrap();
    wire::decode_reply(&payload).unwrap().reply
}

fn import(path: &str) -> Command {
    Command::CdrImport {
        callcenter: false,
        path: path.into(),
    }
}

fn error_text(reply: &Reply) -> String {
    match reply {
        Reply::Error(e) => e.message.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn a_file_the_caller_cannot_read_is_not_imported() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    open_socket(&d);
    d.ok(&["user", "add", "nobody", "role=supervisor"]);
    // Root's file, readable by root only.
    let secret = dir.path().join("secret-Master.csv");
    std::fs::write(&secret, MASTER).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = kpbx_as(
        &d,
        "nobody",
        &["cdr", "import", secret.to_str().unwrap()],
        "",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "imported a root-only file: {err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert_eq!(calls(&d), 0, "nothing of the root-only file is stored");
    // A missing file and an unreadable one look alike to the daemon: it
    // is never asked. The same file made readable imports.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = kpbx_as(
        &d,
        "nobody",
        &["cdr", "import", secret.to_str().unwrap()],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(calls(&d), 8);
}

#[test]
fn the_daemon_opens_no_path_and_reads_regular_files_only() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let file = dir.path().join("Master.csv");
    std::fs::write(&file, MASTER).unwrap();
    // A path alone (an old console, or a forged request) is refused.
    let (_s, r) = raw(&d, None, import(file.to_str().unwrap()));
    assert!(error_text(&r).contains("needs the file itself"), "{r:?}");
    assert_eq!(calls(&d), 0);
    // Devices and pipes are refused at once, by the console and by the
    // daemon when a client skips the console's check.
    let out = d.kpbx(&["cdr", "import", "/dev/zero"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
    let zero = std::fs::File::open("/dev/zero").unwrap();
    let t = Instant::now();
    let (_s, r) = raw(&d, Some(&zero), import("/dev/zero"));
    assert!(error_text(&r).contains("not a regular file"), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(2));
    let (rx, _tx) = std::io::pipe().unwrap();
    let (_s, r) = raw(
        &d,
        Some(&std::fs::File::from(std::os::fd::OwnedFd::from(rx))),
        import("pipe"),
    );
    assert!(error_text(&r).contains("not a regular file"), "{r:?}");
    // Over the size limit (a sparse file: no disk used).
    let big = dir.path().join("big.csv");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(kpbxd::control::IMPORT_MAX_BYTES + 1).unwrap();
    let out = d.kpbx(&["cdr", "import", big.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("import limit"));
    let (_s, r) = raw(&d, Some(&std::fs::File::open(&big).unwrap()), import("big"));
    assert!(error_text(&r).contains("import limit"), "{r:?}");
    // A descriptor sent with any other request is closed, not used.
    let (_s, r) = raw(
        &d,
        Some(&std::fs::File::open(&file).unwrap()),
        Command::Status,
    );
    assert!(matches!(r, Reply::Status(_)), "{r:?}");
    // The real thing works.
    let (_s, r) = raw(
        &d,
        Some(&std::fs::File::open(&file).unwrap()),
        import("Master.csv"),
    );
    assert!(matches!(r, Reply::Imported(ref i) if i.rows == 8), "{r:?}");
    // No import thread is left behind (it ends just after answering).
    wait_until(Duration::from_secs(2), "the import thread to end", || {
        import_threads(&d) == 0
    });
}

fn import_threads(d: &Daemon) -> usize {
    let tasks = format!("/proc/{}/task", d.pid());
    std::fs::read_dir(tasks)
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim() == "cdr-import")
        .count()
}

#[test]
fn an_import_runs_alone_and_ends_when_the_console_goes_away() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    // About 300 MB of calls: long enough to be interrupted.
    let big = dir.path().join("Master.csv");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let chunk: Vec<u8> = MASTER.repeat(64);
        while f.get_ref().metadata().unwrap().len() < 300 << 20 {
            f.write_all(&chunk).unwrap();
        }
        f.flush().unwrap();
    }
    let stream = UnixStream::connect(&d.socket).unwrap();
    let bytes = wire::encode_request(&Request {
        command: import("Master.csv"),
    });
    fdpass::send_with_file(&stream, std::fs::File::open(&big).unwrap(), &bytes).unwrap();
    wait_until(Duration::from_secs(10), "the import to start", || {
        import_threads(&d) > 0
    });
    // A second import waits its turn: refused while the first runs.
    let small = dir.path().join("small.csv");
    std::fs::write(&small, MASTER).unwrap();
    let (_s, r) = raw(
        &d,
        Some(&std::fs::File::open(&small).unwrap()),
        import("small"),
    );
    assert!(
        error_text(&r).contains("another cdr import is running"),
        "{r:?}"
    );
    // The console goes away (Ctrl-C): the import stops at its next read.
    drop(stream);
    wait_until(
        Duration::from_secs(5),
        "the import to stop after its console left",
        || import_threads(&d) == 0,
    );
    wait_until(
        Duration::from_secs(5),
        "the cancellation in the log",
        || d.log().contains("cancelled: the console went away"),
    );
    // And the next import runs.
    let (_s, r) = raw(
        &d,
        Some(&std::fs::File::open(&small).unwrap()),
        import("small"),
    );
    assert!(matches!(r, Reply::Imported(_)), "{r:?}");
}
