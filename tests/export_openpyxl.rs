//! An independent read-back of the XLSX writer with Python's openpyxl
//! (Debian `python3-openpyxl`, for the system `/usr/bin/python3`):
//! `tests/fixtures/openpyxl_dump.py` prints what openpyxl read as JSON, and the
//! values, types, formats, frozen panes, autofilters and bold headers are compared.
#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod exportkit;
use exportkit::*;
use kpbxd::export::xlsx::{XlsxOptions, XlsxWriter};
use kpbxd::export::{Cell, ExportSpec, RowSink};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The interpreter the Debian package installs openpyxl for.
const PYTHON: &str = "/usr/bin/python3";
const INSTALL: &str = "apt-get install -y python3-openpyxl";

/// Runs the dump script on `path`; fails loudly when openpyxl is missing.
fn openpyxl(path: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openpyxl_dump.py");
    let out = Command::new(PYTHON)
        .arg(&script)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON} ({e}); install it: {INSTALL}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'openpyxl'"),
        "openpyxl is missing; install it: {INSTALL}"
    );
    assert!(out.status.success(), "openpyxl failed: {stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

type Writer = XlsxWriter<std::io::BufWriter<std::fs::File>>;

fn write(name: &str, spec: ExportSpec, push: impl FnOnce(&mut Writer)) -> PathBuf {
    let p = tmp(name);
    let f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    let mut w = XlsxWriter::new(f, spec, rome(), XlsxOptions::default()).unwrap();
    push(&mut w);
    w.finish().unwrap();
    p
}

fn s(v: &str) -> Value {
    json!({"t": "str", "v": v, "f": "General"})
}

fn int(v: i64) -> Value {
    json!({"t": "int", "v": v, "f": "General"})
}

fn dur(secs: i64) -> Value {
    json!({"t": "timedelta", "v": secs as f64, "f": "[h]:mm:ss"})
}

/// `2026-03-29` at `hh:mm` local time.
fn date(hh: u32, mm: u32) -> Value {
    let v = format!("2026-03-29T{hh:02}:{mm:02}:00");
    json!({"t": "datetime", "v": v, "f": "yyyy-mm-dd hh:mm:ss"})
}

/// What XML 1.0 lets through of `s`.
fn xml_clean(s: &str) -> String {
    s.chars()
        .filter(|&c| (c >= ' ' || "\t\n\r".contains(c)) && c != '\u{FFFE}' && c != '\u{FFFF}')
        .collect()
}

fn header(names: &[&str]) -> Value {
    Value::Array(names.iter().map(|n| s(n)).collect())
}

fn check_sheet(got: &Value, title: &str, rows: &[Value]) {
    assert_eq!(got["title"], title);
    assert_eq!(got["freeze_panes"], "A2", "{title}");
    let cols = rows[0].as_array().unwrap().len();
    let last_col = char::from(b'A' + cols as u8 - 1);
    assert_eq!(
        got["auto_filter"],
        format!("A1:{last_col}{}", rows.len()),
        "{title}"
    );
    assert_eq!(got["header_bold"], json!(vec![true; cols]), "{title}");
    let got_rows = got["rows"].as_array().unwrap();
    assert_eq!(got_rows.len(), rows.len(), "{title} rows");
    for (i, (g, e)) in got_rows.iter().zip(rows).enumerate() {
        // Short messages: a row may hold a 32,767-character string.
        let short = |v: &Value| v.to_string().chars().take(400).collect::<String>();
        assert!(
            g == e,
            "{title} row {}: {} != {}",
            i + 1,
            short(g),
            short(e)
        );
    }
}

const CALLS_HEADER: &[&str] = &[
    "UniqueID",
    "Start time",
    "Duration",
    "Billed seconds",
    "Caller",
    "Caller name",
];

#[test]
fn openpyxl_reads_plain_export() {
    let long = "😀".repeat(40_000);
    let p = write("openpyxl-plain.xlsx", plain_spec(), |w| {
        push_plain(w);
        w.push_row(
            0,
            &[
                Cell::Text("_x0041_ stays"),
                Cell::Empty,
                Cell::Duration(90_061),
                Cell::Integer(i64::from(i32::MIN)),
                Cell::Phone(" 201 "),
                Cell::Text(&long),
            ],
        )
        .unwrap();
    });
    let got = openpyxl(&p);
    let mut rows = vec![header(CALLS_HEADER)];
    for (i, name) in NASTY.iter().enumerate() {
        let i64i = i as i64;
        let name = xml_clean(name);
        rows.push(json!([
            s(&format!("1774774800.{i}")),
            date(9, i as u32),
            dur(3725 + i64i),
            int(-i64i),
            s("+390501234567"),
            if name.is_empty() { s("") } else { s(&name) },
        ]));
    }
    rows.push(json!([s("empty"), null, null, null, null, null]));
    rows.push(json!([
        // openpyxl does not decode `_xHHHH_` in inline strings, so it shows the
        // protection that keeps Excel and calamine from reading "A".
        s("_x005F_x0041_ stays"),
        null,
        dur(90_061),
        int(i64::from(i32::MIN)),
        s(" 201 "),
        s(&"😀".repeat(32_767)),
    ]));
    assert_eq!(got["sheets"].as_array().unwrap().len(), 1);
    check_sheet(&got["sheets"][0], "Calls", &rows);
}

/// Calls, each followed by legs and attempts on two child sheets, and operator
/// events; enough rows that the child sheets spill to their temporary files.
#[test]
fn openpyxl_reads_interleaved_detailed_export() {
    const CALLS: i64 = 600;
    let p = write("openpyxl-detailed.xlsx", detailed_spec(), |w| {
        for c in 0..CALLS {
            let id = format!("c{c}");
            w.push_row(
                0,
                &[
                    Cell::Text(&id),
                    Cell::Timestamp(t0()),
                    Cell::Duration(c),
                    Cell::Integer(c),
                    Cell::Phone("+390501234567"),
                    Cell::Text("Mario <&\"> Rossi"),
                ],
            )
            .unwrap();
            for l in 0..c % 3 {
                let called = format!("{}", 200 + l);
                let kind = format!("leg {c}.{l} <queue & ivr>");
                w.push_row(
                    1,
                    &[Cell::Text(&kind), Cell::Phone(&called), Cell::Duration(l)],
                )
                .unwrap();
            }
            if c % 2 == 0 {
                let agent = format!("agent {c}");
                w.push_row(2, &[Cell::Text(&agent), Cell::Integer(c * 10)])
                    .unwrap();
            }
        }
        w.push_row(
            3,
            &[
                Cell::Timestamp(t0()),
                Cell::Text("Anna"),
                Cell::Text("PAUSE"),
            ],
        )
        .unwrap();
    });
    let got = openpyxl(&p);
    let sheets = got["sheets"].as_array().unwrap();
    assert_eq!(sheets.len(), 4);

    let mut calls = vec![header(CALLS_HEADER)];
    let mut legs = vec![header(&["Detail type", "Called", "Duration"])];
    let mut attempts = vec![header(&["Agent", "Ring ms"])];
    for c in 0..CALLS {
        calls.push(json!([
            s(&format!("c{c}")),
            date(9, 0),
            dur(c),
            int(c),
            s("+390501234567"),
            s("Mario <&\"> Rossi"),
        ]));
        for l in 0..c % 3 {
            legs.push(json!([
                s(&format!("leg {c}.{l} <queue & ivr>")),
                s(&format!("{}", 200 + l)),
                dur(l),
            ]));
        }
        if c % 2 == 0 {
            attempts.push(json!([s(&format!("agent {c}")), int(c * 10)]));
        }
    }
    let events = vec![
        header(&["Event time", "Operator", "Event"]),
        json!([date(9, 0), s("Anna"), s("PAUSE")]),
    ];
    check_sheet(&sheets[0], "Calls", &calls);
    check_sheet(&sheets[1], "Legs", &legs);
    check_sheet(&sheets[2], "Ring attempts", &attempts);
    check_sheet(&sheets[3], "Operator events", &events);
}
