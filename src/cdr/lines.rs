//! Splits a growing byte stream into records, for incremental following.
//!
//! Pure: the adapter reads the file and pushes chunks; the splitter returns
//! each complete record with the [`Position`] just past it. A partial last
//! line (or a quoted field still open across a newline, for CSV) stays pending
//! until its end arrives. Persist the `end` of the last record handled and
//! restart with [`Splitter::resume`] from it: nothing is returned twice.
//!
//! Rules:
//! - a record ends at `\n` (outside quotes when [`SplitterConfig::quoted`]);
//!   a trailing `\r` is stripped; blank records are skipped silently;
//! - memory is bounded: a record longer than
//!   [`SplitterConfig::max_record_len`] is dropped as it streams in, and
//!   reported as [`Reason::TooLong`] when its end arrives (the record then
//!   ends at the next raw `\n`, quotes ignored);
//! - an unbalanced `"` (CSV) makes the following newlines look quoted. When
//!   such a multi-line record reaches the limit, its first line is reported
//!   as [`Reason::UnbalancedQuote`] and the bytes after it are scanned again,
//!   so one stray quote costs one line, not the rest of the file. Until the
//!   limit is reached the record waits, as a legitimately open field must.

use super::{Malformed, Reason};

/// A place in the stream: byte offset and the 1-based number of the line
/// that starts there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Byte offset from the start of the file.
    pub offset: u64,
    /// 1-based number of the line starting at `offset`.
    pub line: u64,
}

impl Position {
    /// The start of a file.
    pub const START: Position = Position { offset: 0, line: 1 };
}

/// How to split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitterConfig {
    /// `true` for CSV: a `\n` inside `"…"` does not end the record.
    pub quoted: bool,
    /// Longest record kept, in bytes (terminator excluded).
    pub max_record_len: usize,
}

impl SplitterConfig {
    /// Default bound on a record: 64 KiB.
    pub const DEFAULT_MAX: usize = 64 * 1024;

    /// For `Master.csv` and other CSV files.
    pub const CSV: SplitterConfig = SplitterConfig {
        quoted: true,
        max_record_len: Self::DEFAULT_MAX,
    };

    /// For `queue_log` (no quoting).
    pub const PLAIN: SplitterConfig = SplitterConfig {
        quoted: false,
        max_record_len: Self::DEFAULT_MAX,
    };
}

/// One complete record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The record's bytes, terminator (and a trailing `\r`) removed.
    pub bytes: Vec<u8>,
    /// 1-based line number of the record's first line.
    pub line: u64,
    /// Byte offset of the record's first byte.
    pub offset: u64,
    /// Position just past the record's terminator.
    pub end: Position,
}

/// Incremental record splitter. See the module docs.
#[derive(Clone, Debug)]
pub struct Splitter {
    config: SplitterConfig,
    /// Start of the pending record; also the committed resume point.
    start: Position,
    /// Bytes of the pending record (empty while skipping).
    pending: Vec<u8>,
    /// Bytes consumed into the pending record, kept or skipped.
    pending_len: u64,
    /// Newlines inside the pending record (quoted newlines).
    pending_newlines: u64,
    in_quotes: bool,
    skipping: bool,
}

impl Splitter {
    /// A splitter at the start of a file.
    pub fn new(config: SplitterConfig) -> Splitter {
        Splitter::resume(config, Position::START)
    }

    /// A splitter continuing at `from`, a `Position` previously returned as a
    /// record's `end` (or [`Splitter::position`]). Feed it the file from
    /// `from.offset` on.
    pub fn resume(config: SplitterConfig, from: Position) -> Splitter {
        Splitter {
            config,
            start: from,
            pending: Vec::new(),
            pending_len: 0,
            pending_newlines: 0,
            in_quotes: false,
            skipping: false,
        }
    }

    /// Position just past the last complete record (safe resume point).
    pub fn position(&self) -> Position {
        self.start
    }

    /// Bytes received but not yet part of a complete record.
    pub fn pending_len(&self) -> u64 {
        self.pending_len
    }

