//! End-to-end tests of the ingestion core over fixtures in Asterisk formats.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use kpbxd::cdr::call::{CallRow, Direction, DirectionRule, group_calls};
use kpbxd::cdr::lines::{Position, Record, Splitter, SplitterConfig};
use kpbxd::cdr::master_csv::{CdrRecord, ColumnMapping, Disposition, MasterError, MasterFormat};
use kpbxd::cdr::queue::{
    OperatorAction, QueueAggregator, QueueEntryRow, QueueOutcome, QueueOutput, RingResult,
};
use kpbxd::cdr::queue_log::{HungUpBy, QueueLogError, QueueLogFormat, QueueLogLine};
use kpbxd::cdr::{Counts, Ingest, Malformed, Reason};

const MASTER: &[u8] = include_bytes!("fixtures/Master.csv");
const QUEUE_LOG: &[u8] = include_bytes!("fixtures/queue_log");

/// Europe/Rome as a POSIX rule (hermetic: no tzdb read in tests).
fn rome() -> TimeZone {
    TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("valid POSIX TZ")
}

fn ts(text: &str) -> Timestamp {
    text.parse().expect("valid timestamp literal")
}

fn master_format() -> MasterFormat {
    MasterFormat {
        mapping: ColumnMapping::CDR_CSV,
        tz: rome(),
    }
}

fn legs() -> Vec<CdrRecord> {
    let mut ingest = Ingest::new(SplitterConfig::CSV, master_format(), Position::START);
    let out = ingest.push(MASTER);
    assert_eq!(
        ingest.counts(),
        Counts {
            records: 9,
            malformed: 0
        }
    );
    out.into_iter()
        .map(|r| r.expect("fixture line parses").value)
        .collect()
}

fn queue_lines() -> Vec<QueueLogLine> {
    let mut ingest = Ingest::new(SplitterConfig::PLAIN, QueueLogFormat, Position::START);
    let out = ingest.push(QUEUE_LOG);
    assert_eq!(
        ingest.counts(),
        Counts {
            records: 36,
            malformed: 0
        }
    );
    out.into_iter()
        .map(|r| r.expect("fixture line parses").value)
        .collect()
}

fn split_all(config: SplitterConfig, chunks: &[&[u8]]) -> Vec<Result<Record, Malformed>> {
    let mut splitter = Splitter::new(config);
    chunks.iter().flat_map(|c| splitter.push(c)).collect()
}

#[test]
fn master_legs_field_by_field() {
    let legs = legs();

    let first = &legs[0];
    assert_eq!(first.accountcode, "");
    assert_eq!(first.src, "201");
    assert_eq!(first.dst, "202");
    assert_eq!(first.dcontext, "from-internal");
    assert_eq!(first.clid, "\"Mario Rossi\" <201>");
    assert_eq!(first.channel, "PJSIP/201-00000001");
    assert_eq!(first.dstchannel, "PJSIP/202-00000002");
    assert_eq!(first.lastapp, "Dial");
    assert_eq!(first.lastdata, "PJSIP/202,30,tT", "comma inside quotes");
    assert_eq!(first.start, ts("2026-03-20T09:00:00Z"), "CET is UTC+1");
    assert_eq!(first.answer, Some(ts("2026-03-20T09:00:04Z")));
    assert_eq!(first.end, ts("2026-03-20T09:01:04Z"));
    assert_eq!((first.duration, first.billsec), (64, 60));
    assert_eq!(first.disposition, Disposition::Answered);
    assert_eq!(first.amaflags, "DOCUMENTATION");
    assert_eq!(first.uniqueid.as_deref(), Some("1774000800.1"));
    assert_eq!(first.userfield.as_deref(), Some(""));
    assert_eq!(first.peeraccount.as_deref(), Some(""));
    assert_eq!(first.linkedid.as_deref(), Some("1774000800.1"));
    assert_eq!(first.sequence, Some(1));

    assert_eq!(legs[1].accountcode, "sales");
    assert_eq!(legs[2].clid, "\"Łukasz Żółć\" <0212345678>", "UTF-8 name");
    assert_eq!(legs[2].answer, None, "empty unquoted answer");
    assert_eq!(legs[2].disposition, Disposition::NoAnswer);
    assert_eq!(
        legs[4].clid, "\"Mario \"Big\" Rossi\" <201>",
        "doubled quotes"
    );
    assert_eq!(legs[4].disposition, Disposition::Busy);
    assert_eq!(
        legs[5].userfield.as_deref(),
        Some("callback\nrequested"),
        "newline in field"
    );
    assert_eq!(legs[5].dstchannel, "");
    assert_eq!(legs[5].disposition, Disposition::Failed);
    assert_eq!(legs[7].disposition, Disposition::Congestion);

    let short = &legs[8];
    assert_eq!(short.src, "202");
    assert_eq!(
        (
            short.uniqueid.as_ref(),
            short.linkedid.as_ref(),
            short.sequence
        ),
        (None, None, None)
    );
}

