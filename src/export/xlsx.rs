//! XLSX writer on top of `rust_xlsxwriter` in **constant-memory** mode.
//!
//! * One worksheet per sheet, all created with `add_worksheet_with_constant_memory()`:
//!   each row is flushed to a per-sheet temporary file as soon as a later row of the
//!   same sheet is written, and strings are written inline (no shared-string table),
//!   so memory does not grow with rows. The temp files live in
//!   [`XlsxOptions::tempdir`] (default: the system temp dir; on the appliance point it
//!   at disk, not tmpfs, or the saving moves to RAM).
//! * Header row (bold), frozen below the header, autofilter over all rows.
//! * Text and phone cells are written with `write_string` — never as formulas, so
//!   `=HYPERLINK(...)` stays inert text. Strings longer than Excel's 32,767
//!   characters are truncated.
//! * Timestamps are real date cells (`yyyy-mm-dd hh:mm:ss`, local time in
//!   [`Options::tz`]); durations are time values with format `[h]:mm:ss`; integers
//!   are numbers (exact up to 2^53).
//! * More than 1,048,575 data rows in one sheet → [`ExportError::Xlsx`].
//! * The file is assembled by [`XlsxWriter::finish`] and streamed to the target
//!   writer (`Write + Send`, no `Seek` needed).

use super::{Cell, ColumnType, ExportError, ExportSpec, Options, RowSink, push_phone};
use rust_xlsxwriter::{Format, Workbook, XlsxError};
use std::io::Write;
use std::path::PathBuf;

/// XLSX-specific options.
#[derive(Debug, Clone, Default)]
pub struct XlsxOptions {
    /// Directory for the per-sheet temporary files.
    pub tempdir: Option<PathBuf>,
}

const MAX_XLSX_STRING: usize = 32_767;
const MAX_ROWS: u32 = 1_048_576;

fn xerr(e: XlsxError) -> ExportError {
    ExportError::Xlsx(e.to_string())
}

pub struct XlsxWriter<W: Write + Send> {
    out: W,
    spec: ExportSpec,
    opts: Options,
    wb: Workbook,
    /// Next row index per sheet (row 0 is the header).
    next_row: Vec<u32>,
    date_fmt: Format,
    dur_fmt: Format,
    scratch: String,
}

/// Excel serial date (1900 system) of `ts` as local time in `tz`.
pub fn excel_serial(ts: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> f64 {
    let local = ts.as_second() + i64::from(tz.to_offset(ts).seconds());
    local as f64 / 86_400.0 + 25_569.0
}

impl<W: Write + Send> XlsxWriter<W> {
    pub fn new(
        out: W,
        spec: ExportSpec,
        opts: Options,
        xopts: XlsxOptions,
    ) -> Result<Self, ExportError> {
        spec.validate()?;
        let mut wb = Workbook::new();
        if let Some(dir) = &xopts.tempdir {
            wb.set_tempdir(dir).map_err(xerr)?;
        }
        let bold = Format::new().set_bold();
        for s in &spec.sheets {
            let ws = wb.add_worksheet_with_constant_memory().map_err(xerr)?;
            ws.set_name(&s.title).map_err(xerr)?;
            for (c, col) in s.columns.iter().enumerate() {
                let c = c as u16;
                let width = match col.kind {
                    ColumnType::Timestamp => 19.0,
                    ColumnType::Duration | ColumnType::Integer => 10.0,
                    ColumnType::Phone => 16.0,
                    ColumnType::Text => 20.0,
                };
                ws.set_column_width(c, width).map_err(xerr)?;
                ws.write_string_with_format(0, c, &col.header, &bold)
                    .map_err(xerr)?;
            }
            ws.set_freeze_panes(1, 0).map_err(xerr)?;
        }
        let n = spec.sheets.len();
        Ok(XlsxWriter {
            out,
            spec,
            opts,
            wb,
            next_row: vec![1; n],
            date_fmt: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            dur_fmt: Format::new().set_num_format("[h]:mm:ss"),
            scratch: String::new(),
        })
    }

    /// Adds the autofilters, assembles the workbook and streams it to the writer.
    pub fn finish(mut self) -> Result<W, ExportError> {
        for (i, s) in self.spec.sheets.iter().enumerate() {
            let ws = self.wb.worksheet_from_index(i).map_err(xerr)?;
            let last_col = (s.columns.len() - 1) as u16;
            ws.autofilter(0, 0, self.next_row[i] - 1, last_col)
                .map_err(xerr)?;
        }
        self.wb.save_to_writer(&mut self.out).map_err(xerr)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write + Send> RowSink for XlsxWriter<W> {
    fn push_row(&mut self, sheet: usize, cells: &[Cell<'_>]) -> Result<(), ExportError> {
        self.spec.check_row(sheet, cells)?;
        let row = self.next_row[sheet];
        if row >= MAX_ROWS {
            return Err(ExportError::Xlsx(format!(
                "sheet {:?}: more than {} rows",
                self.spec.sheets[sheet].id,
                MAX_ROWS - 1
            )));
        }
        let ws = self.wb.worksheet_from_index(sheet).map_err(xerr)?;
        for (c, cell) in cells.iter().enumerate() {
            let c = c as u16;
            match *cell {
                Cell::Empty => {}
                Cell::Text(t) => {
                    ws.write_string(row, c, truncate(t)).map_err(xerr)?;
                }
                Cell::Integer(n) => {
                    ws.write_number(row, c, n as f64).map_err(xerr)?;
                }
                Cell::Duration(secs) => {
                    ws.write_number_with_format(row, c, secs as f64 / 86_400.0, &self.dur_fmt)
                        .map_err(xerr)?;
                }
                Cell::Timestamp(ts) => {
                    let v = excel_serial(ts, &self.opts.tz);
                    ws.write_number_with_format(row, c, v, &self.date_fmt)
                        .map_err(xerr)?;
                }
                Cell::Phone(p) => {
                    self.scratch.clear();
                    push_phone(&mut self.scratch, p, self.opts.mask_phone_numbers);
                    ws.write_string(row, c, truncate(&self.scratch))
                        .map_err(xerr)?;
                }
            }
        }
        self.next_row[sheet] = row + 1;
        Ok(())
    }
}

/// First 32,767 characters of `s`.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(MAX_XLSX_STRING) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
