#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod exportkit;
use calamine::{Data, Reader, Xlsx, open_workbook};
use exportkit::*;
use kpbxd::export::xlsx::{XlsxOptions, XlsxWriter, excel_serial};
use kpbxd::export::{Cell, RowSink};
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

/// What XML 1.0 lets through of `s`.
fn xml_clean(s: &str) -> String {
    s.chars()
        .filter(|&c| (c >= ' ' || "\t\n\r".contains(c)) && c != '\u{FFFE}' && c != '\u{FFFF}')
        .collect()
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
        // Text cells: strings, including formula-looking ones, exactly as pushed
        // (CR included) but without the characters XML 1.0 forbids.
        match r.get((row, 5)).unwrap() {
            Data::String(s) => assert_eq!(s, &xml_clean(name)),
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
    assert!(sheet.contains("t=\"inlineStr\""), "inline strings");
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

#[test]
fn xlsx_bold_header_and_number_formats() {
    let p = write("styles.xlsx", false);
    let styles = part(&p, "xl/styles.xml");
    assert!(styles.contains("<numFmt numFmtId=\"164\" formatCode=\"yyyy-mm-dd hh:mm:ss\"/>"));
    assert!(styles.contains("<numFmt numFmtId=\"165\" formatCode=\"[h]:mm:ss\"/>"));
    // cellXfs: 0 default, 1 bold font, 2 date, 3 duration.
    let xfs = styles.split("<cellXfs").nth(1).unwrap();
    let xf: Vec<&str> = xfs.split("<xf ").skip(1).collect();
    assert!(xf[1].contains("fontId=\"1\""), "{}", xf[1]);
    assert!(xf[2].contains("numFmtId=\"164\""), "{}", xf[2]);
    assert!(xf[3].contains("numFmtId=\"165\""), "{}", xf[3]);
    let fonts: Vec<&str> = styles.split("<font>").skip(1).collect();
    assert!(!fonts[0].contains("<b/>") && fonts[1].contains("<b/>"));

    let sheet = part(&p, "xl/worksheets/sheet1.xml");
    let header = sheet.split("<row r=\"1\">").nth(1).unwrap();
    let header = header.split("</row>").next().unwrap();
    assert_eq!(header.matches("<c ").count(), 6);
    assert_eq!(
        header.matches(" s=\"1\"").count(),
        6,
        "every header cell bold"
    );
    assert!(
        sheet.contains("<c r=\"B2\" s=\"2\"><v>"),
        "timestamp with date format"
    );
    assert!(
        sheet.contains("<c r=\"C2\" s=\"3\"><v>"),
        "duration with [h]:mm:ss"
    );
    assert!(
        sheet.contains("<c r=\"D2\"><v>0</v></c>"),
        "integer as a number"
    );
    assert!(
        sheet.contains("<cols><col min=\"1\" max=\"1\" width="),
        "column widths"
    );
    assert!(
        !sheet.contains("<f>") && !sheet.contains("<f "),
        "no formula"
    );
    assert!(!sheet.contains(" t=\"s\""), "no shared strings");
}

#[test]
fn xlsx_filter_database_names_every_sheet() {
    let p = write("names.xlsx", true);
    let wb = part(&p, "xl/workbook.xml");
    for (i, range) in [
        "'Calls'!$A$1:$F$3",
        "'Legs'!$A$1:$C$3",
        "'Ring attempts'!$A$1:$B$2",
        "'Operator events'!$A$1:$C$3",
    ]
    .iter()
    .enumerate()
    {
        let name = format!(
            "<definedName name=\"_xlnm._FilterDatabase\" localSheetId=\"{i}\" hidden=\"1\">{range}</definedName>"
        );
        assert!(wb.contains(&name), "{name} in {wb}");
    }
    let legs = part(&p, "xl/worksheets/sheet2.xml");
    assert!(legs.contains("<autoFilter ref=\"A1:C3\"/>"));
    assert!(legs.contains("state=\"frozen\""));
    let types = part(&p, "[Content_Types].xml");
    assert_eq!(types.matches("spreadsheetml.worksheet+xml").count(), 4);
}

/// Writes one sheet `title` with the rows pushed by `push`; returns the path.
fn write_one(
    name: &str,
    title: &str,
    tempdir: Option<std::path::PathBuf>,
    push: impl FnOnce(&mut XlsxWriter<std::io::BufWriter<std::fs::File>>),
) -> std::path::PathBuf {
    let p = tmp(name);
    let f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    let mut spec = plain_spec();
    spec.sheets[0].title = title.into();
    let mut w = XlsxWriter::new(f, spec, rome(), XlsxOptions { tempdir }).unwrap();
    push(&mut w);
    w.finish().unwrap();
    p
}

#[test]
fn xlsx_truncates_strips_and_keeps_literal_escapes() {
    let long = "é".repeat(40_000);
    let p = write_one("limits.xlsx", "Calls: 2026/03 [all]", None, |w| {
        w.push_row(
            0,
            &[
                Cell::Text("_x0041_ and _x005F_"),
                Cell::Empty,
                Cell::Empty,
                Cell::Integer(i64::MAX),
                Cell::Phone("  +39 050\u{0} 123  "),
                Cell::Text(&long),
            ],
        )
        .unwrap();
    });
    let mut wb: Xlsx<_> = open_workbook(&p).unwrap();
    assert_eq!(wb.sheet_names(), ["Calls_ 2026_03 _all_"]);
    let r = wb.worksheet_range("Calls_ 2026_03 _all_").unwrap();
    assert_eq!(
        r.get((1, 0)).unwrap(),
        &Data::String("_x0041_ and _x005F_".into())
    );
    assert_eq!(r.get((1, 3)).unwrap(), &Data::Float(i64::MAX as f64));
    assert_eq!(
        r.get((1, 4)).unwrap(),
        &Data::String("  +39 050 123  ".into())
    );
    match r.get((1, 5)).unwrap() {
        Data::String(s) => assert!(s.chars().count() == 32_767 && s.chars().all(|c| c == 'é')),
        other => panic!("not a string: {other:?}"),
    }
}

#[test]
fn xlsx_header_only_export() {
    let p = write_one("empty.xlsx", "Calls", None, |_| {});
    let sheet = part(&p, "xl/worksheets/sheet1.xml");
    assert!(sheet.contains("<autoFilter ref=\"A1:F1\"/>"));
    let mut wb: Xlsx<_> = open_workbook(&p).unwrap();
    let r = wb.worksheet_range("Calls").unwrap();
    assert_eq!(r.get_size(), (1, 6));
}

/// Many calls, each followed by its legs and attempts (two child sheets), so that
/// both child sheets spill to temporary files; every row comes back in order and
/// no temporary file is left in the directory.
#[test]
fn xlsx_interleaved_children_spill_and_come_back_in_order() {
    const CALLS: usize = 3000;
    let dir = tmp("spill-dir");
    std::fs::create_dir_all(&dir).unwrap();
    let p = tmp("interleaved.xlsx");
    let f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    let xo = XlsxOptions {
        tempdir: Some(dir.clone()),
    };
    let mut w = XlsxWriter::new(f, detailed_spec(), rome(), xo).unwrap();
    let mut text = String::new();
    for c in 0..CALLS {
        text.clear();
        text.push_str(&format!("c{c}"));
        let call = [
            Cell::Text(&text),
            Cell::Timestamp(t0()),
            Cell::Duration(c as i64),
            Cell::Integer(c as i64),
            Cell::Phone("+390501234567"),
            Cell::Text("Mario"),
        ];
        w.push_row(0, &call).unwrap();
        for l in 0..2 {
            let kind = format!("leg {c}.{l} <&>");
            w.push_row(
                1,
                &[Cell::Text(&kind), Cell::Phone("201"), Cell::Duration(l)],
            )
            .unwrap();
        }
        let agent = format!("agent {c}");
        w.push_row(2, &[Cell::Text(&agent), Cell::Integer(c as i64)])
            .unwrap();
    }
    w.finish().unwrap();
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no temp file left"
    );

    let mut wb: Xlsx<_> = open_workbook(&p).unwrap();
    let calls = wb.worksheet_range("Calls").unwrap();
    let legs = wb.worksheet_range("Legs").unwrap();
    let attempts = wb.worksheet_range("Ring attempts").unwrap();
    assert_eq!(calls.get_size(), (CALLS + 1, 6));
    assert_eq!(legs.get_size(), (2 * CALLS + 1, 3));
    assert_eq!(attempts.get_size(), (CALLS + 1, 2));
    for c in 0..CALLS {
        assert_eq!(
            calls.get((c + 1, 0)).unwrap(),
            &Data::String(format!("c{c}"))
        );
        for l in 0..2 {
            let want = Data::String(format!("leg {c}.{l} <&>"));
            assert_eq!(legs.get((2 * c + l + 1, 0)).unwrap(), &want);
        }
        assert_eq!(attempts.get((c + 1, 1)).unwrap(), &Data::Float(c as f64));
    }
}

/// An output that fails after `left` bytes.
struct Failing {
    left: usize,
}

impl std::io::Write for Failing {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("disk full"));
        }
        let n = b.len().min(self.left);
        self.left -= n;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn xlsx_output_errors_are_export_errors() {
    // Fail at many points of a small detailed export: an error, never a panic,
    // and once a write failed nothing reports success.
    for left in (0..20_000).step_by(97) {
        let w = XlsxWriter::new(
            Failing { left },
            detailed_spec(),
            rome(),
            Default::default(),
        );
        let Ok(mut w) = w else {
            continue;
        };
        let mut failed = false;
        for _ in 0..50 {
            let row = [Cell::Text("x"), Cell::Phone("1"), Cell::Duration(1)];
            failed |= w.push_row(1, &row).is_err();
            failed |= w.push_row(0, &[Cell::Empty; 6]).is_err();
        }
        let finished = w.finish();
        if failed {
            assert!(finished.is_err(), "{left}: finish after a failed write");
        }
        if left < 2_000 {
            assert!(finished.is_err(), "{left}: a small output cannot hold it");
        }
    }
}

