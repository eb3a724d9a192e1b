//! Audit log exports: the selected columns of matching entries, streamed
//! through the report writers (`crate::export`: CSV, JSON, XML, XLSX), one
//! row at a time.
//!
//! Invariant: no I/O but the `Write` it is given; memory does not grow with
//! the number of rows (the XLSX writer spills to temporary files).

use std::io::Write;

use crate::export::csv::{CsvOptions, CsvWriter};
use crate::export::json::JsonWriter;
use crate::export::xlsx::{XlsxOptions, XlsxWriter};
use crate::export::xml::XmlWriter;
use crate::export::{Cell, Column, ColumnType, ExportError, ExportSpec, Options, RowSink, Sheet};
use crate::store::AuditEntry;

use super::COLUMNS;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Xlsx,
    Csv,
    Json,
    Xml,
}

impl Format {
    pub fn parse(name: &str) -> Result<Format, String> {
        match name {
            "xlsx" => Ok(Format::Xlsx),
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "xml" => Ok(Format::Xml),
            other => Err(format!(
                "unknown format {other:?}; formats are xlsx, csv, json, xml"
            )),
        }
    }
}

/// The export's columns for a `--columns` selection (empty = all).
/// `object_type` brings `object_id` beside it.
pub fn spec(columns: &[String]) -> ExportSpec {
    let chosen: Vec<&str> = if columns.is_empty() {
        COLUMNS.to_vec()
    } else {
        columns.iter().map(String::as_str).collect()
    };
    let mut cols = Vec::new();
    for c in chosen {
        match c {
            "txid" => {
                cols.push(Column::new("txid", "Transaction", ColumnType::Integer));
                cols.push(Column::new("index", "Index", ColumnType::Integer));
            }
            "day" => cols.push(Column::new("day", "Day", ColumnType::Integer)),
            "time" => cols.push(Column::new("time", "Time", ColumnType::Timestamp)),
            "user" => cols.push(Column::new("user", "User", ColumnType::Text)),
            "ip" => cols.push(Column::new("ip", "IP address", ColumnType::Text)),
            "action" => cols.push(Column::new("action", "Action", ColumnType::Text)),
            "object_type" => {
                cols.push(Column::new("object_type", "Object type", ColumnType::Text));
                cols.push(Column::new("object_id", "Object", ColumnType::Text));
            }
            _ => cols.push(Column::new("description", "Description", ColumnType::Text)),
        }
    }
    ExportSpec {
        sheets: vec![Sheet {
            id: "audit".to_string(),
            title: "Audit log".to_string(),
            columns: cols,
            parent: None,
        }],
    }
}

enum Sink<W: Write + Send> {
    Xlsx(Box<XlsxWriter<W>>),
    Csv(CsvWriter<W>),
    Json(JsonWriter<W>),
    Xml(XmlWriter<W>),
}

/// Writes audit entries as rows of one format.
pub struct AuditExporter<W: Write + Send> {
    sink: Sink<W>,
    spec: ExportSpec,
    tz: jiff::tz::TimeZone,
    rows: u64,
}

impl<W: Write + Send> AuditExporter<W> {
    pub fn new(
        out: W,
        format: Format,
        columns: &[String],
        tz: jiff::tz::TimeZone,
        tempdir: Option<std::path::PathBuf>,
    ) -> Result<Self, ExportError> {
        let spec = spec(columns);
        let opts = Options {
            tz: tz.clone(),
            mask_phone_numbers: false,
        };
        let sink = match format {
            Format::Xlsx => Sink::Xlsx(Box::new(XlsxWriter::new(
                out,
                spec.clone(),
                opts,
                XlsxOptions { tempdir },
            )?)),
            Format::Csv => Sink::Csv(CsvWriter::new(
                out,
                spec.clone(),
                opts,
                CsvOptions::default(),
            )?),
            Format::Json => Sink::Json(JsonWriter::new(out, spec.clone(), opts)?),
            Format::Xml => Sink::Xml(XmlWriter::new(out, spec.clone(), opts)?),
        };
        Ok(AuditExporter {
            sink,
            spec,
            tz,
            rows: 0,
        })
    }

    pub fn push(&mut self, e: &AuditEntry) -> Result<(), ExportError> {
        let ts = jiff::Timestamp::from_microsecond(e.time.as_unix_micros())
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let day = i64::from(ts.to_zoned(self.tz.clone()).day());
        let source = e.source.to_string();
        let cells: Vec<Cell<'_>> = self
            .spec
            .sheets
            .first()
            .map(|s| s.columns.as_slice())
            .unwrap_or(&[])
            .iter()
            .map(|c| match c.id.as_str() {
                "txid" => Cell::Integer(i64::try_from(e.txid).unwrap_or(i64::MAX)),
                "index" => Cell::Integer(i64::from(e.index)),
                "day" => Cell::Integer(day),
                "time" => Cell::Timestamp(ts),
                "user" => Cell::Text(&e.user),
                "ip" => Cell::Text(&source),
                "action" => Cell::Text(e.action.as_str()),
                "object_type" => Cell::Text(&e.kind),
                "object_id" => Cell::Text(&e.id),
                _ => Cell::Text(&e.description),
            })
            .collect();
        self.rows += 1;
        match &mut self.sink {
            Sink::Xlsx(w) => w.push_row(0, &cells),
            Sink::Csv(w) => w.push_row(0, &cells),
            Sink::Json(w) => w.push_row(0, &cells),
            Sink::Xml(w) => w.push_row(0, &cells),
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    pub fn finish(self) -> Result<W, ExportError> {
        match self.sink {
            Sink::Xlsx(w) => (*w).finish(),
            Sink::Csv(w) => w.finish(),
            Sink::Json(w) => w.finish(),
            Sink::Xml(w) => w.finish(),
        }
    }
}

/// Exports every entry of `filter` from `store`, newest first, into `out`.
pub fn export<W: Write + Send>(
    store: &crate::store::Store,
    filter: &super::Filter,
    columns: &[String],
    format: Format,
    tz: jiff::tz::TimeZone,
    out: W,
) -> Result<(W, u64), String> {
    let mut exporter =
        AuditExporter::new(out, format, columns, tz, None).map_err(|e| e.to_string())?;
    let mut failed: Option<ExportError> = None;
    store
        .audit_scan(filter, |e| match exporter.push(e) {
            Ok(()) => true,
            Err(err) => {
                failed = Some(err);
                false
            }
        })
        .map_err(|e| e.to_string())?;
    if let Some(e) = failed {
        return Err(e.to_string());
    }
    let rows = exporter.rows();
    let out = exporter.finish().map_err(|e| e.to_string())?;
    Ok((out, rows))
}
