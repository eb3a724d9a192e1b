//! `make bench`, audit part: a log of 1,000,000 entries (1,000 audited
//! transactions of 1,000 user objects each, spread over twelve months),
//! then:
//! - the time to list the first page (50 entries) of the newest month and of
//!   a month in the middle of the log (`Store::audit_page`, as
//!   `kpbx audit list --month` runs it);
//! - the time and peak RSS of exporting a whole month to CSV and to XLSX
//!   (`audit::export`, in a child process that reports its own VmHWM;
//!   LMDB's mapped pages it reads count in it);
//! - the time of `audit verify` over the whole chain.
//!
//! `AUDIT_ENTRIES` overrides the size (a multiple of 1,000).

use std::path::Path;
use std::time::Instant;

use kpbxd::audit::export::{Format, export};
use kpbxd::audit::{Filter, Month, period};
use kpbxd::clock::WallTime;
use kpbxd::model::{Change, Object, Origin, Source, User};
use kpbxd::store::Store;

const PER_TX: usize = 1000;
const MONTHS: i64 = 12;
const MAP_MB: u32 = 8192;

fn entries_wanted() -> usize {
    std::env::var("AUDIT_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// The end of the log: 2026-11-20 12:00 UTC.
fn end_us() -> i64 {
    1_795_176_000_000_000
}

fn month_filter(month: &str) -> Filter {
    let (start_us, end_us) = period(
        Month::parse(month).expect("month"),
        None,
        &jiff::tz::TimeZone::UTC,
    )
    .expect("period");
    Filter {
        start_us,
        end_us,
        user: None,
        kind: None,
        action: None,
    }
}

fn build(dir: &Path, entries: usize) -> Store {
    let store = Store::open(dir, MAP_MB, WallTime::from_unix_micros(0)).expect("open");
    let txs = entries / PER_TX;
    let span_us = MONTHS * 30 * 86_400 * 1_000_000;
    let origin = Origin {
        user: "bench".into(),
        source: Source::Address("192.0.2.1".parse().expect("ip")),
    };
    for t in 0..txs {
        let now = end_us() - span_us + (span_us / txs as i64) * t as i64;
        let changes: Vec<Change> = (0..PER_TX)
            .map(|i| {
                Change::put(Object::User(User {
                    name: format!("user{i:04}"),
                    password_hash: String::new(),
                    role: "supervisor".into(),
                    tenant: None,
                    email: format!("u{i}-{t}@example.org"),
                }))
            })
            .collect();
        store
            .commit(&origin, WallTime::from_unix_micros(now), &changes)
            .expect("commit");
    }
    store
}

fn export_child(data: &Path, month: &str, format: &str, out: &Path) {
    let store = Store::open(data, MAP_MB, WallTime::from_unix_micros(0)).expect("open");
    let format = Format::parse(format).expect("format");
    let file = std::io::BufWriter::new(std::fs::File::create(out).expect("create"));
    let (_, rows) = export(
        &store,
        &month_filter(month),
        &[],
        format,
        jiff::tz::TimeZone::UTC,
        file,
    )
    .expect("export");
    // VmHWM: the peak of this process image only. (ru_maxrss of a child
    // would include the parent's resident set at fork time, and the parent
    // has just built and verified the whole log.)
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    println!("{rows} {hwm}");
}

/// Runs an export in a child process: (seconds, rows, peak RSS KiB, bytes).
fn export_run(data: &Path, month: &str, format: &str, out: &Path) -> (f64, u64, u64, u64) {
    let t = Instant::now();
    let child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args(["--export-child", &data.display().to_string(), month, format])
        .arg(out)
        .output()
        .expect("child");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        child.status.success(),
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let last = String::from_utf8_lossy(&child.stdout)
        .lines()
        .last()
        .unwrap_or("")
        .to_string();
    let mut fields = last
        .split_whitespace()
        .map(|v| v.parse::<u64>().unwrap_or(0));
    let rows = fields.next().unwrap_or(0);
    let rss_kib = fields.next().unwrap_or(0);
    let bytes = std::fs::metadata(out).map_or(0, |m| m.len());
    (secs, rows, rss_kib, bytes)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, data, month, format, out] = args.as_slice()
        && flag == "--export-child"
    {
        export_child(Path::new(data), month, format, Path::new(out));
        return;
    }
    let entries = entries_wanted();
    let root = std::env::var_os("BENCH_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench"),
        Into::into,
    );
    std::fs::create_dir_all(&root).expect("bench dir");
    let dir = tempfile::tempdir_in(&root).expect("temp dir");
    let data = dir.path().join("data");

    println!("== audit log: {entries} entries ({PER_TX} per transaction, {MONTHS} months)");
    let t = Instant::now();
    let store = build(&data, entries);
    let stats = store.stats().expect("stats");
    println!(
        "{:<52} {:>10.1} s ({} MiB on disk)",
        "build (audited commits)",
        t.elapsed().as_secs_f64(),
        stats.disk_bytes >> 20
    );

    for (label, month) in [("newest month", "2026-11"), ("middle month", "2026-05")] {
        let f = month_filter(month);
        let t = Instant::now();
        let page = store.audit_page(&f, 0, 50).expect("page");
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        assert!(!page.entries.is_empty(), "{month} has entries");
        println!(
            "{:<52} {:>10.2} ms",
            format!("audit list, first page of the {label} ({month})"),
            ms
        );
    }

    let t = Instant::now();
    let v = store.verify_audit().expect("verify");
    assert!(v.first_bad.is_none());
    println!(
        "{:<52} {:>10.2} s ({} entries)",
        "audit verify",
        t.elapsed().as_secs_f64(),
        v.entries
    );
    drop(store);

    for format in ["csv", "xlsx"] {
        let out = dir.path().join(format!("export.{format}"));
        let (secs, rows, rss, bytes) = export_run(&data, "2026-05", format, &out);
        println!(
            "{:<52} {:>10.2} s, {rows} rows, {} MiB, peak RSS {} MiB",
            format!("audit export of a month ({format})"),
            secs,
            bytes >> 20,
            rss / 1024
        );
    }
}
