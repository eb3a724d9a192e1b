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

#[path = "support.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kpbxd::clock::{Clock, SystemClock};
use kpbxd::control::Command as Cmd;
use kpbxd::model::{Change, Object, Origin, Setting, Source};
use kpbxd::store::Store;
use support::{Daemon, bench_dir, median};

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

/// Starts the release daemon, takes its idle RSS, then measures commits
/// over one connection; returns (commits/s, RSS KiB).
fn daemon_commits(dir: &Path) -> (f64, u64) {
    let mut d = Daemon::start(dir);
    // Idle RSS first, before any commit has touched the map.
    std::thread::sleep(Duration::from_secs(2));
    let rss = d.rss_kib();
    let start = Instant::now();
    for i in 0..COMMITS {
        d.commit(Cmd::SystemSet {
            values: vec![("location".into(), format!("v{i}"))],
        });
    }
    (COMMITS as f64 / start.elapsed().as_secs_f64(), rss)
}
