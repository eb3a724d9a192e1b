//! Streaming export writers for call records and the audit log.
//!
//! # Model
//! An export is an [`ExportSpec`]: an ordered list of [`Sheet`]s. Sheet 0 is the main
//! table (e.g. calls). A sheet may name a `parent` sheet: its rows are *child rows*
//! (legs, ring attempts) of the parent row pushed most recently. A sheet without a
//! parent is an independent table (e.g. operator events). Plain exports have one sheet.
//!
//! Rows are pushed one at a time with [`RowSink::push_row`]; no writer keeps rows.
//!
//! # Push order (streaming contract)
//! * Child rows must follow their parent row, before the next parent row.
//! * For one parent, child rows are grouped by child sheet in spec order
//!   (all `legs` before all `attempts`).
//! * Top-level sheets are written in spec order: once a row of top-level sheet `k` is
//!   pushed, rows of top-level sheets `< k` are refused ([`ExportError::Order`]).
//!   The XLSX writer accepts any order; CSV accepts any order too (rows are interleaved
//!   in push order), but the JSON/XML writers enforce this rule so their nesting
//!   can be streamed.
//!
//! # How the detail appears per format
//! * **CSV**: one file. With more than one sheet the first column is `record_type`
//!   (the sheet id) followed by the union of all sheets' columns (by id, first
//!   occurrence wins the header text, spec order). Every row fills only its sheet's
//!   columns; child rows follow their parent row.
//! * **JSON**: one sheet → `[ {row}, ... ]`. Several sheets → an object keyed by
//!   top-level sheet ids, each an array of rows; child sheets appear as arrays nested
//!   in the parent row under the child sheet id (always present, possibly empty).
//! * **XML**: `<export>` root; one element per top-level sheet id containing `<row>`
//!   elements; a row holds one element per column id, then one element per child sheet
//!   id (always present) containing the child `<row>`s.
//! * **XLSX**: one worksheet per sheet (title as the worksheet name).
//!
//! # Values
//! | column type | CSV | JSON | XML | XLSX |
//! |---|---|---|---|---|
//! | text | string (formula-neutralised, see [`csv`]) | string | text | string cell |
//! | integer | digits | number | digits | number |
//! | duration | integer seconds | integer seconds | integer seconds | `[h]:mm:ss` time value |
//! | timestamp | `YYYY-MM-DD HH:MM:SS` local | RFC 3339 with offset | RFC 3339 with offset | date cell `yyyy-mm-dd hh:mm:ss` local |
//! | phone | as is if phone-like, else as text | string | text | string cell |
//!
//! Empty cells: CSV empty field, JSON `null`, XML empty element, XLSX blank.
//! Local time uses [`Options::tz`]. A CSV local time is ambiguous during the DST
//! fall-back hour; JSON/XML carry the offset.

pub mod csv;
pub mod json;
mod nest;
pub mod xlsx;
pub mod xml;
pub mod zip;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use std::fmt;
use std::io;

/// The type of a column; it decides how cells are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    Integer,
    /// Seconds.
    Duration,
    /// UTC instant rendered in [`Options::tz`].
    Timestamp,
    /// Phone number; masked when [`Options::mask_phone_numbers`].
    Phone,
}

/// One column: `id` is the stable machine name (snake_case ASCII, used for JSON keys,
/// XML element names and the CSV `record_type`), `header` the human header text.
#[derive(Debug, Clone)]
pub struct Column {
    pub id: String,
    pub header: String,
    pub kind: ColumnType,
}

impl Column {
    pub fn new(id: &str, header: &str, kind: ColumnType) -> Self {
        Column {
            id: id.to_owned(),
            header: header.to_owned(),
            kind,
        }
    }
}

/// One table of the export.
#[derive(Debug, Clone)]
pub struct Sheet {
    /// snake_case ASCII id (`calls`, `legs`, `operator_events`).
    pub id: String,
    /// Human title; the XLSX worksheet name (max 31 chars, no `[]:*?/\`).
    pub title: String,
    pub columns: Vec<Column>,
    /// Index of the parent sheet for child rows; must be a top-level sheet listed earlier.
    pub parent: Option<usize>,
}

