//! Scheduled tasks and mail, end to end: the real daemon, real call records
//! imported through `kpbx cdr import`, and a real SMTP server
//! (python3-aiosmtpd, `tests/fixtures/mail/smtp_sink.py`) with STARTTLS and
//! authentication.
#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Daemon;

const PYTHON: &str = "/usr/bin/python3";
const SINK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/mail/smtp_sink.py"
);
const MASTER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/Master.csv");

/// The SMTP server, killed by PID when dropped.
struct Sink {
    child: Child,
    out: PathBuf,
}

impl Sink {
    fn start(dir: &Path, port: u16, extra: &[&str]) -> Sink {
        let ok = Command::new(PYTHON)
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "{PYTHON} with aiosmtpd is required: apt-get install python3-aiosmtpd (make test-deps)"
        );
        let out = dir.join(format!("sink-{port}"));
        std::fs::create_dir_all(&out).unwrap();
        let mut child = Command::new(PYTHON)
            .arg(SINK)
            .args(["--port", &port.to_string(), "--out", out.to_str().unwrap()])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
        });
        let got = rx.recv_timeout(Duration::from_secs(15));
        if got.as_deref().map(str::trim) != Ok("READY") {
            let _ = child.kill();
            let _ = child.wait();
            panic!("SMTP sink did not start: {got:?}");
        }
        Sink { child, out }
    }

    /// Received messages, one per recipient, in arrival order.
    fn messages(&self) -> Vec<serde_json::Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A self-signed certificate for `localhost`: (cert path, key path).
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (c, k) = (dir.join("smtp.crt"), dir.join("smtp.key"));
    std::fs::write(&c, cert.pem()).unwrap();
    std::fs::write(&k, key.serialize_pem()).unwrap();
    (c, k)
}

/// Seconds to add to the clock so that it reads 2026-04-01 02:59:50 UTC now:
/// "previous month" is then March 2026, the month of the fixture's calls,
/// and a daily 03:00 task is due in ten seconds.
fn offset_to_april() -> i64 {
    let target: jiff::Timestamp = "2026-04-01T02:59:50Z".parse().unwrap();
    target.as_second() - jiff::Timestamp::now().as_second()
}

fn daemon(dir: &Path, ca: Option<&Path>, offset: i64) -> Daemon {
    let offset = offset.to_string();
    let mut keys: Vec<(&str, &str)> = vec![("clock_offset", &offset)];
    let ca_s;
    if let Some(ca) = ca {
        ca_s = ca.display().to_string();
        keys.push(("ca_bundle", &ca_s));
    }
    let mut d = Daemon::with(dir, &keys);
    d.start();
    d.ok(&["system", "set", "cdr_master_csv=off", "cdr_queue_log=off"]);
    d
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn history(d: &Daemon, task: &str) -> Vec<serde_json::Value> {
    d.json(&["task", "history", task])
        .as_array()
        .unwrap()
        .clone()
}

fn all_settled(runs: &[serde_json::Value]) -> bool {
    runs.iter().all(|r| {
        r["state"] != "running"
            && r["deliveries"]
                .as_array()
                .is_some_and(|ds| !ds.is_empty() && ds.iter().all(|d| d["status"] != "pending"))
    })
}

fn b64(s: &str) -> Vec<u8> {
    // Small decoder for the test; the sink base64-encodes attachments.
    let table = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 {c}"),
        }
    };
    let clean: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= table(c) << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

