//! End-to-end tests: the real server on 127.0.0.1 (ephemeral port), curl or raw TCP clients.
#![allow(clippy::unwrap_used)]

mod httpkit;
use httpkit::*;
use kpbxd::http::Config;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const CFG: &str = "0004f2003039.cfg";
const TENANT: &str = "6f1c0c1e-0000-4000-8000-000000000001";

struct Tree {
    dir: tempfile::TempDir,
    root: PathBuf,
    cfg: Vec<u8>,
    fw: Vec<u8>,
}

fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join(TENANT)).unwrap();
    let cfg = bytes(8 * 1024 + 123, 1);
    let fw = bytes(3 * 1024 * 1024 + 7, 2);
    std::fs::write(root.join(CFG), &cfg).unwrap();
    std::fs::write(root.join("firmware.bin"), &fw).unwrap();
    std::fs::write(
        root.join(TENANT).join("y000000000044.cfg"),
        b"tenant file\n",
    )
    .unwrap();
    std::fs::write(root.join(".hidden"), b"dotfile").unwrap();
    std::fs::write(root.join("phone.xml"), b"<x/>").unwrap();
    // Outside the served tree: a sibling with a shared name prefix, and a symlink to it.
    std::fs::create_dir_all(dir.path().join("treeX")).unwrap();
    std::fs::write(dir.path().join("treeX/secret.txt"), b"SECRET").unwrap();
    std::fs::write(dir.path().join("secret.txt"), b"SECRET").unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.txt")).unwrap();
    Tree { dir, root, cfg, fw }
}

fn out_file(t: &Tree, name: &str) -> String {
    t.dir.path().join(name).to_string_lossy().into_owned()
}

/// Sends `req` on a fresh connection and reads until the server closes (5 s cap).
fn raw(addr: std::net::SocketAddr, req: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req).unwrap();
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    String::from_utf8_lossy(&v).into_owned()
}

#[test]
fn get_and_head_with_types_lengths_and_hash() {
    let t = tree();
    let srv = start(recorder(&t.root), Config::default());
    let body = out_file(&t, "get.out");
    let o = curl(&[
        "-D",
        "-",
        "-o",
        &body,
        "-A",
        "Yealink T46S",
        &srv.url(&format!("/provisioning/{CFG}")),
    ]);
    let dump = stdout(&o);
    assert!(status_line(&dump).starts_with("HTTP/1.1 200"), "{dump}");
    assert_eq!(header(&dump, "content-type").as_deref(), Some("text/plain"));
    assert_eq!(
        header(&dump, "content-length"),
        Some(t.cfg.len().to_string())
    );
    assert_eq!(header(&dump, "accept-ranges").as_deref(), Some("bytes"));
    assert!(header(&dump, "etag").is_some() && header(&dump, "last-modified").is_some());
    assert!(header(&dump, "date").is_some());
    assert_eq!(sha256(&std::fs::read(&body).unwrap()), sha256(&t.cfg));

    // HEAD: same headers, no body.
    let o = curl(&["-I", &srv.url(&format!("/provisioning/{CFG}"))]);
    let dump = stdout(&o);
    assert!(status_line(&dump).starts_with("HTTP/1.1 200"), "{dump}");
    assert_eq!(
        header(&dump, "content-length"),
        Some(t.cfg.len().to_string())
    );
    let o = raw(
        srv.addr,
        format!("HEAD /provisioning/{CFG} HTTP/1.0\r\n\r\n").as_bytes(),
    );
    assert!(o.ends_with("\r\n\r\n"), "HEAD must not carry a body: {o:?}");

    // Content types by extension; multitenant path; in a subdirectory.
    let o = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        &srv.url("/provisioning/phone.xml"),
    ]);
    assert_eq!(
        header(&stdout(&o), "content-type").as_deref(),
        Some("application/xml")
    );
    let o = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        &srv.url("/provisioning/firmware.bin"),
    ]);
    assert_eq!(
        header(&stdout(&o), "content-type").as_deref(),
        Some("application/octet-stream")
    );
    let o = curl(&[&srv.url(&format!("/provisioning/{TENANT}/y000000000044.cfg"))]);
    assert_eq!(stdout(&o), "tenant file\n");

    // An empty file: Content-Length 0, and no corked head (MSG_MORE) delaying it.
    std::fs::write(t.root.join("empty.cfg"), b"").unwrap();
    let o = curl(&[
        "-D",
        "-",
        "-w",
        "%{time_total}",
        &srv.url("/provisioning/empty.cfg"),
    ]);
    let dump = stdout(&o);
    assert_eq!(
        header(&dump, "content-length").as_deref(),
        Some("0"),
        "{dump}"
    );
    let secs: f64 = dump
        .rsplit("\r\n\r\n")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(secs < 0.15, "empty body took {secs} s");
    // The fetch hook saw the first GET with its user agent and byte count.
    let log = srv.site.log.lock().unwrap().clone();
    let first = &log[0];
    assert_eq!(
        first.path.as_deref(),
        Some(&*format!("/provisioning/{CFG}"))
    );
    assert_eq!(first.user_agent.as_deref(), Some("Yealink T46S"));
    assert_eq!((first.status, first.bytes), (200, t.cfg.len() as u64));
    assert_eq!(log[1].bytes, 0, "HEAD sends no body bytes");
}

