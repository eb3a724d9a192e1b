//! The HA runtime: owns the [`ha::Node`], feeds it what the `net` adapters
//! see and carries out its actions through them, on a thread of its own.
//!
//! ```text
//!            HA thread (own executor)                          event loop
//!  heartbeat sockets (sync, lan) ─┐
//!  netlink address + link watch  ─┤ tasks ── Msg::Ha ──> node ── Event::HaChanged ──> sync, roles
//!  pinger, ARP probes            ─┘            ^  │                 (state changed)
//!  timer at node.poll_timeout() ───────────────┘  │     <── Shared (mutex): status, sync view,
//!      Send ─> heartbeat socket   Add/Refresh/RemoveAddress ─> netlink     admin, configure
//!      SendGarp/ArpProbe ─> AF_PACKET   RunHook ─> hook worker (ordered, time-limited)
//!      StoreClusterKey/ForgetClusterKey ─> data_dir/ha/cluster.key
//!      StoreRoleDisabled ─> Event::HaRoleDisabled ─> Store::commit on the loop
//!      RequestEntropy ─> /dev/urandom ─> Event::Entropy
//!  loop watchdog: the loop stamps `alive` on every wake; silent past
//!  max(out of service, 30 s) ─> Event::ServiceLoop { answering: false }
//! ```
//!
//! Why a thread (issue 18, item 6): heartbeats are sent and read, and the
//! decision to keep holding is taken, whatever the event loop is doing. A
//! 40,000-account import, regenerating 10,000 devices' files or a snapshot
//! install holds the loop for a second or more; on the loop, that was a
//! heartbeat gap as long, and the peer took over a healthy node. The core
//! stays pure; only its driver moved. Protocol with the loop:
//! - The node lives in [`Shared`] behind one mutex with priority
//!   inheritance ([`PiMutex`], `daemon/pi_mutex.rs`). Every lock is short (a core call or a
//!   copy), never held across I/O, an await or a store call.
//! - Resource address changes go over netlink from a thread of their own
//!   ([`AddressWorker`]), in order: the HA thread waits for an add or a
//!   remove, never for a periodic refresh (netlink waits for the kernel's
//!   rtnl lock, which other processes hold for long).
//! - The loop reads status and the sync view and hands in operator
//!   commands and configuration through the mutex, then wakes the thread
//!   ([`Msg::Kick`]) to carry out what the node queued.
//! - The thread tells the loop when what the loop acts on changed (state,
//!   holder, peer out of service, pairing, `sure_holder`):
//!   [`Event::HaChanged`], coalesced; it never touches the store: storing
//!   `role=disabled` is [`Event::HaRoleDisabled`], done by the loop.
//! - A node must not claim health for services that are wedged: the loop
//!   stamps `alive` each time it wakes (it wakes at least every second for
//!   its tick). When the stamp is older than [`loop_limit`] ([`LOOP_FLOOR`],
//!   30 s, or the out-of-service time if longer), the thread tells the
//!   core the loop stopped answering: the node is not eligible, releases
//!   the resource (the peer takes it at once) and never acquires it until
//!   the loop answers again. A pause of the whole process (both threads)
//!   is no stalled loop: the measure restarts when the thread itself was
//!   not run.
//!
//! Persistence: the configuration is the `ha` object in the store. The
//! cluster key (derived state of a pairing, a secret) lives in
//! `data_dir/ha/cluster.key` (hex, 0600), never in the store, so it is not
//! copied into the audit log. The boot counter `Identity::incarnation` is
//! `data_dir/ha/incarnation`, bumped before every start of a node.
//!
//! Each start of the runtime gets a new generation; events of tasks from
//! an older generation are dropped. A saved configuration that changes
//! only times or the default active node goes to the running node as
//! `Event::ConfigChanged`; any other restarts the runtime (the old node's
//! resource addresses are removed first, queued hooks finish); a start
//! that fails (missing interface, address not configured yet) is retried
//! every [`RETRY`].

use std::collections::VecDeque;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use smol::LocalExecutor;
use smol::channel::{Receiver, Sender};

use super::pi_mutex::{PiGuard, PiMutex};
use super::{Daemon, Event};
use crate::clock::{Clock, Instant, SystemClock};
use crate::control::{HaCountersView, HaEventView, HaNodeView, HaPathView, HaStatusView};
use crate::ha::{self, Action, AdminCommand, Hook, Identity, Level, Node, Path as HaPath, Role};
use crate::model::{Change, HA_ID, HaSettings, Kind, Object, Origin, Source};
use crate::net::arp::ArpSocket;
use crate::net::heartbeat::{HeartbeatSocket, PathSocketConfig};
use crate::net::netlink::{AddressChange, AddressWatch, LinkWatch, Netlink};
use crate::net::ping::Pinger;
use crate::store::Store;

/// UDP port of the heartbeat and pairing frames on both paths.
pub const HEARTBEAT_PORT: u16 = 7410;
/// How long the adapter waits for the answer for the peer's LAN address
/// (asked when someone claims the resource): on a LAN a reply takes
/// milliseconds. How long a probe of the resource listens is the core's
/// (`Action::ArpProbe::until`).
const PROBE_WAIT: Duration = Duration::from_millis(150);
/// The shortest listen for claims after sending a probe.
const PROBE_MIN_LISTEN: Duration = Duration::from_millis(10);
/// How long a probe keeps listening after the first claim, for others.
const PROBE_LINGER: Duration = Duration::from_millis(30);
/// Time limit of each hook.
const HOOK_LIMIT: Duration = Duration::from_secs(30);
/// How long a stopping runtime waits for queued hooks.
const HOOK_DRAIN: Duration = Duration::from_secs(10);
/// Delay before a failed start is tried again.
const RETRY: Duration = Duration::from_secs(3);
/// Most rounds of action execution after one event (entropy feeds back).
const MAX_ROUNDS: usize = 16;
/// The shortest time the event loop may be silent before the node stops
/// claiming health for it. Far above any single step of the loop measured
/// (`make bench`, heartbeat gaps: about a second in a release build, a few
/// seconds in a debug build on a loaded box), because a failover is not
/// free: it drops the calls in progress, which Asterisk, outside this
/// loop, may be carrying fine while an import runs. A loop wedged for good
/// is replaced after this (plus one heartbeat).
pub const LOOP_FLOOR: Duration = Duration::from_secs(30);
/// How long the daemon waits for the HA thread to hand over and stop.
const STOP_LIMIT: Duration = Duration::from_secs(20);
/// The longest a stopping holder waits for its peer to take the resource
/// (well inside [`STOP_LIMIT`]); at most the out-of-service time.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// How long the event loop may be silent before the node is told that it
/// stopped answering: [`LOOP_FLOOR`], or the out-of-service time if that
/// is longer (a wedged loop is never replaced faster than a dead node).
pub fn loop_limit(out_of_service: Duration) -> Duration {
    out_of_service.max(LOOP_FLOOR)
}

