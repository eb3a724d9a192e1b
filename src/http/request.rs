//! Request head → validated [`Request`] (pure, never panics: fuzzed).

use super::path::{self, Path, PathError};
pub use httparse::Status;
use std::fmt;

/// Hard cap on [`Limits::max_headers`] (the parser's header array lives on the stack).
pub const MAX_HEADERS_CAP: usize = 128;
/// Longest header value kept for the site (e.g. `User-Agent`), longer ones are cut.
pub const MAX_KEPT_VALUE: usize = 256;

/// Parser limits. Defaults: 8 KiB head, 64 headers, 1 KiB of request body (the
/// management API reads up to 1 MiB: `auth::api::LIMITS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of request line + headers + blank line, in bytes (→ 431).
    pub max_head_bytes: usize,
    /// Maximum number of header fields (→ 431); capped at [`MAX_HEADERS_CAP`].
    pub max_headers: usize,
    /// A request body up to this size (Content-Length) is read (and discarded by a site
    /// that takes none); larger → 413.
    pub max_body_discard: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 8 * 1024,
            max_headers: 64,
            max_body_discard: 1024,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Method {
    #[default]
    Get,
    Head,
    /// The management API's writes; a file site answers 405.
    Post,
    /// Any other syntactically valid method (→ 405).
    Other,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Version {
    Http10,
    #[default]
    Http11,
}

/// A header value's place in [`Headers`]'s text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

/// The headers the server and the site need, already interpreted. The kept values live in
/// one string (one allocation per request, none when reused: [`parse_head_into`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    text: String,
    host: Option<Span>,
    user_agent: Option<Span>,
    range: Option<Span>,
    if_range: Option<Span>,
    if_none_match: Option<Span>,
    if_modified_since: Option<Span>,
    authorization: Option<Span>,
    /// `Connection: close` seen.
    pub conn_close: bool,
    /// `Connection: keep-alive` seen.
    pub conn_keep_alive: bool,
    /// Content-Length of the request body (0 when absent).
    pub content_length: u64,
    /// An `Accept-Encoding` field was sent.
    accept_encoding: bool,
    /// One of them accepts gzip (`gzip`, `x-gzip` or `*` with q > 0).
    gzip_named: bool,
}

impl Headers {
    fn get(&self, span: Option<Span>) -> Option<&str> {
        span.and_then(|s| self.text.get(s.start as usize..s.end as usize))
    }

    pub fn host(&self) -> Option<&str> {
        self.get(self.host)
    }

    /// Cut to [`MAX_KEPT_VALUE`] bytes.
    pub fn user_agent(&self) -> Option<&str> {
        self.get(self.user_agent)
    }

    pub fn range(&self) -> Option<&str> {
        self.get(self.range)
    }

    pub fn if_range(&self) -> Option<&str> {
        self.get(self.if_range)
    }

    /// Several fields combined into one list.
    pub fn if_none_match(&self) -> Option<&str> {
        self.get(self.if_none_match)
    }

    pub fn if_modified_since(&self) -> Option<&str> {
        self.get(self.if_modified_since)
    }

    /// `Authorization`, when at most [`super::digest::MAX_AUTHORIZATION`]
    /// bytes of UTF-8 (longer or repeated: empty, so the request is
    /// challenged).
    pub fn authorization(&self) -> Option<&str> {
        self.get(self.authorization)
    }

    /// Whether gzip content coding is acceptable (RFC 9110 12.5.3): no
    /// `Accept-Encoding` at all means any coding is; otherwise one field
    /// must accept gzip.
    pub fn accepts_gzip(&self) -> bool {
        !self.accept_encoding || self.gzip_named
    }

    /// Forgets everything, keeping the allocation.
    fn clear(&mut self) {
        let mut text = std::mem::take(&mut self.text);
        text.clear();
        *self = Headers {
            text,
            ..Headers::default()
        };
    }

    fn push(&mut self, v: &str) -> Span {
        let start = self.text.len();
        self.text.push_str(v);
        Span {
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(self.text.len()).unwrap_or(u32::MAX),
        }
    }

    /// A value as kept: cut to [`MAX_KEPT_VALUE`] bytes, lossy UTF-8, trimmed.
    fn kept(&mut self, v: &[u8]) -> Span {
        // Borrows valid UTF-8 (the usual case): no allocation.
        let text = String::from_utf8_lossy(&v[..v.len().min(MAX_KEPT_VALUE)]);
        self.push(text.trim())
    }

