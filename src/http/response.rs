//! Response decisions and heads (pure): conditional requests, Range, Content-Type, and the
//! bytes of a response head. No input is ever reflected into a response.

use super::request::{Headers, Method};
use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the server knows about the representation it is about to send.
#[derive(Clone, Copy, Debug)]
pub struct Entity<'a> {
    pub len: u64,
    /// A full entity-tag including quotes, e.g. `"5f3a-2000"`.
    pub etag: Option<&'a str>,
    pub mtime: Option<SystemTime>,
    pub content_type: &'static str,
}

/// Content-Type by file extension (case-insensitive); `application/octet-stream` otherwise.
pub fn content_type(file_name: &str) -> &'static str {
    let Some((_, ext)) = file_name.rsplit_once('.') else {
        return "application/octet-stream";
    };
    // Lower-cased on the stack: no allocation per request.
    let mut lower = [0u8; 8];
    if ext.len() > lower.len() {
        return "application/octet-stream";
    }
    for (d, s) in lower.iter_mut().zip(ext.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    let ext = std::str::from_utf8(&lower[..ext.len()]).unwrap_or("");
    match ext {
        "xml" => "application/xml",
        "cfg" | "conf" | "ini" | "txt" | "boot" | "inf" => "text/plain",
        "json" => "application/json",
        "htm" | "html" => "text/html",
        "zip" => "application/zip",
        "tar" => "application/x-tar",
        "gz" | "tgz" => "application/gzip",
        "pem" | "crt" | "cer" => "application/x-x509-ca-cert",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "bmp" => "image/bmp",
        "wav" => "audio/wav",
        // bin, rom, ld, img, fw...: firmware blobs.
        _ => "application/octet-stream",
    }
}

/// A strong ETag for an in-memory body: FNV-1a 64 of the bytes and the length.
pub fn etag_for_bytes(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in body {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}-{:x}\"", body.len())
}

/// nginx-style ETag for a file: `"<mtime secs hex>-<len hex>"`.
pub fn etag_for_file(len: u64, mtime: Option<SystemTime>) -> String {
    let secs = mtime
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    format!("\"{secs:x}-{len:x}\"")
}

/// Outcome of a `Range` header against a representation of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// No range, multiple ranges, unknown unit or bad syntax: send everything (RFC 9110 14.2).
    Full,
    /// Inclusive byte range `start..=end`, `end < len`.
    Partial { start: u64, end: u64 },
    /// 416.
    Unsatisfiable,
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Overflowing values are "very large", which is what they mean.
    Some(s.parse().unwrap_or(u64::MAX))
}

/// Parses a single-range `bytes=a-b`, `bytes=a-`, `bytes=-n`.
pub fn parse_range(value: &str, len: u64) -> RangeOutcome {
    let Some((unit, spec)) = value.trim().split_once('=') else {
        return RangeOutcome::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeOutcome::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeOutcome::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        // Suffix: the last n bytes.
        let Some(n) = digits(b) else {
            return RangeOutcome::Full;
        };
        if n == 0 || len == 0 {
            return RangeOutcome::Unsatisfiable;
        }
        let n = n.min(len);
        return RangeOutcome::Partial {
            start: len - n,
            end: len - 1,
        };
    }
    let Some(start) = digits(a) else {
        return RangeOutcome::Full;
    };
    let end = if b.is_empty() {
        u64::MAX
    } else {
        match digits(b) {
            Some(e) if e >= start => e,
            _ => return RangeOutcome::Full,
        }
    };
    if start >= len {
        return RangeOutcome::Unsatisfiable;
    }
    RangeOutcome::Partial {
        start,
        end: end.min(len - 1),
    }
}

/// Weak comparison of `etag` against an `If-None-Match` list (RFC 9110 13.1.2).
pub fn none_match_hits(if_none_match: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let mine = strip(etag);
    if_none_match
        .split(',')
        .any(|t| t.trim() == "*" || strip(t) == mine)
}