/// Everything the HA thread needs to talk to the network for one node.
struct Io {
    /// Adds, refreshes and removes the resource addresses, in order.
    addresses: AddressWorker,
    sync: HeartbeatSocket,
    lan: HeartbeatSocket,
    /// Sends the gratuitous ARPs: open while the node runs, it receives
    /// nothing ([`ArpSocket::open_sender`]). A probe opens a receiving
    /// socket of its own, off this thread: a long-lived one would queue
    /// every ARP frame on the LAN unread, and a probe on it would read stale
    /// claims (two probes would also steal each other's answers).
    garp: ArpSocket,
    lan_index: u32,
    lan_mac: [u8; 6],
    /// The peer's LAN address: when another MAC answers a probe for the
    /// resource, the adapter asks who answers for this one too.
    peer_lan_ip: Ipv4Addr,
}

/// What the address worker does to a resource address.
#[derive(Clone, Copy, Debug)]
enum AddressOp {
    Add(Duration),
    Refresh(Duration),
    Remove,
}

/// Carries out the resource address changes on a thread of its own, in the
/// order asked. A netlink request is done in the sender's system call,
/// which waits for the kernel's rtnl lock; other processes (namespace
/// creation and deletion, `ip`, other daemons) hold it for tens of ms and
/// more on a busy box. On the HA thread every periodic refresh waited with
/// it, and the heartbeats with them (issue 17, item 6). The thread is
/// real-time too (a release must not wait for a core behind the load), and
/// ends when the worker is dropped.
struct AddressWorker {
    jobs: std::sync::mpsc::Sender<(AddressOp, ha::ResourceIp, Option<Sender<()>>)>,
}

impl AddressWorker {
    fn start(netlink: Netlink) -> std::io::Result<AddressWorker> {
        let (jobs, rx) =
            std::sync::mpsc::channel::<(AddressOp, ha::ResourceIp, Option<Sender<()>>)>();
        std::thread::Builder::new()
            .name("kpbxd-ha-addr".into())
            .spawn(move || {
                if let Err(e) = real_time(0) {
                    log::warn!("ha: address thread at ordinary priority (real-time refused: {e})");
                }
                while let Ok((op, r, done)) = rx.recv() {
                    smol::block_on(address_op(&netlink, op, &r));
                    if let Some(done) = done {
                        let _ = done.try_send(());
                    }
                }
            })?;
        Ok(AddressWorker { jobs })
    }

    /// Queues the change and waits until it is done.
    async fn run(&self, op: AddressOp, r: ha::ResourceIp) {
        let (done, finished) = smol::channel::bounded(1);
        if self.jobs.send((op, r, Some(done))).is_ok() {
            let _ = finished.recv().await;
        }
    }

    /// Queues the change.
    fn queue(&self, op: AddressOp, r: ha::ResourceIp) {
        let _ = self.jobs.send((op, r, None));
    }
}

async fn address_op(netlink: &Netlink, op: AddressOp, r: &ha::ResourceIp) {
    let (what, result) = match op {
        AddressOp::Add(valid) => (
            "add",
            netlink
                .add_address(&r.interface, r.addr, r.prefix, valid)
                .await,
        ),
        AddressOp::Refresh(valid) => (
            "refresh",
            netlink
                .refresh_address(&r.interface, r.addr, r.prefix, valid)
                .await,
        ),
        AddressOp::Remove => (
            "remove",
            netlink
                .remove_address(&r.interface, r.addr, r.prefix)
                .await
                .map(drop),
        ),
    };
    if let Err(e) = result {
        log::error!("ha: {what} {}: {e}", r.addr);
    }
}

/// The running node, in [`Shared`].
struct Running {
    node: Node,
    serial: String,
    settings: HaSettings,
}

/// What the HA thread holds for a running node (not shared: sockets,
/// tasks).
struct Plant {
    io: Rc<Io>,
    hooks: Sender<(Hook, ha::Reason)>,
    /// Runs the queued hooks in order; ends when `hooks` is dropped.
    hook_task: smol::Task<()>,
    /// Cancelled on drop.
    _tasks: Vec<smol::Task<()>>,
}

/// What the HA thread and the event loop share (one mutex, short locks).
#[derive(Default)]
struct Shared {
    running: Option<Running>,
    generation: u64,
    /// Stored settings, as last read.
    settings: Option<HaSettings>,
    /// Why the runtime is not running although enabled.
    failed: Option<String>,
    /// Restart from the stored configuration at the next drive.
    restart: bool,
    /// Actions drained from the node, not yet carried out.
    queued: VecDeque<Action>,
    /// Events produced here (entropy, start-up dumps), fed before the next round.
    pending: VecDeque<ha::Event>,
    /// The core's last warning, for a switch that did not complete.
    last_warning: Option<String>,
}

/// Messages to the HA thread.
enum Msg {
    /// Something an HA adapter task saw, for the runtime of `generation`.
    Ha { generation: u64, event: ha::Event },
    /// The loop changed something in [`Shared`]: drive the node.
    Kick,
    /// The daemon stops: hand over if possible, release, answer.
    Shutdown(Sender<()>),
}

/// The pair as data sync sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncView {
    pub key: crate::ha::auth::Key,
    pub local: Ipv4Addr,
    pub remote: Ipv4Addr,
    pub remote_lan: Ipv4Addr,
    pub state: ha::State,
    pub peer_holds: bool,
    pub peer_out_of_service: bool,
    /// How long a commit waits for the peer before going asynchronous.
    pub ack_bound: Duration,
    /// This node's role is coordinator: at pairing its data wins.
    pub coordinator: bool,
    /// This node knows itself the rightful holder now
    /// ([`ha::Node::sure_holder`]): a change the peer has not stored may
    /// be confirmed.
    pub sure: bool,
}

/// The event loop's side of HA (in `Daemon::ha`): a handle on the HA
/// thread and on the node it drives.
pub struct HaRuntime {
    data_dir: PathBuf,
    shared: Arc<PiMutex<Shared>>,
    to_thread: Sender<Msg>,
    /// When the event loop last woke (µs of the monotonic clock).
    alive: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// `kpbx ha switch` requests waiting for their outcome.
    switches: Vec<Switch>,
}

/// A switch in progress: it succeeds when the resource is where it was
/// asked to go, and fails at `deadline` (or when HA stops).
struct Switch {
    deadline: Instant,
    /// Asked on the active node (the peer is to take over).
    from_active: bool,
    reply: Sender<crate::control::Reply>,
}

fn lock(m: &PiMutex<Shared>) -> PiGuard<'_, Shared> {
    m.lock()
}

impl HaRuntime {
    /// Starts the HA thread; it reads the stored configuration at once.
    pub fn start(
        data_dir: &Path,
        store: Arc<Store>,
        clock: SystemClock,
        to_loop: Sender<Event>,
    ) -> std::io::Result<HaRuntime> {
        let shared = Arc::new(PiMutex::new(Shared {
            restart: true,
            ..Shared::default()
        }));
        let (to_thread, rx) = smol::channel::unbounded();
        let alive = Arc::new(AtomicU64::new(clock.now().as_micros()));
        let (dir, state, watched) = (data_dir.join("ha"), shared.clone(), alive.clone());
        let tx = to_thread.clone();
        let handle = std::thread::Builder::new()
            .name("kpbxd-ha".into())
            .spawn(move || {
                HaThread {
                    data_dir: dir,
                    shared: state,
                    store,
                    clock,
                    tx,
                    to_loop,
                    plant: None,
                    retry_at: None,
                    alive: watched,
                    watch: Watch::default(),
                    told: None,
                    stopping: None,
                }
                .run(rx);
            })?;
        Ok(HaRuntime {
            data_dir: data_dir.join("ha"),
            shared,
            to_thread,
            alive,
            thread: Some(handle),
            switches: Vec::new(),
        })
    }

