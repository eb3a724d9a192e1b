//! Adapter tests inside network namespaces (root and iproute2 required;
//! the tests fail, never skip, without them). See `support` for how code
//! enters a namespace.

mod lab;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kpbxd::net::arp::{ArpSocket, Operation};
use kpbxd::net::heartbeat::{HeartbeatSocket, MAX_DATAGRAM, PathSocketConfig};
use kpbxd::net::hooks::{self, HookOutcome};
use kpbxd::net::netlink::{AddressChange, AddressWatch, LinkWatch, Netlink, NetlinkError};
use kpbxd::net::ping::{PingMode, PingResult, Pinger};
use lab::{Lab, addr_info, join, wait_until, within};

const VIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
const SEC: Duration = Duration::from_secs(1);

/// One namespace with `lan0` (a veth whose peer `lan0p` stays in the same
/// namespace; the `dummy` module may be missing) carrying 198.51.100.1/24.
fn single(tag: &str) -> (Lab, String) {
    let mut lab = Lab::new(tag);
    let ns = lab.ns("n");
    lab.veth(&ns, "lan0", &ns, "lan0p");
    lab.ip(&ns, "addr add 198.51.100.1/24 dev lan0");
    (lab, ns)
}

async fn netlink() -> Netlink {
    Netlink::connect().expect("netlink socket")
}

fn valid_lft(lab: &Lab, ns: &str) -> Option<u64> {
    addr_info(lab, ns, "lan0", "198.51.100.10").map(|a| {
        a["valid_life_time"]
            .as_u64()
            .expect("valid_life_time is a number")
    })
}

/// Add with a lifetime shows up in `ip -j addr` with that valid_lft;
/// refresh extends it; the adapter's dump reports it.
#[test]
fn address_lifetime_add_and_refresh() {
    let (lab, ns) = single("life");
    lab.run_in(&ns, || async {
        netlink()
            .await
            .add_address("lan0", VIP, 24, Duration::from_millis(2500))
            .await
            .expect("add");
    });
    let v = valid_lft(&lab, &ns).expect("VIP present after add");
    assert!(
        (1..=3).contains(&v),
        "valid_lft {v} should be 3 s rounded up, minus elapsed"
    );
    let info = addr_info(&lab, &ns, "lan0", "198.51.100.10").expect("present");
    assert_eq!(info["prefixlen"], 24);
    assert!(
        info["dynamic"].as_bool().unwrap_or(false),
        "kernel marks it dynamic: {info}"
    );

    let dump = lab.run_in(&ns, || async {
        let nl = netlink().await;
        nl.refresh_address("lan0", VIP, 24, Duration::from_secs(60))
            .await
            .expect("refresh");
        nl.ipv4_addresses_of("lan0").await.expect("dump")
    });
    let v = valid_lft(&lab, &ns).expect("VIP present after refresh");
    assert!(
        (58..=60).contains(&v),
        "refresh extended valid_lft to ~60, got {v}"
    );
    let vip = dump.iter().find(|a| a.addr == VIP).expect("dump has VIP");
    assert_eq!(vip.prefix, 24);
    assert!(matches!(vip.valid_secs, Some(58..=60)), "{vip:?}");
    let own = dump
        .iter()
        .find(|a| a.addr == Ipv4Addr::new(198, 51, 100, 1))
        .expect("dump has the static address");
    assert_eq!(own.valid_secs, None, "static address is forever");
}

/// Not refreshed, the address disappears by itself after its lifetime,
/// and the watch reports the expiry as a removal.
#[test]
fn address_expires_without_refresh() {
    let (lab, ns) = single("exp");
    let started = Instant::now();
    let change = lab.run_in(&ns, || async {
        let mut watch = AddressWatch::subscribe().expect("subscribe");
        netlink()
            .await
            .add_address("lan0", VIP, 24, 2 * SEC)
            .await
            .expect("add");
        within(8 * SEC, async {
            loop {
                match watch.next().await {
                    Some(c @ AddressChange::Removed(a)) if a.addr == VIP => return Some(c),
                    Some(_) => {}
                    None => return None,
                }
            }
        })
        .await
        .flatten()
    });
    let elapsed = started.elapsed();
    assert!(change.is_some(), "watch reported no expiry within 8 s");
    assert!(
        valid_lft(&lab, &ns).is_none(),
        "VIP still present after expiry"
    );
    assert!(
        elapsed >= Duration::from_millis(1500) && elapsed < 8 * SEC,
        "expired after {elapsed:?}, lifetime 2 s"
    );
}