fn secs(t: SystemTime) -> Option<u64> {
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Whether `If-None-Match` / `If-Modified-Since` make this a 304 (RFC 9110 13.2.2:
/// If-Modified-Since is ignored when If-None-Match is present).
pub fn not_modified(h: &Headers, e: &Entity<'_>) -> bool {
    if let Some(inm) = &h.if_none_match {
        return e.etag.is_some_and(|tag| none_match_hits(inm, tag));
    }
    if let (Some(ims), Some(mtime)) = (&h.if_modified_since, e.mtime)
        && let Ok(since) = httpdate::parse_http_date(ims)
    {
        return matches!((secs(mtime), secs(since)), (Some(m), Some(s)) if m <= s);
    }
    false
}

fn if_range_holds(value: &str, e: &Entity<'_>) -> bool {
    let v = value.trim();
    if v.starts_with('"') || v.starts_with("W/") {
        // Strong comparison: weak tags never match.
        return !v.starts_with("W/") && e.etag.is_some_and(|t| t == v);
    }
    match (httpdate::parse_http_date(v), e.mtime) {
        (Ok(d), Some(m)) => secs(d).is_some() && secs(d) == secs(m),
        _ => false,
    }
}

/// What to send for a GET/HEAD of an existing entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// 200, 206, 304 or 416.
    pub status: u16,
    /// Byte range of the entity to send (inclusive start, exclusive end).
    pub start: u64,
    pub end: u64,
    /// False for HEAD, 304 and 416.
    pub send_body: bool,
}

impl Plan {
    pub fn body_len(&self) -> u64 {
        self.end - self.start
    }
}

/// Decides status and byte range for `method` (GET or HEAD) on entity `e`.
pub fn plan(method: Method, h: &Headers, e: &Entity<'_>) -> Plan {
    let full = Plan {
        status: 200,
        start: 0,
        end: e.len,
        send_body: method == Method::Get,
    };
    if not_modified(h, e) {
        return Plan {
            status: 304,
            start: 0,
            end: 0,
            send_body: false,
        };
    }
    if method != Method::Get {
        return full;
    }
    let Some(range) = &h.range else {
        return full;
    };
    if h.if_range.as_deref().is_some_and(|v| !if_range_holds(v, e)) {
        return full;
    }
    match parse_range(range, e.len) {
        RangeOutcome::Full => full,
        RangeOutcome::Partial { start, end } => Plan {
            status: 206,
            start,
            end: end + 1,
            send_body: true,
        },
        RangeOutcome::Unsatisfiable => Plan {
            status: 416,
            start: 0,
            end: 0,
            send_body: false,
        },
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// `Date`/`Last-Modified` value (IMF-fixdate).
pub fn http_date(t: SystemTime) -> String {
    HttpDate(t).to_string()
}

/// Displays as [`http_date`] without allocating.
#[derive(Clone, Copy, Debug)]
pub struct HttpDate(pub SystemTime);

impl std::fmt::Display for HttpDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // httpdate rejects times before 1970; clamp instead of failing.
        let t = self.0.max(UNIX_EPOCH);
        let t = t.min(UNIX_EPOCH + Duration::from_secs(253_402_300_799));
        httpdate::HttpDate::from(t).fmt(f)
    }
}

/// Connection handling of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conn {
    /// HTTP/1.1 default: no header.
    KeepAlive11,
    /// HTTP/1.0 client asked for keep-alive: `Connection: keep-alive`.
    KeepAlive10,
    /// `Connection: close`.
    Close,
}

/// Writes the head of a successful (2xx/304/416) response for entity `e` under plan `p`.
pub fn write_entity_head(out: &mut Vec<u8>, p: &Plan, e: &Entity<'_>, date: &str, conn: Conn) {
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nDate: {date}\r\n",
        p.status,
        reason(p.status)
    );
    if p.status != 304 {
        out.extend_from_slice(b"Accept-Ranges: bytes\r\n");
    }
    if let Some(tag) = e.etag {
        let _ = write!(out, "ETag: {tag}\r\n");
    }
    if let Some(m) = e.mtime {
        let _ = write!(out, "Last-Modified: {}\r\n", HttpDate(m));
    }
    match p.status {
        304 => {}
        416 => {
            let _ = write!(
                out,
                "Content-Range: bytes */{}\r\nContent-Length: 0\r\n",
                e.len
            );
        }
        206 => {
            let _ = write!(
                out,
                "Content-Type: {}\r\nContent-Range: bytes {}-{}/{}\r\nContent-Length: {}\r\n",
                e.content_type,
                p.start,
                p.end - 1,
                e.len,
                p.body_len()
            );
        }
        _ => {
            let _ = write!(
                out,
                "Content-Type: {}\r\nContent-Length: {}\r\n",
                e.content_type,
                p.body_len()
            );
        }
    }
    write_conn(out, conn);
}

