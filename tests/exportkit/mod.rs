#![allow(dead_code)]
use jiff::Timestamp;
use jiff::tz::TimeZone;
use kpbxd::export::{Cell, Column, ColumnType as T, ExportSpec, Options, RowSink, Sheet};
use std::process::Command;

pub const NASTY: &[&str] = &[
    "Mario <&\"> Rossi 😀",
    "line1\r\nline2\nline3",
    "ctl\u{1}\u{7}\u{1b}x\u{FFFE}y",
    "\"quoted\", with; both",
    "=HYPERLINK(\"http://evil\",\"x\")",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\tTab",
    "\rCR",
    "plain",
    "",
];

pub fn plain_spec() -> ExportSpec {
    ExportSpec {
        sheets: vec![calls_sheet()],
    }
}

pub fn calls_sheet() -> Sheet {
    Sheet {
        id: "calls".into(),
        title: "Calls".into(),
        columns: vec![
            Column::new("unique_id", "UniqueID", T::Text),
            Column::new("start_datetime", "Start time", T::Timestamp),
            Column::new("duration", "Duration", T::Duration),
            Column::new("billsec", "Billed seconds", T::Integer),
            Column::new("caller", "Caller", T::Phone),
            Column::new("caller_name", "Caller name", T::Text),
        ],
        parent: None,
    }
}

/// calls (+ legs, attempts as children) and operator_events.
pub fn detailed_spec() -> ExportSpec {
    ExportSpec {
        sheets: vec![
            calls_sheet(),
            Sheet {
                id: "legs".into(),
                title: "Legs".into(),
                columns: vec![
                    Column::new("detail_type", "Detail type", T::Text),
                    Column::new("called", "Called", T::Phone),
                    Column::new("duration", "Duration", T::Duration),
                ],
                parent: Some(0),
            },
            Sheet {
                id: "attempts".into(),
                title: "Ring attempts".into(),
                columns: vec![
                    Column::new("agent", "Agent", T::Text),
                    Column::new("ring_ms", "Ring ms", T::Integer),
                ],
                parent: Some(0),
            },
            Sheet {
                id: "operator_events".into(),
                title: "Operator events".into(),
                columns: vec![
                    Column::new("event_time", "Event time", T::Timestamp),
                    Column::new("operator", "Operator", T::Text),
                    Column::new("event", "Event", T::Text),
                ],
                parent: None,
            },
        ],
    }
}

pub fn rome() -> Options {
    Options {
        tz: TimeZone::get("Europe/Rome").unwrap(),
        mask_phone_numbers: false,
    }
}

/// 2026-03-29T07:00:00Z = 09:00 CEST (DST started that night).
pub fn t0() -> Timestamp {
    "2026-03-29T07:00:00Z".parse().unwrap()
}

/// Pushes one call row per NASTY string (caller_name = the string).
pub fn push_plain(w: &mut impl RowSink) {
    for (i, name) in NASTY.iter().enumerate() {
        let id = format!("1774774800.{i}");
        let ts = t0()
            .checked_add(jiff::SignedDuration::from_secs(i as i64 * 60))
            .unwrap();
        w.push_row(
            0,
            &[
                Cell::Text(&id),
                Cell::Timestamp(ts),
                Cell::Duration(3725 + i as i64),
                Cell::Integer(-(i as i64)),
                Cell::Phone("+390501234567"),
                Cell::Text(name),
            ],
        )
        .unwrap();
    }
    // a row with empty cells
    w.push_row(
        0,
        &[
            Cell::Text("empty"),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
        ],
    )
    .unwrap();
}

/// Two calls: the first with 2 legs + 1 attempt, the second with none; 2 operator events.
pub fn push_detailed(w: &mut impl RowSink) {
    let call = |id: &'static str| {
        [
            Cell::Text(id),
            Cell::Timestamp(t0()),
            Cell::Duration(125),
            Cell::Integer(120),
            Cell::Phone("+390501234567"),
            Cell::Text("Mario <&\"> Rossi"),
        ]
    };
    w.push_row(0, &call("c1")).unwrap();
    w.push_row(
        1,
        &[Cell::Text("ivr"), Cell::Phone("201"), Cell::Duration(5)],
    )
    .unwrap();
    w.push_row(
        1,
        &[Cell::Text("queue"), Cell::Phone("202"), Cell::Duration(115)],
    )
    .unwrap();
    w.push_row(2, &[Cell::Text("=1+1"), Cell::Integer(3000)])
        .unwrap();
    w.push_row(0, &call("c2")).unwrap();
    w.push_row(
        3,
        &[
            Cell::Timestamp(t0()),
            Cell::Text("Anna"),
            Cell::Text("PAUSE"),
        ],
    )
    .unwrap();
    w.push_row(
        3,
        &[
            Cell::Timestamp(t0()),
            Cell::Text("Anna"),
            Cell::Text("UNPAUSE"),
        ],
    )
    .unwrap();
}

/// Runs python3 -c `code` with `arg`, returns stdout (panics on failure).
pub fn python(code: &str, arg: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .arg(arg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn tmp(name: &str) -> std::path::PathBuf {
    // Inside target/ (cargo's per-project scratch dir), not the system's /tmp.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("export-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A sink that counts bytes and keeps nothing.
#[derive(Default)]
pub struct Counting {
    pub bytes: u64,
}

impl std::io::Write for Counting {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.bytes += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