/// remove_address deletes it; removing again reports "was not there".
#[test]
fn address_remove() {
    let (lab, ns) = single("rm");
    let (first, second) = lab.run_in(&ns, || async {
        let nl = netlink().await;
        nl.add_address("lan0", VIP, 24, 60 * SEC)
            .await
            .expect("add");
        let first = nl.remove_address("lan0", VIP, 24).await.expect("remove");
        let second = nl
            .remove_address("lan0", VIP, 24)
            .await
            .expect("remove again");
        (first, second)
    });
    assert!(first, "first removal removed it");
    assert!(!second, "second removal finds nothing");
    assert!(valid_lft(&lab, &ns).is_none());
    assert!(
        addr_info(&lab, &ns, "lan0", "198.51.100.1").is_some(),
        "other address untouched"
    );
}

/// The watch reports an external `ip addr add` and `ip addr del`.
#[test]
fn watch_reports_external_changes() {
    let (lab, ns) = single("watch");
    let ns2 = ns.clone();
    let seen = lab.run_in(&ns, move || async move {
        let mut watch = AddressWatch::subscribe().expect("subscribe");
        let ip = |args: &str| {
            lab::run(
                "ip",
                &["-n", &ns2, "addr", args, "198.51.100.10/24", "dev", "lan0"],
            );
        };
        let mut seen = Vec::new();
        for (cmd, want_removed) in [("add", false), ("del", true)] {
            ip(cmd);
            let got = within(3 * SEC, async {
                loop {
                    match watch.next().await {
                        Some(c) if c.address().addr == VIP => return Some(c),
                        Some(_) => {}
                        None => return None,
                    }
                }
            })
            .await
            .flatten();
            let got = got.unwrap_or_else(|| panic!("no event for `ip addr {cmd}` within 3 s"));
            assert_eq!(
                matches!(got, AddressChange::Removed(_)),
                want_removed,
                "{got:?}"
            );
            seen.push(got);
        }
        seen
    });
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].address().prefix, 24);
}

/// Link lookup: index and MAC match `ip -j link`; unknown names are an error.
#[test]
fn link_info_matches_ip() {
    let (lab, ns) = single("link");
    let j: serde_json::Value =
        serde_json::from_str(&lab.ip(&ns, "-j link show dev lan0")).expect("json");
    let want_index = j[0]["ifindex"].as_u64().expect("ifindex");
    let want_mac = j[0]["address"].as_str().expect("mac").to_string();
    let (link, missing, addrs) = lab.run_in(&ns, || async {
        let nl = netlink().await;
        let link = nl.link("lan0").await.expect("lan0");
        let missing = nl.link("nope0").await;
        let addrs = nl.ipv4_addresses_of("lan0").await.expect("addresses");
        (link, missing, addrs)
    });
    assert_eq!(u64::from(link.index), want_index);
    let mac = link.mac.expect("veth has a MAC");
    let mac_text = mac.map(|b| format!("{b:02x}")).join(":");
    assert_eq!(mac_text, want_mac);
    assert!(link.up);
    assert!(
        matches!(missing, Err(NetlinkError::NoSuchInterface(ref n)) if n == "nope0"),
        "{missing:?}"
    );
    assert_eq!(addrs.len(), 1);
    assert_eq!(addrs[0].addr, Ipv4Addr::new(198, 51, 100, 1));
    assert!(addrs[0].contains(Ipv4Addr::new(198, 51, 100, 200)));
    assert!(!addrs[0].contains(Ipv4Addr::new(192, 0, 2, 1)));
}

async fn open_arp(ifname: &str) -> ArpSocket {
    let link = netlink().await.link(ifname).await.expect("link");
    ArpSocket::open(link.index, link.mac.expect("mac")).expect("AF_PACKET socket")
}

