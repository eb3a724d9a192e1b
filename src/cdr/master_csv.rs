//! Parser for Asterisk `cdr_csv` `Master.csv` records (and `cdr_custom` layouts).
//!
//! Format (asterisk `cdr/cdr_csv.c`): comma-separated; every string field is
//! wrapped in `"` with embedded `"` doubled and nothing else escaped (a raw
//! newline may appear inside a quoted field); integers are bare; time stamps
//! are `YYYY-MM-DD HH:MM:SS` in the box's local time, and an unset time (no
//! answer) is an empty field. The tokenizer also accepts quoted integers and
//! quoted empty times, as `cdr_custom` writes them.
//!
//! Local time → UTC: see [`resolve_times`]. Invalid UTF-8 is replaced with
//! U+FFFD rather than rejecting the record.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;

use super::{LineParser, Reason};

/// Why a `Master.csv` record was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterError {
    /// A quoted field was not closed before the end of the record.
    UnterminatedQuote,
    /// Something other than `,` followed a closing quote (at byte `at`).
    JunkAfterQuote {
        /// Byte index in the record.
        at: usize,
    },
    /// A `"` inside an unquoted field (at byte `at`).
    StrayQuote {
        /// Byte index in the record.
        at: usize,
    },
    /// Fewer columns than the mapping requires.
    TooFewColumns {
        /// Columns found.
        found: usize,
        /// Columns required.
        needed: usize,
    },
    /// A column that must be an integer is not one.
    BadInteger {
        /// Field name.
        field: &'static str,
    },
    /// A column that must be a time stamp is not one (or is empty).
    BadTime {
        /// Field name.
        field: &'static str,
    },
}

impl fmt::Display for MasterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterError::UnterminatedQuote => write!(f, "unterminated quoted field"),
            MasterError::JunkAfterQuote { at } => {
                write!(f, "junk after closing quote at byte {at}")
            }
            MasterError::StrayQuote { at } => write!(f, "quote inside unquoted field at byte {at}"),
            MasterError::TooFewColumns { found, needed } => {
                write!(f, "{found} columns, need at least {needed}")
            }
            MasterError::BadInteger { field } => write!(f, "{field}: not an integer"),
            MasterError::BadTime { field } => write!(f, "{field}: not a YYYY-MM-DD HH:MM:SS time"),
        }
    }
}

/// A call disposition as written by Asterisk.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// `ANSWERED`
    Answered,
    /// `NO ANSWER`
    NoAnswer,
    /// `BUSY`
    Busy,
    /// `FAILED`
    Failed,
    /// `CONGESTION` (with `congestion=yes` in cdr.conf)
    Congestion,
    /// Anything else, kept verbatim.
    Other(String),
}

impl Disposition {
    /// Maps Asterisk's text; unknown text becomes [`Disposition::Other`].
    pub fn from_asterisk(text: &str) -> Disposition {
        match text {
            "ANSWERED" => Disposition::Answered,
            "NO ANSWER" => Disposition::NoAnswer,
            "BUSY" => Disposition::Busy,
            "FAILED" => Disposition::Failed,
            "CONGESTION" => Disposition::Congestion,
            other => Disposition::Other(other.to_owned()),
        }
    }
}

/// One CDR leg (one line of `Master.csv`), times in UTC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CdrRecord {
    /// `accountcode`
    pub accountcode: String,
    /// `src`: caller number.
    pub src: String,
    /// `dst`: destination extension.
    pub dst: String,
    /// `dcontext`
    pub dcontext: String,
    /// `clid`: `"Name" <number>`; see [`parse_clid`].
    pub clid: String,
    /// `channel`: caller channel.
    pub channel: String,
    /// `dstchannel`: callee channel.
    pub dstchannel: String,
    /// `lastapp`
    pub lastapp: String,
    /// `lastdata`
    pub lastdata: String,
    /// `start`
    pub start: Timestamp,
    /// `answer`; `None` when never answered.
    pub answer: Option<Timestamp>,
    /// `end`
    pub end: Timestamp,
    /// `duration`, seconds.
    pub duration: u64,
    /// `billsec`, seconds.
    pub billsec: u64,
    /// `disposition`
    pub disposition: Disposition,
    /// `amaflags`
    pub amaflags: String,
    /// `uniqueid`, when logged.
    pub uniqueid: Option<String>,
    /// `userfield`, when logged.
    pub userfield: Option<String>,
    /// `peeraccount`, when logged.
    pub peeraccount: Option<String>,
    /// `linkedid`, when logged.
    pub linkedid: Option<String>,
    /// `sequence`, when logged.
    pub sequence: Option<u64>,
}

