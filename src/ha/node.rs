//! The HA state machine of one node.
//!
//! Architecture invariant: `Node` does no I/O, reads no clock and draws no
//! random numbers. Time comes in as `now`, randomness as [`Event::Entropy`],
//! and every side effect leaves as an [`Action`].

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::auth::{self, Key};
use super::config::{Config, ConfigError, DefaultActive, ResourceIp, Role};
use super::pairing::{self, Entropy, Pairing, Side};
use super::ping::PingGroup;
use super::wire::{self, Frame, Path, WireState, flags};
use crate::clock::Instant;

/// GARP offsets after an acquisition: a burst, then repeats spread past the
/// 1 s `locktime` during which Linux neighbours ignore updates.
const GARP_SCHEDULE_MS: [u64; 6] = [0, 50, 100, 1_100, 2_200, 5_000];
/// How long an ARP probe may take before it counts as unanswered.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// How long a probe taken when it is needed (boot, switch, a takeover whose
/// early probe did not answer in time) listens for claims: a LAN answers
/// within milliseconds.
const PROBE_WAIT: Duration = Duration::from_millis(150);
/// The early probe listens until this long before the out-of-service time,
/// so that its answer is in when the peer goes out of service (the adapter
/// hands it over on the same thread).
const PROBE_MARGIN: Duration = Duration::from_millis(10);
/// The shortest listen a probe is asked for.
const PROBE_MIN_WAIT: Duration = Duration::from_millis(20);
/// How soon to probe again after another MAC answered.
const PROBE_RETRY: Duration = Duration::from_millis(500);
/// Number of recent transitions kept for `kpbx ha events`.
pub const TRANSITION_RING: usize = 64;

/// Who this node is; fixed for one run of the daemon.
#[derive(Clone, Debug)]
pub struct Identity {
    /// This node's serial number.
    pub serial: String,
    /// Boot counter persisted by the daemon; must grow on every start so
    /// that replayed heartbeats from an older run are refused.
    pub incarnation: u64,
    /// The cluster key from an earlier pairing, if any.
    pub cluster_key: Option<Key>,
}

/// Operator commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminCommand {
    /// Move the resource to the other node (on the active), or take it (on
    /// the passive).
    Switch,
    /// Turn HA off on both nodes; the resource is released.
    Disable,
    /// Forget the pairing on both nodes; the active keeps the resource.
    Unpair,
    /// Start pairing after an unpair.
    Pair,
}

/// Inputs from adapters.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// A UDP datagram received on a path.
    Datagram {
        path: Path,
        from: Ipv4Addr,
        bytes: Vec<u8>,
    },
    /// One ping of one group member: replied or timed out.
    PingResult {
        target: Ipv4Addr,
        reachable: bool,
    },
    /// Carrier of a path's interface changed.
    LinkChanged {
        path: Path,
        up: bool,
    },
    /// Answer to [`Action::ArpProbe`]: the MAC that claims `addr`, if any.
    ArpProbeResult {
        addr: Ipv4Addr,
        owner: Option<[u8; 6]>,
    },
    /// Answer to [`Action::ArpProbe`]: every MAC that claimed `addr` within
    /// the probe's wait (empty: nobody).
    ArpProbeAnswers {
        addr: Ipv4Addr,
        owners: Vec<[u8; 6]>,
    },
    /// The MAC that answers ARP for the peer's LAN address (the daemon
    /// reports it before an [`Event::ArpProbeResult`] that names an owner).
    /// A probe answered by this MAC while the peer is out of service is the
    /// stale address of the peer's dead daemon, which expires by its
    /// lifetime: it does not block acquisition.
    PeerLanMac {
        mac: [u8; 6],
    },
    /// The address is on the interface (netlink dump at start or a new address).
    AddressPresent {
        addr: Ipv4Addr,
    },
    /// The address disappeared from the interface.
    AddressRemoved {
        addr: Ipv4Addr,
    },
    Admin(AdminCommand),
    ConfigChanged(Box<Config>),
    /// Random bytes, answering [`Action::RequestEntropy`].
    Entropy(Vec<u8>),
    /// Whether the daemon's event loop, which runs the services this node
    /// fronts, answers within the daemon's bound. While it does not (a
    /// wedged loop), the node is not eligible: it releases the resource,
    /// never acquires it, and its heartbeats say so, so that the peer
    /// takes over at once instead of this node claiming health forever.
    ServiceLoop {
        answering: bool,
    },
    /// The daemon is stopping. From now on the node is not eligible: a
    /// holder releases and hands over to a heard peer (with the
    /// `HANDOVER` flag, or a grant once the peer can take it), and the node
    /// never acquires again. Unlike an administrative switch this does not
    /// compare ping groups: this node will hold nothing either way.
    Stopping,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Acquire,
    Release,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Intents for adapters, in the order they must be carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Send a UDP datagram to the peer on a path.
    Send {
        path: Path,
        bytes: Vec<u8>,
    },
    /// Add the address with a finite valid lifetime (round up to seconds).
    AddAddress {
        resource: ResourceIp,
        valid_for: Duration,
    },
    /// Renew the lifetime of an address this node holds.
    RefreshAddress {
        resource: ResourceIp,
        valid_for: Duration,
    },
    RemoveAddress {
        resource: ResourceIp,
    },
    /// Send one gratuitous ARP for the address.
    SendGarp {
        resource: ResourceIp,
    },
    /// Ask whether another MAC answers for the address (RFC 5227 probe):
    /// send the probe and listen for claims until `until` (at least a few
    /// ms after sending it), then answer with [`Event::ArpProbeAnswers`].
    /// The early probe's `until` is just before the out-of-service time, so
    /// a takeover from a silent peer need not wait for it.
    ArpProbe {
        addr: Ipv4Addr,
        interface: String,
        until: Instant,
    },
    RunHook {
        hook: Hook,
        reason: Reason,
    },
    /// Persist the cluster key (pairing done).
    StoreClusterKey(Key),
    /// Delete the persisted cluster key (unpaired).
    ForgetClusterKey,
    /// Persist role = disabled (HA disabled from either node).
    StoreRoleDisabled,
    /// Feed at least `len` random bytes back as [`Event::Entropy`].
    RequestEntropy {
        len: usize,
    },
    /// A line for the log.
    Report {
        level: Level,
        message: String,
    },
}