/// A GARP burst from node a is seen on the bridge by node b: 3 requests and
/// 3 replies, sender = target = VIP, from a's MAC, broadcast.
#[test]
fn garp_burst_seen_across_bridge() {
    let (lab, a, b) = Lab::pair("garp");
    let (ready_tx, ready_rx) = smol::channel::bounded::<()>(1);
    let listener = lab.spawn_in(&b, move || async move {
        let sock = open_arp("lan0").await;
        ready_tx.send(()).await.expect("ready");
        let mut got = Vec::new();
        within(5 * SEC, async {
            while got.len() < 6 {
                let r = sock.recv().await.expect("recv");
                if r.sender_ip == VIP {
                    got.push(r);
                }
            }
        })
        .await;
        got
    });
    let mac = lab.run_in(&a, move || async move {
        within(5 * SEC, ready_rx.recv())
            .await
            .expect("listener ready in time")
            .expect("listener alive");
        let sock = open_arp("lan0").await;
        sock.garp_burst(VIP, 3, Duration::from_millis(200))
            .await
            .expect("burst");
        sock.mac()
    });
    let got = join(listener);
    assert_eq!(got.len(), 6, "saw {got:#?}");
    for r in &got {
        assert_eq!(r.eth_src, mac);
        assert_eq!(r.sender_hw, mac);
        assert_eq!(r.eth_dst, [0xff; 6]);
        assert_eq!(r.target_ip, VIP);
    }
    let requests = got
        .iter()
        .filter(|r| r.operation == Operation::Request)
        .count();
    assert_eq!(requests, 3);
}

/// An RFC 5227 probe is answered by b's kernel when b holds the address,
/// and unanswered (None after the timeout) for a free address.
#[test]
fn arp_probe_answered_only_when_held() {
    let (lab, a, b) = Lab::pair("probe");
    let j: serde_json::Value =
        serde_json::from_str(&lab.ip(&b, "-j link show dev lan0")).expect("json");
    let b_mac = j[0]["address"].as_str().expect("mac").to_string();
    lab.ip(&b, "addr add 198.51.100.10/24 dev lan0");
    let (held, free, free_took) = lab.run_in(&a, || async {
        let sock = open_arp("lan0").await;
        let held = sock
            .probe(VIP, Duration::from_millis(500))
            .await
            .expect("probe");
        let t = Instant::now();
        let free = sock
            .probe(Ipv4Addr::new(198, 51, 100, 77), Duration::from_millis(500))
            .await
            .expect("probe");
        (held, free, t.elapsed())
    });
    let held = held.expect("b's kernel answers for the VIP it holds");
    assert_eq!(held.map(|x| format!("{x:02x}")).join(":"), b_mac);
    assert_eq!(free, None);
    assert!(
        free_took >= Duration::from_millis(450) && free_took < 2 * SEC,
        "{free_took:?}"
    );
    // After b releases it, nobody answers.
    lab.ip(&b, "addr del 198.51.100.10/24 dev lan0");
    let after = lab.run_in(&a, || async {
        open_arp("lan0")
            .await
            .probe(VIP, Duration::from_millis(500))
            .await
            .expect("probe")
    });
    assert_eq!(after, None);
}

/// A heartbeat socket on `interface` (result as from `HeartbeatSocket::bind`).
fn hb(
    interface: &str,
    local: SocketAddrV4,
    peer: SocketAddrV4,
    max_age: Duration,
) -> std::io::Result<HeartbeatSocket> {
    HeartbeatSocket::bind(PathSocketConfig {
        interface: interface.into(),
        local,
        peer,
        max_age,
    })
}

/// Node `me`'s (1: a, 2: b) heartbeat socket on `sync0`, towards the other node.
fn sync_hb(me: u8, max_age: Duration) -> std::io::Result<HeartbeatSocket> {
    hb(
        "sync0",
        sa([192, 0, 2, me], 7400),
        sa([192, 0, 2, 3 - me], 7400),
        max_age,
    )
}

fn sa(ip: [u8; 4], port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(ip), port)
}

