//! SIP plug-and-play (multicast `ua-profile` SUBSCRIBE, RFC 6080).
//!
//! Code map:
//! - This module: the PURE SIP message codec ([`parse`], [`Message`]), the
//!   builders of the `200 OK` and the `NOTIFY`, and MAC extraction
//!   ([`device_mac`]).
//! - [`responder`]: the PURE responder state machine (retransmission window,
//!   bounded memory).
//!
//! Invariant: nothing here does I/O or reads a clock; [`parse`] never panics
//! on any input (see the seeded random test and `fuzz/fuzz_targets/sip_message.rs`).

pub mod responder;

use std::fmt;

use crate::model::Mac;

/// Largest datagram the codec accepts.
pub const MAX_MESSAGE: usize = 65_535;
/// Most header fields a message may have.
pub const MAX_HEADERS: usize = 128;

/// Why a datagram is not a SIP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    TooLong,
    NoHeaderEnd,
    NotUtf8,
    BadStartLine,
    BadHeader,
    TooManyHeaders,
    BadContentLength,
    ShortBody,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Error::TooLong => "message too long",
            Error::NoHeaderEnd => "no empty line after the headers",
            Error::NotUtf8 => "headers are not UTF-8",
            Error::BadStartLine => "bad start line",
            Error::BadHeader => "bad header line",
            Error::TooManyHeaders => "too many headers",
            Error::BadContentLength => "bad Content-Length",
            Error::ShortBody => "body shorter than Content-Length",
        };
        f.write_str(s)
    }
}

impl std::error::Error for Error {}

/// The first line of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, uri: String },
    Response { code: u16, reason: String },
}

/// A parsed message. Header names are stored in their full canonical form
/// (compact forms expanded); values are trimmed, folded lines joined by one
/// space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    /// The first value of a header, by any spelling of its name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    /// Every value of a header, in order.
    pub fn headers_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let canon = canonical(name);
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&canon))
            .map(|(_, v)| v.as_str())
    }

    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }
}

/// The full name of a header given in any case or its compact form.
pub fn canonical(name: &str) -> String {
    const COMPACT: &[(&str, &str)] = &[
        ("v", "Via"),
        ("f", "From"),
        ("t", "To"),
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("e", "Content-Encoding"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("o", "Event"),
        ("k", "Supported"),
        ("s", "Subject"),
    ];
    const FULL: &[&str] = &[
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Encoding",
        "Content-Length",
        "Content-Type",
        "Event",
        "Expires",
        "Max-Forwards",
        "Accept",
        "User-Agent",
        "Subscription-State",
    ];
    if let Some((_, full)) = COMPACT.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) {
        return (*full).to_string();
    }
    if let Some(full) = FULL.iter().find(|f| f.eq_ignore_ascii_case(name)) {
        return (*full).to_string();
    }
    name.to_string()
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

/// Parses one datagram. Never panics.
pub fn parse(bytes: &[u8]) -> Result<Message, Error> {
    if bytes.len() > MAX_MESSAGE {
        return Err(Error::TooLong);
    }
    // Leading CRLFs (keep-alives) are allowed before the start line.
    let mut start = 0;
    while start < bytes.len() && (bytes[start] == b'\r' || bytes[start] == b'\n') {
        start += 1;
    }
    let bytes = &bytes[start..];
    let (head_end, body_start) = header_end(bytes).ok_or(Error::NoHeaderEnd)?;
    let head = std::str::from_utf8(&bytes[..head_end]).map_err(|_| Error::NotUtf8)?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().ok_or(Error::BadStartLine)?;
    let start = start_line(first)?;
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // Folding: continues the previous header's value.
            let (_, value) = headers.last_mut().ok_or(Error::BadHeader)?;
            let more = line.trim_matches([' ', '\t']);
            if !more.is_empty() {
                if !value.is_empty() {
                    value.push(' ');
                }
                value.push_str(more);
            }
            continue;
        }
        let (name, value) = line.split_once(':').ok_or(Error::BadHeader)?;
        let name = name.trim_matches([' ', '\t']);
        if !is_token(name) {
            return Err(Error::BadHeader);
        }
        if headers.len() >= MAX_HEADERS {
            return Err(Error::TooManyHeaders);
        }
        headers.push((canonical(name), value.trim_matches([' ', '\t']).to_string()));
    }
    let rest = &bytes[body_start..];
    let body = match headers.iter().find(|(n, _)| n == "Content-Length") {
        Some((_, v)) => {
            let n: usize = v.parse().map_err(|_| Error::BadContentLength)?;
            rest.get(..n).ok_or(Error::ShortBody)?.to_vec()
        }
        // Over UDP the body is the rest of the datagram (RFC 3261 18.3).
        None => rest.to_vec(),
    };
    Ok(Message {
        start,
        headers,
        body,
    })
}