/// Why something happened; shown in `kpbx ha events` and passed to hooks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    Boot,
    PeerHeard,
    InitTimeout,
    PeerOutOfService,
    DefaultActive,
    PingMajority,
    PingMinority,
    NoPingMember,
    LanDown,
    Conflict,
    AdminSwitch,
    PeerHandedOver,
    SwitchFailed,
    AdminDisable,
    PeerDisabled,
    AdminUnpair,
    PeerUnpaired,
    PairingStarted,
    Paired,
    ConfigChanged,
    AddressLost,
    ProbeConflict,
    PathSilent,
    PathRecovered,
    LocalStall,
    LoopStalled,
    Stopping,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Reason::Boot => "daemon started",
            Reason::PeerHeard => "peer heard",
            Reason::InitTimeout => "init timeout expired without the peer",
            Reason::PeerOutOfService => "peer out of service",
            Reason::DefaultActive => "default active node",
            Reason::PingMajority => "sees more ping-group members than the peer",
            Reason::PingMinority => "sees fewer ping-group members than the peer",
            Reason::NoPingMember => "sees no ping-group member",
            Reason::LanDown => "LAN link down",
            Reason::Conflict => "both nodes held the resource",
            Reason::AdminSwitch => "administrative switch",
            Reason::PeerHandedOver => "peer handed the resource over",
            Reason::SwitchFailed => "handover failed: the peer did not take over",
            Reason::AdminDisable => "HA disabled by the administrator",
            Reason::PeerDisabled => "HA disabled on the peer",
            Reason::AdminUnpair => "unpaired by the administrator",
            Reason::PeerUnpaired => "unpaired by the peer",
            Reason::PairingStarted => "pairing started",
            Reason::Paired => "paired",
            Reason::ConfigChanged => "configuration changed",
            Reason::AddressLost => "resource address disappeared",
            Reason::ProbeConflict => "another MAC answers for the resource address",
            Reason::PathSilent => "heartbeat path silent past the warning threshold",
            Reason::PathRecovered => "heartbeat path recovered",
            Reason::LocalStall => "this node was not scheduled for a long time",
            Reason::LoopStalled => "the daemon's event loop stopped answering",
            Reason::Stopping => "the daemon is stopping",
        };
        f.write_str(s)
    }
}

/// The state shown by `kpbx ha status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Disabled,
    /// Not paired and not trying (after an unpair).
    Unpaired,
    /// Waiting for or running the pairing exchange.
    Pairing,
    /// Waiting for the peer before deciding.
    Init,
    Passive,
    Active,
}

/// One entry of the transition ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub at: Instant,
    pub state: State,
    pub reason: Reason,
}

/// Dropped-datagram and other counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub heartbeats_sent: u64,
    pub heartbeats_received: u64,
    /// Bad tag, reflected frame, or heartbeat claiming another path.
    pub forged: u64,
    /// Sequence number not above the last one seen on that path.
    pub replayed: u64,
    pub malformed: u64,
    /// Source address is not the configured peer address of the path.
    pub foreign_source: u64,
    /// Heartbeats received while no cluster key is known.
    pub unauthenticated: u64,
    pub pairing_failures: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathStatus {
    pub path: Path,
    /// Time since the last valid heartbeat on this path.
    pub heartbeat_age: Option<Duration>,
    /// Silent past the warning threshold.
    pub warning: bool,
}

/// Who holds the resource, as far as this node knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    Nobody,
    Local,
    Remote,
    Both,
}

/// Snapshot for `kpbx ha status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub state: State,
    pub paired: bool,
    pub holds: bool,
    pub holder: Holder,
    pub paths: [PathStatus; 2],
    /// Some path is past the warning threshold but the peer is still heard.
    pub degraded: bool,
    pub peer_out_of_service: bool,
    pub ping_seen: u8,
    pub ping_total: u8,
    pub peer_ping_seen: Option<u8>,
    pub epoch: u64,
    pub counters: Counters,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Disabled,
    Unpaired,
    Pairing,
    Init,
    Running,
}

#[derive(Clone, Copy, Debug, Default)]
struct PathState {
    last_rx: Option<Instant>,
    last_seq: Option<(u64, u64)>,
    warned: bool,
}

/// What we know from the peer's latest valid heartbeat.
#[derive(Clone, Copy, Debug)]
struct Peer {
    incarnation: u64,
    state: WireState,
    flags: u8,
    epoch: u64,
    ping_seen: u8,
}

impl Peer {
    fn holds(&self) -> bool {
        self.flags & flags::HOLDS != 0
    }
    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

#[derive(Clone, Debug)]
struct Probe {
    deadline: Instant,
    pending: Vec<Ipv4Addr>,
    reason: Reason,
}

#[derive(Clone, Debug)]
struct EarlyProbe {
    started: Instant,
    pending: Vec<Ipv4Addr>,
    owners: Vec<[u8; 6]>,
}

enum Want {
    Keep,
    Stay,
    /// Coordinator, nobody holds: let the peer take it.
    Grant,
    Acquire {
        probe: bool,
        reason: Reason,
    },
    Release(Reason),
}

/// One HA node: feed it events and timeouts, drain its actions.
#[derive(Debug)]
pub struct Node {
    config: Config,
    serial: String,
    incarnation: u64,
    key: Option<Key>,
    phase: Phase,
    holds: bool,
    init_deadline: Instant,
    last_call: Option<Instant>,
    /// Silence is measured from no earlier than this (set after a local stall).
    silence_floor: Instant,
    seq: u64,
    /// Bumped on every acquisition past anything seen from the peer.
    epoch: u64,
    /// Highest epoch the peer ever announced (kept when the peer goes silent).
    peer_epoch: u64,
    next_heartbeat: Option<Instant>,
    paths: [PathState; 2],
    peer: Option<Peer>,
    /// When the peer was last (re)discovered; silence of a path never heard
    /// since counts from here.
    peer_since: Instant,
    /// When the last valid heartbeat arrived (on any path), kept after the
    /// peer goes out of service so that the log can say how long it is silent.
    last_heard: Option<Instant>,
    /// When this node last found that it had not been run for a long time.
    last_stall: Option<Instant>,
    ping: PingGroup,
    lan_up: bool,
    /// The daemon's event loop answers ([`Event::ServiceLoop`]).
    loop_ok: bool,
    /// The daemon is stopping ([`Event::Stopping`]).
    stopping: bool,
    probe: Option<Probe>,
    probe_retry_at: Option<Instant>,
    /// The probe started once every path was silent past the warning time,
    /// so that its answer is known when the out-of-service time expires.
    early: Option<EarlyProbe>,
    /// The MAC answering for the peer's LAN address, as last reported.
    peer_lan_mac: Option<[u8; 6]>,
    garp_due: VecDeque<Instant>,
    refresh_at: Option<Instant>,
    /// We released for the peer; do not take back before this deadline.
    handover: Option<Instant>,
    /// Passive asked the active to hand over, until this deadline.
    switch_request: Option<Instant>,
    /// Both held at some point; re-announce once the peer yields.
    in_conflict: bool,
    /// The peer was heard again after being out of service while this node
    /// holds: re-announce once the peer is seen not holding, whatever it
    /// reported (clients may have learnt its MAC during the silence).
    reannounce: bool,
    default_mismatch_reported: bool,
    pairing: Pairing,
    entropy: Entropy,
    counters: Counters,
    actions: VecDeque<Action>,
    transitions: VecDeque<Transition>,
    shown: State,
}

impl Node {
    /// Creates a node; a refused config is returned with its reason.
    pub fn new(config: Config, identity: Identity, now: Instant) -> Result<Node, ConfigError> {
        config.validate()?;
        let ping = PingGroup::new(&config.ping_group, config.ping_dampen, config.ping_interval);
        let pairing = new_pairing(&config, &identity.serial);
        let mut node = Node {
            serial: identity.serial,
            incarnation: identity.incarnation,
            key: identity.cluster_key,
            phase: Phase::Disabled,
            holds: false,
            init_deadline: now + config.init_timeout,
            last_call: Some(now),
            silence_floor: now,
            seq: 0,
            epoch: 0,
            peer_epoch: 0,
            next_heartbeat: None,
            paths: [PathState::default(); 2],
            peer: None,
            peer_since: now,
            last_heard: None,
            last_stall: None,
            ping,
            lan_up: true,
            loop_ok: true,
            stopping: false,
            probe: None,
            probe_retry_at: None,
            early: None,
            peer_lan_mac: None,
            garp_due: VecDeque::new(),
            refresh_at: None,
            handover: None,
            switch_request: None,
            in_conflict: false,
            reannounce: false,
            default_mismatch_reported: false,
            pairing,
            entropy: Entropy::default(),
            counters: Counters::default(),
            actions: VecDeque::new(),
            transitions: VecDeque::new(),
            shown: State::Disabled,
            config,
        };
        node.start(now, Reason::Boot);
        Ok(node)
    }