/// Heartbeats cross the sync veth with their source address; a datagram
/// for the same local address and port arriving on lan0 is not received
/// by the sync0-bound socket (a lan0-bound control socket gets it).
#[test]
fn heartbeat_bound_to_interface() {
    let (lab, a, b) = Lab::pair("hb");
    // b reaches a's sync address through the LAN (weak host model on a).
    lab.ip(&b, "route add 192.0.2.1/32 via 198.51.100.1 dev lan0");
    let (ready_tx, ready_rx) = smol::channel::bounded::<()>(1);
    let (done_tx, done_rx) = smol::channel::bounded::<()>(1);
    let receiver = lab.spawn_in(&a, move || async move {
        let sync = sync_hb(1, Duration::ZERO).expect("bind sync0");
        // Control: same port, any address, bound to lan0.
        let lan = hb(
            "lan0",
            sa([0, 0, 0, 0], 7400),
            sa([198, 51, 100, 2], 7400),
            Duration::ZERO,
        )
        .expect("bind lan0");
        ready_tx.send(()).await.expect("ready");
        let on_sync = within(3 * SEC, sync.recv())
            .await
            .expect("sync datagram")
            .expect("recv");
        let on_lan = within(3 * SEC, lan.recv())
            .await
            .expect("lan datagram")
            .expect("recv");
        // Nothing else may reach the sync socket while b is done sending.
        within(5 * SEC, done_rx.recv()).await;
        let leaked = within(Duration::from_millis(500), sync.recv()).await;
        (on_sync, on_lan, leaked.map(|r| r.map(|(f, _)| f).ok()))
    });
    lab.run_in(&b, move || async move {
        within(5 * SEC, ready_rx.recv())
            .await
            .expect("ready")
            .expect("alive");
        let sync = sync_hb(2, Duration::ZERO).expect("bind");
        sync.send(b"hb-over-sync").await.expect("send");
        // Same destination address and port, but routed out of lan0.
        let lan = hb(
            "lan0",
            sa([198, 51, 100, 2], 7400),
            sa([192, 0, 2, 1], 7400),
            Duration::ZERO,
        )
        .expect("bind");
        lan.send(b"hb-over-lan").await.expect("send");
        assert!(
            sync.send(&vec![0; MAX_DATAGRAM + 1]).await.is_err(),
            "oversize refused"
        );
        done_tx.send(()).await.expect("done");
    });
    let (on_sync, on_lan, leaked) = join(receiver);
    assert_eq!(
        on_sync,
        (Ipv4Addr::new(192, 0, 2, 2), b"hb-over-sync".to_vec())
    );
    assert_eq!(
        on_lan,
        (Ipv4Addr::new(198, 51, 100, 2), b"hb-over-lan".to_vec())
    );
    assert_eq!(
        leaked, None,
        "sync0-bound socket received a datagram from lan0"
    );
}

const GROUP: [Ipv4Addr; 4] = [
    Ipv4Addr::new(198, 51, 100, 2), // b over the bridge
    Ipv4Addr::new(192, 0, 2, 2),    // b over sync
    Ipv4Addr::new(192, 0, 2, 99),   // nobody
    Ipv4Addr::new(127, 0, 0, 1),    // loopback in a's namespace
];
const EXPECT: [bool; 4] = [true, true, false, true];

