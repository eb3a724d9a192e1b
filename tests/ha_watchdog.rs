//! The loop watchdog (`src/daemon/ha.rs`, issue 18): a node whose event
//! loop (the services it fronts: console, API, provisioning, data sync)
//! has stopped answering must not claim health for it forever. Two real
//! kpbxd processes in network namespaces (the rig of `tests/lab/rig.rs`:
//! heartbeat 0.1 s, warning 0.3 s, out of service 0.5 s; root and iproute2
//! required, the test fails without them). The active node's event loop
//! (its main thread) is stopped with ptrace while its other threads run
//! on, as a loop wedged in a long step would be. What the watchdog
//! promises:
//! - below its limit (`ha::loop_limit`: 30 s, `LOOP_FLOOR`, at these
//!   times) nothing moves: the heartbeats keep coming from the HA thread,
//!   the peer does not see the node out of service, the node keeps the
//!   resource;
//! - past the limit the node logs that the loop has not answered, releases
//!   the resource and the peer takes it at once (the phone reaches it);
//! - once the loop answers again the node says so and stays passive: no
//!   second holder.

mod common;
mod lab;
#[path = "lab/rig.rs"]
mod rig;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rig::*;

/// `kpbxd::daemon::ha::LOOP_FLOOR`, the watchdog's limit at the rig's
/// out-of-service time (0.5 s).
const LIMIT: Duration = Duration::from_secs(30);
/// The loop stamps `alive` each time it wakes, at least once a second
/// (its tick): its last stamp may precede the stop by that much.
const TICK: Duration = Duration::from_secs(1);

/// One thread of another process, stopped by ptrace (`PTRACE_SEIZE` and
/// `PTRACE_INTERRUPT`: the process's other threads run on); let go on drop
/// (`PTRACE_DETACH`, from the thread that stopped it).
struct Stopped {
    tid: libc::pid_t,
}

impl Stopped {
    fn thread(tid: u32) -> Stopped {
        let tid = libc::pid_t::try_from(tid).expect("tid");
        // SAFETY: ptrace and waitpid on a thread id of our own child; no
        // memory is passed.
        unsafe {
            assert_eq!(
                libc::ptrace(libc::PTRACE_SEIZE, tid, 0, 0),
                0,
                "ptrace seize {tid}: {}",
                std::io::Error::last_os_error()
            );
            assert_eq!(
                libc::ptrace(libc::PTRACE_INTERRUPT, tid, 0, 0),
                0,
                "ptrace interrupt {tid}: {}",
                std::io::Error::last_os_error()
            );
            let mut status = 0;
            assert_eq!(
                libc::waitpid(tid, &mut status, libc::__WALL),
                tid,
                "waitpid {tid}: {}",
                std::io::Error::last_os_error()
            );
            assert!(
                libc::WIFSTOPPED(status),
                "thread {tid} not stopped: {status:#x}"
            );
        }
        Stopped { tid }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        // SAFETY: detaching the thread this thread attached to.
        unsafe {
            libc::ptrace(libc::PTRACE_DETACH, self.tid, 0, 0);
        }
    }
}

fn log_has(d: &common::Daemon, text: &str) -> bool {
    d.log().contains(text)
}

