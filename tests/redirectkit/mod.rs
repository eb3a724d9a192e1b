//! A stand-in for the vendors' redirection services: an HTTPS server on
//! 127.0.0.1 (rustls, a certificate made for the test) in a thread, which
//! records every request and answers through the test's handler. It checks
//! Hawk MACs, Yealink signatures and Basic credentials with its own code,
//! not kpbxd's. A check that fails inside the handler (a panic) is kept as
//! a violation, answered with status 599, and fails the test when the
//! service is dropped. [`cloud`] holds the vendors' services themselves.
#![allow(dead_code, clippy::unwrap_used)]

pub mod cloud;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// One request as received.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An answer: status, extra headers, body.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub fn resp(status: u16, body: &str) -> Resp {
    Resp {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
    }
}

pub fn json(status: u16, body: serde_json::Value) -> Resp {
    Resp {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

/// An XML-RPC answer `[ok, text]` with a typed `<string>`, the form Snom
/// answers in (falconieri `providers/snom.go` matches
/// `<boolean>(.*)</boolean></value><value><string>(.*)</string>`).
pub fn xml_answer(ok: bool, text: &str) -> Resp {
    Resp {
        status: 200,
        headers: vec![("Content-Type".into(), "text/xml".into())],
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n<value><boolean>{}</boolean></value>\n<value><string>{text}</string></value>\n</data></array></value>\n</param>\n</params>\n</methodResponse>\n",
            u8::from(ok)
        )
        .into_bytes(),
    }
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

pub struct Service {
    pub addr: SocketAddr,
    /// PEM file the client must trust.
    pub ca_file: PathBuf,
    pub requests: Arc<Mutex<Vec<Req>>>,
    /// Checks that failed inside the handler.
    pub violations: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

fn cert(tls_dir: &Path) -> (Arc<rustls::ServerConfig>, PathBuf) {
    let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    kpbxd::http::tls::self_signed(tls_dir, &names, now_unix()).unwrap()
}

/// The CA file of the services started in `tls_dir` (made now if needed).
pub fn ca_file(tls_dir: &Path) -> PathBuf {
    cert(tls_dir).1
}

/// A free loopback port, closed again (for "service down" tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Service {
    pub fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Service {
        Service::start_on(0, handler)
    }

    /// On a given port (0: any).
    pub fn start_on(port: u16, handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Service::start_in(&dir.path().join("tls"), port, handler);
        s._dir = Some(dir);
        s
    }

    /// With the certificate kept in `tls_dir` (made on first use, see
    /// [`ca_file`]), so that a client can trust it before the service runs.
    pub fn start_in(
        tls_dir: &Path,
        port: u16,
        handler: impl Fn(&Req) -> Resp + Send + Sync + 'static,
    ) -> Service {
        let (tls, ca_file) = cert(tls_dir);
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = std::thread::spawn({
            let requests = requests.clone();
            let violations = violations.clone();
            let stop = stop.clone();
            move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(tcp) = conn else { continue };
                    let _ = serve(tcp, tls.clone(), &*handler, &requests, &violations);
                }
            }
        });
        Service {
            addr,
            ca_file,
            requests,
            violations,
            stop,
            thread: Some(thread),
            _dir: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn requests(&self) -> Vec<Req> {
        lock(&self.requests).clone()
    }

    pub fn violations(&self) -> Vec<String> {
        lock(&self.violations).clone()
    }
}

/// A mutex's content, even after a panic inside a handler.
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let v = self.violations();
        if !std::thread::panicking() {
            assert!(v.is_empty(), "the stand-in saw violations: {v:#?}");
        }
    }
}

