//! RFC 4180 CSV writer (UTF-8, CRLF line ends).
//!
//! * Delimiter `,` or `;` ([`CsvOptions::delimiter`]); optional UTF-8 BOM so Excel
//!   detects the encoding in any locale.
//! * A field is quoted when it contains the delimiter, `"`, CR or LF; `"` is doubled.
//!   Other fields are written bare; an empty cell is an empty field.
//! * **Formula-injection rule** (exact, OWASP "CSV injection" list): a field produced
//!   from a *text* cell, a *phone* cell or a header text whose **first character** is
//!   one of `=` `+` `-` `@` TAB CR is prefixed with `'` (then quoted if needed).
//!   Single exception: a plain number — an optional `+` or `-`, ASCII digits, and at
//!   most one `.` between digits (`+390501234567`, a called number `-100`, `-1.5`) — is
//!   written raw: the most a spreadsheet can make of it is a numeric literal (no function
//!   call, no DDE), and machine readers get the exact number. A masked (`+39050123xxx`)
//!   or punctuated (`+39 050 ...`, `-1+1`) value is neutralised, because a spreadsheet
//!   would evaluate it as a formula.
//!   Phone numbers without a trigger character (`0501234567`, `201`) are untouched.
//!   Integer, duration and timestamp fields are produced by this writer from typed
//!   values and are never neutralised (`-5` stays a number).
//!   Excel users who want typed phone columns should use the XLSX export.

use super::{Cell, ExportError, ExportSpec, Options, RowSink, push_local, push_phone};
use std::io::Write;

/// CSV-specific options.
#[derive(Debug, Clone, Copy)]
pub struct CsvOptions {
    /// `b','` or `b';'`.
    pub delimiter: u8,
    /// Write a UTF-8 BOM first.
    pub bom: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            bom: false,
        }
    }
}

/// True when a field with this content must get the `'` prefix.
pub fn needs_neutralising(s: &str) -> bool {
    matches!(
        s.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    ) && !is_plain_number(s)
}

/// True for a plain number: an optional sign, digits, and at most one `.`
/// with digits on both sides (what a spreadsheet reads as a literal).
pub fn is_plain_number(s: &str) -> bool {
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit());
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    match unsigned.split_once('.') {
        Some((int, frac)) => digits(int) && digits(frac),
        None => digits(unsigned),
    }
}

pub struct CsvWriter<W: Write> {
    out: W,
    spec: ExportSpec,
    opts: Options,
    csv: CsvOptions,
    /// With several sheets: position of each sheet column in the union row (after
    /// `record_type`).
    map: Vec<Vec<usize>>,
    width: usize,
    multi: bool,
    line: Vec<u8>,
    field: String,
    /// For each union position: index into the row being written, if any.
    slots: Vec<Option<usize>>,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(
        mut out: W,
        spec: ExportSpec,
        opts: Options,
        csv: CsvOptions,
    ) -> Result<Self, ExportError> {
        spec.validate()?;
        if csv.delimiter != b',' && csv.delimiter != b';' {
            return Err(ExportError::Schema(
                "CSV delimiter must be ',' or ';'".into(),
            ));
        }
        let multi = spec.sheets.len() > 1;
        // Union of columns by id, spec order; first occurrence gives the header.
        let mut union: Vec<(&str, &str)> = Vec::new();
        let mut map = Vec::with_capacity(spec.sheets.len());
        for s in &spec.sheets {
            let mut m = Vec::with_capacity(s.columns.len());
            for c in &s.columns {
                let pos = match union.iter().position(|(id, _)| *id == c.id) {
                    Some(p) => p,
                    None => {
                        union.push((&c.id, &c.header));
                        union.len() - 1
                    }
                };
                m.push(pos);
            }
            map.push(m);
        }
        let width = union.len();
        let d = csv.delimiter;
        let mut line = Vec::with_capacity(1024);
        if csv.bom {
            line.extend_from_slice("\u{FEFF}".as_bytes());
        }
        if multi {
            put_field(&mut line, d, "record_type", false);
        }
        for (i, (_, header)) in union.iter().enumerate() {
            if i > 0 || multi {
                line.push(d);
            }
            put_field(&mut line, d, header, true);
        }
        line.extend_from_slice(b"\r\n");
        out.write_all(&line)?;
        line.clear();
        Ok(CsvWriter {
            out,
            spec,
            opts,
            csv,
            map,
            width,
            multi,
            line,
            field: String::new(),
            slots: vec![None; width],
        })
    }

