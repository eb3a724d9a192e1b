//! CDR and call-center reports out of the store, and the store side of CDR
//! ingestion. No I/O but the store and the `Write`/`Read` handed in: the
//! daemon, the CLI path and the scheduled-task runner all call these.
//!
//! Exports stream: one read transaction, one row decoded at a time, pushed
//! into an [`crate::export`] writer; memory does not grow with the range.
//!
//! | format | calls | call center |
//! |---|---|---|
//! | `csv`, `xlsx` | one row per call | one row per queue entry |
//! | `csv-detailed`, `xlsx-detailed`, `json`, `xml` | + the legs | + ring attempts, + operator events when asked |

pub mod ingest;
pub mod interval;

use std::fmt;
use std::io::Write;
use std::ops::{Bound, ControlFlow};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::cdr::record::{CallRecord, OperatorEventRecord, QueueEntryRecord, key_time, time_key};
use crate::export::csv::{CsvOptions, CsvWriter};
use crate::export::json::JsonWriter;
use crate::export::xlsx::{XlsxOptions, XlsxWriter};
use crate::export::xml::XmlWriter;
use crate::export::{Cell, Column, ColumnType, ExportError, ExportSpec, Options, RowSink, Sheet};
use crate::store::data::{Order, Table};
use crate::store::records::from_bytes;
use crate::store::{Store, StoreError};

/// Rows between two [`Store::release_mapped_pages`]: the store pages a scan
/// touched are dropped from the resident set, so it does not grow with the
/// range.
const RELEASE_EVERY: u64 = 8192;

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    CsvDetailed,
    Xlsx,
    XlsxDetailed,
    Json,
    Xml,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Csv,
        Format::CsvDetailed,
        Format::Xlsx,
        Format::XlsxDetailed,
        Format::Json,
        Format::Xml,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::CsvDetailed => "csv-detailed",
            Format::Xlsx => "xlsx",
            Format::XlsxDetailed => "xlsx-detailed",
            Format::Json => "json",
            Format::Xml => "xml",
        }
    }

    pub fn from_name(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Whether the detail (legs, ring attempts, operator events) is included.
    pub fn detailed(self) -> bool {
        !matches!(self, Format::Csv | Format::Xlsx)
    }
}

/// `[start, end)`, microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_us: i64,
    pub end_us: i64,
}

impl TimeRange {
    pub fn new(start: Timestamp, end: Timestamp) -> TimeRange {
        TimeRange {
            start_us: start.as_microsecond(),
            end_us: end.as_microsecond(),
        }
    }
}

/// Per-export options.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Zone for local times (the `timezone` setting).
    pub tz: TimeZone,
    /// Mask the last three digits of phone numbers.
    pub mask: bool,
    pub csv: CsvOptions,
    pub xlsx: XlsxOptions,
    /// Call center, detailed formats: add the agents' operator events.
    pub operator_events: bool,
}

impl Default for ExportOptions {
    fn default() -> ExportOptions {
        ExportOptions {
            tz: TimeZone::UTC,
            mask: false,
            csv: CsvOptions::default(),
            xlsx: XlsxOptions::default(),
            operator_events: false,
        }
    }
}

/// What an export wrote: top-level rows (calls, queue entries, operator
/// events) and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportSummary {
    pub rows: u64,
    pub bytes: u64,
}

#[derive(Debug)]
pub enum ReportError {
    Store(StoreError),
    Export(ExportError),
    /// Bad request (range, format).
    Invalid(String),
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::Store(e) => write!(f, "store: {e}"),
            ReportError::Export(e) => write!(f, "{e}"),
            ReportError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ReportError {}

impl From<StoreError> for ReportError {
    fn from(e: StoreError) -> Self {
        ReportError::Store(e)
    }
}

impl From<ExportError> for ReportError {
    fn from(e: ExportError) -> Self {
        ReportError::Export(e)
    }
}

/// Counts bytes passed through.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// One of the streaming writers.
enum Writer<W: Write + Send> {
    Csv(CsvWriter<Counting<W>>),
    Json(JsonWriter<Counting<W>>),
    Xml(XmlWriter<Counting<W>>),
    Xlsx(Box<XlsxWriter<Counting<W>>>),
}

impl<W: Write + Send> Writer<W> {
    fn new(
        out: W,
        spec: ExportSpec,
        format: Format,
        opts: &ExportOptions,
    ) -> Result<Self, ExportError> {
        let out = Counting {
            inner: out,
            bytes: 0,
        };
        let o = Options {
            tz: opts.tz.clone(),
            mask_phone_numbers: opts.mask,
        };
        Ok(match format {
            Format::Csv | Format::CsvDetailed => {
                Writer::Csv(CsvWriter::new(out, spec, o, opts.csv)?)
            }
            Format::Json => Writer::Json(JsonWriter::new(out, spec, o)?),
            Format::Xml => Writer::Xml(XmlWriter::new(out, spec, o)?),
            Format::Xlsx | Format::XlsxDetailed => {
                Writer::Xlsx(Box::new(XlsxWriter::new(out, spec, o, opts.xlsx.clone())?))
            }
        })
    }

