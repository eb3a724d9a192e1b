#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod exportkit;
use calamine::{Data, Reader, Xlsx, open_workbook};
use exportkit::*;
use kpbxd::export::xlsx::{XlsxOptions, XlsxWriter, excel_serial};
use std::io::Read;

fn write(name: &str, detailed: bool) -> std::path::PathBuf {
    let p = tmp(name);
    let f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    let spec = if detailed {
        detailed_spec()
    } else {
        plain_spec()
    };
    let xo = XlsxOptions {
        tempdir: Some(std::env::temp_dir()),
    };
    let mut w = XlsxWriter::new(f, spec, rome(), xo).unwrap();
    if detailed {
        push_detailed(&mut w);
    } else {
        push_plain(&mut w);
    }
    w.finish().unwrap();
    p
}

fn part(path: &std::path::Path, name: &str) -> String {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut s = String::new();
    z.by_name(name).unwrap().read_to_string(&mut s).unwrap();
    s
}

#[test]
fn xlsx_plain_read_by_calamine() {
    let p = write("plain.xlsx", false);
    let mut wb: Xlsx<_> = open_workbook(&p).unwrap();
    assert_eq!(wb.sheet_names(), ["Calls"]);
    let r = wb.worksheet_range("Calls").unwrap();
    assert_eq!(r.get_size(), (NASTY.len() + 2, 6));
    let hdr: Vec<String> = (0..6).map(|c| r.get((0, c)).unwrap().to_string()).collect();
    assert_eq!(
        hdr,
        [
            "UniqueID",
            "Start time",
            "Duration",
            "Billed seconds",
            "Caller",
            "Caller name"
        ]
    );
    for (i, name) in NASTY.iter().enumerate() {
        let row = i + 1;
        // Timestamp: a real date cell, local Rome time 09:0i.
        match r.get((row, 1)).unwrap() {
            Data::DateTime(dt) => {
                assert!(dt.is_datetime(), "date format recognised");
                let expect = 46110.0 + (9.0 * 3600.0 + i as f64 * 60.0) / 86400.0; // 2026-03-29
                assert!(
                    (dt.as_f64() - expect).abs() < 1e-9,
                    "{} vs {expect}",
                    dt.as_f64()
                );
            }
            other => panic!("start not a date: {other:?}"),
        }
        match r.get((row, 2)).unwrap() {
            Data::DateTime(dt) => {
                assert!(dt.is_duration(), "[h]:mm:ss recognised as duration");
                assert!((dt.as_f64() * 86400.0 - (3725 + i) as f64).abs() < 1e-6);
            }
            other => panic!("duration not a duration: {other:?}"),
        }
        assert_eq!(r.get((row, 3)).unwrap(), &Data::Float(-(i as f64)));
        assert_eq!(
            r.get((row, 4)).unwrap(),
            &Data::String("+390501234567".into())
        );
        // Text cells: strings, including formula-looking ones; forbidden XML chars
        // are dropped by rust_xlsxwriter's escaping (checked loosely).
        match r.get((row, 5)).unwrap() {
            Data::String(s) => {
                if !name
                    .chars()
                    .any(|c| c < ' ' && c != '\t' && c != '\n' && c != '\r')
                {
                    assert_eq!(
                        s.replace("\r\n", "\n").replace('\r', "\n"),
                        name.replace("\r\n", "\n").replace('\r', "\n")
                    );
                }
            }
            Data::Empty => assert!(name.is_empty()),
            other => panic!("name not a string: {other:?}"),
        }
    }
    assert_eq!(r.get((NASTY.len() + 1, 1)).unwrap(), &Data::Empty);
}

#[test]
fn xlsx_formula_injection_written_as_strings() {
    let p = write("inject.xlsx", false);
    let sheet = part(&p, "xl/worksheets/sheet1.xml");
    assert!(!sheet.contains("<f>"), "no formula cells");
    assert!(
        sheet.contains("HYPERLINK"),
        "the text is there, as a string"
    );
    assert!(
        sheet.contains("t=\"inlineStr\""),
        "constant-memory inline strings"
    );
    let mut wb: Xlsx<_> = open_workbook(&p).unwrap();
    let r = wb.worksheet_range("Calls").unwrap();
    assert_eq!(r.get((5, 5)).unwrap(), &Data::String(NASTY[4].into()));
    assert_eq!(r.get((6, 5)).unwrap(), &Data::String(NASTY[5].into()));
    let formulas = wb.worksheet_formula("Calls").unwrap();
    assert!(formulas.used_cells().all(|(_, _, f)| f.is_empty()));
}

#[test]
fn xlsx_frozen_header_and_autofilter() {
    let p = write("pane.xlsx", false);
    let sheet = part(&p, "xl/worksheets/sheet1.xml");
    assert!(
        sheet.contains(
            "<pane ySplit=\"1\" topLeftCell=\"A2\" activePane=\"bottomLeft\" state=\"frozen\"/>"
        ),
        "{sheet:.600}"
    );
    let last = NASTY.len() + 2;
    assert!(
        sheet.contains(&format!("<autoFilter ref=\"A1:F{last}\"/>")),
        "autofilter over all rows"
    );
}

#[test]
fn xlsx_detailed_has_one_sheet_per_table() {
    let p = write("detailed.xlsx", true);
    let mut wb: Xlsx<_> = open_workbook(&p).unwrap();
    assert_eq!(
        wb.sheet_names(),
        ["Calls", "Legs", "Ring attempts", "Operator events"]
    );
    let legs = wb.worksheet_range("Legs").unwrap();
    assert_eq!(legs.get_size(), (3, 3));
    assert_eq!(legs.get((1, 0)).unwrap(), &Data::String("ivr".into()));
    let ev = wb.worksheet_range("Operator events").unwrap();
    assert_eq!(ev.get_size(), (3, 3));
    assert!(matches!(ev.get((1, 0)).unwrap(), Data::DateTime(d) if d.is_datetime()));
    let calls = wb.worksheet_range("Calls").unwrap();
    assert_eq!(calls.get_size(), (3, 6));
    for n in 1..=4 {
        let s = part(&p, &format!("xl/worksheets/sheet{n}.xml"));
        assert!(
            s.contains("state=\"frozen\"") && s.contains("<autoFilter"),
            "sheet{n}"
        );
    }
}

#[test]
fn excel_serial_uses_local_time() {
    let tz = jiff::tz::TimeZone::get("Europe/Rome").unwrap();
    // 2026-03-29T07:00Z = 09:00 local; 46110 = 2026-03-29 in the 1900 system.
    assert!((excel_serial(t0(), &tz) - (46110.0 + 9.0 / 24.0)).abs() < 1e-9);
}