#[test]
fn range_requests_and_curl_resume() {
    let t = tree();
    let srv = start(recorder(&t.root), Config::default());
    let url = srv.url("/provisioning/firmware.bin");
    // A broken earlier download: first 1 MiB + 5 bytes on disk; `curl -C -` continues it.
    let part = out_file(&t, "fw.part");
    std::fs::write(&part, &t.fw[..1024 * 1024 + 5]).unwrap();
    let o = curl(&["-C", "-", "-D", "-", "-o", &part, &url]);
    let dump = stdout(&o);
    assert!(
        status_line(&dump).starts_with("HTTP/1.1 206"),
        "{dump}{}",
        stderr(&o)
    );
    assert_eq!(
        header(&dump, "content-range"),
        Some(format!(
            "bytes {}-{}/{}",
            1024 * 1024 + 5,
            t.fw.len() - 1,
            t.fw.len()
        ))
    );
    assert_eq!(sha256(&std::fs::read(&part).unwrap()), sha256(&t.fw));
    // Resuming a complete file: 416, and curl leaves the file alone.
    let o = curl(&["-C", "-", "-D", "-", "-o", &part, &url]);
    assert!(
        status_line(&stdout(&o)).starts_with("HTTP/1.1 416"),
        "{}",
        stdout(&o)
    );
    assert_eq!(sha256(&std::fs::read(&part).unwrap()), sha256(&t.fw));

    let cases: &[(&str, usize, usize)] = &[
        ("10-19", 10, 20),
        ("0-0", 0, 1),
        ("-100", t.fw.len() - 100, t.fw.len()),
    ];
    for (r, a, b) in cases {
        let o = curl(&["-r", r, &url]);
        assert_eq!(sha256(&o.stdout), sha256(&t.fw[*a..*b]), "range {r}");
    }
    let o = curl(&["-D", "-", "-o", "/dev/null", "-r", "5000000-", &url]);
    let dump = stdout(&o);
    assert!(status_line(&dump).starts_with("HTTP/1.1 416"), "{dump}");
    assert_eq!(
        header(&dump, "content-range"),
        Some(format!("bytes */{}", t.fw.len()))
    );
    // Multiple ranges: ignored, full 200.
    let o = curl(&["-D", "-", "-o", "/dev/null", "-r", "0-1,5-6", &url]);
    assert!(status_line(&stdout(&o)).starts_with("HTTP/1.1 200"));
}