    /// Enters the phase the role and key call for.
    fn start(&mut self, now: Instant, reason: Reason) {
        if self.config.role == Role::Disabled {
            self.phase = Phase::Disabled;
        } else if self.key.is_some() {
            self.enter_init(now);
        } else {
            self.phase = Phase::Pairing;
            self.request_entropy();
        }
        self.record(now, reason);
        self.evaluate(now);
    }

    fn enter_init(&mut self, now: Instant) {
        self.phase = Phase::Init;
        self.init_deadline = now + self.config.init_timeout;
        self.peer = None;
        self.paths = [PathState::default(); 2];
        self.silence_floor = now;
        self.next_heartbeat = Some(now);
    }

    // ---- public API --------------------------------------------------------

    pub fn handle_event(&mut self, now: Instant, event: Event) {
        self.note_call(now);
        match event {
            Event::Datagram { path, from, bytes } => self.on_datagram(now, path, from, &bytes),
            Event::PingResult { target, reachable } => self.ping.record(now, target, reachable),
            Event::LinkChanged { path, up } => {
                if path == Path::Lan && self.lan_up != up {
                    self.lan_up = up;
                    let level = if up { Level::Info } else { Level::Warn };
                    self.report(
                        level,
                        format!("LAN link {}", if up { "up" } else { "down" }),
                    );
                }
            }
            Event::ArpProbeResult { addr, owner } => {
                let owners: Vec<[u8; 6]> = owner.into_iter().collect();
                self.on_probe_result(now, addr, &owners);
            }
            Event::ArpProbeAnswers { addr, owners } => self.on_probe_result(now, addr, &owners),
            Event::PeerLanMac { mac } => self.peer_lan_mac = Some(mac),
            Event::AddressPresent { addr } => {
                if let Some(r) = self.resource(addr)
                    && !self.holds
                {
                    self.report(
                        Level::Warn,
                        format!("removing stale resource address {addr}"),
                    );
                    self.actions
                        .push_back(Action::RemoveAddress { resource: r });
                }
            }
            Event::AddressRemoved { addr } => {
                if let Some(r) = self.resource(addr)
                    && self.holds
                {
                    self.report(
                        Level::Warn,
                        format!("resource address {addr} disappeared; adding it back"),
                    );
                    self.actions.push_back(Action::AddAddress {
                        resource: r,
                        valid_for: self.address_lifetime(),
                    });
                    self.schedule_garps(now);
                    self.record_event(now, Reason::AddressLost);
                }
            }
            Event::Admin(cmd) => self.on_admin(now, cmd),
            Event::ConfigChanged(config) => self.on_config(now, *config),
            Event::Stopping => {
                if !self.stopping {
                    self.stopping = true;
                    self.report(
                        Level::Info,
                        "stopping: not eligible for the resource".into(),
                    );
                    self.evaluate(now);
                    self.send_now(now);
                }
            }
            Event::ServiceLoop { answering } => {
                if self.loop_ok != answering {
                    self.loop_ok = answering;
                    if answering {
                        self.report(Level::Info, "the daemon's event loop answers again".into());
                    } else {
                        self.report(
                            Level::Error,
                            "the daemon's event loop stopped answering: not eligible for the resource"
                                .into(),
                        );
                        self.record_event(now, Reason::LoopStalled);
                    }
                }
            }
            Event::Entropy(bytes) => {
                self.entropy.supply(&bytes);
                if self.phase == Phase::Pairing {
                    self.pairing.entropy_arrived();
                    let mut out = Vec::new();
                    self.pairing.on_timeout(now, &mut self.entropy, &mut out);
                    self.apply_pairing(now, out);
                }
            }
        }
        self.evaluate(now);
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.note_call(now);
        self.ping.update(now);
        self.check_paths(now);
        if self.phase == Phase::Pairing {
            let mut out = Vec::new();
            self.pairing.on_timeout(now, &mut self.entropy, &mut out);
            self.apply_pairing(now, out);
        }
        if self.next_heartbeat.is_some_and(|t| now >= t) {
            self.send_heartbeats(now);
        }
        if self.refresh_at.is_some_and(|t| now >= t) {
            for r in self.config.resources.clone() {
                self.actions.push_back(Action::RefreshAddress {
                    resource: r,
                    valid_for: self.address_lifetime(),
                });
            }
            self.refresh_at = Some(now + self.refresh_interval());
        }
        while self.garp_due.front().is_some_and(|&t| now >= t) {
            self.garp_due.pop_front();
            for r in self.config.resources.clone() {
                self.actions.push_back(Action::SendGarp { resource: r });
            }
        }
        if let Some(p) = &self.probe
            && now >= p.deadline
        {
            let reason = p.reason;
            self.probe = None;
            self.report(
                Level::Warn,
                "ARP probe unanswered by the adapter; acquiring".into(),
            );
            self.acquire(now, reason);
        }
        if self.handover.is_some_and(|t| now >= t) {
            self.handover = None;
            self.report(Level::Warn, Reason::SwitchFailed.to_string());
            self.record_event(now, Reason::SwitchFailed);
        }
        if self.switch_request.is_some_and(|t| now >= t) {
            self.switch_request = None;
            self.report(
                Level::Warn,
                "switch request not honoured by the active node".into(),
            );
        }
        self.evaluate(now);
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next instant at which [`Node::handle_timeout`] must be called.
    /// Calling it earlier or more often is harmless.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let warn = self.config.keepalive_warning;
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.next_heartbeat);
        if self.peer.is_some() {
            let base = |p: &PathState| p.last_rx.unwrap_or(self.peer_since).max(self.silence_floor);
            consider(self.out_of_service_at());
            for p in self.paths.iter().filter(|p| !p.warned) {
                consider(Some(base(p) + warn));
            }
        }
        if self.phase == Phase::Init {
            consider(Some(self.init_deadline));
        }
        if self.phase == Phase::Pairing {
            consider(self.pairing.deadline());
        }
        consider(self.ping.next_deadline());
        consider(self.probe.as_ref().map(|p| p.deadline));
        consider(self.probe_retry_at);
        consider(self.garp_due.front().copied());
        consider(self.refresh_at);
        consider(self.handover);
        consider(self.switch_request);
        next
    }