    fn finish(self) -> Result<u64, ExportError> {
        Ok(match self {
            Writer::Csv(w) => w.finish()?.bytes,
            Writer::Json(w) => w.finish()?.bytes,
            Writer::Xml(w) => w.finish()?.bytes,
            Writer::Xlsx(w) => w.finish()?.bytes,
        })
    }
}

impl<W: Write + Send> RowSink for Writer<W> {
    fn push_row(&mut self, sheet: usize, cells: &[Cell<'_>]) -> Result<(), ExportError> {
        match self {
            Writer::Csv(w) => w.push_row(sheet, cells),
            Writer::Json(w) => w.push_row(sheet, cells),
            Writer::Xml(w) => w.push_row(sheet, cells),
            Writer::Xlsx(w) => w.push_row(sheet, cells),
        }
    }
}

fn col(id: &str, header: &str, kind: ColumnType) -> Column {
    Column::new(id, header, kind)
}

/// The sheets of a calls export.
pub fn calls_spec(detailed: bool) -> ExportSpec {
    use ColumnType::*;
    let mut sheets = vec![Sheet {
        id: "calls".into(),
        title: "Calls".into(),
        columns: vec![
            col("id", "Call ID", Text),
            col("start", "Start", Timestamp),
            col("answer", "Answer", Timestamp),
            col("end", "End", Timestamp),
            col("duration", "Duration", Duration),
            col("billsec", "Billable", Duration),
            col("caller_number", "Caller number", Phone),
            col("caller_name", "Caller name", Text),
            col("called_number", "Called number", Phone),
            col("answered_by", "Answered by", Text),
            col("status", "Status", Text),
            col("direction", "Direction", Text),
        ],
        parent: None,
    }];
    if detailed {
        sheets.push(Sheet {
            id: "legs".into(),
            title: "Legs".into(),
            columns: vec![
                col("uniqueid", "Unique ID", Text),
                col("sequence", "Sequence", Integer),
                col("leg_start", "Leg start", Timestamp),
                col("leg_answer", "Leg answer", Timestamp),
                col("leg_end", "Leg end", Timestamp),
                col("leg_duration", "Leg duration", Duration),
                col("leg_billsec", "Leg billable", Duration),
                col("src", "Source", Phone),
                col("dst", "Destination", Phone),
                col("dcontext", "Context", Text),
                col("channel", "Channel", Text),
                col("dstchannel", "Destination channel", Text),
                col("lastapp", "Application", Text),
                col("lastdata", "Application data", Text),
                col("disposition", "Disposition", Text),
                col("accountcode", "Account code", Text),
                col("userfield", "User field", Text),
            ],
            parent: Some(0),
        });
    }
    ExportSpec { sheets }
}

/// The sheets of a call-center export.
pub fn queue_spec(detailed: bool, operator_events: bool) -> ExportSpec {
    use ColumnType::*;
    let mut sheets = vec![Sheet {
        id: "queue_entries".into(),
        title: "Queue calls".into(),
        columns: vec![
            col("callid", "Call ID", Text),
            col("queue", "Queue", Text),
            col("entered", "Entered", Timestamp),
            col("caller_number", "Caller number", Phone),
            col("caller_name", "Caller name", Text),
            col("entry_position", "Entry position", Integer),
            col("wait", "Wait", Duration),
            col("ring", "Ring", Duration),
            col("agent", "Agent", Text),
            col("talk", "Talk", Duration),
            col("outcome", "Outcome", Text),
            col("outcome_detail", "Outcome detail", Text),
            col("ended", "Ended", Timestamp),
        ],
        parent: None,
    }];
    if detailed {
        sheets.push(Sheet {
            id: "attempts".into(),
            title: "Ring attempts".into(),
            columns: vec![
                col("attempt_time", "Attempt time", Timestamp),
                col("attempt_agent", "Attempt agent", Text),
                col("ring_ms", "Ring ms", Integer),
                col("result", "Result", Text),
            ],
            parent: Some(0),
        });
        if operator_events {
            sheets.push(Sheet {
                id: "operator_events".into(),
                title: "Operator events".into(),
                columns: vec![
                    col("time", "Time", Timestamp),
                    col("event_queue", "Queue", Text),
                    col("event_agent", "Agent", Text),
                    col("action", "Action", Text),
                    col("detail", "Detail", Text),
                    col("logintime", "Logged in", Duration),
                ],
                parent: None,
            });
        }
    }
    ExportSpec { sheets }
}

fn ts(us: i64) -> Cell<'static> {
    Timestamp::from_microsecond(us).map_or(Cell::Empty, Cell::Timestamp)
}

fn opt_ts(us: Option<i64>) -> Cell<'static> {
    us.map_or(Cell::Empty, ts)
}

