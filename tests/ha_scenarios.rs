//! The HA fault matrix with two real kpbxd processes in network namespaces
//! (root and iproute2 required; every test fails, never skips, without them).
//!
//! Topology per scenario (tests/lab, fresh for each): nodes `a` and `b`
//! with `lan0` on a bridge in `sw` (ports `pa`, `pb`) and `sync0` on a
//! direct veth; a `phone` (.100) and two ping-group hosts (.201, .202) on
//! the bridge. LAN 198.51.100.0/24 (a .1, b .2, resource .10), sync
//! 192.0.2.0/24. Small thresholds keep each scenario short: heartbeat
//! 0.1 s, warning 0.3 s, out of service (OOS) 0.5 s.
//!
//! The phone pings the resource every 10 ms; the outage is the longest gap
//! between echo replies (minus the probe period) from the fault to the end
//! of the observation window. Each scenario asserts the bound of the issue:
//! outage (and takeover, where the resource moves) at most OOS + 250 ms,
//! for a switch 250 ms; exactly one holder at the end; the phone reaches
//! it. The measured numbers are printed (`--nocapture` shows them).
//!
//! Scenarios run one at a time (a mutex), so that two of them never compete
//! for the two CPUs of a CI runner while timing is measured.

mod common;
mod lab;
#[path = "lab/rig.rs"]
mod rig;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use kpbxd::ha::auth::{self, Key};
use kpbxd::ha::wire::{self, Frame, WireState};
use lab::wait_until;
use rig::*;

fn report(scenario: &str, outage: Duration, takeover: Option<Duration>) {
    eprintln!(
        "scenario {scenario}: outage {} ms, takeover {}",
        outage.as_millis(),
        takeover.map_or("-".to_string(), |t| format!("{} ms", t.as_millis()))
    );
}

/// The common end of a failover scenario: `to` takes over within the
/// bound, the phone's outage is within it, `to` alone holds at the end.
fn failover(
    rig: &Rig,
    scenario: &str,
    to: &str,
    fault: Instant,
    prober: Prober,
    stale_ok: bool,
) -> Instant {
    let (takeover, both) = rig.watch_takeover(to, fault, OOS + Duration::from_secs(3));
    let takeover = takeover.unwrap_or_else(|| panic!("{scenario}: no takeover\n{}", rig.logs()));
    // Observe past the takeover long enough to see the phone come back.
    std::thread::sleep(Duration::from_millis(700));
    let outage = prober.outage(fault);
    report(scenario, outage, Some(takeover));
    assert!(
        takeover <= OOS + MARGIN,
        "{scenario}: takeover {takeover:?} > OOS + 250 ms\n{}",
        rig.logs()
    );
    assert!(
        outage <= OOS + MARGIN,
        "{scenario}: outage {outage:?} > OOS + 250 ms\n{}",
        rig.logs()
    );
    if !stale_ok {
        assert_eq!(
            both,
            0,
            "{scenario}: both held before the takeover\n{}",
            rig.logs()
        );
    }
    fault + takeover
}

// ---- the scenarios ------------------------------------------------------------

/// kill -9 of the active daemon: its kernel keeps the address until the
/// lifetime ends; the survivor's probe sees the dead peer's MAC and takes
/// over anyway. Two MACs answer for at most the lifetime (+1 s kernel
/// expiry granularity), then only b holds.
#[test]
fn kill9_of_the_active_daemon() {
    let _g = one_at_a_time();
    let mut rig = Rig::up("k9");
    let prober = rig.prober();
    let fault = Instant::now();
    rig.a.kill9();
    let took = failover(&rig, "kill9", &rig.b_ns.clone(), fault, prober, true);
    assert!(
        wait_until(LIFETIME + Duration::from_secs(2), || rig.sole(&rig.b_ns)),
        "a's stale address outlived its lifetime"
    );
    // Polled every 50 ms after the 700 ms observation window: an upper bound.
    let both = took.elapsed();
    eprintln!(
        "scenario kill9: both addresses present for at most {} ms after the takeover (bound: lifetime {} s + 1 s)",
        both.as_millis(),
        LIFETIME.as_secs()
    );
    assert!(both <= LIFETIME + Duration::from_secs(1), "{both:?}");
    assert!(
        rig.b.log().contains("out-of-service peer"),
        "{}",
        rig.logs()
    );
    // b's gratuitous ARPs moved the phone to b's MAC.
    let b_mac = rig.lab.sh(&rig.b_ns, "cat /sys/class/net/lan0/address");
    assert!(
        wait_until(Duration::from_secs(3), || {
            rig.lab
                .ip(&rig.phone, &format!("neigh show {VIP}"))
                .contains(b_mac.trim())
        }),
        "the phone's ARP entry for {VIP} does not point at b ({})",
        rig.lab.ip(&rig.phone, &format!("neigh show {VIP}"))
    );
    assert!(rig.phone_reaches());
    let sb = status(&rig.b);
    assert_eq!(sb["state"], "active", "{sb}");
    assert_eq!(sb["peer_out_of_service"], true, "{sb}");
}