    /// Feeds the next chunk; returns the records it completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Result<Record, Malformed>> {
        let mut out = Vec::new();
        self.push_into(chunk, &mut out);
        out
    }

    fn push_into(&mut self, chunk: &[u8], out: &mut Vec<Result<Record, Malformed>>) {
        for &byte in chunk {
            self.push_byte(byte, out);
        }
    }

    fn push_byte(&mut self, byte: u8, out: &mut Vec<Result<Record, Malformed>>) {
        if byte == b'\n' && (self.skipping || !self.in_quotes) {
            self.pending_len += 1;
            out.extend(self.finish_record());
            return;
        }
        if !self.skipping && self.pending.len() >= self.config.max_record_len {
            self.overflow(out);
            if !self.skipping {
                // Rescanned: the quote state changed, so decide again. The
                // pending record is now shorter than the limit: no recursion.
                self.push_byte(byte, out);
                return;
            }
        }
        self.pending_len += 1;
        if byte == b'\n' {
            self.pending_newlines += 1;
        }
        if self.skipping {
            return;
        }
        if byte == b'"' && self.config.quoted {
            self.in_quotes = !self.in_quotes;
        }
        self.pending.push(byte);
    }

    /// The pending record hit the length limit. If it spans several lines
    /// (an open quote swallowed newlines), its first line is rejected and the
    /// rest is scanned again; otherwise the record is skipped to its end.
    fn overflow(&mut self, out: &mut Vec<Result<Record, Malformed>>) {
        let Some(newline) = self.pending.iter().position(|&b| b == b'\n') else {
            self.skipping = true;
            self.pending = Vec::new();
            return;
        };
        let rest = self.pending.split_off(newline + 1);
        let end = Position {
            offset: self.start.offset.saturating_add(newline as u64 + 1),
            line: self.start.line.saturating_add(1),
        };
        out.push(Err(Malformed {
            line: self.start.line,
            offset: self.start.offset,
            end,
            reason: Reason::UnbalancedQuote {
                len: newline as u64,
            },
        }));
        *self = Splitter::resume(self.config, end);
        // `rest` is shorter than the limit, so this cannot overflow again.
        self.push_into(&rest, out);
    }

    /// Ends the pending record at a terminator just consumed.
    fn finish_record(&mut self) -> Option<Result<Record, Malformed>> {
        let line = self.start.line;
        let offset = self.start.offset;
        let end = Position {
            offset: offset.saturating_add(self.pending_len),
            line: line.saturating_add(self.pending_newlines).saturating_add(1),
        };
        let skipped = self.skipping;
        let mut bytes = std::mem::take(&mut self.pending);
        let len = self.pending_len.saturating_sub(1);
        self.start = end;
        self.pending_len = 0;
        self.pending_newlines = 0;
        self.in_quotes = false;
        self.skipping = false;
        if skipped {
            return Some(Err(Malformed {
                line,
                offset,
                end,
                reason: Reason::TooLong { len },
            }));
        }
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if bytes.is_empty() {
            return None;
        }
        Some(Ok(Record {
            bytes,
            line,
            offset,
            end,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_and_blank_lines() {
        let mut s = Splitter::new(SplitterConfig::PLAIN);
        let out = s.push(b"a\r\n\n\r\nb\n");
        let got: Vec<(Vec<u8>, u64, Position)> = out
            .into_iter()
            .map(|r| r.expect("ok"))
            .map(|r| (r.bytes, r.line, r.end))
            .collect();
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), 1, Position { offset: 3, line: 2 }),
                (b"b".to_vec(), 4, Position { offset: 8, line: 5 })
            ]
        );
    }

    #[test]
    fn plain_mode_ignores_quotes() {
        let mut s = Splitter::new(SplitterConfig::PLAIN);
        assert_eq!(s.push(b"1|\"|q\n2|x\n").len(), 2);
    }

    #[test]
    fn memory_stays_bounded_while_skipping() {
        let mut s = Splitter::new(SplitterConfig {
            quoted: false,
            max_record_len: 8,
        });
        for _ in 0..1000 {
            assert!(s.push(&[b'z'; 100]).is_empty());
        }
        assert!(s.pending.capacity() <= 8);
        let out = s.push(b"\nok\n");
        assert_eq!(
            out[0],
            Err(Malformed {
                line: 1,
                offset: 0,
                end: Position {
                    offset: 100_001,
                    line: 2
                },
                reason: Reason::TooLong { len: 100_000 },
            })
        );
        assert_eq!(out[1].as_ref().map(|r| r.bytes.clone()), Ok(b"ok".to_vec()));
    }
}