fn dur(s: u64) -> Cell<'static> {
    Cell::Duration(i64::try_from(s).unwrap_or(i64::MAX))
}

fn opt_dur(s: Option<u64>) -> Cell<'static> {
    s.map_or(Cell::Empty, dur)
}

fn int(n: Option<u64>) -> Cell<'static> {
    n.map_or(Cell::Empty, |n| {
        Cell::Integer(i64::try_from(n).unwrap_or(i64::MAX))
    })
}

fn text(s: &str) -> Cell<'_> {
    if s.is_empty() {
        Cell::Empty
    } else {
        Cell::Text(s)
    }
}

fn opt_text(s: &Option<String>) -> Cell<'_> {
    s.as_deref().map_or(Cell::Empty, text)
}

fn phone(s: &str) -> Cell<'_> {
    if s.is_empty() {
        Cell::Empty
    } else {
        Cell::Phone(s)
    }
}

fn range_bounds(range: TimeRange) -> ([u8; 8], [u8; 8]) {
    (time_key(range.start_us), time_key(range.end_us))
}

/// Counts a pushed record, releasing mapped store pages every
/// [`RELEASE_EVERY`] rows, or keeps the first export error and stops the scan.
fn tally(
    pushed: Result<(), ExportError>,
    rows: &mut u64,
    failure: &mut Option<ExportError>,
    store: &Store,
) -> ControlFlow<()> {
    match pushed {
        Ok(()) => {
            *rows += 1;
            if rows.is_multiple_of(RELEASE_EVERY) {
                store.release_mapped_pages();
            }
            ControlFlow::Continue(())
        }
        Err(e) => {
            *failure = Some(e);
            ControlFlow::Break(())
        }
    }
}

fn check_range(range: TimeRange) -> Result<(), ReportError> {
    if range.end_us < range.start_us {
        return Err(ReportError::Invalid(
            "the range ends before it starts".into(),
        ));
    }
    Ok(())
}

/// Exports the calls that started in `range` to `out`.
pub fn export_calls(
    store: &Store,
    range: TimeRange,
    format: Format,
    opts: &ExportOptions,
    out: impl Write + Send,
) -> Result<ExportSummary, ReportError> {
    check_range(range)?;
    let detailed = format.detailed();
    let mut w = Writer::new(out, calls_spec(detailed), format, opts)?;
    let (from, to) = range_bounds(range);
    let mut rows = 0u64;
    let mut failure: Option<ExportError> = None;
    let mask = opts.mask;
    store.data_scan(
        Table::Call,
        (Bound::Included(&from[..]), Bound::Excluded(&to[..])),
        Order::Ascending,
        |_, value| {
            let CallRecord::V1(c) = from_bytes::<CallRecord>(value)?;
            let r = (|| {
                w.push_row(
                    0,
                    &[
                        Cell::Text(&c.id),
                        ts(c.start_us),
                        opt_ts(c.answer_us),
                        ts(c.end_us),
                        dur(c.duration),
                        dur(c.billsec),
                        phone(&c.caller_number),
                        opt_text(&c.caller_name),
                        phone(&c.called_number),
                        opt_text(&c.answered_by),
                        text(&c.status),
                        text(&c.direction),
                    ],
                )?;
                if detailed {
                    for l in &c.legs {
                        w.push_row(
                            1,
                            &[
                                opt_text(&l.uniqueid),
                                int(l.sequence),
                                ts(l.start_us),
                                opt_ts(l.answer_us),
                                ts(l.end_us),
                                dur(l.duration),
                                dur(l.billsec),
                                phone(&l.src),
                                phone(&l.dst),
                                text(&l.dcontext),
                                text(&l.channel),
                                text(&l.dstchannel),
                                text(&l.lastapp),
                                // Dial strings carry numbers: hidden when masking.
                                if mask { Cell::Empty } else { text(&l.lastdata) },
                                text(&l.disposition),
                                text(&l.accountcode),
                                opt_text(&l.userfield),
                            ],
                        )?;
                    }
                }
                Ok::<(), ExportError>(())
            })();
            Ok(tally(r, &mut rows, &mut failure, store))
        },
    )?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    let bytes = w.finish()?;
    Ok(ExportSummary { rows, bytes })
}