    /// The event loop woke: the HA thread's watchdog sees it answering.
    pub fn loop_alive(&self, now: Instant) {
        self.alive.store(now.as_micros(), Ordering::Relaxed);
    }

    /// Wakes the HA thread to carry out what the node queued.
    fn kick(&self) {
        let _ = self.to_thread.try_send(Msg::Kick);
    }

    /// Holds the reply of an accepted `kpbx ha switch` until the resource
    /// has moved (the status then) or the switch has failed (an error).
    /// `from_active`: this node held the resource when the switch was
    /// asked.
    pub fn await_switch(
        &mut self,
        now: Instant,
        from_active: bool,
        reply: Sender<crate::control::Reply>,
    ) {
        let limit = {
            let mut s = lock(&self.shared);
            s.last_warning = None;
            s.running.as_ref().map_or(Duration::ZERO, |r| {
                r.settings.config.keepalive_out_of_service * 2 + Duration::from_secs(1)
            })
        };
        self.switches.push(Switch {
            deadline: now + limit,
            from_active,
            reply,
        });
    }

    /// Whether this node holds the resource.
    pub fn holds(&self) -> bool {
        lock(&self.shared)
            .running
            .as_ref()
            .is_some_and(|r| r.node.holds())
    }

    /// Answers the switches whose outcome is known.
    pub fn settle_switches(&mut self, now: Instant) {
        if self.switches.is_empty() {
            return;
        }
        let status = self.status(now);
        let moved = |from_active: bool| match status.holder.as_str() {
            "remote" => from_active,
            "local" => !from_active,
            _ => false,
        };
        let (running, warning) = {
            let s = lock(&self.shared);
            (s.running.is_some(), s.last_warning.clone())
        };
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.switches)
            .into_iter()
            .partition(|w| moved(w.from_active) || !running || now >= w.deadline);
        self.switches = waiting;
        for w in done {
            let reply = if moved(w.from_active) {
                crate::control::Reply::HaStatus(Box::new(status.clone()))
            } else {
                crate::control::Reply::error(
                    crate::control::ErrorCode::Unavailable,
                    format!(
                        "the switch did not complete: {}",
                        warning
                            .as_deref()
                            .unwrap_or("the resource did not move in time")
                    ),
                )
            };
            let _ = w.reply.try_send(reply);
        }
    }

    /// Restart from the stored configuration (on the HA thread, now).
    pub fn request_restart(&mut self) {
        lock(&self.shared).restart = true;
        self.kick();
    }

    /// Applies a saved configuration to the running node without a restart
    /// when only what the core can take live changed (times and the
    /// default active node); returns `false` when a restart is needed.
    pub fn reconfigure(&mut self, now: Instant, next: &HaSettings) -> bool {
        let mut s = lock(&self.shared);
        let s = &mut *s;
        let Some(i) = &mut s.running else {
            return false;
        };
        let (old, new) = (&i.settings.config, &next.config);
        let live = new.role != Role::Disabled
            && new.role == old.role
            && i.node.state() != ha::State::Disabled
            && new.remote_serial == old.remote_serial
            && new.pairing_code == old.pairing_code
            && new.lan == old.lan
            && new.sync == old.sync
            && new.resources == old.resources
            && new.ping_group == old.ping_group
            && new.ping_interval == old.ping_interval
            && new.ping_dampen == old.ping_dampen
            && next.serial_source == i.settings.serial_source
            && next.hook_dir == i.settings.hook_dir;
        if !live {
            return false;
        }
        i.node
            .handle_event(now, ha::Event::ConfigChanged(Box::new(new.clone())));
        while let Some(a) = i.node.poll_action() {
            s.queued.push_back(a);
        }
        i.settings = next.clone();
        s.settings = Some(next.clone());
        log::info!("ha: configuration applied without a restart");
        self.kick();
        true
    }

    /// The loop stored `role=disabled` ([`Event::HaRoleDisabled`]).
    pub fn role_disabled_stored(&mut self, next: &HaSettings) {
        let mut s = lock(&self.shared);
        s.settings = Some(next.clone());
        if let Some(i) = &mut s.running {
            i.settings = next.clone();
        }
    }

    /// The cluster key belongs to one pairing: forget it when the pairing
    /// secret or the role changes.
    pub fn forget_key(&self) {
        let _ = std::fs::remove_file(self.data_dir.join("cluster.key"));
    }

    /// How long the loop may wait before it must settle a switch.
    pub fn next_wait(&self, now: Instant) -> Option<Duration> {
        self.switches
            .iter()
            .map(|w| w.deadline.saturating_since(now))
            .min()
    }

    /// An operator command. Refusals the core reports are returned as errors.
    pub fn admin(&mut self, now: Instant, cmd: AdminCommand) -> Result<(), String> {
        let mut s = lock(&self.shared);
        let s = &mut *s;
        let Some(i) = &mut s.running else {
            return Err(match &s.failed {
                Some(why) => format!("HA is not running: {why}"),
                None => "HA is not running (role disabled or not configured)".to_string(),
            });
        };
        i.node.handle_event(now, ha::Event::Admin(cmd));
        let mut refused = None;
        while let Some(a) = i.node.poll_action() {
            if let Action::Report {
                level: Level::Warn,
                message,
            } = &a
                && message.contains("refused")
            {
                refused = Some(message.clone());
            }
            s.queued.push_back(a);
        }
        self.kick();
        refused.map_or(Ok(()), Err)
    }

    /// What data sync needs to know of the pair; `None` while HA is not
    /// running or the node is not paired.
    pub fn sync_view(&self, now: Instant) -> Option<SyncView> {
        sync_view(&lock(&self.shared), now)
    }

    /// `running` state name for `kpbx status`, and a detail line.
    pub fn service(&self, now: Instant) -> (String, String) {
        let v = self.status(now);
        let state = match v.state.as_str() {
            "disabled" | "failed" => v.state.clone(),
            _ => "running".to_string(),
        };
        let detail = if v.state == "failed" {
            v.detail
        } else {
            format!(
                "role {}, state {}, holder {}, {}",
                v.role,
                v.state,
                v.holder,
                if v.paired { "paired" } else { "not paired" }
            )
        };
        (state, detail)
    }

    pub fn status(&self, now: Instant) -> HaStatusView {
        let s = lock(&self.shared);
        let settings = s.settings.clone().unwrap_or_default();
        let c = &settings.config;
        let mut v = HaStatusView {
            role: settings.role_name().to_string(),
            state: "disabled".to_string(),
            detail: String::new(),
            paired: false,
            local: HaNodeView {
                serial: String::new(),
                sync_ip: c.sync.local_ip.to_string(),
                lan_ip: c.lan.local_ip.to_string(),
            },
            remote: HaNodeView {
                serial: if c.role == Role::Coordinator {
                    c.remote_serial.clone()
                } else {
                    String::new()
                },
                sync_ip: c.sync.remote_ip.to_string(),
                lan_ip: c.lan.remote_ip.to_string(),
            },
            holder: "nobody".to_string(),
            resources: c
                .resources
                .iter()
                .map(|r| format!("{}/{}@{}", r.addr, r.prefix, r.interface))
                .collect(),
            paths: Vec::new(),
            degraded: false,
            peer_out_of_service: false,
            ping_group: c.ping_group.iter().map(|a| a.to_string()).collect(),
            ping_seen: 0,
            peer_ping_seen: None,
            epoch: 0,
            counters: counters(ha::Counters::default()),
            sync: Default::default(),
        };
        if let Some(why) = &s.failed {
            v.state = "failed".to_string();
            v.detail = why.clone();
        }
        let Some(i) = &s.running else {
            return v;
        };
        let s = i.node.status(now);
        v.local.serial = i.serial.clone();
        v.state = state_name(s.state).to_string();
        v.paired = s.paired;
        v.holder = match s.holder {
            ha::Holder::Nobody => "nobody",
            ha::Holder::Local => "local",
            ha::Holder::Remote => "remote",
            ha::Holder::Both => "both",
        }
        .to_string();
        v.paths = s
            .paths
            .iter()
            .map(|p| HaPathView {
                path: path_name(p.path).to_string(),
                heartbeat_age_ms: p
                    .heartbeat_age
                    .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                warning: p.warning,
            })
            .collect();
        v.degraded = s.degraded;
        v.peer_out_of_service = s.peer_out_of_service;
        v.ping_seen = s.ping_seen;
        v.peer_ping_seen = s.peer_ping_seen;
        v.epoch = s.epoch;
        v.counters = counters(s.counters);
        v
    }

    /// Transitions with wall times (`wall_now` is the wall time at `now`).
    pub fn events(&self, now: Instant, wall_now: i64) -> Vec<HaEventView> {
        let s = lock(&self.shared);
        let Some(i) = &s.running else {
            return Vec::new();
        };
        i.node
            .transitions()
            .map(|t| {
                let ago = i64::try_from(now.saturating_since(t.at).as_micros()).unwrap_or(0);
                HaEventView {
                    time_us: wall_now.saturating_sub(ago),
                    state: state_name(t.state).to_string(),
                    reason: t.reason.to_string(),
                }
            })
            .collect()
    }

    /// On daemon stop: the HA thread tells the core ([`ha::Event::Stopping`]:
    /// release, then heartbeats with the handover flag, so the peer takes
    /// it at once instead of after its out-of-service time), waits for the
    /// peer to hold it (bounded), removes whatever is still held and ends.
    pub fn shutdown(&mut self) -> impl std::future::Future<Output = ()> + 'static {
        let (done, finished) = smol::channel::bounded(1);
        let asked = self.to_thread.try_send(Msg::Shutdown(done)).is_ok();
        let thread = self.thread.take();
        async move {
            if asked {
                let answered = smol::future::or(async { finished.recv().await.is_ok() }, async {
                    smol::Timer::after(STOP_LIMIT).await;
                    false
                })
                .await;
                if !answered {
                    log::warn!(
                        "ha: the HA thread did not stop within {} s",
                        STOP_LIMIT.as_secs()
                    );
                    return;
                }
            }
            if let Some(t) = thread {
                let _ = t.join();
            }
        }
    }
}