#[test]
fn conditional_requests_give_304() {
    let t = tree();
    let srv = start(recorder(&t.root), Config::default());
    let url = srv.url(&format!("/provisioning/{CFG}"));
    let dump = stdout(&curl(&["-I", &url]));
    let etag = header(&dump, "etag").unwrap();
    let lm = header(&dump, "last-modified").unwrap();
    let code = |extra: &[&str]| {
        let mut a = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        a.extend_from_slice(extra);
        a.push(&url);
        stdout(&curl(&a))
    };
    assert_eq!(code(&["-H", &format!("If-None-Match: {etag}")]), "304");
    assert_eq!(
        code(&["-H", &format!("If-None-Match: \"nope\", {etag}")]),
        "304"
    );
    assert_eq!(code(&["-H", "If-None-Match: \"nope\""]), "200");
    assert_eq!(code(&["-H", &format!("If-Modified-Since: {lm}")]), "304");
    assert_eq!(code(&["-z", &lm]), "304");
    assert_eq!(
        code(&["-H", "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT"]),
        "200"
    );
    // 304 carries validators but no body.
    let o = curl(&["-D", "-", "-H", &format!("If-None-Match: {etag}"), &url]);
    let dump = stdout(&o);
    assert!(dump.ends_with("\r\n\r\n"), "{dump:?}");
    assert_eq!(header(&dump, "etag"), Some(etag));
}

#[test]
fn other_methods_get_405_with_allow() {
    let t = tree();
    let srv = start(recorder(&t.root), Config::default());
    for m in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let o = curl(&[
            "-X",
            m,
            "-D",
            "-",
            &srv.url(&format!("/provisioning/{CFG}")),
        ]);
        let dump = stdout(&o);
        assert!(
            status_line(&dump).starts_with("HTTP/1.1 405"),
            "{m}: {dump}"
        );
        assert_eq!(header(&dump, "allow").as_deref(), Some("GET, HEAD"), "{m}");
    }
    // A POST with a small body is read and discarded; the connection stays usable.
    let o = raw(
        srv.addr,
        b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /provisioning/phone.xml HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(
        o.starts_with("HTTP/1.1 405") && o.contains("HTTP/1.1 200 OK") && o.ends_with("<x/>"),
        "{o}"
    );
}

#[test]
fn unknown_names_get_identical_404s_without_reflection() {
    let t = tree();
    let srv = start(recorder(&t.root), Config::default());
    let names = [
        "/provisioning/nope.cfg",
        "/provisioning/0004f2ffffff.cfg",
        "/provisioning/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/provisioning/6f1c0c1e-0000-4000-8000-000000000099/a.cfg",
        "/provisioning/%252e%252e/etc/passwd",
        "/provisioning",
        "/provisioning/link.txt",
        "/provisioning/6f1c0c1e-0000-4000-8000-000000000001",
        "/tree/0004f2003039.cfg",
        "/",
    ];
    let mut bodies = Vec::new();
    for n in names {
        let o = curl(&["-D", "-", "--path-as-is", &srv.url(n)]);
        let dump = stdout(&o);
        assert!(
            status_line(&dump).starts_with("HTTP/1.1 404"),
            "{n}: {dump}"
        );
        let body = dump.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        let headers: Vec<String> = dump
            .lines()
            .filter(|l| !l.starts_with("Date:"))
            .map(str::to_owned)
            .collect();
        assert!(
            !dump.contains("script") && !dump.contains("nope") && !dump.contains("SECRET"),
            "{dump}"
        );
        bodies.push((body, headers));
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "404s differ: {bodies:#?}"
    );
}