/// The whole export description.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    pub sheets: Vec<Sheet>,
}

/// Maximum sheets and columns accepted (bounds every per-row loop).
pub const MAX_SHEETS: usize = 16;
pub const MAX_COLUMNS: usize = 256;

fn valid_id(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

impl ExportSpec {
    /// Checks ids, parents and limits. Every writer calls it on creation.
    pub fn validate(&self) -> Result<(), ExportError> {
        if self.sheets.is_empty() || self.sheets.len() > MAX_SHEETS {
            return Err(ExportError::Schema(format!("need 1..={MAX_SHEETS} sheets")));
        }
        for (i, s) in self.sheets.iter().enumerate() {
            if !valid_id(&s.id) || s.id == "row" || s.id == "export" {
                return Err(ExportError::Schema(format!("bad sheet id {:?}", s.id)));
            }
            if self.sheets[..i].iter().any(|o| o.id == s.id) {
                return Err(ExportError::Schema(format!(
                    "duplicate sheet id {:?}",
                    s.id
                )));
            }
            if s.columns.is_empty() || s.columns.len() > MAX_COLUMNS {
                return Err(ExportError::Schema(format!(
                    "sheet {:?}: need 1..={MAX_COLUMNS} columns",
                    s.id
                )));
            }
            if i == 0 && s.parent.is_some() {
                return Err(ExportError::Schema("sheet 0 cannot be a child".into()));
            }
            if let Some(p) = s.parent
                && (p >= i || self.sheets[p].parent.is_some())
            {
                return Err(ExportError::Schema(format!(
                    "sheet {:?}: parent must be an earlier top-level sheet",
                    s.id
                )));
            }
            for (j, c) in s.columns.iter().enumerate() {
                if !valid_id(&c.id) || c.id == "record_type" {
                    return Err(ExportError::Schema(format!("bad column id {:?}", c.id)));
                }
                if s.columns[..j].iter().any(|o| o.id == c.id)
                    || self
                        .sheets
                        .iter()
                        .any(|o| o.parent == Some(i) && o.id == c.id)
                {
                    return Err(ExportError::Schema(format!(
                        "duplicate column id {:?}",
                        c.id
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks that a row matches the sheet's columns (count and types).
    pub fn check_row(&self, sheet: usize, cells: &[Cell<'_>]) -> Result<&Sheet, ExportError> {
        let s = self
            .sheets
            .get(sheet)
            .ok_or_else(|| ExportError::Schema(format!("no sheet {sheet}")))?;
        if cells.len() != s.columns.len() {
            return Err(ExportError::Schema(format!(
                "sheet {:?}: {} cells for {} columns",
                s.id,
                cells.len(),
                s.columns.len()
            )));
        }
        for (c, col) in cells.iter().zip(&s.columns) {
            let ok = matches!(
                (c, col.kind),
                (Cell::Empty, _)
                    | (Cell::Text(_), ColumnType::Text)
                    | (Cell::Integer(_), ColumnType::Integer)
                    | (Cell::Duration(_), ColumnType::Duration)
                    | (Cell::Timestamp(_), ColumnType::Timestamp)
                    | (Cell::Phone(_), ColumnType::Phone)
            );
            if !ok {
                return Err(ExportError::Schema(format!(
                    "sheet {:?} column {:?}: cell does not match {:?}",
                    s.id, col.id, col.kind
                )));
            }
        }
        Ok(s)
    }
}

/// A cell value. Borrowed so that pushing a row allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    Empty,
    Text(&'a str),
    Integer(i64),
    /// Seconds.
    Duration(i64),
    Timestamp(Timestamp),
    Phone(&'a str),
}

/// Options shared by all writers.
#[derive(Debug, Clone)]
pub struct Options {
    /// Time zone used to render timestamps.
    pub tz: TimeZone,
    /// Replace the last three digits of phone numbers with `x` (privacy).
    pub mask_phone_numbers: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tz: TimeZone::UTC,
            mask_phone_numbers: false,
        }
    }
}

/// Errors of the export writers.
#[derive(Debug)]
pub enum ExportError {
    Io(io::Error),
    /// Spec or row does not match the model.
    Schema(String),
    /// Push order violates the streaming contract.
    Order(String),
    /// XLSX writer error (including the 1,048,576-row limit).
    Xlsx(String),
    Zip(String),
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportError::Io(e) => write!(f, "export I/O error: {e}"),
            ExportError::Schema(m) => write!(f, "export schema error: {m}"),
            ExportError::Order(m) => write!(f, "export row order error: {m}"),
            ExportError::Xlsx(m) => write!(f, "xlsx error: {m}"),
            ExportError::Zip(m) => write!(f, "zip error: {m}"),
        }
    }
}

impl std::error::Error for ExportError {}

impl From<io::Error> for ExportError {
    fn from(e: io::Error) -> Self {
        ExportError::Io(e)
    }
}

impl From<serde_json::Error> for ExportError {
    fn from(e: serde_json::Error) -> Self {
        ExportError::Io(io::Error::other(e))
    }
}

/// Common interface of the streaming writers.
pub trait RowSink {
    /// Writes one row of `sheet` (index into the spec).
    fn push_row(&mut self, sheet: usize, cells: &[Cell<'_>]) -> Result<(), ExportError>;
}

/// Appends `phone` to `out`, with the last three ASCII digits replaced by `x` when
/// `mask` (fewer than three digits: all digits are masked).
pub fn push_phone(out: &mut String, phone: &str, mask: bool) {
    if !mask {
        out.push_str(phone);
        return;
    }
    let digits = phone.bytes().filter(u8::is_ascii_digit).count();
    let keep = digits.saturating_sub(3);
    let mut seen = 0usize;
    for ch in phone.chars() {
        if ch.is_ascii_digit() {
            seen += 1;
            out.push(if seen > keep { 'x' } else { ch });
        } else {
            out.push(ch);
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` in `tz` (CSV).
pub(crate) fn push_local(out: &mut String, ts: Timestamp, tz: &TimeZone) {
    use std::fmt::Write as _;
    let dt = tz.to_datetime(ts);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
}

/// RFC 3339 with the numeric offset of `tz` at that instant (JSON/XML).
pub(crate) fn push_rfc3339(out: &mut String, ts: Timestamp, tz: &TimeZone) {
    use std::fmt::Write as _;
    let off = tz.to_offset(ts);
    let dt = off.to_datetime(ts);
    let secs = off.seconds();
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        a / 3600,
        (a % 3600) / 60
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_last_three_digits() {
        let mut s = String::new();
        push_phone(&mut s, "+39 050 1234567", true);
        assert_eq!(s, "+39 050 1234xxx");
        s.clear();
        push_phone(&mut s, "12", true);
        assert_eq!(s, "xx");
        s.clear();
        push_phone(&mut s, "201", false);
        assert_eq!(s, "201");
    }

    #[test]
    fn timestamps_render_in_tz() {
        let tz = TimeZone::get("Europe/Rome").unwrap();
        let ts: Timestamp = "2026-03-29T07:00:00Z".parse().unwrap();
        let mut s = String::new();
        push_local(&mut s, ts, &tz);
        assert_eq!(s, "2026-03-29 09:00:00");
        s.clear();
        push_rfc3339(&mut s, ts, &tz);
        assert_eq!(s, "2026-03-29T09:00:00+02:00");
    }

    #[test]
    fn spec_validation() {
        let col = |id: &str| Column::new(id, id, ColumnType::Text);
        let mut spec = ExportSpec {
            sheets: vec![Sheet {
                id: "calls".into(),
                title: "Calls".into(),
                columns: vec![col("a"), col("a")],
                parent: None,
            }],
        };
        assert!(spec.validate().is_err());
        spec.sheets[0].columns[1] = col("Bad-Id");
        assert!(spec.validate().is_err());
        spec.sheets[0].columns[1] = col("b");
        spec.validate().unwrap();
        assert!(spec.check_row(0, &[Cell::Integer(1), Cell::Empty]).is_err());
        assert!(spec.check_row(0, &[Cell::Empty]).is_err());
        spec.check_row(0, &[Cell::Text("x"), Cell::Empty]).unwrap();
    }
}