/// The sync view from the shared state.
fn sync_view(s: &Shared, now: Instant) -> Option<SyncView> {
    let i = s.running.as_ref()?;
    let key = *i.node.cluster_key()?;
    let c = &i.settings.config;
    let status = i.node.status(now);
    Some(SyncView {
        key,
        local: c.sync.local_ip,
        remote: c.sync.remote_ip,
        remote_lan: c.lan.remote_ip,
        state: i.node.state(),
        peer_holds: matches!(status.holder, ha::Holder::Remote | ha::Holder::Both),
        peer_out_of_service: status.peer_out_of_service,
        ack_bound: c.keepalive_out_of_service,
        coordinator: c.role == Role::Coordinator,
        sure: i.node.sure_holder(now),
    })
}

/// What the loop acts on: when it changes, the HA thread wakes the loop.
#[derive(Clone, PartialEq, Eq)]
struct Seen {
    running: bool,
    failed: bool,
    view: Option<(ha::State, bool, bool, bool)>,
    holder: Option<ha::Holder>,
    state: Option<ha::State>,
}

fn seen(s: &Shared, now: Instant) -> Seen {
    Seen {
        running: s.running.is_some(),
        failed: s.failed.is_some(),
        view: sync_view(s, now).map(|v| (v.state, v.peer_holds, v.peer_out_of_service, v.sure)),
        holder: s.running.as_ref().map(|r| r.node.status(now).holder),
        state: s.running.as_ref().map(|r| r.node.state()),
    }
}

fn counters(c: ha::Counters) -> HaCountersView {
    HaCountersView {
        heartbeats_sent: c.heartbeats_sent,
        heartbeats_received: c.heartbeats_received,
        forged: c.forged,
        replayed: c.replayed,
        malformed: c.malformed,
        foreign_source: c.foreign_source,
        unauthenticated: c.unauthenticated,
        pairing_failures: c.pairing_failures,
    }
}

fn state_name(s: ha::State) -> &'static str {
    match s {
        ha::State::Disabled => "disabled",
        ha::State::Unpaired => "unpaired",
        ha::State::Pairing => "pairing",
        ha::State::Init => "init",
        ha::State::Passive => "passive",
        ha::State::Active => "active",
    }
}

fn path_name(p: HaPath) -> &'static str {
    match p {
        HaPath::Sync => "sync",
        HaPath::Lan => "lan",
    }
}

// ---------------------------------------------------------------- the HA thread

/// The loop watchdog's state (on the HA thread).
#[derive(Default)]
struct Watch {
    /// The thread's last look; a long gap since is a pause of the process.
    last_look: Option<Instant>,
    /// Silence of the loop is counted from no earlier than this.
    floor: Option<Instant>,
    /// The loop was found silent past the limit (the core was told).
    stalled: bool,
    /// When the loop was last poked to answer.
    poked: Option<Instant>,
}

/// The HA thread: owns the sockets, timers and tasks of the running node,
/// drives it, and watches the event loop.
struct HaThread {
    data_dir: PathBuf,
    shared: Arc<PiMutex<Shared>>,
    store: Arc<Store>,
    clock: SystemClock,
    /// For this thread's own adapter tasks.
    tx: Sender<Msg>,
    to_loop: Sender<Event>,
    plant: Option<Plant>,
    retry_at: Option<Instant>,
    alive: Arc<AtomicU64>,
    watch: Watch,
    /// What the loop was last told about ([`Event::HaChanged`]).
    told: Option<Seen>,
    /// A stop under way: whom to tell when done, and until when to wait
    /// for the peer to take the resource ([`HaThread::begin_stop`]).
    stopping: Option<(Sender<()>, Instant)>,
}

/// What woke the HA thread.
enum Wake {
    Msg(Msg),
    Timer,
    Closed,
}

