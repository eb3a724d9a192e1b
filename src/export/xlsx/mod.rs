//! A small streaming XLSX (SpreadsheetML) writer on top of the `zip` crate.
//!
//! * One worksheet per sheet, named after its title within Excel's rules (see
//!   [`text::sheet_names`]). Strings are inline (`t="inlineStr"`), there is no
//!   shared-string table.
//! * Header row in bold, frozen below the header, an autofilter over the header and
//!   the data rows (with the hidden `_xlnm._FilterDatabase` name Excel keeps).
//! * Text and phone cells are strings, never formulas, so `=HYPERLINK(...)` stays
//!   inert text. Characters XML 1.0 forbids are removed and strings are cut at
//!   Excel's 32,767 characters.
//! * Timestamps are real date cells (`yyyy-mm-dd hh:mm:ss`, local time in
//!   [`Options::tz`]); durations are time values with format `[h]:mm:ss`; integers
//!   are numbers (Excel keeps 15 significant digits).
//! * More than 1,048,575 data rows in one sheet → [`ExportError::Xlsx`].
//!
//! # Streaming
//! The output needs only `Write + Send`: zip entries carry data descriptors, and
//! the `<dimension>` element, which would need the row count up front, is left out.
//! Sheet 0's entry is open while rows are pushed, and its rows go straight into it.
//! Rows of the other sheets, which may be interleaved with sheet 0's (legs after
//! their call), wait in a [`spill::Spill`] (64 KiB in memory, then an unlinked file
//! in [`XlsxOptions::tempdir`]) and are copied into their entries by
//! [`XlsxWriter::finish`], which also writes the workbook (it names the filter
//! ranges, so it needs the row counts). Memory does not grow with rows.

mod output;
mod parts;
mod spill;
mod text;

use super::{Cell, ExportError, ExportSpec, Options, RowSink, push_phone};
use ::zip::CompressionMethod;
use ::zip::result::ZipError;
use ::zip::write::{SimpleFileOptions, StreamWriter, ZipWriter};
use output::{Cut, Output};
use spill::Spill;
use std::fmt::Write as _;
use std::io::Write;
use std::path::PathBuf;

/// XLSX-specific options.
#[derive(Debug, Clone, Default)]
pub struct XlsxOptions {
    /// Directory for the temporary files of sheets after the first (default: the
    /// system temp dir; on the appliance point it at disk, not tmpfs, or they use RAM).
    pub tempdir: Option<PathBuf>,
}

/// Excel's last row is 1,048,576; row 1 is the header.
const MAX_DATA_ROWS: u32 = 1_048_575;
/// A row buffer grown past this by a huge row is shrunk back after it.
const ROW_BUFFER: usize = 64 * 1024;

/// Excel serial date (1900 system) of `ts` as local time in `tz`.
pub fn excel_serial(ts: jiff::Timestamp, tz: &jiff::tz::TimeZone) -> f64 {
    let local = ts.as_second() + i64::from(tz.to_offset(ts).seconds());
    local as f64 / 86_400.0 + 25_569.0
}

fn zip_error(e: ZipError) -> ExportError {
    match e {
        ZipError::Io(e) => ExportError::Io(e),
        e => ExportError::Zip(e.to_string()),
    }
}

struct SheetState {
    name: String,
    /// Data rows written so far.
    rows: u32,
    /// Rows waiting for the sheet's entry (unused for sheet 0).
    spill: Spill,
}

pub struct XlsxWriter<W: Write + Send> {
    /// Declared before `zip` so that, dropped first, it cuts the output before the
    /// zip writer's `Drop` tries to complete the archive.
    cut: Cut,
    zip: ZipWriter<StreamWriter<Output<W>>>,
    spec: ExportSpec,
    opts: Options,
    tempdir: PathBuf,
    sheets: Vec<SheetState>,
    row_limit: u32,
    /// The row being rendered.
    row: String,
    phone: String,
}

fn entry_options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o644)
}

