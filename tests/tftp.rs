//! Integration tests: the real server on 127.0.0.1 (ephemeral ports) against
//! real clients (curl, atftp, tftp-hpa) and a raw UDP client written here.
//!
//! A missing client program fails the test with the package to install; no
//! test is skipped. Every child process is killed by PID on timeout, every
//! loop is bounded in count and time, and all traffic goes to 127.0.0.1.

// Test helpers outside #[test] functions: a panic is a test failure.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::rc::Rc;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use kpbxd::tftp::packet::{ErrorCode, Mode, Options, Packet, Request, parse};
use kpbxd::tftp::server::{Config, Server};
use kpbxd::tftp::{DirSource, FetchRecord, FileData, FileError, FileSource, Outcome};
use sha2::{Digest, Sha256};

const LOCALHOST: [u8; 4] = [127, 0, 0, 1];

// ---------------------------------------------------------------- fixtures

#[derive(Clone, Debug)]
struct Rec {
    peer: SocketAddr,
    path: String,
    outcome: Outcome,
    bytes: u64,
}

/// Files from a directory, plus generated in-memory files; records fetches.
struct TestSource {
    dir: DirSource,
    mem: HashMap<String, Arc<[u8]>>,
    log: Arc<Mutex<Vec<Rec>>>,
}

impl FileSource for TestSource {
    fn open(&self, peer: SocketAddr, path: &str) -> Result<FileData, FileError> {
        if let Some(m) = self.mem.get(path) {
            return Ok(FileData::Memory(Arc::clone(m)));
        }
        self.dir.open(peer, path)
    }

    fn fetched(&self, r: &FetchRecord<'_>) {
        self.log.lock().unwrap().push(Rec {
            peer: r.peer,
            path: r.path.to_owned(),
            outcome: r.outcome.clone(),
            bytes: r.bytes,
        });
    }
}

struct Srv {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Rec>>>,
}

impl Srv {
    /// Waits (bounded) for a fetch record of `path` and returns it.
    fn record(&self, path: &str) -> Rec {
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Some(r) = self.log.lock().unwrap().iter().find(|r| r.path == path) {
                return r.clone();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "no fetch record for {path:?}: {:?}",
            self.log.lock().unwrap()
        );
    }
}

/// Starts a server on 127.0.0.1:0 in its own thread (it lives until the
/// test process exits; it only holds sockets and a thread).
fn start(root: &Path, mem: HashMap<String, Arc<[u8]>>, tune: impl FnOnce(&mut Config)) -> Srv {
    let mut config = Config {
        listen: SocketAddr::from((LOCALHOST, 0)),
        ..Config::default()
    };
    tune(&mut config);
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let root = root.to_path_buf();
    let log2 = Arc::clone(&log);
    std::thread::spawn(move || {
        let source = TestSource {
            dir: DirSource::new(&root).unwrap(),
            mem,
            log: log2,
        };
        let server = Server::bind(config, Rc::new(source)).unwrap();
        tx.send(server.local_addr().unwrap()).unwrap();
        let _ = smol::block_on(server.serve());
    });
    let addr = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    Srv { addr, log }
}

/// Deterministic pseudo-random bytes.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

fn sha_file(p: &Path) -> [u8; 32] {
    sha(&std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())))
}

const TENANT: &str = "3f2a9c1e-7b4d-4e8a-9c0f-1a2b3c4d5e6f";

/// outer/{secret, root/{small.cfg, exact.bin, mid.bin, TENANT/phone.cfg}}
struct Tree {
    outer: tempfile::TempDir,
}

impl Tree {
    fn new() -> Tree {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        std::fs::create_dir_all(root.join(TENANT)).unwrap();
        std::fs::write(root.join("small.cfg"), bytes(1000, 1)).unwrap();
        std::fs::write(root.join("exact.bin"), bytes(512 * 20, 2)).unwrap();
        std::fs::write(root.join("mid.bin"), bytes(300_001, 3)).unwrap();
        std::fs::write(root.join(TENANT).join("phone.cfg"), bytes(8000, 4)).unwrap();
        std::fs::write(outer.path().join("secret"), b"top secret\n").unwrap();
        Tree { outer }
    }
    fn root(&self) -> PathBuf {
        self.outer.path().join("root")
    }
    fn out(&self, name: &str) -> PathBuf {
        self.outer.path().join(name)
    }
}