#[test]
fn master_calls_grouped_by_linkedid() {
    let calls = group_calls(legs(), DirectionRule::default());
    let summary: Vec<(&str, Direction, Disposition, Option<&str>)> = calls
        .iter()
        .map(|c: &CallRow| {
            (
                c.caller_number.as_str(),
                c.direction,
                c.status.clone(),
                c.answered_by.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "201",
                Direction::Internal,
                Disposition::Answered,
                Some("202")
            ),
            (
                "201",
                Direction::Outbound,
                Disposition::Answered,
                Some("trunk")
            ),
            (
                "0212345678",
                Direction::Inbound,
                Disposition::Answered,
                Some("203")
            ),
            ("201", Direction::Internal, Disposition::Busy, None),
            ("202", Direction::Internal, Disposition::Failed, None),
            ("", Direction::Unknown, Disposition::NoAnswer, None),
            ("203", Direction::Outbound, Disposition::Congestion, None),
            (
                "202",
                Direction::Internal,
                Disposition::Answered,
                Some("201")
            ),
        ]
    );

    let ring_group = &calls[2];
    assert_eq!(ring_group.id, "1774004400.5");
    assert_eq!(ring_group.legs.len(), 2);
    assert_eq!(ring_group.caller_name.as_deref(), Some("Łukasz Żółć"));
    assert_eq!(ring_group.called_number, "0500000000");
    assert_eq!(ring_group.start, ts("2026-03-20T10:00:00Z"));
    assert_eq!(ring_group.answer, Some(ts("2026-03-20T10:00:08Z")));
    assert_eq!(ring_group.end, ts("2026-03-20T10:03:08Z"));
    assert_eq!((ring_group.duration, ring_group.billsec), (188, 180));
    assert_eq!(
        ring_group.legs[0].disposition,
        Disposition::NoAnswer,
        "legs by sequence"
    );

    assert_eq!(calls[0].caller_name.as_deref(), Some("Mario Rossi"));
    assert_eq!(calls[3].caller_name.as_deref(), Some("Mario \"Big\" Rossi"));
    assert_eq!(calls[3].billsec, 0);
    assert_eq!(calls[5].caller_name, None);
    assert_eq!(
        calls[7].id, "PJSIP/202-0000000f@1774015200",
        "no uniqueid: channel@start"
    );
}

