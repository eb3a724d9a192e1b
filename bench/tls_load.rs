//! tls_load: the HTTPS load client of bench/https.sh (the same client for every server).
//!
//!   tls_load ADDR:PORT MODE CONNS SECONDS LIST [USER:PASSWORD]
//!
//! MODE
//!   storm       CONNS phones, each in a loop: new TCP + full TLS handshake, GET 1-3 random
//!               files from LIST on that connection (keep-alive), close (close_notify).
//!   resume      the same, each phone keeping its own TLS session (tickets or IDs) and
//!               offering it on its next connection, as a rebooted phone that kept it would.
//!   keepalive   CONNS connections, each GETting random files from LIST until the end.
//!   one         CONNS keep-alive connections GETting LIST's first line (the firmware).
//!   digest      storm with HTTP digest (MD5, qop=auth): each file is GET without
//!               credentials -> 401, then GET with Authorization -> 200 (one file per TLS
//!               connection; the latency includes the 401 round trip).
//! LIST: a file of paths relative to /provisioning/ (one per line), or a single path.
//! TLS: 1.3 and 1.2 offered (rustls, X25519 first); TLS_VERSION=1.2 or 1.3 pins one. The
//! server's certificate is not verified (the client's CPU goes to the load, not to checks).
//!
//! Prints one line `RESULT key=value ...`: requests (200s), rps, handshakes, resumed,
//! hps (handshakes/s), p50_us, p99_us (per file: from the start of its connection's
//! handshake for the first file, from writing the request otherwise; digest: from the 401's
//! request), bytes, MBps (10^6 B/s), err_connect, err_tls, err_read, err_status, err_timeout.
#![allow(clippy::unwrap_used)]

use futures_rustls::TlsConnector;
use md5::Digest as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct AnyCert;

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![
            SignatureScheme::ECDSA_NISTP256_SHA256,
            SignatureScheme::ECDSA_NISTP384_SHA384,
            SignatureScheme::ED25519,
            SignatureScheme::RSA_PSS_SHA256,
            SignatureScheme::RSA_PSS_SHA384,
            SignatureScheme::RSA_PSS_SHA512,
            SignatureScheme::RSA_PKCS1_SHA256,
            SignatureScheme::RSA_PKCS1_SHA384,
            SignatureScheme::RSA_PKCS1_SHA512,
        ]
    }
}

#[derive(Default)]
struct Stats {
    requests: u64,
    handshakes: u64,
    resumed: u64,
    bytes: u64,
    lat_us: Vec<u32>,
    err_connect: u64,
    err_tls: u64,
    err_read: u64,
    err_status: u64,
    err_timeout: u64,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Storm,
    Resume,
    KeepAlive,
    One,
    Digest,
}

/// xorshift64: cheap, per task, good enough to pick files.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

enum Fail {
    Read,
    Status,
    Timeout,
}

type Tls = futures_rustls::client::TlsStream<smol::net::TcpStream>;

/// One response's head fields that matter here.
struct Head {
    status: u16,
    /// The first MD5 (or algorithm-less) digest challenge.
    challenge: String,
    len: usize,
    /// `Connection: close`: the server ends the connection after this response.
    close: bool,
}

/// Reads one response (one request in flight, so nothing follows it).
async fn response(s: &mut Tls, buf: &mut Vec<u8>) -> Result<Head, Fail> {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(Fail::Read);
        }
        let n = s.read(&mut chunk).await.map_err(|_| Fail::Read)?;
        if n == 0 {
            return Err(Fail::Read);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    r.parse(&buf[..head_end]).map_err(|_| Fail::Read)?;
    let status = r.code.ok_or(Fail::Read)?;
    let mut len = None;
    let mut auth = String::new();
    let mut close = false;
    for h in r.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            close |= h.value.eq_ignore_ascii_case(b"close");
        }
        if h.name.eq_ignore_ascii_case("content-length") {
            len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        } else if h.name.eq_ignore_ascii_case("www-authenticate") && auth.is_empty() {
            let v = String::from_utf8_lossy(h.value);
            if v.contains("MD5") || !v.contains("algorithm") {
                auth = v.into_owned();
            }
        }
    }
    let len = len.ok_or(Fail::Read)?;
    let mut have = buf.len() - head_end;
    while have < len {
        let n = s.read(&mut chunk).await.map_err(|_| Fail::Read)?;
        if n == 0 {
            return Err(Fail::Read);
        }
        have += n;
    }
    Ok(Head {
        status,
        challenge: auth,
        len,
        close,
    })
}

