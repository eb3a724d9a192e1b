//! Test harness: the real server on 127.0.0.1:0 in a background thread, curl as the client.
#![allow(dead_code, clippy::unwrap_used)]

use kpbxd::http::dir::DirSite;
use kpbxd::http::{Config, Fetch, Lookup, Path, RequestInfo, Server, Site, Stats};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Panics (fails the test) when a required tool is missing: never skips.
pub fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not installed: apt-get update && apt-get install -y {package}"
    );
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    pub path: Option<String>,
    pub user_agent: Option<String>,
    pub status: u16,
    pub bytes: u64,
}

/// DirSite plus fetch recording and accept counting.
pub struct Recorder {
    pub inner: DirSite,
    pub log: Mutex<Vec<Logged>>,
    pub admitted: AtomicU64,
}

impl Site for Recorder {
    fn admit(&self, _peer: SocketAddr) -> bool {
        self.admitted.fetch_add(1, Ordering::SeqCst);
        true
    }
    fn get(&self, path: &Path, info: &RequestInfo<'_>) -> Lookup {
        self.inner.get(path, info)
    }
    fn report(&self, f: &Fetch<'_>) {
        self.log.lock().unwrap().push(Logged {
            path: f.path.map(|p| p.to_slash_string()),
            user_agent: f.user_agent.map(str::to_owned),
            status: f.status,
            bytes: f.bytes,
        });
    }
}

pub struct TestServer<S: Site> {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    pub site: Arc<S>,
    stop: Option<smol::channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<S: Site> TestServer<S> {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl<S: Site> Drop for TestServer<S> {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn start<S: Site>(site: S, cfg: Config) -> TestServer<S> {
    let site = Arc::new(site);
    let server = Server::new(site.clone(), cfg);
    let stats = server.stats();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = smol::channel::bounded::<()>(1);
    let thread = std::thread::spawn(move || {
        smol::block_on(smol::future::or(
            async {
                server.run(listener).await.unwrap();
            },
            async {
                let _ = rx.recv().await;
            },
        ));
    });
    TestServer {
        addr,
        stats,
        site,
        stop: Some(tx),
        thread: Some(thread),
    }
}

pub fn recorder(dir: &std::path::Path) -> Recorder {
    Recorder {
        inner: DirSite::new(dir, "provisioning").unwrap(),
        log: Mutex::new(Vec::new()),
        admitted: AtomicU64::new(0),
    }
}

/// Runs a command with a hard deadline; on expiry kills it by PID and fails.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => {
            let _ = waiter.join();
            out.unwrap()
        }
        Err(_) => {
            // Kill exactly our child, by its PID.
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let _ = waiter.join();
            panic!("{cmd:?} did not finish within {limit:?}; killed pid {pid}");
        }
    }
}

/// curl with common safety flags; returns the Output.
pub fn curl(args: &[&str]) -> Output {
    require("curl", "curl");
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "60", "--noproxy", "*"])
        .args(args);
    run(&mut c, Duration::from_secs(90))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Deterministic pseudo-random bytes.
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Value of header `name` in a `curl -D -` dump (last response), case-insensitive.
pub fn header(dump: &str, name: &str) -> Option<String> {
    let last = dump.rsplit("HTTP/").next()?;
    last.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

pub fn status_line(dump: &str) -> String {
    dump.lines()
        .rfind(|l| l.starts_with("HTTP/"))
        .unwrap_or("")
        .to_owned()
}

/// Polls `cond` every 20 ms for at most `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}