#[test]
fn master_in_repeated_hour_of_rome_dst_end() {
    // 2026-10-25: 03:00 CEST → 02:00 CET, so 02:00–02:59 happens twice.
    let line = |start: &str, answer: &str, end: &str, duration: u64, billsec: u64| {
        format!(
            "\"\",\"201\",\"202\",\"from-internal\",\"\",\"PJSIP/201-1\",\"PJSIP/202-2\",\"Dial\",\"\",\
             \"{start}\",\"{answer}\",\"{end}\",{duration},{billsec},\"ANSWERED\",\"DOCUMENTATION\""
        )
    };
    let format = master_format();
    let parse = |l: String| kpbxd::cdr::master_csv::parse_master_line_with(l.as_bytes(), &format);

    // Starts in the first 02:30 (CEST), ends in the second 02:10 (CET).
    let crossing = parse(line(
        "2026-10-25 02:30:00",
        "2026-10-25 02:30:10",
        "2026-10-25 02:10:00",
        2400,
        2390,
    ))
    .expect("parses");
    assert_eq!(crossing.start, ts("2026-10-25T00:30:00Z"));
    assert_eq!(crossing.answer, Some(ts("2026-10-25T00:30:10Z")));
    assert_eq!(crossing.end, ts("2026-10-25T01:10:00Z"));

    // Ends unambiguously at 03:10 CET; 80 minutes earlier is 02:50 CEST.
    let long = parse(line(
        "2026-10-25 02:50:00",
        "2026-10-25 02:50:05",
        "2026-10-25 03:10:00",
        4800,
        4795,
    ))
    .expect("parses");
    assert_eq!(long.start, ts("2026-10-25T00:50:00Z"));

    // Wholly inside the repeated hour: undecidable, earlier instants chosen.
    let inside = parse(line(
        "2026-10-25 02:30:00",
        "2026-10-25 02:30:05",
        "2026-10-25 02:35:00",
        300,
        295,
    ))
    .expect("parses");
    assert_eq!(
        (inside.start, inside.end),
        (ts("2026-10-25T00:30:00Z"), ts("2026-10-25T00:35:00Z"))
    );

    // Spring-forward gap (02:30 does not exist on 2026-03-29): shifted forward.
    let gap = parse(line(
        "2026-03-29 02:30:00",
        "2026-03-29 02:30:00",
        "2026-03-29 03:31:00",
        60,
        60,
    ))
    .expect("parses");
    assert_eq!(gap.start, ts("2026-03-29T01:30:00Z"));
    assert_eq!(gap.end, ts("2026-03-29T01:31:00Z"));
}

#[test]
fn every_two_chunk_split_gives_same_records() {
    for (config, data) in [
        (SplitterConfig::CSV, MASTER),
        (SplitterConfig::PLAIN, QUEUE_LOG),
    ] {
        let whole = split_all(config, &[data]);
        assert!(whole.iter().all(Result::is_ok));
        for cut in 0..=data.len() {
            let (a, b) = data.split_at(cut);
            assert_eq!(split_all(config, &[a, b]), whole, "split at {cut}");
        }
    }
}

#[test]
fn one_byte_chunks_give_same_records() {
    for (config, data, count) in [
        (SplitterConfig::CSV, MASTER, 9),
        (SplitterConfig::PLAIN, QUEUE_LOG, 36),
    ] {
        let whole = split_all(config, &[data]);
        assert_eq!(whole.len(), count);
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(split_all(config, &bytes), whole);
    }
}

#[test]
fn partial_last_line_waits_for_its_end() {
    let mut splitter = Splitter::new(SplitterConfig::PLAIN);
    let out = splitter.push(b"1774000000|NONE|NONE|NONE|QUEUESTART|\n1774000005|NONE|sup");
    assert_eq!(out.len(), 1);
    assert_eq!(
        splitter.position(),
        Position {
            offset: 38,
            line: 2
        }
    );
    assert_eq!(splitter.pending_len(), 19);
    let out = splitter.push(b"port|Anna|ADDMEMBER|\n");
    let record = out[0].as_ref().expect("complete");
    assert_eq!(record.bytes, b"1774000005|NONE|support|Anna|ADDMEMBER|");
    assert_eq!((record.line, record.offset), (2, 38));
    assert_eq!(splitter.pending_len(), 0);

    // A CSV record whose quoted field is still open across a newline waits too.
    let mut csv = Splitter::new(SplitterConfig::CSV);
    assert!(csv.push(b"\"a\",\"line one\nline two").is_empty());
    assert!(csv.push(b"\",3").is_empty());
    let out = csv.push(b"\n");
    let record = out[0].as_ref().expect("complete");
    assert_eq!(record.bytes, b"\"a\",\"line one\nline two\",3");
    assert_eq!(
        record.end,
        Position {
            offset: 26,
            line: 3
        }
    );
}