/// Which column (0-based) holds which field. `None` = not in this layout.
///
/// Optional fields whose column lies beyond the end of a record are read as
/// absent, so [`ColumnMapping::CDR_CSV`] accepts records with and without
/// `loguniqueid`, `loguserfield` and `newcdrcolumns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnMapping {
    /// Column of `accountcode`.
    pub accountcode: Option<usize>,
    /// Column of `src`.
    pub src: Option<usize>,
    /// Column of `dst`.
    pub dst: Option<usize>,
    /// Column of `dcontext`.
    pub dcontext: Option<usize>,
    /// Column of `clid`.
    pub clid: Option<usize>,
    /// Column of `channel`.
    pub channel: Option<usize>,
    /// Column of `dstchannel`.
    pub dstchannel: Option<usize>,
    /// Column of `lastapp`.
    pub lastapp: Option<usize>,
    /// Column of `lastdata`.
    pub lastdata: Option<usize>,
    /// Column of `start` (required).
    pub start: usize,
    /// Column of `answer`.
    pub answer: Option<usize>,
    /// Column of `end` (required).
    pub end: usize,
    /// Column of `duration`.
    pub duration: Option<usize>,
    /// Column of `billsec`.
    pub billsec: Option<usize>,
    /// Column of `disposition`.
    pub disposition: Option<usize>,
    /// Column of `amaflags`.
    pub amaflags: Option<usize>,
    /// Column of `uniqueid`.
    pub uniqueid: Option<usize>,
    /// Column of `userfield`.
    pub userfield: Option<usize>,
    /// Column of `peeraccount`.
    pub peeraccount: Option<usize>,
    /// Column of `linkedid`.
    pub linkedid: Option<usize>,
    /// Column of `sequence`.
    pub sequence: Option<usize>,
    /// Records with fewer columns are rejected.
    pub min_columns: usize,
}

impl ColumnMapping {
    /// `cdr_csv` order: 16 standard columns, then `uniqueid`, `userfield`,
    /// `peeraccount`, `linkedid`, `sequence` when enabled.
    pub const CDR_CSV: ColumnMapping = ColumnMapping {
        accountcode: Some(0),
        src: Some(1),
        dst: Some(2),
        dcontext: Some(3),
        clid: Some(4),
        channel: Some(5),
        dstchannel: Some(6),
        lastapp: Some(7),
        lastdata: Some(8),
        start: 9,
        answer: Some(10),
        end: 11,
        duration: Some(12),
        billsec: Some(13),
        disposition: Some(14),
        amaflags: Some(15),
        uniqueid: Some(16),
        userfield: Some(17),
        peeraccount: Some(18),
        linkedid: Some(19),
        sequence: Some(20),
        min_columns: 16,
    };

    /// The legacy `Master.csv` mapping of `cdr_custom.conf.sample`:
    /// `clid, src, dst, dcontext, channel, dstchannel, lastapp, lastdata,
    /// start, answer, end, duration, billsec, disposition, amaflags,
    /// accountcode, uniqueid, userfield, sequence`.
    pub const CDR_CUSTOM_LEGACY: ColumnMapping = ColumnMapping {
        clid: Some(0),
        src: Some(1),
        dst: Some(2),
        dcontext: Some(3),
        channel: Some(4),
        dstchannel: Some(5),
        lastapp: Some(6),
        lastdata: Some(7),
        start: 8,
        answer: Some(9),
        end: 10,
        duration: Some(11),
        billsec: Some(12),
        disposition: Some(13),
        amaflags: Some(14),
        accountcode: Some(15),
        uniqueid: Some(16),
        userfield: Some(17),
        sequence: Some(18),
        peeraccount: None,
        linkedid: None,
        min_columns: 15,
    };
}