#[test]
fn traversal_and_malformed_requests() {
    let t = tree();
    let srv = start(recorder(&t.root), Config::default());
    let bad: &[&[u8]] = &[
        b"GET /provisioning/../secret.txt HTTP/1.1\r\n\r\n",
        b"GET /provisioning/%2e%2e/secret.txt HTTP/1.1\r\n\r\n",
        b"GET /provisioning/..%2fsecret.txt HTTP/1.1\r\n\r\n",
        b"GET /provisioning/%5c..%5csecret.txt HTTP/1.1\r\n\r\n",
        b"GET /provisioning/..\\secret.txt HTTP/1.1\r\n\r\n",
        b"GET /provisioning/a.cfg%00.xml HTTP/1.1\r\n\r\n",
        b"GET /provisioning/../treeX/secret.txt HTTP/1.1\r\n\r\n",
        b"GET /provisioning/../provisioningX/.. HTTP/1.1\r\n\r\n",
        b"GET //secret.txt HTTP/1.1\r\n\r\n",
        b"GET /provisioning/.hidden HTTP/1.1\r\n\r\n",
        b"GET http://x/provisioning/phone.xml HTTP/1.1\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
    ];
    for req in bad {
        let started = Instant::now();
        let o = raw(srv.addr, req);
        // FIN right after the response (lingering only drains what the client still sends).
        assert!(
            started.elapsed() < Duration::from_millis(800),
            "{:?}",
            started.elapsed()
        );
        assert!(
            o.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{:?} → {o}",
            String::from_utf8_lossy(req)
        );
        assert!(
            o.contains("Connection: close") && o.ends_with("\r\n\r\nBad Request\n"),
            "{o}"
        );
        assert!(!o.contains("SECRET") && !o.contains("dotfile"));
    }
    // curl with --path-as-is sends the dots verbatim.
    let o = curl(&[
        "--path-as-is",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &srv.url("/provisioning/../secret.txt"),
    ]);
    assert_eq!(stdout(&o), "400");
    // Oversize head → 431, too many headers → 431, big body → 413.
    let big = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("X-Big: {}", "a".repeat(9000)),
        &srv.url("/"),
    ]);
    assert_eq!(stdout(&big), "431");
    let mut many = vec!["-o", "/dev/null", "-w", "%{http_code}"];
    let hs: Vec<String> = (0..70).map(|i| format!("X-H{i}: v")).collect();
    for h in &hs {
        many.extend(["-H", h.as_str()]);
    }
    let url = srv.url("/");
    many.push(&url);
    assert_eq!(stdout(&curl(&many)), "431");
    let o = raw(
        srv.addr,
        b"GET / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n",
    );
    assert!(o.starts_with("HTTP/1.1 413 "), "{o}");
    let o = raw(
        srv.addr,
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert!(o.starts_with("HTTP/1.1 413 "), "{o}");
    let log = srv.site.log.lock().unwrap().clone();
    assert!(
        log.iter().any(|l| l.status == 400 && l.path.is_none()),
        "errors are reported too"
    );
}