    /// Takes one value field (`Host`, `User-Agent`, validators, `Range`, `Authorization`)
    /// as the parser does; other names are ignored. Err: a second `Host`.
    pub fn add(&mut self, name: &str, v: &[u8]) -> Result<(), Error> {
        if name.eq_ignore_ascii_case("host") {
            if self.host.is_some() {
                return Err(Error::Syntax);
            }
            self.host = Some(self.kept(v));
        } else if name.eq_ignore_ascii_case("user-agent") {
            self.user_agent = Some(self.kept(v));
        } else if name.eq_ignore_ascii_case("authorization") {
            self.authorization = Some(match (self.authorization, std::str::from_utf8(v)) {
                (None, Ok(a)) if a.len() <= super::digest::MAX_AUTHORIZATION => self.push(a),
                _ => self.push(""),
            });
        } else if name.eq_ignore_ascii_case("range") {
            self.range = Some(self.kept(v));
        } else if name.eq_ignore_ascii_case("if-range") {
            self.if_range = Some(self.kept(v));
        } else if name.eq_ignore_ascii_case("if-none-match") {
            // Several fields combine into one list.
            let add = self.kept(v);
            self.if_none_match = Some(match self.if_none_match {
                Some(prev) if prev.end - prev.start < 4 * MAX_KEPT_VALUE as u32 => {
                    let both = format!(
                        "{}, {}",
                        self.get(Some(prev)).unwrap_or(""),
                        self.get(Some(add)).unwrap_or("")
                    );
                    self.push(&both)
                }
                Some(prev) => prev,
                None => add,
            });
        } else if name.eq_ignore_ascii_case("if-modified-since") {
            self.if_modified_since = Some(self.kept(v));
        } else if name.eq_ignore_ascii_case("accept-encoding") {
            self.accept_encoding = true;
            self.gzip_named |= accepts_gzip(v);
        }
        Ok(())
    }
}

/// Whether one `Accept-Encoding` field accepts gzip: `gzip` or `x-gzip`
/// with q > 0, or, when neither is named, `*` with q > 0.
fn accepts_gzip(v: &[u8]) -> bool {
    let mut named = None;
    let mut star = false;
    for item in v.split(|&b| b == b',') {
        let mut parts = item.split(|&b| b == b';');
        let coding = parts.next().unwrap_or_default().trim_ascii();
        // q=0 (or 0.0, 0.00...) refuses; anything else accepts.
        let refused = parts.any(|p| {
            let p = p.trim_ascii();
            p.len() >= 2
                && p[..2].eq_ignore_ascii_case(b"q=")
                && p[2..].iter().all(|&c| c == b'0' || c == b'.')
        });
        if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
            named = Some(named.unwrap_or(false) || !refused);
        } else if coding == b"*" {
            star = !refused;
        }
    }
    named.unwrap_or(star)
}

/// A parsed, validated request head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub version: Version,
    pub path: Path,
    /// The target's text after the first `?` (raw, not decoded; empty when none).
    pub query: String,
    pub headers: Headers,
    /// Bytes of the head, including the final blank line.
    pub head_len: usize,
}

impl Request {
    /// Whether the connection may carry another request after this one.
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.headers.conn_close,
            Version::Http10 => self.headers.conn_keep_alive && !self.headers.conn_close,
        }
    }
}

/// Why a head was refused; [`Error::status`] gives the response code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// httparse syntax error (→ 400).
    Syntax,
    /// HTTP/1.x minor version other than 0 or 1 (→ 400; httparse only accepts 1.0/1.1).
    Version,
    /// Bad request target (→ 400).
    Path(PathError),
    /// Invalid or conflicting Content-Length / Transfer-Encoding (→ 400).
    Framing,
    /// Head longer than [`Limits::max_head_bytes`] (→ 431).
    HeadTooLarge,
    /// More than [`Limits::max_headers`] fields (→ 431).
    TooManyHeaders,
    /// Request body larger than [`Limits::max_body_discard`] (→ 413).
    BodyTooLarge,
    /// A chunked body (→ 413 here; the management API says 411: send Content-Length).
    Chunked,
}

