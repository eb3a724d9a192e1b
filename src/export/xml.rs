//! Streamed XML writer.
//!
//! ```text
//! <?xml version="1.0" encoding="UTF-8"?>
//! <export>
//! <calls>
//! <row><unique_id>..</unique_id>...<legs><row>..</row></legs></row>
//! </calls>
//! <operator_events>...</operator_events>
//! </export>
//! ```
//! Element names are the (validated, ASCII snake_case) sheet and column ids.
//! Text: `& < > "` are escaped, CR is written as `&#13;` (so it survives parser
//! end-of-line normalisation), and characters XML 1.0 forbids are **removed**:
//! C0 controls other than TAB/LF/CR, and U+FFFE/U+FFFF (lone surrogates cannot occur
//! in a Rust `str`). Empty cells are empty elements (`<answer_datetime/>`).

use super::nest::{Emit, Nest};
use super::{Cell, ExportError, ExportSpec, Options, RowSink, push_phone, push_rfc3339};
use std::fmt::Write as _;
use std::io::Write;

/// Appends `s` escaped for XML text content, dropping characters XML 1.0 forbids.
pub fn push_escaped(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(ch),
            c if (c as u32) < 0x20 => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

pub struct XmlWriter<W: Write> {
    out: W,
    spec: ExportSpec,
    opts: Options,
    nest: Nest,
    buf: String,
    scratch: String,
}

impl<W: Write> XmlWriter<W> {
    pub fn new(mut out: W, spec: ExportSpec, opts: Options) -> Result<Self, ExportError> {
        spec.validate()?;
        out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<export>\n")?;
        let nest = Nest::new(&spec);
        Ok(XmlWriter {
            out,
            spec,
            opts,
            nest,
            buf: String::with_capacity(1024),
            scratch: String::new(),
        })
    }

    /// Capacity of the internal per-row buffers (for memory-bound tests).
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity() + self.scratch.capacity()
    }

    pub fn finish(mut self) -> Result<W, ExportError> {
        let mut em = Em {
            w: &mut self.out,
            spec: &self.spec,
            opts: &self.opts,
            buf: &mut self.buf,
            scratch: &mut self.scratch,
        };
        self.nest.finish(&mut em)?;
        self.out.write_all(b"</export>\n")?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> RowSink for XmlWriter<W> {
    fn push_row(&mut self, sheet: usize, cells: &[Cell<'_>]) -> Result<(), ExportError> {
        self.spec.check_row(sheet, cells)?;
        let mut em = Em {
            w: &mut self.out,
            spec: &self.spec,
            opts: &self.opts,
            buf: &mut self.buf,
            scratch: &mut self.scratch,
        };
        self.nest.push(&self.spec, sheet, cells, &mut em)
    }
}

struct Em<'a, W: Write> {
    w: &'a mut W,
    spec: &'a ExportSpec,
    opts: &'a Options,
    buf: &'a mut String,
    scratch: &'a mut String,
}

impl<W: Write> Em<'_, W> {
    fn tag(&mut self, open: bool, s: usize, nl: bool) -> Result<(), ExportError> {
        let id = &self.spec.sheets[s].id;
        write!(self.w, "<{}{id}>", if open { "" } else { "/" })?;
        if nl {
            self.w.write_all(b"\n")?;
        }
        Ok(())
    }
}

impl<W: Write> Emit for Em<'_, W> {
    fn open_top(&mut self, s: usize) -> Result<(), ExportError> {
        self.tag(true, s, true)
    }
    fn close_top(&mut self, s: usize) -> Result<(), ExportError> {
        self.tag(false, s, true)
    }
    fn open_child(&mut self, c: usize) -> Result<(), ExportError> {
        self.tag(true, c, false)
    }
    fn close_child(&mut self, c: usize) -> Result<(), ExportError> {
        self.tag(false, c, false)
    }
    fn row(
        &mut self,
        s: usize,
        cells: &[Cell<'_>],
        _first: bool,
        leave_open: bool,
    ) -> Result<(), ExportError> {
        self.buf.clear();
        self.buf.push_str("<row>");
        let sheet = &self.spec.sheets[s];
        for (cell, col) in cells.iter().zip(&sheet.columns) {
            let id = col.id.as_str();
            if matches!(cell, Cell::Empty) {
                let _ = write!(self.buf, "<{id}/>");
                continue;
            }
            let _ = write!(self.buf, "<{id}>");
            match *cell {
                Cell::Empty => {}
                Cell::Text(t) => push_escaped(self.buf, t),
                Cell::Integer(n) | Cell::Duration(n) => {
                    let _ = write!(self.buf, "{n}");
                }
                Cell::Timestamp(ts) => push_rfc3339(self.buf, ts, &self.opts.tz),
                Cell::Phone(p) => {
                    self.scratch.clear();
                    push_phone(self.scratch, p, self.opts.mask_phone_numbers);
                    push_escaped(self.buf, self.scratch);
                }
            }
            let _ = write!(self.buf, "</{id}>");
        }
        if !leave_open {
            self.buf.push_str("</row>");
            if self.spec.sheets[s].parent.is_none() {
                self.buf.push('\n');
            }
        }
        self.w.write_all(self.buf.as_bytes())?;
        Ok(())
    }
    fn close_row(&mut self, _s: usize) -> Result<(), ExportError> {
        self.w.write_all(b"</row>\n")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_and_strips() {
        let mut s = String::new();
        super::push_escaped(
            &mut s,
            "a<b>&\"c\"\r\n\t\u{0}\u{1f}\u{7f}\u{FFFE}\u{FFFF}😀",
        );
        assert_eq!(s, "a&lt;b&gt;&amp;&quot;c&quot;&#13;\n\t\u{7f}😀");
    }
}
