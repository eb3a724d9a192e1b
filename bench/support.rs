//! Shared by the benchmarks: a release daemon on a temp dir and a client
//! speaking the control protocol over one connection.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kpbxd::control::{Command as Cmd, Reply, Request, wire};

pub struct Daemon {
    pub child: Child,
    pub client: Client,
    pub data_dir: PathBuf,
}

impl Daemon {
    pub fn start(dir: &Path) -> Daemon {
        std::fs::create_dir_all(dir).expect("dir");
        let socket = dir.join("kpbxd.sock");
        let config = dir.join("kpbxd.conf");
        let data_dir = dir.join("data");
        std::fs::write(
            &config,
            format!(
                "data_dir = {}\ncontrol_socket = {}\nlog_level = warn\nhttp_listen = off\n\
                 https_listen = off\ntftp_listen = off\nmgmt_listen = off\n",
                data_dir.display(),
                socket.display()
            ),
        )
        .expect("config");
        let child = Command::new(env!("CARGO_BIN_EXE_kpbxd"))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn kpbxd");
        Daemon {
            child,
            client: Client::connect(&socket),
            data_dir,
        }
    }

    pub fn request(&mut self, command: Cmd) -> Reply {
        self.client.request(command)
    }

    /// Runs a command that must commit; returns how long it took.
    pub fn commit(&mut self, command: Cmd) -> Duration {
        self.client.commit(command)
    }

    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn rss_kib(pid: u32) -> u64 {
    status_kib(&pid.to_string(), "VmRSS")
}

/// A `kB` field of `/proc/<proc>/status` (`proc` a PID or `self`), e.g. `VmRSS` or
/// `VmHWM` (peak); 0 if unreadable.
pub fn status_kib(proc: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{proc}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Where temp stores go: the disk the data would be on, not a tmpfs.
pub fn bench_dir() -> PathBuf {
    let p = std::env::var_os("BENCH_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench"),
        Into::into,
    );
    std::fs::create_dir_all(&p).expect("bench dir");
    p
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One control-socket connection (the `kpbx` protocol).
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// `kpbx ha status`.
    pub fn ha(&mut self) -> kpbxd::control::HaStatusView {
        match self.request(Cmd::HaStatus) {
            Reply::HaStatus(v) => *v,
            other => panic!("unexpected reply {other:?}"),
        }
    }
}

impl Client {
    /// Connects, waiting (at most 10 s) for the daemon to create its socket.
    pub fn connect(socket: &Path) -> Client {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(stream) = UnixStream::connect(socket) {
                return Client { stream };
            }
            assert!(
                Instant::now() < deadline,
                "no control socket at {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn request(&mut self, command: Cmd) -> Reply {
        let req = Request { command };
        self.stream
            .write_all(&wire::encode_request(&req))
            .expect("send");
        let mut header = [0u8; wire::HEADER_LEN];
        self.stream.read_exact(&mut header).expect("header");
        let len = wire::parse_header(&header, wire::MAX_REPLY).expect("reply header");
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).expect("payload");
        wire::decode_reply(&payload).expect("reply").reply
    }

    /// Runs a command that must commit; returns how long it took.
    pub fn commit(&mut self, command: Cmd) -> Duration {
        let start = Instant::now();
        match self.request(command) {
            Reply::Committed(c) => assert!(c.txid.is_some(), "nothing committed"),
            other => panic!("unexpected reply {other:?}"),
        }
        start.elapsed()
    }
}
