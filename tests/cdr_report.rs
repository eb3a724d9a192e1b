//! The library-level report functions the scheduled-task runner calls:
//! import into a real store, export to any `Write`, read back.
#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

use calamine::{Data, Reader, Xlsx, open_workbook};
use jiff::tz::TimeZone;
use kpbxd::cdr::follow::FileKind;
use kpbxd::cdr::master_csv::{ColumnMapping, MasterFormat};
use kpbxd::clock::WallTime;
use kpbxd::report::ingest::{import, prune};
use kpbxd::report::{ExportOptions, Format, TimeRange, export_calls, export_queue};
use kpbxd::store::Store;

const MASTER: &[u8] = include_bytes!("fixtures/Master.csv");
const QUEUE_LOG: &[u8] = include_bytes!("fixtures/queue_log");

fn rome() -> TimeZone {
    TimeZone::get("Europe/Rome").unwrap()
}

fn master() -> FileKind {
    FileKind::Master(Box::new(MasterFormat {
        mapping: ColumnMapping::CDR_CSV,
        tz: rome(),
    }))
}

fn march() -> TimeRange {
    TimeRange::new(
        "2026-03-01T00:00:00Z".parse().unwrap(),
        "2026-04-01T00:00:00Z".parse().unwrap(),
    )
}

fn opts() -> ExportOptions {
    ExportOptions {
        tz: rome(),
        ..ExportOptions::default()
    }
}

/// A call whose caller name is a spreadsheet formula.
const FORMULA: &[u8] = b"\"\",\"=1+1\",\"202\",\"c\",\"\"\"=HYPERLINK(\"\"http://x\"\")\"\" <+390501234567>\",\"PJSIP/a-1\",\"PJSIP/202-2\",\"Dial\",\"\",\"2026-03-22 10:00:00\",,\"2026-03-22 10:00:05\",5,0,\"NO ANSWER\",\"\",\"f.1\",\"\",\"\",\"f.1\",1\n";

#[test]
fn import_then_export_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), 64, WallTime::from_unix_micros(0)).unwrap();
    let s = import(&store, master(), MASTER).unwrap();
    assert_eq!((s.records, s.malformed, s.rows), (9, 0, 8));
    import(&store, master(), FORMULA).unwrap();
    let s = import(&store, FileKind::QueueLog, QUEUE_LOG).unwrap();
    assert_eq!(s.records, 36);
    // 8 finished entries, the queued caller as incomplete, 10 operator events.
    assert_eq!(s.rows, 19);

    let mut json = Vec::new();
    let sum = export_calls(&store, march(), Format::Json, &opts(), &mut json).unwrap();
    assert_eq!(sum.rows, 9);
    assert_eq!(sum.bytes, json.len() as u64);
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let calls = v["calls"].as_array().unwrap();
    assert_eq!(calls[0]["id"], "1774000800.1");
    assert_eq!(calls[0]["legs"][0]["uniqueid"], "1774000800.1");
    let f = calls.iter().find(|c| c["id"] == "f.1").unwrap();
    assert_eq!(f["caller_name"], "=HYPERLINK(\"http://x\")");
    assert_eq!(f["caller_number"], "+390501234567");

    // CSV: formulas neutralised, a bare E.164 number kept.
    let mut csv = Vec::new();
    export_calls(&store, march(), Format::Csv, &opts(), &mut csv).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let line = text.lines().find(|l| l.starts_with("f.1,")).unwrap();
    assert!(
        line.contains(",\"'=HYPERLINK(\"\"http://x\"\")\","),
        "{line}"
    );
    assert!(line.contains(",+390501234567,"), "{line}");

    // XLSX: the formula is an inert string cell.
    let path = dir.path().join("calls.xlsx");
    let file = std::fs::File::create(&path).unwrap();
    export_calls(&store, march(), Format::XlsxDetailed, &opts(), file).unwrap();
    let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
    let calls = wb.worksheet_range("Calls").unwrap();
    let row = calls
        .rows()
        .find(|r| r[0] == Data::String("f.1".into()))
        .unwrap();
    assert_eq!(row[7], Data::String("=HYPERLINK(\"http://x\")".into()));
    assert!(wb.worksheet_formula("Calls").unwrap().is_empty());
    assert_eq!(wb.worksheet_range("Legs").unwrap().height(), 11);

    // Call center, XML with operator events, parsed strictly.
    let mut xml = Vec::new();
    let o = ExportOptions {
        operator_events: true,
        ..opts()
    };
    let sum = export_queue(&store, march(), Format::Xml, &o, &mut xml).unwrap();
    assert_eq!(sum.rows, 19);
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, xml.etree.ElementTree as E\n\
             r = E.fromstring(open(sys.argv[1], 'rb').read())\n\
             q = r.find('queue_entries').findall('row')\n\
             print(len(q), [x.findtext('outcome') for x in q][-1])",
        ])
        .arg({
            let p = dir.path().join("q.xml");
            std::fs::write(&p, &xml).unwrap();
            p
        })
        .output()
        .expect("python3 is needed (Debian package python3)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "9 incomplete");

    // An empty range is a valid, empty export; a reversed one is refused.
    let mut empty = Vec::new();
    let r = TimeRange::new(
        "2027-01-01T00:00:00Z".parse().unwrap(),
        "2027-01-02T00:00:00Z".parse().unwrap(),
    );
    assert_eq!(
        export_calls(&store, r, Format::Json, &opts(), &mut empty)
            .unwrap()
            .rows,
        0
    );
    assert_eq!(String::from_utf8(empty).unwrap().trim(), "{\"calls\":[]}");
    let back = TimeRange {
        start_us: r.end_us,
        end_us: r.start_us,
    };
    assert!(export_calls(&store, back, Format::Csv, &opts(), Vec::new()).is_err());

    // Retention: everything before March 21st goes.
    let cutoff = "2026-03-21T00:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_microsecond();
    assert_eq!(prune(&store, cutoff).unwrap(), 8 + 9 + 10);
    let mut json = Vec::new();
    export_calls(&store, march(), Format::Json, &opts(), &mut json).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["calls"].as_array().unwrap().len(), 1);
}
