//! TFTP server for phone provisioning (read-only).
//!
//! Code map:
//! - [`packet`]: PURE wire codec. `parse` never panics.
//! - [`transfer`]: PURE sans-IO read-transfer state machine (blksize,
//!   windowsize, rollover, retries) driven by events and an injected
//!   [`crate::clock::Instant`].
//! - [`server`]: the smol adapter on the loop. One UDP socket on the listen port
//!   takes requests; each transfer gets its own ephemeral socket (its TID).
//! - `pump`: the transfer thread (adapter). One `epoll_wait` loop drives every
//!   running [`transfer::Transfer`]: its socket, retransmission timer and file.
//!   It decides nothing; it reports each end back to the loop.
//! - This module: the seam to the product, [`FileSource`], plus path hygiene
//!   ([`sanitize_path`]) and [`DirSource`], a directory-backed source.
//!
//! Architecture invariant: `packet` and `transfer` import no sockets, no
//! executor and no OS clock; only `server` and `pump` do I/O, and only `server`
//! (on the loop) calls the [`FileSource`].
//!
//! ```text
//!  listen socket ──RRQ──▶ Server::handle_request ──open──▶ FileSource
//!        │                     │ hand over (bounded by max_transfers)
//!        ▼ errors (1,2,busy)   ▼
//!                 transfer thread: ephemeral sockets ◀─▶ Transfer (pure)
//!                              │ on end, a report over a channel
//!                              ▼
//!               loop: FileSource::fetched(FetchRecord)
//! ```

pub mod packet;
mod pump;
pub mod server;
pub mod transfer;

use std::fmt;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The content of a file to serve.
#[derive(Debug)]
pub enum FileData {
    /// A generated file held in memory (phone configs).
    Memory(Arc<[u8]>),
    /// A file on disk (firmware), read block by block with positioned reads;
    /// never loaded whole. Its size is taken when the transfer starts.
    Disk(File),
}

/// Why a file cannot be served. Mapped to TFTP error codes by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileError {
    /// TFTP error 1.
    NotFound,
    /// TFTP error 2. Also the answer for a blocked (scanning) peer.
    AccessDenied,
    /// TFTP error 0 with a generic message; the detail is only logged.
    Io(String),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::NotFound => write!(f, "file not found"),
            FileError::AccessDenied => write!(f, "access denied"),
            FileError::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for FileError {}

/// How one request ended; reported through [`FileSource::fetched`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The client acknowledged the last block.
    Completed,
    NotFound,
    AccessDenied,
    /// The path was refused by [`sanitize_path`] (traversal, backslash, NUL).
    BadPath,
    /// A write request (always refused with error 2).
    WriteRefused,
    /// Mode `mail` (error 4).
    BadMode,
    /// `max_transfers` were running or descriptors ran out (error 0, "Server busy").
    Busy,
    /// Retries exhausted.
    TimedOut,
    /// The client sent an ERROR packet with this code.
    ClientAborted(u16),
    /// Opening, sizing or reading the file, or creating the socket, failed.
    Io(String),
}

/// One request, as reported to the product's fetch log and scanning block.
#[derive(Clone, Debug)]
pub struct FetchRecord<'a> {
    pub peer: SocketAddr,
    /// The file name exactly as requested (before sanitising).
    pub path: &'a str,
    pub outcome: Outcome,
    /// File bytes the client acknowledged.
    pub bytes: u64,
    /// Datagrams retransmitted after a timeout.
    pub retransmits: u64,
}

/// The seam to the product: the server calls `open` once per accepted read
/// request and `fetched` once per request when it ends (also for refused
/// requests). Both run on the thread polling [`server::Server::serve`] (the daemon's
/// loop), never on the transfer thread, and must not block
/// for long; opening a file or cloning an `Arc` is fine.
pub trait FileSource {
    /// `path` is already sanitised: relative, `/`-separated, no `..`, `.`,
    /// empty components, backslashes or NUL. A tenant path `<uuid>/file`
    /// arrives as is. Refuse a peer (scanner) with [`FileError::AccessDenied`].
    fn open(&self, peer: SocketAddr, path: &str) -> Result<FileData, FileError>;

