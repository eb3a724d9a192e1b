//! The two-node HA rig shared by the namespace tests (`ha_scenarios`,
//! `ha_sync`): nodes `a` and `b` with `lan0` on a bridge in `sw` (ports
//! `pa`, `pb`) and `sync0` on a direct veth; a `phone` (.100) and two
//! ping-group hosts (.201, .202) on the bridge. LAN 198.51.100.0/24 (a .1,
//! b .2, resource .10), sync 192.0.2.0/24. Small thresholds keep each test
//! short: heartbeat 0.1 s, warning 0.3 s, out of service (OOS) 0.5 s.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::Daemon;
use crate::lab::{self, Lab, addr_info, wait_until};
use kpbxd::net::netlink::{AddressChange, AddressWatch};
use kpbxd::net::ping::Pinger;

pub const VIP: &str = "198.51.100.10";
pub const PHONE: &str = "198.51.100.100";
pub const PING1: &str = "198.51.100.201";
pub const PING2: &str = "198.51.100.202";
pub const OOS: Duration = Duration::from_millis(500);
/// Lifetime of the resource address (OOS rounded up to whole seconds).
pub const LIFETIME: Duration = Duration::from_secs(1);
/// The issue's margin over the out-of-service threshold.
pub const MARGIN: Duration = Duration::from_millis(250);
pub const PROBE_PERIOD: Duration = Duration::from_millis(10);
pub const HA_PORT: u16 = 7410;

static SERIAL: Mutex<()> = Mutex::new(());

pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    lock(&SERIAL)
}

pub fn ha_fields(dir: &Path, me: u8, coordinator: bool) -> Vec<String> {
    let peer = 3 - me;
    let mut f = vec![
        format!(
            "role={}",
            if coordinator {
                "coordinator"
            } else {
                "enabled"
            }
        ),
        "interface=lan0".to_string(),
        format!("local_ip=198.51.100.{me}"),
        format!("remote_ip=198.51.100.{peer}"),
        "prefix=24".to_string(),
        "sync_interface=sync0".to_string(),
        format!("sync_local_ip=192.0.2.{me}"),
        format!("sync_remote_ip=192.0.2.{peer}"),
        "sync_prefix=24".to_string(),
        format!("resources={VIP}/24@lan0"),
        format!("ping_group={PING1} {PING2}"),
        "ping_interval=0.2".to_string(),
        "ping_dampen=0.4".to_string(),
        format!(
            "default_active={}",
            if coordinator { "local" } else { "remote" }
        ),
        "heartbeat_interval=0.1".to_string(),
        "keepalive_warning=0.3".to_string(),
        "keepalive_out_of_service=0.5".to_string(),
        "init_timeout=2".to_string(),
        format!("serial_source=file:{}", dir.join("serial").display()),
        format!("hook_dir={}", dir.join("hooks").display()),
    ];
    if coordinator {
        f.push("remote_serial=KP-SCN-B".to_string());
    }
    f
}