impl HaThread {
    fn run(mut self, rx: Receiver<Msg>) {
        raise_priority();
        let ex = Rc::new(LocalExecutor::new());
        smol::block_on(ex.run(async {
            self.drive(&ex).await;
            loop {
                let now = self.clock.now();
                let wait = self.next_wait(now);
                let wake = smol::future::or(
                    async {
                        match rx.recv().await {
                            Ok(m) => Wake::Msg(m),
                            Err(_) => Wake::Closed,
                        }
                    },
                    async {
                        smol::Timer::after(wait).await;
                        Wake::Timer
                    },
                )
                .await;
                let now = self.clock.now();
                match wake {
                    Wake::Msg(Msg::Ha { generation, event }) => {
                        let mut s = lock(&self.shared);
                        if generation == s.generation
                            && let Some(i) = &mut s.running
                        {
                            i.node.handle_event(now, event);
                        }
                    }
                    Wake::Msg(Msg::Kick) => {}
                    Wake::Msg(Msg::Shutdown(done)) => {
                        let until = self.begin_stop(now);
                        self.stopping = Some((done, until));
                    }
                    Wake::Timer => self.on_timeout(now),
                    Wake::Closed => return,
                }
                if self.stopping.is_none() {
                    // The loop has ended once a stop begins: its silence
                    // then means nothing.
                    self.watch_loop(now);
                }
                self.drive(&ex).await;
                self.tell_loop();
                if let Some((done, until)) = &self.stopping
                    && self.stop_may_end(self.clock.now(), *until)
                {
                    let done = done.clone();
                    let old = lock(&self.shared).running.take();
                    if let Some(old) = old {
                        stop(old, self.plant.take()).await;
                    }
                    let _ = done.try_send(());
                    return;
                }
            }
        }));
    }

    /// Until the next node deadline, retry, look at the loop, or the end
    /// of a stop's wait.
    fn next_wait(&self, now: Instant) -> Duration {
        let stop = self.stopping.as_ref().map(|(_, t)| t.saturating_since(now));
        let s = lock(&self.shared);
        let node = s
            .running
            .as_ref()
            .and_then(|i| i.node.poll_timeout())
            .map(|t| t.saturating_since(now));
        let retry = self.retry_at.map(|t| t.saturating_since(now));
        // The watchdog looks at least four times per limit while a node runs.
        let look = s
            .running
            .as_ref()
            .map(|i| loop_limit(i.settings.config.keepalive_out_of_service) / 4);
        [node, retry, look, stop]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(Duration::from_secs(3600))
    }

    fn on_timeout(&mut self, now: Instant) {
        if self.retry_at.is_some_and(|t| now >= t) {
            self.retry_at = None;
            lock(&self.shared).restart = true;
        }
        let mut s = lock(&self.shared);
        if let Some(i) = &mut s.running
            && i.node.poll_timeout().is_some_and(|t| now >= t)
        {
            i.node.handle_timeout(now);
        }
    }

    /// The loop watchdog: tells the core when the event loop has not woken
    /// for [`loop_limit`], and when it answers again.
    fn watch_loop(&mut self, now: Instant) {
        let Some(oos) = lock(&self.shared)
            .running
            .as_ref()
            .map(|i| i.settings.config.keepalive_out_of_service)
        else {
            self.watch = Watch::default();
            return;
        };
        let limit = loop_limit(oos);
        let w = &mut self.watch;
        // This thread itself not run for a while (the whole process paused):
        // the loop's silence in that gap proves nothing.
        if w.last_look
            .is_some_and(|l| now.saturating_since(l) > limit / 2)
        {
            w.floor = Some(now);
        }
        w.last_look = Some(now);
        let alive = Instant::from_micros(self.alive.load(Ordering::Relaxed));
        let since = w.floor.map_or(alive, |f| f.max(alive));
        let silent = now.saturating_since(since);
        let stalled = silent > limit;
        if silent > limit / 2 && !stalled && w.poked.is_none_or(|p| p < since) {
            // An idle loop wakes every second for its tick; ask anyway.
            w.poked = Some(now);
            let _ = self.to_loop.try_send(Event::HaChanged);
        }
        if stalled != w.stalled {
            w.stalled = stalled;
            if stalled {
                log::error!(
                    "ha: the event loop has not answered for {} ms (limit {} ms): this node stops claiming the resource",
                    silent.as_millis(),
                    limit.as_millis()
                );
            } else {
                log::info!("ha: the event loop answers again");
            }
            if let Some(i) = &mut lock(&self.shared).running {
                i.node.handle_event(
                    now,
                    ha::Event::ServiceLoop {
                        answering: !stalled,
                    },
                );
            }
        }
    }

    /// Wakes the loop when what it acts on changed.
    fn tell_loop(&mut self) {
        let now = self.clock.now();
        let seen = seen(&lock(&self.shared), now);
        if self.told.as_ref() != Some(&seen) && self.to_loop.try_send(Event::HaChanged).is_ok() {
            self.told = Some(seen);
        }
    }

    /// Restarts the runtime if asked, feeds pending events and carries out
    /// every action the node has, in order.
    async fn drive(&mut self, ex: &Rc<LocalExecutor<'static>>) {
        let restart = std::mem::take(&mut lock(&self.shared).restart);
        if restart {
            self.restart_runtime(ex).await;
        }
        for _ in 0..MAX_ROUNDS {
            let now = self.clock.now();
            let (actions, generation) = {
                let mut s = lock(&self.shared);
                let s = &mut *s;
                let Some(i) = &mut s.running else {
                    s.queued.clear();
                    s.pending.clear();
                    return;
                };
                while let Some(e) = s.pending.pop_front() {
                    i.node.handle_event(now, e);
                }
                while let Some(a) = i.node.poll_action() {
                    s.queued.push_back(a);
                }
                if s.queued.is_empty() {
                    return;
                }
                let actions: Vec<Action> = s.queued.drain(..).collect();
                (actions, s.generation)
            };
            let Some(plant) = &self.plant else {
                return;
            };
            let ctx = Ctx {
                io: plant.io.clone(),
                hooks: plant.hooks.clone(),
                generation,
                tx: self.tx.clone(),
            };
            for action in actions {
                self.execute(ex, &ctx, action).await;
            }
        }
        log::warn!("ha: actions still pending after {MAX_ROUNDS} rounds");
    }