#[test]
fn keep_alive_reuses_one_connection_and_http10_closes() {
    let t = tree();
    let srv = start(recorder(&t.root), Config::default());
    let o = curl(&[
        "-v",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        &srv.url(&format!("/provisioning/{CFG}")),
        &srv.url("/provisioning/phone.xml"),
        &srv.url("/provisioning/missing.cfg"),
    ]);
    let err = stderr(&o);
    assert!(err.contains("Re-using existing connection"), "{err}");
    assert_eq!(
        srv.site.admitted.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one accept for three requests"
    );
    assert_eq!(
        srv.stats.requests.load(std::sync::atomic::Ordering::SeqCst),
        3
    );

    let o = curl(&[
        "-v",
        "--http1.0",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        &srv.url("/provisioning/phone.xml"),
        &srv.url("/provisioning/phone.xml"),
    ]);
    let err = stderr(&o);
    assert!(!err.contains("Re-using existing connection"), "{err}");
    assert!(err.contains("Connection: close"), "{err}");
    assert_eq!(
        srv.site.admitted.load(std::sync::atomic::Ordering::SeqCst),
        3
    );

    // Pipelined requests on one connection are answered in order.
    let o = raw(
        srv.addr,
        b"GET /provisioning/phone.xml HTTP/1.1\r\n\r\nHEAD /provisioning/phone.xml HTTP/1.1\r\n\r\nGET /provisioning/phone.xml HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(o.matches("HTTP/1.1 200 OK").count(), 3, "{o}");
    assert_eq!(o.matches("<x/>").count(), 2, "{o}");
}

#[test]
fn https_with_generated_self_signed_certificate() {
    let t = tree();
    let tls_dir = t.dir.path().join("tls");
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let (tls, cert) = kpbxd::http::tls::self_signed(&tls_dir, &names, now_unix()).unwrap();
    let srv = start(
        recorder(&t.root),
        Config {
            tls: Some(tls),
            ..Config::default()
        },
    );
    let url = format!("https://127.0.0.1:{}/provisioning/{CFG}", srv.addr.port());
    let cert_s = cert.to_string_lossy().into_owned();
    let body = out_file(&t, "tls.out");
    let o = curl(&["--cacert", &cert_s, "-o", &body, "-w", "%{http_code}", &url]);
    assert_eq!(stdout(&o), "200", "{}", stderr(&o));
    assert_eq!(sha256(&std::fs::read(&body).unwrap()), sha256(&t.cfg));
    // Keep-alive and Range over TLS too.
    let o = curl(&[
        "-v",
        "--cacert",
        &cert_s,
        "-r",
        "0-9",
        "-o",
        &body,
        "-o",
        "/dev/null",
        &url,
        &url,
    ]);
    assert!(
        stderr(&o).contains("Re-using existing connection"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&body).unwrap(), &t.cfg[..10]);
    // A multi-chunk file over TLS (the copying path, not sendfile), whole and as a range.
    let fw_url = format!(
        "https://127.0.0.1:{}/provisioning/firmware.bin",
        srv.addr.port()
    );
    let fw_out = out_file(&t, "tls-fw.out");
    let o = curl(&["--cacert", &cert_s, "-o", &fw_out, &fw_url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(sha256(&std::fs::read(&fw_out).unwrap()), sha256(&t.fw));
    let o = curl(&[
        "--cacert",
        &cert_s,
        "-r",
        "1000-2000000",
        "-o",
        &fw_out,
        &fw_url,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        sha256(&std::fs::read(&fw_out).unwrap()),
        sha256(&t.fw[1000..2_000_001])
    );
    // Without trusting the certificate curl refuses; plain HTTP to the TLS port fails.
    let o = curl(&["-o", "/dev/null", &url]);
    assert!(!o.status.success());
    let o = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &srv.url("/provisioning/phone.xml"),
    ]);
    assert_ne!(stdout(&o), "200");
    // The pair is reused on the next start (same certificate bytes), mode 0600.
    let before = std::fs::read(&cert).unwrap();
    let (_, cert2) = kpbxd::http::tls::self_signed(&tls_dir, &names, now_unix()).unwrap();
    assert_eq!(std::fs::read(cert2).unwrap(), before);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(tls_dir.join("selfsigned-key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn slow_loris_is_dropped_by_head_timeout() {
    let t = tree();
    let cfg = Config {
        head_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let srv = start(recorder(&t.root), cfg);
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let req =
        b"GET /provisioning/phone.xml HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let started = Instant::now();
    let mut got = Vec::new();
    let mut sent = 0;
    // One byte per second; at most 10 iterations.
    for b in req.iter().take(10) {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        sent += 1;
        let end = Instant::now() + Duration::from_secs(1);
        let mut closed = false;
        while Instant::now() < end {
            let mut buf = [0u8; 512];
            match s.read(&mut buf) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        if closed {
            break;
        }
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408 Request Timeout"), "{text:?}");
    assert!(
        sent <= 4 && took < Duration::from_secs(5),
        "dropped after {sent} bytes, {took:?}"
    );
    assert!(srv.stats.timeouts.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    // An idle keep-alive connection is closed silently after the idle timeout.
    let cfg = Config {
        idle_timeout: Duration::from_secs(1),
        ..Config::default()
    };
    let srv = start(recorder(&t.root), cfg);
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /provisioning/phone.xml HTTP/1.1\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    let text = String::from_utf8_lossy(&v);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("<x/>"),
        "{text}"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn connection_limit_is_enforced() {
    let t = tree();
    let cfg = Config {
        max_connections: 2,
        ..Config::default()
    };
    let srv = start(recorder(&t.root), cfg);
    let a = TcpStream::connect(srv.addr).unwrap();
    let b = TcpStream::connect(srv.addr).unwrap();
    let active = || srv.stats.active.load(std::sync::atomic::Ordering::SeqCst);
    assert!(wait_until(Duration::from_secs(5), || active() == 2));
    // The third is answered 503 (best effort) and closed at once, not queued.
    let mut c = TcpStream::connect(srv.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut v = Vec::new();
    let _ = c.read_to_end(&mut v);
    assert!(started.elapsed() < Duration::from_secs(2));
    let text = String::from_utf8_lossy(&v);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 503"),
        "{text}"
    );
    assert_eq!(
        srv.stats.rejected.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    let o = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &srv.url("/provisioning/phone.xml"),
    ]);
    assert_ne!(stdout(&o), "200");
    // Freeing a slot admits new clients again.
    drop(a);
    assert!(wait_until(Duration::from_secs(5), || active() == 1));
    let o = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &srv.url("/provisioning/phone.xml"),
    ]);
    assert_eq!(stdout(&o), "200");
    drop(b);
}

/// A product-like site: generated configs in memory, per-tenant routing, a blocked peer.
struct MemSite {
    body: std::sync::Arc<[u8]>,
    blocked: std::sync::atomic::AtomicBool,
}

impl kpbxd::http::Site for MemSite {
    fn admit(&self, _peer: std::net::SocketAddr) -> bool {
        !self.blocked.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn get(
        &self,
        path: &kpbxd::http::Path,
        _info: &kpbxd::http::RequestInfo<'_>,
    ) -> kpbxd::http::Lookup {
        use kpbxd::http::{Lookup, MemoryBody, response};
        match path.components().collect::<Vec<_>>().as_slice() {
            [p, tenant, file] if *p == "provisioning" && *tenant == TENANT && *file == CFG => {
                Lookup::Memory(MemoryBody {
                    bytes: self.body.clone(),
                    etag: Some(response::etag_for_bytes(&self.body)),
                    mtime: None,
                    content_type: None,
                })
            }
            [p, _, file] if *p == "provisioning" && *file == CFG => Lookup::Forbidden,
            _ => Lookup::NotFound,
        }
    }
}

#[test]
fn memory_bodies_tenants_forbidden_and_admit() {
    let body: std::sync::Arc<[u8]> = bytes(40_000, 7).into();
    let site = MemSite {
        body: body.clone(),
        blocked: false.into(),
    };
    let srv = start(site, Config::default());
    let url = srv.url(&format!("/provisioning/{TENANT}/{CFG}"));
    let o = curl(&["-D", "-", &url]);
    let dump = stdout(&o);
    assert!(status_line(&dump).starts_with("HTTP/1.1 200"));
    assert_eq!(header(&dump, "content-type").as_deref(), Some("text/plain"));
    assert!(header(&dump, "last-modified").is_none());
    let etag = header(&dump, "etag").unwrap();
    let o = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("If-None-Match: {etag}"),
        &url,
    ]);
    assert_eq!(stdout(&o), "304");
    let o = curl(&[&url]);
    assert_eq!(sha256(&o.stdout), sha256(&body));
    let o = curl(&["-r", "39990-", &url]);
    assert_eq!(o.stdout, &body[39990..]);
    let o = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &srv.url(&format!("/provisioning/other/{CFG}")),
    ]);
    assert_eq!(stdout(&o), "403");
    srv.site
        .blocked
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let o = curl(&["-o", "/dev/null", &url]);
    assert!(!o.status.success(), "blocked peer must be closed at accept");
}

#[test]
fn request_limit_per_connection_closes_cleanly() {
    let t = tree();
    let cfg = Config {
        max_requests_per_connection: 2,
        ..Config::default()
    };
    let srv = start(recorder(&t.root), cfg);
    // Three pipelined requests: two answered, the second says close; the third is never read.
    let o = raw(
        srv.addr,
        b"GET /provisioning/phone.xml HTTP/1.1\r\n\r\nGET /provisioning/phone.xml HTTP/1.1\r\n\r\nGET /provisioning/phone.xml HTTP/1.1\r\n\r\n",
    );
    assert_eq!(o.matches("HTTP/1.1 200 OK").count(), 2, "{o}");
    assert_eq!(o.matches("Connection: close").count(), 1, "{o}");
    assert!(o.ends_with("<x/>"), "{o}");
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One `openssl s_client` connection that fetches phone.xml; `extra` picks the version and
/// the session file (-sess_out to save, -sess_in to offer it). Returns stdout.
fn s_client(port: u16, extra: &[&str]) -> String {
    let text = s_client_any(port, extra);
    assert!(text.contains("<x/>"), "no body: {text}");
    text
}

/// [`s_client`] without the check that the body came: stdout and stderr.
fn s_client_any(port: u16, extra: &[&str]) -> String {
    let mut child = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-ign_eof",
        ])
        .args(extra)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl s_client (install openssl)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /provisioning/phone.xml HTTP/1.0\r\n\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// A recorder serving `t` over HTTPS with the self-signed ECDSA pair `http::tls` makes.
fn tls_server(t: &Tree) -> TestServer<impl kpbxd::http::Site> {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let (tls, _) =
        kpbxd::http::tls::self_signed(&t.dir.path().join("tls"), &names, now_unix()).unwrap();
    start(
        recorder(&t.root),
        Config {
            tls: Some(tls),
            ..Config::default()
        },
    )
}

/// The server picks the cheapest suite whatever the client's order (OpenSSL's client lists
/// AES-256-GCM-SHA384 first in both versions) and sends one TLS 1.3 ticket (rustls's default
/// is two): `http::tls::server_config`, measured with bench/https.sh.
#[test]
fn tls_suite_is_aes128_gcm_sha256_with_one_ticket() {
    let t = tree();
    let srv = tls_server(&t);
    let port = srv.addr.port();
    let o = s_client(port, &["-tls1_3"]);
    assert!(o.contains("Cipher is TLS_AES_128_GCM_SHA256"), "{o}");
    assert_eq!(
        o.matches("Post-Handshake New Session Ticket arrived")
            .count(),
        1,
        "{o}"
    );
    let o = s_client(port, &["-tls1_2"]);
    assert!(o.contains("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"), "{o}");
}

#[test]
fn tls_sessions_resume_on_1_2_and_1_3() {
    let t = tree();
    let srv = tls_server(&t);
    let port = srv.addr.port();
    let sess = out_file(&t, "sess.pem");
    // TLS 1.2 with a ticket (no server state needed), TLS 1.2 without tickets (the session-ID
    // cache), TLS 1.3 (tickets).
    for (version, no_ticket) in [("-tls1_2", false), ("-tls1_2", true), ("-tls1_3", false)] {
        let mut first = vec![version, "-sess_out", &sess];
        let mut again = vec![version, "-sess_in", &sess];
        if no_ticket {
            first.push("-no_ticket");
            again.push("-no_ticket");
        }
        let o = s_client(port, &first);
        assert!(o.contains("New, TLSv1."), "{version}: {o}");
        if version == "-tls1_2" {
            assert_eq!(
                o.contains("TLS session ticket lifetime hint"),
                !no_ticket,
                "{version} no_ticket={no_ticket}: {o}"
            );
        }
        let o = s_client(port, &again);
        assert!(
            o.contains("Reused, TLSv1."),
            "{version} no_ticket={no_ticket} not resumed: {o}"
        );
    }
}

/// Warnings logged by the library in this test process (for the refusal line).
struct Warnings(std::sync::Mutex<Vec<String>>);

impl log::Log for Warnings {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            self.0.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

static WARNINGS: Warnings = Warnings(std::sync::Mutex::new(Vec::new()));

/// A client that verifies only RSA signatures is refused, with one log line naming it and
/// the fix, while only the ECDSA certificate exists; once the operator's RSA pair is in
/// `data_dir/tls` it gets that certificate (and curl, verifying it, fetches a file), while a
/// default client still gets ECDSA P-256 (`http::tls::pick`).
#[test]
fn rsa_only_clients_get_the_rsa_pair_or_a_logged_refusal() {
    log::set_logger(&WARNINGS).expect("logger");
    log::set_max_level(log::LevelFilter::Warn);
    let t = tree();
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let tls_dir = t.dir.path().join("tls");
    let serve = || {
        let (tls, _) = kpbxd::http::tls::self_signed(&tls_dir, &names, now_unix()).unwrap();
        start(
            recorder(&t.root),
            Config {
                tls: Some(tls),
                ..Config::default()
            },
        )
    };
    let rsa_13 = ["-tls1_3", "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256"];
    let rsa_12 = ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"];
    let srv = serve();
    let port = srv.addr.port();
    for args in [&rsa_13[..], &rsa_12[..]] {
        let o = s_client_any(port, args);
        assert!(!o.contains("<x/>"), "{args:?} served without RSA: {o}");
        assert!(o.contains("alert"), "{args:?}: {o}");
    }
    let logged: Vec<String> = WARNINGS
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("TLS handshake from 127.0.0.1:"))
        .cloned()
        .collect();
    assert_eq!(logged.len(), 1, "one line a minute: {logged:?}");
    assert!(
        logged[0].contains("rsa-cert.pem") && logged[0].contains("HTTPS key type"),
        "{logged:?}"
    );
    drop(srv);

    // The operator's RSA pair (PKCS#1 key) beside the generated one.
    let cert = tls_dir.join("rsa-cert.pem");
    let key = tls_dir.join("rsa-key.pem");
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl (install openssl)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    openssl(&[
        "req",
        "-x509",
        "-days",
        "2",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key_s,
        "-out",
        cert_s,
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ]);
    openssl(&["rsa", "-in", key_s, "-traditional", "-out", key_s]);
    assert!(
        std::fs::read_to_string(&key)
            .unwrap()
            .contains("BEGIN RSA PRIVATE KEY")
    );
    let srv = serve();
    let port = srv.addr.port();
    for args in [&rsa_13[..], &rsa_12[..]] {
        let o = s_client(port, args);
        assert!(o.contains("Server public key is 2048 bit"), "{args:?}: {o}");
    }
    for args in [&["-tls1_3"][..], &["-tls1_2"][..]] {
        let o = s_client(port, args);
        assert!(o.contains("Server public key is 256 bit"), "{args:?}: {o}");
    }
    // curl limited to ECDHE-RSA on TLS 1.2, verifying the RSA certificate.
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--cacert",
            cert_s,
            "--tlsv1.2",
            "--tls-max",
            "1.2",
            "--ciphers",
            "ECDHE-RSA-AES128-GCM-SHA256",
        ])
        .arg(format!("https://127.0.0.1:{port}/provisioning/phone.xml"))
        .output()
        .expect("curl (install curl)");
    assert!(out.status.success(), "curl: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "<x/>");
}