#[test]
fn a_stalled_event_loop_gives_the_resource_up_after_the_limit_and_not_before() {
    let _serial = one_at_a_time();
    let rig = Rig::up("hbwdog");
    let a_sync: Ipv4Addr = "192.0.2.1".parse().expect("address");
    let beats = HeartbeatLog::start(&rig.lab, &rig.b_ns, "sync0", a_sync);
    std::thread::sleep(Duration::from_millis(300));

    // The loop answers (and so stamps itself alive) just before the stop.
    assert_eq!(status(&rig.a)["state"], "active", "{}", rig.logs());
    // The event loop runs on the main thread: its id is the process id.
    let t0 = wall_now();
    let stopped_at = Instant::now();
    let stop = Stopped::thread(rig.a.pid());

    // Below the limit: nothing moves. Watched until one tick before it.
    let quiet = LIMIT - TICK - Duration::from_millis(500);
    let mut b_states = Vec::new();
    while stopped_at.elapsed() < quiet {
        // b's own loop answers; a's does not (its console is the loop).
        b_states.push(status(&rig.b)["state"].as_str().unwrap_or("?").to_string());
        assert!(
            rig.sole(&rig.a_ns),
            "a gave the resource up {} ms into the stall, before the watchdog's limit\n{}",
            stopped_at.elapsed().as_millis(),
            rig.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let gap = beats.max_gap(t0, wall_now());
    println!(
        "FIGURE loop stopped {} ms: largest heartbeat gap {} ms ({} heartbeats), b {:?}",
        stopped_at.elapsed().as_millis(),
        gap.as_millis(),
        beats.arrivals().iter().filter(|t| **t >= t0).count(),
        b_states.last()
    );
    assert!(
        b_states.iter().all(|s| s == "passive"),
        "b left passive while a's loop was stopped below the limit: {b_states:?}\n{}",
        rig.logs()
    );
    // What the peer acts on: a heartbeat gap as long as the out-of-service
    // time would have made it take over (asserted above); the pace itself
    // is the HA thread's, whatever the loop does.
    assert!(
        gap < OOS,
        "heartbeats stopped with the event loop: largest gap {} ms\n{}",
        gap.as_millis(),
        rig.logs()
    );
    assert!(
        !log_has(&rig.b, "peer out of service"),
        "b saw a out of service\n{}",
        rig.logs()
    );

    // Past the limit: a releases, b takes the resource at once.
    let moved = lab::wait_until(LIMIT + Duration::from_secs(15), || rig.sole(&rig.b_ns));
    let after = stopped_at.elapsed();
    assert!(
        moved,
        "the resource did not move to b {} ms into the stall\n{}",
        after.as_millis(),
        rig.logs()
    );
    let released = rig
        .vip_log(&rig.b_ns)
        .appeared_since(stopped_at)
        .map(|t| t - stopped_at);
    println!(
        "FIGURE b holds the resource {:?} after a's loop stopped (limit {} s)",
        released,
        LIMIT.as_secs()
    );
    assert!(
        released.is_some_and(|t| t >= LIMIT - TICK),
        "b took the resource before the limit: {released:?}\n{}",
        rig.logs()
    );
    assert!(
        log_has(&rig.a, "the event loop has not answered for"),
        "a did not say why it released\n{}",
        rig.logs()
    );
    assert_eq!(status(&rig.b)["state"], "active", "{}", rig.logs());
    assert!(
        rig.phone_reaches(),
        "the phone cannot reach the resource on b\n{}",
        rig.logs()
    );

    // The loop answers again: a says so, stays passive, b keeps it.
    drop(stop);
    assert!(
        lab::wait_until(Duration::from_secs(20), || log_has(
            &rig.a,
            "the event loop answers again"
        )),
        "a did not notice its loop answering\n{}",
        rig.logs()
    );
    assert!(
        lab::wait_until(Duration::from_secs(20), || status(&rig.a)["state"]
            == "passive"),
        "a is not passive after its loop answered: {}\n{}",
        status(&rig.a),
        rig.logs()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        rig.sole(&rig.b_ns),
        "b no longer the sole holder after a's loop came back\n{}",
        rig.logs()
    );
    assert_eq!(status(&rig.b)["state"], "active", "{}", rig.logs());
}

/// Issue 17 item 6 and issue 18 item 6: 50 parallel password changes
/// delayed heartbeats by up to 256 ms (release build, 456 ms gaps at a
/// 200 ms interval). The cause: the event loop thread, at ordinary
/// priority, held the process's one I/O reactor whenever it was idle
/// (waiting for the hashes), and the HA thread's timers were delivered by
/// it, whenever it got a core on a busy box. Here, during the 50 changes,
/// the loop thread gets no core at all for 800 ms at a time (stopped with
/// ptrace, 12 times at random moments): the heartbeats must keep their
/// pace. Bound: the rig's warning time (0.3 s, three heartbeat intervals;
/// the HA thread runs at real-time priority, so CI load does not eat it);
/// a heartbeat that waited for the loop left a gap of the whole stop, and
/// the peer took over (out of service 0.5 s).
#[test]
fn heartbeats_keep_their_pace_during_password_changes_while_the_loop_gets_no_core() {
    let _serial = one_at_a_time();
    let rig = Rig::up("hbpw");
    common::add_user(&rig.a, "ann", "admin", "ann-password");
    common::add_user(&rig.a, "bob", "supervisor", "bob-password");
    let a_sync: Ipv4Addr = "192.0.2.1".parse().expect("address");
    let beats = HeartbeatLog::start(&rig.lab, &rig.b_ns, "sync0", a_sync);
    std::thread::sleep(Duration::from_millis(300));
    let warning = Duration::from_millis(300);
    let t0 = wall_now();
    let storm = password_storm(&rig.a, &rig.a_ns);
    let mut seed = u64::from(std::process::id());
    for _ in 0..12 {
        // 50-300 ms of running between stops, so that they fall at
        // different points of the loop's work.
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        std::thread::sleep(Duration::from_millis(50 + (seed >> 33) % 250));
        let stop = Stopped::thread(rig.a.pid());
        std::thread::sleep(Duration::from_millis(800));
        drop(stop);
    }
    let mut codes = Vec::new();
    for c in storm {
        let out = c.wait_with_output().expect("curl");
        codes.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let gap = beats.max_gap(t0, wall_now());
    println!(
        "FIGURE 50 password changes, loop thread stopped 12 x 800 ms: largest heartbeat gap {} ms",
        gap.as_millis()
    );
    assert!(
        gap < warning,
        "heartbeats waited for the loop thread: largest gap {} ms\n{}",
        gap.as_millis(),
        rig.logs()
    );
    assert_eq!(status(&rig.b)["state"], "passive", "{}", rig.logs());
    assert!(rig.sole(&rig.a_ns), "a lost the resource\n{}", rig.logs());
    assert_eq!(codes.len(), 50, "curl answers: {codes:?}");
    assert!(
        codes.iter().all(|c| c == "200"),
        "every change done: {codes:?}"
    );
}