/// The active node is powered off: daemon killed, all its links down.
#[test]
fn active_node_powered_off() {
    let _g = one_at_a_time();
    let mut rig = Rig::up("off");
    let prober = rig.prober();
    // Power off as b sees it: both heartbeat paths and a's presence on the
    // LAN go together. The sync cable first (a, still running, can tell b
    // nothing more; b still hears it on the LAN), then a's switch port: the
    // fault. The daemon's death and the address flush come after, where b
    // cannot see them. Killing first made the fault as long as four `ip`
    // runs: under CPU load (test pinned to a core shared with a busy loop)
    // the port went down after b's out-of-service time, b's probe was still
    // answered by a's kernel ("not acquiring: 198.51.100.10 is answered by
    // <a's MAC>") and the takeover measured 1196 ms (1 failure in 3 runs).
    rig.lab.ip(&rig.a_ns, "link set sync0 down");
    rig.lab.ip(&rig.sw, "link set pa down");
    let fault = Instant::now();
    rig.a.kill9();
    rig.lab.ip(&rig.a_ns, "link set lan0 down");
    // A powered-off node holds no address.
    rig.lab
        .ip(&rig.a_ns, &format!("addr flush dev lan0 to {VIP}/32"));
    let _ = failover(&rig, "poweroff", &rig.b_ns.clone(), fault, prober, false);
    assert!(rig.phone_reaches());
    assert_eq!(status(&rig.b)["state"], "active");
}