    async fn execute(&self, ex: &Rc<LocalExecutor<'static>>, ctx: &Ctx, action: Action) {
        let io = &ctx.io;
        match action {
            Action::Send { path, bytes } => {
                let sock = match path {
                    HaPath::Sync => &io.sync,
                    HaPath::Lan => &io.lan,
                };
                // Errors are logged by the adapter; a lost datagram is normal.
                let _ = sock.send(&bytes).await;
            }
            Action::AddAddress {
                resource,
                valid_for,
            } => {
                log::info!(
                    "ha: adding {}/{} on {} (valid {} ms)",
                    resource.addr,
                    resource.prefix,
                    resource.interface,
                    valid_for.as_millis()
                );
                // Awaited: the gratuitous ARPs that follow announce it.
                io.addresses.run(AddressOp::Add(valid_for), resource).await;
            }
            // Not awaited: a refresh need not hold this thread while the
            // kernel's rtnl lock is busy; the worker keeps the order.
            Action::RefreshAddress {
                resource,
                valid_for,
            } => io.addresses.queue(AddressOp::Refresh(valid_for), resource),
            Action::RemoveAddress { resource } => {
                log::info!("ha: removing {} from {}", resource.addr, resource.interface);
                // Awaited: break before make, the heartbeat that says
                // "released" goes out after the address is gone.
                io.addresses.run(AddressOp::Remove, resource).await;
            }
            Action::SendGarp { resource } => {
                if let Err(e) = io.garp.send_garp(resource.addr).await {
                    log::warn!("ha: gratuitous ARP for {}: {e}", resource.addr);
                }
            }
            Action::ArpProbe { addr, until, .. } => {
                let tx = ctx.tx.clone();
                let generation = ctx.generation;
                let (index, mac, peer_ip) = (io.lan_index, io.lan_mac, io.peer_lan_ip);
                // Opened here: created unbound and bound once, it waits for
                // no RCU grace period (ArpSocket::open). On a blocking
                // thread (ordinary priority) the open waited for a core
                // behind the box's load, and the early probe's answer came
                // after the out-of-service time (issue 18, item 4).
                let sock = ArpSocket::open(index, mac);
                let clock = self.clock.clone();
                ex.spawn(async move {
                    // Listen until the core's `until`, at least PROBE_MIN_LISTEN.
                    let wait = until.saturating_since(clock.now()).max(PROBE_MIN_LISTEN);
                    let probed = match &sock {
                        Ok(sock) => sock.probe_all(addr, wait, PROBE_LINGER).await,
                        Err(e) => {
                            log::warn!("ha: ARP socket for the probe of {addr}: {e}");
                            Ok(Vec::new())
                        }
                    };
                    let owners = probed.unwrap_or_else(|e| {
                        log::warn!("ha: ARP probe for {addr}: {e}");
                        Vec::new()
                    });
                    // Someone answers: tell the core which MAC the peer's LAN
                    // address has now, so that it can tell the dead peer's
                    // stale address from a third holder.
                    if let (false, Ok(sock)) = (owners.is_empty(), &sock) {
                        match sock.probe(peer_ip, PROBE_WAIT).await {
                            Ok(Some(peer_mac)) => {
                                let _ = tx
                                    .send(Msg::Ha {
                                        generation,
                                        event: ha::Event::PeerLanMac { mac: peer_mac },
                                    })
                                    .await;
                            }
                            Ok(None) => {}
                            Err(e) => log::warn!("ha: ARP probe for {peer_ip}: {e}"),
                        }
                    }
                    if let Ok(sock) = sock {
                        smol::unblock(move || drop(sock)).detach();
                    }
                    let _ = tx
                        .send(Msg::Ha {
                            generation,
                            event: ha::Event::ArpProbeAnswers { addr, owners },
                        })
                        .await;
                })
                .detach();
            }
            Action::RunHook { hook, reason } => {
                if ctx.hooks.try_send((hook, reason)).is_err() {
                    log::error!("ha: hook queue full; {hook:?} hook for {reason} not run");
                }
            }
            Action::StoreClusterKey(key) => {
                match write_private(&self.data_dir, "cluster.key", &hex(&key.0)) {
                    Ok(()) => log::info!("ha: cluster key stored"),
                    Err(e) => log::error!("ha: cannot store the cluster key: {e}"),
                }
            }
            Action::ForgetClusterKey => {
                let _ = std::fs::remove_file(self.data_dir.join("cluster.key"));
                log::info!("ha: cluster key forgotten");
            }
            // The store is written by the loop alone.
            // Sent from a task of its own: awaited here, a full event queue
            // (a busy loop) would hold this thread's heartbeats.
            Action::StoreRoleDisabled => {
                let to_loop = self.to_loop.clone();
                ex.spawn(async move {
                    if to_loop.send(Event::HaRoleDisabled).await.is_err() {
                        log::error!("ha: cannot store role disabled: the event loop is gone");
                    }
                })
                .detach();
            }
            Action::RequestEntropy { len } => match entropy(len) {
                Ok(bytes) => lock(&self.shared)
                    .pending
                    .push_back(ha::Event::Entropy(bytes)),
                Err(e) => log::error!("ha: /dev/urandom: {e}"),
            },
            Action::Report { level, message } => {
                match level {
                    Level::Info => log::info!("ha: {message}"),
                    Level::Warn => log::warn!("ha: {message}"),
                    Level::Error => log::error!("ha: {message}"),
                }
                if level != Level::Info {
                    lock(&self.shared).last_warning = Some(message);
                }
            }
        }
    }

    async fn restart_runtime(&mut self, ex: &Rc<LocalExecutor<'static>>) {
        let old = {
            let mut s = lock(&self.shared);
            s.generation += 1;
            s.failed = None;
            s.queued.clear();
            s.pending.clear();
            s.running.take()
        };
        self.retry_at = None;
        self.watch = Watch::default();
        if let Some(old) = old {
            stop(old, self.plant.take()).await;
        }
        let settings = match self.store.get(Kind::Ha, HA_ID) {
            Ok(Some(Object::Ha(h))) => Some(h),
            Ok(_) => None,
            Err(e) => {
                log::error!("ha: cannot read the configuration: {e}");
                None
            }
        };
        lock(&self.shared).settings = settings.clone();
        let Some(settings) = settings.filter(|s| s.config.role != Role::Disabled) else {
            log::info!("ha: disabled");
            return;
        };
        let generation = lock(&self.shared).generation;
        match start_node(self, ex, generation, settings).await {
            Ok((running, plant)) => {
                log::info!(
                    "ha: started as {} (serial {}), state {}",
                    running.settings.role_name(),
                    running.serial,
                    state_name(running.node.state())
                );
                lock(&self.shared).running = Some(running);
                self.plant = Some(plant);
            }
            Err(why) => {
                log::error!("ha: not started: {why}; retrying in {} s", RETRY.as_secs());
                lock(&self.shared).failed = Some(why);
                self.retry_at = Some(self.clock.now() + RETRY);
            }
        }
    }

    /// On daemon stop: the core is told ([`ha::Event::Stopping`]), so a
    /// holder whose peer is heard releases and hands the resource over.
    /// Returns until when the thread waits for the peer to take it: the
    /// out-of-service time (after which the peer would take it anyway), at
    /// most [`STOP_WAIT`].
    /// Waiting (heartbeats sent and read meanwhile) instead of ending at
    /// once lets a peer that is not eligible yet (its first ping round
    /// still out, just restarted) take over the moment it is, and a lost
    /// handover heartbeat be repeated.
    fn begin_stop(&mut self, now: Instant) -> Instant {
        let mut s = lock(&self.shared);
        let Some(i) = &mut s.running else {
            return now;
        };
        let st = i.node.status(now);
        // `peer_ping_seen` is known exactly while the peer is heard.
        let hand_over = st.holds && st.peer_ping_seen.is_some();
        i.node.handle_event(now, ha::Event::Stopping);
        if !hand_over {
            return now;
        }
        log::info!("ha: stopping: handing the resource over to the peer");
        now + i.settings.config.keepalive_out_of_service.min(STOP_WAIT)
    }

    /// Whether a stop may end: the peer holds the resource, is no longer
    /// heard, or the wait is over.
    fn stop_may_end(&self, now: Instant, until: Instant) -> bool {
        if now >= until {
            return true;
        }
        let s = lock(&self.shared);
        let Some(i) = &s.running else {
            return true;
        };
        let st = i.node.status(now);
        let done = st.holder == ha::Holder::Remote || st.peer_ping_seen.is_none();
        if done && st.holder == ha::Holder::Remote {
            log::info!("ha: stopping: the peer holds the resource");
        }
        done
    }
}

