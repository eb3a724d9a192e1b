//! Response decisions and heads (pure): conditional requests, Range, Content-Type, and the
//! bytes of a response head. No input is ever reflected into a response.

use super::request::{Headers, Method};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// What the server knows about the representation it is about to send.
#[derive(Clone, Copy, Debug)]
pub struct Entity<'a> {
    pub len: u64,
    /// A full entity-tag including quotes, e.g. `"5f3a-2000"`.
    pub etag: Option<&'a str>,
    pub mtime: Option<SystemTime>,
    pub content_type: &'static str,
}

/// An extension (at most 8 bytes, lower case) as the key [`content_type`] matches on.
const fn ext(e: &[u8]) -> u64 {
    let mut k = 0u64;
    let mut i = e.len();
    while i > 0 {
        i -= 1;
        k = k << 8 | e[i] as u64;
    }
    k
}

/// Content-Type by file extension (case-insensitive); `application/octet-stream` otherwise.
/// `file_name` may be a whole path: an extension holding a `/` matches nothing.
pub fn content_type(file_name: &str) -> &'static str {
    const OCTET: &str = "application/octet-stream";
    // The extension after the last `.`, read backwards into a u64 (lower-cased): no
    // allocation, no string compares.
    let mut key = 0u64;
    let mut rest = file_name.as_bytes();
    let mut n = 0;
    loop {
        let Some((&c, head)) = rest.split_last() else {
            return OCTET;
        };
        if c == b'.' {
            break;
        }
        n += 1;
        if n > 8 {
            return OCTET;
        }
        key = key << 8 | u64::from(c.to_ascii_lowercase());
        rest = head;
    }
    const XML: u64 = ext(b"xml");
    const CFG: u64 = ext(b"cfg");
    const CONF: u64 = ext(b"conf");
    const INI: u64 = ext(b"ini");
    const TXT: u64 = ext(b"txt");
    const BOOT: u64 = ext(b"boot");
    const INF: u64 = ext(b"inf");
    const JSON: u64 = ext(b"json");
    const HTM: u64 = ext(b"htm");
    const HTML: u64 = ext(b"html");
    const ZIP: u64 = ext(b"zip");
    const TAR: u64 = ext(b"tar");
    const GZ: u64 = ext(b"gz");
    const TGZ: u64 = ext(b"tgz");
    const PEM: u64 = ext(b"pem");
    const CRT: u64 = ext(b"crt");
    const CER: u64 = ext(b"cer");
    const PNG: u64 = ext(b"png");
    const JPG: u64 = ext(b"jpg");
    const JPEG: u64 = ext(b"jpeg");
    const BMP: u64 = ext(b"bmp");
    const WAV: u64 = ext(b"wav");
    match key {
        XML => "application/xml",
        CFG | CONF | INI | TXT | BOOT | INF => "text/plain",
        JSON => "application/json",
        HTM | HTML => "text/html",
        ZIP => "application/zip",
        TAR => "application/x-tar",
        GZ | TGZ => "application/gzip",
        PEM | CRT | CER => "application/x-x509-ca-cert",
        PNG => "image/png",
        JPG | JPEG => "image/jpeg",
        BMP => "image/bmp",
        WAV => "audio/wav",
        // bin, rom, ld, img, fw...: firmware blobs.
        _ => OCTET,
    }
}

/// An entity-tag with its quotes, held inline (no allocation; at most 40 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ETag {
    len: u8,
    bytes: [u8; 40],
}

impl ETag {
    /// `"<a hex>-<b hex>"`, `a` zero-padded to 16 digits when `pad`.
    fn of(a: u64, b: u64, pad: bool) -> ETag {
        let mut t = ETag {
            len: 0,
            bytes: [0; 40],
        };
        t.push(b'"');
        t.hex(a, if pad { 16 } else { 1 });
        t.push(b'-');
        t.hex(b, 1);
        t.push(b'"');
        t
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.bytes.get_mut(usize::from(self.len)) {
            *slot = b;
            self.len += 1;
        }
    }