// ----------------------------------------------------- external programs

fn require(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "required client `{tool}` not found in PATH: install it with `apt-get install -y {package}`"
    );
}

/// Runs a client with a time limit; kills it by PID when the limit passes.
fn run(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let end = Instant::now() + limit;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} (pid {}) did not finish in {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn curl(srv: &Srv, path: &str, blksize: Option<u16>, out: &Path) -> Output {
    require("curl", "curl");
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "60"]);
    if let Some(b) = blksize {
        c.args(["--tftp-blksize", &b.to_string()]);
    }
    c.arg("-o").arg(out);
    c.arg(format!("tftp://{}/{path}", srv.addr));
    run(&mut c, Duration::from_secs(90))
}

fn atftp(srv: &Srv, path: &str, options: &[&str], out: &Path) -> Output {
    require("atftp", "atftp");
    let mut c = Command::new("atftp");
    for o in options {
        c.args(["--option", o]);
    }
    c.args(["-g", "-r", path, "-l"]).arg(out);
    c.args(["127.0.0.1", &srv.addr.port().to_string()]);
    run(&mut c, Duration::from_secs(90))
}

fn tftp_hpa(srv: &Srv, command: &[&str]) -> Output {
    tftp_hpa_mode(srv, "octet", command)
}

fn tftp_hpa_mode(srv: &Srv, mode: &str, command: &[&str]) -> Output {
    require("tftp", "tftp-hpa");
    let mut c = Command::new("tftp");
    c.args([
        "-v",
        "-m",
        mode,
        "127.0.0.1",
        &srv.addr.port().to_string(),
        "-c",
    ]);
    c.args(command);
    run(&mut c, Duration::from_secs(90))
}

// ------------------------------------------------------------ raw client

struct Raw {
    sock: UdpSocket,
    server: SocketAddr,
}

impl Raw {
    fn new(server: SocketAddr) -> Raw {
        let sock = UdpSocket::bind(SocketAddr::from((LOCALHOST, 0))).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        Raw { sock, server }
    }

    fn send_to(&self, p: &Packet<'_>, dst: SocketAddr) {
        self.sock.send_to(&p.to_vec(), dst).unwrap();
    }

    fn rrq(&self, filename: &str, options: Options) {
        let p = Packet::Rrq(Request {
            filename,
            mode: Mode::Octet,
            options,
        });
        self.send_to(&p, self.server);
    }

