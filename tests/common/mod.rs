//! Test harness: the real `kpbxd` on a temp data dir, driven through `kpbx`.
//!
//! Every daemon a test starts is killed by its PID when its [`Daemon`] is
//! dropped; every wait is bounded.

#![allow(dead_code)]

pub mod api;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const KPBXD: &str = env!("CARGO_BIN_EXE_kpbxd");
pub const KPBX: &str = env!("CARGO_BIN_EXE_kpbx");

pub struct Daemon {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
    /// Run inside this network namespace (`ip netns exec`, which execs, so
    /// the PID is the daemon's).
    pub netns: Option<String>,
    child: Option<Child>,
}

impl Daemon {
    /// A daemon configuration in `dir` (not started).
    pub fn new(dir: &Path) -> Daemon {
        Daemon::with(dir, &[])
    }

    /// The same, with some keys of the configuration file replaced.
    pub fn with(dir: &Path, overrides: &[(&str, &str)]) -> Daemon {
        let config = dir.join("kpbxd.conf");
        let socket = dir.join("data/kpbxd.sock");
        let mut keys: Vec<(String, String)> = vec![
            ("data_dir".into(), dir.join("data").display().to_string()),
            ("control_socket".into(), socket.display().to_string()),
            (
                "log_target".into(),
                dir.join("kpbxd.log").display().to_string(),
            ),
            ("log_level".into(), "debug".into()),
            // Tests read the whole log: no rotation within one (64 MiB).
            ("log_max_kb".into(), "65536".into()),
            ("store_max_mb".into(), "64".into()),
            (
                "static_dir".into(),
                dir.join("static").display().to_string(),
            ),
            ("http_listen".into(), "off".into()),
            ("https_listen".into(), "off".into()),
            ("tftp_listen".into(), "off".into()),
            ("mgmt_listen".into(), "off".into()),
            ("sip_pnp".into(), "off".into()),
        ];
        for (k, v) in overrides {
            match keys.iter_mut().find(|(key, _)| key == k) {
                Some(entry) => entry.1 = v.to_string(),
                None => keys.push((k.to_string(), v.to_string())),
            }
        }
        let text: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
        std::fs::write(&config, text).expect("write config");
        Daemon {
            dir: dir.to_path_buf(),
            config,
            socket,
            netns: None,
            child: None,
        }
    }

    /// Where a network service is listening, from `kpbx status`.
    pub fn listen(&self, service: &str) -> std::net::SocketAddr {
        let status = self.json(&["status"]);
        let s = status["services"]
            .as_array()
            .expect("services")
            .iter()
            .find(|s| s["name"] == service)
            .unwrap_or_else(|| panic!("no service {service}"));
        s["listen"]
            .as_str()
            .expect("listening")
            .parse()
            .expect("address")
    }

    /// Starts the daemon and waits until it answers `kpbx status`.
    pub fn start(&mut self) -> &mut Daemon {
        self.spawn();
        self.wait_ready()
    }

    /// Starts the process without waiting for it to answer (to start two
    /// daemons at the same moment); [`Daemon::wait_ready`] then waits.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "daemon already running");
        // The benchmarks may run another build (`KPBXD_BIN`, as bench/ha-failover.sh).
        let kpbxd = std::env::var("KPBXD_BIN").unwrap_or_else(|_| KPBXD.to_string());
        let mut command = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, &kpbxd]);
                c
            }
            None => Command::new(&kpbxd),
        };
        let child = command
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn kpbxd");
        self.child = Some(child);
    }

    /// Waits (bounded) until the spawned daemon answers `kpbx status`.
    pub fn wait_ready(&mut self) -> &mut Daemon {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.kpbx(&["status"]).status.success() {
                return self;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("kpbxd exited during start: {status}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "kpbxd did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and wait (bounded) for a clean exit; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("kpbxd did not stop within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kpbx(&self, args: &[&str]) -> Output {
        kpbx_at(&self.socket, args)
    }

    /// Runs `kpbx`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kpbx(args);
        assert!(
            out.status.success(),
            "kpbx {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_str(&self.ok(&all)).expect("json stdout")
    }

    /// A system setting as `kpbx system show --json` reports it.
    pub fn setting(&self, key: &str) -> serde_json::Value {
        let show = self.json(&["system", "show"]);
        show.as_array()
            .expect("settings")
            .iter()
            .find(|s| s["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no setting {key}"))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("kpbxd.log")).unwrap_or_default()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn kpbx_at(socket: &Path, args: &[&str]) -> Output {
    Command::new(KPBX)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run kpbx")
}

/// Runs `kpbxd` to completion with `args` (for start-up failures), bounded.
pub fn kpbxd_exit(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(KPBXD)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kpbxd");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
            return (status.code().unwrap_or(-1), err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kpbxd {args:?} did not exit within 10 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Opens the LMDB environment of a stopped daemon directly, for tests that
/// damage it on purpose.
pub fn raw_env(data_dir: &Path) -> heed::Env<heed::WithoutTls> {
    let mut options = heed::EnvOpenOptions::new().read_txn_without_tls();
    options.max_dbs(8).map_size(64 << 20);
    // SAFETY: the daemon is stopped; the test opens the environment once.
    unsafe { options.open(data_dir.join("store")) }.expect("open LMDB")
}

/// Fails the test loudly unless it runs as root with `ip` available.
pub fn require_root_and_ip() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (network namespaces); run make test as root"
    );
    let ok = Command::new("ip")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "this test needs `ip` from the Debian package iproute2");
}

/// A network namespace made by the test, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = format!("kpbxd-{tag}-{}", std::process::id());
        // A namespace left by an earlier run of this PID, if any (usually none: quiet).
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        run("ip", &["netns", "add", &name]);
        Netns { name }
    }

    /// Runs `ip ARGS` inside the namespace and asserts success.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run("ip", &all);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Lets other Unix users reach the control socket (the daemon creates it
/// 0600 in a 0700 data dir; an administrator opening it is what makes
/// console roles matter).
pub fn open_socket(d: &Daemon) {
    for (path, mode) in [(&d.dir, 0o755), (&d.data_dir(), 0o711), (&d.socket, 0o666)] {
        std::fs::set_permissions(
            path,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(mode),
        )
        .expect("open the control socket to other users");
    }
}

/// `kpbx` as Unix user `user`, with `stdin` fed to it.
pub fn kpbx_as(d: &Daemon, user: &str, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("setpriv")
        .args([
            "--reuid",
            user,
            "--regid",
            "nogroup",
            "--clear-groups",
            KPBX,
        ])
        .arg("--socket")
        .arg(&d.socket)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run setpriv");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for kpbx")
}

/// A daemon with the management API on a free loopback port, started.
pub fn start_with_api(dir: &Path) -> Daemon {
    let mut d = Daemon::with(dir, &[("mgmt_listen", "127.0.0.1:0")]);
    d.start();
    d
}

/// `kpbx user add NAME role=ROLE password=-`, the password on stdin (so
/// the API can log in as NAME).
pub fn add_user(d: &Daemon, name: &str, role: &str, password: &str) {
    use std::io::Write;
    let mut child = Command::new(KPBX)
        .arg("--socket")
        .arg(&d.socket)
        .args(["user", "add", name])
        .arg(format!("role={role}"))
        .arg("password=-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kpbx");
    writeln!(child.stdin.take().expect("stdin"), "{password}").expect("write the password");
    let out = child.wait_with_output().expect("wait for kpbx");
    assert!(
        out.status.success(),
        "kpbx user add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `cond` every 10 ms until it holds; fails naming `what` after
/// `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