#[test]
fn scheduled_and_manual_runs_mail_the_export_to_every_recipient() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(tmp.path());
    let port = free_port();
    let sink = Sink::start(
        tmp.path(),
        port,
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "--auth",
            "kpbx:s3cret",
        ],
    );
    let d = daemon(tmp.path(), Some(&cert), offset_to_april());
    d.ok(&["cdr", "import", MASTER]);
    d.ok(&[
        "mail",
        "configure",
        "server=localhost",
        &format!("port={port}"),
        "security=starttls",
        "user=kpbx",
        "password=s3cret",
        "sender=pbx@example.com",
    ]);
    let shown = d.ok(&["mail", "show"]);
    assert!(!shown.contains("s3cret"), "{shown}");
    let added = d.json(&[
        "task",
        "add",
        "name=Monthly calls",
        "type=send_cdr",
        "schedule=daily",
        "time=03:00",
        "interval=previous_month",
        "format=csv",
        "zip_over_mb=never",
        "recipients=a@example.com,b@example.com",
    ]);
    assert_eq!(added["changes"][0]["object_id"], "1", "{added}");

    // The scheduled run, at 03:00 on the shifted clock.
    let settled = || {
        let h = history(&d, "1");
        h.len() == 1 && all_settled(&h)
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    while !settled() {
        assert!(
            Instant::now() < deadline,
            "the scheduled run was not mailed: {:?}\n{}",
            history(&d, "1"),
            d.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = d.ok(&["task", "run", "1"]);
    assert!(out.contains("report generation started"), "{out}");
    wait_for("the manual run to be mailed", 30, || {
        let h = history(&d, "1");
        h.len() == 2 && all_settled(&h)
    });

    let expected = d.kpbx(&[
        "cdr",
        "export",
        "--from",
        "2026-03-01",
        "--to",
        "2026-04-01",
        "--format",
        "csv",
    ]);
    assert!(expected.status.success());
    let h = history(&d, "1");
    let triggers: Vec<&str> = h.iter().map(|r| r["trigger"].as_str().unwrap()).collect();
    assert_eq!(triggers, ["manual", "scheduled"]);
    let records = h[0]["records"].as_u64().unwrap();
    assert!(records > 0, "{h:?}");
    for r in &h {
        assert_eq!(r["state"], "done", "{r}");
        assert_eq!(r["records"].as_u64(), Some(records));
        assert_eq!(r["zipped"], false);
        assert_eq!(r["file_name"], "cdr-2026-03-01_2026-03-31.csv");
        assert_eq!(r["file_bytes"].as_u64(), Some(expected.stdout.len() as u64));
        for dl in r["deliveries"].as_array().unwrap() {
            assert_eq!(dl["status"], "sent", "{dl}");
            assert_eq!(dl["attempts"], 1, "{dl}");
        }
    }

    let msgs = sink.messages();
    assert_eq!(msgs.len(), 4, "two runs x two recipients: {msgs:?}");
    let mut rcpts: Vec<&str> = msgs.iter().map(|m| m["rcpt"].as_str().unwrap()).collect();
    rcpts.sort_unstable();
    assert_eq!(
        rcpts,
        [
            "a@example.com",
            "a@example.com",
            "b@example.com",
            "b@example.com"
        ]
    );
    for m in &msgs {
        assert_eq!(m["tls"], true, "STARTTLS was used");
        assert_eq!(m["authenticated"], true);
        assert_eq!(m["mail_from"], "pbx@example.com");
        assert_eq!(
            m["subject"],
            "[kpbx] Send CDR \"Monthly calls\": 2026-03-01 to 2026-03-31"
        );
        let text = m["text"].as_str().unwrap();
        assert!(text.contains("Monthly calls"), "{text}");
        assert!(text.contains("2026-03-01 to 2026-03-31"), "{text}");
        assert!(text.contains(&format!("Records: {records}")), "{text}");
        let att = &m["attachments"][0];
        assert_eq!(att["filename"], "cdr-2026-03-01_2026-03-31.csv");
        assert_eq!(att["content_type"], "text/csv");
        // Issue 21: base64, so that no mail system or client can turn the
        // CSV's CRLF line ends into LF; the bytes are the export's.
        assert_eq!(att["transfer_encoding"], "base64", "{att}");
        assert!(expected.stdout.windows(2).any(|w| w == b"\r\n"));
        assert_eq!(b64(att["data_b64"].as_str().unwrap()), expected.stdout);
    }
}

#[test]
fn server_down_then_up_delivers_exactly_once_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut d = daemon(tmp.path(), None, offset_to_april());
    d.ok(&["cdr", "import", MASTER]);
    d.ok(&[
        "mail",
        "configure",
        "server=127.0.0.1",
        &format!("port={port}"),
        "security=none",
        "sender=pbx@example.com",
    ]);
    d.ok(&[
        "task",
        "add",
        "name=Zipped",
        "type=send_cdr",
        "schedule=monthly",
        "day_of_month=31",
        "interval=previous_month",
        "format=xlsx",
        "zip_over_mb=0",
        "recipients=ops@example.com,boss@example.com",
    ]);
    d.ok(&["task", "run", "1"]);
    wait_for("a failed first attempt", 30, || {
        let h = history(&d, "1");
        h.len() == 1
            && h[0]["deliveries"].as_array().is_some_and(|ds| {
                ds.len() == 2
                    && ds.iter().all(|x| {
                        x["status"] == "pending" && x["attempts"].as_u64().unwrap_or(0) >= 1
                    })
            })
    });
    let h = history(&d, "1");
    let detail = h[0]["deliveries"][0]["detail"].as_str().unwrap();
    assert!(detail.to_lowercase().contains("refused"), "{detail}");

    // A crash loses nothing: the message is still queued after a restart.
    d.kill9();
    d.start();
    let outbox = d.json(&["mail", "outbox"]);
    assert_eq!(outbox.as_array().unwrap().len(), 1, "{outbox}");
    assert_eq!(outbox[0]["deliveries"][0]["status"], "pending");

    let sink = Sink::start(tmp.path(), port, &[]);
    d.ok(&["mail", "retry"]);
    wait_for("delivery once the server is up", 30, || {
        all_settled(&history(&d, "1"))
    });
    // Nothing is sent twice, whatever is asked.
    d.ok(&["mail", "retry"]);
    std::thread::sleep(Duration::from_secs(2));
    let msgs = sink.messages();
    let mut rcpts: Vec<&str> = msgs.iter().map(|m| m["rcpt"].as_str().unwrap()).collect();
    rcpts.sort_unstable();
    assert_eq!(rcpts, ["boss@example.com", "ops@example.com"], "{msgs:?}");
    let att = &msgs[0]["attachments"][0];
    assert_eq!(att["filename"], "cdr-2026-03-01_2026-03-31.zip");
    assert_eq!(att["content_type"], "application/zip");
    let bytes = b64(att["data_b64"].as_str().unwrap());
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(zip.len(), 1);
    let entry = zip.by_index(0).unwrap();
    assert_eq!(entry.name().unwrap(), "cdr-2026-03-01_2026-03-31.xlsx");
    let h = history(&d, "1");
    assert_eq!(h[0]["zipped"], true);
    assert!(msgs[0]["text"].as_str().unwrap().contains("zipped"));
}

#[test]
fn a_permanent_refusal_is_recorded_and_not_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = Sink::start(tmp.path(), port, &["--reject", "gone@example.com"]);
    let d = daemon(tmp.path(), None, 0);
    d.ok(&[
        "mail",
        "configure",
        "server=127.0.0.1",
        &format!("port={port}"),
        "security=none",
        "sender=pbx@example.com",
    ]);
    d.ok(&[
        "task",
        "add",
        "name=Daily",
        "type=send_cdr",
        "schedule=daily",
        "format=json",
        "recipients=ok@example.com,gone@example.com",
    ]);
    d.ok(&["task", "run", "1"]);
    wait_for("both deliveries to settle", 30, || {
        all_settled(&history(&d, "1"))
    });
    let h = history(&d, "1");
    let ds = h[0]["deliveries"].as_array().unwrap();
    let by = |r: &str| ds.iter().find(|x| x["recipient"] == r).unwrap().clone();
    assert_eq!(by("ok@example.com")["status"], "sent");
    let gone = by("gone@example.com");
    assert_eq!(gone["status"], "failed");
    assert!(gone["detail"].as_str().unwrap().contains("550"), "{gone}");
    d.ok(&["mail", "retry"]);
    std::thread::sleep(Duration::from_secs(1));
    let h = history(&d, "1");
    assert_eq!(h[0]["deliveries"], serde_json::Value::Array(ds.clone()));
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0]["rcpt"], "ok@example.com");
    // An empty period still mails a (header-only) export.
    assert_eq!(h[0]["records"], 0);
}