    /// Next datagram, or None after the read timeout.
    fn recv(&self) -> Option<(Vec<u8>, SocketAddr)> {
        let mut buf = vec![0u8; 70_000];
        match self.sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                buf.truncate(n);
                Some((buf, from))
            }
            Err(_) => None,
        }
    }

    fn expect_error(&self) -> (ErrorCode, String) {
        let (d, _) = self.recv().expect("expected an ERROR packet");
        match parse(&d) {
            Ok(Packet::Error { code, message }) => (code, message.to_owned()),
            other => panic!("expected ERROR, got {other:?}"),
        }
    }

    /// A complete RFC 7440 download; returns the content, the OACK (if any)
    /// and the transfer's address.
    fn fetch(&self, filename: &str, options: Options) -> (Vec<u8>, Option<Options>, SocketAddr) {
        self.rrq(filename, options);
        let mut blksize = 512usize;
        let mut window = 1u64;
        let mut oack = None;
        let mut content = Vec::new();
        let mut next: u64 = 1;
        let mut since_ack = 0;
        let mut tid: Option<SocketAddr> = None;
        let end = Instant::now() + Duration::from_secs(60);
        for _ in 0..1_000_000 {
            assert!(
                Instant::now() < end,
                "raw fetch of {filename} took too long"
            );
            let (d, from) = self.recv().expect("server went silent");
            if *tid.get_or_insert(from) != from {
                continue;
            }
            match parse(&d).unwrap() {
                Packet::Oack(o) if next == 1 => {
                    blksize = o.blksize.map_or(512, usize::from);
                    window = o.windowsize.map_or(1, u64::from);
                    oack = Some(o);
                    self.send_to(&Packet::Ack(0), from);
                }
                Packet::Data { block, data } => {
                    if block == next as u16 {
                        content.extend_from_slice(data);
                        next += 1;
                        since_ack += 1;
                        if data.len() < blksize {
                            self.send_to(&Packet::Ack(block), from);
                            return (content, oack, from);
                        }
                        if since_ack >= window {
                            self.send_to(&Packet::Ack(block), from);
                            since_ack = 0;
                        }
                    } else {
                        self.send_to(&Packet::Ack((next - 1) as u16), from);
                        since_ack = 0;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        panic!("raw fetch did not end");
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn curl_fetches_small_exact_tenant_and_memory_files_with_blksize() {
    let tree = Tree::new();
    let generated: Arc<[u8]> = bytes(4321, 9).into();
    let mem = HashMap::from([(format!("{TENANT}/gen.cfg"), Arc::clone(&generated))]);
    let srv = start(&tree.root(), mem, |_| {});
    for (path, blk) in [
        ("small.cfg", Some(1428)),
        ("exact.bin", Some(512)),
        ("exact.bin", Some(1024)),
        ("mid.bin", Some(1468)),
        ("mid.bin", None),
    ] {
        let out = tree.out("curl.out");
        let o = curl(&srv, path, blk, &out);
        assert!(o.status.success(), "curl {path} {blk:?}: {}", text(&o));
        assert_eq!(sha_file(&out), sha_file(&tree.root().join(path)), "{path}");
    }
    let out = tree.out("tenant.out");
    let o = curl(&srv, &format!("{TENANT}/phone.cfg"), Some(1428), &out);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        sha_file(&out),
        sha_file(&tree.root().join(TENANT).join("phone.cfg"))
    );

    let out = tree.out("gen.out");
    let o = curl(&srv, &format!("{TENANT}/gen.cfg"), Some(1000), &out);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sha_file(&out), sha(&generated));
    let r = srv.record(&format!("{TENANT}/gen.cfg"));
    assert_eq!((r.outcome, r.bytes), (Outcome::Completed, 4321));
    assert_eq!(r.peer.ip(), std::net::IpAddr::from(LOCALHOST));

    // Missing file: curl reports TFTP "file not found" as exit code 68.
    let o = curl(&srv, "missing.cfg", Some(1428), &tree.out("missing.out"));
    assert_eq!(o.status.code(), Some(68), "{}", text(&o));
    assert_eq!(srv.record("missing.cfg").outcome, Outcome::NotFound);
}

#[test]
fn atftp_fetches_with_blksize_windowsize_tsize_and_leading_slash() {
    let tree = Tree::new();
    let srv = start(&tree.root(), HashMap::new(), |_| {});
    let cases: &[(&str, &[&str])] = &[
        ("small.cfg", &[]),
        ("/exact.bin", &[]),
        ("exact.bin", &["blksize 1024", "tsize"]),
        ("mid.bin", &["blksize 1428"]),
        ("mid.bin", &["blksize 1428", "windowsize 8", "tsize"]),
        ("mid.bin", &["windowsize 4"]),
        (
            "/3f2a9c1e-7b4d-4e8a-9c0f-1a2b3c4d5e6f/phone.cfg",
            &["windowsize 8"],
        ),
    ];
    for (i, (path, opts)) in cases.iter().enumerate() {
        let out = tree.out(&format!("atftp{i}.out"));
        let o = atftp(&srv, path, opts, &out);
        assert!(o.status.success(), "atftp {path} {opts:?}: {}", text(&o));
        let want = tree.root().join(path.trim_start_matches('/'));
        assert_eq!(sha_file(&out), sha_file(&want), "atftp {path} {opts:?}");
    }
    let o = atftp(&srv, "missing.cfg", &[], &tree.out("m.out"));
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("File not found"),
        "{}",
        text(&o)
    );
}

#[test]
fn tftp_hpa_fetches_in_octet_mode_and_cannot_put() {
    let tree = Tree::new();
    let srv = start(&tree.root(), HashMap::new(), |_| {});
    for path in ["small.cfg", "exact.bin", "mid.bin"] {
        let out = tree.out("hpa.out");
        let o = tftp_hpa(&srv, &["get", path, out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("Received"),
            "{}",
            text(&o)
        );
        assert_eq!(sha_file(&out), sha_file(&tree.root().join(path)), "{path}");
    }
    // tftp-hpa exits 0 even on errors; its message (stdout or stderr) tells.
    let o = tftp_hpa(
        &srv,
        &["get", "missing.cfg", tree.out("m.out").to_str().unwrap()],
    );
    assert!(
        text(&o).contains("Error code 1: File not found"),
        "{}",
        text(&o)
    );
    let o = tftp_hpa(
        &srv,
        &[
            "put",
            tree.root().join("small.cfg").to_str().unwrap(),
            "up.cfg",
        ],
    );
    assert!(
        text(&o).contains("Error code 2: Access violation"),
        "{}",
        text(&o)
    );
    assert!(!tree.root().join("up.cfg").exists());
    assert_eq!(srv.record("up.cfg").outcome, Outcome::WriteRefused);
}

/// Netascii is converted on the wire (LF to CR LF, a bare CR to CR NUL,
/// RFC 764/1350), so tftp-hpa in netascii mode writes back exactly the file.
#[test]
fn netascii_is_converted_on_the_wire_and_back_by_tftp_hpa() {
    let tree = Tree::new();
    let text_file = b"[phone]\nserver=198.51.100.7\nmark=a\rb\n".repeat(40);
    std::fs::write(tree.root().join("lines.cfg"), &text_file).unwrap();
    let srv = start(&tree.root(), HashMap::new(), |_| {});
    let out = tree.out("ascii.out");
    let o = tftp_hpa_mode(
        &srv,
        "netascii",
        &["get", "lines.cfg", out.to_str().unwrap()],
    );
    assert!(text(&o).contains("Received"), "{}", text(&o));
    assert_eq!(std::fs::read(&out).unwrap(), text_file);
    // On the wire: the converted bytes.
    let raw = Raw::new(srv.addr);
    raw.sock
        .send_to(b"\x00\x01lines.cfg\0netascii\0", srv.addr)
        .unwrap();
    let mut wire = Vec::new();
    for _ in 0..100 {
        let (d, from) = raw.recv().expect("data");
        let Ok(Packet::Data { block, data }) = parse(&d) else {
            panic!("expected DATA")
        };
        wire.extend_from_slice(data);
        raw.send_to(&Packet::Ack(block), from);
        if data.len() < 512 {
            break;
        }
    }
    assert_eq!(wire, kpbxd::tftp::packet::to_netascii(&text_file));
    assert!(wire.starts_with(b"[phone]\r\nserver"));
    assert!(wire.windows(4).any(|w| w == b"a\r\0b"));
}

/// A file over 32 MiB at 512-byte blocks: 67,586 blocks, so the block
/// number wraps 65535 -> 0. Served from disk, checked by hash, with all
/// three clients.
#[test]
fn over_32_mib_rollover_with_all_clients() {
    let tree = Tree::new();
    let big = tree.root().join("firmware.bin");
    let size = 33 * 1024 * 1024 + 777;
    std::fs::write(&big, bytes(size, 7)).unwrap();
    let want = sha_file(&big);
    let srv = start(&tree.root(), HashMap::new(), |_| {});

    let out = tree.out("big-atftp.out");
    let o = atftp(&srv, "firmware.bin", &[], &out);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sha_file(&out), want, "atftp, 512-byte blocks");
    std::fs::remove_file(&out).unwrap();

    let out = tree.out("big-curl.out");
    let o = curl(&srv, "firmware.bin", Some(512), &out);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sha_file(&out), want, "curl, 512-byte blocks");
    std::fs::remove_file(&out).unwrap();

    let out = tree.out("big-hpa.out");
    let o = tftp_hpa(&srv, &["get", "firmware.bin", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(sha_file(&out), want, "tftp-hpa, 512-byte blocks");
    std::fs::remove_file(&out).unwrap();

    // And through the raw client with blksize 512 + windowsize 16.
    let raw = Raw::new(srv.addr);
    let opts = Options {
        blksize: Some(512),
        windowsize: Some(16),
        ..Options::default()
    };
    let (content, _, _) = raw.fetch("firmware.bin", opts);
    assert_eq!(sha(&content), want, "raw, windowsize 16");
    let recs: Vec<Rec> = srv.log.lock().unwrap().clone();
    assert!(
        recs.iter().all(|r| r.outcome == Outcome::Completed),
        "{recs:?}"
    );
}

#[test]
fn oack_carries_only_the_options_asked_for() {
    let tree = Tree::new();
    let srv = start(&tree.root(), HashMap::new(), |_| {});
    let size = 300_001u64;

    // No options: DATA 1 straight away.
    let raw = Raw::new(srv.addr);
    raw.rrq("mid.bin", Options::default());
    let (d, _) = raw.recv().unwrap();
    assert!(matches!(parse(&d), Ok(Packet::Data { block: 1, data }) if data.len() == 512));

    // blksize alone comes back alone.
    let raw = Raw::new(srv.addr);
    raw.rrq(
        "mid.bin",
        Options {
            blksize: Some(1000),
            ..Options::default()
        },
    );
    let (d, _) = raw.recv().unwrap();
    assert_eq!(d, b"\x00\x06blksize\x001000\0");

    // Too-large blksize is clamped to 1468, tsize gets the size, windowsize
    // is granted; unknown options are not echoed.
    let raw = Raw::new(srv.addr);
    let mut wire = Packet::Rrq(Request {
        filename: "mid.bin",
        mode: Mode::Octet,
        options: Options {
            blksize: Some(9000),
            tsize: Some(0),
            windowsize: Some(8),
            timeout: None,
        },
    })
    .to_vec();
    wire.extend_from_slice(b"multicast\0\0");
    raw.sock.send_to(&wire, srv.addr).unwrap();
    let (d, _) = raw.recv().unwrap();
    assert_eq!(
        parse(&d),
        Ok(Packet::Oack(Options {
            blksize: Some(1468),
            tsize: Some(size),
            windowsize: Some(8),
            timeout: None
        }))
    );

    // A full windowed transfer through the raw client.
    let raw = Raw::new(srv.addr);
    let (content, oack, _) = raw.fetch(
        "mid.bin",
        Options {
            blksize: Some(1428),
            windowsize: Some(8),
            tsize: Some(0),
            timeout: Some(2),
        },
    );
    assert_eq!(oack.unwrap().timeout, Some(2));
    assert_eq!(sha(&content), sha_file(&tree.root().join("mid.bin")));
}

#[test]
fn exact_multiple_ends_with_an_empty_data_block_on_the_wire() {
    let tree = Tree::new();
    let srv = start(&tree.root(), HashMap::new(), |_| {});
    let raw = Raw::new(srv.addr);
    raw.rrq("exact.bin", Options::default());
    let mut last_len = None;
    for block in 1..=21u16 {
        let (d, from) = raw.recv().unwrap();
        let Ok(Packet::Data { block: b, data }) = parse(&d) else {
            panic!("expected DATA")
        };
        assert_eq!(b, block);
        last_len = Some(data.len());
        raw.send_to(&Packet::Ack(b), from);
    }
    assert_eq!(last_len, Some(0), "block 21 of a 20*512 file is empty");
    assert_eq!(srv.record("exact.bin").bytes, 10240);
}

#[test]
fn wrong_tid_gets_error_5_while_the_transfer_completes() {
    let tree = Tree::new();
    let srv = start(&tree.root(), HashMap::new(), |_| {});
    let raw = Raw::new(srv.addr);
    let intruder = Raw::new(srv.addr);
    raw.rrq("mid.bin", Options::default());
    let mut content = Vec::new();
    let (d, tid) = raw.recv().unwrap();
    let Ok(Packet::Data { block: 1, data }) = parse(&d) else {
        panic!("expected DATA 1")
    };
    content.extend_from_slice(data);

    // The intruder ACKs block 1 from another port: error 5 to the intruder.
    intruder.send_to(&Packet::Ack(1), tid);
    let (code, _) = intruder.expect_error();
    assert_eq!(code, ErrorCode::UnknownTransferId);
    // The intruder's ACK did not advance the transfer: nothing new yet.
    raw.sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(
        raw.recv().is_none(),
        "a foreign ACK must not move the transfer"
    );
    raw.sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();

    raw.send_to(&Packet::Ack(1), tid);
    // Bounded: mid.bin has 586 blocks.
    for next in 2u16..2000 {
        let (d, from) = raw.recv().unwrap();
        assert_eq!(from, tid);
        let Ok(Packet::Data { block, data }) = parse(&d) else {
            panic!("expected DATA")
        };
        assert_eq!(block, next);
        content.extend_from_slice(data);
        raw.send_to(&Packet::Ack(block), from);
        if next == 300 {
            // Once more mid-transfer, with a garbage packet.
            intruder.sock.send_to(b"\x00\x04\x00", tid).unwrap();
            assert_eq!(intruder.expect_error().0, ErrorCode::UnknownTransferId);
        }
        if data.len() < 512 {
            break;
        }
    }
    assert_eq!(sha(&content), sha_file(&tree.root().join("mid.bin")));
    assert_eq!(srv.record("mid.bin").outcome, Outcome::Completed);
}

#[test]
fn duplicate_rrq_from_the_same_port_starts_one_transfer() {
    let tree = Tree::new();
    // Default 1 s retransmission timeout: no DATA repeats within 250 ms.
    let srv = start(&tree.root(), HashMap::new(), |_| {});
    let raw = Raw::new(srv.addr);
    raw.rrq("small.cfg", Options::default());
    raw.rrq("small.cfg", Options::default());
    raw.rrq("small.cfg", Options::default());
    raw.sock
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..10 {
        match raw.recv() {
            Some((d, from)) => seen.push((d, from)),
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        1,
        "one DATA 1 for three RRQs within the timeout"
    );
    let (d, from) = &seen[0];
    assert!(matches!(parse(d), Ok(Packet::Data { block: 1, .. })));
    raw.send_to(&Packet::Ack(1), *from);
    let (d, _) = raw.recv().unwrap();
    assert!(matches!(parse(&d), Ok(Packet::Data { block: 2, .. })));
    raw.send_to(&Packet::Ack(2), *from);
    assert_eq!(srv.record("small.cfg").outcome, Outcome::Completed);
    assert_eq!(srv.log.lock().unwrap().len(), 1);
}

#[test]
fn excess_transfers_are_refused_and_retries_are_bounded() {
    let tree = Tree::new();
    let srv = start(&tree.root(), HashMap::new(), |c| {
        c.max_transfers = 2;
        c.limits.timeout = Duration::from_millis(200);
        c.limits.max_retries = 2;
    });
    // Two silent clients occupy both slots.
    let a = Raw::new(srv.addr);
    let b = Raw::new(srv.addr);
    a.rrq("mid.bin", Options::default());
    b.rrq("mid.bin", Options::default());
    assert!(a.recv().is_some() && b.recv().is_some());
    let c = Raw::new(srv.addr);
    c.rrq("small.cfg", Options::default());
    let (code, msg) = c.expect_error();
    assert_eq!((code, msg.as_str()), (ErrorCode::NotDefined, "Server busy"));
    assert_eq!(srv.record("small.cfg").outcome, Outcome::Busy);

    // a never ACKs: DATA 1 is sent 1 + 2 times, then an error, then silence.
    let start = Instant::now();
    let mut data1 = 1;
    let mut got_error = false;
    a.sock
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    for _ in 0..10 {
        match a.recv().map(|(d, _)| d) {
            Some(d) => match parse(&d) {
                Ok(Packet::Data { block: 1, .. }) => data1 += 1,
                Ok(Packet::Error { .. }) => got_error = true,
                other => panic!("unexpected {other:?}"),
            },
            None => break,
        }
    }
    assert_eq!(data1, 3);
    assert!(got_error);
    assert!(start.elapsed() < Duration::from_secs(3));
    let recs = srv.log.lock().unwrap().clone();
    assert!(
        recs.iter()
            .filter(|r| r.path == "mid.bin")
            .all(|r| r.outcome == Outcome::TimedOut)
    );
    // The slots are free again.
    let d = Raw::new(srv.addr);
    let (content, _, _) = d.fetch("small.cfg", Options::default());
    assert_eq!(sha(&content), sha_file(&tree.root().join("small.cfg")));
}

#[test]
fn write_requests_are_refused_with_error_2() {
    let tree = Tree::new();
    let srv = start(&tree.root(), HashMap::new(), |_| {});
    let raw = Raw::new(srv.addr);
    let p = Packet::Wrq(Request {
        filename: "new.cfg",
        mode: Mode::Octet,
        options: Options::default(),
    });
    raw.send_to(&p, srv.addr);
    assert_eq!(raw.expect_error().0, ErrorCode::AccessViolation);
    assert!(!tree.root().join("new.cfg").exists());
    // Mode mail is refused with error 4.
    let raw = Raw::new(srv.addr);
    let p = Packet::Rrq(Request {
        filename: "small.cfg",
        mode: Mode::Mail,
        options: Options::default(),
    });
    raw.send_to(&p, srv.addr);
    assert_eq!(raw.expect_error().0, ErrorCode::IllegalOperation);
    // An unknown mode and an empty file name get error 4 as from tftpd-hpa
    // (they used to get no answer at all, and the client waited it out).
    for wire in [
        &b"\x00\x01small.cfg\0binary\0"[..],
        b"\x00\x01\0octet\0",
        b"\x00\x02\0netascii\0",
    ] {
        let raw = Raw::new(srv.addr);
        raw.sock.send_to(wire, srv.addr).unwrap();
        let (code, msg) = raw.expect_error();
        assert_eq!(code, ErrorCode::IllegalOperation, "{wire:?}: {msg}");
    }
}

#[test]
fn traversal_attempts_are_refused() {
    let tree = Tree::new();
    let srv = start(&tree.root(), HashMap::new(), |_| {});
    for path in [
        "../secret",
        "/../secret",
        "..",
        "3f2a9c1e-7b4d-4e8a-9c0f-1a2b3c4d5e6f/../../secret",
        "..\\secret",
        "a\\..\\..\\secret",
        "//secret",
        "./small.cfg",
    ] {
        let raw = Raw::new(srv.addr);
        raw.rrq(path, Options::default());
        let (code, _) = raw.expect_error();
        assert_eq!(code, ErrorCode::AccessViolation, "{path}");
        assert_eq!(srv.record(path).outcome, Outcome::BadPath, "{path}");
    }
    // An absolute path outside the root is just a name inside it.
    let raw = Raw::new(srv.addr);
    raw.rrq("/etc/passwd", Options::default());
    assert_eq!(raw.expect_error().0, ErrorCode::FileNotFound);

    // The same with a real client: nothing is written.
    let out = tree.out("trav.out");
    let o = atftp(&srv, "../secret", &[], &out);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Access violation"),
        "{}",
        text(&o)
    );
    let got = std::fs::read(&out).unwrap_or_default();
    assert!(!got.starts_with(b"top secret"));
}

#[test]
fn garbage_on_the_listen_port_is_ignored() {
    let tree = Tree::new();
    let srv = start(&tree.root(), HashMap::new(), |_| {});
    let raw = Raw::new(srv.addr);
    for g in [
        &b""[..],
        b"\x00",
        b"\x00\x04\x00\x01",
        b"\x00\x03\x00\x01abc",
        b"\x00\x01x",
    ] {
        raw.sock.send_to(g, srv.addr).unwrap();
    }
    raw.sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(raw.recv().is_none());
    raw.sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let (content, _, _) = raw.fetch("small.cfg", Options::default());
    assert_eq!(content.len(), 1000);
}

/// A small boot storm: 300 phones send their RRQs back to back, each for
/// its own generated file; all must complete byte-exact, none refused.
#[test]
fn storm_of_300_simultaneous_requests() {
    let tree = Tree::new();
    let files: HashMap<String, Arc<[u8]>> = (0..300u64)
        .map(|i| {
            (
                format!("{TENANT}/phone{i:03}.cfg"),
                bytes(7000 + i as usize * 7, i + 100).into(),
            )
        })
        .collect();
    let srv = start(&tree.root(), files.clone(), |_| {});
    struct Phone {
        sock: UdpSocket,
        name: String,
        got: Vec<u8>,
        next: u16,
        done: bool,
    }
    let mut phones: Vec<Phone> = (0..300u64)
        .map(|i| {
            let sock = UdpSocket::bind(SocketAddr::from((LOCALHOST, 0))).unwrap();
            sock.set_nonblocking(true).unwrap();
            Phone {
                sock,
                name: format!("{TENANT}/phone{i:03}.cfg"),
                got: Vec::new(),
                next: 1,
                done: false,
            }
        })
        .collect();
    for p in &phones {
        let rrq = Packet::Rrq(Request {
            filename: &p.name,
            mode: Mode::Octet,
            options: Options::default(),
        });
        p.sock.send_to(&rrq.to_vec(), srv.addr).unwrap();
    }
    let end = Instant::now() + Duration::from_secs(30);
    let mut buf = vec![0u8; 2048];
    while phones.iter().any(|p| !p.done) {
        if Instant::now() >= end {
            let stuck: Vec<_> = phones
                .iter()
                .filter(|p| !p.done)
                .map(|p| (p.name.clone(), p.next))
                .collect();
            panic!(
                "storm did not finish in 30 s: {} stuck {:?}",
                stuck.len(),
                &stuck[..stuck.len().min(10)]
            );
        }
        let mut progress = false;
        for p in phones.iter_mut().filter(|p| !p.done) {
            // Bounded per phone per pass.
            for _ in 0..4 {
                let Ok((n, from)) = p.sock.recv_from(&mut buf) else {
                    break;
                };
                progress = true;
                match parse(&buf[..n]) {
                    Ok(Packet::Data { block, data }) => {
                        if block == p.next {
                            p.got.extend_from_slice(data);
                            p.next += 1;
                            p.done = data.len() < 512;
                        }
                        p.sock.send_to(&Packet::Ack(block).to_vec(), from).unwrap();
                        if p.done {
                            break;
                        }
                    }
                    other => panic!("{}: unexpected {other:?}", p.name),
                }
            }
        }
        if !progress {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for p in &phones {
        assert_eq!(sha(&p.got), sha(&files[&p.name]), "{}", p.name);
    }
    let end = Instant::now() + Duration::from_secs(10);
    while srv.log.lock().unwrap().len() < 300 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    let recs = srv.log.lock().unwrap().clone();
    assert_eq!(recs.len(), 300);
    assert!(
        recs.iter().all(|r| r.outcome == Outcome::Completed),
        "{recs:?}"
    );
}
