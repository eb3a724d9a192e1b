//! The real daemon following Asterisk files: pieces and partial lines,
//! a quoted newline split across writes, SIGKILL and restart mid-ingestion,
//! rotation, truncation, malformed lines; every export format read back by
//! an independent reader (serde_json, calamine, python3's csv and
//! xml.etree).
#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use calamine::{Data, Reader, Xlsx, open_workbook};
use common::Daemon;
use serde_json::Value;

const MASTER: &[u8] = include_bytes!("fixtures/Master.csv");
const QUEUE_LOG: &[u8] = include_bytes!("fixtures/queue_log");

struct Box_ {
    _tmp: tempfile::TempDir,
    d: Daemon,
    master: PathBuf,
    queue: PathBuf,
}

fn start() -> Box_ {
    let tmp = tempfile::tempdir().unwrap();
    let ast = tmp.path().join("asterisk");
    std::fs::create_dir_all(ast.join("cdr-csv")).unwrap();
    let mut d = Daemon::with(tmp.path(), &[("asterisk_log_dir", ast.to_str().unwrap())]);
    d.start();
    d.ok(&["system", "set", "timezone=Europe/Rome"]);
    Box_ {
        d,
        master: ast.join("cdr-csv/Master.csv"),
        queue: ast.join("queue_log"),
        _tmp: tmp,
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

fn file_status(d: &Daemon, role: &str) -> Value {
    let s = d.json(&["cdr", "status"]);
    s["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["role"] == role)
        .cloned()
        .unwrap()
}

/// Waits (bounded) until the follower of `role` has parsed `records`.
fn wait_records(d: &Daemon, role: &str, records: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let f = file_status(d, role);
        if f["records"].as_u64() == Some(records) {
            return f;
        }
        assert!(
            Instant::now() < deadline,
            "{role}: expected {records} records, status {f}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `n` calls are stored and the count stays (flushes done).
fn wait_rows(d: &Daemon, field: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = d.json(&["cdr", "status"]);
        if s[field].as_u64() == Some(n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} {field}, status {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

const RANGE: [&str; 4] = ["--from", "2026-03-01", "--to", "2026-04-01"];

fn export(d: &Daemon, area: &str, extra: &[&str]) -> Vec<u8> {
    let mut args = vec![area, "export"];
    args.extend_from_slice(&RANGE);
    args.extend_from_slice(extra);
    let out = d.kpbx(&args);
    assert!(
        out.status.success(),
        "kpbx {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn export_json(d: &Daemon, area: &str, extra: &[&str]) -> Value {
    let mut args = vec!["--format", "json"];
    args.extend_from_slice(extra);
    serde_json::from_slice(&export(d, area, &args)).expect("export is JSON")
}

fn calls_of(v: &Value) -> Vec<Value> {
    v["calls"].as_array().unwrap().clone()
}

fn find<'a>(rows: &'a [Value], key: &str, value: &str) -> &'a Value {
    rows.iter()
        .find(|r| r[key] == value)
        .unwrap_or_else(|| panic!("no row with {key} = {value}"))
}

/// Every id once.
fn assert_unique(rows: &[Value], key: &str) {
    let mut ids: Vec<String> = rows.iter().map(|r| r[key].to_string()).collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate {key}s");
}

fn check_fixture_calls(calls: &[Value]) {
    assert_unique(calls, "id");
    let first = find(calls, "id", "1774000800.1");
    assert_eq!(first["start"], "2026-03-20T10:00:00+01:00");
    assert_eq!(first["answer"], "2026-03-20T10:00:04+01:00");
    assert_eq!(first["end"], "2026-03-20T10:01:04+01:00");
    assert_eq!(first["duration"], 64);
    assert_eq!(first["billsec"], 60);
    assert_eq!(first["caller_number"], "201");
    assert_eq!(first["caller_name"], "Mario Rossi");
    assert_eq!(first["called_number"], "202");
    assert_eq!(first["answered_by"], "202");
    assert_eq!(first["status"], "ANSWERED");
    assert_eq!(first["direction"], "internal");
    assert_eq!(first["legs"][0]["lastdata"], "PJSIP/202,30,tT");
    let ring = find(calls, "id", "1774004400.5");
    assert_eq!(ring["legs"].as_array().unwrap().len(), 2, "{ring}");
    assert_eq!(ring["caller_name"], "Łukasz Żółć");
    assert_eq!(ring["answer"], "2026-03-20T11:00:08+01:00");
    assert_eq!(ring["billsec"], 180);
    assert_eq!(ring["answered_by"], "203");
    assert_eq!(ring["direction"], "inbound");
    let big = find(calls, "id", "1774008000.8");
    assert_eq!(big["caller_name"], "Mario \"Big\" Rossi");
    assert_eq!(big["answer"], Value::Null, "missing answer time");
    assert_eq!(big["status"], "BUSY");
    let note = find(calls, "id", "1774009800.10");
    assert_eq!(note["legs"][0]["userfield"], "callback\nrequested");
    let anon = find(calls, "id", "1774011600.11");
    assert_eq!(anon["caller_number"], Value::Null);
    assert_eq!(anon["direction"], "unknown");
}

/// A Master.csv line of one more call.
fn extra_call(n: u32) -> String {
    format!(
        "\"\",\"20{n}\",\"30{n}\",\"from-internal\",\"\"\"X{n}\"\" <20{n}>\",\"PJSIP/20{n}-1\",\"PJSIP/30{n}-2\",\"Dial\",\"PJSIP/30{n}\",\"2026-03-21 09:0{n}:00\",\"2026-03-21 09:0{n}:01\",\"2026-03-21 09:0{n}:11\",11,10,\"ANSWERED\",\"DOCUMENTATION\",\"x.{n}\",\"\",\"\",\"x.{n}\",{n}\n"
    )
}

#[test]
fn master_csv_pieces_restart_rotation_truncation() {
    let mut b = start();
    let d = &mut b.d;
    // The 6th record has a newline inside a quoted field: split right after it.
    let quoted_nl = MASTER.windows(9).position(|w| w == b"callback\n").unwrap() + 9;
    append(&b.master, &MASTER[..700]);
    wait_records(d, "master_csv", 2);
    append(&b.master, &MASTER[700..quoted_nl]);
    wait_records(d, "master_csv", 5);
    // SIGKILL with a partial (quoted) record pending, then restart.
    d.kill9();
    d.start();
    append(&b.master, &MASTER[quoted_nl..MASTER.len() - 5]);
    wait_records(d, "master_csv", 8);
    append(&b.master, &MASTER[MASTER.len() - 5..]);
    let f = wait_records(d, "master_csv", 9);
    assert_eq!(f["state"], "following");
    assert_eq!(f["malformed"], 0);
    wait_rows(d, "calls", 8);
    let calls = calls_of(&export_json(d, "cdr", &[]));
    assert_eq!(calls.len(), 8);
    check_fixture_calls(&calls);

    // A malformed line is counted and reported; ingestion goes on.
    append(&b.master, b"\"not\",\"a\",\"cdr\"\n");
    append(&b.master, extra_call(1).as_bytes());
    let f = wait_records(d, "master_csv", 10);
    assert_eq!(f["malformed"], 1);
    let reason = f["last_errors"][0][1].as_str().unwrap();
    assert!(reason.contains("columns"), "{reason}");
    assert_eq!(f["last_errors"][0][0], 11, "line of the bad record");

    // Rotation: renamed, one more line lands in the old file, then a new file.
    let rotated = b.master.with_extension("csv.1");
    std::fs::rename(&b.master, &rotated).unwrap();
    append(&rotated, extra_call(2).as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    append(&b.master, extra_call(3).as_bytes());
    let f = wait_records(d, "master_csv", 12);
    assert!(f["rotations"].as_u64().unwrap() >= 1, "{f}");
    wait_rows(d, "calls", 11);

    // Rotation while the daemon is down: the rest of the old file is found.
    d.stop();
    let rotated2 = b.master.with_extension("csv.2");
    std::fs::rename(&b.master, &rotated2).unwrap();
    append(&rotated2, extra_call(4).as_bytes());
    append(&b.master, extra_call(5).as_bytes());
    d.start();
    wait_records(d, "master_csv", 14);
    wait_rows(d, "calls", 13);

    // Truncation in place (`> Master.csv`), then new lines from the start.
    let rotations = file_status(d, "master_csv")["rotations"].as_u64().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&b.master)
        .unwrap()
        .set_len(0)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while file_status(d, "master_csv")["rotations"].as_u64().unwrap() == rotations {
        assert!(Instant::now() < deadline, "truncation not seen");
        std::thread::sleep(Duration::from_millis(100));
    }
    append(&b.master, extra_call(6).as_bytes());
    wait_records(d, "master_csv", 15);
    wait_rows(d, "calls", 14);

    // A restart re-reads nothing twice.
    d.kill9();
    d.start();
    std::thread::sleep(Duration::from_millis(1500));
    let f = file_status(d, "master_csv");
    assert_eq!(f["records"], 15);
    let calls = calls_of(&export_json(d, "cdr", &[]));
    assert_eq!(calls.len(), 14);
    check_fixture_calls(&calls);
    for n in 1..=6 {
        let c = find(&calls, "id", &format!("x.{n}"));
        assert_eq!(c["caller_name"], format!("X{n}"));
        assert_eq!(c["billsec"], 10);
    }
}

fn check_queue(v: &Value, entries: usize) {
    let rows = v["queue_entries"].as_array().unwrap();
    assert_eq!(rows.len(), entries);
    assert_unique(rows, "callid");
    let a = find(rows, "callid", "1774000100.1");
    assert_eq!(a["queue"], "support");
    assert_eq!(a["entered"], "2026-03-20T10:48:20+01:00");
    assert_eq!(a["caller_number"], "0212345678");
    assert_eq!(a["caller_name"], "Łukasz Żółć");
    assert_eq!(a["entry_position"], 1);
    assert_eq!(a["wait"], 30);
    assert_eq!(a["ring"], 14);
    assert_eq!(a["agent"], "Anna Bianchi");
    assert_eq!(a["talk"], 120);
    assert_eq!(a["outcome"], "answered");
    assert_eq!(a["outcome_detail"], "caller");
    let attempts = a["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0]["attempt_agent"], "Paolo Verdi");
    assert_eq!(attempts[0]["result"], "no_answer");
    assert_eq!(attempts[0]["ring_ms"], 15000);
    assert_eq!(attempts[1]["result"], "connected");
    let outcome = |id: &str| find(rows, "callid", id)["outcome"].clone();
    assert_eq!(outcome("1774000140.3"), "abandoned");
    assert_eq!(outcome("1774000300.5"), "timeout");
    assert_eq!(outcome("1774000410.7"), "exit_empty");
    assert_eq!(outcome("1774000420.8"), "exit_with_key");
    assert_eq!(outcome("1774000510.9"), "transferred");
    assert_eq!(outcome("1774000610.11"), "transferred");
    assert_eq!(outcome("1774000710.14"), "answered");
    let t = find(rows, "callid", "1774000510.9");
    assert_eq!(t["outcome_detail"], "blind 250@from-internal");
    assert_eq!(t["talk"], 80);
}

#[test]
fn queue_log_pieces_open_entry_across_restart_and_every_format() {
    let mut b = start();
    let d = &mut b.d;
    // Three pieces, each ending mid-line.
    let cut1 = 333;
    let cut2 = QUEUE_LOG.len() - 40;
    append(&b.queue, &QUEUE_LOG[..cut1]);
    std::thread::sleep(Duration::from_millis(1200));
    append(&b.queue, &QUEUE_LOG[cut1..cut2]);
    std::thread::sleep(Duration::from_millis(1200));
    append(&b.queue, &QUEUE_LOG[cut2..]);
    let f = wait_records(d, "queue_log", 36);
    assert_eq!(f["open"], 1, "the last caller is still queued: {f}");
    wait_rows(d, "queue_entries", 8);
    wait_rows(d, "operator_events", 10);
    let v = export_json(d, "callcenter", &["--operator-events"]);
    check_queue(&v, 8);
    let ops = v["operator_events"].as_array().unwrap();
    assert_eq!(ops.len(), 10);
    let pause = find(ops, "action", "pause");
    assert_eq!(pause["detail"], "Lunch");
    assert_eq!(pause["event_agent"], "Anna Bianchi");
    assert_eq!(pause["time"], "2026-03-20T10:51:00+01:00");

    // The queued caller's entry is open at SIGKILL; its end comes after.
    d.kill9();
    d.start();
    append(
        &b.queue,
        b"1774001000|1774000900.16|support|NONE|ABANDON|1|1|100\n",
    );
    wait_records(d, "queue_log", 37);
    wait_rows(d, "queue_entries", 9);
    let v = export_json(d, "callcenter", &["--operator-events"]);
    check_queue(&v, 9);
    assert_eq!(v["operator_events"].as_array().unwrap().len(), 10);
    let late = find(
        v["queue_entries"].as_array().unwrap(),
        "callid",
        "1774000900.16",
    );
    assert_eq!(late["caller_number"], "0266778899");
    assert_eq!(late["entered"], "2026-03-20T11:01:40+01:00");
    assert_eq!(late["outcome"], "abandoned");
    assert_eq!(late["wait"], 100);

    // Masking.
    let v = export_json(d, "callcenter", &["--mask"]);
    let a = find(
        v["queue_entries"].as_array().unwrap(),
        "callid",
        "1774000100.1",
    );
    assert_eq!(a["caller_number"], "0212345xxx");

    // CSV and CSV detailed, read by python3's csv module.
    let csv = export(
        d,
        "callcenter",
        &["--format", "csv", "--delimiter", ";", "--bom"],
    );
    assert!(csv.starts_with("\u{feff}".as_bytes()));
    let rows = python_csv(&csv[3..], ';');
    assert_eq!(rows.len(), 10, "header + 9 entries");
    assert_eq!(rows[0][0], "Call ID");
    let a = rows.iter().find(|r| r[0] == "1774000100.1").unwrap();
    assert_eq!(a[1], "support");
    assert_eq!(a[2], "2026-03-20 10:48:20");
    assert_eq!(a[4], "Łukasz Żółć");
    let det = export(
        d,
        "callcenter",
        &["--format", "csv-detailed", "--operator-events"],
    );
    let rows = python_csv(&det, ',');
    assert_eq!(rows[0][0], "record_type");
    let count = |t: &str| rows.iter().filter(|r| r[0] == t).count();
    assert_eq!(count("queue_entries"), 9);
    assert_eq!(count("operator_events"), 10);
    assert_eq!(count("attempts"), 7);

    // XML, by a strict parser.
    let xml = export(d, "callcenter", &["--format", "xml", "--operator-events"]);
    let counted = python(
        "import sys, xml.etree.ElementTree as E\n\
         r = E.fromstring(sys.stdin.buffer.read())\n\
         q = r.find('queue_entries').findall('row')\n\
         o = r.find('operator_events').findall('row')\n\
         a = [x for x in q if x.findtext('callid') == '1774000100.1'][0]\n\
         print(len(q), len(o), a.findtext('caller_name'), len(a.find('attempts').findall('row')))\n",
        &xml,
    );
    assert_eq!(counted.trim(), "9 10 Łukasz Żółć 2");

    // XLSX detailed, by calamine.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cc.xlsx");
    let mut args = vec!["callcenter", "export"];
    args.extend_from_slice(&RANGE);
    let p = path.to_str().unwrap();
    args.extend_from_slice(&["--format", "xlsx-detailed", "--operator-events", "-o", p]);
    let summary = d.ok(&args);
    assert!(summary.starts_with("exported 19 rows"), "{summary}");
    let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
    let q = wb.worksheet_range("Queue calls").unwrap();
    assert_eq!(q.height(), 10);
    let row = q
        .rows()
        .find(|r| r[0] == Data::String("1774000100.1".into()))
        .unwrap();
    assert_eq!(row[4], Data::String("Łukasz Żółć".into()));
    assert_eq!(wb.worksheet_range("Ring attempts").unwrap().height(), 8);
    assert_eq!(wb.worksheet_range("Operator events").unwrap().height(), 11);
}

#[test]
fn calls_import_export_formats_and_intervals() {
    let b = start();
    let d = &b.d;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Master.csv");
    std::fs::write(&file, MASTER).unwrap();
    // Followed files are off: only the import fills the store.
    d.ok(&["system", "set", "cdr_master_csv=off", "cdr_queue_log=off"]);
    let out = d.ok(&["cdr", "import", file.to_str().unwrap()]);
    assert!(out.contains("9 records, 0 malformed, 8 rows"), "{out}");
    // Twice: nothing duplicated.
    d.ok(&["cdr", "import", file.to_str().unwrap()]);
    let s = d.json(&["cdr", "status"]);
    assert_eq!(s["calls"], 8);
    check_fixture_calls(&calls_of(&export_json(d, "cdr", &[])));

    // Plain CSV has no legs and neutralises nothing here.
    let rows = python_csv(&export(d, "cdr", &["--format", "csv"]), ',');
    assert_eq!(rows.len(), 9);
    let r = rows.iter().find(|r| r[0] == "1774004400.5").unwrap();
    assert_eq!(
        r[1..7],
        [
            "2026-03-20 11:00:00",
            "2026-03-20 11:00:08",
            "2026-03-20 11:03:08",
            "188",
            "180",
            "0212345678"
        ]
    );
    let rows = python_csv(
        &export(d, "cdr", &["--format", "csv-detailed", "--mask"]),
        ',',
    );
    assert_eq!(rows.iter().filter(|r| r[0] == "legs").count(), 9);
    assert!(rows.iter().any(|r| r.iter().any(|c| c == "0212345xxx")));
    assert!(
        !rows
            .iter()
            .any(|r| r.iter().any(|c| c.contains("0212345678")))
    );

    let xml = export(d, "cdr", &["--format", "xml"]);
    let out = python(
        "import sys, xml.etree.ElementTree as E\n\
         r = E.fromstring(sys.stdin.buffer.read())\n\
         c = r.find('calls').findall('row')\n\
         n = [x for x in c if x.findtext('id') == '1774009800.10'][0]\n\
         print(len(c), repr(n.find('legs').find('row').findtext('userfield')))\n",
        &xml,
    );
    assert_eq!(out.trim(), "8 'callback\\nrequested'");

    let path = dir.path().join("calls.xlsx");
    let mut args = vec!["cdr", "export"];
    args.extend_from_slice(&RANGE);
    args.extend_from_slice(&["--format", "xlsx", "-o", path.to_str().unwrap()]);
    d.ok(&args);
    let mut wb: Xlsx<_> = open_workbook(&path).unwrap();
    let calls = wb.worksheet_range("Calls").unwrap();
    assert_eq!(calls.height(), 9);
    assert!(
        wb.worksheet_range("Legs").is_err(),
        "plain xlsx has no legs"
    );

    // A narrower range, start inclusive and end exclusive.
    let v: Value = serde_json::from_slice(
        &d.kpbx(&[
            "cdr",
            "export",
            "--from",
            "2026-03-20 11:00",
            "--to",
            "2026-03-20 12:30",
            "--format",
            "json",
        ])
        .stdout,
    )
    .unwrap();
    let ids: Vec<&str> = v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1774004400.5", "1774008000.8"]);

    // Named intervals run (the fixture is in the past: empty, valid JSON).
    let out = d.kpbx(&[
        "cdr",
        "export",
        "--interval",
        "previous-week",
        "--format",
        "json",
    ]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["calls"].as_array().unwrap().is_empty());
    // Bad requests are refused with a reason.
    let out = d.kpbx(&["cdr", "export", "--interval", "last-year"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown interval"));
    let out = d.kpbx(&[
        "cdr",
        "export",
        "--interval",
        "current-day",
        "--format",
        "pdf",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown format"));
}

fn python(script: &str, input: &[u8]) -> String {
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed (Debian package python3)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Rows of a CSV as python3's csv module (strict mode) reads them.
fn python_csv(bytes: &[u8], delimiter: char) -> Vec<Vec<String>> {
    let script = format!(
        "import sys, csv, io, json\n\
         t = io.TextIOWrapper(sys.stdin.buffer, encoding='utf-8', newline='')\n\
         print(json.dumps(list(csv.reader(t, delimiter='{delimiter}', strict=True))))\n"
    );
    serde_json::from_str(&python(&script, bytes)).unwrap()
}
