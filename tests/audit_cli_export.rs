//! `kpbx audit export` through the real daemon: the entries of the month,
//! filtered and with the chosen columns, streamed to a file and read back
//! by calamine (XLSX) and Python's csv module.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use calamine::{Reader, Xlsx, open_workbook};
use common::Daemon;

#[test]
fn audit_export_streams_the_month_in_the_chosen_format() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    d.ok(&["system", "set", "hostname=exp-one"]);
    d.ok(&[
        "system",
        "set",
        "location=Room \"7\", <b>&",
        "hostname=exp-two",
    ]);
    d.ok(&["system", "unset", "location"]);
    let listed = d.json(&[
        "audit",
        "list",
        "--month",
        &month_now(),
        "--page-size",
        "1000",
    ]);
    let entries = listed["entries"].as_array().unwrap().len();
    assert_eq!(entries, 4, "{listed}");

    // CSV with three columns, filtered to updates.
    let csv = dir.path().join("audit.csv");
    let out = d.ok(&[
        "audit",
        "export",
        "--format",
        "csv",
        "--action",
        "update",
        "--columns",
        "txid,action,description",
        "-o",
        csv.to_str().unwrap(),
    ]);
    assert!(out.contains("1 rows") || out.contains("1 row"), "{out}");
    let rows = std::process::Command::new("python3")
        .args([
            "-c",
            "import csv,sys\nr=list(csv.reader(open(sys.argv[1],encoding='utf-8-sig')))\nprint(len(r)); print(r[0]); print(r[1][r[0].index('Action')])",
            csv.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(rows.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "2", "header + one update: {text}");
    assert_eq!(lines[2], "update", "{text}");

    // XLSX of everything: one data row per entry.
    let xlsx = dir.path().join("audit.xlsx");
    d.ok(&[
        "audit",
        "export",
        "--format=xlsx",
        "-o",
        xlsx.to_str().unwrap(),
    ]);
    let mut wb: Xlsx<_> = open_workbook(&xlsx).unwrap();
    let sheet = wb.sheet_names()[0].clone();
    let range = wb.worksheet_range(&sheet).unwrap();
    assert_eq!(range.height(), entries + 1);

    // Bad requests are refused before anything is written.
    let bad = d.kpbx(&["audit", "export", "--format", "pdf"]);
    assert_eq!(bad.status.code(), Some(2));
    let bad = d.kpbx(&["audit", "export", "--format", "csv", "--type", "nonsense"]);
    assert_eq!(bad.status.code(), Some(1), "{bad:?}");
    d.stop();
}

fn month_now() -> String {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m")
        .to_string()
}
