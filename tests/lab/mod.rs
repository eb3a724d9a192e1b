//! Network-namespace lab for the adapter tests.
//!
//! Every namespace is named `hn<pid>-<n>-<tag>-<role>` (unique per process
//! and test; another prefix than `hn` with [`Lab::prefixed`]) and deleted in `Drop`, which also runs while a failing test
//! unwinds. Addresses come only from 198.51.100.0/24 and 192.0.2.0/24, and
//! no namespace has a route out, so no traffic leaves the lab.
//!
//! How code enters a namespace: a fresh OS thread calls `setns(CLONE_NEWNET)`
//! on `/run/netns/<name>` and then builds its own `smol::LocalExecutor`.
//! The network namespace is a per-thread attribute in Linux, so this
//! changes nothing for the test harness's other threads, needs no `fork`
//! of a multi-threaded process (where only async-signal-safe calls are
//! allowed before `exec`), and keeps panics and return values as ordinary
//! Rust values (`join` + `resume_unwind`). Sockets remember the namespace
//! they were created in, so the shared async-io reactor thread can poll
//! them from anywhere; child processes forked by that thread inherit its
//! namespace.

#![allow(dead_code)]

use std::fs::File;
use std::future::Future;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Fails the test (never skips) unless we are root and `ip` works.
pub fn require_root_and_ip() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "netns tests need root (run `cargo test` as root); refusing to skip"
    );
    let ok = Command::new("ip")
        .arg("-V")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`ip` (iproute2) is missing; install it, refusing to skip"
    );
}

pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
}

impl Lab {
    pub fn new(tag: &str) -> Self {
        Self::prefixed("hn", tag)
    }

    /// [`Lab::new`] with namespaces named `<prefix><pid>-<n>-<tag>-<role>`
    /// (suites that run beside the HA suites pick their own prefix).
    pub fn prefixed(prefix: &str, tag: &str) -> Self {
        require_root_and_ip();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self {
            prefix: format!("{prefix}{}-{n}-{tag}", std::process::id()),
            namespaces: Vec::new(),
        }
    }

    /// Full name of the namespace for `role`.
    pub fn name(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// Creates a namespace with `lo` up and returns its full name.
    pub fn ns(&mut self, role: &str) -> String {
        let name = self.name(role);
        run("ip", &["netns", "add", &name]);
        self.namespaces.push(name.clone());
        self.ip(&name, "link set lo up");
        name
    }

    /// `ip -n <ns> <args>`; panics with stderr on failure.
    pub fn ip(&self, ns: &str, args: &str) -> String {
        let mut argv = vec!["-n", ns];
        argv.extend(args.split_whitespace());
        run("ip", &argv)
    }

    /// Runs a shell command inside the namespace (`ip netns exec`).
    pub fn sh(&self, ns: &str, script: &str) -> String {
        run("ip", &["netns", "exec", ns, "sh", "-c", script])
    }

    /// veth pair `if_a`@`ns_a` <-> `if_b`@`ns_b`, both up.
    pub fn veth(&self, ns_a: &str, if_a: &str, ns_b: &str, if_b: &str) {
        self.ip(
            ns_a,
            &format!("link add {if_a} type veth peer name {if_b} netns {ns_b}"),
        );
        self.ip(ns_a, &format!("link set {if_a} up"));
        self.ip(ns_b, &format!("link set {if_b} up"));
    }

    /// The standard HA topology: nodes `a` and `b`, each with `lan0` on a
    /// bridge in namespace `sw` and `sync0` on a direct veth.
    /// a: lan0 198.51.100.1/24, sync0 192.0.2.1/24; b: .2 on both.
    pub fn pair(tag: &str) -> (Self, String, String) {
        Self::pair_in(Self::new(tag))
    }

    /// [`Lab::pair`] in a lab made by the caller (e.g. [`Lab::prefixed`]).
    pub fn pair_in(mut lab: Self) -> (Self, String, String) {
        let a = lab.ns("a");
        let b = lab.ns("b");
        let sw = lab.ns("sw");
        lab.ip(&sw, "link add br0 type bridge");
        lab.ip(&sw, "link set br0 up");
        for (ns, port, last) in [(&a, "pa", 1), (&b, "pb", 2)] {
            lab.veth(&sw, port, ns, "lan0");
            lab.ip(&sw, &format!("link set {port} master br0"));
            lab.ip(ns, &format!("addr add 198.51.100.{last}/24 dev lan0"));
        }
        lab.veth(&a, "sync0", &b, "sync0");
        lab.ip(&a, "addr add 192.0.2.1/24 dev sync0");
        lab.ip(&b, "addr add 192.0.2.2/24 dev sync0");
        (lab, a, b)
    }

    /// Runs `make()` (which builds the future) on a new thread inside `ns`
    /// under a `LocalExecutor`; returns its join handle.
    pub fn spawn_in<F, Fut, T>(&self, ns: &str, make: F) -> JoinHandle<T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        let path = format!("/run/netns/{ns}");
        let ns_file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        std::thread::spawn(move || {
            nix::sched::setns(&ns_file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            drop(ns_file);
            let ex = smol::LocalExecutor::new();
            smol::block_on(ex.run(make()))
        })
    }

    /// [`Lab::spawn_in`] and wait; a panic inside fails the caller.
    pub fn run_in<F, Fut, T>(&self, ns: &str, make: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T>,
        T: Send + 'static,
    {
        join(self.spawn_in(ns, make))
    }
}

pub fn join<T>(h: JoinHandle<T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            let out = Command::new("ip").args(["netns", "del", ns]).output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => eprintln!("ip netns del {ns}: {}", String::from_utf8_lossy(&o.stderr)),
                Err(e) => eprintln!("ip netns del {ns}: {e}"),
            }
        }
    }
}

/// Runs a command; panics (with stderr) unless it succeeds.
pub fn run(prog: &str, args: &[&str]) -> String {
    let out = Command::new(prog)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{prog} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `addr_info` entry for `addr` in `ip -j addr show dev <dev>`.
pub fn addr_info(lab: &Lab, ns: &str, dev: &str, addr: &str) -> Option<serde_json::Value> {
    let out = lab.ip(ns, &format!("-j addr show dev {dev}"));
    let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j output is JSON");
    v.as_array()?
        .iter()
        .filter_map(|l| l["addr_info"].as_array())
        .flatten()
        .find(|a| a["local"] == addr)
        .cloned()
}

/// Polls `cond` every 50 ms until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Awaits `fut` for at most `limit`.
pub async fn within<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    smol::future::or(async { Some(fut.await) }, async {
        smol::Timer::after(limit).await;
        None
    })
    .await
}