/// Exports the queue entries that entered in `range` (and, for detailed
/// formats with [`ExportOptions::operator_events`], the operator events of
/// the range) to `out`.
pub fn export_queue(
    store: &Store,
    range: TimeRange,
    format: Format,
    opts: &ExportOptions,
    out: impl Write + Send,
) -> Result<ExportSummary, ReportError> {
    check_range(range)?;
    let detailed = format.detailed();
    let operators = detailed && opts.operator_events;
    let mut w = Writer::new(out, queue_spec(detailed, operators), format, opts)?;
    let (from, to) = range_bounds(range);
    let mut rows = 0u64;
    let mut failure: Option<ExportError> = None;
    store.data_scan(
        Table::QueueEntry,
        (Bound::Included(&from[..]), Bound::Excluded(&to[..])),
        Order::Ascending,
        |_, value| {
            let QueueEntryRecord::V1(q) = from_bytes::<QueueEntryRecord>(value)?;
            let r = (|| {
                w.push_row(
                    0,
                    &[
                        Cell::Text(&q.callid),
                        text(&q.queue),
                        ts(q.entered_us),
                        phone(&q.caller_number),
                        opt_text(&q.caller_name),
                        int(q.entry_position),
                        opt_dur(q.wait_secs),
                        opt_dur(q.ring_secs),
                        opt_text(&q.agent),
                        opt_dur(q.talk_secs),
                        text(&q.outcome),
                        text(&q.outcome_detail),
                        ts(q.ended_us),
                    ],
                )?;
                if detailed {
                    for a in &q.attempts {
                        w.push_row(
                            1,
                            &[
                                ts(a.time_us),
                                text(&a.agent),
                                int(a.ring_ms),
                                text(&a.result),
                            ],
                        )?;
                    }
                }
                Ok::<(), ExportError>(())
            })();
            Ok(tally(r, &mut rows, &mut failure, store))
        },
    )?;
    if operators && failure.is_none() {
        store.data_scan(
            Table::OperatorEvent,
            (Bound::Included(&from[..]), Bound::Excluded(&to[..])),
            Order::Ascending,
            |_, value| {
                let OperatorEventRecord::V1(o) = from_bytes::<OperatorEventRecord>(value)?;
                let r = w.push_row(
                    2,
                    &[
                        ts(o.time_us),
                        opt_text(&o.queue),
                        text(&o.agent),
                        text(&o.action),
                        text(&o.detail),
                        opt_dur(o.logintime),
                    ],
                );
                Ok(tally(r, &mut rows, &mut failure, store))
            },
        )?;
    }
    if let Some(e) = failure {
        return Err(e.into());
    }
    let bytes = w.finish()?;
    Ok(ExportSummary { rows, bytes })
}

/// Oldest and newest start time (µs) in a CDR table, if any.
pub fn time_span(store: &Store, table: Table) -> Result<Option<(i64, i64)>, StoreError> {
    let mut first = None;
    let mut last = None;
    let all = (Bound::Unbounded, Bound::Unbounded);
    store.data_scan(table, all, Order::Ascending, |k, _| {
        first = key_time(k);
        Ok(ControlFlow::Break(()))
    })?;
    store.data_scan(table, all, Order::Descending, |k, _| {
        last = key_time(k);
        Ok(ControlFlow::Break(()))
    })?;
    Ok(first.zip(last))
}