#[test]
fn resuming_from_any_saved_position_duplicates_nothing() {
    for (config, data) in [
        (SplitterConfig::CSV, MASTER),
        (SplitterConfig::PLAIN, QUEUE_LOG),
    ] {
        let whole = split_all(config, &[data]);
        for (i, item) in whole.iter().enumerate() {
            let saved = item.as_ref().expect("ok").end;
            let offset = usize::try_from(saved.offset).expect("fits");
            let mut resumed = Splitter::resume(config, saved);
            let rest = resumed.push(&data[offset..]);
            assert_eq!(rest, whole[i + 1..], "resumed after record {i}");
        }
    }
}

#[test]
fn over_long_line_is_skipped_and_counted() {
    let config = SplitterConfig {
        quoted: true,
        max_record_len: 64,
    };
    let mut data = b"\"short\",1\n".to_vec();
    data.extend(std::iter::repeat_n(b'x', 100));
    data.extend(b"\n\"open quote never closed ");
    data.extend(std::iter::repeat_n(b'y', 100));
    data.extend(b"\n\"after\",2\n");
    for chunks in [vec![&data[..]], data.chunks(7).collect()] {
        let out = split_all(config, &chunks);
        type Item<'a> = Result<&'a [u8], (u64, u64, &'a Reason)>;
        let reasons: Vec<Item> = out
            .iter()
            .map(|r| {
                r.as_ref()
                    .map(|rec| &rec.bytes[..])
                    .map_err(|m| (m.line, m.offset, &m.reason))
            })
            .collect();
        assert_eq!(
            reasons,
            vec![
                Ok(&b"\"short\",1"[..]),
                Err((2, 10, &Reason::TooLong { len: 100 })),
                Err((3, 111, &Reason::TooLong { len: 125 })),
                Ok(&b"\"after\",2"[..]),
            ]
        );
    }
}

#[test]
fn malformed_lines_are_counted_with_reasons_and_parsing_continues() {
    let good = "\"\",\"201\",\"202\",\"c\",\"\",\"ch\",\"\",\"Dial\",\"\",\"2026-03-20 10:00:00\",,\"2026-03-20 10:00:01\",1,0,\"BUSY\",\"\"\n";
    let csv = format!(
        "\"a\",\"b\"\n\
         \"\",\"201\",\"202\",\"c\",\"\",\"ch\",\"\",\"Dial\",\"\",\"not a time\",,\"2026-03-20 10:00:00\",1,0,\"ANSWERED\",\"\"\n\
         \"\",\"201\",\"202\",\"c\",\"\",\"ch\",\"\",\"Dial\",\"\",\"2026-03-20 10:00:00\",,\"2026-03-20 10:00:01\",x,0,\"BUSY\",\"\"\n\
         \"unterminated\n{good}{good}"
    );
    let config = SplitterConfig {
        quoted: true,
        max_record_len: 200,
    };
    let mut ingest = Ingest::new(config, master_format(), Position::START);
    let out = ingest.push(csv.as_bytes());
    // The open quote on line 4 makes the next newlines look quoted; once the
    // record passes the limit, line 4 alone is dropped and lines 5–6 parse.
    let errors: Vec<(u64, Reason)> = out
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|m| (m.line, m.reason.clone()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (
                1,
                Reason::Master(MasterError::TooFewColumns {
                    found: 2,
                    needed: 16
                })
            ),
            (2, Reason::Master(MasterError::BadTime { field: "start" })),
            (
                3,
                Reason::Master(MasterError::BadInteger { field: "duration" })
            ),
            (4, Reason::UnbalancedQuote { len: 13 }),
        ]
    );
    let good_lines: Vec<u64> = out
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|p| p.line)
        .collect();
    assert_eq!(good_lines, vec![5, 6]);
    assert_eq!(
        ingest.counts(),
        Counts {
            records: 2,
            malformed: 4
        }
    );
    assert_eq!(
        ingest.position(),
        Position {
            offset: csv.len() as u64,
            line: 7
        }
    );
    assert_eq!(
        errors[2].1.to_string(),
        "Master.csv: duration: not an integer"
    );

    // Same bytes one at a time: same outcome.
    let mut bytewise = Ingest::new(config, master_format(), Position::START);
    let again: Vec<_> = csv
        .as_bytes()
        .chunks(1)
        .flat_map(|c| bytewise.push(c))
        .collect();
    assert_eq!(again, out);

    let log = b"1774000000|NONE|NONE|NONE|QUEUESTART|\n\
        garbage\n\
        17740x0000|NONE|NONE|NONE|QUEUESTART|\n\
        1774000001|c|q|NONE|ABANDON|1|x|3\n\
        1774000002|c|q|NONE||\n\
        1774000003|NONE|NONE|NONE|CONFIGRELOAD|\n";
    let mut ingest = Ingest::new(SplitterConfig::PLAIN, QueueLogFormat, Position::START);
    let out = ingest.push(log);
    let errors: Vec<(u64, u64, Reason)> = out
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|m| (m.line, m.offset, m.reason.clone()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (
                2,
                38,
                Reason::QueueLog(QueueLogError::TooFewFields { found: 1 })
            ),
            (3, 46, Reason::QueueLog(QueueLogError::BadTime)),
            (
                4,
                84,
                Reason::QueueLog(QueueLogError::BadNumber {
                    event: "ABANDON".into(),
                    data: 2
                })
            ),
            (5, 118, Reason::QueueLog(QueueLogError::NoEvent)),
        ]
    );
    assert_eq!(
        ingest.counts(),
        Counts {
            records: 2,
            malformed: 4
        }
    );
    assert_eq!(
        errors[0].2.to_string(),
        "queue_log: 1 fields, need at least 5"
    );
}