impl Error {
    pub fn status(self) -> u16 {
        match self {
            Error::Syntax | Error::Version | Error::Path(_) | Error::Framing => 400,
            Error::HeadTooLarge | Error::TooManyHeaders => 431,
            Error::BodyTooLarge | Error::Chunked => 413,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for Error {}

/// [`parse_head_with`] with default [`Limits`].
pub fn parse_head(buf: &[u8]) -> Result<Status<Request>, Error> {
    parse_head_with(buf, &Limits::default())
}

fn has_token(v: &[u8], token: &str) -> bool {
    v.split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Parses the head at the start of `buf`. `Partial` means "read more"; once `buf` holds
/// more than `limits.max_head_bytes` without a complete head, the result is
/// [`Error::HeadTooLarge`]. Bytes after the head (a body or pipelined requests) are ignored.
pub fn parse_head_with(buf: &[u8], limits: &Limits) -> Result<Status<Request>, Error> {
    let mut req = Request::default();
    Ok(match parse_head_into(buf, limits, &mut req)? {
        Status::Complete(()) => Status::Complete(req),
        Status::Partial => Status::Partial,
    })
}

/// [`parse_head_with`] into `out`, reusing its allocations (a keep-alive connection's
/// requests then allocate nothing). `out` is complete only after `Complete`.
pub fn parse_head_into(
    buf: &[u8],
    limits: &Limits,
    out: &mut Request,
) -> Result<Status<()>, Error> {
    let window = &buf[..buf.len().min(limits.max_head_bytes)];
    // Uninitialised: zeroing 128 headers would cost more than parsing a phone's few.
    let mut storage =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let n = limits.max_headers.min(MAX_HEADERS_CAP);
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(window, &mut storage[..n]) {
        Ok(Status::Complete(len)) => len,
        Ok(Status::Partial) if buf.len() > limits.max_head_bytes => {
            return Err(Error::HeadTooLarge);
        }
        Ok(Status::Partial) => return Ok(Status::Partial),
        Err(httparse::Error::TooManyHeaders) => return Err(Error::TooManyHeaders),
        Err(_) => return Err(Error::Syntax),
    };
    let method = match req.method {
        Some("GET") => Method::Get,
        Some("HEAD") => Method::Head,
        Some("POST") => Method::Post,
        Some(_) => Method::Other,
        None => return Err(Error::Syntax),
    };
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(Error::Version),
    };
    let target = req.path.unwrap_or("");
    path::parse_target_into(target.as_bytes(), &mut out.path).map_err(Error::Path)?;
    out.query.clear();
    out.query
        .push_str(target.split_once('?').map_or("", |(_, q)| q));

    let h = &mut out.headers;
    h.clear();
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    for f in req.headers.iter() {
        let v = f.value;
        let name = f.name;
        if name.eq_ignore_ascii_case("connection") {
            h.conn_close |= has_token(v, "close");
            h.conn_keep_alive |= has_token(v, "keep-alive");
        } else if name.eq_ignore_ascii_case("content-length") {
            let s = std::str::from_utf8(v).map_err(|_| Error::Framing)?.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::Framing);
            }
            let n: u64 = s.parse().map_err(|_| Error::Framing)?;
            if content_length.is_some_and(|p| p != n) {
                return Err(Error::Framing);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        } else {
            h.add(name, v)?;
        }
    }
    if chunked {
        // RFC 9112 6.1: TE is 1.1 only; TE with CL is a smuggling attempt.
        if version == Version::Http10 || content_length.is_some() {
            return Err(Error::Framing);
        }
        return Err(Error::Chunked);
    }
    h.content_length = content_length.unwrap_or(0);
    if h.content_length > limits.max_body_discard {
        return Err(Error::BodyTooLarge);
    }
    out.method = method;
    out.version = version;
    out.head_len = head_len;
    Ok(Status::Complete(()))
}

/// Fuzz entry point (also run by a unit test over seeded pseudo-random inputs): parses
/// `data` as a head (default and tiny limits) and as a bare target, and asserts what an
/// accepted request guarantees. Panics only if an invariant is broken.
pub fn check_invariants(data: &[u8]) {
    let tiny = Limits {
        max_head_bytes: 64,
        max_headers: 2,
        max_body_discard: 0,
    };
    for lim in [Limits::default(), tiny] {
        if let Ok(Status::Complete(r)) = parse_head_with(data, &lim) {
            assert!(r.head_len <= data.len() && r.head_len <= lim.max_head_bytes);
            assert!(r.headers.content_length <= lim.max_body_discard);
            check_path(&r.path);
            if let Some(a) = r.headers.authorization() {
                let _ = super::digest::parse(a);
            }
            // The response side must cope with whatever validators/ranges came in.
            for len in [0, 1, 10, u64::MAX] {
                let e = super::response::Entity {
                    len,
                    etag: Some("\"x\""),
                    mtime: Some(std::time::UNIX_EPOCH),
                    content_type: "text/plain",
                };
                let p = super::response::plan(r.method, &r.headers, &e);
                assert!(p.start <= p.end && p.end <= len);
                if let Some(v) = r.headers.range() {
                    let _ = super::response::parse_range(v, len);
                }
            }
        }
    }
    if let Ok(p) = path::parse_target(data) {
        check_path(&p);
    }
}

fn check_path(p: &Path) {
    assert!(p.len() <= path::MAX_COMPONENTS);
    assert_eq!(p.components().count(), p.len());
    for c in p.components() {
        assert!(!c.is_empty() && !c.starts_with('.'));
        assert!(!c.contains(['/', '\\', '\0']));
        assert!(!c.bytes().any(|b| b < 0x20 || b == 0x7f));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_encoding_gzip() {
        let yes = |v: &str| accepts_gzip(v.as_bytes());
        assert!(yes("gzip, deflate, br, zstd"), "Chromium's");
        assert!(yes("GZIP"));
        assert!(yes("x-gzip;q=0.5"));
        assert!(yes("*"));
        assert!(yes("br, *;q=0.1"));
        assert!(!yes(""));
        assert!(!yes("identity"));
        assert!(!yes("gzip;q=0"));
        assert!(!yes("gzip; q=0.000, br"));
        assert!(!yes("*, gzip;q=0"), "named beats the wildcard");
        assert!(!yes("deflate, *;q=0"));
        let r = complete("GET / HTTP/1.1\r\nAccept-Encoding: br\r\nAccept-Encoding: gzip\r\n\r\n");
        assert!(r.headers.accepts_gzip(), "fields combine");
        assert!(
            complete("GET / HTTP/1.1\r\n\r\n").headers.accepts_gzip(),
            "no field: any coding"
        );
        assert!(
            !complete("GET / HTTP/1.1\r\nAccept-Encoding: identity\r\n\r\n")
                .headers
                .accepts_gzip()
        );
        assert!(
            !complete("GET / HTTP/1.1\r\nAccept-Encoding:\r\n\r\n")
                .headers
                .accepts_gzip(),
            "empty: none"
        );
    }

    fn complete(s: &str) -> Request {
        match parse_head(s.as_bytes()) {
            Ok(Status::Complete(r)) => r,
            other => panic!("{s:?}: {other:?}"),
        }
    }

    fn err(s: &[u8]) -> Error {
        match parse_head(s) {
            Err(e) => e,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(s)),
        }
    }

    #[test]
    fn golden_get() {
        let s = "GET /provisioning/0004f2003039.cfg?x=1 HTTP/1.1\r\nHost: pbx:8080\r\n\
                 User-Agent: Yealink SIP-T46S 66.86.0.15\r\nRange: bytes=0-99\r\n\
                 If-None-Match: \"a\"\r\nIf-None-Match: \"b\"\r\n\
                 If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nIf-Range: \"a\"\r\n\r\nNEXT";
        let r = complete(s);
        assert_eq!(r.method, Method::Get);
        assert_eq!(r.version, Version::Http11);
        assert_eq!(r.path.as_str(), "/provisioning/0004f2003039.cfg");
        assert_eq!(r.head_len, s.len() - 4);
        assert_eq!(r.headers.host(), Some("pbx:8080"));
        assert_eq!(r.headers.user_agent(), Some("Yealink SIP-T46S 66.86.0.15"));
        assert_eq!(r.headers.range(), Some("bytes=0-99"));
        assert_eq!(r.headers.if_range(), Some("\"a\""));
        assert_eq!(r.headers.if_none_match(), Some("\"a\", \"b\""));
        assert_eq!(
            r.headers.if_modified_since(),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        assert!(r.keep_alive());
    }

    #[test]
    fn methods_versions_keepalive() {
        let r = complete("HEAD / HTTP/1.0\r\n\r\n");
        assert_eq!(
            (r.method, r.version, r.keep_alive()),
            (Method::Head, Version::Http10, false)
        );
        let r = complete("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(r.keep_alive());
        let r = complete("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n");
        assert!(!r.keep_alive());
        assert_eq!(complete("POST /x HTTP/1.1\r\n\r\n").method, Method::Post);
        for m in ["PUT", "DELETE", "OPTIONS", "get", "post", "PROPFIND"] {
            let r = complete(&format!("{m} /x HTTP/1.1\r\n\r\n"));
            assert_eq!(r.method, Method::Other, "{m}");
        }
        // Bare LF line endings are accepted (httparse is lenient there).
        assert_eq!(complete("GET /a HTTP/1.1\nHost: x\n\n").path.as_str(), "/a");
    }

    #[test]
    fn partial() {
        let full = b"GET /provisioning/a.cfg HTTP/1.1\r\nHost: x\r\n\r\n";
        for i in 0..full.len() {
            assert_eq!(parse_head(&full[..i]), Ok(Status::Partial), "prefix {i}");
        }
        assert!(matches!(parse_head(full), Ok(Status::Complete(_))));
    }

    #[test]
    fn every_error() {
        assert_eq!(err(b"GET\r\n\r\n"), Error::Syntax);
        assert_eq!(err(b"GET /a HTTP/1.1\r\nBad Header\r\n\r\n"), Error::Syntax);
        assert_eq!(err(b"GET /a HTTP/2.0\r\n\r\n"), Error::Syntax);
        assert_eq!(err(b"GET /a FOO/1.1\r\n\r\n"), Error::Syntax);
        assert_eq!(err(b"\x00\x01\x02 / HTTP/1.1\r\n\r\n"), Error::Syntax);
        assert_eq!(
            err(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
            Error::Syntax
        );
        assert_eq!(
            err(b"GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            Error::Syntax
        );
        assert_eq!(err(b"GET /a HTTP/1.1\r\nX: a\r\n b\r\n\r\n"), Error::Syntax);
        assert_eq!(
            err(b"GET /../etc/passwd HTTP/1.1\r\n\r\n"),
            Error::Path(PathError::DotComponent)
        );
        assert_eq!(
            err(b"OPTIONS * HTTP/1.1\r\n\r\n"),
            Error::Path(PathError::NotOriginForm)
        );
        assert_eq!(
            err(b"GET /a HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            Error::Framing
        );
        assert_eq!(
            err(b"GET /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            Error::Framing
        );
        assert_eq!(
            err(b"GET /a HTTP/1.1\r\nContent-Length: +5\r\n\r\n"),
            Error::Framing
        );
        assert_eq!(
            err(b"GET /a HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            Error::Framing
        );
        assert_eq!(
            err(b"GET /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Error::Framing
        );
        assert_eq!(
            err(b"GET /a HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Error::Framing
        );
        assert_eq!(
            err(b"GET /a HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Error::Framing
        );
        assert_eq!(
            err(b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Error::Chunked
        );
        assert_eq!(
            err(b"POST /a HTTP/1.1\r\nContent-Length: 1025\r\n\r\n"),
            Error::BodyTooLarge
        );
        let r = complete("GET /a HTTP/1.1\r\nContent-Length: 1024\r\nContent-Length: 1024\r\n\r\n");
        assert_eq!(r.headers.content_length, 1024);
        for e in [
            Error::Syntax,
            Error::Version,
            Error::Framing,
            Error::Path(PathError::ControlByte),
        ] {
            assert_eq!(e.status(), 400);
        }
        assert_eq!(Error::HeadTooLarge.status(), 431);
        assert_eq!(Error::TooManyHeaders.status(), 431);
        assert_eq!(Error::BodyTooLarge.status(), 413);
    }

    #[test]
    fn limits() {
        let lim = Limits::default();
        // Exactly at the byte limit: fine.
        let base = "GET /a HTTP/1.1\r\nX: \r\n\r\n";
        let pad = "y".repeat(lim.max_head_bytes - base.len());
        let at = format!("GET /a HTTP/1.1\r\nX: {pad}\r\n\r\n");
        assert_eq!(at.len(), lim.max_head_bytes);
        assert!(matches!(parse_head(at.as_bytes()), Ok(Status::Complete(_))));
        let over = format!("GET /a HTTP/1.1\r\nX: {pad}y\r\n\r\n");
        assert_eq!(parse_head(over.as_bytes()), Err(Error::HeadTooLarge));
        // An endless head with no terminator: Partial until the limit, then 431.
        let endless = vec![b'a'; 100];
        let mut s = b"GET /a HTTP/1.1\r\nX: ".to_vec();
        while s.len() <= lim.max_head_bytes {
            assert_eq!(parse_head(&s), Ok(Status::Partial));
            s.extend_from_slice(&endless);
        }
        assert_eq!(parse_head(&s), Err(Error::HeadTooLarge));
        // Header count.
        let mut s = String::from("GET /a HTTP/1.1\r\n");
        for i in 0..64 {
            s.push_str(&format!("X{i}: v\r\n"));
        }
        assert!(matches!(
            parse_head(format!("{s}\r\n").as_bytes()),
            Ok(Status::Complete(_))
        ));
        s.push_str("X64: v\r\n\r\n");
        assert_eq!(parse_head(s.as_bytes()), Err(Error::TooManyHeaders));
        // Configurable, and capped.
        let small = Limits {
            max_headers: 1,
            max_head_bytes: 64,
            ..lim
        };
        assert_eq!(
            parse_head_with(b"GET /a HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", &small),
            Err(Error::TooManyHeaders)
        );
        let huge = Limits {
            max_headers: 100_000,
            ..lim
        };
        assert!(parse_head_with(s.as_bytes(), &huge).is_ok());
        // Long User-Agent values are cut, not refused.
        let ua = "u".repeat(1000);
        let r = complete(&format!("GET /a HTTP/1.1\r\nUser-Agent: {ua}\r\n\r\n"));
        assert_eq!(
            r.headers.user_agent().map(|u| u.len()),
            Some(MAX_KEPT_VALUE)
        );
    }

    /// 20,000 seeded pseudo-random inputs through the fuzz entry point: raw bytes, and
    /// golden requests mutated with HTTP/path-significant tokens.
    #[test]
    fn seeded_fuzz() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let golden: &[&[u8]] = &[
            b"GET /provisioning/0004f2003039.cfg HTTP/1.1\r\nHost: a\r\nRange: bytes=0-9\r\n\r\n",
            b"HEAD /provisioning/t/a.xml HTTP/1.0\r\nIf-None-Match: \"x\"\r\n\r\n",
            b"GET /a HTTP/1.1\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nIf-Range: \"x\"\r\nRange: bytes=-5\r\n\r\n",
            b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
        ];
        let tokens: &[&[u8]] = &[
            b"%",
            b"%2e",
            b"%2E%2e",
            b"%2f",
            b"%5c",
            b"%00",
            b"%25",
            b"..",
            b".",
            b"/",
            b"//",
            b"\\",
            b"\0",
            b"\r\n",
            b"\n",
            b" ",
            b":",
            b",",
            b"-",
            b"=",
            b"bytes=",
            b"\"",
            b"W/",
            b"%ff",
            b"\xc3\xa9",
            b"?",
            b"#",
            b"Content-Length: 99\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Range: bytes=",
            b"18446744073709551616",
        ];
        let mut accepted = 0;
        for i in 0..20_000u32 {
            let mut v: Vec<u8> = if i % 4 == 0 {
                let n = (rnd() % 300) as usize;
                (0..n).map(|_| rnd() as u8).collect()
            } else {
                golden[(rnd() % golden.len() as u64) as usize].to_vec()
            };
            for _ in 0..(rnd() % 6) {
                let pos = if v.is_empty() {
                    0
                } else {
                    (rnd() % v.len() as u64) as usize
                };
                match rnd() % 3 {
                    0 => {
                        let t = tokens[(rnd() % tokens.len() as u64) as usize];
                        v.splice(pos..pos, t.iter().copied());
                    }
                    1 if !v.is_empty() => {
                        v[pos] = rnd() as u8;
                    }
                    _ => {
                        let end = (pos + (rnd() % 8) as usize).min(v.len());
                        v.drain(pos..end);
                    }
                }
            }
            check_invariants(&v);
            accepted += usize::from(matches!(parse_head(&v), Ok(Status::Complete(_))));
            // Every prefix is also a valid (partial) input.
            if i % 50 == 0 {
                for k in 0..v.len() {
                    check_invariants(&v[..k]);
                }
            }
        }
        // The mutations must keep a good share valid, or the invariants go unexercised.
        assert!(accepted > 2_000, "only {accepted} accepted");
    }
}