/// Puts the HA thread ahead of busy threads: a heartbeat is a few
/// microseconds of work, but on a loaded two-core box a waking thread of
/// ordinary priority waited up to 400 ms for a core while the loop
/// generated 10,000 devices' files (debug build, load average 13). Real-time
/// round-robin at the lowest real-time priority, as corosync runs by
/// default and keepalived offers (`vrrp_rt_priority`); the kernel's
/// real-time throttling still leaves 5 % to others. Children (hooks) start
/// with the ordinary policy (`SCHED_RESET_ON_FORK`). Without the privilege:
/// nice -10, else as is (logged).
///
/// The same for the reactor thread ("async-io"): timers and sockets of
/// every thread are polled by whichever thread holds the one reactor, and
/// the HA thread waits for its wake-up. Its work is an `epoll_wait` and
/// wake-ups. Only these two threads ever hold the reactor: the event loop
/// parks without it (`daemon::run`, `future::block_on`), since a loop
/// thread of ordinary priority holding it made every heartbeat wait for
/// that thread's turn on a busy box.
fn raise_priority() {
    // The reactor thread exists once a `block_on` has run.
    smol::block_on(async {});
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for t in tasks.flatten() {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            let tid = t.file_name().to_string_lossy().parse::<libc::c_long>().ok();
            if let (Some(tid), "async-io") = (tid, comm.trim())
                && let Err(e) = real_time(tid)
            {
                log::warn!("ha: reactor thread at ordinary priority (real-time refused: {e})");
            }
        }
    }
    let Err(why) = real_time(0) else {
        log::info!("ha: heartbeat thread at real-time priority (SCHED_RR 1)");
        return;
    };
    match rustix::process::setpriority_process(None, -10) {
        Ok(()) => log::info!("ha: heartbeat thread at nice -10 (real-time refused: {why})"),
        Err(e) => log::warn!(
            "ha: heartbeat thread at ordinary priority (real-time refused: {why}; nice -10: {e})"
        ),
    }
}