    pub fn status(&self, now: Instant) -> Status {
        let path_status = |path: Path| {
            let p = &self.paths[path_index(path)];
            PathStatus {
                path,
                heartbeat_age: p.last_rx.map(|t| now.saturating_since(t)),
                warning: p.warned,
            }
        };
        let peer_holds = self.peer.is_some_and(|p| p.holds());
        let holder = match (self.holds, peer_holds) {
            (true, true) => Holder::Both,
            (true, false) => Holder::Local,
            (false, true) => Holder::Remote,
            (false, false) => Holder::Nobody,
        };
        Status {
            state: self.state(),
            paired: self.key.is_some(),
            holds: self.holds,
            holder,
            paths: [path_status(Path::Sync), path_status(Path::Lan)],
            degraded: self.peer.is_some() && self.paths.iter().any(|p| p.warned),
            peer_out_of_service: self.phase == Phase::Running && self.peer.is_none(),
            ping_seen: self.ping_seen(),
            ping_total: self.ping.total(),
            peer_ping_seen: self.peer.map(|p| p.ping_seen),
            epoch: self.epoch,
            counters: self.counters,
        }
    }

    /// Recent transitions, oldest first (at most [`TRANSITION_RING`]).
    pub fn transitions(&self) -> impl Iterator<Item = &Transition> {
        self.transitions.iter()
    }

    pub fn holds(&self) -> bool {
        self.holds
    }

    /// Whether this node, at `now`, knows itself the rightful holder, so
    /// that a change the peer has not stored may be confirmed to a client:
    /// it holds, it was run recently (no gap this call would reveal as a
    /// stall), and since its last stall the peer has had a full
    /// out-of-service period to be heard, and this node still holds.
    ///
    /// A heartbeat handled after the stall proves nothing by itself: the
    /// adapter may have read it before the freeze (handled after the
    /// resume, at a later `now`), and a peer that says "not holding" may
    /// still take over until it has heard this node's heartbeats of after
    /// the resume. Within the out-of-service period after the stall, a peer
    /// that took over is heard holding (this node then yields, or keeps the
    /// resource on the conflict rule) unless the nodes are cut apart.
    pub fn sure_holder(&self, now: Instant) -> bool {
        let oos = self.config.keepalive_out_of_service;
        let fresh = self
            .last_call
            .is_some_and(|l| now.saturating_since(l) <= oos / 2);
        let settled = self.last_stall.is_none_or(|t| now >= t + oos);
        self.holds && self.phase == Phase::Running && fresh && settled
    }

    /// The cluster key once paired (it also keys the data sync channel).
    pub fn cluster_key(&self) -> Option<&Key> {
        self.key.as_ref()
    }

    pub fn state(&self) -> State {
        match self.phase {
            Phase::Disabled => State::Disabled,
            Phase::Unpaired => State::Unpaired,
            Phase::Pairing => State::Pairing,
            Phase::Init => State::Init,
            Phase::Running if self.holds => State::Active,
            Phase::Running => State::Passive,
        }
    }

    // ---- time ---------------------------------------------------------------

    /// Detects that this node itself was not run for a long time (VM pause,
    /// overload): the peer's silence during that gap proves nothing.
    fn note_call(&mut self, now: Instant) {
        if let Some(last) = self.last_call
            && matches!(self.phase, Phase::Init | Phase::Running)
            && now.saturating_since(last) > self.config.keepalive_out_of_service / 2
        {
            self.silence_floor = self.silence_floor.max(now);
            self.last_stall = Some(now);
            self.garp_due.clear();
            if self.next_heartbeat.is_some() {
                self.next_heartbeat = Some(now);
            }
            self.report(
                Level::Warn,
                format!(
                    "not run for {} ms; giving the peer a full out-of-service period",
                    now.saturating_since(last).as_millis()
                ),
            );
            self.record_event(now, Reason::LocalStall);
        }
        self.last_call = Some(self.last_call.map_or(now, |l| l.max(now)));
    }

    /// When the peer goes out of service if nothing more is heard: every
    /// path silent for the out-of-service time (`None`: not known).
    fn out_of_service_at(&self) -> Option<Instant> {
        self.peer?;
        self.paths
            .iter()
            .map(|p| p.last_rx.unwrap_or(self.peer_since).max(self.silence_floor))
            .max()
            .map(|t| t + self.config.keepalive_out_of_service)
    }

    /// How long a path has been silent (only meaningful while the peer is known).
    fn silence(&self, now: Instant, p: &PathState) -> Duration {
        let since = p.last_rx.unwrap_or(self.peer_since).max(self.silence_floor);
        now.saturating_since(since)
    }

    fn check_paths(&mut self, now: Instant) {
        if self.peer.is_none() {
            return;
        }
        let warn = self.config.keepalive_warning;
        let oos = self.config.keepalive_out_of_service;
        let mut all_dead = true;
        for path in Path::ALL {
            let p = self.paths[path_index(path)];
            let silent = self.silence(now, &p);
            if silent < oos {
                all_dead = false;
            }
            if !p.warned && silent >= warn {
                self.paths[path_index(path)].warned = true;
                self.report(
                    Level::Warn,
                    format!(
                        "no heartbeat on the {path:?} path for {} ms",
                        warn.as_millis()
                    ),
                );
                self.record_event(now, Reason::PathSilent);
            }
        }
        // Every path late past the warning time: probe now, off the critical
        // path, so that a takeover at the out-of-service time need not wait.
        if !all_dead
            && self.early.is_none()
            && !self.holds
            && self.phase == Phase::Running
            && self.eligible()
            && self.paths.iter().all(|p| p.warned)
        {
            let pending: Vec<Ipv4Addr> = self.config.resources.iter().map(|r| r.addr).collect();
            // Listen until just before the out-of-service time: the answer
            // is in when the peer goes out of service (a fixed wait from
            // the warning time ended after it at fast settings: 0.1 s
            // heartbeats, warning 0.2 s, out of service 0.36 s).
            let until = self
                .out_of_service_at()
                .and_then(|t| t.checked_sub(PROBE_MARGIN))
                .unwrap_or(now)
                .max(now + PROBE_MIN_WAIT);
            for r in &self.config.resources {
                self.actions.push_back(Action::ArpProbe {
                    addr: r.addr,
                    interface: r.interface.clone(),
                    until,
                });
            }
            self.early = Some(EarlyProbe {
                started: now,
                pending,
                owners: Vec::new(),
            });
        }
        if all_dead {
            // Forget the replay windows too: a peer whose restored store
            // rolled its incarnation back is accepted again after one
            // out-of-service period instead of never.
            for p in &mut self.paths {
                p.last_seq = None;
            }
            self.peer = None;
            self.in_conflict = false;
            self.reannounce = false;
            self.handover = None;
            self.switch_request = None;
            // Say what is known: silence. The peer may be dead, or alive
            // while only its heartbeats to us are lost (one-way loss).
            let silent = self
                .last_heard
                .map(|t| format!("for {} ms", now.saturating_since(t).as_millis()))
                .unwrap_or_else(|| "since it was first expected".into());
            self.report(
                Level::Warn,
                format!(
                    "peer out of service: no heartbeat from the peer on any path {silent} (it is down, or its heartbeats to this node are lost)"
                ),
            );
            self.record_event(now, Reason::PeerOutOfService);
        }
    }

