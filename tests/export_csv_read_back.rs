#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod exportkit;
use exportkit::*;
use kpbxd::export::csv::{CsvOptions, CsvWriter};
use kpbxd::export::{Cell, Options, RowSink};

/// Python's csv module parses the file; rows come back as JSON.
fn read_with_python(path: &std::path::Path, delim: char, bom: bool) -> Vec<Vec<String>> {
    let code = format!(
        "import csv,json,sys\n\
         f=open(sys.argv[1],newline='',encoding='{}')\n\
         print(json.dumps(list(csv.reader(f,delimiter='{delim}',strict=True))))",
        if bom { "utf-8-sig" } else { "utf-8" }
    );
    let out = python(&code, path.to_str().unwrap());
    serde_json::from_str(&out).unwrap()
}

fn write_plain(delim: u8, bom: bool, name: &str) -> std::path::PathBuf {
    let p = tmp(name);
    let f = std::fs::File::create(&p).unwrap();
    let mut w = CsvWriter::new(
        f,
        plain_spec(),
        rome(),
        CsvOptions {
            delimiter: delim,
            bom,
        },
    )
    .unwrap();
    push_plain(&mut w);
    w.finish().unwrap();
    p
}

fn check_plain(rows: &[Vec<String>]) {
    assert_eq!(
        rows[0],
        [
            "UniqueID",
            "Start time",
            "Duration",
            "Billed seconds",
            "Caller",
            "Caller name"
        ]
    );
    assert_eq!(rows.len(), 1 + NASTY.len() + 1);
    for (i, name) in NASTY.iter().enumerate() {
        let r = &rows[i + 1];
        assert_eq!(r.len(), 6);
        assert_eq!(r[1], format!("2026-03-29 09:{:02}:00", i));
        assert_eq!(r[2], (3725 + i).to_string());
        assert_eq!(
            r[3],
            (-(i as i64)).to_string(),
            "numbers are never neutralised"
        );
        assert_eq!(r[4], "+390501234567", "phone-like numbers stay raw");
        let starts_formula = matches!(
            name.chars().next(),
            Some('=' | '+' | '-' | '@' | '\t' | '\r')
        );
        if starts_formula {
            assert_eq!(r[5], format!("'{name}"), "neutralised with a quote");
        } else {
            assert_eq!(r[5], *name, "round trip");
        }
    }
    assert_eq!(rows.last().unwrap(), &["empty", "", "", "", "", ""]);
}

#[test]
fn csv_comma_no_bom_read_by_python() {
    let p = write_plain(b',', false, "plain_comma.csv");
    let raw = std::fs::read(&p).unwrap();
    assert!(raw.starts_with(b"UniqueID,"), "no BOM");
    assert!(raw.windows(2).any(|w| w == b"\r\n"), "CRLF");
    check_plain(&read_with_python(&p, ',', false));
}

#[test]
fn csv_semicolon_bom_read_by_python() {
    let p = write_plain(b';', true, "plain_semi.csv");
    let raw = std::fs::read(&p).unwrap();
    assert!(
        raw.starts_with("\u{FEFF}UniqueID;".as_bytes()),
        "BOM + ; header"
    );
    check_plain(&read_with_python(&p, ';', true));
}

#[test]
fn csv_formula_rule_for_phone_cells() {
    // A phone cell with letters/pipes is not phone-like → neutralised as text.
    let p = tmp("phone_rule.csv");
    let f = std::fs::File::create(&p).unwrap();
    let opts = Options {
        mask_phone_numbers: true,
        ..rome()
    };
    let mut opts_clear = opts.clone();
    opts_clear.mask_phone_numbers = false;
    let mut w = CsvWriter::new(f, plain_spec(), opts, CsvOptions::default()).unwrap();
    for ph in [
        "+39 050 1234567",
        "=cmd|' /C calc'!A0",
        "0501234567",
        "-201",
        "+390501234567",
    ] {
        w.push_row(
            0,
            &[
                Cell::Text("x"),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Phone(ph),
                Cell::Empty,
            ],
        )
        .unwrap();
    }
    w.finish().unwrap();
    let rows = read_with_python(&p, ',', false);
    let phones: Vec<&str> = rows[1..].iter().map(|r| r[4].as_str()).collect();
    assert_eq!(
        phones,
        [
            "'+39 050 1234xxx",
            "'=cmd|' /C calc'!Ax",
            "0501234xxx",
            "'-xxx",
            "'+390501234xxx"
        ]
    );
    // Unmasked bare E.164 stays raw (see the rule in csv.rs).
    let mut w =
        CsvWriter::new(Vec::new(), plain_spec(), opts_clear, CsvOptions::default()).unwrap();
    w.push_row(
        0,
        &[
            Cell::Text("x"),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Phone("+390501234567"),
            Cell::Empty,
        ],
    )
    .unwrap();
    // Plain numbers stay numbers in text and phone cells alike (a called
    // number -100 used to come out as '-100).
    for (text, phone) in [("-100", "-100"), ("+5", "-1.5")] {
        w.push_row(
            0,
            &[
                Cell::Text("x"),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Phone(phone),
                Cell::Text(text),
            ],
        )
        .unwrap();
    }
    let out = String::from_utf8(w.finish().unwrap()).unwrap();
    assert!(
        out.ends_with("x,,,,+390501234567,\r\nx,,,,-100,-100\r\nx,,,,-1.5,+5\r\n"),
        "{out:?}"
    );
}

#[test]
fn csv_detailed_record_type_layout() {
    let p = tmp("detailed.csv");
    let f = std::fs::File::create(&p).unwrap();
    let mut w = CsvWriter::new(f, detailed_spec(), rome(), CsvOptions::default()).unwrap();
    push_detailed(&mut w);
    w.finish().unwrap();
    let rows = read_with_python(&p, ',', false);
    assert_eq!(
        rows[0],
        [
            "record_type",
            "UniqueID",
            "Start time",
            "Duration",
            "Billed seconds",
            "Caller",
            "Caller name",
            "Detail type",
            "Called",
            "Agent",
            "Ring ms",
            "Event time",
            "Operator",
            "Event"
        ]
    );
    let kinds: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "calls",
            "legs",
            "legs",
            "attempts",
            "calls",
            "operator_events",
            "operator_events"
        ]
    );
    assert!(rows.iter().all(|r| r.len() == 14), "rectangular");
    // leg row: detail_type, called, duration (shared column with calls)
    assert_eq!(rows[2][7], "ivr");
    assert_eq!(rows[2][8], "201");
    assert_eq!(rows[2][3], "5");
    assert_eq!(rows[2][1], "", "call-only columns empty in child rows");
    assert_eq!(rows[4][9], "'=1+1", "child text neutralised too");
    assert_eq!(rows[6][11], "2026-03-29 09:00:00");
}

#[test]
fn csv_rejects_bad_delimiter_and_bad_rows() {
    assert!(
        CsvWriter::new(
            Vec::new(),
            plain_spec(),
            rome(),
            CsvOptions {
                delimiter: b'|',
                bom: false
            }
        )
        .is_err()
    );
    let mut w = CsvWriter::new(Vec::new(), plain_spec(), rome(), CsvOptions::default()).unwrap();
    assert!(w.push_row(0, &[Cell::Integer(1)]).is_err());
    assert!(w.push_row(1, &[]).is_err());
}
