//! A small HTTPS/1.1 client for the redirection services: one request per
//! connection (`Connection: close`), bodies with `Content-Length`, answers
//! read with a size limit and a deadline over the whole exchange.
//!
//! The protocol parts are pure ([`Url::parse`], [`encode_request`],
//! [`parse_response`]); [`HttpsClient::send`] is the adapter (smol TCP and
//! futures-rustls). Trust roots come from a PEM bundle on disk; there are no
//! built-in roots.

use std::sync::Arc;
use std::time::Duration;

use futures_rustls::TlsConnector;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use smol::io::{AsyncReadExt, AsyncWriteExt};

/// Largest answer head plus body accepted.
pub const MAX_RESPONSE: usize = 1 << 20;
/// Most header lines in an answer.
const MAX_HEADERS: usize = 64;

/// An `https://host[:port]/path?query` address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Only `https`; no user info, no fragment.
    pub fn parse(text: &str) -> Result<Url, String> {
        let rest = text
            .strip_prefix("https://")
            .ok_or_else(|| format!("{text:?} is not an https:// address"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!("{text:?} has no usable host"));
        }
        if path.contains('#') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!("{text:?} has a fragment or a control character"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("{text:?} has a bad port"))?,
            ),
            _ => (authority, 443),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        {
            return Err(format!("{text:?} has a bad host"));
        }
        Ok(Url {
            host: host.to_ascii_lowercase(),
            port,
            path: path.to_string(),
        })
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == 443 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// Same scheme, host and port.
    pub fn same_origin(&self, other: &Url) -> bool {
        self.host == other.host && self.port == other.port
    }
}

/// A request to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRequest {
    pub method: String,
    pub url: String,
    /// Besides `Host`, `Content-Length` and `Connection`, which are added.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ClientResponse {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// The bytes of a request: head and body.
pub fn encode_request(req: &ClientRequest, url: &Url) -> Result<Vec<u8>, String> {
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    };
    if !token(&req.method) {
        return Err("bad request method".to_string());
    }
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        req.method,
        url.path,
        url.authority(),
        req.body.len()
    );
    for (k, v) in &req.headers {
        if !token(k) || v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(format!("bad request header {k:?}"));
        }
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&req.body);
    Ok(out)
}

/// Parses an answer from the bytes received so far. `eof`: the peer closed
/// the connection (a body without length ends there). `Ok(None)`: more bytes
/// are needed.
pub fn parse_response(buf: &[u8], eof: bool) -> Result<Option<ClientResponse>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if eof => return Err("answer ends inside its head".into()),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad answer head: {e}")),
    };
    let status = resp.code.ok_or("answer without status")?;
    let mut out_headers = Vec::new();
    for h in resp.headers.iter() {
        let value = String::from_utf8_lossy(h.value).into_owned();
        out_headers.push((h.name.to_string(), value));
    }
    let find = |name: &str| {
        out_headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let rest = buf.get(head_len..).unwrap_or_default();
    let chunked =
        find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if chunked {
        match decode_chunked(rest)? {
            Some(b) => b,
            None if eof => return Err("answer ends inside a chunk".into()),
            None => return Ok(None),
        }
    } else if let Some(len) = find("content-length") {
        let len: usize = len.parse().map_err(|_| "bad Content-Length".to_string())?;
        if len > MAX_RESPONSE {
            return Err("answer too large".into());
        }
        if rest.len() < len {
            if eof {
                return Err("answer shorter than its Content-Length".into());
            }
            return Ok(None);
        }
        rest[..len].to_vec()
    } else if eof {
        rest.to_vec()
    } else {
        return Ok(None);
    };
    Ok(Some(ClientResponse {
        status,
        headers: out_headers,
        body,
    }))
}

/// A complete chunked body, or `None` if more bytes are needed.
fn decode_chunked(mut buf: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
            if buf.len() > 1024 {
                return Err("bad chunk size line".into());
            }
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[..eol]).map_err(|_| "bad chunk size".to_string())?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size".to_string())?;
        if size > MAX_RESPONSE || out.len() + size > MAX_RESPONSE {
            return Err("answer too large".into());
        }
        let data = &buf[eol + 2..];
        if size == 0 {
            // Trailers are ignored; the final CRLF may still be in flight.
            return Ok(Some(out));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&data[..size]);
        if &data[size..size + 2] != b"\r\n" {
            return Err("chunk without CRLF".into());
        }
        buf = &data[size + 2..];
    }
}

/// A transport error, one line, never quoting credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError(pub String);

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The client: trust roots and a deadline.
#[derive(Clone)]
pub struct HttpsClient {
    tls: Arc<ClientConfig>,
    timeout: Duration,
}

