//! The output as the zip writer sees it, with a cut-off switch.
//!
//! The zip writer completes the archive when it is dropped unfinished. After a
//! failed write that would print to stderr, and after an abandoned export it would
//! make a half-written workbook look complete. So once a write fails, or the XLSX
//! writer is dropped without `finish`, the output is cut: later writes are swallowed,
//! and the XLSX writer reports the cut as an error.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub(super) struct Output<W> {
    inner: W,
    cut: Arc<AtomicBool>,
}

impl<W: Write> Output<W> {
    /// Wraps `inner`; `cut` is shared with the [`Cut`] of the XLSX writer.
    pub(super) fn new(inner: W, cut: &Cut) -> Self {
        Output {
            inner,
            cut: Arc::clone(&cut.0),
        }
    }

    pub(super) fn into_inner(self) -> W {
        self.inner
    }

    fn check<T>(&self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r
            && e.kind() != io::ErrorKind::Interrupted
        {
            self.cut.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.cut.load(Ordering::Relaxed) {
            return Ok(buf.len());
        }
        let r = self.inner.write(buf);
        self.check(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.cut.load(Ordering::Relaxed) {
            return Ok(());
        }
        let r = self.inner.flush();
        self.check(r)
    }
}

/// The switch; it cuts the output when dropped.
#[derive(Default)]
pub(super) struct Cut(Arc<AtomicBool>);

impl Cut {
    /// An error if the output has been cut by a failed write.
    pub(super) fn check(&self) -> io::Result<()> {
        if self.0.load(Ordering::Relaxed) {
            return Err(io::Error::other("an earlier write to the output failed"));
        }
        Ok(())
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