/// Where the header block ends and the body starts (CRLFCRLF, or bare LFs).
fn header_end(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            match bytes.get(i + 1) {
                Some(b'\n') => return Some((i, i + 2)),
                Some(b'\r') if bytes.get(i + 2) == Some(&b'\n') => return Some((i, i + 3)),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

fn start_line(line: &str) -> Result<StartLine, Error> {
    let mut parts = line.splitn(3, ' ');
    let a = parts.next().unwrap_or_default();
    let b = parts.next().ok_or(Error::BadStartLine)?;
    let c = parts.next().ok_or(Error::BadStartLine)?;
    if a.eq_ignore_ascii_case("SIP/2.0") {
        let code: u16 = b.parse().map_err(|_| Error::BadStartLine)?;
        if !(100..=699).contains(&code) || b.len() != 3 {
            return Err(Error::BadStartLine);
        }
        return Ok(StartLine::Response {
            code,
            reason: c.to_string(),
        });
    }
    if !is_token(a) || b.is_empty() || !c.eq_ignore_ascii_case("SIP/2.0") {
        return Err(Error::BadStartLine);
    }
    Ok(StartLine::Request {
        method: a.to_string(),
        uri: b.to_string(),
    })
}

/// The URI of a name-addr or addr-spec header value (`"x" <sip:a@b>;tag=1`).
pub fn header_uri(value: &str) -> &str {
    if let Some(open) = value.find('<') {
        let rest = &value[open + 1..];
        return rest.split('>').next().unwrap_or_default();
    }
    value.split(';').next().unwrap_or_default().trim()
}

/// A parameter of a header value outside the `<...>` URI (`tag`, `branch`).
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let params = match value.rfind('>') {
        Some(close) => &value[close + 1..],
        None => value.split_once(';').map_or("", |(_, p)| p),
    };
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The MAC in the user part of a PnP URI: `sip:MAC%3a00135E874B49@…`,
/// `sip:MAC0015657322ff@…`, `sip:MAC=…@`, `sip:MAC:…@` (any case).
pub fn uri_mac(uri: &str) -> Option<Mac> {
    let uri = uri.trim();
    let rest = strip_prefix_ci(uri, "sips:").or_else(|| strip_prefix_ci(uri, "sip:"))?;
    let user = rest.split_once('@')?.0;
    let user = percent_decode(user)?;
    let digits = strip_prefix_ci(&user, "MAC")?;
    let digits = digits.strip_prefix([':', '=']).unwrap_or(digits);
    if digits.len() != 12 && digits.len() != 17 {
        return None;
    }
    Mac::parse(digits).ok()
}

/// The device MAC of a PnP SUBSCRIBE: from the Request-URI, else From, else To.
pub fn device_mac(m: &Message) -> Option<Mac> {
    let uri = match &m.start {
        StartLine::Request { uri, .. } => Some(uri.as_str()),
        StartLine::Response { .. } => None,
    };
    uri.and_then(uri_mac)
        .or_else(|| m.header("From").map(header_uri).and_then(uri_mac))
        .or_else(|| m.header("To").map(header_uri).and_then(uri_mac))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The `200 OK` to a SUBSCRIBE: Via(s), From, To (with `to_tag` added if it
/// has none), Call-ID and CSeq echoed; `Expires: 0`, `Content-Length: 0`.
pub fn ok_response(request: &Message, to_tag: &str) -> Vec<u8> {
    let mut out = String::from("SIP/2.0 200 OK\r\n");
    for via in request.headers_named("Via") {
        out.push_str(&format!("Via: {via}\r\n"));
    }
    let from = request.header("From").unwrap_or_default();
    out.push_str(&format!("From: {from}\r\n"));
    let to = request.header("To").unwrap_or_default();
    if header_param(to, "tag").is_some() {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        out.push_str(&format!("To: {to};tag={to_tag}\r\n"));
    }
    for name in ["Call-ID", "CSeq"] {
        out.push_str(&format!(
            "{name}: {}\r\n",
            request.header(name).unwrap_or_default()
        ));
    }
    out.push_str("Expires: 0\r\nContent-Length: 0\r\n\r\n");
    out.into_bytes()
}

/// What a NOTIFY carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify<'a> {
    /// Request-URI (the subscriber's Contact, else its From URI).
    pub uri: &'a str,
    /// Our address as `host:port`, for Via and Contact.
    pub local: &'a str,
    pub branch: &'a str,
    pub call_id: &'a str,
    pub cseq: u32,
    /// From: the SUBSCRIBE's To URI with our tag.
    pub from_uri: &'a str,
    pub from_tag: &'a str,
    /// To: the SUBSCRIBE's From (URI and tag).
    pub to: &'a str,
    pub url: &'a str,
}

/// The NOTIFY carrying the provisioning URL.
pub fn notify(n: &Notify<'_>) -> Vec<u8> {
    let mut out = format!("NOTIFY {} SIP/2.0\r\n", n.uri);
    out.push_str(&format!(
        "Via: SIP/2.0/UDP {};branch={};rport\r\n",
        n.local, n.branch
    ));
    out.push_str("Max-Forwards: 70\r\n");
    out.push_str(&format!("From: <{}>;tag={}\r\n", n.from_uri, n.from_tag));
    out.push_str(&format!("To: {}\r\n", n.to));
    out.push_str(&format!("Call-ID: {}\r\n", n.call_id));
    out.push_str(&format!("CSeq: {} NOTIFY\r\n", n.cseq));
    out.push_str(&format!("Contact: <sip:{}>\r\n", n.local));
    out.push_str("Event: ua-profile\r\n");
    out.push_str("Subscription-State: terminated;reason=timeout\r\n");
    out.push_str("Content-Type: application/url\r\n");
    out.push_str(&format!("Content-Length: {}\r\n\r\n", n.url.len()));
    out.push_str(n.url);
    out.into_bytes()
}

#[cfg(test)]
mod tests;