impl HttpsClient {
    /// Trusts the certificates of a PEM bundle (e.g.
    /// `/etc/ssl/certs/ca-certificates.crt`).
    pub fn from_ca_file(path: &std::path::Path, timeout: Duration) -> Result<HttpsClient, String> {
        let mut roots = RootCertStore::empty();
        let certs =
            CertificateDer::pem_file_iter(path).map_err(|e| format!("{}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
            // Bundles hold the odd certificate webpki refuses; skip those.
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err(format!("{}: no usable CA certificate", path.display()));
        }
        HttpsClient::from_roots(roots, timeout)
    }

    pub fn from_roots(roots: RootCertStore, timeout: Duration) -> Result<HttpsClient, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls versions: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(HttpsClient {
            tls: Arc::new(tls),
            timeout,
        })
    }

    /// Sends one request over a new connection and reads the answer, all
    /// within the client's timeout.
    pub async fn send(&self, req: &ClientRequest) -> Result<ClientResponse, ClientError> {
        let url = Url::parse(&req.url).map_err(ClientError)?;
        let bytes = encode_request(req, &url).map_err(ClientError)?;
        let exchange = self.exchange(&url, bytes);
        smol::future::or(exchange, async {
            smol::Timer::after(self.timeout).await;
            Err(ClientError(format!(
                "{}: no answer within {} s",
                url.authority(),
                self.timeout.as_secs()
            )))
        })
        .await
    }

    async fn exchange(&self, url: &Url, bytes: Vec<u8>) -> Result<ClientResponse, ClientError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            ClientError(format!("{}: {what}: {e}", url.authority()))
        };
        let tcp = smol::net::TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| fail("connect", &e))?;
        let name = ServerName::try_from(url.host.clone()).map_err(|e| fail("server name", &e))?;
        let mut tls = TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| fail("tls", &e))?;
        tls.write_all(&bytes).await.map_err(|e| fail("write", &e))?;
        tls.flush().await.map_err(|e| fail("write", &e))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = match tls.read(&mut chunk).await {
                Ok(n) => n,
                // Servers that close without close_notify: treat as EOF.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                Err(e) => return Err(fail("read", &e)),
            };
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > MAX_RESPONSE + 64 * 1024 {
                return Err(fail("read", &"answer too large"));
            }
            match parse_response(&buf, n == 0).map_err(|e| fail("answer", &e))? {
                Some(resp) => return Ok(resp),
                None if n == 0 => return Err(fail("read", &"connection closed")),
                None => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("https://API.sraps.snom.com/api/v1/tokens/x").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("api.sraps.snom.com", 443, "/api/v1/tokens/x")
        );
        let u = Url::parse("https://127.0.0.1:8083").unwrap();
        assert_eq!((u.port, u.path.as_str()), (8083, "/"));
        assert_eq!(u.authority(), "127.0.0.1:8083");
        for bad in [
            "http://x/",
            "https://",
            "https://u:p@x/",
            "https://x:0/",
            "https://x:99999/",
            "https://x/a b",
            "https://x/#f",
            "https://x_y/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_bytes() {
        let req = ClientRequest {
            method: "PUT".into(),
            url: "https://h:8443/p?q=1".into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: b"{}".to_vec(),
        };
        let bytes = encode_request(&req, &Url::parse(&req.url).unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "PUT /p?q=1 HTTP/1.1\r\nHost: h:8443\r\nConnection: close\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"
        );
        let mut bad = req.clone();
        bad.headers = vec![("X".into(), "a\r\nInjected: 1".into())];
        assert!(encode_request(&bad, &Url::parse(&bad.url).unwrap()).is_err());
    }

    #[test]
    fn answers() {
        let full = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nRetry-After: 3\r\n\r\nhello";
        for cut in 0..full.len() {
            assert_eq!(parse_response(&full[..cut], false).unwrap(), None, "{cut}");
        }
        let r = parse_response(full, false).unwrap().unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        assert_eq!(r.header("retry-after"), Some("3"));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let r = parse_response(chunked, false).unwrap().unwrap();
        assert_eq!(r.body, b"abcde");
        let close = b"HTTP/1.0 500 Oops\r\n\r\nbody";
        assert_eq!(parse_response(close, false).unwrap(), None);
        assert_eq!(parse_response(close, true).unwrap().unwrap().body, b"body");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab", true).is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).is_err());
        assert!(parse_response(b"garbage\r\n\r\n", false).is_err());
    }

    #[test]
    fn random_answers_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let base = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n4\r\nabcd\r\n0\r\n\r\n";
        for _ in 0..20_000 {
            let mut buf = base.to_vec();
            for _ in 0..(next() % 6) {
                let i = (next() as usize) % buf.len();
                buf[i] = next() as u8;
            }
            let cut = (next() as usize) % (buf.len() + 1);
            let _ = parse_response(&buf[..cut], next() % 2 == 0);
        }
    }
}