/// A `Master.csv` layout: column mapping plus the time zone of its stamps.
#[derive(Clone, Debug)]
pub struct MasterFormat {
    /// Column layout.
    pub mapping: ColumnMapping,
    /// Zone of the time stamps; [`TimeZone::UTC`] for `usegmtime=yes`.
    pub tz: TimeZone,
}

impl LineParser for MasterFormat {
    type Output = CdrRecord;

    fn parse(&self, record: &[u8]) -> Result<CdrRecord, Reason> {
        parse_master_line_with(record, self).map_err(Reason::Master)
    }
}

/// One CSV field: its text and whether it was quoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// Unescaped text.
    pub text: String,
    /// `true` when written as `"…"`.
    pub quoted: bool,
}

/// Parses a `cdr_csv` record with [`ColumnMapping::CDR_CSV`] and UTC times.
/// Entry point for fuzzing: never panics.
pub fn parse_master_line(record: &[u8]) -> Result<CdrRecord, MasterError> {
    let format = MasterFormat {
        mapping: ColumnMapping::CDR_CSV,
        tz: TimeZone::UTC,
    };
    parse_master_line_with(record, &format)
}

/// Parses one record (terminator removed) with the given layout.
pub fn parse_master_line_with(
    record: &[u8],
    format: &MasterFormat,
) -> Result<CdrRecord, MasterError> {
    let fields = split_fields(record)?;
    let map = &format.mapping;
    let needed = map.min_columns.max(map.start + 1).max(map.end + 1);
    if fields.len() < needed {
        return Err(MasterError::TooFewColumns {
            found: fields.len(),
            needed,
        });
    }
    let text = |col: Option<usize>| -> String {
        col.and_then(|i| fields.get(i))
            .map(|f| f.text.clone())
            .unwrap_or_default()
    };
    let opt_text = |col: Option<usize>| col.and_then(|i| fields.get(i)).map(|f| f.text.clone());
    let int = |col: Option<usize>, field: &'static str| -> Result<Option<u64>, MasterError> {
        match col.and_then(|i| fields.get(i)) {
            None => Ok(None),
            Some(f) if f.text.is_empty() => Ok(None),
            Some(f) => f
                .text
                .parse()
                .map(Some)
                .map_err(|_| MasterError::BadInteger { field }),
        }
    };
    let civil =
        |col: Option<usize>, field: &'static str| -> Result<Option<DateTime>, MasterError> {
            match col.and_then(|i| fields.get(i)) {
                None => Ok(None),
                Some(f) if f.text.is_empty() => Ok(None),
                Some(f) => parse_civil(&f.text)
                    .map(Some)
                    .ok_or(MasterError::BadTime { field }),
            }
        };

    let start = civil(Some(map.start), "start")?.ok_or(MasterError::BadTime { field: "start" })?;
    let answer = civil(map.answer, "answer")?;
    let end = civil(Some(map.end), "end")?.ok_or(MasterError::BadTime { field: "end" })?;
    let duration = int(map.duration, "duration")?.unwrap_or(0);
    let billsec = int(map.billsec, "billsec")?.unwrap_or(0);
    let times = resolve_times(&format.tz, start, answer, end, duration, billsec)
        .ok_or(MasterError::BadTime { field: "start" })?;

    Ok(CdrRecord {
        accountcode: text(map.accountcode),
        src: text(map.src),
        dst: text(map.dst),
        dcontext: text(map.dcontext),
        clid: text(map.clid),
        channel: text(map.channel),
        dstchannel: text(map.dstchannel),
        lastapp: text(map.lastapp),
        lastdata: text(map.lastdata),
        start: times.start,
        answer: times.answer,
        end: times.end,
        duration,
        billsec,
        disposition: Disposition::from_asterisk(&text(map.disposition)),
        amaflags: text(map.amaflags),
        uniqueid: opt_text(map.uniqueid),
        userfield: opt_text(map.userfield),
        peeraccount: opt_text(map.peeraccount),
        linkedid: opt_text(map.linkedid),
        sequence: int(map.sequence, "sequence")?,
    })
}