    /// Capacity of the internal per-row buffers (for memory-bound tests).
    pub fn buffered_capacity(&self) -> usize {
        self.line.capacity() + self.field.capacity()
    }

    pub fn finish(mut self) -> Result<W, ExportError> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Appends one field to `line`, quoting if needed and applying the formula rule
/// when `neutralise`.
fn put_field(line: &mut Vec<u8>, d: u8, s: &str, neutralise: bool) {
    let prefix = neutralise && needs_neutralising(s);
    let quote = s
        .bytes()
        .any(|c| c == d || c == b'"' || c == b'\r' || c == b'\n');
    if quote {
        line.push(b'"');
    }
    if prefix {
        line.push(b'\'');
    }
    for &c in s.as_bytes() {
        if c == b'"' {
            line.push(b'"');
        }
        line.push(c);
    }
    if quote {
        line.push(b'"');
    }
}

impl<W: Write> RowSink for CsvWriter<W> {
    fn push_row(&mut self, sheet: usize, cells: &[Cell<'_>]) -> Result<(), ExportError> {
        self.spec.check_row(sheet, cells)?;
        self.line.clear();
        for s in self.slots.iter_mut() {
            *s = None;
        }
        for (i, &pos) in self.map[sheet].iter().enumerate() {
            self.slots[pos] = Some(i);
        }
        let d = self.csv.delimiter;
        if self.multi {
            put_field(&mut self.line, d, &self.spec.sheets[sheet].id, false);
        }
        for pos in 0..self.width {
            if pos > 0 || self.multi {
                self.line.push(d);
            }
            let Some(i) = self.slots[pos] else { continue };
            let mut field = std::mem::take(&mut self.field);
            field.clear();
            let neutralise = match cells[i] {
                Cell::Empty => false,
                Cell::Text(t) => {
                    field.push_str(t);
                    true
                }
                Cell::Integer(n) | Cell::Duration(n) => {
                    use std::fmt::Write as _;
                    let _ = write!(field, "{n}");
                    false
                }
                Cell::Timestamp(ts) => {
                    push_local(&mut field, ts, &self.opts.tz);
                    false
                }
                Cell::Phone(p) => {
                    push_phone(&mut field, p, self.opts.mask_phone_numbers);
                    true
                }
            };
            put_field(&mut self.line, d, &field, neutralise);
            self.field = field;
        }
        self.line.extend_from_slice(b"\r\n");
        self.out.write_all(&self.line)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_rule() {
        for s in [
            "=1",
            "+",
            "-",
            "-x",
            "+1-555",
            "-1+1",
            "+39 050",
            "+39050123xxx",
            "-1.",
            "-.5",
            "@x",
            "\tx",
            "\rx",
            "+1e5",
            "-1.2.3",
        ] {
            assert!(needs_neutralising(s), "{s:?}");
        }
        for s in [
            "",
            "1",
            "a=1",
            " =1",
            "'=1",
            "\nx",
            "+1",
            "-1",
            "-100",
            "+390501234567",
            "-1.5",
        ] {
            assert!(!needs_neutralising(s), "{s:?}");
        }
    }

    #[test]
    fn quoting() {
        let mut l = Vec::new();
        put_field(&mut l, b';', "a;b", false);
        put_field(&mut l, b';', "a,b", false);
        put_field(&mut l, b';', "say \"hi\"", false);
        put_field(&mut l, b';', "=x\ny", true);
        assert_eq!(l, b"\"a;b\"a,b\"say \"\"hi\"\"\"\"'=x\ny\"");
    }
}