fn serve(
    tcp: TcpStream,
    tls: Arc<rustls::ServerConfig>,
    handler: &Handler,
    requests: &Mutex<Vec<Req>>,
    violations: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(5)))?;
    let conn = rustls::ServerConnection::new(tls).map_err(std::io::Error::other)?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let req = loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        assert!(buf.len() < 1 << 20, "request too large");
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Request::new(&mut headers);
        if let httparse::Status::Complete(head) = r.parse(&buf).unwrap() {
            let hs: Vec<(String, String)> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            let len: usize = hs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map(|(_, v)| v.parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= head + len {
                break Req {
                    method: r.method.unwrap().to_string(),
                    path: r.path.unwrap().to_string(),
                    headers: hs,
                    body: buf[head..head + len].to_vec(),
                };
            }
        }
    };
    let answer = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&req))) {
        Ok(a) => a,
        Err(e) => {
            let what = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            lock(violations).push(format!("{} {}: {what}", req.method, req.path));
            resp(599, "stand-in check failed")
        }
    };
    lock(requests).push(req);
    let mut out = format!(
        "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    for (k, v) in &answer.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    s.write_all(out.as_bytes())?;
    s.write_all(&answer.body)?;
    s.flush()?;
    s.conn.send_close_notify();
    let _ = s.flush();
    Ok(())
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[((n >> (18 - 6 * i)) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// An XML-RPC answer `[ok, text]` with an untyped text value, the form of
/// Htek's copy of Yealink's XML API for RPS (`<value><boolean>1</boolean>
/// </value> <value>OK</value>`).
pub fn xml_untyped(ok: bool, text: &str) -> Resp {
    Resp {
        status: 200,
        headers: vec![("Content-Type".into(), "text/xml".into())],
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?> <methodResponse xmlns:ex=\"http://ws.apache.org/xmlrpc/namespaces/extensions\"> <params> <param> <value> <array> <data> <value> <boolean>{}</boolean> </value> <value>{text}</value> </data> </array> </value> </param> </params> </methodResponse>",
            u8::from(ok)
        )
        .into_bytes(),
    }
}

/// base64 HMAC-SHA256, as Hawk and the Yealink signature use it.
pub fn hmac_b64(key: &str, text: &str) -> String {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
    m.update(text.as_bytes());
    b64(&m.finalize().into_bytes())
}

/// The attributes of a `Hawk ...` header.
pub fn hawk_attributes(header: &str) -> Vec<(String, String)> {
    let rest = header.strip_prefix("Hawk ").expect("Hawk scheme");
    rest.split(", ")
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("k=v");
            let v = v.strip_prefix('"').unwrap().strip_suffix('"').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// What a Hawk header claims: key id and timestamp.
#[derive(Clone, Debug)]
pub struct HawkSeen {
    pub id: String,
    pub ts: u64,
}

/// Checks a request's Hawk header against the key, per the Hawk
/// specification: `Err` if the MAC does not match (wrong key), a panic if
/// the header is malformed or the payload hash wrong.
pub fn check_hawk(req: &Req, key: &str, host: &str, port: u16) -> Result<HawkSeen, String> {
    let header = req.header("authorization").expect("Authorization header");
    let attrs = hawk_attributes(header);
    let get = |k: &str| {
        attrs
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    // falconieri's form: a hash always, of an empty payload with an empty
    // content type when there is no body.
    let ct = if req.body.is_empty() {
        String::new()
    } else {
        let ct = req.header("content-type").expect("content type");
        ct.split(';').next().unwrap().trim().to_ascii_lowercase()
    };
    let mut h = Sha256::new();
    h.update(format!("hawk.1.payload\n{ct}\n").as_bytes());
    h.update(&req.body);
    h.update(b"\n");
    let hash = b64(&h.finalize());
    assert_eq!(get("hash"), hash, "payload hash");
    assert!(!get("nonce").is_empty(), "nonce");
    let ts: u64 = get("ts").parse().expect("ts");
    let normalized = format!(
        "hawk.1.header\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
        get("ts"),
        get("nonce"),
        req.method,
        req.path,
        host,
        port,
        hash,
        get("ext")
    );
    if get("mac") != hmac_b64(key, &normalized) {
        return Err("Bad mac".into());
    }
    Ok(HawkSeen { id: get("id"), ts })
}

/// [`check_hawk`], panicking on a wrong MAC too; returns the key id.
pub fn verify_hawk(req: &Req, key: &str, host: &str, port: u16) -> String {
    let seen = check_hawk(req, key, host, port).expect("Hawk MAC");
    assert!(seen.ts > 1_600_000_000, "ts");
    seen.id
}

/// The `user:password` of a Basic header.
pub fn basic(req: &Req) -> String {
    let v = req.header("authorization").expect("Authorization header");
    let enc = v.strip_prefix("Basic ").expect("Basic scheme");
    let mut out = Vec::new();
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => 0,
        }
    };
    for chunk in enc.as_bytes().chunks(4) {
        let n = chunk.iter().fold(0u32, |acc, c| (acc << 6) | val(*c));
        let pad = chunk.iter().filter(|c| **c == b'=').count();
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    String::from_utf8(out).unwrap()
}

/// The method name and string parameters of an XML-RPC call (test-side
/// reading, enough for the calls kpbxd makes).
pub fn xmlrpc_call(body: &str) -> (String, Vec<String>) {
    let between = |s: &str, a: &str, b: &str| -> Option<(String, usize)> {
        let i = s.find(a)? + a.len();
        let j = s[i..].find(b)? + i;
        Some((s[i..j].to_string(), j + b.len()))
    };
    let (method, _) = between(body, "<methodName>", "</methodName>").expect("methodName");
    let mut params = Vec::new();
    let mut rest = body;
    while let Some((p, end)) = between(rest, "<param>", "</param>") {
        let v = between(&p, "<string>", "</string>")
            .map(|(v, _)| v)
            .or_else(|| between(&p, "<boolean>", "</boolean>").map(|(v, _)| v))
            .expect("string or boolean param");
        params.push(
            v.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &rest[end..];
    }
    (method, params)
}

/// Checks a Yealink RPS open-API request's signature, per the published
/// rule: HMAC-SHA256 over method, Content-MD5, X-Ca-Key, X-Ca-Nonce,
/// X-Ca-Timestamp, path and query. Panics on any mismatch.
pub fn verify_yealink_signature(req: &Req, key_id: &str, secret: &str) {
    let h = |k: &str| {
        req.header(k)
            .unwrap_or_else(|| panic!("{k} header"))
            .to_string()
    };
    assert_eq!(h("X-Ca-Key"), key_id);
    assert!(
        h("X-Ca-Timestamp").parse::<u64>().unwrap() > 1_600_000_000_000,
        "ms timestamp"
    );
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let mut to_sign = format!("{}\n", req.method);
    if !req.body.is_empty() {
        use md5::Digest as _;
        let md5 = b64(&md5::Md5::digest(&req.body));
        assert_eq!(h("Content-MD5"), md5, "Content-MD5");
        to_sign.push_str(&format!("Content-MD5:{md5}\n"));
    }
    to_sign.push_str(&format!(
        "X-Ca-Key:{}\nX-Ca-Nonce:{}\nX-Ca-Timestamp:{}\n{}",
        h("X-Ca-Key"),
        h("X-Ca-Nonce"),
        h("X-Ca-Timestamp"),
        path.trim_start_matches('/')
    ));
    if !query.is_empty() {
        to_sign.push('\n');
        to_sign.push_str(query);
    }
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    m.update(to_sign.as_bytes());
    assert_eq!(
        h("X-Ca-Signature"),
        b64(&m.finalize().into_bytes()),
        "X-Ca-Signature"
    );
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}