#[test]
fn mail_test_reports_the_answer_and_never_falls_back_to_plain_text() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = Sink::start(tmp.path(), port, &[]);
    let d = daemon(tmp.path(), None, 0);
    let out = d.kpbx(&["mail", "test", "x@example.com"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mail is not configured"),
        "{out:?}"
    );
    d.ok(&[
        "mail",
        "configure",
        "server=127.0.0.1",
        &format!("port={port}"),
        "security=starttls",
        "sender=pbx@example.com",
    ]);
    // The server offers no STARTTLS: refused, nothing sent in clear.
    let out = d.kpbx(&["mail", "test", "x@example.com"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.contains("tls"), "{text}");
    assert!(sink.messages().is_empty());
    d.ok(&["mail", "configure", "security=none"]);
    let out = d.ok(&["mail", "test", "x@example.com"]);
    assert!(out.contains("accepted"), "{out}");
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0]["subject"]
            .as_str()
            .unwrap()
            .contains("test message")
    );
}

#[test]
fn task_rules_are_checked_on_save_with_the_field_named() {
    let tmp = tempfile::tempdir().unwrap();
    let d = daemon(tmp.path(), None, 0);
    let refused = |args: &[&str], want: &str| {
        let mut all = vec!["task", "add"];
        all.extend_from_slice(args);
        let out = d.kpbx(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    };
    let base = ["name=X", "schedule=daily", "recipients=a@example.com"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v: Vec<&str> = base
            .iter()
            .filter(|b| {
                !extra
                    .iter()
                    .any(|e| e.split('=').next() == b.split('=').next())
            })
            .copied()
            .collect();
        v.extend_from_slice(extra);
        v
    };
    refused(
        &with(&["type=send_cdr", "recipients="]),
        "recipients: at least one",
    );
    refused(
        &with(&["type=send_cdr", "schedule=weekly"]),
        "weekday is required",
    );
    refused(&with(&["type=send_cdr", "time=25:00"]), "time:");
    refused(
        &with(&["type=send_callcenter_cdr"]),
        "needs a call-center licence",
    );
    d.ok(&["system", "set", "callcenter_licence=CC-2026-0001"]);
    refused(
        &with(&["type=send_callcenter_cdr", "operator_events=yes"]),
        "operator_events: needs a detailed format",
    );
    let ok = d.json(&{
        let mut v = vec!["task", "add"];
        v.extend(with(&[
            "type=send_callcenter_cdr",
            "format=xlsx_detailed",
            "operator_events=yes",
        ]));
        v
    });
    assert_eq!(ok["changes"][0]["object_id"], "1");
    // Every change is audited.
    let audit = d.ok(&["audit", "list"]);
    assert!(audit.contains("task"), "{audit}");
    let shown = d.json(&["task", "show", "1"]);
    assert_eq!(shown[0]["format"], "xlsx_detailed");
    assert!(shown[0]["next_run"].as_str().unwrap().contains("00:00"));
    d.ok(&["task", "delete", "1"]);
    let out = d.kpbx(&["task", "run", "1"]);
    assert!(!out.status.success());
}

#[test]
fn runs_missed_while_down_are_caught_up_once() {
    let tmp = tempfile::tempdir().unwrap();
    let at = |t: &str| {
        let t: jiff::Timestamp = t.parse().unwrap();
        t.as_second() - jiff::Timestamp::now().as_second()
    };
    let mut d = daemon(tmp.path(), None, at("2026-04-01T01:00:00Z"));
    d.ok(&[
        "task",
        "add",
        "name=Daily",
        "type=send_cdr",
        "schedule=daily",
        "time=03:00",
        "recipients=a@example.com",
    ]);
    d.stop();
    // Down for two days and a bit: three 03:00s were missed.
    let offset = at("2026-04-03T10:00:00Z").to_string();
    let mut d = Daemon::with(tmp.path(), &[("clock_offset", &offset)]);
    d.start();
    wait_for("the catch-up run", 20, || {
        history(&d, "1").iter().any(|r| r["state"] != "running")
    });
    std::thread::sleep(Duration::from_secs(3));
    let h = history(&d, "1");
    assert_eq!(
        h.len(),
        1,
        "one catch-up run, not one per missed day: {h:?}"
    );
    assert_eq!(h[0]["trigger"], "scheduled");
    let expected: jiff::Timestamp = "2026-04-03T03:00:00Z".parse().unwrap();
    assert_eq!(
        h[0]["scheduled_us"].as_i64(),
        Some(expected.as_microsecond())
    );
    // Mail is not configured here: the run says so.
    assert_eq!(h[0]["state"], "failed");
    assert!(
        h[0]["error"]
            .as_str()
            .unwrap()
            .contains("mail is not configured")
    );
    d.stop();
}

#[test]
fn call_center_reports_reach_every_supervisor() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let sink = Sink::start(tmp.path(), port, &[]);
    let d = daemon(tmp.path(), None, 0);
    d.ok(&["system", "set", "callcenter_licence=CC-1"]);
    d.ok(&[
        "mail",
        "configure",
        "server=127.0.0.1",
        &format!("port={port}"),
        "security=none",
        "sender=pbx@example.com",
    ]);
    d.ok(&[
        "user",
        "add",
        "anna",
        "role=supervisor",
        "email=anna@example.com",
    ]);
    d.ok(&["user", "add", "bruno", "role=supervisor"]);
    d.ok(&[
        "user",
        "add",
        "carla",
        "role=admin",
        "email=carla@example.com",
    ]);
    d.ok(&[
        "task",
        "add",
        "name=Queues",
        "type=send_callcenter_cdr",
        "schedule=daily",
        "format=csv",
        "notify_supervisors=yes",
        "recipients=",
    ]);
    d.ok(&["task", "run", "1"]);
    wait_for("the supervisors' mail", 30, || {
        all_settled(&history(&d, "1"))
    });
    let msgs = sink.messages();
    let rcpts: Vec<&str> = msgs.iter().map(|m| m["rcpt"].as_str().unwrap()).collect();
    // Only supervisors with an address; not the admin, not bruno.
    assert_eq!(rcpts, ["anna@example.com"], "{msgs:?}");
    assert!(
        msgs[0]["subject"]
            .as_str()
            .unwrap()
            .starts_with("[kpbx] Send Call Center CDR \"Queues\"")
    );
}

