//! The HA runtime: owns the [`ha::Node`], feeds it what the `net` adapters
//! see and carries out its actions through them.
//!
//! ```text
//!  heartbeat sockets (sync, lan) ─┐
//!  netlink address + link watch  ─┤ tasks ── Event::Ha { generation, event } ──> event loop
//!  pinger, ARP probes            ─┘                                                 │
//!  kpbx ha ... (handlers) ──────────────── Admin / ConfigChanged ─────────────────> │
//!  timer at node.poll_timeout() ─────────────────────────────────────────────────> │
//!                                                     node.poll_action() <───────────┘
//!      Send ─> heartbeat socket   Add/Refresh/RemoveAddress ─> netlink (lifetime)
//!      SendGarp/ArpProbe ─> AF_PACKET   RunHook ─> hook worker (ordered, time-limited)
//!      StoreClusterKey/ForgetClusterKey ─> data_dir/ha/cluster.key
//!      StoreRoleDisabled ─> Store::commit (audited, user "kpbxd-ha")
//!      RequestEntropy ─> /dev/urandom ─> Event::Entropy
//! ```
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
use std::time::Duration;

use smol::LocalExecutor;
use smol::channel::Sender;

use super::{Daemon, Event};
use crate::clock::{Clock, Instant};
use crate::control::{HaCountersView, HaEventView, HaNodeView, HaPathView, HaStatusView};
use crate::ha::{self, Action, AdminCommand, Hook, Identity, Level, Node, Path as HaPath, Role};
use crate::model::{Change, HA_ID, HaSettings, Kind, Object, Origin, Source};
use crate::net::arp::ArpSocket;
use crate::net::heartbeat::{HeartbeatSocket, PathSocketConfig};
use crate::net::netlink::{AddressChange, AddressWatch, LinkWatch, Netlink};
use crate::net::ping::Pinger;

/// UDP port of the heartbeat and pairing frames on both paths.
pub const HEARTBEAT_PORT: u16 = 7410;
/// How long the adapter waits for an answer to an ARP probe. On a LAN a
/// reply takes milliseconds; this wait is part of every takeover from a
/// silent peer (a powered-off peer answers nothing: takeover = out-of-service
/// time + this), so it is short. Two waits in a row (the resource, then the
/// peer's LAN address) stay below the core's 500 ms probe timeout.
const PROBE_WAIT: Duration = Duration::from_millis(150);
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

/// Everything the loop needs to talk to the network for one node.
struct Io {
    netlink: Netlink,
    sync: HeartbeatSocket,
    lan: HeartbeatSocket,
    /// GARPs and probes open an `ArpSocket` each: a long-lived one would
    /// queue every ARP frame on the LAN unread, and a probe on it would
    /// read stale claims (two probes would also steal each other's answers).
    lan_index: u32,
    lan_mac: [u8; 6],
    /// The peer's LAN address: when another MAC answers a probe for the
    /// resource, the adapter asks who answers for this one too.
    peer_lan_ip: Ipv4Addr,
}

struct Instance {
    node: Node,
    serial: String,
    settings: HaSettings,
    io: Rc<Io>,
    hooks: Sender<(Hook, ha::Reason)>,
    /// Runs the queued hooks in order; ends when `hooks` is dropped.
    hook_task: smol::Task<()>,
    /// Cancelled on drop.
    _tasks: Vec<smol::Task<()>>,
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

/// The HA part of the daemon's state (in `Daemon::ha`).
pub struct HaRuntime {
    data_dir: PathBuf,
    tx: Sender<Event>,
    generation: u64,
    instance: Option<Instance>,
    /// Stored settings, as last read.
    settings: Option<HaSettings>,
    /// Why the runtime is not running although enabled.
    failed: Option<String>,
    retry_at: Option<Instant>,
    restart: bool,
    /// Actions drained from the node, not yet carried out.
    queued: VecDeque<Action>,
    /// Events produced here (entropy, start-up dumps), fed before the next round.
    pending: VecDeque<ha::Event>,
    /// `kpbx ha switch` requests waiting for their outcome.
    switches: Vec<Switch>,
    /// The core's last warning, for a switch that did not complete.
    last_warning: Option<String>,
}

/// A switch in progress: it succeeds when the resource is where it was
/// asked to go, and fails at `deadline` (or when HA stops).
struct Switch {
    deadline: Instant,
    /// Asked on the active node (the peer is to take over).
    from_active: bool,
    reply: Sender<crate::control::Reply>,
}

impl HaRuntime {
    pub fn new(data_dir: &Path, tx: Sender<Event>) -> HaRuntime {
        HaRuntime {
            data_dir: data_dir.join("ha"),
            tx,
            generation: 0,
            instance: None,
            settings: None,
            failed: None,
            retry_at: None,
            restart: true,
            queued: VecDeque::new(),
            pending: VecDeque::new(),
            switches: Vec::new(),
            last_warning: None,
        }
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
        let limit = self.instance.as_ref().map_or(Duration::ZERO, |i| {
            i.settings.config.keepalive_out_of_service * 2 + Duration::from_secs(1)
        });
        self.last_warning = None;
        self.switches.push(Switch {
            deadline: now + limit,
            from_active,
            reply,
        });
    }

