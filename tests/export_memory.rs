//! Bounded-memory tests. `streaming_writers_do_not_accumulate` runs always;
//! `peak_rss_per_format` re-runs this test binary as a child per format
//! (`rss_child`, selected by KPBX_RSS_FORMAT) and reads the child's VmHWM.
//! Rows: KPBX_RSS_ROWS (default 50,000; the report uses 1,000,000 in --release).
#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod exportkit;
use exportkit::*;
use kpbxd::export::csv::{CsvOptions, CsvWriter};
use kpbxd::export::json::JsonWriter;
use kpbxd::export::xlsx::{XlsxOptions, XlsxWriter};
use kpbxd::export::xml::XmlWriter;
use kpbxd::export::{Cell, RowSink};
use std::fmt::Write as _;

const NAMES: &[&str] = &[
    "Mario Rossi",
    "Anna <Bianchi> & co",
    "=1+1",
    "Luca \"Verdi\"",
    "😀",
];

/// Pushes `n` call rows with distinct ids.
fn feed(w: &mut impl RowSink, n: u64) {
    let mut id = String::new();
    for i in 0..n {
        id.clear();
        let _ = write!(id, "1774774800.{i}");
        let ts = t0()
            .checked_add(jiff::SignedDuration::from_secs(i as i64))
            .unwrap();
        w.push_row(
            0,
            &[
                Cell::Text(&id),
                Cell::Timestamp(ts),
                Cell::Duration((i % 7200) as i64),
                Cell::Integer(i as i64),
                Cell::Phone("+390501234567"),
                Cell::Text(NAMES[(i % NAMES.len() as u64) as usize]),
            ],
        )
        .unwrap();
    }
}

const ROWS: u64 = 200_000;
const BOUND: usize = 4096;

#[test]
fn streaming_writers_do_not_accumulate() {
    // Capacity of each writer's internal buffers is sampled after every 10,000 rows:
    // it must be constant and small, while the sink receives all the bytes.
    let mut w = CsvWriter::new(
        Counting::default(),
        plain_spec(),
        rome(),
        CsvOptions::default(),
    )
    .unwrap();
    let mut samples = Vec::new();
    for _ in 0..ROWS / 10_000 {
        feed(&mut w, 10_000);
        samples.push(w.buffered_capacity());
    }
    assert!(
        samples.iter().all(|&c| c == samples[0] && c < BOUND),
        "csv caps {samples:?}"
    );
    assert!(w.finish().unwrap().bytes > ROWS * 60);

    let mut w = JsonWriter::new(Counting::default(), plain_spec(), rome()).unwrap();
    let mut samples = Vec::new();
    for _ in 0..ROWS / 10_000 {
        feed(&mut w, 10_000);
        samples.push(w.buffered_capacity());
    }
    assert!(
        samples.iter().all(|&c| c == samples[0] && c < BOUND),
        "json caps {samples:?}"
    );
    assert!(w.finish().unwrap().bytes > ROWS * 100);

    let mut w = XmlWriter::new(Counting::default(), plain_spec(), rome()).unwrap();
    let mut samples = Vec::new();
    for _ in 0..ROWS / 10_000 {
        feed(&mut w, 10_000);
        samples.push(w.buffered_capacity());
    }
    assert!(
        samples.iter().all(|&c| c == samples[0] && c < BOUND),
        "xml caps {samples:?}"
    );
    assert!(w.finish().unwrap().bytes > ROWS * 150);
}

fn vm_hwm_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn rows() -> u64 {
    std::env::var("KPBX_RSS_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000)
}

/// The child half of `peak_rss_per_format`: writes one format in a fresh
/// process so that its VmHWM is the writer's alone.
fn rss_child(fmt: &str) {
    let n = rows();
    let before = vm_hwm_kb();
    let path = tmp(&format!("rss.{fmt}"));
    let f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    match fmt {
        "csv" => {
            let mut w = CsvWriter::new(f, plain_spec(), rome(), CsvOptions::default()).unwrap();
            feed(&mut w, n);
            w.finish().unwrap();
        }
        "json" => {
            let mut w = JsonWriter::new(f, plain_spec(), rome()).unwrap();
            feed(&mut w, n);
            w.finish().unwrap();
        }
        "xml" => {
            let mut w = XmlWriter::new(f, plain_spec(), rome()).unwrap();
            feed(&mut w, n);
            w.finish().unwrap();
        }
        "xlsx" => {
            let xo = XlsxOptions {
                tempdir: Some(std::env::temp_dir()),
            };
            let mut w = XlsxWriter::new(f, plain_spec(), rome(), xo).unwrap();
            feed(&mut w, n);
            w.finish().unwrap();
        }
        _ => panic!("format {fmt}"),
    }
    let size = std::fs::metadata(&path).unwrap().len();
    std::fs::remove_file(&path).unwrap();
    println!(
        "RSS fmt={fmt} rows={n} before_kb={before} vmhwm_kb={} file_bytes={size}",
        vm_hwm_kb()
    );
}

#[test]
fn peak_rss_per_format() {
    // Re-run as the child measuring one format.
    if let Ok(fmt) = std::env::var("KPBX_RSS_FORMAT") {
        rss_child(&fmt);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for fmt in ["csv", "json", "xml", "xlsx"] {
        let out = std::process::Command::new(&exe)
            .args([
                "--exact",
                "peak_rss_per_format",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KPBX_RSS_FORMAT", fmt)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{fmt}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.find("RSS fmt=").map(|i| &l[i..]))
            .expect("child line");
        eprintln!("{line}");
        let hwm: u64 = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("vmhwm_kb="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(hwm < 64 * 1024, "{fmt}: peak RSS {hwm} kB >= 64 MB");
    }
}