/// Issue 21: 1,050,000 calls do not fit one worksheet (Excel's last row is
/// 1,048,576): the export continues on `Calls (2)`, which calamine reads
/// with its header and the 1,425 rows that did not fit, in order.
#[test]
fn xlsx_past_excels_last_row_continues_on_a_second_sheet() {
    const CALLS: u64 = 1_050_000;
    let p = write_one("continued.xlsx", "Calls", None, |w| {
        let ts = t0();
        let mut id = String::new();
        for i in 0..CALLS {
            id.clear();
            use std::fmt::Write as _;
            let _ = write!(id, "call-{i}");
            w.push_row(
                0,
                &[
                    Cell::Text(&id),
                    Cell::Timestamp(ts),
                    Cell::Duration(60),
                    Cell::Integer(i as i64),
                    Cell::Phone("201"),
                    Cell::Empty,
                ],
            )
            .unwrap();
        }
    });
    let mut book: Xlsx<_> = open_workbook(&p).unwrap();
    assert_eq!(book.sheet_names(), ["Calls", "Calls (2)"]);
    let rest = book.worksheet_range("Calls (2)").unwrap();
    let rows: Vec<_> = rest.rows().collect();
    assert_eq!(rows[0][0], Data::String("UniqueID".into()), "header again");
    assert_eq!(rows.len() as u64, 1 + CALLS - 1_048_575);
    assert_eq!(rows[1][0], Data::String("call-1048575".into()));
    assert_eq!(
        rows.last().unwrap()[0],
        Data::String(format!("call-{}", CALLS - 1))
    );
    let _ = std::fs::remove_file(&p);
}