/// The active node's LAN cable is pulled (bridge port down: no carrier).
#[test]
fn lan_link_of_the_active_down() {
    let _g = one_at_a_time();
    let rig = Rig::up("lan");
    let prober = rig.prober();
    let fault = Instant::now();
    rig.lab.ip(&rig.sw, "link set pa down");
    let b_ns = rig.b_ns.clone();
    let _ = failover(&rig, "landown", &b_ns, fault, prober, false);
    assert!(
        wait_until(Duration::from_secs(2), || !rig.holds(&rig.a_ns)),
        "a released"
    );
    assert!(rig.phone_reaches());
    let events = rig.a.json(&["ha", "events"]).to_string();
    assert!(events.contains("LAN link down"), "{events}");
    // The cable comes back: b keeps the resource.
    rig.lab.ip(&rig.sw, "link set pa up");
    assert!(
        wait_until(Duration::from_secs(5), || status(&rig.a)["ping_seen"] == 2),
        "a did not recover its LAN"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(rig.sole(&rig.b_ns), "{}", rig.logs());
}

/// The sync link is cut (carrier lost on both ends): heartbeats still
/// cross the LAN, so no failover, only a degraded warning.
#[test]
fn sync_link_cut_is_degraded_only() {
    let _g = one_at_a_time();
    let rig = Rig::up("sync");
    let prober = rig.prober();
    let fault = Instant::now();
    rig.lab.ip(&rig.a_ns, "link set sync0 down");
    let mut polls = 0;
    while fault.elapsed() < OOS * 4 && polls < 1000 {
        polls += 1;
        assert!(
            rig.sole(&rig.a_ns),
            "sync cut moved the resource\n{}",
            rig.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (sa, sb) = (status(&rig.a), status(&rig.b));
    let outage = prober.outage(fault);
    report("synccut", outage, None);
    for s in [&sa, &sb] {
        assert_eq!(s["degraded"], true, "{s}");
        assert_eq!(s["peer_out_of_service"], false, "{s}");
        let sync = &s["paths"][0];
        assert_eq!(sync["path"], "sync", "{s}");
        assert_eq!(sync["warning"], true, "{s}");
    }
    assert_eq!(sa["state"], "active");
    assert_eq!(sb["state"], "passive");
    assert!(outage <= MARGIN, "outage {outage:?} on a sync cut");
    rig.lab.ip(&rig.a_ns, "link set sync0 up");
    assert!(
        wait_until(Duration::from_secs(5), || status(&rig.a)["degraded"]
            == false
            && status(&rig.b)["degraded"] == false),
        "the degraded warning did not clear"
    );
    assert!(rig.sole(&rig.a_ns));

    // A silent cut (carriers stay up, every sync datagram dropped by an
    // IPsec block policy on both receivers): the same, degraded only.
    let prober = rig.prober();
    let fault = Instant::now();
    for (ns, peer) in [(&rig.a_ns, "192.0.2.2"), (&rig.b_ns, "192.0.2.1")] {
        rig.lab.ip(
            ns,
            &format!("xfrm policy add src {peer}/32 dst 0.0.0.0/0 dir in action block"),
        );
    }
    let mut polls = 0;
    while fault.elapsed() < OOS * 4 && polls < 1000 {
        polls += 1;
        assert!(
            rig.sole(&rig.a_ns),
            "silent sync cut moved the resource\n{}",
            rig.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let outage = prober.outage(fault);
    report("synccut-silent", outage, None);
    for s in [status(&rig.a), status(&rig.b)] {
        assert_eq!(s["degraded"], true, "{s}");
        assert_eq!(s["peer_out_of_service"], false, "{s}");
    }
    assert!(outage <= MARGIN, "outage {outage:?} on a silent sync cut");
    for ns in [&rig.a_ns, &rig.b_ns] {
        rig.lab.ip(ns, "xfrm policy flush");
    }
    assert!(
        wait_until(Duration::from_secs(5), || status(&rig.a)["degraded"]
            == false
            && status(&rig.b)["degraded"] == false),
        "the degraded warning did not clear after the silent cut"
    );
    assert!(rig.sole(&rig.a_ns));
}

/// `kpbx ha switch` on the active: break before make, outage <= 250 ms.
#[test]
fn admin_switch() {
    let _g = one_at_a_time();
    let rig = Rig::up("sw");
    let prober = rig.prober();
    let fault = Instant::now();
    rig.a.ok(&["ha", "switch"]);
    let (takeover, both) = rig.watch_takeover(&rig.b_ns, fault, Duration::from_secs(3));
    let takeover = takeover.expect("b takes over");
    std::thread::sleep(Duration::from_millis(700));
    let outage = prober.outage(fault);
    report("switch", outage, Some(takeover));
    assert!(outage <= MARGIN, "switch outage {outage:?}\n{}", rig.logs());
    assert!(takeover <= MARGIN, "switch takeover {takeover:?}");
    assert_eq!(both, 0);
    assert!(
        rig.sole(&rig.b_ns),
        "b alone holds 700 ms after the switch: a {}, b {}\n{}",
        rig.holds(&rig.a_ns),
        rig.holds(&rig.b_ns),
        rig.logs()
    );
    // And back, asked on the passive.
    let prober = rig.prober();
    let fault = Instant::now();
    rig.a.ok(&["ha", "switch"]);
    let (takeover, _) = rig.watch_takeover(&rig.a_ns, fault, Duration::from_secs(3));
    let takeover = takeover.expect("a takes it back");
    std::thread::sleep(Duration::from_millis(700));
    let outage = prober.outage(fault);
    report("switch-from-passive", outage, Some(takeover));
    assert!(outage <= MARGIN, "switch outage {outage:?}\n{}", rig.logs());
    assert!(rig.sole(&rig.a_ns));
    assert!(rig.phone_reaches());
}

/// Heartbeats sent from the phone with the peer's source address: one with
/// a wrong key (forged) and a captured genuine one sent again (replayed).
/// Both are counted and change nothing.
#[test]
fn forged_and_replayed_heartbeats_change_nothing() {
    let _g = one_at_a_time();
    let rig = Rig::up("forge");
    // Capture a genuine b -> a LAN heartbeat as it reaches a.
    let captured = rig.lab.run_in(&rig.a_ns, || async { capture_heartbeat() });
    let Ok(Frame::Heartbeat(hb)) = wire::parse(&captured) else {
        panic!("captured datagram is not a heartbeat");
    };
    assert_eq!(hb.path, wire::Path::Lan);
    let before = status(&rig.a);
    let epoch = before["epoch"].clone();
    let forged = auth::seal_heartbeat(
        &Key([0x42; 32]),
        wire::Heartbeat {
            incarnation: u64::MAX / 2,
            seq: 1,
            epoch: u64::MAX / 2,
            path: wire::Path::Lan,
            state: WireState::Active,
            flags: wire::flags::HOLDS,
            ping_seen: 2,
            ping_total: 2,
            tag: [0; wire::TAG_LEN],
        },
    );
    rig.lab.run_in(&rig.phone, move || async move {
        // IP_TRANSPARENT lets the phone send from an address it does not have.
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)
            .expect("UDP socket");
        sock.set_ip_transparent_v4(true).expect("IP_TRANSPARENT");
        let from = SocketAddrV4::new("198.51.100.2".parse().expect("ip"), HA_PORT);
        sock.bind(&from.into())
            .expect("bind the peer's address on the phone");
        let sock: UdpSocket = sock.into();
        let to = SocketAddrV4::new("198.51.100.1".parse().expect("ip"), HA_PORT);
        for _ in 0..5 {
            sock.send_to(&forged, to).expect("send forged");
            sock.send_to(&captured, to).expect("send replayed");
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    assert!(
        wait_until(Duration::from_secs(2), || {
            let c = &status(&rig.a)["counters"];
            c["forged"].as_u64() >= Some(5) && c["replayed"].as_u64() >= Some(5)
        }),
        "counters did not go up: {}",
        status(&rig.a)
    );
    std::thread::sleep(Duration::from_millis(300));
    let after = status(&rig.a);
    eprintln!("scenario forged/replayed: counters {}", after["counters"]);
    assert_eq!(after["state"], "active", "{after}");
    assert_eq!(after["epoch"], epoch, "{after}");
    assert_eq!(after["holder"], "local", "{after}");
    assert_eq!(status(&rig.b)["state"], "passive");
    assert!(rig.sole(&rig.a_ns));
}

/// Reads incoming IPv4 packets (AF_PACKET, in the caller's namespace) until
/// a UDP datagram 198.51.100.2 -> 198.51.100.1:7410; returns its payload.
fn capture_heartbeat() -> Vec<u8> {
    use socket2::{Domain, Protocol, Socket, Type};
    let eth_p_ip = (libc::ETH_P_IP as u16).to_be();
    let sock = Socket::new(
        Domain::PACKET,
        Type::DGRAM,
        Some(Protocol::from(i32::from(eth_p_ip))),
    )
    .expect("AF_PACKET socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut sock = sock;
    let mut buf = [0u8; 2048];
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        let Ok(n) = std::io::Read::read(&mut sock, &mut buf) else {
            continue;
        };
        let p = &buf[..n];
        if n < 28 || p[0] >> 4 != 4 || p[9] != 17 {
            continue;
        }
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
        let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
        if n < ihl + 8
            || src != Ipv4Addr::new(198, 51, 100, 2)
            || dst != Ipv4Addr::new(198, 51, 100, 1)
        {
            continue;
        }
        let dport = u16::from_be_bytes([p[ihl + 2], p[ihl + 3]]);
        if dport == HA_PORT {
            return p[ihl + 8..].to_vec();
        }
    }
    panic!("no LAN heartbeat from b to a seen within 5 s");
}

/// The passive node loses every link: it never acquires (it sees no
/// ping-group member and its LAN is down); the active keeps the resource
/// with no outage; after the heal the passive rejoins as passive.
#[test]
fn passive_fully_isolated() {
    let _g = one_at_a_time();
    let rig = Rig::up("iso");
    let prober = rig.prober();
    let fault = Instant::now();
    rig.lab.ip(&rig.sw, "link set pb down");
    rig.lab.ip(&rig.b_ns, "link set sync0 down");
    let mut polls = 0;
    while fault.elapsed() < OOS * 4 && polls < 1000 {
        polls += 1;
        assert!(
            rig.sole(&rig.a_ns),
            "isolated passive acquired\n{}",
            rig.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let outage = prober.outage(fault);
    report("isolated-passive", outage, None);
    assert!(outage <= MARGIN, "outage {outage:?}");
    let (sa, sb) = (status(&rig.a), status(&rig.b));
    assert_eq!(sa["state"], "active", "{sa}");
    assert_eq!(sa["peer_out_of_service"], true, "{sa}");
    assert_eq!(sb["state"], "passive", "{sb}");
    assert_eq!(sb["ping_seen"], 0, "{sb}");
    rig.lab.ip(&rig.sw, "link set pb up");
    rig.lab.ip(&rig.b_ns, "link set sync0 up");
    assert!(
        wait_until(Duration::from_secs(5), || {
            let (sa, sb) = (status(&rig.a), status(&rig.b));
            sa["peer_out_of_service"] == false && sb["state"] == "passive" && sb["ping_seen"] == 2
        }),
        "b did not rejoin: {}",
        status(&rig.b)
    );
    assert!(rig.sole(&rig.a_ns), "{}", rig.logs());
    assert!(rig.phone_reaches());
}

/// Both daemons start at the same moment (already paired): the default
/// active node takes the resource, never both, well before the 2 s init
/// timeout because they hear each other.
///
/// "At the same moment": both processes are spawned before either is
/// waited for (starting a, waiting until it answered, then b let a's init
/// timeout run alone whenever a's start was slow). And not the first start
/// after pairing: that one re-issues the self-signed certificate (the
/// resource address joins its names) before the HA thread starts. With the
/// RSA key of the time, that took 3 s on a and 15 s on b under CPU
/// contention, so the "simultaneous" boots were 15 s apart and a acquired on
/// its init timeout (first holder after 9-19 s, 3 failures in 3 runs with the
/// test pinned to a core shared with a busy loop). The ECDSA key that
/// replaced it is cheap, but the re-issue still makes that start unlike the
/// others: one unmeasured restart does it first.
#[test]
fn simultaneous_boot() {
    let _g = one_at_a_time();
    let mut rig = Rig::up("boot");
    rig.a.kill9();
    rig.b.kill9();
    rig.a.start();
    rig.b.start();
    rig.a.kill9();
    rig.b.kill9();
    assert!(
        wait_until(LIFETIME + Duration::from_secs(2), || !rig.holds(&rig.a_ns)
            && !rig.holds(&rig.b_ns)),
        "stale addresses outlived their lifetime"
    );
    let a_log_from = rig.a.log().len();
    let started = Instant::now();
    rig.a.spawn();
    rig.b.spawn();
    let mut both = 0;
    let mut first = None;
    for _ in 0..5000 {
        let (on_a, on_b) = (rig.holds(&rig.a_ns), rig.holds(&rig.b_ns));
        if on_a && on_b {
            both += 1;
        }
        if first.is_none() && (on_a || on_b) {
            first = Some(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(6) {
            break;
        }
    }
    rig.a.wait_ready();
    rig.b.wait_ready();
    let first = first.unwrap_or_else(|| panic!("nobody acquired\n{}", rig.logs()));
    eprintln!(
        "scenario simultaneous-boot: first holder {} ms after both started",
        first.as_millis()
    );
    assert_eq!(
        both,
        0,
        "both held after a simultaneous boot\n{}",
        rig.logs()
    );
    assert!(
        rig.sole(&rig.a_ns),
        "the default active node holds\n{}",
        rig.logs()
    );
    assert!(first < Duration::from_secs(4), "{first:?}\n{}", rig.logs());
    // Because it heard b, not because its init timeout ran out.
    let a_log = rig.a.log();
    assert!(
        a_log[a_log_from..].contains("acquiring the resource: default active node"),
        "{}",
        rig.logs()
    );
    assert_eq!(status(&rig.a)["state"], "active");
    assert_eq!(status(&rig.b)["state"], "passive");
    assert!(rig.phone_reaches());
}

/// kill -9 of the active, takeover by b, then a comes back at once (its
/// stale address still there): a removes it, stays passive, the phone
/// sees no outage from the rejoin.
#[test]
fn old_active_rejoining() {
    let _g = one_at_a_time();
    let mut rig = Rig::up("rejoin");
    let prober = rig.prober();
    let fault = Instant::now();
    rig.a.kill9();
    let _ = failover(&rig, "rejoin-kill9", &rig.b_ns.clone(), fault, prober, true);
    let prober = rig.prober();
    let back = Instant::now();
    rig.a.start();
    let mut polls = 0;
    let mut a_seen_holding_after_start = 0;
    while back.elapsed() < Duration::from_secs(3) && polls < 2000 {
        polls += 1;
        assert!(rig.holds(&rig.b_ns), "b lost the resource\n{}", rig.logs());
        if back.elapsed() > Duration::from_millis(1500) && rig.holds(&rig.a_ns) {
            a_seen_holding_after_start += 1;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let outage = prober.outage(back);
    report("old-active-rejoins", outage, None);
    assert_eq!(a_seen_holding_after_start, 0, "a kept its stale address");
    assert!(outage <= MARGIN, "outage {outage:?}\n{}", rig.logs());
    assert!(rig.sole(&rig.b_ns));
    assert_eq!(status(&rig.a)["state"], "passive", "{}", status(&rig.a));
    assert_eq!(status(&rig.b)["state"], "active");
    assert!(rig.phone_reaches());
}

/// The active node loses sight of one ping-group member (a host route to
/// it is blackholed): it sees 1, the passive 2, so after the dampening it
/// hands the resource over.
#[test]
fn active_sees_fewer_ping_members() {
    let _g = one_at_a_time();
    let rig = Rig::up("ping");
    let prober = rig.prober();
    let fault = Instant::now();
    rig.lab
        .ip(&rig.a_ns, &format!("route add blackhole {PING1}/32"));
    let b_ns = rig.b_ns.clone();
    let _ = failover(&rig, "fewer-ping-members", &b_ns, fault, prober, false);
    assert!(rig.sole(&rig.b_ns), "{}", rig.logs());
    let sa = status(&rig.a);
    assert_eq!(sa["state"], "passive", "{sa}");
    assert_eq!(sa["ping_seen"], 1, "{sa}");
    assert_eq!(sa["peer_ping_seen"], 2, "{sa}");
    let events = rig.a.json(&["ha", "events"]).to_string();
    assert!(events.contains("sees fewer ping-group members"), "{events}");
    assert!(rig.phone_reaches());
}

/// kill -9 of the active while a third host (ping host 1) also claims the
/// resource address: the dead peer's stale address alone would not block,
/// the third MAC does. Once the third host lets go, b takes over.
#[test]
fn third_mac_blocks_takeover_after_kill9() {
    let _g = one_at_a_time();
    let mut rig = Rig::up("third");
    let p1 = rig.lab.name("p1");
    let p1_mac = rig.lab.sh(&p1, "cat /sys/class/net/lan0/address");
    let p1_mac = p1_mac.trim().to_string();
    rig.lab.ip(&p1, &format!("addr add {VIP}/24 dev lan0"));
    rig.a.kill9();
    let killed = Instant::now();
    let mut polls = 0;
    while killed.elapsed() < OOS + Duration::from_millis(1500) && polls < 1000 {
        polls += 1;
        assert!(
            !rig.holds(&rig.b_ns),
            "b acquired while a third MAC answers\n{}",
            rig.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = rig.b.log();
    assert!(
        log.contains(&format!("not acquiring: {VIP} is answered by {p1_mac}")),
        "{log}"
    );
    rig.lab.ip(&p1, &format!("addr del {VIP}/24 dev lan0"));
    let freed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(3), || rig.sole(&rig.b_ns)),
        "b did not take over once the third host let go\n{}",
        rig.logs()
    );
    eprintln!(
        "scenario third-mac: blocked while claimed; takeover {} ms after the third host let go",
        freed.elapsed().as_millis()
    );
    assert!(rig.phone_reaches());
}

/// `kpbx ha switch` answers once the resource has moved; when the peer
/// cannot take over (its daemon frozen), the switch fails with the reason
/// (a takes the resource back once b is out of service).
#[test]
fn a_switch_that_cannot_complete_says_so() {
    let _g = one_at_a_time();
    let rig = Rig::up("swf");
    let b_pid = nix::unistd::Pid::from_raw(i32::try_from(rig.b.pid()).expect("pid"));
    nix::sys::signal::kill(b_pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP b");
    let out = rig.a.kpbx(&["ha", "switch"]);
    nix::sys::signal::kill(b_pid, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT b");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "the switch should fail: {err}");
    assert!(err.contains("the switch did not complete"), "{err}");
    assert!(
        rig.a
            .log()
            .contains("acquiring the resource: peer out of service"),
        "{}",
        rig.logs()
    );
    // Once b is back, one node holds; a switch that can complete answers
    // with the resource on the other node.
    let settled = || {
        let (sa, sb) = (status(&rig.a), status(&rig.b));
        let one = (sa["state"] == "active" && sb["state"] == "passive")
            || (sa["state"] == "passive" && sb["state"] == "active");
        one && sa["peer_out_of_service"] == false && sb["peer_out_of_service"] == false
    };
    assert!(
        wait_until(Duration::from_secs(10), || settled()
            && (rig.sole(&rig.a_ns) || rig.sole(&rig.b_ns))),
        "the pair did not settle\n{}",
        rig.logs()
    );
    std::thread::sleep(Duration::from_millis(800));
    let active = if status(&rig.a)["state"] == "active" {
        &rig.a
    } else {
        &rig.b
    };
    let moved = active.json(&["ha", "switch"]);
    assert_eq!(moved["holder"], "remote", "{moved}");
}

// ---- issue 18: uneven heals ----------------------------------------------------------

/// The MAC of `lan0` in `ns`.
fn lan_mac(rig: &Rig, ns: &str) -> String {
    rig.lab
        .sh(ns, "cat /sys/class/net/lan0/address")
        .trim()
        .to_string()
}

/// `ns` stops hearing anything IP its peer sends, on both paths (heartbeats
/// on sync and LAN, the data sync), while the peer still hears `ns` and
/// both reach the ping group and the phone. No netfilter here: a tc ingress
/// u32 filter redirects the peer's packets into a veth whose other end is
/// down, where they are dropped. [`hear`] undoes it.
fn deafen(rig: &Rig, ns: &str) {
    let peer = if ns == rig.a_ns { 2 } else { 1 };
    if rig.lab.ip(ns, "link show").find("hxd0").is_none() {
        rig.lab.ip(ns, "link add hxd0 type veth peer name hxd1");
        rig.lab.ip(ns, "link set hxd0 up");
    }
    for (dev, src) in [
        ("lan0", format!("198.51.100.{peer}")),
        ("sync0", format!("192.0.2.{peer}")),
    ] {
        lab::run("tc", &["-n", ns, "qdisc", "add", "dev", dev, "ingress"]);
        lab::run(
            "tc",
            &[
                "-n",
                ns,
                "filter",
                "add",
                "dev",
                dev,
                "parent",
                "ffff:",
                "protocol",
                "ip",
                "prio",
                "1",
                "u32",
                "match",
                "ip",
                "src",
                &format!("{src}/32"),
                "action",
                "mirred",
                "egress",
                "redirect",
                "dev",
                "hxd0",
            ],
        );
    }
}

/// Undoes [`deafen`].
fn hear(ns: &str) {
    for dev in ["lan0", "sync0"] {
        lab::run("tc", &["-n", ns, "qdisc", "del", "dev", dev, "ingress"]);
    }
}

/// The MAC the phone's neighbour entry for the resource points to.
fn phone_neigh(rig: &Rig) -> Option<String> {
    let out = rig
        .lab
        .ip(&rig.phone, &format!("-j neigh show {VIP} dev lan0"));
    let v: serde_json::Value = serde_json::from_str(&out).expect("ip -j output is JSON");
    v.as_array()?
        .first()?
        .get("lladdr")?
        .as_str()
        .map(str::to_string)
}

/// Issue 18, item 1. Heartbeats on both paths and the data sync are cut
/// for OOS + 7.5 s, so both nodes hold; the phone resolves the resource to
/// the loser during the partition. Then the heal is uneven: first the
/// loser hears the winner 400 ms before the winner hears the loser (the
/// loser yields at once, so the winner never sees a conflict), then, in a
/// second partition, the reverse. Each time the phone must reach the
/// winner within 1 s of the heal.
#[test]
fn uneven_heal_brings_the_phone_back_in_both_orders() {
    let _g = one_at_a_time();
    let rig = Rig::up("haxheal");
    for loser_first in [true, false] {
        let (loser, winner, w) = if rig.sole(&rig.a_ns) {
            (rig.a_ns.clone(), rig.b_ns.clone(), &rig.b)
        } else {
            (rig.b_ns.clone(), rig.a_ns.clone(), &rig.a)
        };
        let order = if loser_first {
            "loser first"
        } else {
            "winner first"
        };
        let cut = Instant::now();
        deafen(&rig, &rig.a_ns);
        deafen(&rig, &rig.b_ns);
        assert!(
            wait_until(Duration::from_secs(5), || rig.holds(&winner)
                && rig.holds(&loser)),
            "{order}: both should hold during the partition\n{}",
            rig.logs()
        );
        // Past the winner's last scheduled gratuitous ARP (5 s).
        std::thread::sleep(
            (cut + OOS + Duration::from_millis(7500)).saturating_duration_since(Instant::now()),
        );
        assert!(rig.holds(&winner) && rig.holds(&loser), "{}", rig.logs());
        // The phone resolved the resource to the loser's MAC.
        let loser_mac = lan_mac(&rig, &loser);
        let winner_mac = lan_mac(&rig, &winner);
        rig.lab.ip(
            &rig.phone,
            &format!("neigh replace {VIP} lladdr {loser_mac} dev lan0 nud reachable"),
        );
        assert_eq!(phone_neigh(&rig).as_deref(), Some(loser_mac.as_str()));
        let (first, second) = if loser_first {
            (&loser, &winner)
        } else {
            (&winner, &loser)
        };
        hear(first);
        std::thread::sleep(Duration::from_millis(400));
        hear(second);
        let healed = Instant::now();
        let back = wait_until(Duration::from_millis(1000), || {
            phone_neigh(&rig).as_deref() == Some(winner_mac.as_str())
        });
        let took = healed.elapsed();
        assert!(
            back,
            "{order}: the phone still points to the loser ({:?}) 1 s after the heal\n{}",
            phone_neigh(&rig),
            rig.logs()
        );
        eprintln!(
            "scenario uneven-heal ({order}): phone on the winner {} ms after the heal",
            took.as_millis()
        );
        assert!(
            wait_until(Duration::from_secs(3), || rig.sole(&winner)),
            "{order}: the winner should hold alone\n{}",
            rig.logs()
        );
        assert!(rig.phone_reaches(), "{order}: phone cannot reach {VIP}");
        assert_eq!(status(w)["state"], "active");
        // Let the pair settle (peer heard on both paths, sync reconnected).
        assert!(
            wait_until(Duration::from_secs(10), || {
                let (sa, sb) = (status(&rig.a), status(&rig.b));
                sa["peer_out_of_service"] == false
                    && sb["peer_out_of_service"] == false
                    && sa["degraded"] == false
                    && sb["degraded"] == false
            }),
            "the pair did not settle\n{}",
            rig.logs()
        );
    }
}