    fn hex(&mut self, v: u64, min_digits: u32) {
        let digits = (64 - v.leading_zeros()).div_ceil(4).max(min_digits) as usize;
        let start = usize::from(self.len);
        // At most 16 digits; `of` pushes at most 35 bytes into 40.
        let Some(slots) = self.bytes.get_mut(start..start + digits) else {
            return;
        };
        let mut v = v;
        for slot in slots.iter_mut().rev() {
            *slot = b"0123456789abcdef"[(v & 0xf) as usize];
            v >>= 4;
        }
        self.len += digits as u8;
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Debug for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ETag {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A strong ETag for an in-memory body: FNV-1a 64 of the bytes and the length. Reads the
/// whole body: compute it once per body, not per request.
pub fn etag_for_bytes(body: &[u8]) -> ETag {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in body {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    ETag::of(h, body.len() as u64, true)
}

/// nginx-style ETag for a file: `"<mtime secs hex>-<len hex>"`.
pub fn etag_for_file(len: u64, mtime: Option<SystemTime>) -> ETag {
    let secs = mtime
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    ETag::of(secs, len, false)
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
    fn strip(t: &str) -> &str {
        t.trim().trim_start_matches("W/")
    }
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
    if let Some(inm) = h.if_none_match() {
        return e.etag.is_some_and(|tag| none_match_hits(inm, tag));
    }
    if let (Some(ims), Some(mtime)) = (h.if_modified_since(), e.mtime)
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
    let Some(range) = h.range() else {
        return full;
    };
    if h.if_range().is_some_and(|v| !if_range_holds(v, e)) {
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
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The `Date`/`Last-Modified` value (IMF-fixdate) of `secs` since the epoch (clamped to
/// 9999-12-31) into 29 bytes, without `fmt` (it is in every response head).
/// (year, month 1-12, day 1-31) of `days` since 1970-01-01, proleptic
/// Gregorian (H. Hinnant's civil-from-days, on days since 0000-03-01).
pub fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mon = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(mon <= 2), mon, d)
}

pub fn http_date_bytes(secs: u64) -> [u8; 29] {
    let secs = secs.min(253_402_300_799);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    // 1970-01-01 was a Thursday.
    let wd = &b"ThuFriSatSunMonTueWed"[(days % 7) as usize * 3..][..3];
    let (y, mon, d) = civil_from_days(days);
    let mn = &b"JanFebMarAprMayJunJulAugSepOctNovDec"[(mon as usize - 1) * 3..][..3];
    let mut o = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    o[..3].copy_from_slice(wd);
    let two = |o: &mut [u8; 29], at: usize, v: u64| {
        o[at] = b'0' + (v / 10 % 10) as u8;
        o[at + 1] = b'0' + (v % 10) as u8;
    };
    two(&mut o, 5, d);
    o[8..11].copy_from_slice(mn);
    two(&mut o, 12, y / 100);
    two(&mut o, 14, y);
    two(&mut o, 17, h);
    two(&mut o, 20, m);
    two(&mut o, 23, s);
    o
}

/// Appends `v` in decimal.
fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
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
    write_entity_head_with(out, p, e, date, conn, &[]);
}

/// [`write_entity_head`] with extra header lines (`Content-Encoding`,
/// security headers); `extra` holds `(name, value)` pairs the caller
/// built, never client text.
pub fn write_entity_head_with(
    out: &mut Vec<u8>,
    p: &Plan,
    e: &Entity<'_>,
    date: &str,
    conn: Conn,
    extra: &[(&str, &str)],
) {
    // Room for the whole head at once, and few, large pieces: each line's CRLF goes with
    // the next line's name.
    out.reserve(384);
    let start: &[u8] = match p.status {
        200 => b"HTTP/1.1 200 OK\r\nDate: ",
        206 => b"HTTP/1.1 206 Partial Content\r\nDate: ",
        304 => b"HTTP/1.1 304 Not Modified\r\nDate: ",
        416 => b"HTTP/1.1 416 Range Not Satisfiable\r\nDate: ",
        other => {
            out.extend_from_slice(b"HTTP/1.1 ");
            push_u64(out, u64::from(other));
            out.push(b' ');
            out.extend_from_slice(reason(other).as_bytes());
            b"\r\nDate: "
        }
    };
    out.extend_from_slice(start);
    out.extend_from_slice(date.as_bytes());
    if p.status != 304 {
        out.extend_from_slice(b"\r\nAccept-Ranges: bytes");
    }
    if let Some(tag) = e.etag {
        out.extend_from_slice(b"\r\nETag: ");
        out.extend_from_slice(tag.as_bytes());
    }
    if let Some(m) = e.mtime {
        let secs = secs(m.max(UNIX_EPOCH)).unwrap_or(0);
        out.extend_from_slice(b"\r\nLast-Modified: ");
        out.extend_from_slice(&http_date_bytes(secs));
    }
    match p.status {
        304 => {}
        416 => {
            out.extend_from_slice(b"\r\nContent-Range: bytes */");
            push_u64(out, e.len);
            out.extend_from_slice(b"\r\nContent-Length: 0");
        }
        206 => {
            out.extend_from_slice(b"\r\nContent-Type: ");
            out.extend_from_slice(e.content_type.as_bytes());
            out.extend_from_slice(b"\r\nContent-Range: bytes ");
            push_u64(out, p.start);
            out.push(b'-');
            push_u64(out, p.end - 1);
            out.push(b'/');
            push_u64(out, e.len);
            out.extend_from_slice(b"\r\nContent-Length: ");
            push_u64(out, p.body_len());
        }
        _ => {
            out.extend_from_slice(b"\r\nContent-Type: ");
            out.extend_from_slice(e.content_type.as_bytes());
            out.extend_from_slice(b"\r\nContent-Length: ");
            push_u64(out, p.body_len());
        }
    }
    for (name, value) in extra {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(match conn {
        Conn::KeepAlive11 => b"\r\n\r\n",
        Conn::KeepAlive10 => b"\r\nConnection: keep-alive\r\n\r\n",
        Conn::Close => b"\r\nConnection: close\r\n\r\n",
    });
}

/// Ends a head: the `Connection` line `conn` needs, then the blank line.
pub fn write_conn(out: &mut Vec<u8>, conn: Conn) {
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
        406 => b"Not Acceptable: send Accept-Encoding: gzip\n",
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
    use std::time::Duration;

    #[test]
    fn every_status_we_send_has_its_reason_phrase() {
        // RFC 9110 section 15 (429: RFC 6585 section 4); the management API
        // answered "429 Unknown" to a lockout.
        for status in [
            200, 206, 304, 400, 401, 403, 404, 405, 408, 409, 411, 413, 416, 422, 429, 431, 500,
            503,
        ] {
            assert_ne!(reason(status), "Unknown", "{status}");
        }
    }

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

    /// Headers from (name, value) pairs.
    fn hdr(pairs: &[(&str, &str)]) -> Headers {
        let mut h = Headers::default();
        for (name, value) in pairs {
            h.add(name, value.as_bytes()).unwrap_or(());
        }
        h
    }

    #[test]
    fn conditional() {
        let ent = e(10);
        const SAME: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
        let table: &[(&[(&str, &str)], u16)] = &[
            (&[], 200),
            (&[("If-None-Match", "\"abc\"")], 304),
            (&[("if-none-match", "\"abc\"")], 304),
            (&[("if-none-match", "W/\"abc\"")], 304),
            (&[("if-none-match", "\"x\", \"abc\"")], 304),
            (&[("if-none-match", "*")], 304),
            (&[("if-none-match", "\"abd\"")], 200),
            (&[("if-modified-since", SAME)], 304),
            (
                &[("if-modified-since", "Sunday, 06-Nov-94 08:49:37 GMT")],
                304,
            ),
            (&[("if-modified-since", "Sun Nov  6 08:49:37 1994")], 304),
            (
                &[("if-modified-since", "Mon, 07 Nov 1994 08:49:37 GMT")],
                304,
            ),
            (
                &[("if-modified-since", "Sun, 06 Nov 1994 08:49:36 GMT")],
                200,
            ),
            (&[("if-modified-since", "garbage")], 200),
            // If-None-Match wins over If-Modified-Since.
            (
                &[("if-none-match", "\"other\""), ("if-modified-since", SAME)],
                200,
            ),
        ];
        for (headers, want) in table {
            let got = plan(Method::Get, &hdr(headers), &ent).status;
            assert_eq!(got, *want, "{headers:?}");
        }
        // HEAD: same status, never a body.
        let p = plan(Method::Head, &hdr(&[("range", "bytes=0-1")]), &ent);
        assert_eq!((p.status, p.send_body, p.body_len()), (200, false, 10));
        let p = plan(Method::Head, &hdr(&[("if-none-match", "\"abc\"")]), &ent);
        assert_eq!((p.status, p.send_body), (304, false));
        // No validators at all: never 304.
        let bare = Entity {
            etag: None,
            mtime: None,
            ..ent
        };
        let hh = hdr(&[("if-none-match", "\"abc\"")]);
        assert_eq!(plan(Method::Get, &hh, &bare).status, 200);
    }

    #[test]
    fn range_plans_and_if_range() {
        let ent = e(10);
        let p = plan(Method::Get, &hdr(&[("range", "bytes=2-4")]), &ent);
        assert_eq!((p.status, p.start, p.end, p.send_body), (206, 2, 5, true));
        let p = plan(Method::Get, &hdr(&[("range", "bytes=10-")]), &ent);
        assert_eq!((p.status, p.send_body), (416, false));
        let with_ir = |ir: &str| {
            let h = hdr(&[("range", "bytes=2-4"), ("if-range", ir)]);
            plan(Method::Get, &h, &ent).status
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
            &hdr(&[("range", "bytes=2-4"), ("if-none-match", "\"abc\"")]),
            &ent,
        );
        assert_eq!(p.status, 304);
    }

    #[test]
    fn heads() {
        let ent = e(10);
        let date = "Thu, 26 Nov 2026 10:00:00 GMT";
        let mut out = Vec::new();
        let p = plan(Method::Get, &hdr(&[("range", "bytes=-3")]), &ent);
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
        let p = plan(Method::Get, &hdr(&[("range", "bytes=50-")]), &ent);
        write_entity_head(&mut out, &p, &ent, date, Conn::Close);
        let s = String::from_utf8(out).unwrap_or_default();
        assert!(s.starts_with("HTTP/1.1 416 "), "{s}");
        assert!(
            s.contains("Content-Range: bytes */10\r\nContent-Length: 0\r\n"),
            "{s}"
        );
        assert!(s.ends_with("Connection: close\r\n\r\n"));

        let mut out = Vec::new();
        let p = plan(Method::Get, &Headers::default(), &ent);
        write_entity_head(&mut out, &p, &ent, date, Conn::KeepAlive11);
        assert_eq!(
            String::from_utf8(out).unwrap_or_default(),
            "HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 10:00:00 GMT\r\nAccept-Ranges: bytes\r\n\
             ETag: \"abc\"\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain\r\nContent-Length: 10\r\n\r\n"
        );
        let mut out = Vec::new();
        let p = plan(Method::Get, &hdr(&[("If-None-Match", "*")]), &ent);
        write_entity_head(&mut out, &p, &ent, date, Conn::Close);
        assert_eq!(
            String::from_utf8(out).unwrap_or_default(),
            "HTTP/1.1 304 Not Modified\r\nDate: Thu, 26 Nov 2026 10:00:00 GMT\r\n\
             ETag: \"abc\"\r\nLast-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Connection: close\r\n\r\n"
        );

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
            ("a.Cfg", "text/plain"),
            ("x.tar.gz", "application/gzip"),
            ("a.jpeg", "image/jpeg"),
            ("a.", "application/octet-stream"),
            (".xml", "application/xml"),
            ("a.xmlx", "application/octet-stream"),
            ("a.xm", "application/octet-stream"),
            ("a.123456789", "application/octet-stream"),
            ("a.12345678", "application/octet-stream"),
            ("/a.b/c", "application/octet-stream"),
            ("/provisioning/t/a.HTML", "text/html"),
            ("", "application/octet-stream"),
        ] {
            assert_eq!(content_type(n), t, "{n}");
        }
        assert_eq!(etag_for_bytes(b"abc"), etag_for_bytes(b"abc"));
        assert_ne!(etag_for_bytes(b"abc"), etag_for_bytes(b"abd"));
        assert_eq!(
            etag_for_file(0x2000, Some(UNIX_EPOCH + Duration::from_secs(0x5f3a))),
            "\"5f3a-2000\""
        );
        assert_eq!(etag_for_bytes(b"abc"), "\"e71fa2190541574b-3\"");
        assert_eq!(etag_for_file(0, None), "\"0-0\"");
        assert_eq!(
            etag_for_file(
                u64::MAX,
                Some(UNIX_EPOCH + Duration::from_secs(u64::MAX / 4))
            )
            .as_str()
            .len(),
            35
        );
        // The fast date formatter agrees with httpdate.
        let http_date = |t: SystemTime| httpdate::fmt_http_date(t);
        let mut t = 0u64;
        while t < 253_402_300_799 {
            let want = http_date(UNIX_EPOCH + Duration::from_secs(t));
            assert_eq!(
                std::str::from_utf8(&http_date_bytes(t)),
                Ok(want.as_str()),
                "{t}"
            );
            t = t * 3 + 86_399 + t % 7;
        }
        for t in [
            0,
            59,
            951_782_400,
            951_868_799,
            4_107_542_400,
            253_402_300_799,
        ] {
            let want = http_date(UNIX_EPOCH + Duration::from_secs(t));
            assert_eq!(
                std::str::from_utf8(&http_date_bytes(t)),
                Ok(want.as_str()),
                "{t}"
            );
        }
    }
}