impl<W: Write + Send> XlsxWriter<W> {
    /// Checks the spec, writes the fixed parts and the head of sheet 0.
    pub fn new(
        out: W,
        spec: ExportSpec,
        opts: Options,
        xopts: XlsxOptions,
    ) -> Result<Self, ExportError> {
        spec.validate()?;
        let names = text::sheet_names(&spec)?;
        let n = spec.sheets.len();
        let cut = Cut::default();
        let mut zip = ZipWriter::new_stream(Output::new(out, &cut));
        let fixed = [
            ("[Content_Types].xml", parts::content_types(n)),
            ("_rels/.rels", parts::ROOT_RELS.to_owned()),
            ("docProps/app.xml", parts::APP.to_owned()),
            ("docProps/core.xml", parts::CORE.to_owned()),
            ("xl/_rels/workbook.xml.rels", parts::workbook_rels(n)),
            ("xl/styles.xml", parts::STYLES.to_owned()),
        ];
        for (name, body) in fixed {
            zip.start_file(name, entry_options()).map_err(zip_error)?;
            zip.write_all(body.as_bytes())?;
        }
        zip.start_file("xl/worksheets/sheet1.xml", entry_options())
            .map_err(zip_error)?;
        let mut row = String::new();
        parts::sheet_head(&mut row, &spec.sheets[0], true);
        zip.write_all(row.as_bytes())?;
        row.clear();
        let sheets = names
            .into_iter()
            .map(|name| SheetState {
                name,
                rows: 0,
                spill: Spill::default(),
            })
            .collect();
        Ok(XlsxWriter {
            cut,
            zip,
            spec,
            opts,
            tempdir: xopts.tempdir.unwrap_or_else(std::env::temp_dir),
            sheets,
            row_limit: MAX_DATA_ROWS,
            row,
            phone: String::new(),
        })
    }

    /// Closes sheet 0, writes the other sheets and the workbook, and returns the
    /// output writer, flushed.
    pub fn finish(mut self) -> Result<W, ExportError> {
        self.cut.check()?;
        let mut buf = String::new();
        for (i, (sheet, state)) in self.spec.sheets.iter().zip(&mut self.sheets).enumerate() {
            if i > 0 {
                let name = format!("xl/worksheets/sheet{}.xml", i + 1);
                self.zip
                    .start_file(name, entry_options())
                    .map_err(zip_error)?;
                buf.clear();
                parts::sheet_head(&mut buf, sheet, false);
                self.zip.write_all(buf.as_bytes())?;
                state.spill.copy_to(&mut self.zip)?;
            }
            buf.clear();
            parts::sheet_tail(&mut buf, sheet, state.rows);
            self.zip.write_all(buf.as_bytes())?;
        }
        let names: Vec<String> = self.sheets.iter().map(|s| s.name.clone()).collect();
        let rows: Vec<u32> = self.sheets.iter().map(|s| s.rows).collect();
        self.zip
            .start_file("xl/workbook.xml", entry_options())
            .map_err(zip_error)?;
        let workbook = parts::workbook(&names, &self.spec.sheets, &rows);
        self.zip.write_all(workbook.as_bytes())?;
        let out = self.zip.finish().map_err(zip_error)?.into_inner();
        self.cut.check()?;
        let mut out = out.into_inner();
        out.flush()?;
        Ok(out)
    }