    fn address_lifetime(&self) -> Duration {
        // Linux lifetimes are whole seconds: round up, at least 1 s.
        let oos = self.config.keepalive_out_of_service;
        let secs = oos
            .as_secs()
            .saturating_add(u64::from(oos.subsec_nanos() > 0));
        Duration::from_secs(secs.max(1))
    }

    fn refresh_interval(&self) -> Duration {
        self.address_lifetime() / 3
    }

    // ---- heartbeats ---------------------------------------------------------

    fn send_heartbeats(&mut self, now: Instant) {
        self.next_heartbeat = Some(now + self.config.heartbeat_interval);
        let Some(key) = self.key else {
            return;
        };
        let state = match self.state() {
            State::Active => WireState::Active,
            State::Init => WireState::Init,
            _ => WireState::Passive,
        };
        let mut f = 0;
        if self.holds {
            f |= flags::HOLDS;
        }
        if self.config.default_active == DefaultActive::Local {
            f |= flags::DEFAULT;
        }
        if self.handover.is_some() {
            f |= flags::HANDOVER;
        }
        if self.switch_request.is_some() {
            f |= flags::SWITCH_REQUEST;
        }
        if self.config.role == Role::Coordinator {
            f |= flags::COORDINATOR;
        }
        if self.eligible() {
            f |= flags::ELIGIBLE;
        }
        self.send_flags(key, state, f);
    }

    fn send_flags(&mut self, key: Key, state: WireState, f: u8) {
        for path in Path::ALL {
            self.seq += 1;
            let hb = wire::Heartbeat {
                incarnation: self.incarnation,
                seq: self.seq,
                epoch: self.epoch,
                path,
                state,
                flags: f,
                ping_seen: self.ping_seen(),
                ping_total: self.ping.total(),
                tag: [0; wire::TAG_LEN],
            };
            let bytes = auth::seal_heartbeat(&key, hb);
            self.counters.heartbeats_sent += 1;
            self.actions.push_back(Action::Send { path, bytes });
        }
    }

    fn on_datagram(&mut self, now: Instant, path: Path, from: Ipv4Addr, bytes: &[u8]) {
        let expected = match path {
            Path::Sync => self.config.sync.remote_ip,
            Path::Lan => self.config.lan.remote_ip,
        };
        if from != expected {
            self.counters.foreign_source += 1;
            return;
        }
        let frame = match wire::parse(bytes) {
            Ok(f) => f,
            Err(_) => {
                self.counters.malformed += 1;
                return;
            }
        };
        match frame {
            Frame::Heartbeat(hb) => self.on_heartbeat(now, path, &hb, bytes),
            other => {
                let resend_accept = matches!(other, Frame::PairProof { .. })
                    && matches!(self.phase, Phase::Init | Phase::Running);
                if path != Path::Sync || !(self.phase == Phase::Pairing || resend_accept) {
                    return;
                }
                let mut out = Vec::new();
                self.pairing
                    .on_frame(now, &other, &mut self.entropy, &mut out);
                self.apply_pairing(now, out);
            }
        }
    }

    fn on_heartbeat(&mut self, now: Instant, path: Path, hb: &wire::Heartbeat, bytes: &[u8]) {
        if matches!(self.phase, Phase::Disabled) {
            return;
        }
        let Some(key) = self.key else {
            self.counters.unauthenticated += 1;
            return;
        };
        let from_coordinator = hb.flags & flags::COORDINATOR != 0;
        let we_coordinate = self.config.role == Role::Coordinator;
        if !auth::verify_heartbeat(&key, bytes)
            || hb.path != path
            || from_coordinator == we_coordinate
        {
            self.counters.forged += 1;
            return;
        }
        let slot = &mut self.paths[path_index(path)];
        let id = (hb.incarnation, hb.seq);
        if slot.last_seq.is_some_and(|last| id <= last) {
            self.counters.replayed += 1;
            return;
        }
        slot.last_seq = Some(id);
        slot.last_rx = Some(now);
        self.last_heard = Some(now);
        self.early = None;
        let recovered = std::mem::take(&mut slot.warned);
        self.counters.heartbeats_received += 1;
        let previous = self.peer;
        let peer = Peer {
            incarnation: hb.incarnation,
            state: hb.state,
            flags: hb.flags,
            epoch: hb.epoch,
            ping_seen: hb.ping_seen,
        };
        if previous.is_none() {
            self.peer_since = now;
        }
        self.peer_epoch = self.peer_epoch.max(hb.epoch);
        self.peer = Some(peer);
        if recovered && previous.is_some() {
            self.report(
                Level::Info,
                format!("heartbeat on the {path:?} path recovered"),
            );
            self.record_event(now, Reason::PathRecovered);
        }
        match previous {
            None => {
                self.report(Level::Info, format!("peer heard on the {path:?} path"));
                self.record_event(now, Reason::PeerHeard);
                // A heal: whatever the peer now says, it may have held the
                // resource (and answered clients' ARP) while it could not
                // hear us. The holder re-announces once the peer does not
                // hold (at once if it already yielded).
                if self.holds {
                    self.reannounce = true;
                }
                // Answer at once: after a partition both may hold, and the
                // sooner the peer hears us, the shorter the double holding.
                if self.phase == Phase::Running {
                    self.send_now(now);
                }
            }
            Some(old) if old.incarnation != peer.incarnation => {
                self.report(Level::Info, "peer restarted".into());
            }
            Some(_) => {}
        }
        if peer.holds() {
            self.handover = None;
        }
        if peer.has(flags::DISABLE) {
            self.disable(now, Reason::PeerDisabled);
        } else if peer.has(flags::UNPAIR) {
            self.unpair(now, Reason::PeerUnpaired);
        } else if peer.has(flags::SWITCH_REQUEST) && self.holds && self.handover.is_none() {
            self.switch(now);
        }
    }

    // ---- decisions ----------------------------------------------------------

    fn ping_seen(&self) -> u8 {
        if self.lan_up {
            self.ping.effective_count()
        } else {
            0
        }
    }

    fn eligible(&self) -> bool {
        !self.stopping
            && self.loop_ok
            && self.lan_up
            && (self.ping.is_empty() || self.ping.effective_count() > 0)
    }

    /// Whether this node wins a tie that nothing else decides.
    fn preferred(&mut self, peer: &Peer) -> bool {
        let me = self.config.default_active == DefaultActive::Local;
        let them = peer.has(flags::DEFAULT);
        if me != them {
            return me;
        }
        if !self.default_mismatch_reported {
            self.default_mismatch_reported = true;
            self.report(
                Level::Warn,
                "the default active node settings of the two nodes disagree; the coordinator wins ties".into(),
            );
        }
        self.config.role == Role::Coordinator
    }

