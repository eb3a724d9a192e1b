//! HTTP/1.1 (+ HTTPS) for provisioning, and an HTTPS client for the
//! redirection services. The management API has its own small adapter
//! (`daemon/mgmt.rs`).
//!
//! * [`request`], [`path`], [`response`]: pure protocol code, reusable by any handler.
//! * [`server`]: smol adapter (accept loop, limits, timeouts, keep-alive, TLS).
//! * [`Site`]: the seam to the file-serving policy; [`dir::DirSite`] serves a directory.
//! * [`tls`]: rustls (ring) configuration from PEM files or a generated self-signed pair.

pub mod assets;
pub mod client;
pub mod digest;
pub mod dir;
mod edge;
pub mod path;
pub mod request;
pub mod response;
pub mod server;
pub mod tls;
pub mod x509;

pub use path::Path;
pub use request::{Headers, Method};
pub use server::{Config, Server, Stats};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

/// What the server tells the site about a GET/HEAD request.
#[derive(Clone, Copy, Debug)]
pub struct RequestInfo<'a> {
    pub peer: SocketAddr,
    /// Arrived over HTTPS.
    pub tls: bool,
    pub method: Method,
    /// Interpreted headers (Host, User-Agent, validators, Range, Authorization).
    pub headers: &'a Headers,
}

/// An in-memory representation (generated configs).
#[derive(Clone, Debug)]
pub struct MemoryBody {
    pub bytes: Arc<[u8]>,
    /// Full entity-tag with quotes; see [`response::etag_for_bytes`] (compute it once per
    /// body, not per request).
    pub etag: Option<response::ETag>,
    pub mtime: Option<SystemTime>,
    /// `None`: by the path's extension ([`response::content_type`]).
    pub content_type: Option<&'static str>,
}

/// A file on disk (firmware), streamed in bounded chunks, Range-capable.
#[derive(Debug)]
pub struct FileBody {
    pub file: std::fs::File,
    pub len: u64,
    pub etag: Option<response::ETag>,
    pub mtime: Option<SystemTime>,
    pub content_type: Option<&'static str>,
}

/// The site's answer.
#[derive(Debug)]
pub enum Lookup {
    Memory(MemoryBody),
    File(FileBody),
    /// 404 with a fixed body, identical for every name.
    NotFound,
    /// 403 with a fixed body.
    Forbidden,
    /// 401 with one `WWW-Authenticate` header per challenge.
    Unauthorized(Vec<String>),
}

/// One finished exchange, for the fetch log and scan blocking.
#[derive(Clone, Copy, Debug)]
pub struct Fetch<'a> {
    pub peer: SocketAddr,
    pub tls: bool,
    /// `None` when the head was not parsed (400/408/413/431).
    pub method: Option<Method>,
    pub user_agent: Option<&'a str>,
    /// Decoded path; `None` when the head or target was refused.
    pub path: Option<&'a Path>,
    pub status: u16,
    /// Body bytes actually written.
    pub bytes: u64,
    /// The site answered [`Lookup::File`].
    pub static_file: bool,
}

/// File-serving policy. Called from the connection tasks: keep every method cheap and
/// non-blocking-ish (a stat/open is fine; hand log writes to a channel).
pub trait Site: Send + Sync + 'static {
    /// Called on accept; `false` closes the connection at once (scan blocking).
    fn admit(&self, _peer: SocketAddr) -> bool {
        true
    }
    /// Resolves a GET/HEAD. `path` holds validated, decoded components (no `.`/`..`,
    /// separators, NUL); routing (`/provisioning/<file>`, `/provisioning/<tenant>/<file>`)
    /// is the site's decision.
    fn get(&self, path: &Path, info: &RequestInfo<'_>) -> Lookup;
    /// Called once per response, including errors.
    fn report(&self, _fetch: &Fetch<'_>) {}
}