/// Splits one CSV record into fields (`"` quoting, `""` escape).
pub fn split_fields(record: &[u8]) -> Result<Vec<Field>, MasterError> {
    let mut fields = Vec::new();
    let mut start = 0;
    // Each field consumes at least its separator: at most `len + 1` fields.
    for _ in 0..=record.len() {
        let (field, next) = read_field(record, start)?;
        fields.push(field);
        if record.get(next) != Some(&b',') {
            break;
        }
        start = next + 1;
    }
    Ok(fields)
}

/// Reads the field starting at `start`; returns it and the index of the
/// byte after it (a `,` or the end of the record). Always advances or ends.
fn read_field(record: &[u8], start: usize) -> Result<(Field, usize), MasterError> {
    let rest = record.get(start..).unwrap_or_default();
    if rest.first() != Some(&b'"') {
        let len = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        let raw = &rest[..len];
        if let Some(q) = raw.iter().position(|&b| b == b'"') {
            return Err(MasterError::StrayQuote { at: start + q });
        }
        let text = String::from_utf8_lossy(raw).into_owned();
        return Ok((
            Field {
                text,
                quoted: false,
            },
            start + len,
        ));
    }
    let mut bytes = Vec::new();
    let mut i = start + 1;
    while i < record.len() {
        if record[i] != b'"' {
            bytes.push(record[i]);
            i += 1;
            continue;
        }
        if record.get(i + 1) == Some(&b'"') {
            bytes.push(b'"');
            i += 2;
            continue;
        }
        let after = i + 1;
        if after < record.len() && record[after] != b',' {
            return Err(MasterError::JunkAfterQuote { at: after });
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        return Ok((Field { text, quoted: true }, after));
    }
    Err(MasterError::UnterminatedQuote)
}

/// Parses `YYYY-MM-DD HH:MM:SS` (exactly) into a civil date-time.
fn parse_civil(text: &str) -> Option<DateTime> {
    let b = text.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i16> {
        let digits = b.get(from..to)?;
        digits.iter().try_fold(0i16, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i16::from(d - b'0'))
        })
    };
    let narrow = |v: i16| i8::try_from(v).ok();
    DateTime::new(
        num(0, 4)?,
        narrow(num(5, 7)?)?,
        narrow(num(8, 10)?)?,
        narrow(num(11, 13)?)?,
        narrow(num(14, 16)?)?,
        narrow(num(17, 19)?)?,
        0,
    )
    .ok()
}

/// A leg's times in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegTimes {
    /// Start.
    pub start: Timestamp,
    /// Answer, if answered.
    pub answer: Option<Timestamp>,
    /// End.
    pub end: Timestamp,
}