/// Waits (bounded) until the kernel stamps datagrams when they arrive, and
/// returns the socket that keeps it so.
///
/// Turning `SO_TIMESTAMPNS` on is not immediate system-wide: the first
/// socket that asks (no other socket wanted stamps) only schedules a work
/// item that enables stamping on arrival (`net_enable_timestamp`, a
/// deferred static key). Until that work item has run, a datagram is
/// stamped when it is *read*, so its queued age reads as ~0. Under CPU
/// contention the work item ran after the test's old heartbeat arrived:
/// stamp 11 µs before the read, 615 ms after the send, and the old
/// heartbeat was delivered as fresh (5 failures in 130 runs with the test
/// pinned to a core shared with a busy loop). The probe: a loopback
/// datagram to itself, read 20 ms later, must show an age of 15 ms or more.
fn arrival_stamps_on() -> std::net::UdpSocket {
    use nix::sys::socket::{
        ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg, setsockopt, sockopt,
    };
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind probe");
    setsockopt(&probe, sockopt::ReceiveTimestampns, &true).expect("SO_TIMESTAMPNS");
    let me = probe.local_addr().expect("probe address");
    let on = wait_until(10 * SEC, || {
        probe.send_to(b"probe", me).expect("probe send");
        std::thread::sleep(Duration::from_millis(20));
        let mut buf = [0u8; 16];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let msg = recvmsg::<SockaddrIn>(
            probe.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .expect("probe recv");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970");
        let stamp = msg
            .cmsgs()
            .ok()
            .into_iter()
            .flatten()
            .find_map(|c| match c {
                ControlMessageOwned::ScmTimestampns(t) => Some(Duration::new(
                    u64::try_from(t.tv_sec()).unwrap_or(0),
                    u32::try_from(t.tv_nsec()).unwrap_or(0),
                )),
                _ => None,
            });
        stamp.is_some_and(|t| now.saturating_sub(t) >= Duration::from_millis(15))
    });
    assert!(
        on,
        "datagrams still stamped when read, not on arrival, after 10 s"
    );
    probe
}

/// A heartbeat that waited in the queue longer than `max_age` (the daemon was frozen) is
/// dropped unread; the fresh one after it is received.
///
/// Only once the kernel stamps on arrival ([`arrival_stamps_on`]). The ages
/// are made by handshakes, not by both sides sleeping fixed times: the
/// receiver's "freeze" starts once the old heartbeat is sent (the sender's
/// thread may start late under load), and the new one is sent only when the
/// receiver is about to read.
#[test]
fn stale_heartbeats_are_dropped() {
    const MAX_AGE: Duration = Duration::from_millis(300);
    let (lab, a, b) = Lab::pair("hbstale");
    let (ready_tx, ready_rx) = smol::channel::bounded::<()>(1);
    let (sent_tx, sent_rx) = smol::channel::bounded::<()>(1);
    let (go_tx, go_rx) = smol::channel::bounded::<()>(1);
    let receiver = lab.spawn_in(&a, move || async move {
        let sync = sync_hb(1, MAX_AGE).expect("bind sync0");
        let _stamping = arrival_stamps_on();
        ready_tx.send(()).await.expect("ready");
        within(5 * SEC, sent_rx.recv())
            .await
            .expect("old sent")
            .expect("alive");
        // "Frozen": not reading while the old heartbeat ages past max_age.
        smol::Timer::after(2 * MAX_AGE).await;
        go_tx.send(()).await.expect("go");
        within(3 * SEC, sync.recv())
            .await
            .expect("a datagram")
            .expect("recv")
    });
    lab.run_in(&b, move || async move {
        within(5 * SEC, ready_rx.recv())
            .await
            .expect("ready")
            .expect("alive");
        let sync = sync_hb(2, Duration::ZERO).expect("bind");
        sync.send(b"old").await.expect("send");
        sent_tx.send(()).await.expect("sent");
        within(5 * SEC, go_rx.recv())
            .await
            .expect("go")
            .expect("alive");
        sync.send(b"new").await.expect("send");
    });
    let got = join(receiver);
    assert_eq!(got, (Ipv4Addr::new(192, 0, 2, 2), b"new".to_vec()));
}

fn assert_results(got: &[PingResult]) {
    let got: Vec<_> = got.iter().map(|r| (r.target, r.reachable)).collect();
    let want: Vec<_> = GROUP.iter().copied().zip(EXPECT).collect();
    assert_eq!(got, want);
}

/// Raw fallback when ping sockets are not permitted (the default
/// `ping_group_range` "1 0" in a new namespace), datagram sockets once
/// permitted; both report reachable/unreachable per address, and `run`
/// repeats every interval.
#[test]
fn ping_reports_reachability() {
    let (lab, a, _b) = Lab::pair("ping");
    let (mode, raw, dgram_refused) = lab.run_in(&a, || async {
        let dgram_refused = Pinger::open_mode(PingMode::Datagram).is_err();
        let mut p = Pinger::open().expect("pinger");
        let t = Instant::now();
        let r = p.ping_all(&GROUP, Duration::from_millis(700)).await;
        assert!(t.elapsed() < 2 * SEC, "round bounded by the timeout");
        (p.mode(), r, dgram_refused)
    });
    assert!(
        dgram_refused,
        "ping_group_range should forbid datagram ICMP here"
    );
    assert_eq!(mode, PingMode::Raw);
    assert_results(&raw);

    lab.sh(
        &a,
        "echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range",
    );
    let (mode, rounds) = lab.run_in(&a, || async {
        let mut p = Pinger::open().expect("pinger");
        let (tx, rx) = smol::channel::bounded(64);
        let mode = p.mode();
        let runner = async {
            p.run(
                &GROUP,
                Duration::from_millis(800),
                Duration::from_millis(600),
                &tx,
            )
            .await;
        };
        let collect = async {
            let mut all = Vec::new();
            while all.len() < 2 * GROUP.len() {
                match rx.recv().await {
                    Ok(r) => all.push(r),
                    Err(_) => break,
                }
            }
            all
        };
        let all = within(
            5 * SEC,
            smol::future::or(
                async {
                    runner.await;
                    Vec::new()
                },
                collect,
            ),
        )
        .await
        .expect("two rounds within 5 s");
        (mode, all)
    });
    assert_eq!(mode, PingMode::Datagram);
    assert_eq!(rounds.len(), 8);
    assert_results(&rounds[..4]);
    assert_results(&rounds[4..]);
}

/// A temporary hook directory removed on drop.
struct HookDir(PathBuf);

impl HookDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("hanet-hooks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("mkdir");
        Self(p)
    }
    fn script(&self, name: &str, body: &str, exec: bool) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.0.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write");
        let mode = if exec { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
}

impl Drop for HookDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn process_gone(pid: i32) -> bool {
    // Gone, or a zombie waiting for a reaper.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
    }
}