fn write_conn(out: &mut Vec<u8>, conn: Conn) {
    match conn {
        Conn::KeepAlive11 => out.extend_from_slice(b"\r\n"),
        Conn::KeepAlive10 => out.extend_from_slice(b"Connection: keep-alive\r\n\r\n"),
        Conn::Close => out.extend_from_slice(b"Connection: close\r\n\r\n"),
    }
}

/// The fixed body of an error status: identical for every request (no reflected input).
pub fn error_body(status: u16) -> &'static [u8] {
    match status {
        400 => b"Bad Request\n",
        401 => b"Unauthorized\n",
        403 => b"Forbidden\n",
        404 => b"Not Found\n",
        405 => b"Method Not Allowed\n",
        408 => b"Request Timeout\n",
        413 => b"Content Too Large\n",
        431 => b"Request Header Fields Too Large\n",
        503 => b"Service Unavailable\n",
        _ => b"Error\n",
    }
}

/// Writes a complete error response (head and, unless `head_only`, the fixed body).
pub fn write_error(out: &mut Vec<u8>, status: u16, date: &str, conn: Conn, head_only: bool) {
    write_error_with(out, status, date, conn, head_only, &[]);
}

/// An error response with extra header lines (`WWW-Authenticate: ...`);
/// `extra` holds `(name, value)` pairs the caller built, never client text.
pub fn write_error_with(
    out: &mut Vec<u8>,
    status: u16,
    date: &str,
    conn: Conn,
    head_only: bool,
    extra: &[(&str, &str)],
) {
    let body = error_body(status);
    let _ = write!(
        out,
        "HTTP/1.1 {status} {}\r\nDate: {date}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
        reason(status),
        body.len()
    );
    if status == 405 {
        out.extend_from_slice(b"Allow: GET, HEAD\r\n");
    }
    for (name, value) in extra {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    write_conn(out, conn);
    if !head_only {
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(len: u64) -> Entity<'static> {
        Entity {
            len,
            etag: Some("\"abc\""),
            mtime: Some(UNIX_EPOCH + Duration::from_secs(784_111_777)), // Sun, 06 Nov 1994 08:49:37
            content_type: "text/plain",
        }
    }

    #[test]
    fn ranges() {
        use RangeOutcome::*;
        let p = |s, e| Partial { start: s, end: e };
        let table: &[(&str, u64, RangeOutcome)] = &[
            ("bytes=0-99", 1000, p(0, 99)),
            ("bytes=10-19", 1000, p(10, 19)),
            ("bytes=990-2000", 1000, p(990, 999)),
            ("bytes=999-999", 1000, p(999, 999)),
            ("bytes=500-", 1000, p(500, 999)),
            ("bytes=0-", 1000, p(0, 999)),
            ("bytes=-100", 1000, p(900, 999)),
            ("bytes=-5000", 1000, p(0, 999)),
            ("BYTES = 1-2", 1000, p(1, 2)),
            ("bytes=0-99999999999999999999999", 10, p(0, 9)),
            ("bytes=1000-", 1000, Unsatisfiable),
            ("bytes=1000-1001", 1000, Unsatisfiable),
            ("bytes=99999999999999999999999-", 1000, Unsatisfiable),
            ("bytes=-0", 1000, Unsatisfiable),
            ("bytes=0-", 0, Unsatisfiable),
            ("bytes=-1", 0, Unsatisfiable),
            ("bytes=5-4", 1000, Full),
            ("bytes=0-1,5-6", 1000, Full),
            ("items=0-1", 1000, Full),
            ("bytes=a-b", 1000, Full),
            ("bytes=-", 1000, Full),
            ("bytes=--1", 1000, Full),
            ("bytes=+1-2", 1000, Full),
            ("bytes 0-1", 1000, Full),
            ("", 1000, Full),
        ];
        for (v, len, want) in table {
            assert_eq!(parse_range(v, *len), *want, "{v} of {len}");
        }
    }

    fn hdr(f: impl FnOnce(&mut Headers)) -> Headers {
        let mut h = Headers::default();
        f(&mut h);
        h
    }

    #[test]
    fn conditional() {
        let ent = e(10);
        let h = |f: fn(&mut Headers)| plan(Method::Get, &hdr(f), &ent).status;
        assert_eq!(h(|_| {}), 200);
        assert_eq!(h(|h| h.if_none_match = Some("\"abc\"".into())), 304);
        assert_eq!(h(|h| h.if_none_match = Some("W/\"abc\"".into())), 304);
        assert_eq!(h(|h| h.if_none_match = Some("\"x\", \"abc\"".into())), 304);
        assert_eq!(h(|h| h.if_none_match = Some("*".into())), 304);
        assert_eq!(h(|h| h.if_none_match = Some("\"abd\"".into())), 200);
        const SAME: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(h(|h| h.if_modified_since = Some(SAME.into())), 304);
        assert_eq!(
            h(|h| h.if_modified_since = Some("Sunday, 06-Nov-94 08:49:37 GMT".into())),
            304
        );
        assert_eq!(
            h(|h| h.if_modified_since = Some("Sun Nov  6 08:49:37 1994".into())),
            304
        );
        assert_eq!(
            h(|h| h.if_modified_since = Some("Mon, 07 Nov 1994 08:49:37 GMT".into())),
            304
        );
        assert_eq!(
            h(|h| h.if_modified_since = Some("Sun, 06 Nov 1994 08:49:36 GMT".into())),
            200
        );
        assert_eq!(h(|h| h.if_modified_since = Some("garbage".into())), 200);
        // If-None-Match wins over If-Modified-Since.
        assert_eq!(
            h(|h| {
                h.if_none_match = Some("\"other\"".into());
                h.if_modified_since = Some(SAME.into());
            }),
            200
        );
        // HEAD: same status, never a body.
        let p = plan(
            Method::Head,
            &hdr(|h| h.range = Some("bytes=0-1".into())),
            &ent,
        );
        assert_eq!((p.status, p.send_body, p.body_len()), (200, false, 10));
        let p = plan(
            Method::Head,
            &hdr(|h| h.if_none_match = Some("\"abc\"".into())),
            &ent,
        );
        assert_eq!((p.status, p.send_body), (304, false));
        // No validators at all: never 304.
        let bare = Entity {
            etag: None,
            mtime: None,
            ..ent
        };
        let hh = hdr(|h| {
            h.if_none_match = Some("\"abc\"".into());
        });
        assert_eq!(plan(Method::Get, &hh, &bare).status, 200);
    }

    #[test]
    fn range_plans_and_if_range() {
        let ent = e(10);
        let p = plan(
            Method::Get,
            &hdr(|h| h.range = Some("bytes=2-4".into())),
            &ent,
        );
        assert_eq!((p.status, p.start, p.end, p.send_body), (206, 2, 5, true));
        let p = plan(
            Method::Get,
            &hdr(|h| h.range = Some("bytes=10-".into())),
            &ent,
        );
        assert_eq!((p.status, p.send_body), (416, false));
        let with_ir = |ir: &str| {
            let ir = ir.to_owned();
            plan(
                Method::Get,
                &hdr(|h| {
                    h.range = Some("bytes=2-4".into());
                    h.if_range = Some(ir);
                }),
                &ent,
            )
            .status
        };
        assert_eq!(with_ir("\"abc\""), 206);
        assert_eq!(with_ir("W/\"abc\""), 200);
        assert_eq!(with_ir("\"old\""), 200);
        assert_eq!(with_ir("Sun, 06 Nov 1994 08:49:37 GMT"), 206);
        assert_eq!(with_ir("Sun, 06 Nov 1994 08:49:38 GMT"), 200);
        assert_eq!(with_ir("junk"), 200);
        // Conditional GET beats Range.
        let p = plan(
            Method::Get,
            &hdr(|h| {
                h.range = Some("bytes=2-4".into());
                h.if_none_match = Some("\"abc\"".into());
            }),
            &ent,
        );
        assert_eq!(p.status, 304);
    }

    #[test]
    fn heads() {
        let ent = e(10);
        let date = "Thu, 26 Nov 2026 10:00:00 GMT";
        let mut out = Vec::new();
        let p = plan(
            Method::Get,
            &hdr(|h| h.range = Some("bytes=-3".into())),
            &ent,
        );
        write_entity_head(&mut out, &p, &ent, date, Conn::KeepAlive11);
        let s = String::from_utf8(out).unwrap_or_default();
        assert!(s.starts_with("HTTP/1.1 206 Partial Content\r\n"), "{s}");
        assert!(
            s.contains("\r\nContent-Range: bytes 7-9/10\r\nContent-Length: 3\r\n"),
            "{s}"
        );
        assert!(s.contains("\r\nETag: \"abc\"\r\n"));
        assert!(s.contains("\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
        assert!(s.ends_with("\r\n\r\n") && !s.contains("Connection"));

        let mut out = Vec::new();
        let p = plan(
            Method::Get,
            &hdr(|h| h.range = Some("bytes=50-".into())),
            &ent,
        );
        write_entity_head(&mut out, &p, &ent, date, Conn::Close);
        let s = String::from_utf8(out).unwrap_or_default();
        assert!(s.starts_with("HTTP/1.1 416 "), "{s}");
        assert!(
            s.contains("Content-Range: bytes */10\r\nContent-Length: 0\r\n"),
            "{s}"
        );
        assert!(s.ends_with("Connection: close\r\n\r\n"));

        let mut out = Vec::new();
        let p = plan(Method::Head, &Headers::default(), &ent);
        write_entity_head(&mut out, &p, &ent, date, Conn::KeepAlive10);
        let s = String::from_utf8(out).unwrap_or_default();
        assert!(
            s.contains("Content-Length: 10\r\n") && s.ends_with("Connection: keep-alive\r\n\r\n")
        );

        let mut out = Vec::new();
        write_error(&mut out, 405, date, Conn::KeepAlive11, false);
        let s = String::from_utf8(out).unwrap_or_default();
        assert!(
            s.starts_with("HTTP/1.1 405 Method Not Allowed\r\n")
                && s.contains("Allow: GET, HEAD\r\n")
        );
        assert!(s.ends_with("\r\n\r\nMethod Not Allowed\n"));
        let mut a = Vec::new();
        write_error(&mut a, 404, date, Conn::KeepAlive11, true);
        assert!(a.ends_with(b"Content-Length: 10\r\n\r\n"));
    }

    #[test]
    fn types_and_tags() {
        for (n, t) in [
            ("a.xml", "application/xml"),
            ("A.XML", "application/xml"),
            ("0004f2003039.cfg", "text/plain"),
            ("x.txt", "text/plain"),
            ("fw.bin", "application/octet-stream"),
            ("fw.rom", "application/octet-stream"),
            ("fw.ld", "application/octet-stream"),
            ("fw.zip", "application/zip"),
            ("fw.tar", "application/x-tar"),
            ("noext", "application/octet-stream"),
        ] {
            assert_eq!(content_type(n), t, "{n}");
        }
        assert_eq!(etag_for_bytes(b"abc"), etag_for_bytes(b"abc"));
        assert_ne!(etag_for_bytes(b"abc"), etag_for_bytes(b"abd"));
        assert_eq!(
            etag_for_file(0x2000, Some(UNIX_EPOCH + Duration::from_secs(0x5f3a))),
            "\"5f3a-2000\""
        );
        assert_eq!(
            http_date(UNIX_EPOCH - Duration::from_secs(5)),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
    }
}