fn queue_outputs() -> (Vec<QueueEntryRow>, Vec<QueueOutput>, QueueAggregator) {
    let mut aggregator = QueueAggregator::new();
    let mut entries = Vec::new();
    let mut operators = Vec::new();
    for line in queue_lines() {
        for output in aggregator.push(&line) {
            match output {
                QueueOutput::Entry(row) => entries.push(row),
                other => operators.push(other),
            }
        }
    }
    (entries, operators, aggregator)
}

#[test]
fn queue_entries_field_by_field() {
    let (entries, _, aggregator) = queue_outputs();
    let t = |dt: i64| Timestamp::from_second(1_774_000_000 + dt).expect("in range");
    type Summary<'a> = (
        &'a str,
        &'a str,
        i64,
        i64,
        Option<u64>,
        Option<&'a str>,
        Option<u64>,
        QueueOutcome,
    );
    let summary: Vec<Summary> = entries
        .iter()
        .map(|e| {
            (
                e.callid.as_str(),
                e.caller_number.as_str(),
                e.entered.as_second() - 1_774_000_000,
                e.ended.as_second() - 1_774_000_000,
                e.wait_secs,
                e.agent.as_deref(),
                e.talk_secs,
                e.outcome.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "1774000140.3",
                "3331112222",
                140,
                152,
                Some(12),
                None,
                None,
                QueueOutcome::Abandoned
            ),
            (
                "1774000100.1",
                "0212345678",
                100,
                250,
                Some(30),
                Some("Anna Bianchi"),
                Some(120),
                QueueOutcome::Answered {
                    by: HungUpBy::Caller
                },
            ),
            (
                "1774000300.5",
                "0612345678",
                300,
                360,
                Some(60),
                None,
                None,
                QueueOutcome::Timeout
            ),
            (
                "1774000410.7",
                "0698765432",
                410,
                415,
                Some(5),
                None,
                None,
                QueueOutcome::ExitEmpty
            ),
            (
                "1774000420.8",
                "0511223344",
                420,
                445,
                Some(25),
                None,
                None,
                QueueOutcome::ExitWithKey { key: "5".into() },
            ),
            (
                "1774000510.9",
                "0233445566",
                510,
                600,
                Some(10),
                Some("Anna Bianchi"),
                Some(80),
                QueueOutcome::Transferred {
                    attended: false,
                    target: "250@from-internal".into()
                },
            ),
            (
                "1774000610.11",
                "0244556677",
                610,
                700,
                Some(6),
                Some("Paolo Verdi"),
                Some(84),
                QueueOutcome::Transferred {
                    attended: true,
                    target: "BRIDGE:1774000650.13".into()
                },
            ),
            (
                "1774000710.14",
                "0255667788",
                710,
                800,
                Some(2),
                Some("Anna Bianchi"),
                Some(88),
                QueueOutcome::Answered {
                    by: HungUpBy::Agent
                },
            ),
        ]
    );

    let answered = &entries[1];
    assert_eq!(answered.queue, "support");
    assert_eq!(answered.caller_name.as_deref(), Some("Łukasz Żółć"));
    assert_eq!(answered.entry_position, Some(1));
    assert_eq!(answered.ring_secs, Some(14));
    let attempts: Vec<(&str, Option<u64>, RingResult, Timestamp)> = answered
        .attempts
        .iter()
        .map(|a| (a.agent.as_str(), a.ring_ms, a.result, a.time))
        .collect();
    assert_eq!(
        attempts,
        vec![
            ("Paolo Verdi", Some(15_000), RingResult::NoAnswer, t(115)),
            ("Anna Bianchi", Some(14_000), RingResult::Connected, t(130)),
        ]
    );
    assert_eq!(entries[0].entry_position, Some(2));
    assert_eq!(entries[0].attempts.len(), 1);
    assert_eq!(entries[3].queue, "sales");
    assert_eq!(entries[3].caller_name.as_deref(), Some("ACME Srl"));

    assert_eq!(
        aggregator.open_count(),
        1,
        "the last caller is still waiting: not emitted"
    );
    assert_eq!(aggregator.orphans(), 0);
}