    /// Called once per request when it ends. Default: nothing.
    fn fetched(&self, record: &FetchRecord<'_>) {
        let _ = record;
    }
}

/// Why a requested path is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    Empty,
    Nul,
    Backslash,
    /// A `..`, `.` or empty component.
    BadComponent,
}

/// Checks a requested file name and returns it relative (one leading `/`
/// removed). Compared by component, never by string prefix.
pub fn sanitize_path(raw: &str) -> Result<&str, PathError> {
    let p = raw.strip_prefix('/').unwrap_or(raw);
    if p.is_empty() {
        return Err(PathError::Empty);
    }
    if p.contains('\0') {
        return Err(PathError::Nul);
    }
    if p.contains('\\') {
        return Err(PathError::Backslash);
    }
    if p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return Err(PathError::BadComponent);
    }
    Ok(p)
}

/// Serves the regular files under a directory. Symlinks are followed only
/// when their target stays inside the directory.
#[derive(Clone, Debug)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// Fails if `root` does not exist.
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<DirSource> {
        Ok(DirSource {
            root: root.as_ref().canonicalize()?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn io_to_file_error(e: &std::io::Error) -> FileError {
    match e.kind() {
        std::io::ErrorKind::NotFound => FileError::NotFound,
        std::io::ErrorKind::PermissionDenied => FileError::AccessDenied,
        _ => FileError::Io(e.to_string()),
    }
}

impl FileSource for DirSource {
    fn open(&self, _peer: SocketAddr, path: &str) -> Result<FileData, FileError> {
        let full = self.root.join(path);
        let real = full.canonicalize().map_err(|e| io_to_file_error(&e))?;
        if !real.starts_with(&self.root) {
            return Err(FileError::AccessDenied);
        }
        let file = File::open(&real).map_err(|e| io_to_file_error(&e))?;
        let meta = file.metadata().map_err(|e| io_to_file_error(&e))?;
        if !meta.is_file() {
            return Err(FileError::NotFound);
        }
        Ok(FileData::Disk(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_accepts_plain_leading_slash_and_tenant_paths() {
        assert_eq!(sanitize_path("a.cfg"), Ok("a.cfg"));
        assert_eq!(sanitize_path("/a.cfg"), Ok("a.cfg"));
        let t = "0b3c6a2e-0000-4000-8000-000000000001/snom370-0004167898B1.htm";
        assert_eq!(sanitize_path(t), Ok(t));
        assert_eq!(sanitize_path(&format!("/{t}")), Ok(t));
        assert_eq!(sanitize_path("..a/b..c"), Ok("..a/b..c"));
    }

    #[test]
    fn sanitize_refuses_traversal_and_odd_paths() {
        for (p, e) in [
            ("", PathError::Empty),
            ("/", PathError::Empty),
            ("a\0b", PathError::Nul),
            ("a\\b", PathError::Backslash),
            ("..\\x", PathError::Backslash),
            ("..", PathError::BadComponent),
            ("../etc/passwd", PathError::BadComponent),
            ("/../x", PathError::BadComponent),
            ("a/../../x", PathError::BadComponent),
            ("a/..", PathError::BadComponent),
            ("./a", PathError::BadComponent),
            ("//etc/passwd", PathError::BadComponent),
            ("a//b", PathError::BadComponent),
            ("a/", PathError::BadComponent),
        ] {
            assert_eq!(sanitize_path(p), Err(e), "{p:?}");
        }
    }

    #[test]
    fn dir_source_stays_inside_root() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir_all(root.join("tenant")).unwrap();
        std::fs::write(root.join("tenant/a.cfg"), b"x").unwrap();
        std::fs::write(outer.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(outer.path().join("secret"), root.join("link")).unwrap();
        let src = DirSource::new(&root).unwrap();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(matches!(
            src.open(peer, "tenant/a.cfg"),
            Ok(FileData::Disk(_))
        ));
        assert_eq!(src.open(peer, "nope").unwrap_err(), FileError::NotFound);
        assert_eq!(src.open(peer, "tenant").unwrap_err(), FileError::NotFound);
        assert_eq!(src.open(peer, "link").unwrap_err(), FileError::AccessDenied);
    }
}