/// Hooks run in lexical order with the reason, exit codes are collected,
/// a hook past its limit is killed with its whole process group, and a
/// non-executable file is skipped.
#[test]
fn hooks_order_argument_timeout_exit_codes() {
    let dir = HookDir::new();
    let log = dir.0.join("log.txt");
    let log_s = log.display().to_string();
    dir.script(
        "10-first",
        &format!("echo \"10-first $1\" >> {log_s}"),
        true,
    );
    dir.script(
        "9-last",
        &format!("echo \"9-last $*\" >> {log_s}; exit 0"),
        true,
    );
    dir.script(
        "20-fails",
        &format!("echo \"20-fails $1\" >> {log_s}; exit 3"),
        true,
    );
    dir.script(
        "30-hangs",
        &format!("sleep 30 & echo $! > {log_s}.child; echo \"30-hangs $1\" >> {log_s}; sleep 30"),
        true,
    );
    dir.script(
        "40-signal",
        &format!("echo \"40-signal $1\" >> {log_s}; kill -TERM $$"),
        true,
    );
    dir.script("50-not-executable", "exit 9", false);

    let t = Instant::now();
    let runs = smol::block_on(hooks::run_dir(
        &dir.0,
        "acquire",
        Duration::from_millis(700),
    ));
    let took = t.elapsed();

    let names: Vec<_> = runs
        .iter()
        .map(|r| {
            r.path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    assert_eq!(
        names,
        ["10-first", "20-fails", "30-hangs", "40-signal", "9-last"]
    );
    let outcomes: Vec<_> = runs.iter().map(|r| r.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        [
            HookOutcome::Exited(0),
            HookOutcome::Exited(3),
            HookOutcome::TimedOut,
            HookOutcome::Signaled(15),
            HookOutcome::Exited(0),
        ]
    );
    let lines = std::fs::read_to_string(&log).expect("log");
    assert_eq!(
        lines,
        "10-first acquire\n20-fails acquire\n30-hangs acquire\n40-signal acquire\n9-last acquire\n"
    );
    assert!(took < 5 * SEC, "timeout enforced, took {took:?}");
    let child: i32 = std::fs::read_to_string(format!("{log_s}.child"))
        .expect("child pid")
        .trim()
        .parse()
        .expect("pid");
    assert!(
        wait_until(2 * SEC, || process_gone(child)),
        "the hook's background child {child} survived the group kill"
    );
    // Missing directory = no hooks.
    let none = smol::block_on(hooks::run_dir(Path::new("/nonexistent/hanet"), "x", SEC));
    assert!(none.is_empty());
}

/// The link watch reports carrier loss and return on a's lan0 when the
/// bridge port at the other end of the veth goes down and up.
#[test]
fn link_watch_reports_carrier() {
    let (lab, a, _b) = Lab::pair("carrier");
    let sw = lab.name("sw");
    let seen = lab.run_in(&a, move || async move {
        let mut watch = LinkWatch::subscribe().expect("subscribe");
        let mut seen = Vec::new();
        for (state, want) in [("down", false), ("up", true)] {
            lab::run("ip", &["-n", &sw, "link", "set", "pa", state]);
            let got = within(3 * SEC, async {
                loop {
                    match watch.next().await {
                        Some(l) if l.name == "lan0" && l.lower_up == want => return Some(l),
                        Some(_) => {}
                        None => return None,
                    }
                }
            })
            .await
            .flatten();
            seen.push(got.unwrap_or_else(|| panic!("no lan0 lower_up={want} within 3 s")));
        }
        seen
    });
    assert!(
        !seen[0].lower_up && seen[0].up,
        "admin up, no carrier: {:?}",
        seen[0]
    );
    assert!(seen[1].lower_up);
}