/// `SCHED_RR` 1 with `SCHED_RESET_ON_FORK` for thread `tid` (0: this one).
fn real_time(tid: libc::c_long) -> std::io::Result<()> {
    const SCHED_RR: libc::c_long = 2;
    const SCHED_RESET_ON_FORK: libc::c_long = 0x4000_0000;
    // The kernel's `struct sched_param` is one int, the priority (musl's
    // libc type carries more fields, for its own SCHED_SPORADIC).
    let param: libc::c_int = 1;
    // The raw system call: musl's wrapper always fails (ENOSYS).
    // SAFETY: the kernel reads one int (`struct sched_param`) that outlives
    // the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_sched_setscheduler,
            tid,
            SCHED_RR | SCHED_RESET_ON_FORK,
            std::ptr::addr_of!(param),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

struct Ctx {
    io: Rc<Io>,
    hooks: Sender<(Hook, ha::Reason)>,
    generation: u64,
    tx: Sender<Msg>,
}

/// The loop stores `role=disabled`, asked by the core
/// ([`Action::StoreRoleDisabled`] via [`Event::HaRoleDisabled`]).
pub fn store_role_disabled(daemon: &Daemon) {
    let prev = match daemon.store.get(Kind::Ha, HA_ID) {
        Ok(Some(Object::Ha(h))) => h,
        Ok(_) => return,
        Err(e) => {
            log::error!("ha: cannot read the configuration: {e}");
            return;
        }
    };
    if prev.config.role == Role::Disabled {
        return;
    }
    let mut next = prev;
    next.config.role = Role::Disabled;
    let origin = Origin {
        user: "kpbxd-ha".to_string(),
        source: Source::Console,
    };
    match daemon.store.commit(
        &origin,
        daemon.clock.wall(),
        &[Change::put(Object::Ha(next.clone()))],
    ) {
        Ok(r) => {
            log::info!("ha: role disabled stored (txid {:?})", r.txid);
            daemon.ha.borrow_mut().role_disabled_stored(&next);
        }
        Err(e) => log::error!("ha: cannot store role disabled: {e}"),
    }
}

/// Releases what the old node held, then cancels its tasks (on drop).
async fn stop(old: Running, plant: Option<Plant>) {
    let Running {
        mut node, settings, ..
    } = old;
    let Some(Plant {
        io,
        hooks,
        hook_task,
        _tasks,
    }) = plant
    else {
        return;
    };
    if node.holds() {
        for r in &settings.config.resources {
            log::info!("ha: runtime stop: removing {}", r.addr);
            // Through the worker: after any refresh still queued there.
            io.addresses.run(AddressOp::Remove, r.clone()).await;
        }
    }
    while node.poll_action().is_some() {}
    drop(_tasks);
    // Let the hooks already queued (a release on handover) finish, bounded.
    drop(hooks);
    let finished = smol::future::or(
        async {
            hook_task.await;
            true
        },
        async {
            smol::Timer::after(HOOK_DRAIN).await;
            false
        },
    )
    .await;
    if !finished {
        log::warn!(
            "ha: hooks still running {} s after stop; abandoned",
            HOOK_DRAIN.as_secs()
        );
    }
}

/// Opens the sockets and watches of a node and builds it.
async fn start_node(
    t: &HaThread,
    ex: &Rc<LocalExecutor<'static>>,
    generation: u64,
    settings: HaSettings,
) -> Result<(Running, Plant), String> {
    let data_dir = &t.data_dir;
    let tx = t.tx.clone();
    let c = settings.config.clone();
    let source = settings.serial_source.path().to_string();
    let serial = read_serial(Path::new(&source))
        .map_err(|e| format!("cannot read the serial number from {source}: {e}"))?;
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let incarnation = bump_incarnation(data_dir).map_err(|e| {
        format!(
            "cannot update the boot counter in {}: {e}",
            data_dir.display()
        )
    })?;
    let cluster_key = read_key(data_dir);

    let netlink = Netlink::connect().map_err(|e| e.to_string())?;
    let mut tasks = Vec::new();
    let lan_link = netlink
        .link(&c.lan.interface)
        .await
        .map_err(|e| e.to_string())?;
    let sync_link = netlink
        .link(&c.sync.interface)
        .await
        .map_err(|e| e.to_string())?;
    let mac = lan_link
        .mac
        .ok_or_else(|| format!("{} has no Ethernet address", c.lan.interface))?;
    // Opened here, so that a missing CAP_NET_RAW is reported at start.
    let garp = ArpSocket::open_sender(lan_link.index, mac)
        .map_err(|e| format!("ARP socket on {}: {e}", c.lan.interface))?;
    let bind = |p: &ha::PathConfig| {
        HeartbeatSocket::bind(PathSocketConfig {
            interface: p.interface.clone(),
            local: SocketAddrV4::new(p.local_ip, HEARTBEAT_PORT),
            peer: SocketAddrV4::new(p.remote_ip, HEARTBEAT_PORT),
            max_age: c.keepalive_warning,
        })
        .map_err(|e| {
            format!(
                "heartbeat socket {}:{HEARTBEAT_PORT} on {}: {e}",
                p.local_ip, p.interface
            )
        })
    };
    let sync = bind(&c.sync)?;
    let lan = bind(&c.lan)?;
    let addr_watch = AddressWatch::subscribe().map_err(|e| e.to_string())?;
    let link_watch = LinkWatch::subscribe().map_err(|e| e.to_string())?;
    let present = netlink
        .ipv4_addresses(lan_link.index)
        .await
        .map_err(|e| e.to_string())?;

    let identity = Identity {
        serial: serial.clone(),
        incarnation,
        cluster_key,
    };
    let node = Node::new(c.clone(), identity, t.clock.now()).map_err(|e| e.to_string())?;
    let io = Rc::new(Io {
        addresses: AddressWorker::start(netlink).map_err(|e| format!("address thread: {e}"))?,
        sync,
        lan,
        garp,
        lan_index: lan_link.index,
        lan_mac: mac,
        peer_lan_ip: c.lan.remote_ip,
    });
    let send = move |tx: &Sender<Msg>, event: ha::Event| {
        let tx = tx.clone();
        async move { tx.send(Msg::Ha { generation, event }).await.is_ok() }
    };

    for path in HaPath::ALL {
        let io = io.clone();
        let tx = tx.clone();
        tasks.push(ex.spawn(async move {
            let sock = match path {
                HaPath::Sync => &io.sync,
                HaPath::Lan => &io.lan,
            };
            loop {
                match sock.recv().await {
                    Ok((from, bytes)) => {
                        if !send(&tx, ha::Event::Datagram { path, from, bytes }).await {
                            return;
                        }
                    }
                    Err(e) => {
                        log::error!("ha: heartbeat socket on {:?} path failed: {e}", path);
                        return;
                    }
                }
            }
        }));
    }

    let resources: Vec<Ipv4Addr> = c.resources.iter().map(|r| r.addr).collect();
    let lan_index = lan_link.index;
    tasks.push(ex.spawn({
        let tx = tx.clone();
        let resources = resources.clone();
        let mut watch = addr_watch;
        async move {
            while let Some(change) = watch.next().await {
                let a = *change.address();
                if a.ifindex != lan_index || !resources.contains(&a.addr) {
                    continue;
                }
                let event = match change {
                    AddressChange::Present(_) => ha::Event::AddressPresent { addr: a.addr },
                    AddressChange::Removed(_) => ha::Event::AddressRemoved { addr: a.addr },
                };
                if !send(&tx, event).await {
                    return;
                }
            }
            log::error!("ha: address watch ended");
        }
    }));
    tasks.push(ex.spawn({
        let tx = tx.clone();
        let (lan_name, sync_name) = (c.lan.interface.clone(), c.sync.interface.clone());
        let mut watch = link_watch;
        async move {
            let mut last = [None, None];
            while let Some(link) = watch.next().await {
                let (slot, path) = if link.name == lan_name {
                    (0, HaPath::Lan)
                } else if link.name == sync_name {
                    (1, HaPath::Sync)
                } else {
                    continue;
                };
                if last[slot] == Some(link.lower_up) {
                    continue;
                }
                last[slot] = Some(link.lower_up);
                if !send(
                    &tx,
                    ha::Event::LinkChanged {
                        path,
                        up: link.lower_up,
                    },
                )
                .await
                {
                    return;
                }
            }
            log::error!("ha: link watch ended");
        }
    }));
    if !c.ping_group.is_empty() {
        let mut pinger = Pinger::open().map_err(|e| format!("ICMP socket: {e}"))?;
        let (ptx, prx) = smol::channel::bounded(64);
        let targets = c.ping_group.clone();
        let (interval, timeout) = (c.ping_interval, c.ping_interval.min(Duration::from_secs(1)));
        tasks.push(ex.spawn(async move {
            pinger.run(&targets, interval, timeout, &ptx).await;
        }));
        tasks.push(ex.spawn({
            let tx = tx.clone();
            async move {
                while let Ok(r) = prx.recv().await {
                    let event = ha::Event::PingResult {
                        target: r.target,
                        reachable: r.reachable,
                    };
                    if !send(&tx, event).await {
                        return;
                    }
                }
            }
        }));
    }
    let (hooks, hooks_rx) = smol::channel::bounded::<(Hook, ha::Reason)>(64);
    let hook_dir = settings.hook_dir.clone();
    let hook_task = ex.spawn(async move {
        while let Ok((hook, reason)) = hooks_rx.recv().await {
            let Some(dir) = &hook_dir else {
                continue;
            };
            let sub = match hook {
                Hook::Acquire => "acquire.d",
                Hook::Release => "release.d",
            };
            let dir = Path::new(dir).join(sub);
            crate::net::hooks::run_dir(&dir, &reason.to_string(), HOOK_LIMIT).await;
        }
    });

    // What is true already: carrier and a resource address left behind.
    let mut rt = lock(&t.shared);
    for (link, path) in [(&lan_link, HaPath::Lan), (&sync_link, HaPath::Sync)] {
        if !link.lower_up {
            rt.pending
                .push_back(ha::Event::LinkChanged { path, up: false });
        }
    }
    for a in present.iter().filter(|a| resources.contains(&a.addr)) {
        rt.pending
            .push_back(ha::Event::AddressPresent { addr: a.addr });
    }
    Ok((
        Running {
            node,
            serial,
            settings,
        },
        Plant {
            io,
            hooks,
            hook_task,
            _tasks: tasks,
        },
    ))
}

// ---------------------------------------------------------------- files

fn read_serial(path: &Path) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(256)
        .read_to_string(&mut text)?;
    let serial = text
        .lines()
        .next()
        .unwrap_or("")
        .trim_matches(|c: char| c.is_whitespace() || c == '\0')
        .to_string();
    if serial.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "empty",
        ));
    }
    if serial.len() > ha::config::MAX_SERIAL_LEN || serial.chars().any(char::is_control) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a serial number",
        ));
    }
    Ok(serial)
}

fn bump_incarnation(dir: &Path) -> std::io::Result<u64> {
    let old = std::fs::read_to_string(dir.join("incarnation"))
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let next = old + 1;
    write_private(dir, "incarnation", &format!("{next}\n"))?;
    Ok(next)
}

fn read_key(dir: &Path) -> Option<ha::auth::Key> {
    let text = std::fs::read_to_string(dir.join("cluster.key")).ok()?;
    let text = text.trim();
    if text.len() != 2 * ha::wire::KEY_LEN {
        log::warn!("ha: ignoring a malformed cluster key file");
        return None;
    }
    let mut key = [0u8; ha::wire::KEY_LEN];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(ha::auth::Key(key))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `dir/name` (0600) through a temporary file, fsync and rename.
fn write_private(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))
}

fn entropy(len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_counter_grows_and_key_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(bump_incarnation(dir.path()).unwrap(), 1);
        assert_eq!(bump_incarnation(dir.path()).unwrap(), 2);
        assert!(read_key(dir.path()).is_none());
        write_private(dir.path(), "cluster.key", &hex(&[0xab; 32])).unwrap();
        assert_eq!(read_key(dir.path()).unwrap().0, [0xab; 32]);
    }

    #[test]
    fn serial_is_the_first_trimmed_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        std::fs::write(&p, "KP-0001\0\nmore\n").unwrap();
        assert_eq!(read_serial(&p).unwrap(), "KP-0001");
        std::fs::write(&p, "\n").unwrap();
        assert!(read_serial(&p).is_err());
    }
}