    /// Appends row `r` (1-based) of `cells` to `self.row`.
    fn render(&mut self, r: u64, cells: &[Cell<'_>]) {
        let out = &mut self.row;
        let _ = write!(out, "<row r=\"{r}\">");
        for (col, cell) in cells.iter().enumerate() {
            match *cell {
                Cell::Empty => {}
                Cell::Text(t) => push_string(out, col, r, t),
                Cell::Phone(p) => {
                    self.phone.clear();
                    push_phone(&mut self.phone, p, self.opts.mask_phone_numbers);
                    push_string(out, col, r, &self.phone);
                }
                Cell::Integer(n) => push_number(out, col, r, 0, n),
                Cell::Duration(secs) => {
                    push_number(out, col, r, parts::DURATION, secs as f64 / 86_400.0);
                }
                Cell::Timestamp(ts) => {
                    let serial = excel_serial(ts, &self.opts.tz);
                    push_number(out, col, r, parts::DATE, serial);
                }
            }
        }
        out.push_str("</row>");
    }
}

/// A number cell at column `col`, row `r`, with cell style `style` (0: none).
fn push_number(out: &mut String, col: usize, r: u64, style: u8, v: impl std::fmt::Display) {
    out.push_str("<c r=\"");
    text::push_col(out, col);
    let _ = write!(out, "{r}\"");
    if style != 0 {
        let _ = write!(out, " s=\"{style}\"");
    }
    let _ = write!(out, "><v>{v}</v></c>");
}

/// An inline string cell at column `col`, row `r`.
fn push_string(out: &mut String, col: usize, r: u64, s: &str) {
    out.push_str("<c r=\"");
    text::push_col(out, col);
    let _ = write!(out, "{r}\" t=\"inlineStr\"><is><t");
    if text::needs_preserve(s) {
        out.push_str(" xml:space=\"preserve\"");
    }
    out.push('>');
    text::push_text(out, s);
    out.push_str("</t></is></c>");
}

impl<W: Write + Send> RowSink for XlsxWriter<W> {
    fn push_row(&mut self, sheet: usize, cells: &[Cell<'_>]) -> Result<(), ExportError> {
        self.spec.check_row(sheet, cells)?;
        self.cut.check()?;
        let rows = match self.sheets.get(sheet) {
            Some(state) => state.rows,
            None => return Err(ExportError::Schema(format!("no sheet {sheet}"))),
        };
        if rows >= self.row_limit {
            return Err(ExportError::Xlsx(format!(
                "sheet {:?}: more than {} rows",
                self.spec.sheets[sheet].id, self.row_limit
            )));
        }
        self.row.clear();
        self.render(u64::from(rows) + 2, cells);
        if sheet == 0 {
            self.zip.write_all(self.row.as_bytes())?;
        } else if let Some(state) = self.sheets.get_mut(sheet) {
            state.spill.write(self.row.as_bytes(), &self.tempdir)?;
        }
        if let Some(state) = self.sheets.get_mut(sheet) {
            state.rows += 1;
        }
        if self.row.capacity() > ROW_BUFFER {
            self.row = String::new();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{Column, ColumnType, Sheet};

    fn spec() -> ExportSpec {
        let sheet = |id: &str, parent| Sheet {
            id: id.into(),
            title: id.into(),
            columns: vec![Column::new("n", "N", ColumnType::Integer)],
            parent,
        };
        ExportSpec {
            sheets: vec![sheet("calls", None), sheet("legs", Some(0))],
        }
    }

    #[test]
    fn row_limit_is_an_error_per_sheet() {
        let mut w = XlsxWriter::new(
            Vec::new(),
            spec(),
            Options::default(),
            XlsxOptions::default(),
        )
        .unwrap();
        w.row_limit = 3;
        for i in 0..3 {
            w.push_row(0, &[Cell::Integer(i)]).unwrap();
        }
        let err = w.push_row(0, &[Cell::Integer(3)]).unwrap_err();
        assert!(
            matches!(&err, ExportError::Xlsx(m) if m.contains("\"calls\": more than 3 rows")),
            "{err}"
        );
        // The other sheet has its own count, and the refused row left no trace.
        for i in 0..3 {
            w.push_row(1, &[Cell::Integer(i)]).unwrap();
        }
        assert!(matches!(
            w.push_row(1, &[Cell::Integer(3)]),
            Err(ExportError::Xlsx(_))
        ));
        let bytes = w.finish().unwrap();
        let mut zip = ::zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut sheet = String::new();
        std::io::Read::read_to_string(
            &mut zip.by_name("xl/worksheets/sheet1.xml").unwrap(),
            &mut sheet,
        )
        .unwrap();
        assert!(sheet.contains("<row r=\"4\"><c r=\"A4\"><v>2</v></c></row></sheetData>"));
        assert!(sheet.contains("<autoFilter ref=\"A1:A4\"/>"));
    }

    /// A `Vec` shared with the test, to look at after the writer is gone.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_abandoned_export_is_not_a_valid_zip() {
        let out = Shared::default();
        let mut w = XlsxWriter::new(
            out.clone(),
            spec(),
            Options::default(),
            XlsxOptions::default(),
        )
        .unwrap();
        w.push_row(0, &[Cell::Integer(1)]).unwrap();
        drop(w);
        let bytes = out.0.lock().unwrap().clone();
        assert!(!bytes.is_empty());
        assert!(::zip::ZipArchive::new(std::io::Cursor::new(bytes)).is_err());

        // The same export finished is one.
        let out = Shared::default();
        let mut w = XlsxWriter::new(
            out.clone(),
            spec(),
            Options::default(),
            XlsxOptions::default(),
        )
        .unwrap();
        w.push_row(0, &[Cell::Integer(1)]).unwrap();
        w.finish().unwrap();
        let bytes = out.0.lock().unwrap().clone();
        assert!(::zip::ZipArchive::new(std::io::Cursor::new(bytes)).is_ok());
    }

    #[test]
    fn the_real_limit_is_excels() {
        let w = XlsxWriter::new(
            Vec::new(),
            spec(),
            Options::default(),
            XlsxOptions::default(),
        )
        .unwrap();
        assert_eq!(w.row_limit, 1_048_576 - 1);
    }
}