/// The resource address's comings and goings in one namespace as the kernel announces
/// them (`RTNLGRP_IPV4_IFADDR`), stamped on arrival by a thread inside the namespace. A
/// takeover is timed from these, not by polling `ip addr`: on a loaded machine spawning
/// `ip` twice per poll made the rig see the address up to 300 ms late (CI once measured a
/// takeover of 807 ms while the phone's outage was 477 ms).
pub struct VipLog {
    /// (arrival, present), plus the state polled once the watch was subscribed.
    events: Arc<Mutex<Vec<(Instant, bool)>>>,
    /// For each arrival of the address (absent to present): whether the other node's
    /// kernel held it at that point, asked by this thread after the arrival. Comparing
    /// the two threads' arrival stamps instead saw an overlap that was not there under
    /// CPU load (the other namespace's thread got to its removal late): the adapter
    /// removes the address before the heartbeat that lets the peer acquire, so a kernel
    /// asked after the arrival answers for the real order.
    other_held: Arc<Mutex<Vec<(Instant, bool)>>>,
    /// Dropping it ends the watch thread.
    stop: Option<smol::channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl VipLog {
    fn start(lab: &Lab, ns: &str, other_ns: &str) -> VipLog {
        let events = Arc::new(Mutex::new(Vec::new()));
        let other_held = Arc::new(Mutex::new(Vec::new()));
        let other_log = other_held.clone();
        let other_ns = other_ns.to_string();
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let (ready, subscribed) = std::sync::mpsc::channel();
        let log = events.clone();
        let thread = lab.spawn_in(ns, move || async move {
            let vip: Ipv4Addr = VIP.parse().expect("vip");
            let mut watch = AddressWatch::subscribe().expect("netlink address watch");
            let _ = ready.send(());
            let read = async {
                let mut was_present = false;
                // Bounded: a test's scenario sees a few hundred changes.
                for _ in 0..1_000_000 {
                    let change = smol::future::or(async { watch.next().await }, async {
                        let _ = stopped.recv().await;
                        None
                    })
                    .await;
                    let Some(change) = change else { return };
                    if change.address().addr == vip {
                        let present = matches!(change, AddressChange::Present(_));
                        let at = Instant::now();
                        // The answer is in place before the arrival is visible.
                        if present && !was_present {
                            let out = lab::run(
                                "ip",
                                &["-n", &other_ns, "-j", "addr", "show", "dev", "lan0"],
                            );
                            lock(&other_log).push((at, out.contains(&format!("\"{VIP}\""))));
                        }
                        lock(&log).push((at, present));
                        was_present = present;
                    }
                }
            };
            read.await;
        });
        subscribed
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| panic!("the address watch in {ns} did not start"));
        let now = Instant::now();
        let held = addr_info(lab, ns, "lan0", VIP).is_some();
        lock(&events).push((now, held));
        VipLog {
            events,
            other_held,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The events in time order.
    fn events(&self) -> Vec<(Instant, bool)> {
        let mut e = lock(&self.events).clone();
        e.sort_by_key(|&(t, _)| t);
        e
    }

    /// Whether the address was held at `t` (by the last event at or before it).
    pub fn held_at(&self, t: Instant) -> bool {
        self.events()
            .iter()
            .take_while(|&&(at, _)| at <= t)
            .last()
            .is_some_and(|&(_, present)| present)
    }

    /// Whether the other node's kernel held the address when it arrived here at `at`
    /// (an arrival event's stamp); `None` for any other instant.
    pub fn other_held_on_arrival(&self, at: Instant) -> Option<bool> {
        lock(&self.other_held)
            .iter()
            .find(|&&(t, _)| t == at)
            .map(|&(_, held)| held)
    }

    /// When the address appeared after `since`: `since` itself if it was held then.
    pub fn appeared_since(&self, since: Instant) -> Option<Instant> {
        if self.held_at(since) {
            return Some(since);
        }
        self.events()
            .iter()
            .find(|&&(at, present)| at > since && present)
            .map(|&(at, _)| at)
    }
}

impl Drop for VipLog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The lab, both daemons (a is the coordinator and default active).
pub struct Rig {
    /// Node a's and node b's [`VipLog`]; first, so that the watch threads end before
    /// the lab deletes their namespaces.
    pub vip: [VipLog; 2],
    pub lab: Lab,
    pub a_ns: String,
    pub b_ns: String,
    pub sw: String,
    pub phone: String,
    pub a: Daemon,
    pub b: Daemon,
    pub dirs: [tempfile::TempDir; 2],
}

impl Rig {
    /// Builds the topology, starts and configures both daemons and waits
    /// until a alone holds the resource with both nodes seeing both members.
    pub fn up(tag: &str) -> Rig {
        Rig::up_with(tag, |_, _| {}, false)
    }

    /// [`Rig::up`], with `prepare(a, b)` run on the started daemons before
    /// HA is configured, and with b as the default active node if `b_first`.
    pub fn up_with(tag: &str, prepare: impl FnOnce(&Daemon, &Daemon), b_first: bool) -> Rig {
        Rig::up_in(Lab::new(tag), prepare, b_first)
    }

    /// [`Rig::up_with`] in a lab made by the caller (its namespace prefix).
    pub fn up_in(lab: Lab, prepare: impl FnOnce(&Daemon, &Daemon), b_first: bool) -> Rig {
        crate::common::require_root_and_ip();
        let (mut lab, a_ns, b_ns) = Lab::pair_in(lab);
        let sw = lab.name("sw");
        let mut hosts = Vec::new();
        for (role, port, ip) in [
            ("phone", "pp", PHONE),
            ("p1", "p1", PING1),
            ("p2", "p2", PING2),
        ] {
            let ns = lab.ns(role);
            lab.veth(&sw, port, &ns, "lan0");
            lab.ip(&sw, &format!("link set {port} master br0"));
            lab.ip(&ns, &format!("addr add {ip}/24 dev lan0"));
            hosts.push(ns);
        }
        let phone = hosts.swap_remove(0);
        let dirs = [
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        ];
        let node = |dir: &Path, ns: &str, serial: &str| {
            std::fs::write(dir.join("serial"), format!("{serial}\n")).expect("serial file");
            // The management API on the node's own loopback (api_http).
            let mut d = Daemon::with(dir, &[("mgmt_listen", "127.0.0.1:0")]);
            d.netns = Some(ns.to_string());
            d
        };
        let mut a = node(dirs[0].path(), &a_ns, "KP-SCN-A");
        let mut b = node(dirs[1].path(), &b_ns, "KP-SCN-B");
        a.start();
        b.start();
        prepare(&a, &b);
        let fields = |me: u8| {
            let mut f = ha_fields(dirs[usize::from(me - 1)].path(), me, me == 1);
            if b_first {
                for field in &mut f {
                    if field.starts_with("default_active=") {
                        *field = format!(
                            "default_active={}",
                            if me == 1 { "remote" } else { "local" }
                        );
                    }
                }
            }
            f
        };
        configure(&b, &fields(2));
        configure(&a, &fields(1));
        let rig = Rig {
            vip: [
                VipLog::start(&lab, &a_ns, &b_ns),
                VipLog::start(&lab, &b_ns, &a_ns),
            ],
            lab,
            a_ns,
            b_ns,
            sw,
            phone,
            a,
            b,
            dirs,
        };
        let (active, passive) = if b_first {
            (&rig.b, &rig.a)
        } else {
            (&rig.a, &rig.b)
        };
        let holder = if b_first { &rig.b_ns } else { &rig.a_ns };
        assert!(
            wait_until(Duration::from_secs(20), || {
                rig.sole(holder) && {
                    let (sa, sb) = (status(active), status(passive));
                    sa["state"] == "active"
                        && sb["state"] == "passive"
                        && sa["ping_seen"] == 2
                        && sa["peer_ping_seen"] == 2
                        && sb["ping_seen"] == 2
                }
            }),
            "{holder} should hold {VIP} alone after pairing: {} {}\n{}",
            status(&rig.a),
            status(&rig.b),
            rig.logs()
        );
        assert!(rig.phone_reaches(), "phone cannot reach {VIP}");
        rig
    }

    pub fn holds(&self, ns: &str) -> bool {
        addr_info(&self.lab, ns, "lan0", VIP).is_some()
    }

    pub fn other(&self, ns: &str) -> &str {
        if ns == self.a_ns {
            &self.b_ns
        } else {
            &self.a_ns
        }
    }

    /// `ns` holds the resource and the other node does not.
    pub fn sole(&self, ns: &str) -> bool {
        self.holds(ns) && !self.holds(self.other(ns))
    }

    pub fn logs(&self) -> String {
        format!(
            "--- node a log ---\n{}\n--- node b log ---\n{}",
            self.a.log(),
            self.b.log()
        )
    }

    pub fn phone_reaches(&self) -> bool {
        self.lab.run_in(&self.phone, || async {
            let mut p = Pinger::open().expect("ICMP socket in the phone namespace");
            let vip: Ipv4Addr = VIP.parse().expect("vip");
            for _ in 0..10 {
                if p.ping_all(&[vip], Duration::from_millis(300)).await[0].reachable {
                    return true;
                }
            }
            false
        })
    }

    pub fn prober(&self) -> Prober {
        Prober::start(&self.lab, &self.phone)
    }

    /// Polls both nodes until `ns` holds the resource (at most `limit`);
    /// returns when it was first seen and how long both held it at once
    /// (sum of poll intervals in which both held).
    /// `ns`'s [`VipLog`].
    pub fn vip_log(&self, ns: &str) -> &VipLog {
        &self.vip[usize::from(ns != self.a_ns)]
    }

    /// How long after `since` `ns` got the resource (by the kernel's announcement), and
    /// whether the other node still held it at that instant (1) or not (0).
    pub fn watch_takeover(
        &self,
        ns: &str,
        since: Instant,
        limit: Duration,
    ) -> (Option<Duration>, u32) {
        let (log, other) = (self.vip_log(ns), self.vip_log(self.other(ns)));
        // Bounded by `limit` and by count (5 ms apart).
        for _ in 0..10_000 {
            if let Some(at) = log.appeared_since(since) {
                let both = log
                    .other_held_on_arrival(at)
                    .unwrap_or_else(|| other.held_at(at));
                return (Some(at - since), u32::from(both));
            }
            if since.elapsed() > limit {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (None, 0)
    }
}

pub fn configure(d: &Daemon, fields: &[String]) {
    let mut args = vec!["ha", "configure"];
    args.extend(fields.iter().map(String::as_str));
    d.ok(&args);
}

pub fn status(d: &Daemon) -> serde_json::Value {
    d.json(&["ha", "status"])
}

/// Pings the resource from the phone every 10 ms until finished.
pub struct Prober {
    stop: Arc<AtomicBool>,
    /// Every attempt: when it was sent, and whether the reply came.
    handle: JoinHandle<Vec<(Instant, bool)>>,
}

impl Prober {
    pub fn start(lab: &Lab, phone: &str) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = lab.spawn_in(phone, move || async move {
            let mut p = Pinger::open().expect("ICMP socket in the phone namespace");
            let vip: Ipv4Addr = VIP.parse().expect("vip");
            let mut attempts = Vec::new();
            // Bounded: at most 10 minutes of probes.
            for _ in 0..60_000 {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let sent = Instant::now();
                let reachable = p.ping_all(&[vip], PROBE_PERIOD).await[0].reachable;
                attempts.push((sent, reachable));
                let next = sent + PROBE_PERIOD;
                if let Some(rest) = next.checked_duration_since(Instant::now()) {
                    smol::Timer::after(rest).await;
                }
            }
            attempts
        });
        // Let it get going before the fault.
        std::thread::sleep(Duration::from_millis(300));
        Prober { stop, handle }
    }

    /// Stops probing; returns the longest outage after `fault` (minus one
    /// probe period), up to now: the longest time between two replies with
    /// at least one unanswered probe between them.
    ///
    /// A gap with no probe in it is the prober's thread not running, not
    /// the resource being unreachable: under CPU load it measured outages of
    /// 652 ms while the passive node was cut off and nothing changed on the
    /// phone's path to the active (ha_scenarios passive_fully_isolated, and
    /// 950 ms for a LAN-down takeover done in 30 ms). A reply already
    /// queued when a late thread looks counts as answered (`ping_all` reads
    /// before its timer), so an unanswered probe is a real one.
    pub fn outage(self, fault: Instant) -> Duration {
        let end = Instant::now();
        self.stop.store(true, Ordering::Relaxed);
        let attempts = lab::join(self.handle);
        assert!(
            attempts.iter().any(|&(t, _)| t > fault),
            "the prober sent no probe after the fault"
        );
        let mut prev = attempts
            .iter()
            .rev()
            .find(|&&(t, ok)| ok && t <= fault)
            .map_or(fault, |&(t, _)| t);
        let mut unanswered = false;
        let mut worst = Duration::ZERO;
        for &(t, ok) in attempts.iter().filter(|&&(t, _)| t > fault) {
            if ok {
                if unanswered {
                    worst = worst.max(t - prev);
                }
                prev = t;
                unanswered = false;
            } else {
                unanswered = true;
            }
        }
        if unanswered {
            worst = worst.max(end.saturating_duration_since(prev));
        }
        worst.saturating_sub(PROBE_PERIOD)
    }
}

/// The heartbeats one node sends on a path, as the receiving namespace sees
/// them: a thread inside `ns` reads every IPv4 frame arriving on `dev`
/// (an `AF_PACKET` socket, so it coexists with the daemon bound to port
/// 7410 there) and keeps the kernel's receive stamp of each UDP datagram
/// from `from` to [`HA_PORT`]. Stamps are the kernel's (`SIOCGSTAMPNS`,
/// wall clock), so a busy reader thread does not bend the gaps.
pub struct HeartbeatLog {
    arrivals: Arc<Mutex<Vec<Duration>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Now on the heartbeat log's time base (since the Unix epoch).
pub fn wall_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

impl HeartbeatLog {
    pub fn start(lab: &Lab, ns: &str, dev: &str, from: Ipv4Addr) -> HeartbeatLog {
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, flag) = (arrivals.clone(), stop.clone());
        let dev = dev.to_string();
        let (ready, opened) = std::sync::mpsc::channel();
        let thread = lab.spawn_in(ns, move || async move {
            let fd = open_packet_socket(&dev);
            let _ = ready.send(());
            let mut buf = [0u8; 2048];
            // Bounded: the socket times out every 100 ms; at most an hour.
            for _ in 0..36_000_000u64 {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                // SAFETY: a plain read into a buffer we own.
                let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
                let Ok(n) = usize::try_from(n) else { continue };
                if !is_heartbeat(&buf[..n], from) {
                    continue;
                }
                let mut ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                // SIOCGSTAMPNS: the kernel's receive stamp of the last datagram.
                // SAFETY: the ioctl writes one timespec we own.
                let stamped = unsafe { libc::ioctl(fd, 0x8907, &mut ts) } == 0;
                let at = if stamped {
                    Duration::new(
                        u64::try_from(ts.tv_sec).unwrap_or(0),
                        u32::try_from(ts.tv_nsec).unwrap_or(0),
                    )
                } else {
                    wall_now()
                };
                lock(&log).push(at);
            }
            // SAFETY: our descriptor, closed once.
            unsafe { libc::close(fd) };
        });
        opened
            .recv_timeout(Duration::from_secs(5))
            .expect("heartbeat capture thread did not start");
        HeartbeatLog {
            arrivals,
            stop,
            thread: Some(thread),
        }
    }

    /// Receive stamps so far, in order.
    pub fn arrivals(&self) -> Vec<Duration> {
        let mut v = lock(&self.arrivals).clone();
        v.sort();
        v
    }

    /// The longest gap between consecutive heartbeats that overlaps
    /// `[from, to]` (the last one before `from` and the first after `to`
    /// count, so a silence spanning the window's edges is seen whole); a
    /// window with no heartbeat at all after `from` counts up to `to`.
    pub fn max_gap(&self, from: Duration, to: Duration) -> Duration {
        let a = self.arrivals();
        let start = a.iter().rposition(|t| *t <= from).unwrap_or(0);
        let end = a.iter().position(|t| *t >= to).unwrap_or(a.len());
        let span = &a[start..(end + 1).min(a.len())];
        let mut worst = span
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
            .max()
            .unwrap_or_default();
        if end == a.len() {
            let last = span.last().copied().unwrap_or(from);
            worst = worst.max(to.saturating_sub(last));
        }
        worst
    }
}

impl Drop for HeartbeatLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An `AF_PACKET` datagram socket for IPv4 on `dev`, reads time out after 100 ms.
fn open_packet_socket(dev: &str) -> libc::c_int {
    let proto = (libc::ETH_P_IP as u16).to_be();
    // SAFETY: plain socket calls on values we own; errors are checked.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM, libc::c_int::from(proto));
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let name = std::ffi::CString::new(dev).expect("interface name");
        let index = libc::if_nametoindex(name.as_ptr());
        assert!(index != 0, "no interface {dev}");
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = i32::try_from(index).expect("index");
        let rc = libc::bind(
            fd,
            std::ptr::addr_of!(sll).cast(),
            u32::try_from(std::mem::size_of::<libc::sockaddr_ll>()).expect("size"),
        );
        assert!(rc == 0, "bind {dev}: {}", std::io::Error::last_os_error());
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            std::ptr::addr_of!(tv).cast(),
            u32::try_from(std::mem::size_of::<libc::timeval>()).expect("size"),
        );
        fd
    }
}

/// An IPv4 UDP datagram from `from` to the heartbeat port.
fn is_heartbeat(ip: &[u8], from: Ipv4Addr) -> bool {
    if ip.len() < 20 || ip[0] >> 4 != 4 || ip[9] != 17 || ip[12..16] != from.octets() {
        return false;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    ip.len() >= ihl + 8 && u16::from_be_bytes([ip[ihl + 2], ip[ihl + 3]]) == HA_PORT
}

/// 50 parallel password changes over the management API, from 4
/// loopback addresses in `ns` (13, 13, 12, 12 parallel transfers, each
/// address within the per-address connection limit): the curl processes,
/// each printing an HTTP code per change. A user `ann` (password
/// `ann-password`) that may change `bob`'s password must exist.
pub fn password_storm(d: &Daemon, ns: &str) -> Vec<std::process::Child> {
    use std::process::{Command, Stdio};
    let port = d.listen("mgmt").port();
    let cert = d.data_dir().join("tls/selfsigned-cert.pem");
    let cert = cert.display().to_string();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let login = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-sS", "--max-time", "60"])
        .args(["--cacert", &cert, "--resolve", &resolve])
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(r#"{"user":"ann","password":"ann-password"}"#)
        .arg(format!("https://localhost:{port}/api/v1/login"))
        .output()
        .expect("curl (apt-get install curl)");
    let body: serde_json::Value =
        serde_json::from_slice(&login.stdout).unwrap_or(serde_json::Value::Null);
    let token = body["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login: {body} {}", String::from_utf8_lossy(&login.stderr)))
        .to_string();
    let auth = format!("Authorization: Bearer {token}");
    let url = format!("https://localhost:{port}/api/v1/command");
    let change = r#"{"UserPasswd":{"name":"bob","password":"new-bob-password-1"}}"#;
    ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
        .iter()
        .enumerate()
        .map(|(i, source)| {
            let n = if i < 2 { 13 } else { 12 };
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "curl", "-sS", "--max-time", "300"])
                .args(["--cacert", &cert, "--resolve", &resolve])
                .args(["--interface", source, "-Z", "--parallel-immediate"])
                .args(["--parallel-max", "13", "-H", &auth])
                .args(["-H", "Content-Type: application/json"])
                .args(["--data-binary", change, "-w", "%{http_code}\\n"]);
            for _ in 0..n {
                c.args(["-o", "/dev/null", &url]);
            }
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("curl")
        })
        .collect()
}
