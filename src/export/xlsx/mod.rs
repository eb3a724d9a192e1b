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
//! * A sheet of more than 1,048,575 data rows (Excel's last row is 1,048,576)
//!   continues on further worksheets, `calls`, `calls (2)`, `calls (3)` …, each
//!   with the header row, its own filter and row numbers from 2; only beyond
//!   [`MAX_PARTS`] worksheets per sheet is it an [`ExportError::Xlsx`].
//!
//! # Streaming
//! The output needs only `Write + Send`: zip entries carry data descriptors, and
//! the `<dimension>` element, which would need the row count up front, is left out.
//! Sheet 0's entry is open while rows are pushed, and its rows go straight into it;
//! when it is full, it is closed and its continuation opened.
//! Rows of the other sheets, which may be interleaved with sheet 0's (legs after
//! their call), wait in a [`spill::Spill`] (64 KiB in memory, then an unlinked file
//! in [`XlsxOptions::tempdir`]) and are copied into their entries by
//! [`XlsxWriter::finish`], which also writes the workbook, its relationships and
//! the content types (they name every worksheet and filter range, so they need the
//! row counts; a package's parts may come in any order). Memory does not grow with
//! rows.

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
/// Worksheets one sheet may take (67 million rows at Excel's limit).
pub const MAX_PARTS: u32 = 64;
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
    /// Data rows written so far, over all its worksheets.
    rows: u64,
    /// Rows waiting for the entries of the sheet's worksheets, one per
    /// worksheet (unused for sheet 0).
    spills: Vec<Spill>,
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
        let _ = n;
        let fixed = [
            ("_rels/.rels", parts::ROOT_RELS.to_owned()),
            ("docProps/app.xml", parts::APP.to_owned()),
            ("docProps/core.xml", parts::CORE.to_owned()),
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
                spills: Vec::new(),
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

    /// Worksheets sheet `i` takes with its rows so far (at least one).
    fn parts_of(&self, rows: u64) -> u32 {
        let limit = u64::from(self.row_limit);
        u32::try_from(rows.div_ceil(limit).max(1)).unwrap_or(u32::MAX)
    }

    /// Data rows in worksheet `part` of a sheet of `rows` rows.
    fn rows_in(&self, rows: u64, part: u32) -> u32 {
        let limit = u64::from(self.row_limit);
        let before = u64::from(part) * limit;
        u32::try_from(rows.saturating_sub(before).min(limit)).unwrap_or(self.row_limit)
    }

    /// Closes sheet 0, writes the other sheets, the workbook, its relationships
    /// and the content types, and returns the output writer, flushed.
    pub fn finish(mut self) -> Result<W, ExportError> {
        self.cut.check()?;
        let mut buf = String::new();
        // Sheet 0's last worksheet is open.
        let last0 = self.parts_of(self.sheets[0].rows) - 1;
        buf.clear();
        parts::sheet_tail(
            &mut buf,
            &self.spec.sheets[0],
            self.rows_in(self.sheets[0].rows, last0),
        );
        self.zip.write_all(buf.as_bytes())?;
        // Worksheets in workbook order: every sheet's parts, in turn.
        let mut names: Vec<String> = Vec::new();
        let mut specs: Vec<crate::export::Sheet> = Vec::new();
        let mut counts: Vec<u32> = Vec::new();
        let mut file = 0usize;
        for i in 0..self.sheets.len() {
            let rows = self.sheets[i].rows;
            for part in 0..self.parts_of(rows) {
                file += 1;
                let name = self.part_name(&names, i, part)?;
                let in_part = self.rows_in(rows, part);
                if i > 0 {
                    let entry = format!("xl/worksheets/sheet{file}.xml");
                    self.zip
                        .start_file(entry, entry_options())
                        .map_err(zip_error)?;
                    buf.clear();
                    parts::sheet_head(&mut buf, &self.spec.sheets[i], false);
                    self.zip.write_all(buf.as_bytes())?;
                    if let Some(spill) = self.sheets[i].spills.get_mut(part as usize) {
                        spill.copy_to(&mut self.zip)?;
                    }
                    buf.clear();
                    parts::sheet_tail(&mut buf, &self.spec.sheets[i], in_part);
                    self.zip.write_all(buf.as_bytes())?;
                }
                names.push(name);
                specs.push(self.spec.sheets[i].clone());
                counts.push(in_part);
            }
        }
        let n = names.len();
        let tail = [
            ("xl/workbook.xml", parts::workbook(&names, &specs, &counts)),
            ("xl/_rels/workbook.xml.rels", parts::workbook_rels(n)),
            ("[Content_Types].xml", parts::content_types(n)),
        ];
        for (name, body) in tail {
            self.zip
                .start_file(name, entry_options())
                .map_err(zip_error)?;
            self.zip.write_all(body.as_bytes())?;
        }
        let out = self.zip.finish().map_err(zip_error)?.into_inner();
        self.cut.check()?;
        let mut out = out.into_inner();
        out.flush()?;
        Ok(out)
    }

    /// The worksheet name of part `part` of sheet `i`: the sheet's own name,
    /// then `name (2)`, `name (3)` … within Excel's 31 characters, unique
    /// among `taken` (case-insensitively, as Excel compares).
    fn part_name(&self, taken: &[String], i: usize, part: u32) -> Result<String, ExportError> {
        let base = &self.sheets[i].name;
        if part == 0 {
            return Ok(base.clone());
        }
        let others: Vec<String> = self.sheets.iter().map(|s| s.name.to_lowercase()).collect();
        let used = |n: &str| {
            let n = n.to_lowercase();
            taken.iter().any(|t| t.to_lowercase() == n) || others.contains(&n)
        };
        for k in (part + 1)..(part + 1 + MAX_PARTS + 16) {
            let suffix = format!(" ({k})");
            let keep = 31usize.saturating_sub(suffix.len());
            let name = base.chars().take(keep).collect::<String>() + &suffix;
            if !used(&name) {
                return Ok(name);
            }
        }
        Err(ExportError::Xlsx(format!(
            "no unique worksheet name for part {} of sheet {base:?}",
            part + 1
        )))
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
        let limit = u64::from(self.row_limit);
        let part = rows / limit;
        if part >= u64::from(MAX_PARTS) {
            return Err(ExportError::Xlsx(format!(
                "sheet {:?}: more than {} rows ({} worksheets of {})",
                self.spec.sheets[sheet].id,
                u64::from(MAX_PARTS) * limit,
                MAX_PARTS,
                self.row_limit
            )));
        }
        if sheet == 0 && rows > 0 && rows % limit == 0 {
            // Sheet 0's worksheet is full: close it, open its continuation.
            let mut buf = String::new();
            parts::sheet_tail(&mut buf, &self.spec.sheets[0], self.row_limit);
            self.zip.write_all(buf.as_bytes())?;
            let entry = format!("xl/worksheets/sheet{}.xml", part + 1);
            self.zip
                .start_file(entry, entry_options())
                .map_err(zip_error)?;
            buf.clear();
            parts::sheet_head(&mut buf, &self.spec.sheets[0], false);
            self.zip.write_all(buf.as_bytes())?;
        }
        self.row.clear();
        self.render(rows % limit + 2, cells);
        if sheet == 0 {
            self.zip.write_all(self.row.as_bytes())?;
        } else if let Some(state) = self.sheets.get_mut(sheet) {
            if state.spills.len() as u64 <= part {
                state.spills.push(Spill::default());
            }
            if let Some(spill) = state.spills.last_mut() {
                spill.write(self.row.as_bytes(), &self.tempdir)?;
            }
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

    fn entry(zip: &mut ::zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str) -> String {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut text).unwrap();
        text
    }

    /// Issue 21: a sheet past Excel's rows continues on `calls (2)`, … each
    /// with its header, its own filter and row numbers from 2; the other
    /// sheets too.
    #[test]
    fn a_full_sheet_continues_on_another() {
        let mut w = XlsxWriter::new(
            Vec::new(),
            spec(),
            Options::default(),
            XlsxOptions::default(),
        )
        .unwrap();
        w.row_limit = 3;
        for i in 0..7 {
            w.push_row(0, &[Cell::Integer(i)]).unwrap();
            if i < 4 {
                w.push_row(1, &[Cell::Integer(100 + i)]).unwrap();
            }
        }
        let bytes = w.finish().unwrap();
        let mut zip = ::zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let book = entry(&mut zip, "xl/workbook.xml");
        let names: Vec<&str> = book
            .split("<sheet name=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
            .collect();
        assert_eq!(
            names,
            ["calls", "calls (2)", "calls (3)", "legs", "legs (2)"]
        );
        assert!(book.contains("'calls (3)'!$A$1:$A$2<"), "{book}");
        let expect = [
            (
                1,
                "<row r=\"4\"><c r=\"A4\"><v>2</v></c></row></sheetData>",
                "A1:A4",
            ),
            (2, "<row r=\"2\"><c r=\"A2\"><v>3</v></c></row>", "A1:A4"),
            (
                3,
                "<row r=\"2\"><c r=\"A2\"><v>6</v></c></row></sheetData>",
                "A1:A2",
            ),
            (
                4,
                "<row r=\"4\"><c r=\"A4\"><v>102</v></c></row></sheetData>",
                "A1:A4",
            ),
            (
                5,
                "<row r=\"2\"><c r=\"A2\"><v>103</v></c></row></sheetData>",
                "A1:A2",
            ),
        ];
        for (n, row, filter) in expect {
            let sheet = entry(&mut zip, &format!("xl/worksheets/sheet{n}.xml"));
            assert!(sheet.contains(row), "sheet{n}: {sheet}");
            assert!(sheet.contains("<row r=\"1\">"), "header in sheet{n}");
            assert!(
                sheet.contains(&format!("<autoFilter ref=\"{filter}\"/>")),
                "sheet{n}: {sheet}"
            );
        }
        let types = entry(&mut zip, "[Content_Types].xml");
        assert_eq!(types.matches("worksheet+xml").count(), 5);
        let rels = entry(&mut zip, "xl/_rels/workbook.xml.rels");
        assert!(rels.contains("Target=\"worksheets/sheet5.xml\""));
    }

    #[test]
    fn beyond_the_worksheets_a_sheet_may_take_is_an_error() {
        let mut w = XlsxWriter::new(
            Vec::new(),
            spec(),
            Options::default(),
            XlsxOptions::default(),
        )
        .unwrap();
        w.row_limit = 1;
        for i in 0..MAX_PARTS {
            w.push_row(0, &[Cell::Integer(i64::from(i))]).unwrap();
        }
        let err = w.push_row(0, &[Cell::Integer(0)]).unwrap_err();
        assert!(
            matches!(&err, ExportError::Xlsx(m) if m.contains("\"calls\"")),
            "{err}"
        );
        assert!(w.finish().is_ok(), "what fits is still a workbook");
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