/// Issue 21: a busy call center's month is more than Excel's 1,048,575 data
/// rows. 1,050,000 calls imported from a `Master.csv`, exported as XLSX by a
/// task run and mailed through a real SMTP server: the workbook arrives, and
/// calamine (an independent reader) finds every call, the ones past the
/// first sheet's last row on a second sheet named after the first.
#[test]
fn a_month_past_excels_last_row_is_mailed_as_one_workbook() {
    const CALLS: u64 = 1_050_000;
    let tmp = tempfile::tempdir().unwrap();
    let master = tmp.path().join("Master.csv");
    {
        use std::io::Write as _;
        let start: jiff::civil::DateTime = "2026-03-01T00:00:00".parse().unwrap();
        let mut w = std::io::BufWriter::new(std::fs::File::create(&master).unwrap());
        for i in 0..CALLS {
            // Asterisk's `cdr_csv` column order (cdr/cdr_csv.c, the
            // `cdr_columns` default; src/cdr/columns.rs): accountcode, src,
            // dst, dcontext, clid, channel, dstchannel, lastapp, lastdata,
            // start, answer, end, duration, billsec, disposition, amaflags,
            // uniqueid, userfield, peeraccount, linkedid, sequence; shaped
            // like the fixture's first row. Two seconds apart: 24 days.
            let at = start
                .checked_add(jiff::SignedDuration::from_secs(2 * i as i64))
                .unwrap();
            let end = at.checked_add(jiff::SignedDuration::from_secs(61)).unwrap();
            let (at, end) = (at.strftime("%F %T"), end.strftime("%F %T"));
            writeln!(
                w,
                "\"\",\"201\",\"{dst}\",\"from-internal\",\"\"\"Mario Rossi\"\" <201>\",\
                 \"PJSIP/201-{i:08x}\",\"PJSIP/202-{i:08x}\",\"Dial\",\"PJSIP/202,30,tT\",\
                 \"{at}\",\"{at}\",\"{end}\",61,61,\"ANSWERED\",\"DOCUMENTATION\",\
                 \"1772323200.{i}\",\"\",\"\",\"1772323200.{i}\",{i}",
                dst = 200 + i % 50,
            )
            .unwrap();
        }
        w.flush().unwrap();
    }
    let port = free_port();
    let sink = Sink::start(tmp.path(), port, &["--max-mb", "512"]);
    // A million calls take more than the test profile's small store.
    let offset = offset_to_april().to_string();
    let mut d = Daemon::with(
        tmp.path(),
        &[("clock_offset", &offset), ("store_max_mb", "2048")],
    );
    d.start();
    d.ok(&["system", "set", "cdr_master_csv=off", "cdr_queue_log=off"]);
    d.ok(&["cdr", "import", master.to_str().unwrap()]);
    let _ = std::fs::remove_file(&master);
    d.ok(&[
        "mail",
        "configure",
        "server=127.0.0.1",
        &format!("port={port}"),
        "security=none",
        "sender=pbx@example.com",
    ]);
    d.ok(&[
        "task",
        "add",
        "name=Busy month",
        "type=send_cdr",
        "schedule=monthly",
        "day_of_month=15",
        "interval=previous_month",
        "format=xlsx",
        "zip_over_mb=never",
        "recipients=ops@example.com",
    ]);
    d.ok(&["task", "run", "1"]);
    wait_for("the busy month to be mailed", 900, || {
        let h = history(&d, "1");
        h.len() == 1 && all_settled(&h)
    });
    let h = history(&d, "1");
    assert_eq!(h[0]["state"], "done", "{h:?}");
    assert_eq!(h[0]["records"].as_u64(), Some(CALLS), "{h:?}");
    assert_eq!(h[0]["deliveries"][0]["status"], "sent", "{h:?}");

    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1, "one recipient");
    let att = &msgs[0]["attachments"][0];
    assert_eq!(
        att["filename"], "cdr-2026-03-01_2026-03-31.xlsx",
        "{}",
        att["filename"]
    );
    let book_path = tmp.path().join("received.xlsx");
    std::fs::write(&book_path, b64(att["data_b64"].as_str().unwrap())).unwrap();
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(&book_path).unwrap();
    use calamine::Reader as _;
    let names = book.sheet_names();
    assert_eq!(names.len(), 2, "{names:?}");
    assert_eq!(names[1], format!("{} (2)", names[0]));
    let mut calls = 0u64;
    let mut last = None;
    for name in &names {
        let range = book.worksheet_range(name).unwrap();
        let mut rows = range.rows();
        let header = rows.next().expect("a header on every sheet");
        assert!(!header.is_empty());
        for row in rows {
            calls += 1;
            last = Some(
                row.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
    }
    assert_eq!(calls, CALLS, "every call, over both sheets");
    let last = last.unwrap();
    assert!(
        last.contains(&format!("1772323200.{}", CALLS - 1)),
        "{last}"
    );
}
