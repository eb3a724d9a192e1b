//! HTTP/1.1 (+ HTTPS): the one HTTP stack of the daemon, serving provisioning's files
//! and the management listener (API and web console); and an HTTPS client for the
//! redirection services.
//!
//! * [`request`], [`path`], [`response`]: pure protocol code, reusable by any handler.
//! * [`server`]: smol adapter (accept loop, limits, timeouts, keep-alive, TLS).
//! * [`Site`]: the seam to a service: files by [`Site::get`] ([`dir::DirSite`] serves a
//!   directory), whole responses by [`Site::handle`] (`daemon/mgmt.rs`: API and console).
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
pub use request::{Headers, Method, Request};
pub use response::Conn;
pub use server::{Config, Server, Stats};

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
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

/// A response a site built whole ([`Site::handle`], [`Site::refusal`]).
pub struct Response {
    pub status: u16,
    /// The whole head, blank line included, written for the [`Conn`] the server passed.
    pub head: Vec<u8>,
    pub body: Body,
}

/// The body of a [`Response`].
pub enum Body {
    Bytes(Vec<u8>),
    Static(&'static [u8]),
    /// `Transfer-Encoding: chunked` (the head says so): each item is one chunk, an empty
    /// one ends the body. A stream that ends before it cuts the transfer: the connection
    /// closes without the last chunk, so the client sees a cut transfer, not a short file.
    Chunks(Pin<Box<dyn smol::stream::Stream<Item = Vec<u8>> + Send>>),
}

/// A response on its way ([`Site::handle`]).
pub type Pending = Pin<Box<dyn Future<Output = Response> + Send>>;

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

/// A service on the HTTP stack: file-serving policy ([`Site::get`]) or whole responses
/// ([`Site::handle`]). Called from the connection tasks: keep every method cheap and
/// non-blocking-ish (a stat/open is fine; hand log writes to a channel; slow work goes
/// into the future [`Site::handle`] returns).
pub trait Site: Send + Sync + 'static {
    /// Called on accept; `false` closes the connection at once (scan blocking).
    fn admit(&self, _peer: SocketAddr) -> bool {
        true
    }
    /// Resolves a GET/HEAD. `path` holds validated, decoded components (no `.`/`..`,
    /// separators, NUL); routing (`/provisioning/<file>`, `/provisioning/<tenant>/<file>`)
    /// is the site's decision.
    fn get(&self, _path: &Path, _info: &RequestInfo<'_>) -> Lookup {
        Lookup::NotFound
    }
    /// Answers a request whole (any method; `body` read within the limits), before and
    /// instead of [`Site::get`]. `None` (the default): `get` for GET and HEAD, 405 for the
    /// rest. The head must be written for `conn` (its `Connection` header); `date` is the
    /// `Date` value.
    fn handle(
        &self,
        _req: &Request,
        _body: &[u8],
        _info: &RequestInfo<'_>,
        _conn: Conn,
        _date: &str,
    ) -> Option<Pending> {
        None
    }
    /// The answer to a head refused before the site saw it (`why`: the parser's reason;
    /// `None`: it timed out), the connection closing after it (`Connection: close`).
    /// `None` (the default): the server's plain-text error.
    fn refusal(&self, _status: u16, _why: Option<request::Error>, _date: &str) -> Option<Response> {
        None
    }
    /// Called once per response, including errors.
    fn report(&self, _fetch: &Fetch<'_>) {}
}