    /// The decision rule. While the peer is heard, exactly one node decides:
    /// the holder (whether to release), or, when nobody holds, the
    /// coordinator (whether to take it or grant it to the peer with the
    /// `HANDOVER` flag). The secondary acquires only on a grant or when the
    /// coordinator is out of service, so both nodes never acquire at once on
    /// stale ping counts.
    fn want(&mut self, now: Instant) -> Want {
        let eligible = self.eligible();
        if self.holds && !eligible {
            let reason = if self.stopping {
                Reason::Stopping
            } else if !self.loop_ok {
                Reason::LoopStalled
            } else if self.lan_up {
                Reason::NoPingMember
            } else {
                Reason::LanDown
            };
            return Want::Release(reason);
        }
        let Some(peer) = self.peer else {
            if self.holds {
                return Want::Keep;
            }
            if !eligible || (!self.ping.is_empty() && self.ping.fresh_count(now) == 0) {
                return Want::Stay;
            }
            let reason = if self.counters.heartbeats_received == 0 {
                Reason::InitTimeout
            } else {
                Reason::PeerOutOfService
            };
            return Want::Acquire {
                probe: true,
                reason,
            };
        };
        let peer_eligible = peer.has(flags::ELIGIBLE);
        let cmp = if peer_eligible {
            self.ping_seen().cmp(&peer.ping_seen)
        } else {
            Ordering::Greater
        };
        if self.holds {
            return match (peer.holds(), cmp) {
                (_, Ordering::Less) => Want::Release(Reason::PingMinority),
                (false, _) => Want::Keep,
                (true, Ordering::Greater) => {
                    self.in_conflict = true;
                    Want::Keep
                }
                (true, Ordering::Equal) => {
                    let keep = match self.epoch.cmp(&peer.epoch) {
                        Ordering::Greater => true,
                        Ordering::Less => false,
                        Ordering::Equal => self.is_coordinator(),
                    };
                    if keep {
                        self.in_conflict = true;
                        Want::Keep
                    } else {
                        Want::Release(Reason::Conflict)
                    }
                }
            };
        }
        if peer.holds() {
            return Want::Stay;
        }
        let coordinator = self.is_coordinator();
        let peer_hands_over = peer.has(flags::HANDOVER);
        if eligible && peer_hands_over && (coordinator || self.handover.is_none()) {
            return Want::Acquire {
                probe: false,
                reason: Reason::PeerHandedOver,
            };
        }
        if self.handover.is_some() || !coordinator {
            return Want::Stay;
        }
        if peer.state == WireState::Init && now < self.init_deadline {
            return Want::Stay;
        }
        if !eligible {
            return if peer_eligible {
                Want::Grant
            } else {
                Want::Stay
            };
        }
        match cmp {
            Ordering::Greater => Want::Acquire {
                probe: false,
                reason: Reason::PingMajority,
            },
            Ordering::Less => Want::Grant,
            Ordering::Equal if self.preferred(&peer) => Want::Acquire {
                probe: false,
                reason: Reason::DefaultActive,
            },
            Ordering::Equal => Want::Grant,
        }
    }

    fn is_coordinator(&self) -> bool {
        self.config.role == Role::Coordinator
    }

    fn evaluate(&mut self, now: Instant) {
        match self.phase {
            Phase::Disabled | Phase::Pairing | Phase::Unpaired => return,
            Phase::Init => {
                let ready = self.peer.is_some() && self.ping.ready();
                if !ready && now < self.init_deadline {
                    return;
                }
                self.phase = Phase::Running;
                let reason = if self.peer.is_some() {
                    Reason::PeerHeard
                } else {
                    Reason::InitTimeout
                };
                self.record(now, reason);
                // Tell the peer at once that we are ready to decide.
                self.send_now(now);
            }
            Phase::Running => {}
        }
        // A grant to a peer that can no longer take the resource is void.
        if self.handover.is_some() && self.peer.is_some_and(|p| !p.has(flags::ELIGIBLE)) {
            self.handover = None;
        }
        let want = self.want(now);
        if !matches!(want, Want::Acquire { probe: true, .. }) {
            self.probe = None;
            self.probe_retry_at = None;
        }
        match want {
            Want::Keep => {
                if (self.in_conflict || self.reannounce) && self.peer.is_some_and(|p| !p.holds()) {
                    // The peer yielded (or was heard again after a silence
                    // already yielding): re-announce so clients come back.
                    if self.in_conflict {
                        self.record_event(now, Reason::Conflict);
                    }
                    self.in_conflict = false;
                    self.reannounce = false;
                    self.schedule_garps(now);
                    self.report(
                        Level::Info,
                        "re-announcing the resource after hearing the peer again".into(),
                    );
                } else if self.in_conflict {
                    // No scheduled GARPs while a competing holder exists.
                    self.garp_due.clear();
                }
            }
            Want::Stay => {}
            Want::Grant => {
                self.handover = Some(now + self.config.keepalive_out_of_service);
                self.send_now(now);
            }
            Want::Acquire {
                probe: false,
                reason,
            } => self.acquire(now, reason),
            Want::Acquire {
                probe: true,
                reason,
            } => self.start_probe(now, reason),
            Want::Release(reason) => {
                let hand_over = !matches!(reason, Reason::Conflict)
                    && self
                        .peer
                        .is_some_and(|p| p.has(flags::ELIGIBLE) && !p.holds());
                if hand_over {
                    self.handover = Some(now + self.config.keepalive_out_of_service);
                }
                self.release(now, reason);
            }
        }
    }

    fn start_probe(&mut self, now: Instant, reason: Reason) {
        if self.probe.is_some() || self.probe_retry_at.is_some_and(|t| now < t) {
            return;
        }
        self.probe_retry_at = None;
        // The early probe's answer, if complete and taken within the last
        // out-of-service time, decides at once (as a fresh probe would).
        if let Some(e) = self.early.take()
            && e.pending.is_empty()
            && now.saturating_since(e.started) <= self.config.keepalive_out_of_service
        {
            let pending: Vec<Ipv4Addr> = self.config.resources.iter().map(|r| r.addr).collect();
            self.probe = Some(Probe {
                deadline: now + PROBE_TIMEOUT,
                pending: pending.clone(),
                reason,
            });
            for addr in pending {
                self.on_probe_result(now, addr, &e.owners);
                if self.probe.is_none() {
                    break;
                }
            }
            return;
        }
        let pending: Vec<Ipv4Addr> = self.config.resources.iter().map(|r| r.addr).collect();
        for r in &self.config.resources {
            self.actions.push_back(Action::ArpProbe {
                addr: r.addr,
                interface: r.interface.clone(),
                until: now + PROBE_WAIT,
            });
        }
        self.probe = Some(Probe {
            deadline: now + PROBE_TIMEOUT,
            pending,
            reason,
        });
    }

