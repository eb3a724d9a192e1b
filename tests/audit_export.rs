//! Audit exports in every format, from a real store, read back by
//! independent readers: calamine (XLSX) and Python's csv, json and
//! xml.etree (python3). Filters, column selection and newest-first order.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

use std::process::Command;

use calamine::{Data, Reader, Xlsx, open_workbook};
use kpbxd::audit::export::{Format, export};
use kpbxd::audit::{Filter, Month, period};
use kpbxd::clock::WallTime;
use kpbxd::model::{Change, Object, Origin, Setting, Source};
use kpbxd::store::Store;

/// 2026-10-15 and 2026-11-03..05, 12:00 UTC.
fn at(month: i8, day: i8) -> WallTime {
    let ts = jiff::civil::date(2026, month, day)
        .at(12, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp();
    WallTime::from_unix_micros(ts.as_microsecond())
}

fn store(dir: &std::path::Path) -> Store {
    let s = Store::open(dir, 64, at(10, 1)).unwrap();
    let by = |user: &str, ip: Option<&str>| Origin {
        user: user.to_string(),
        source: ip.map_or(Source::Console, |ip| Source::Address(ip.parse().unwrap())),
    };
    let set = |k: &str, v: &str| Change::put(Object::Setting(Setting::parse(k, v).unwrap()));
    s.commit(&by("root", None), at(10, 15), &[set("hostname", "october")])
        .unwrap();
    s.commit(
        &by("ann", Some("192.0.2.7")),
        at(11, 3),
        &[
            set("hostname", "nov-a"),
            set("location", "Room \"1\", <b>&"),
        ],
    )
    .unwrap();
    s.commit(&by("bob", None), at(11, 4), &[set("hostname", "nov-b")])
        .unwrap();
    s.commit(
        &by("ann", Some("192.0.2.7")),
        at(11, 5),
        &[set("location", "=cmd()")],
    )
    .unwrap();
    s
}

fn november() -> Filter {
    let (start_us, end_us) = period(
        Month::parse("2026-11").unwrap(),
        None,
        &jiff::tz::TimeZone::UTC,
    )
    .unwrap();
    Filter {
        start_us,
        end_us,
        user: None,
        kind: None,
        action: None,
    }
}

fn python(script: &str, file: &std::path::Path) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(file)
        .output()
        .expect("python3 is missing: apt-get install python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write(
    s: &Store,
    filter: &Filter,
    columns: &[&str],
    format: Format,
    path: &std::path::Path,
) -> u64 {
    let cols: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let (_, rows) = export(s, filter, &cols, format, jiff::tz::TimeZone::UTC, f).unwrap();
    rows
}

#[test]
fn every_format_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir.path().join("data"));
    let f = november();

    // CSV, all columns: newest first, October left out.
    let csv = dir.path().join("a.csv");
    assert_eq!(write(&s, &f, &[], Format::Csv, &csv), 4);
    let rows = python(
        "import csv,sys\nfor r in csv.DictReader(open(sys.argv[1], newline='')):\n print('|'.join([r['Transaction'],r['Index'],r['Day'],r['User'],r['IP address'],r['Action'],r['Object type'],r['Object']]))",
        &csv,
    );
    assert_eq!(
        rows,
        "4|0|5|ann|192.0.2.7|update|setting|location\n\
         3|0|4|bob|console|update|setting|hostname\n\
         2|1|3|ann|192.0.2.7|create|setting|location\n\
         2|0|3|ann|192.0.2.7|update|setting|hostname\n"
    );
    // A formula-like value is neutralised for spreadsheets.
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(!text.contains(",=cmd()"), "{text}");

    // JSON, selected columns, filtered by user.
    let json = dir.path().join("a.json");
    let ann = Filter {
        user: Some("ann".into()),
        ..f.clone()
    };
    assert_eq!(
        write(&s, &ann, &["txid", "description"], Format::Json, &json),
        3
    );
    let out = python(
        "import json,sys\nfor r in json.load(open(sys.argv[1])):\n print(sorted(r.keys()), r['txid'], r['description'])",
        &json,
    );
    assert_eq!(
        out,
        "['description', 'index', 'txid'] 4 set location to \"=cmd()\"\n\
         ['description', 'index', 'txid'] 2 set location to \"Room \\\"1\\\", <b>&\"\n\
         ['description', 'index', 'txid'] 2 set hostname to \"nov-a\"\n"
    );

    // XML, escaped text survives.
    let xml = dir.path().join("a.xml");
    assert_eq!(
        write(&s, &f, &["user", "description", "time"], Format::Xml, &xml),
        4
    );
    let out = python(
        "import sys,xml.etree.ElementTree as E\nfor r in E.parse(sys.argv[1]).getroot().iter('row'):\n print(r.find('user').text, r.find('time').text, r.find('description').text)",
        &xml,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(lines[2].starts_with("ann 2026-11-03T12:00:00"), "{out}");
    assert!(
        lines[2].ends_with("set location to \"Room \\\"1\\\", <b>&\""),
        "{out}"
    );

    // XLSX by calamine.
    let xlsx = dir.path().join("a.xlsx");
    assert_eq!(
        write(
            &s,
            &f,
            &["txid", "time", "user", "action"],
            Format::Xlsx,
            &xlsx
        ),
        4
    );
    let mut wb: Xlsx<_> = open_workbook(&xlsx).unwrap();
    let r = wb.worksheet_range("Audit log").unwrap();
    assert_eq!(r.get_size(), (5, 5));
    let header: Vec<String> = (0..5).map(|c| r.get((0, c)).unwrap().to_string()).collect();
    assert_eq!(header, ["Transaction", "Index", "Time", "User", "Action"]);
    assert_eq!(r.get((1, 0)), Some(&Data::Float(4.0)));
    assert!(matches!(r.get((1, 2)), Some(Data::DateTime(_))));
    assert_eq!(r.get((4, 3)).unwrap().to_string(), "ann");
    assert_eq!(r.get((2, 4)).unwrap().to_string(), "update");
}

#[test]
fn an_empty_period_is_a_valid_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir.path().join("data"));
    let (start_us, end_us) = period(
        Month::parse("2001-01").unwrap(),
        None,
        &jiff::tz::TimeZone::UTC,
    )
    .unwrap();
    let f = Filter {
        start_us,
        end_us,
        user: None,
        kind: None,
        action: None,
    };
    let json = dir.path().join("e.json");
    assert_eq!(write(&s, &f, &[], Format::Json, &json), 0);
    assert_eq!(
        python(
            "import json,sys\nprint(json.load(open(sys.argv[1])))",
            &json
        ),
        "[]\n"
    );
    assert!(Format::parse("pdf").is_err());
}