#[test]
fn operator_events_listed_separately() {
    let (_, operators, _) = queue_outputs();
    let list: Vec<(i64, Option<&str>, &str, OperatorAction)> = operators
        .iter()
        .filter_map(|o| match o {
            QueueOutput::Operator(e) => Some((
                e.time.as_second() - 1_774_000_000,
                e.queue.as_deref(),
                e.agent.as_str(),
                e.action.clone(),
            )),
            QueueOutput::Entry(_) => None,
        })
        .collect();
    let sup = Some("support");
    let pause = |r: &str| OperatorAction::Pause { reason: r.into() };
    let unpause = |r: &str| OperatorAction::Unpause { reason: r.into() };
    assert_eq!(
        list,
        vec![
            (
                5,
                sup,
                "Anna Bianchi",
                OperatorAction::AddMember { paused: false }
            ),
            (
                6,
                sup,
                "Paolo Verdi",
                OperatorAction::AddMember { paused: true }
            ),
            (
                10,
                None,
                "Anna Bianchi",
                OperatorAction::Login {
                    channel: "PJSIP/301-00000010".into()
                }
            ),
            (12, sup, "Paolo Verdi", unpause("")),
            (260, sup, "Anna Bianchi", pause("Lunch")),
            (400, None, "Paolo Verdi", pause("Meeting")),
            (500, sup, "Anna Bianchi", unpause("")),
            (501, None, "Paolo Verdi", unpause("")),
            (
                950,
                None,
                "Anna Bianchi",
                OperatorAction::Logoff {
                    channel: "PJSIP/301-00000010".into(),
                    logintime: Some(940)
                },
            ),
            (951, sup, "Paolo Verdi", OperatorAction::RemoveMember),
        ]
    );
}

#[test]
fn queue_aggregation_fed_incrementally_in_chunks() {
    // Incremental use: the aggregator is fed record by record as chunks arrive.
    let mut splitter = Splitter::new(SplitterConfig::PLAIN);
    let mut aggregator = QueueAggregator::new();
    let mut rows = 0;
    for chunk in QUEUE_LOG.chunks(13) {
        for record in splitter.push(chunk) {
            let record = record.expect("ok");
            let line = kpbxd::cdr::queue_log::parse_queue_log_line(&record.bytes).expect("ok");
            rows += aggregator
                .push(&line)
                .iter()
                .filter(|o| matches!(o, QueueOutput::Entry(_)))
                .count();
        }
    }
    assert_eq!(rows, 8);
    assert_eq!(aggregator.open_count(), 1);
}