    fn on_probe_result(&mut self, now: Instant, addr: Ipv4Addr, owners: &[[u8; 6]]) {
        if self.probe.is_none() {
            if let Some(e) = &mut self.early
                && e.pending.contains(&addr)
            {
                e.pending.retain(|a| *a != addr);
                e.owners.extend_from_slice(owners);
            }
            return;
        }
        // The out-of-service peer's kernel may still hold the address its
        // dead daemon added; it expires within its lifetime. Taking over
        // now (gratuitous ARPs move the clients) bounds the outage by the
        // out-of-service time instead of the lifetime. Any other MAC blocks.
        let stale_peer = |m: &[u8; 6]| self.peer.is_none() && self.peer_lan_mac == Some(*m);
        if let Some(mac) = owners.iter().find(|m| !stale_peer(m)).copied() {
            self.probe = None;
            self.probe_retry_at = Some(now + PROBE_RETRY);
            self.report(
                Level::Error,
                format!("not acquiring: {addr} is answered by {}", fmt_mac(mac)),
            );
            self.record_event(now, Reason::ProbeConflict);
            return;
        }
        if let Some(&mac) = owners.first() {
            self.report(
                Level::Warn,
                format!(
                    "{addr} is also answered by the out-of-service peer's MAC {} (no heartbeat from it {}); acquiring: a dead daemon's address expires within {} s; a peer that is alive but unheard keeps it until a heartbeat gets through and settles who holds",
                    fmt_mac(mac),
                    self.last_heard.map_or_else(
                        || "since it was first expected".to_string(),
                        |t| format!("for {} ms", now.saturating_since(t).as_millis())
                    ),
                    self.address_lifetime().as_secs()
                ),
            );
        }
        let Some(probe) = &mut self.probe else {
            return;
        };
        probe.pending.retain(|a| *a != addr);
        if probe.pending.is_empty() {
            let reason = probe.reason;
            self.probe = None;
            self.acquire(now, reason);
        }
    }

    fn acquire(&mut self, now: Instant, reason: Reason) {
        if self.holds {
            return;
        }
        self.holds = true;
        self.early = None;
        self.handover = None;
        self.switch_request = None;
        self.epoch = self.epoch.max(self.peer_epoch) + 1;
        for r in self.config.resources.clone() {
            self.actions.push_back(Action::AddAddress {
                resource: r,
                valid_for: self.address_lifetime(),
            });
        }
        self.schedule_garps(now);
        self.refresh_at = Some(now + self.refresh_interval());
        self.actions.push_back(Action::RunHook {
            hook: Hook::Acquire,
            reason,
        });
        self.report(Level::Info, format!("acquiring the resource: {reason}"));
        self.record(now, reason);
        self.send_now(now);
    }

    fn release(&mut self, now: Instant, reason: Reason) {
        if !self.holds {
            return;
        }
        self.holds = false;
        self.in_conflict = false;
        self.reannounce = false;
        self.garp_due.clear();
        self.refresh_at = None;
        for r in self.config.resources.clone() {
            self.actions
                .push_back(Action::RemoveAddress { resource: r });
        }
        self.actions.push_back(Action::RunHook {
            hook: Hook::Release,
            reason,
        });
        self.report(Level::Info, format!("releasing the resource: {reason}"));
        self.record(now, reason);
        self.send_now(now);
    }

    fn send_now(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Init | Phase::Running) {
            self.send_heartbeats(now);
        }
    }

    fn schedule_garps(&mut self, now: Instant) {
        self.garp_due = GARP_SCHEDULE_MS
            .iter()
            .map(|&ms| now + Duration::from_millis(ms))
            .collect();
    }

    // ---- admin ----------------------------------------------------------------

    fn on_admin(&mut self, now: Instant, cmd: AdminCommand) {
        match cmd {
            AdminCommand::Switch => self.admin_switch(now),
            AdminCommand::Disable => {
                if let (Some(key), true) = (
                    self.key,
                    self.phase == Phase::Running || self.phase == Phase::Init,
                ) {
                    // Twice on each path: one lost datagram must not leave the peer enabled.
                    for _ in 0..2 {
                        self.send_flags(key, WireState::Passive, flags::DISABLE | self.role_flag());
                    }
                }
                self.disable(now, Reason::AdminDisable);
            }
            AdminCommand::Unpair => {
                if let (Some(key), true) = (
                    self.key,
                    self.phase == Phase::Running || self.phase == Phase::Init,
                ) {
                    let hold = if self.holds { flags::HOLDS } else { 0 };
                    for _ in 0..2 {
                        self.send_flags(
                            key,
                            WireState::Passive,
                            flags::UNPAIR | hold | self.role_flag(),
                        );
                    }
                }
                self.unpair(now, Reason::AdminUnpair);
            }
            AdminCommand::Pair => {
                if self.phase == Phase::Unpaired && self.config.role != Role::Disabled {
                    self.pairing = new_pairing(&self.config, &self.serial);
                    self.phase = Phase::Pairing;
                    self.request_entropy();
                    self.record(now, Reason::PairingStarted);
                }
            }
        }
    }

    fn role_flag(&self) -> u8 {
        if self.config.role == Role::Coordinator {
            flags::COORDINATOR
        } else {
            0
        }
    }

    fn admin_switch(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            self.report(Level::Warn, "switch refused: HA is not running".into());
            return;
        }
        if self.holds {
            self.switch(now);
            return;
        }
        if !self.eligible() {
            self.report(
                Level::Warn,
                "switch refused: this node sees no ping-group member".into(),
            );
            return;
        }
        match self.peer {
            Some(p) if p.holds() => {
                if p.ping_seen > self.ping_seen() {
                    self.report(
                        Level::Warn,
                        "switch refused: the peer sees more ping-group members".into(),
                    );
                    return;
                }
                self.switch_request = Some(now + self.config.keepalive_out_of_service);
                self.send_now(now);
            }
            Some(_) => self.acquire(now, Reason::AdminSwitch),
            None => self.start_probe(now, Reason::AdminSwitch),
        }
    }

    /// Active side of a switch: release first, then tell the peer to take over.
    fn switch(&mut self, now: Instant) {
        let Some(peer) = self.peer else {
            self.report(
                Level::Warn,
                "switch refused: the peer is out of service".into(),
            );
            return;
        };
        if !peer.has(flags::ELIGIBLE) {
            self.report(
                Level::Warn,
                "switch refused: the peer sees no ping-group member".into(),
            );
            return;
        }
        if peer.ping_seen < self.ping_seen() {
            self.report(
                Level::Warn,
                "switch refused: the peer sees fewer ping-group members".into(),
            );
            return;
        }
        self.handover = Some(now + self.config.keepalive_out_of_service);
        self.release(now, Reason::AdminSwitch);
    }

    fn disable(&mut self, now: Instant, reason: Reason) {
        self.release(now, reason);
        self.phase = Phase::Disabled;
        self.config.role = Role::Disabled;
        self.next_heartbeat = None;
        self.peer = None;
        self.probe = None;
        self.actions.push_back(Action::StoreRoleDisabled);
        self.report(Level::Info, format!("HA disabled: {reason}"));
        self.record(now, reason);
    }

    fn unpair(&mut self, now: Instant, reason: Reason) {
        self.key = None;
        self.phase = Phase::Unpaired;
        self.next_heartbeat = None;
        self.peer = None;
        self.probe = None;
        self.handover = None;
        self.actions.push_back(Action::ForgetClusterKey);
        self.report(Level::Info, format!("unpaired: {reason}"));
        self.record(now, reason);
    }

    fn on_config(&mut self, now: Instant, config: Config) {
        if let Err(e) = config.validate() {
            self.report(Level::Error, format!("configuration refused: {e}"));
            return;
        }
        let was_disabled = self.phase == Phase::Disabled;
        if config.role == Role::Disabled {
            self.config = config;
            if !was_disabled {
                self.disable(now, Reason::ConfigChanged);
            }
            return;
        }
        if self.holds {
            for old in self.config.resources.clone() {
                if !config.resources.contains(&old) {
                    self.actions
                        .push_back(Action::RemoveAddress { resource: old });
                }
            }
            for new in &config.resources {
                if !self.config.resources.contains(new) {
                    self.actions.push_back(Action::AddAddress {
                        resource: new.clone(),
                        valid_for: self.address_lifetime(),
                    });
                }
            }
        }
        if config.ping_group != self.config.ping_group {
            self.ping =
                PingGroup::new(&config.ping_group, config.ping_dampen, config.ping_interval);
        }
        let pairing_changed = config.remote_serial != self.config.remote_serial
            || config.pairing_code != self.config.pairing_code
            || config.role != self.config.role;
        self.config = config;
        if pairing_changed {
            self.pairing = new_pairing(&self.config, &self.serial);
        }
        if was_disabled {
            self.start(now, Reason::ConfigChanged);
        }
    }

    // ---- pairing ----------------------------------------------------------------

    fn request_entropy(&mut self) {
        if !self.entropy.requested {
            self.entropy.requested = true;
            self.actions.push_back(Action::RequestEntropy { len: 64 });
        }
    }

    fn apply_pairing(&mut self, now: Instant, out: Vec<pairing::Output>) {
        for o in out {
            match o {
                pairing::Output::Send(frame) => self.actions.push_back(Action::Send {
                    path: Path::Sync,
                    bytes: frame.to_vec(),
                }),
                pairing::Output::NeedEntropy => self.request_entropy(),
                pairing::Output::Refused(message) => {
                    self.counters.pairing_failures += 1;
                    self.report(Level::Error, message);
                }
                pairing::Output::Paired(key) => {
                    if self.phase != Phase::Pairing {
                        continue;
                    }
                    self.key = Some(key);
                    self.actions.push_back(Action::StoreClusterKey(key));
                    self.report(Level::Info, "paired with the peer".into());
                    self.enter_init(now);
                    self.record(now, Reason::Paired);
                }
            }
        }
    }

    // ---- bookkeeping --------------------------------------------------------------

    fn resource(&self, addr: Ipv4Addr) -> Option<ResourceIp> {
        self.config
            .resources
            .iter()
            .find(|r| r.addr == addr)
            .cloned()
    }

    fn report(&mut self, level: Level, message: String) {
        self.actions.push_back(Action::Report { level, message });
    }

    /// Logs a state change (if any) with its reason.
    fn record(&mut self, now: Instant, reason: Reason) {
        let state = self.state();
        if state != self.shown || self.transitions.is_empty() {
            self.shown = state;
            self.push_transition(now, state, reason);
        }
    }

    /// Logs a notable event that does not change the state.
    fn record_event(&mut self, now: Instant, reason: Reason) {
        self.push_transition(now, self.state(), reason);
    }

    fn push_transition(&mut self, at: Instant, state: State, reason: Reason) {
        if self.transitions.len() == TRANSITION_RING {
            self.transitions.pop_front();
        }
        self.transitions.push_back(Transition { at, state, reason });
    }
}