/// Converts a record's local `start`, `answer`, `end` to UTC.
///
/// Each local time has one or two candidate instants: one when it is
/// unambiguous; two in a DST fold (repeated hour) or gap (skipped hour). The
/// combination chosen is the one most consistent with the record itself,
/// minimising `|(end-start) - duration| + |(end-answer) - billsec|` plus a
/// penalty when the order `start <= answer <= end` is broken. Ties (e.g. a
/// whole call inside the repeated hour) go to jiff's "compatible" choice:
/// the **earlier** instant in a fold, and in a gap the time **shifted forward**
/// by the gap length (02:30 on a spring-forward day becomes 03:30).
/// Deterministic: at most 2×2×2 combinations, scanned in a fixed order.
pub fn resolve_times(
    tz: &TimeZone,
    start: DateTime,
    answer: Option<DateTime>,
    end: DateTime,
    duration: u64,
    billsec: u64,
) -> Option<LegTimes> {
    let starts = candidates(tz, start)?;
    let ends = candidates(tz, end)?;
    let answers: Vec<Option<Timestamp>> = match answer {
        None => vec![None],
        Some(a) => candidates(tz, a)?.into_iter().map(Some).collect(),
    };
    let mut best: Option<(i64, LegTimes)> = None;
    for &s in &starts {
        for &a in &answers {
            for &e in &ends {
                let cost = inconsistency(s, a, e, duration, billsec);
                if best.is_none_or(|(c, _)| cost < c) {
                    best = Some((
                        cost,
                        LegTimes {
                            start: s,
                            answer: a,
                            end: e,
                        },
                    ));
                }
            }
        }
    }
    best.map(|(_, times)| times)
}

/// The instants a local time may denote; the "compatible" one first.
fn candidates(tz: &TimeZone, dt: DateTime) -> Option<Vec<Timestamp>> {
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    let first = ambiguous.compatible().ok()?;
    let mut out = vec![first];
    for other in [ambiguous.earlier(), ambiguous.later()]
        .into_iter()
        .flatten()
    {
        if !out.contains(&other) {
            out.push(other);
        }
    }
    Some(out)
}

fn inconsistency(
    s: Timestamp,
    a: Option<Timestamp>,
    e: Timestamp,
    duration: u64,
    billsec: u64,
) -> i64 {
    const ORDER_PENALTY: i64 = 1_000_000;
    let secs = |from: Timestamp, to: Timestamp| to.as_second().saturating_sub(from.as_second());
    let off = |got: i64, want: u64| {
        got.saturating_sub(i64::try_from(want).unwrap_or(i64::MAX))
            .saturating_abs()
    };
    let mut cost = off(secs(s, e), duration);
    if e < s {
        cost = cost.saturating_add(ORDER_PENALTY);
    }
    if let Some(a) = a {
        cost = cost.saturating_add(off(secs(a, e), billsec));
        if a < s || e < a {
            cost = cost.saturating_add(ORDER_PENALTY);
        }
    }
    cost
}

/// A caller id split into name and number.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallerId {
    /// Display name, if any.
    pub name: Option<String>,
    /// Number, if any.
    pub number: Option<String>,
}

