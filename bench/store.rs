//! `make bench`, foundation part: durable audited commits per second, idle
//! RSS and binary size.
//!
//! Commits are measured twice: in-process through `Store::commit` (one
//! object and its audit entry per LMDB transaction, fsync'd), and end to end
//! through a running daemon's control socket. The anchor, run in the same
//! process on the same file system, is what an appliance would otherwise
//! use: SQLite with `journal_mode=WAL, synchronous=FULL`, one row per
//! transaction (via python3's sqlite3 module). Ratios > 1 mean kpbxd is
//! faster.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kpbxd::clock::{Clock, SystemClock};
use kpbxd::control::{Command as Cmd, Reply, Request, wire};
use kpbxd::model::{Change, Object, Origin, Setting, Source};
use kpbxd::store::Store;

const COMMITS: usize = 2000;
const RUNS: usize = 3;

fn main() {
    let dir = tempfile::tempdir_in(bench_dir()).expect("temp dir");
    println!(
        "== store: durable audited commits (1 object + its audit entry per transaction), {COMMITS} per run, median of {RUNS}"
    );
    let inproc = median(
        (0..RUNS)
            .map(|i| store_commits(&dir.path().join(format!("s{i}"))))
            .collect(),
    );
    let sqlite = median(
        (0..RUNS)
            .map(|i| sqlite_commits(&dir.path().join(format!("q{i}.db"))))
            .collect(),
    );
    let (socket, rss) = daemon_commits(&dir.path().join("d"));
    println!(
        "{:<46} {:>10.0} commits/s",
        "kpbxd Store::commit (in-process)", inproc
    );
    println!(
        "{:<46} {:>10.0} commits/s",
        "kpbxd via control socket (kpbx protocol)", socket
    );
    println!(
        "{:<46} {:>10.0} commits/s",
        "anchor: SQLite WAL synchronous=FULL (python3)", sqlite
    );
    println!(
        "{:<46} {:>10.2}x",
        "ratio in-process / SQLite",
        inproc / sqlite
    );
    println!(
        "{:<46} {:>10.2}x",
        "ratio via socket / SQLite",
        socket / sqlite
    );
    println!();
    println!("== footprint");
    println!("{:<46} {:>10} KiB", "kpbxd idle RSS (2 s after start)", rss);
    // The bench build keeps symbols; strip a copy, as the image does.
    let stripped = dir.path().join("kpbxd.stripped");
    let size = std::fs::copy(env!("CARGO_BIN_EXE_kpbxd"), &stripped)
        .ok()
        .filter(|_| {
            Command::new("strip")
                .arg(&stripped)
                .status()
                .is_ok_and(|s| s.success())
        })
        .and_then(|_| std::fs::metadata(&stripped).ok())
        .map_or("strip failed".to_string(), |m| m.len().to_string());
    println!(
        "{:<46} {:>10} bytes",
        "kpbxd stripped (host target; kpbx is a link)", size
    );
}

/// Where temp stores go: the disk the data would be on, not a tmpfs.
fn bench_dir() -> std::path::PathBuf {
    let p = std::env::var_os("BENCH_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench"),
        Into::into,
    );
    std::fs::create_dir_all(&p).expect("bench dir");
    p
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn store_commits(dir: &Path) -> f64 {
    let clock = SystemClock::default();
    let store = Store::open(dir, 256, clock.wall()).expect("open store");
    let origin = Origin {
        user: "bench".into(),
        source: Source::Console,
    };
    let start = Instant::now();
    for i in 0..COMMITS {
        let s = Setting::parse("location", &format!("value {i}")).expect("setting");
        let r = store
            .commit(&origin, clock.wall(), &[Change::put(Object::Setting(s))])
            .expect("commit");
        assert!(r.txid.is_some());
    }
    COMMITS as f64 / start.elapsed().as_secs_f64()
}

fn sqlite_commits(db: &Path) -> f64 {
    let script = format!(
        r#"
import sqlite3, time
c = sqlite3.connect({db:?}, isolation_level=None)
c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=FULL")
c.execute("CREATE TABLE objects(k TEXT PRIMARY KEY, v TEXT)")
c.execute("CREATE TABLE audit(id INTEGER PRIMARY KEY, k TEXT, before TEXT, after TEXT)")
t = time.perf_counter()
for i in range({COMMITS}):
    c.execute("BEGIN")
    c.execute("INSERT OR REPLACE INTO objects VALUES('location', ?)", ("value %d" % i,))
    c.execute("INSERT INTO audit(k, after) VALUES('location', ?)", ("value %d" % i,))
    c.execute("COMMIT")
print({COMMITS} / (time.perf_counter() - t))
"#,
        db = db.display().to_string()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("python3 for the SQLite anchor");
    assert!(
        out.status.success(),
        "sqlite anchor: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("rate")
}

/// Starts the release daemon, measures commits over one connection, then
/// its idle RSS; returns (commits/s, RSS KiB).
fn daemon_commits(dir: &Path) -> (f64, u64) {
    std::fs::create_dir_all(dir).expect("dir");
    let socket = dir.join("kpbxd.sock");
    let config = dir.join("kpbxd.conf");
    std::fs::write(
        &config,
        format!(
            "data_dir = {}\ncontrol_socket = {}\nlog_level = warn\nhttp_listen = off\nhttps_listen = off\ntftp_listen = off\nmgmt_listen = off\n",
            dir.join("data").display(),
            socket.display()
        ),
    )
    .expect("config");
    let kpbxd = Path::new(env!("CARGO_BIN_EXE_kpbxd"));
    let mut child = Command::new(kpbxd)
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", kpbxd.display()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        if let Ok(s) = UnixStream::connect(&socket) {
            break s;
        }
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(10));
    };
    // Idle RSS first, before any commit has touched the map.
    std::thread::sleep(Duration::from_secs(2));
    let rss = rss_kib(child.id());
    let start = Instant::now();
    for i in 0..COMMITS {
        let req = Request {
            command: Cmd::SystemSet {
                values: vec![("location".into(), format!("v{i}"))],
            },
        };
        stream.write_all(&wire::encode_request(&req)).expect("send");
        let mut header = [0u8; wire::HEADER_LEN];
        stream.read_exact(&mut header).expect("header");
        let len = wire::parse_header(&header, wire::MAX_REPLY).expect("reply header");
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload).expect("payload");
        match wire::decode_reply(&payload).expect("reply") {
            Reply::Committed(c) => assert!(c.txid.is_some()),
            other => panic!("unexpected reply {other:?}"),
        }
    }
    let rate = COMMITS as f64 / start.elapsed().as_secs_f64();
    let _ = child.kill();
    let _ = child.wait();
    (rate, rss)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