fn new_pairing(config: &Config, own_serial: &str) -> Pairing {
    let code = config.pairing_code.as_deref();
    match config.role {
        Role::Coordinator => Pairing::new(
            Side::Coordinator,
            auth::pairing_secret(&config.remote_serial, code),
            own_serial.to_owned(),
        ),
        _ => Pairing::new(
            Side::Secondary,
            auth::pairing_secret(own_serial, code),
            own_serial.to_owned(),
        ),
    }
}

fn fmt_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

fn path_index(path: Path) -> usize {
    match path {
        Path::Sync => 0,
        Path::Lan => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::config::PathConfig;

    fn config(role: Role) -> Config {
        let mut c = Config::new(
            role,
            PathConfig {
                interface: "eth0".into(),
                local_ip: Ipv4Addr::new(10, 0, 0, 1),
                remote_ip: Ipv4Addr::new(10, 0, 0, 2),
                prefix: 24,
            },
            PathConfig {
                interface: "eth1".into(),
                local_ip: Ipv4Addr::new(192, 0, 2, 1),
                remote_ip: Ipv4Addr::new(192, 0, 2, 2),
                prefix: 30,
            },
            vec![ResourceIp {
                addr: Ipv4Addr::new(10, 0, 0, 10),
                prefix: 24,
                interface: "eth0".into(),
            }],
            DefaultActive::Local,
        );
        c.remote_serial = "KP-2".into();
        c
    }

    fn identity() -> Identity {
        Identity {
            serial: "KP-1".into(),
            incarnation: 1,
            cluster_key: Some(Key([1; 32])),
        }
    }

    fn drain(n: &mut Node) -> Vec<Action> {
        std::iter::from_fn(|| n.poll_action()).collect()
    }

    #[test]
    fn disabled_node_is_inert() {
        let now = Instant::from_millis(5);
        let mut n = Node::new(config(Role::Disabled), identity(), now).unwrap();
        assert_eq!(n.state(), State::Disabled);
        assert_eq!(n.poll_timeout(), None);
        n.handle_event(
            now,
            Event::Datagram {
                path: Path::Sync,
                from: Ipv4Addr::new(192, 0, 2, 2),
                bytes: vec![0; 72],
            },
        );
        n.handle_timeout(now + Duration::from_secs(100));
        assert!(drain(&mut n).is_empty());
    }

    #[test]
    fn paired_node_starts_in_init_and_sends_on_both_paths() {
        let now = Instant::from_millis(5);
        let mut n = Node::new(config(Role::Coordinator), identity(), now).unwrap();
        assert_eq!(n.state(), State::Init);
        assert_eq!(n.poll_timeout(), Some(now));
        n.handle_timeout(now);
        let sent: Vec<Path> = drain(&mut n)
            .into_iter()
            .filter_map(|a| match a {
                Action::Send { path, bytes } => {
                    assert!(auth::verify_heartbeat(&Key([1; 32]), &bytes));
                    Some(path)
                }
                _ => None,
            })
            .collect();
        assert_eq!(sent, [Path::Sync, Path::Lan]);
        assert_eq!(
            n.poll_timeout(),
            Some(now + Config::DEFAULT_HEARTBEAT_INTERVAL)
        );
    }

    #[test]
    fn unpaired_node_asks_for_entropy() {
        let mut id = identity();
        id.cluster_key = None;
        let mut n = Node::new(config(Role::Coordinator), id, Instant::ZERO).unwrap();
        assert_eq!(n.state(), State::Pairing);
        assert!(drain(&mut n).contains(&Action::RequestEntropy { len: 64 }));
        n.handle_event(Instant::ZERO, Event::Entropy(vec![3; 64]));
        let hello = drain(&mut n).into_iter().any(|a| {
            matches!(a, Action::Send { path: Path::Sync, bytes }
                if matches!(wire::parse(&bytes), Ok(Frame::PairHello { .. })))
        });
        assert!(hello);
    }

    #[test]
    fn lifetime_rounds_up_to_whole_seconds() {
        let mut c = config(Role::Coordinator);
        c.keepalive_out_of_service = Duration::from_millis(2_500);
        let n = Node::new(c, identity(), Instant::ZERO).unwrap();
        assert_eq!(n.address_lifetime(), Duration::from_secs(3));
        assert_eq!(n.refresh_interval(), Duration::from_secs(1));
    }
}
