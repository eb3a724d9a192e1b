//! Streamed JSON writer.
//!
//! One sheet: `[{"col":value,...},...]`. Several sheets: `{"calls":[{...,"legs":[...]}],
//! "operator_events":[...]}` (see the module docs). Keys are the column ids; every
//! value goes through `serde_json` (strings escaped, control characters as `\uXXXX`).
//! Rows are separated by `,\n`. Only the current row is ever in memory.

use super::nest::{Emit, Nest};
use super::{Cell, ExportError, ExportSpec, Options, RowSink, push_phone, push_rfc3339};
use std::io::Write;

pub struct JsonWriter<W: Write> {
    out: W,
    spec: ExportSpec,
    opts: Options,
    nest: Nest,
    single: bool,
    /// Per-row scratch buffer (reused; its capacity is the writer's only growing state).
    buf: Vec<u8>,
    scratch: String,
}

impl<W: Write> JsonWriter<W> {
    pub fn new(mut out: W, spec: ExportSpec, opts: Options) -> Result<Self, ExportError> {
        spec.validate()?;
        let single = spec.sheets.len() == 1;
        out.write_all(if single { b"[" } else { b"{" })?;
        let nest = Nest::new(&spec);
        Ok(JsonWriter {
            out,
            spec,
            opts,
            nest,
            single,
            buf: Vec::with_capacity(1024),
            scratch: String::new(),
        })
    }

    /// Capacity of the internal per-row buffer (for memory-bound tests).
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity() + self.scratch.capacity()
    }

    /// Closes all arrays/objects and returns the inner writer (not flushed by us
    /// beyond `flush()`).
    pub fn finish(mut self) -> Result<W, ExportError> {
        let mut em = Em {
            w: &mut self.out,
            spec: &self.spec,
            opts: &self.opts,
            buf: &mut self.buf,
            scratch: &mut self.scratch,
            single: self.single,
        };
        self.nest.finish(&mut em)?;
        self.out
            .write_all(if self.single { b"]\n" } else { b"}\n" })?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> RowSink for JsonWriter<W> {
    fn push_row(&mut self, sheet: usize, cells: &[Cell<'_>]) -> Result<(), ExportError> {
        self.spec.check_row(sheet, cells)?;
        let mut em = Em {
            w: &mut self.out,
            spec: &self.spec,
            opts: &self.opts,
            buf: &mut self.buf,
            scratch: &mut self.scratch,
            single: self.single,
        };
        self.nest.push(&self.spec, sheet, cells, &mut em)
    }
}

struct Em<'a, W: Write> {
    w: &'a mut W,
    spec: &'a ExportSpec,
    opts: &'a Options,
    buf: &'a mut Vec<u8>,
    scratch: &'a mut String,
    single: bool,
}

impl<W: Write> Em<'_, W> {
    fn key(&mut self, k: &str) -> Result<(), ExportError> {
        serde_json::to_writer(&mut *self.buf, k)?;
        self.buf.push(b':');
        Ok(())
    }
    fn flush_buf(&mut self) -> Result<(), ExportError> {
        self.w.write_all(self.buf)?;
        self.buf.clear();
        Ok(())
    }
}

impl<W: Write> Emit for Em<'_, W> {
    fn open_top(&mut self, s: usize) -> Result<(), ExportError> {
        if !self.single {
            if self.spec.sheets[..s].iter().any(|x| x.parent.is_none()) {
                self.buf.extend_from_slice(b",\n");
            }
            let id = self.spec.sheets[s].id.as_str();
            self.key(id)?;
            self.buf.push(b'[');
            self.flush_buf()?;
        }
        Ok(())
    }
    fn close_top(&mut self, _s: usize) -> Result<(), ExportError> {
        if !self.single {
            self.w.write_all(b"]")?;
        }
        Ok(())
    }
    fn open_child(&mut self, c: usize) -> Result<(), ExportError> {
        self.buf.push(b',');
        let id = self.spec.sheets[c].id.as_str();
        self.key(id)?;
        self.buf.push(b'[');
        self.flush_buf()
    }
    fn close_child(&mut self, _c: usize) -> Result<(), ExportError> {
        self.w.write_all(b"]")?;
        Ok(())
    }
    fn row(
        &mut self,
        s: usize,
        cells: &[Cell<'_>],
        first: bool,
        leave_open: bool,
    ) -> Result<(), ExportError> {
        if !first {
            self.buf.push(b',');
        }
        self.buf.extend_from_slice(b"\n{");
        let sheet = &self.spec.sheets[s];
        for (i, (cell, col)) in cells.iter().zip(&sheet.columns).enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            serde_json::to_writer(&mut *self.buf, col.id.as_str())?;
            self.buf.push(b':');
            match *cell {
                Cell::Empty => self.buf.extend_from_slice(b"null"),
                Cell::Text(t) => serde_json::to_writer(&mut *self.buf, t)?,
                Cell::Integer(n) | Cell::Duration(n) => serde_json::to_writer(&mut *self.buf, &n)?,
                Cell::Timestamp(ts) => {
                    self.scratch.clear();
                    push_rfc3339(self.scratch, ts, &self.opts.tz);
                    serde_json::to_writer(&mut *self.buf, self.scratch.as_str())?;
                }
                Cell::Phone(p) => {
                    self.scratch.clear();
                    push_phone(self.scratch, p, self.opts.mask_phone_numbers);
                    serde_json::to_writer(&mut *self.buf, self.scratch.as_str())?;
                }
            }
        }
        if !leave_open {
            self.buf.push(b'}');
        }
        self.flush_buf()
    }
    fn close_row(&mut self, _s: usize) -> Result<(), ExportError> {
        self.w.write_all(b"}")?;
        Ok(())
    }
}
