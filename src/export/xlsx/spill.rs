//! Rows of a worksheet that cannot be written yet because another zip entry is
//! open: kept in memory up to [`MEMORY`] bytes, then in an anonymous temporary
//! file (created, then unlinked at once, so nothing is left behind on a crash).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes kept in memory per sheet; also the write buffer of the file.
const MEMORY: usize = 64 * 1024;

#[derive(Default)]
pub(super) struct Spill {
    /// The newest bytes, after those in `file`.
    buf: Vec<u8>,
    file: Option<File>,
}

impl Spill {
    /// Appends `bytes`; the temporary file, if needed, is created in `dir`.
    pub(super) fn write(&mut self, bytes: &[u8], dir: &Path) -> io::Result<()> {
        if self.buf.len() + bytes.len() > MEMORY {
            let file = match &mut self.file {
                Some(file) => file,
                None => self.file.insert(anonymous_file(dir)?),
            };
            file.write_all(&self.buf)?;
            self.buf.clear();
            if bytes.len() > MEMORY {
                return file.write_all(bytes);
            }
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Copies everything written so far to `out`.
    pub(super) fn copy_to(&mut self, out: &mut impl Write) -> io::Result<()> {
        if let Some(file) = &mut self.file {
            file.rewind()?;
            io::copy(file, out)?;
        }
        out.write_all(&self.buf)
    }
}

/// A new file in `dir`, readable only by us, already unlinked.
fn anonymous_file(dir: &Path) -> io::Result<File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    for _ in 0..16 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".kpbxd-xlsx-{pid}-{n}.tmp"));
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        match opened {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary file name",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_to_an_unlinked_file_and_copies_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut spill = Spill::default();
        let mut expect = Vec::new();
        for i in 0..20_000u32 {
            let row = format!("<row r=\"{i}\"/>");
            spill.write(row.as_bytes(), dir.path()).unwrap();
            expect.extend_from_slice(row.as_bytes());
        }
        let big = vec![b'x'; MEMORY * 2];
        spill.write(&big, dir.path()).unwrap();
        expect.extend_from_slice(&big);
        spill.write(b"tail", dir.path()).unwrap();
        expect.extend_from_slice(b"tail");
        assert!(spill.file.is_some());
        assert!(spill.buf.capacity() <= MEMORY * 2);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "unlinked"
        );
        let mut out = Vec::new();
        spill.copy_to(&mut out).unwrap();
        assert_eq!(out, expect);
    }

    #[test]
    fn small_spill_stays_in_memory() {
        let mut spill = Spill::default();
        let nowhere = Path::new("/nonexistent/dir");
        spill.write(b"<row/>", nowhere).unwrap();
        assert!(spill.file.is_none());
        let mut out = Vec::new();
        spill.copy_to(&mut out).unwrap();
        assert_eq!(out, b"<row/>");
    }
}
