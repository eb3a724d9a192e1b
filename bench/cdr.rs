//! `make bench`, CDR part: ingestion rate of `Master.csv` through the
//! follower core into the store (rows/s), then, with 1,000,000 calls in the
//! store, export time and peak RSS (VmHWM of a child process that does only
//! that export) for every format. Goal: peak RSS under 64 MB per format.
//! Rows: KPBX_CDR_ROWS (default 1,000,000).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use kpbxd::cdr::follow::{FileKind, Follower};
use kpbxd::cdr::master_csv::{ColumnMapping, MasterFormat};
use kpbxd::cdr::record::IngestStateV1;
use kpbxd::clock::WallTime;
use kpbxd::report::{self, ExportOptions, Format, TimeRange, ingest};
use kpbxd::store::Store;

#[path = "support.rs"]
mod support;

const STORE_MB: u32 = 4096;

fn rows() -> u64 {
    std::env::var("KPBX_CDR_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn vm_hwm_kib() -> u64 {
    support::status_kib("self", "VmHWM")
}

/// One Master.csv line per call: one call per second from 2026-03-01.
fn line(i: u64, out: &mut Vec<u8>) {
    let start = jiff::Timestamp::from_second(1_772_323_200 + i as i64).unwrap_or_default();
    let end = start + jiff::SignedDuration::from_secs(30);
    let t = |ts: jiff::Timestamp| ts.strftime("%Y-%m-%d %H:%M:%S").to_string();
    let _ = writeln!(
        out,
        "\"\",\"2{:02}\",\"05012{:05}\",\"from-internal\",\"\"\"Caller {i}\"\" <2{:02}>\",\"PJSIP/2{:02}-{i:08x}\",\"PJSIP/trunk-{i:08x}\",\"Dial\",\"PJSIP/05012{:05}@trunk,60\",\"{}\",\"{}\",\"{}\",30,28,\"ANSWERED\",\"DOCUMENTATION\",\"1772323200.{i}\",\"\",\"\",\"1772323200.{i}\",{i}",
        i % 100,
        i % 100_000,
        i % 100,
        i % 100,
        i % 100_000,
        t(start),
        t(start + jiff::SignedDuration::from_secs(2)),
        t(end)
    );
}

fn ingest_all(store: &Store, n: u64) -> f64 {
    let kind = FileKind::Master(Box::new(MasterFormat {
        mapping: ColumnMapping::CDR_CSV,
        tz: jiff::tz::TimeZone::UTC,
    }));
    let mut f = Follower::resume(kind, IngestStateV1::default());
    let mut buf = Vec::with_capacity(300 * 1024);
    let began = Instant::now();
    let mut i = 0;
    while i < n {
        buf.clear();
        while buf.len() < 256 * 1024 && i < n {
            line(i, &mut buf);
            i += 1;
        }
        let rows = f.feed(&buf);
        ingest::commit(store, &rows, Some((ingest::MASTER_KEY, f.state()))).expect("commit");
    }
    let rows = f.finish();
    ingest::commit(store, &rows, None).expect("commit");
    n as f64 / began.elapsed().as_secs_f64()
}

/// Child: export every call in one format to a byte counter; print
/// `bytes seconds vmhwm_kib`.
fn child(dir: &Path, format: &str) {
    let store = Store::open(dir, STORE_MB, WallTime::from_unix_micros(0)).expect("store");
    let format = Format::from_name(format).expect("format");
    let opts = ExportOptions {
        xlsx: kpbxd::export::xlsx::XlsxOptions {
            tempdir: Some(dir.join("tmp")),
        },
        ..ExportOptions::default()
    };
    let _ = std::fs::create_dir_all(dir.join("tmp"));
    let range = TimeRange {
        start_us: i64::MIN / 2,
        end_us: i64::MAX / 2,
    };
    let began = Instant::now();
    let s = report::export_calls(&store, range, format, &opts, std::io::sink()).expect("export");
    println!(
        "{} {} {:.2} {}",
        s.rows,
        s.bytes,
        began.elapsed().as_secs_f64(),
        vm_hwm_kib()
    );
}

fn main() {
    if let (Ok(dir), Ok(format)) = (
        std::env::var("KPBX_CDR_STORE"),
        std::env::var("KPBX_CDR_FORMAT"),
    ) {
        child(Path::new(&dir), &format);
        return;
    }
    let n = rows();
    let dir = tempfile::tempdir_in(support::bench_dir()).expect("temp dir");
    println!("== cdr: Master.csv ingestion and exports of {n} calls");
    {
        let store =
            Store::open(dir.path(), STORE_MB, WallTime::from_unix_micros(0)).expect("store");
        let rate = ingest_all(&store, n);
        println!(
            "{:<46} {:>10.0} rows/s",
            "ingestion (parse, group, store, fsync'd)", rate
        );
    }
    let exe = std::env::current_exe().expect("exe");
    for format in Format::ALL {
        let out = Command::new(&exe)
            .env("KPBX_CDR_STORE", dir.path())
            .env("KPBX_CDR_FORMAT", format.name())
            .output()
            .expect("child");
        let text = String::from_utf8_lossy(&out.stdout);
        let f: Vec<&str> = text.split_whitespace().collect();
        if !out.status.success() || f.len() != 4 {
            println!(
                "export {:<14} FAILED: {}",
                format.name(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            continue;
        }
        let hwm: u64 = f[3].parse().unwrap_or(0);
        println!(
            "export {:<14} {:>9} rows {:>12} bytes {:>8} s   peak RSS {:>7} KiB {}",
            format.name(),
            f[0],
            f[1],
            f[2],
            hwm,
            if hwm < 64 * 1024 {
                "(< 64 MB)"
            } else {
                "(OVER 64 MB)"
            }
        );
    }
}