/// Parses Asterisk's `clid` (`"Name" <number>`, `Name <number>`, `<number>`,
/// `"Name"` or a bare number). A bare word that is not number-like is a name.
pub fn parse_clid(clid: &str) -> CallerId {
    let clid = clid.trim();
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
    if let (Some(open), true) = (clid.rfind('<'), clid.ends_with('>')) {
        let number = non_empty(clid[open + 1..clid.len() - 1].trim());
        let name = non_empty(unquote(clid[..open].trim()));
        return CallerId { name, number };
    }
    if is_number_like(clid) {
        return CallerId {
            name: None,
            number: non_empty(clid),
        };
    }
    CallerId {
        name: non_empty(unquote(clid)),
        number: None,
    }
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// Digits with an optional leading `+`, or dial-string characters `*#`.
fn is_number_like(s: &str) -> bool {
    let digits = s.strip_prefix('+').unwrap_or(s);
    !digits.is_empty()
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(line: &[u8]) -> Vec<(String, bool)> {
        split_fields(line)
            .expect("valid")
            .into_iter()
            .map(|f| (f.text, f.quoted))
            .collect()
    }

    #[test]
    fn tokenizer_handles_quotes_empties_and_newlines() {
        let got = texts(b"\"a,b\",,12,\"\"\"q\"\"\",\"x\ny\",");
        let want = [
            ("a,b", true),
            ("", false),
            ("12", false),
            ("\"q\"", true),
            ("x\ny", true),
            ("", false),
        ];
        assert_eq!(got, want.map(|(t, q)| (t.to_owned(), q)));
        assert_eq!(texts(b""), vec![(String::new(), false)]);
    }

    #[test]
    fn tokenizer_rejects_bad_quoting() {
        assert_eq!(split_fields(b"\"abc"), Err(MasterError::UnterminatedQuote));
        assert_eq!(
            split_fields(b"\"a\"b,c"),
            Err(MasterError::JunkAfterQuote { at: 3 })
        );
        assert_eq!(
            split_fields(b"ab\"c"),
            Err(MasterError::StrayQuote { at: 2 })
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_rejected() {
        assert_eq!(
            texts(b"\"caf\xe9\""),
            vec![("caf\u{FFFD}".to_owned(), true)]
        );
    }

    #[test]
    fn clid_forms() {
        let id = |name: Option<&str>, number: Option<&str>| CallerId {
            name: name.map(str::to_owned),
            number: number.map(str::to_owned),
        };
        assert_eq!(
            parse_clid("\"Mario Rossi\" <201>"),
            id(Some("Mario Rossi"), Some("201"))
        );
        assert_eq!(
            parse_clid("Mario <+39050123>"),
            id(Some("Mario"), Some("+39050123"))
        );
        assert_eq!(parse_clid("<201>"), id(None, Some("201")));
        assert_eq!(parse_clid("\"Anonymous\" <>"), id(Some("Anonymous"), None));
        assert_eq!(parse_clid("0501234567"), id(None, Some("0501234567")));
        assert_eq!(parse_clid("\"Reception\""), id(Some("Reception"), None));
        assert_eq!(parse_clid(""), id(None, None));
    }

    #[test]
    fn cdr_custom_legacy_mapping_with_quoted_numbers() {
        let line = b"\"\"\"Anna\"\" <202>\",\"202\",\"201\",\"from-internal\",\"PJSIP/202-1\",\"PJSIP/201-2\",\
            \"Dial\",\"PJSIP/201\",\"2026-03-20 10:00:00\",\"\",\"2026-03-20 10:00:09\",\"9\",\"0\",\
            \"NO ANSWER\",\"DOCUMENTATION\",\"acct\",\"1774000000.7\",\"uf\",\"4\"";
        let format = MasterFormat {
            mapping: ColumnMapping::CDR_CUSTOM_LEGACY,
            tz: TimeZone::UTC,
        };
        let rec = parse_master_line_with(line, &format).expect("parses");
        assert_eq!(
            (rec.src.as_str(), rec.dst.as_str(), rec.accountcode.as_str()),
            ("202", "201", "acct")
        );
        assert_eq!(rec.clid, "\"Anna\" <202>");
        assert_eq!(rec.answer, None);
        assert_eq!((rec.duration, rec.billsec, rec.sequence), (9, 0, Some(4)));
        assert_eq!(rec.disposition, Disposition::NoAnswer);
        assert_eq!(rec.uniqueid.as_deref(), Some("1774000000.7"));
        assert_eq!((rec.linkedid, rec.peeraccount), (None, None));
    }

    #[test]
    fn record_level_errors() {
        assert_eq!(
            parse_master_line(b"\"a\""),
            Err(MasterError::TooFewColumns {
                found: 1,
                needed: 16
            })
        );
        let bad_answer =
            b"\"\",\"1\",\"2\",\"c\",\"\",\"ch\",\"\",\"Dial\",\"\",\"2026-03-20 10:00:00\",\
            \"2026-02-30 10:00:00\",\"2026-03-20 10:00:01\",1,1,\"ANSWERED\",\"\"";
        assert_eq!(
            parse_master_line(bad_answer),
            Err(MasterError::BadTime { field: "answer" })
        );
        let odd =
            b"\"\",\"1\",\"2\",\"c\",\"\",\"ch\",\"\",\"Dial\",\"\",\"2026-03-20 10:00:00\",,\
            \"2026-03-20 10:00:01\",1,0,\"WEIRD\",\"\"";
        let rec = parse_master_line(odd).expect("parses");
        assert_eq!(rec.disposition, Disposition::Other("WEIRD".to_owned()));
    }
}
