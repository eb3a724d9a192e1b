//! Compress a finished export into a one-entry `.zip` when it is large.
//!
//! Threshold unit: **bytes**; [`ZipPolicy::from_megabytes`] uses decimal megabytes
//! (1 MB = 10^6 bytes, as mail providers state limits). The file is zipped when its
//! size is strictly greater than the threshold; threshold 0 means always.
//! Compression: deflate (level default); zip64 is enabled for entries ≥ 4 GiB.
//! The copy is streamed (std::io::copy with a fixed buffer), memory does not depend on file size.

use super::ExportError;
use ::zip::CompressionMethod;
use ::zip::write::{SimpleFileOptions, ZipWriter};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZipPolicy {
    /// Zip when the export is larger than this many bytes (0 = always).
    pub threshold_bytes: u64,
}

impl ZipPolicy {
    /// `mb` decimal megabytes (10^6 bytes each).
    pub fn from_megabytes(mb: u64) -> Self {
        ZipPolicy {
            threshold_bytes: mb.saturating_mul(1_000_000),
        }
    }

    pub fn should_zip(&self, size: u64) -> bool {
        self.threshold_bytes == 0 || size > self.threshold_bytes
    }
}

/// If `policy` says so, writes `dst` (a new .zip) holding `src` as the single entry
/// `entry_name` and returns `true`; otherwise writes nothing and returns `false`.
/// `src` is left in place (the caller deletes it).
pub fn zip_if_larger(
    src: &Path,
    dst: &Path,
    entry_name: &str,
    policy: ZipPolicy,
) -> Result<bool, ExportError> {
    let size = std::fs::metadata(src)?.len();
    if !policy.should_zip(size) {
        return Ok(false);
    }
    let mut input = BufReader::new(File::open(src)?);
    let out = BufWriter::new(File::create(dst)?);
    let mut zw = ZipWriter::new(out);
    let opts = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .large_file(size >= u64::from(u32::MAX))
        .unix_permissions(0o644);
    zw.start_file(entry_name, opts)
        .map_err(|e| ExportError::Zip(e.to_string()))?;
    // `take` bounds the copy to the size seen above.
    let copied = std::io::copy(&mut (&mut input).take(size), &mut zw)?;
    if copied != size {
        return Err(ExportError::Zip(format!(
            "{}: read {copied} of {size} bytes",
            src.display()
        )));
    }
    let mut out = zw.finish().map_err(|e| ExportError::Zip(e.to_string()))?;
    out.flush()?;
    Ok(true)
}