fn param<'a>(challenge: &'a str, key: &str) -> Option<&'a str> {
    let i = challenge.find(&format!("{key}="))? + key.len() + 1;
    let rest = &challenge[i..];
    if let Some(q) = rest.strip_prefix('"') {
        q.split('"').next()
    } else {
        rest.split([',', ' ']).next()
    }
}

fn md5hex(s: &str) -> String {
    md5::Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn authorization(challenge: &str, user: &str, pass: &str, uri: &str, cnonce: u64) -> String {
    let realm = param(challenge, "realm").unwrap_or("");
    let nonce = param(challenge, "nonce").unwrap_or("");
    let ha1 = md5hex(&format!("{user}:{realm}:{pass}"));
    let ha2 = md5hex(&format!("GET:{uri}"));
    let cnonce = format!("{cnonce:016x}");
    let resp = md5hex(&format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"));
    let mut a = format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         algorithm=MD5, qop=auth, nc=00000001, cnonce=\"{cnonce}\", response=\"{resp}\""
    );
    if let Some(o) = param(challenge, "opaque") {
        a.push_str(&format!(", opaque=\"{o}\""));
    }
    a
}

struct Ctx {
    addr: std::net::SocketAddr,
    mode: Mode,
    files: Vec<String>,
    creds: Option<(String, String)>,
    stats: Rc<RefCell<Stats>>,
    timeout: Duration,
}

async fn with_timeout<T>(
    d: Duration,
    f: impl std::future::Future<Output = Result<T, Fail>>,
) -> Result<T, Fail> {
    smol::future::or(f, async {
        smol::Timer::after(d).await;
        Err(Fail::Timeout)
    })
    .await
}

/// One phone (or one keep-alive connection): loops until the executor stops.
async fn phone(ctx: Rc<Ctx>, connector: TlsConnector, seed: u64) {
    let mut rng = Rng(seed | 1);
    let mut buf = Vec::with_capacity(32 * 1024);
    let name = ServerName::try_from("localhost").unwrap();
    loop {
        let t_conn = Instant::now();
        let tcp = match smol::net::TcpStream::connect(ctx.addr).await {
            Ok(t) => t,
            Err(_) => {
                ctx.stats.borrow_mut().err_connect += 1;
                smol::Timer::after(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let hs = smol::future::or(
            async {
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|_| false)
            },
            async {
                smol::Timer::after(ctx.timeout).await;
                Err(true)
            },
        )
        .await;
        let mut tls = match hs {
            Ok(t) => t,
            Err(timed_out) => {
                let mut st = ctx.stats.borrow_mut();
                if timed_out {
                    st.err_timeout += 1;
                } else {
                    st.err_tls += 1;
                }
                continue;
            }
        };
        {
            let mut st = ctx.stats.borrow_mut();
            st.handshakes += 1;
            if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                st.resumed += 1;
            }
        }
        let n = match ctx.mode {
            Mode::Storm | Mode::Resume => 1 + rng.below(3),
            Mode::Digest => 1,
            Mode::KeepAlive | Mode::One => usize::MAX,
        };
        let mut start = t_conn;
        let mut ok = true;
        for i in 0..n {
            let path = match ctx.mode {
                Mode::One => &ctx.files[0],
                _ => &ctx.files[rng.below(ctx.files.len())],
            };
            let uri = format!("/provisioning/{path}");
            let last = i + 1 == n;
            let close = if last { "Connection: close\r\n" } else { "" };
            if i > 0 {
                start = Instant::now();
            }
            let r = with_timeout(ctx.timeout, async {
                if let Some((user, pass)) = &ctx.creds {
                    let req = format!("GET {uri} HTTP/1.1\r\nHost: localhost\r\n\r\n");
                    tls.write_all(req.as_bytes()).await.map_err(|_| Fail::Read)?;
                    let h = response(&mut tls, &mut buf).await?;
                    if h.status != 401 || h.challenge.is_empty() {
                        return Err(Fail::Status);
                    }
                    if h.close {
                        return Err(Fail::Status);
                    }
                    let auth = authorization(&h.challenge, user, pass, &uri, rng.next());
                    let req = format!(
                        "GET {uri} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {auth}\r\n{close}\r\n"
                    );
                    tls.write_all(req.as_bytes()).await.map_err(|_| Fail::Read)?;
                } else {
                    let req = format!("GET {uri} HTTP/1.1\r\nHost: localhost\r\n{close}\r\n");
                    tls.write_all(req.as_bytes()).await.map_err(|_| Fail::Read)?;
                }
                let h = response(&mut tls, &mut buf).await?;
                if h.status != 200 {
                    return Err(Fail::Status);
                }
                Ok((h.len, h.close))
            })
            .await;
            let mut st = ctx.stats.borrow_mut();
            match r {
                Ok((len, close)) => {
                    st.requests += 1;
                    st.bytes += len as u64;
                    let us = start.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                    st.lat_us.push(us);
                    if close {
                        // The server's per-connection request limit: reconnect, no error.
                        break;
                    }
                }
                Err(f) => {
                    match f {
                        Fail::Read => st.err_read += 1,
                        Fail::Status => st.err_status += 1,
                        Fail::Timeout => st.err_timeout += 1,
                    }
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            // Orderly close: close_notify then FIN, as a phone's TLS stack does.
            let _ = with_timeout(ctx.timeout, async {
                tls.close().await.map_err(|_| Fail::Read)
            })
            .await;
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!(
            "usage: tls_load ADDR:PORT storm|resume|keepalive|one|digest CONNS SECONDS LIST [USER:PASSWORD]"
        );
        std::process::exit(2);
    }
    let addr: std::net::SocketAddr = args[0].parse().expect("ADDR:PORT");
    let mode = match args[1].as_str() {
        "storm" => Mode::Storm,
        "resume" => Mode::Resume,
        "keepalive" => Mode::KeepAlive,
        "one" => Mode::One,
        "digest" => Mode::Digest,
        m => panic!("unknown mode {m}"),
    };
    let conns: usize = args[2].parse().expect("CONNS");
    let secs: f64 = args[3].parse().expect("SECONDS");
    let files: Vec<String> = match std::fs::read_to_string(&args[4]) {
        Ok(t) if !t.starts_with('\0') && std::path::Path::new(&args[4]).is_file() => t
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => vec![args[4].clone()],
    };
    assert!(!files.is_empty(), "no files");
    let creds = args.get(5).map(|c| {
        let (u, p) = c.split_once(':').expect("USER:PASSWORD");
        (u.to_owned(), p.to_owned())
    });
    if mode == Mode::Digest {
        assert!(creds.is_some(), "digest needs USER:PASSWORD");
    }
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        match std::env::var("TLS_VERSION").as_deref() {
            Ok("1.2") => vec![&rustls::version::TLS12],
            Ok("1.3") => vec![&rustls::version::TLS13],
            _ => vec![&rustls::version::TLS13, &rustls::version::TLS12],
        };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut base = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert))
        .with_no_client_auth();
    base.resumption = rustls::client::Resumption::disabled();
    let shared = TlsConnector::from(Arc::new(base.clone()));

    let stats = Rc::new(RefCell::new(Stats::default()));
    let ctx = Rc::new(Ctx {
        addr,
        mode,
        files,
        creds,
        stats: stats.clone(),
        timeout: Duration::from_secs(
            std::env::var("TLS_TIMEOUT")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(10),
        ),
    });
    let ex = smol::LocalExecutor::new();
    let mut tasks = Vec::with_capacity(conns);
    let t0 = Instant::now();
    for i in 0..conns {
        let connector = if mode == Mode::Resume {
            // Each phone its own session store: it offers only its own session.
            let mut c = base.clone();
            c.resumption = rustls::client::Resumption::in_memory_sessions(4);
            TlsConnector::from(Arc::new(c))
        } else {
            shared.clone()
        };
        let seed = 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 + 1);
        tasks.push(ex.spawn(phone(ctx.clone(), connector, seed)));
    }
    smol::block_on(ex.run(smol::Timer::after(Duration::from_secs_f64(secs))));
    let elapsed = t0.elapsed().as_secs_f64();
    drop(tasks);
    let mut st = stats.borrow_mut();
    st.lat_us.sort_unstable();
    let pct = |p: f64| -> u32 {
        if st.lat_us.is_empty() {
            0
        } else {
            st.lat_us[((st.lat_us.len() as f64 * p) as usize).min(st.lat_us.len() - 1)]
        }
    };
    println!(
        "RESULT requests={} rps={:.1} handshakes={} resumed={} hps={:.1} p50_us={} p99_us={} bytes={} MBps={:.1} err_connect={} err_tls={} err_read={} err_write=0 err_status={} err_timeout={} seconds={:.2}",
        st.requests,
        st.requests as f64 / elapsed,
        st.handshakes,
        st.resumed,
        st.handshakes as f64 / elapsed,
        pct(0.50),
        pct(0.99),
        st.bytes,
        st.bytes as f64 / elapsed / 1e6,
        st.err_connect,
        st.err_tls,
        st.err_read,
        st.err_status,
        st.err_timeout,
        elapsed
    );
}