    /// Whether this node holds the resource.
    pub fn holds(&self) -> bool {
        self.instance.as_ref().is_some_and(|i| i.node.holds())
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
        let running = self.instance.is_some();
        let warning = self.last_warning.clone();
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

    /// Ask for a restart from the stored configuration at the next drive.
    pub fn request_restart(&mut self) {
        self.restart = true;
    }

    /// Applies a saved configuration to the running node without a restart
    /// when only what the core can take live changed (times and the
    /// default active node); returns `false` when a restart is needed.
    pub fn reconfigure(&mut self, now: Instant, next: &HaSettings) -> bool {
        let Some(i) = &mut self.instance else {
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
        i.settings = next.clone();
        self.settings = Some(next.clone());
        log::info!("ha: configuration applied without a restart");
        true
    }

    /// The cluster key belongs to one pairing: forget it when the pairing
    /// secret or the role changes.
    pub fn forget_key(&self) {
        let _ = std::fs::remove_file(self.data_dir.join("cluster.key"));
    }

    /// How long the loop may wait before it must call [`HaRuntime::on_timeout`].
    pub fn next_wait(&self, now: Instant) -> Option<Duration> {
        let node = self
            .instance
            .as_ref()
            .and_then(|i| i.node.poll_timeout())
            .map(|t| t.saturating_since(now));
        let retry = self.retry_at.map(|t| t.saturating_since(now));
        let switch = self
            .switches
            .iter()
            .map(|w| w.deadline.saturating_since(now))
            .min();
        [node, retry, switch].into_iter().flatten().min()
    }

    pub fn on_timeout(&mut self, now: Instant) {
        if self.retry_at.is_some_and(|t| now >= t) {
            self.retry_at = None;
            self.restart = true;
        }
        if let Some(i) = &mut self.instance
            && i.node.poll_timeout().is_some_and(|t| now >= t)
        {
            i.node.handle_timeout(now);
        }
    }

    pub fn on_event(&mut self, now: Instant, generation: u64, event: ha::Event) {
        if generation != self.generation {
            return;
        }
        if let Some(i) = &mut self.instance {
            i.node.handle_event(now, event);
        }
    }

    /// An operator command. Refusals the core reports are returned as errors.
    pub fn admin(&mut self, now: Instant, cmd: AdminCommand) -> Result<(), String> {
        let Some(i) = &mut self.instance else {
            return Err(match &self.failed {
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
            self.queued.push_back(a);
        }
        refused.map_or(Ok(()), Err)
    }

    /// What data sync needs to know of the pair; `None` while HA is not
    /// running or the node is not paired.
    pub fn sync_view(&self, now: Instant) -> Option<SyncView> {
        let i = self.instance.as_ref()?;
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
        let settings = self.settings.clone().unwrap_or_default();
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
        if let Some(why) = &self.failed {
            v.state = "failed".to_string();
            v.detail = why.clone();
        }
        let Some(i) = &self.instance else {
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
        let Some(i) = &self.instance else {
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

// ---------------------------------------------------------------- driving

/// Restarts the runtime if asked, feeds pending events and carries out
/// every action the node has, in order. Called by the loop after each event.
pub async fn drive(daemon: &Daemon, ex: &Rc<LocalExecutor<'static>>) {
    let restart = std::mem::take(&mut daemon.ha.borrow_mut().restart);
    if restart {
        restart_runtime(daemon, ex).await;
    }
    for _ in 0..MAX_ROUNDS {
        let now = daemon.clock.now();
        let (actions, ctx) = {
            let mut rt = daemon.ha.borrow_mut();
            let rt = &mut *rt;
            let Some(i) = &mut rt.instance else {
                rt.queued.clear();
                rt.pending.clear();
                return;
            };
            while let Some(e) = rt.pending.pop_front() {
                i.node.handle_event(now, e);
            }
            while let Some(a) = i.node.poll_action() {
                rt.queued.push_back(a);
            }
            if rt.queued.is_empty() {
                return;
            }
            let actions: Vec<Action> = rt.queued.drain(..).collect();
            let ctx = Ctx {
                io: i.io.clone(),
                hooks: i.hooks.clone(),
                generation: rt.generation,
                tx: rt.tx.clone(),
            };
            (actions, ctx)
        };
        for action in actions {
            execute(daemon, ex, &ctx, action).await;
        }
    }
    log::warn!("ha: actions still pending after {MAX_ROUNDS} rounds");
}

struct Ctx {
    io: Rc<Io>,
    hooks: Sender<(Hook, ha::Reason)>,
    generation: u64,
    tx: Sender<Event>,
}

async fn execute(daemon: &Daemon, ex: &Rc<LocalExecutor<'static>>, ctx: &Ctx, action: Action) {
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
            if let Err(e) = io
                .netlink
                .add_address(
                    &resource.interface,
                    resource.addr,
                    resource.prefix,
                    valid_for,
                )
                .await
            {
                log::error!("ha: add {}: {e}", resource.addr);
            }
        }
        Action::RefreshAddress {
            resource,
            valid_for,
        } => {
            if let Err(e) = io
                .netlink
                .refresh_address(
                    &resource.interface,
                    resource.addr,
                    resource.prefix,
                    valid_for,
                )
                .await
            {
                log::error!("ha: refresh {}: {e}", resource.addr);
            }
        }
        Action::RemoveAddress { resource } => {
            log::info!("ha: removing {} from {}", resource.addr, resource.interface);
            if let Err(e) = io
                .netlink
                .remove_address(&resource.interface, resource.addr, resource.prefix)
                .await
            {
                log::error!("ha: remove {}: {e}", resource.addr);
            }
        }
        Action::SendGarp { resource } => {
            let sent = match ArpSocket::open(io.lan_index, io.lan_mac) {
                Ok(sock) => sock.send_garp(resource.addr).await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                log::warn!("ha: gratuitous ARP for {}: {e}", resource.addr);
            }
        }
        Action::ArpProbe { addr, .. } => {
            let tx = ctx.tx.clone();
            let generation = ctx.generation;
            let (index, mac, peer_ip) = (io.lan_index, io.lan_mac, io.peer_lan_ip);
            ex.spawn(async move {
                let sock = ArpSocket::open(index, mac);
                let probed = match &sock {
                    Ok(sock) => sock.probe_all(addr, PROBE_WAIT, PROBE_LINGER).await,
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
                                .send(Event::Ha {
                                    generation,
                                    event: ha::Event::PeerLanMac { mac: peer_mac },
                                })
                                .await;
                        }
                        Ok(None) => {}
                        Err(e) => log::warn!("ha: ARP probe for {peer_ip}: {e}"),
                    }
                }
                let _ = tx
                    .send(Event::Ha {
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
            let dir = daemon.ha.borrow().data_dir.clone();
            match write_private(&dir, "cluster.key", &hex(&key.0)) {
                Ok(()) => log::info!("ha: cluster key stored"),
                Err(e) => log::error!("ha: cannot store the cluster key: {e}"),
            }
        }
        Action::ForgetClusterKey => {
            daemon.ha.borrow().forget_key();
            log::info!("ha: cluster key forgotten");
        }
        Action::StoreRoleDisabled => store_role_disabled(daemon),
        Action::RequestEntropy { len } => match entropy(len) {
            Ok(bytes) => daemon
                .ha
                .borrow_mut()
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
                daemon.ha.borrow_mut().last_warning = Some(message);
            }
        }
    }
}

fn store_role_disabled(daemon: &Daemon) {
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
            let mut rt = daemon.ha.borrow_mut();
            rt.settings = Some(next.clone());
            if let Some(i) = &mut rt.instance {
                i.settings = next;
            }
        }
        Err(e) => log::error!("ha: cannot store role disabled: {e}"),
    }
}

async fn restart_runtime(daemon: &Daemon, ex: &Rc<LocalExecutor<'static>>) {
    let old = {
        let mut rt = daemon.ha.borrow_mut();
        rt.generation += 1;
        rt.failed = None;
        rt.retry_at = None;
        rt.queued.clear();
        rt.pending.clear();
        rt.instance.take()
    };
    if let Some(old) = old {
        stop(old).await;
    }
    let settings = match daemon.store.get(Kind::Ha, HA_ID) {
        Ok(Some(Object::Ha(h))) => Some(h),
        Ok(_) => None,
        Err(e) => {
            log::error!("ha: cannot read the configuration: {e}");
            None
        }
    };
    daemon.ha.borrow_mut().settings = settings.clone();
    let Some(settings) = settings.filter(|s| s.config.role != Role::Disabled) else {
        log::info!("ha: disabled");
        return;
    };
    let (data_dir, tx, generation) = {
        let rt = daemon.ha.borrow();
        (rt.data_dir.clone(), rt.tx.clone(), rt.generation)
    };
    match start(daemon, ex, &data_dir, tx, generation, settings).await {
        Ok(instance) => {
            log::info!(
                "ha: started as {} (serial {}), state {}",
                instance.settings.role_name(),
                instance.serial,
                state_name(instance.node.state())
            );
            daemon.ha.borrow_mut().instance = Some(instance);
        }
        Err(why) => {
            log::error!("ha: not started: {why}; retrying in {} s", RETRY.as_secs());
            let mut rt = daemon.ha.borrow_mut();
            rt.failed = Some(why);
            rt.retry_at = Some(daemon.clock.now() + RETRY);
        }
    }
}

/// On daemon stop: an active node whose peer is heard hands the resource
/// over (the core's switch: release, then heartbeats with the handover
/// flag), so the peer takes it at once instead of after its out-of-service
/// time; whatever is still held is removed.
pub async fn shutdown(daemon: &Daemon, ex: &Rc<LocalExecutor<'static>>) {
    let handed_over = {
        let now = daemon.clock.now();
        let mut rt = daemon.ha.borrow_mut();
        match &mut rt.instance {
            Some(i) if i.node.holds() => {
                let s = i.node.status(now);
                // `peer_ping_seen` is known exactly while the peer is heard.
                let heard = s.state == ha::State::Active && s.peer_ping_seen.is_some();
                if heard {
                    i.node
                        .handle_event(now, ha::Event::Admin(AdminCommand::Switch));
                }
                heard
            }
            _ => false,
        }
    };
    if handed_over {
        log::info!("ha: stopping: handing the resource over to the peer");
        drive(daemon, ex).await;
    }
    let old = daemon.ha.borrow_mut().instance.take();
    if let Some(old) = old {
        stop(old).await;
    }
}

/// Releases what the old node held, then cancels its tasks (on drop).
async fn stop(old: Instance) {
    let Instance {
        mut node,
        settings,
        io,
        hooks,
        hook_task,
        _tasks,
        ..
    } = old;
    if node.holds() {
        for r in &settings.config.resources {
            log::info!("ha: runtime stop: removing {}", r.addr);
            if let Err(e) = io
                .netlink
                .remove_address(&r.interface, r.addr, r.prefix)
                .await
            {
                log::error!("ha: remove {}: {e}", r.addr);
            }
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

async fn start(
    daemon: &Daemon,
    ex: &Rc<LocalExecutor<'static>>,
    data_dir: &Path,
    tx: Sender<Event>,
    generation: u64,
    settings: HaSettings,
) -> Result<Instance, String> {
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
    // Checked here so that a missing CAP_NET_RAW is reported at start.
    drop(
        ArpSocket::open(lan_link.index, mac)
            .map_err(|e| format!("ARP socket on {}: {e}", c.lan.interface))?,
    );
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
    let node = Node::new(c.clone(), identity, daemon.clock.now()).map_err(|e| e.to_string())?;
    let io = Rc::new(Io {
        netlink,
        sync,
        lan,
        lan_index: lan_link.index,
        lan_mac: mac,
        peer_lan_ip: c.lan.remote_ip,
    });
    let send = move |tx: &Sender<Event>, event: ha::Event| {
        let tx = tx.clone();
        async move { tx.send(Event::Ha { generation, event }).await.is_ok() }
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
    let mut rt = daemon.ha.borrow_mut();
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
    Ok(Instance {
        node,
        serial,
        settings,
        io,
        hooks,
        hook_task,
        _tasks: tasks,
    })
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
