//! HA data sync, the adapter: the TCP channel between the two nodes over the
//! sync interface, carrying the active node's replication log (and, when
//! the passive node cannot follow it, a snapshot) to the passive node.
//!
//! ```text
//!   active (primary)                                  passive (secondary, dials)
//!   listener sync_ip:7411 <──────── TCP from the peer's sync address only
//!     16 random bytes  <──────────────────────────────>  16 random bytes
//!                      <── Position { seq, hash } ─────  store.repl_head()
//!   ha::sync::plan ─────── Entries [..] ─────────────>  Store::apply_batch (one fsync)
//!     (or Restart ──> History ──> Common ──> Archived,   Store::archive_to
//!      then SnapshotBegin, Chunk.., End) ────────────>  Store::install_snapshot
//!   Acks <─────────────────────── Ack { seq } ───────
//!   commits' replies wait in `waiting` until acked, or until the bound
//!   passes (the cluster goes asynchronous)
//! ```
//!
//! Every frame is sealed with a key derived from the cluster key and both
//! randoms (`ha::sync`); any frame that does not open, decode or follow the
//! protocol ends the session, is logged and counted, and changes nothing.
//! The passive node's store is marked a replica: local writes (but its own
//! HA configuration) are refused, so its history stays the active's.
//!
//! The session tasks run on the loop's executor and report back as
//! [`Event::Sync`]; the LMDB work that may take long (applying a batch,
//! archiving, installing or producing a snapshot) runs in `smol::unblock`.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use smol::LocalExecutor;
use smol::channel::{Receiver, Sender};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};

use super::{Daemon, Event};
use crate::clock::{Clock, Instant};
use crate::control::HaSyncView;
use crate::ha::State;
use crate::ha::auth::Key;
use crate::ha::sync::{
    self as core, Acks, Direction, FrameError, Mode, Msg, Plan, Restart, Sealer,
};
use crate::store::Store;
use crate::store::repl::{Archived, Item, ReplRecord};

/// TCP port of the sync channel on the sync interface.
pub const SYNC_PORT: u16 = 7411;
/// Time for the random exchange and the position.
const HANDSHAKE: Duration = Duration::from_secs(5);
/// The primary sends an empty batch this often when idle; the secondary
/// acknowledges every batch, so each side hears the other at least this
/// often.
const KEEPALIVE: Duration = Duration::from_secs(2);
/// Silence after which a session is given up.
const IDLE: Duration = Duration::from_secs(8);
/// Time for the secondary to archive its store before a snapshot.
const ARCHIVE_LIMIT: Duration = Duration::from_secs(300);
/// How often at most the passive node rebuilds its provisioning files
/// while replicated changes stream in.
const REGENERATE_EVERY: Duration = Duration::from_secs(1);
/// Delay before the secondary dials again.
const REDIAL: Duration = Duration::from_millis(300);
/// Bytes of log entries per frame; a larger entry goes in fragments (a
/// CDR poll's or a large template's transaction often does).
const BATCH_BYTES: usize = 256 << 10;

/// What a session task reports to the loop.
pub enum Report {
    /// An accepted connection from the peer's sync address.
    Accepted(TcpStream),
    /// Primary: a new connection proved the cluster key (its first frame
    /// opened): it replaces the current session.
    Authenticated { id: u64 },
    /// Primary: the secondary is connected at `seq` (after any snapshot).
    Connected { id: u64, seq: u64 },
    /// Primary: the secondary stored everything up to `seq`.
    Acked { id: u64, seq: u64 },
    /// Primary: the secondary archived transactions this node never had.
    PeerArchived {
        id: u64,
        archived: Archived,
        dir: String,
    },
    /// Secondary: entries or a snapshot applied, up to `seq`; `objects`
    /// when they change what the provisioning files are made of.
    Applied { id: u64, seq: u64, objects: bool },
    /// Secondary: this node's data was archived before a snapshot.
    Archived { archived: Archived, dir: String },
    /// Primary: this active node replaced its data by the coordinator's
    /// (`Msg::Reverse`) and now holds this pairing's history.
    TookCoordinatorData { id: u64 },
    /// Secondary: the primary's last entry.
    PeerHead { id: u64, seq: u64 },
    /// Secondary: a snapshot is being received.
    Snapshot { id: u64 },
    /// The session ended; `rejected` when the peer sent bad input.
    Ended {
        id: u64,
        why: String,
        rejected: bool,
    },
}

/// Why a session ended.
enum Fail {
    Io(String),
    /// The peer's input was refused (frame, protocol or entry).
    Rejected(String),
    Store(String),
}

impl Fail {
    fn text(&self) -> &str {
        match self {
            Fail::Io(s) | Fail::Rejected(s) | Fail::Store(s) => s,
        }
    }
}

impl From<FrameError> for Fail {
    fn from(e: FrameError) -> Fail {
        Fail::Rejected(match e {
            FrameError::Forged => {
                "frame does not authenticate (wrong key, forged or damaged)".into()
            }
            FrameError::OutOfSequence { expected, got } => {
                format!("frame {got} out of sequence (expected {expected}): replayed or reordered")
            }
            other => format!("bad frame: {other:?}"),
        })
    }
}

type Outcome<T> = Result<T, Fail>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Primary,
    Secondary,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
        }
    }
}

struct Session {
    id: u64,
    role: Role,
    /// Wakes the primary's writer after a commit.
    notify: Option<Sender<()>>,
    _task: smol::Task<()>,
}

/// The sync part of the daemon's state (in `Daemon::sync`).
pub struct SyncRuntime {
    data_dir: PathBuf,
    tx: Sender<Event>,
    acks: Acks,
    /// Replies of commits waiting for the peer: (sequence, send).
    waiting: Vec<(u64, Answer)>,
    /// Replies of commits the peer did not store (no peer, asynchronous,
    /// or the bound passed): answered once this node knows itself the
    /// rightful holder, or with the "may be lost" error once it is not
    /// the active node (see [`settle`]).
    unsure: Vec<(u64, Answer)>,
    /// Listening on (local sync address, accepted peer).
    listener: Option<((Ipv4Addr, Ipv4Addr), smol::Task<()>)>,
    session: Option<Session>,
    /// A new connection that has not proved the key yet: it replaces
    /// `session` only then, so a stranger cannot end a working session.
    pending: Option<Session>,
    next_id: u64,
    dial_at: Option<Instant>,
    /// The log's sequence when the writer was last woken.
    notified: u64,
    /// Replicated changes feed provisioning: rebuild the files then (at
    /// most every [`REGENERATE_EVERY`], so that a stream of commits does
    /// not wait behind a rebuild per entry).
    regenerate_at: Option<Instant>,
    /// The replica mark as `drive` last set it, to act on its changes. Not
    /// read back from the store: a joining primary sets the store's mark
    /// for the moment of its snapshot without changing roles.
    replica: bool,
    // For `kpbx ha status`.
    peer_seq: Option<u64>,
    receiving_snapshot: bool,
    last_error: String,
    last_archive: String,
    rejected: u64,
}

impl SyncRuntime {
    pub fn new(data_dir: &std::path::Path, tx: Sender<Event>) -> SyncRuntime {
        SyncRuntime {
            data_dir: data_dir.to_path_buf(),
            tx,
            acks: Acks::new(Duration::from_secs(3)),
            waiting: Vec::new(),
            unsure: Vec::new(),
            listener: None,
            session: None,
            pending: None,
            next_id: 0,
            dial_at: None,
            notified: 0,
            regenerate_at: None,
            replica: false,
            peer_seq: None,
            receiving_snapshot: false,
            last_error: String::new(),
            last_archive: String::new(),
            rejected: 0,
        }
    }

    /// When the loop must call [`on_timer`] next.
    pub fn next_wait(&self, now: Instant) -> Option<Duration> {
        [self.acks.next_deadline(), self.dial_at, self.regenerate_at]
            .into_iter()
            .flatten()
            .min()
            .map(|t| t.saturating_since(now))
    }

    /// Answers the commits the peer acknowledged, or all of them when the
    /// cluster is not synchronous (any more).
    fn release(&mut self) {
        let acked = self.acks.acked();
        let all = self.acks.mode() != Mode::Sync;
        let (go, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|(seq, _)| all || *seq <= acked);
        self.waiting = keep;
        for (seq, send) in go {
            if seq <= acked {
                send(None);
            } else {
                self.unsure.push((seq, send));
            }
        }
    }

    /// Ends the session. `stepped_down`: this node stopped being the
    /// active node, so commits the peer has not confirmed may be lost (the
    /// peer's history will win): their clients get an error, not a success.
    fn end_session(&mut self, why: &str, stepped_down: bool) {
        if let Some(s) = self.session.take() {
            log::info!("sync: {} session {} ended: {why}", s.role.name(), s.id);
        }
        if stepped_down {
            for (seq, send) in std::mem::take(&mut self.waiting) {
                log::warn!(
                    "sync: transaction {seq} not confirmed by the peer before this node stepped down"
                );
                send(Some(UNCONFIRMED.to_string()));
            }
        }
        self.acks.disconnected();
        self.peer_seq = None;
        self.receiving_snapshot = false;
        self.release();
    }

    pub fn status(&self, store: &Store) -> HaSyncView {
        let (seq, hash) = store.repl_head().unwrap_or((0, [0; 32]));
        let role = self.session.as_ref().map(|s| s.role);
        let mode = match role {
            Some(Role::Primary) => self.acks.mode().name(),
            Some(Role::Secondary) if self.receiving_snapshot => "receiving snapshot",
            Some(Role::Secondary) => "following",
            None => "alone",
        };
        HaSyncView {
            mode: mode.to_string(),
            role: role.map_or("none", Role::name).to_string(),
            local_seq: seq,
            local_hash: crate::auth::password::hex(&hash),
            peer_seq: self.peer_seq,
            lag: self.peer_seq.map(|p| match role {
                Some(Role::Secondary) => p.saturating_sub(seq),
                _ => seq.saturating_sub(p),
            }),
            waiting: (self.waiting.len() + self.unsure.len()) as u64,
            replica: self.replica,
            last_error: self.last_error.clone(),
            last_archive: self.last_archive.clone(),
            rejected: self.rejected,
        }
    }
}

/// Whether this node may change configuration; the refusal names the
/// active node.
pub fn may_change(daemon: &Daemon) -> Result<(), String> {
    let Some(v) = daemon.ha.borrow().sync_view(daemon.clock.now()) else {
        return Ok(());
    };
    match v.state {
        State::Active | State::Disabled | State::Unpaired | State::Pairing => Ok(()),
        State::Passive if v.peer_holds => Err(format!(
            "this node is the HA passive node: make changes on the active node ({}, sync {})",
            v.remote_lan, v.remote
        )),
        _ => Err(
            "this node is not the HA active node and no node holds the resource yet: try again shortly"
                .to_string(),
        ),
    }
}

/// What a change's client gets when this node stepped down before the
/// peer confirmed the change.
const UNCONFIRMED: &str = "committed on this node, but it stopped being the HA active node \
     before the peer confirmed the change: it may be lost (see kpbx ha status)";

/// Delivers a change's answer once its fate is known: `None` sends the
/// answer, `Some(why)` an error in its place.
pub type Answer = Box<dyn FnOnce(Option<String>)>;

/// An [`Answer`] for a control-socket client.
pub fn to_client(reply: Sender<crate::control::Reply>, answer: crate::control::Reply) -> Answer {
    Box::new(move |lost| {
        let _ = reply.try_send(match lost {
            None => answer,
            Some(why) => crate::control::Reply::error(crate::control::ErrorCode::Unavailable, why),
        });
    })
}

/// Taken before a request's handler runs ([`Before::answer`] after it).
pub struct Before {
    mark: crate::store::repl::WriteMark,
    clustered: bool,
}

impl Before {
    pub fn now(daemon: &Daemon) -> Before {
        Before {
            mark: crate::store::repl::WriteMark::now(),
            clustered: clustered(daemon),
        }
    }

    /// [`answer`] for what the handler did: whether it committed on this
    /// thread. A change made while this node was in no cluster (HA not
    /// running or without a cluster key) is answered at once, as while HA
    /// is off, even if the handler itself started HA (`ha configure`):
    /// settled against the new runtime's state, it got the "may be lost"
    /// error whenever the HA thread was quick enough to be in "init" or
    /// "pairing" by then.
    pub fn answer(self, daemon: &Daemon, send: Answer) {
        if !self.clustered {
            send(None);
            return;
        }
        answer(daemon, self.mark.wrote(), send);
    }
}

/// Whether this node runs HA in a cluster (the case [`settle`] judges).
fn clustered(daemon: &Daemon) -> bool {
    daemon.ha.borrow().sync_view(daemon.clock.now()).is_some()
}

/// Sends a reply now, or, for a request that wrote while the peer is in
/// sync, once the peer has stored what it wrote (or the bound passes).
pub fn answer(daemon: &Daemon, wrote: bool, send: Answer) {
    if !wrote {
        send(None);
        return;
    }
    let seq = daemon.store.repl_seq().unwrap_or(0);
    let mut s = daemon.sync.borrow_mut();
    if s.session.as_ref().is_some_and(|x| x.role == Role::Primary) {
        // Wake the writer before waiting.
        if let Some(n) = s.session.as_ref().and_then(|x| x.notify.as_ref()) {
            let _ = n.try_send(());
        }
    }
    if seq <= s.acks.acked() {
        drop(s);
        send(None);
        return;
    }
    if !s.acks.committed(seq, daemon.clock.now()) {
        s.waiting.push((seq, send));
        return;
    }
    s.unsure.push((seq, send));
    drop(s);
    let view = daemon.ha.borrow().sync_view(daemon.clock.now());
    settle(&mut daemon.sync.borrow_mut(), view);
}

/// Answers the commits the peer did not store: success once this node
/// knows itself the rightful holder (or HA is not running), or once the
/// peer acknowledged them after all; the "may be lost" error once this
/// node is not the active node. Until then they wait (a frozen active that
/// resumes waits a full out-of-service time, in which a peer that took over
/// is heard: `ha::Node::sure_holder`).
fn settle(s: &mut SyncRuntime, view: Option<super::ha::SyncView>) {
    if s.unsure.is_empty() {
        return;
    }
    let acked = s.acks.acked();
    for (seq, send) in std::mem::take(&mut s.unsure) {
        match view {
            _ if seq <= acked => send(None),
            None => send(None),
            Some(v) if v.sure => send(None),
            Some(v) if v.state != State::Active => {
                log::warn!(
                    "sync: transaction {seq} not confirmed by the peer and this node is no longer the active node"
                );
                send(Some(UNCONFIRMED.to_string()));
            }
            Some(_) => s.unsure.push((seq, send)),
        }
    }
}

/// Called when the timer of [`SyncRuntime::next_wait`] fires.
pub fn on_timer(daemon: &Daemon) {
    let now = daemon.clock.now();
    let mut s = daemon.sync.borrow_mut();
    if !s.acks.timeout(now).is_empty() {
        log::warn!("sync: the peer did not acknowledge within the bound: asynchronous mode");
        s.release();
    }
    if s.dial_at.is_some_and(|t| now >= t) {
        s.dial_at = None;
    }
}

/// A session's report.
pub fn on_report(daemon: &Daemon, ex: &Rc<LocalExecutor<'static>>, report: Report) {
    let current = |s: &SyncRuntime, id: u64| s.session.as_ref().is_some_and(|x| x.id == id);
    match report {
        Report::Accepted(stream) => {
            let view = daemon.ha.borrow().sync_view(daemon.clock.now());
            let mut s = daemon.sync.borrow_mut();
            match view.filter(|v| v.state == State::Active) {
                Some(v) => {
                    let id = s.next_id;
                    s.next_id += 1;
                    let (notify, woken) = smol::channel::bounded(1);
                    // A secondary that is active before it ever held this
                    // pairing's data takes the coordinator's first.
                    let join = (!v.coordinator && !joined(&s.data_dir, &v.key))
                        .then(|| s.data_dir.join("archive"));
                    let task = ex.spawn(primary(
                        stream,
                        v.key,
                        daemon.store.clone(),
                        s.tx.clone(),
                        id,
                        woken,
                        join,
                    ));
                    log::info!("sync: connection from {} (session {id})", v.remote);
                    s.pending = Some(Session {
                        id,
                        role: Role::Primary,
                        notify: Some(notify),
                        _task: task,
                    });
                }
                None => log::info!("sync: connection refused: this node is not active"),
            }
        }
        Report::Authenticated { id } => {
            let bound = daemon
                .ha
                .borrow()
                .sync_view(daemon.clock.now())
                .map(|v| v.ack_bound);
            let mut s = daemon.sync.borrow_mut();
            if s.pending.as_ref().is_some_and(|p| p.id == id) {
                s.end_session("replaced by a new connection", false);
                s.acks = Acks::new(bound.unwrap_or(Duration::from_secs(3)));
                s.session = s.pending.take();
            }
        }
        Report::Connected { id, seq } => {
            let mut s = daemon.sync.borrow_mut();
            if current(&s, id) {
                let last = daemon.store.repl_seq().unwrap_or(0);
                if let Some(v) = daemon.ha.borrow().sync_view(daemon.clock.now()) {
                    mark_joined(&s.data_dir, &v.key);
                }
                s.acks.connected(seq, last);
                s.peer_seq = Some(seq);
                log::info!(
                    "sync: secondary at {seq} of {last}: {}",
                    s.acks.mode().name()
                );
                s.release();
            }
        }
        Report::Acked { id, seq } => {
            let mut s = daemon.sync.borrow_mut();
            if current(&s, id) {
                let last = daemon.store.repl_seq().unwrap_or(0);
                let before = s.acks.mode();
                s.acks.ack(seq, last);
                if before != Mode::Sync && s.acks.mode() == Mode::Sync {
                    log::info!("sync: secondary caught up at {seq}: synchronous");
                }
                s.peer_seq = Some(seq);
                s.release();
            }
        }
        Report::PeerArchived { id, archived, dir } => {
            if current(&daemon.sync.borrow(), id) {
                let text = archive_text(&archived, &dir);
                log::warn!("sync: the peer {text}");
                daemon.sync.borrow_mut().last_archive = format!("peer {text}");
                note_archive(daemon, &format!("data sync: the peer {text}"));
            }
        }
        Report::PeerHead { id, seq } => {
            let mut s = daemon.sync.borrow_mut();
            if current(&s, id) {
                s.peer_seq = Some(seq);
            }
        }
        Report::Applied { id, seq, objects } => {
            let mut s = daemon.sync.borrow_mut();
            if current(&s, id) {
                s.peer_seq = Some(s.peer_seq.unwrap_or(0).max(seq));
                s.receiving_snapshot = false;
                if objects && s.regenerate_at.is_none() {
                    s.regenerate_at = Some(daemon.clock.now() + REGENERATE_EVERY);
                }
            }
        }
        Report::TookCoordinatorData { id } => {
            let view = daemon.ha.borrow().sync_view(daemon.clock.now());
            let s = daemon.sync.borrow();
            if current(&s, id)
                && let Some(v) = view
            {
                mark_joined(&s.data_dir, &v.key);
                let archive = s.last_archive.clone();
                drop(s);
                note_archive(
                    daemon,
                    &format!(
                        "data sync: joining the pairing, the active node took the coordinator's data; {archive}"
                    ),
                );
                super::after_takeover(daemon);
            }
        }
        Report::Archived { archived, dir } => {
            let text = archive_text(&archived, &dir);
            log::warn!("sync: this node {text}");
            daemon.sync.borrow_mut().last_archive = format!("this node {text}");
        }
        Report::Snapshot { id } => {
            let mut s = daemon.sync.borrow_mut();
            if current(&s, id) {
                s.receiving_snapshot = true;
            }
        }
        Report::Ended { id, why, rejected } => {
            let mut s = daemon.sync.borrow_mut();
            if rejected {
                s.rejected += 1;
                log::warn!("sync: rejected input from the peer: {why}");
            }
            if s.pending.as_ref().is_some_and(|p| p.id == id) {
                s.pending = None;
                log::info!("sync: connection {id} ended before it authenticated: {why}");
            }
            if current(&s, id) {
                s.last_error = why.clone();
                s.end_session(&why, false);
                if s.replica {
                    s.dial_at = Some(daemon.clock.now() + REDIAL);
                }
            }
        }
    }
}

/// The mark of the pairing whose history this node holds.
fn fingerprint(key: &Key) -> String {
    crate::auth::password::hex(ring::digest::digest(&ring::digest::SHA256, &key.0).as_ref())
}

fn joined(data_dir: &std::path::Path, key: &Key) -> bool {
    std::fs::read_to_string(data_dir.join("ha/synced")).is_ok_and(|t| t.trim() == fingerprint(key))
}

fn mark_joined(data_dir: &std::path::Path, key: &Key) {
    if joined(data_dir, key) {
        return;
    }
    if let Err(e) = std::fs::write(data_dir.join("ha/synced"), fingerprint(key) + "\n") {
        log::error!("sync: cannot write ha/synced: {e}");
    }
}

fn archive_text(a: &Archived, dir: &str) -> String {
    if a.count == 0 {
        format!("archived its store to {dir} (no transactions the active node lacks)")
    } else {
        format!(
            "archived {} transactions the active node never received (entries {}-{}) to {dir}",
            a.count, a.first, a.last
        )
    }
}

/// The audit entry of a divergence: written on the active node, so it
/// reaches the peer with the rest of the history.
fn note_archive(daemon: &Daemon, text: &str) {
    let origin = crate::model::Origin {
        user: "kpbxd-ha".to_string(),
        source: crate::model::Source::Console,
    };
    if let Err(e) = daemon.store.note(
        &origin,
        daemon.clock.wall(),
        crate::model::Kind::Ha,
        crate::model::HA_ID,
        text,
    ) {
        log::error!("sync: cannot audit the archive: {e}");
    }
}

/// Brings the channel in line with the HA state: listener, session role,
/// replica mark. Called by the loop after every event.
pub fn drive(daemon: &Daemon, ex: &Rc<LocalExecutor<'static>>) {
    let view = daemon.ha.borrow().sync_view(daemon.clock.now());
    let mut s = daemon.sync.borrow_mut();
    settle(&mut s, view);
    // A paired node that is not active is a replica.
    let replica = view.is_some_and(|v| matches!(v.state, State::Init | State::Passive));
    if replica != s.replica {
        s.replica = replica;
        daemon.store.set_replica(replica);
        log::info!(
            "sync: this node is {}",
            if replica {
                "a replica of the active node"
            } else {
                "writable"
            }
        );
        if !replica {
            drop(s);
            super::after_takeover(daemon);
            s = daemon.sync.borrow_mut();
        }
    }
    // Listener on the sync address while paired.
    let want_listen = view.map(|v| (v.local, v.remote));
    if s.listener.as_ref().map(|(a, _)| *a) != want_listen {
        s.listener = None;
        if let Some((local, remote)) = want_listen {
            match std::net::TcpListener::bind(SocketAddrV4::new(local, SYNC_PORT))
                .and_then(TcpListener::try_from)
            {
                Ok(l) => {
                    log::info!("sync: listening on {local}:{SYNC_PORT}");
                    let task = ex.spawn(accept_loop(l, remote, s.tx.clone()));
                    s.listener = Some(((local, remote), task));
                }
                Err(e) => {
                    // Retried at the next event (the address may come later).
                    log::debug!("sync: bind {local}:{SYNC_PORT}: {e}");
                }
            }
        }
    }
    // The session's role must match the node's.
    let want = view.and_then(|v| match v.state {
        State::Active if !v.peer_out_of_service => Some(Role::Primary),
        State::Passive if v.peer_holds => Some(Role::Secondary),
        _ => None,
    });
    if let Some(session) = &s.session
        && Some(session.role) != want
    {
        let stepped_down = session.role == Role::Primary;
        s.end_session("the node's HA state changed", stepped_down);
    }
    if want != Some(Role::Primary) {
        s.pending = None;
    }
    if let (Some(Role::Secondary), Some(v), None) = (want, view, &s.session)
        && s.dial_at.is_none()
    {
        let id = s.next_id;
        s.next_id += 1;
        let data_dir = s.data_dir.clone();
        let task = ex.spawn(secondary(
            v.local,
            v.remote,
            v.key,
            daemon.store.clone(),
            s.tx.clone(),
            id,
            data_dir,
        ));
        s.session = Some(Session {
            id,
            role: Role::Secondary,
            notify: None,
            _task: task,
        });
        // Dial again after this if the session ends.
    }
    // Wake the primary's writer when the log has grown (a thread's write,
    // say); every event would make it spin.
    let seq = daemon.store.repl_seq().unwrap_or(0);
    if seq != s.notified {
        s.notified = seq;
        if let Some(n) = s.session.as_ref().and_then(|x| x.notify.as_ref()) {
            let _ = n.try_send(());
        }
    }
    if s.regenerate_at.is_some_and(|t| daemon.clock.now() >= t) {
        s.regenerate_at = None;
        drop(s);
        super::after_replication(daemon);
    }
}

async fn accept_loop(listener: TcpListener, remote: Ipv4Addr, tx: Sender<Event>) {
    loop {
        match listener.accept().await {
            Ok((stream, SocketAddr::V4(from))) if *from.ip() == remote => {
                let _ = stream.set_nodelay(true);
                if tx
                    .send(Event::Sync(Report::Accepted(stream)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Ok((_, from)) => {
                log::warn!("sync: refused a connection from {from}: not the peer's sync address");
            }
            Err(e) => {
                log::warn!("sync: accept: {e}");
                smol::Timer::after(Duration::from_millis(100)).await;
            }
        }
    }
}

// ------------------------------------------------------------- the channel

/// Reads whole frames from the stream.
struct Reader {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    async fn next(&mut self, open: &mut Sealer, limit: Duration) -> Outcome<Msg> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(n) = Sealer::frame_len(&self.buf)?
                && self.buf.len() >= n
            {
                let msg = open.open(&self.buf[..n])?;
                self.buf.drain(..n);
                return Ok(msg);
            }
            let mut chunk = [0u8; 64 * 1024];
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let read =
                smol::future::or(async { Some(self.stream.read(&mut chunk).await) }, async {
                    smol::Timer::after(left).await;
                    None
                })
                .await;
            match read {
                None => return Err(Fail::Io(format!("peer silent for {} s", limit.as_secs()))),
                Some(Ok(0)) => {
                    return Err(if self.buf.is_empty() {
                        Fail::Io("connection closed by the peer".into())
                    } else {
                        Fail::Rejected("connection closed inside a frame (truncated)".into())
                    });
                }
                Some(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
                Some(Err(e)) => return Err(Fail::Io(e.to_string())),
            }
        }
    }
}

async fn send(stream: &mut TcpStream, seal: &mut Sealer, msg: &Msg) -> Outcome<()> {
    let frame = seal
        .seal(msg)
        .map_err(|e| Fail::Io(format!("seal: {e:?}")))?;
    with_limit(IDLE, stream.write_all(&frame))
        .await?
        .map_err(|e| Fail::Io(e.to_string()))
}

async fn with_limit<T>(limit: Duration, f: impl std::future::Future<Output = T>) -> Outcome<T> {
    smol::future::or(async { Ok(f.await) }, async {
        smol::Timer::after(limit).await;
        Err(Fail::Io(format!("timed out after {} s", limit.as_secs())))
    })
    .await
}

fn random16() -> Outcome<[u8; 16]> {
    use ring::rand::SecureRandom;
    let mut r = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut r)
        .map_err(|_| Fail::Io("no randomness".into()))?;
    Ok(r)
}

/// Both sides send their random; returns the peer's.
async fn exchange_randoms(stream: &mut TcpStream, mine: &[u8; 16]) -> Outcome<[u8; 16]> {
    with_limit(HANDSHAKE, stream.write_all(mine))
        .await?
        .map_err(|e| Fail::Io(e.to_string()))?;
    let mut theirs = [0u8; 16];
    with_limit(HANDSHAKE, stream.read_exact(&mut theirs))
        .await?
        .map_err(|e| Fail::Io(format!("handshake: {e}")))?;
    Ok(theirs)
}

fn store_err(e: impl std::fmt::Display) -> Fail {
    Fail::Store(e.to_string())
}

async fn report(tx: &Sender<Event>, r: Report) {
    let _ = tx.send(Event::Sync(r)).await;
}

async fn ended(tx: &Sender<Event>, id: u64, result: Outcome<()>) {
    let (why, rejected) = match result {
        Ok(()) => ("closed".to_string(), false),
        Err(f) => (f.text().to_string(), matches!(f, Fail::Rejected(_))),
    };
    report(tx, Report::Ended { id, why, rejected }).await;
}

// ------------------------------------------------------------- primary

async fn primary(
    stream: TcpStream,
    key: Key,
    store: Arc<Store>,
    tx: Sender<Event>,
    id: u64,
    woken: Receiver<()>,
    join: Option<PathBuf>,
) {
    let result = primary_session(stream, key, &store, &tx, id, woken, join).await;
    ended(&tx, id, result).await;
}

async fn primary_session(
    mut stream: TcpStream,
    key: Key,
    store: &Arc<Store>,
    tx: &Sender<Event>,
    id: u64,
    woken: Receiver<()>,
    join: Option<PathBuf>,
) -> Outcome<()> {
    let mine = random16()?;
    let theirs = exchange_randoms(&mut stream, &mine).await?;
    let session = core::session_key(&key, &mine, &theirs);
    let mut seal = Sealer::new(&session, Direction::ToSecondary)?;
    let mut open = Sealer::new(&session, Direction::ToPrimary)?;
    let mut reader = Reader {
        stream: stream.clone(),
        buf: Vec::new(),
    };
    let Msg::Position { seq, hash } = reader.next(&mut open, HANDSHAKE).await? else {
        return Err(Fail::Rejected("expected the secondary's position".into()));
    };
    report(tx, Report::Authenticated { id }).await;
    let hash_at = |n: u64| store.repl_hash_at(n).ok().flatten();
    if let Some(root) = join {
        log::info!("sync: joining the pairing: taking the coordinator's data first");
        send(&mut stream, &mut seal, &Msg::Reverse).await?;
        // No change may slip in between the archive and the snapshot.
        store.set_replica(true);
        let taken = async {
            let common = if hash_at(seq) == Some(hash) { seq } else { 0 };
            let (archived, dir) = archive(store, &root, "joined", common).await?;
            report(tx, Report::Archived { archived, dir }).await;
            receive_snapshot(&mut reader, &mut open, store).await
        }
        .await;
        store.set_replica(false);
        let at = taken?;
        report(
            tx,
            Report::Applied {
                id,
                seq: at,
                objects: true,
            },
        )
        .await;
        report(tx, Report::TookCoordinatorData { id }).await;
    }
    let last = store.repl_seq().map_err(store_err)?;
    let mut next = match core::plan(last, &hash_at, seq, hash) {
        Plan::Stream { from } => from,
        Plan::Restart(restart) => {
            log::info!("sync: secondary at {seq} cannot follow the log: {restart:?}");
            send(&mut stream, &mut seal, &Msg::Restart(restart)).await?;
            if !matches!(restart, Restart::Snapshot) {
                let Msg::History { first, hashes } = reader.next(&mut open, HANDSHAKE).await?
                else {
                    return Err(Fail::Rejected("expected the secondary's history".into()));
                };
                let common = core::common(first, &hashes, &hash_at);
                send(&mut stream, &mut seal, &Msg::Common { seq: common }).await?;
            }
            // The secondary copies its store first; that may take a while.
            let Msg::Archived {
                count,
                first,
                last,
                dir,
            } = reader.next(&mut open, ARCHIVE_LIMIT).await?
            else {
                return Err(Fail::Rejected("expected the secondary's archive".into()));
            };
            if count > 0 {
                report(
                    tx,
                    Report::PeerArchived {
                        id,
                        archived: Archived { count, first, last },
                        dir,
                    },
                )
                .await;
            }
            send_snapshot(&mut stream, &mut seal, store).await? + 1
        }
    };
    report(tx, Report::Connected { id, seq: next - 1 }).await;

    let acks = async {
        loop {
            match reader.next(&mut open, IDLE).await? {
                Msg::Ack { seq } => report(tx, Report::Acked { id, seq }).await,
                _ => return Err(Fail::Rejected("expected an acknowledgement".into())),
            }
        }
    };
    let entries = async {
        loop {
            let batch = store
                .repl_entries_raw(next, BATCH_BYTES)
                .map_err(store_err)?
                .ok_or_else(|| Fail::Io(format!("entry {next} left the log before it was sent")))?;
            let Some(&(last, _)) = batch.last() else {
                // Idle: wait for a commit; a keepalive only when none came.
                if with_limit(KEEPALIVE, woken.recv()).await.is_err() {
                    let head = store.repl_seq().map_err(store_err)?;
                    send(&mut stream, &mut seal, &Msg::Head { seq: head }).await?;
                }
                continue;
            };
            next = last + 1;
            match <[_; 1]>::try_from(batch) {
                Ok([(_, big)]) if big.len() > BATCH_BYTES => {
                    // One entry larger than a frame: in pieces.
                    let total = big.len() as u64;
                    for piece in big.chunks(BATCH_BYTES) {
                        let bytes = piece.to_vec();
                        send(&mut stream, &mut seal, &Msg::Fragment { total, bytes }).await?;
                    }
                }
                Ok([(_, one)]) => send(&mut stream, &mut seal, &Msg::Entries(vec![one])).await?,
                Err(batch) => {
                    let frames = batch.into_iter().map(|(_, b)| b).collect();
                    send(&mut stream, &mut seal, &Msg::Entries(frames)).await?;
                }
            }
        }
    };
    smol::future::or(acks, entries).await
}

/// Sends a snapshot; returns the sequence number it stands at.
async fn send_snapshot(
    stream: &mut TcpStream,
    seal: &mut Sealer,
    store: &Arc<Store>,
) -> Outcome<u64> {
    enum Part {
        Begin(u64, [u8; 32]),
        Chunk(Vec<Item>),
    }
    let (parts, recv) = smol::channel::bounded::<Part>(2);
    let s = store.clone();
    let producer = smol::unblock(move || {
        let mut started = false;
        let position = s.snapshot_items(|pos, chunk| {
            if !started {
                started = true;
                if parts.send_blocking(Part::Begin(pos.0, pos.1)).is_err() {
                    return false;
                }
            }
            chunk.is_empty() || parts.send_blocking(Part::Chunk(chunk)).is_ok()
        });
        drop(parts);
        position
    });
    let mut items = 0u64;
    while let Ok(part) = recv.recv().await {
        let msg = match part {
            Part::Begin(seq, hash) => Msg::SnapshotBegin { seq, hash },
            Part::Chunk(chunk) => {
                items += chunk.len() as u64;
                Msg::SnapshotChunk(
                    chunk
                        .into_iter()
                        .map(|(d, k, v)| (core::db_tag(d), k, v))
                        .collect(),
                )
            }
        };
        send(stream, seal, &msg).await?;
    }
    let (seq, _) = producer.await.map_err(store_err)?;
    send(stream, seal, &Msg::SnapshotEnd { items }).await?;
    log::info!("sync: sent a snapshot at {seq} ({items} records)");
    Ok(seq)
}

// ------------------------------------------------------------- secondary

async fn secondary(
    local: Ipv4Addr,
    remote: Ipv4Addr,
    key: Key,
    store: Arc<Store>,
    tx: Sender<Event>,
    id: u64,
    data_dir: PathBuf,
) {
    let result = secondary_session(local, remote, key, &store, &tx, id, &data_dir).await;
    ended(&tx, id, result).await;
}

async fn dial(local: Ipv4Addr, remote: Ipv4Addr) -> Outcome<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let io = |e: std::io::Error| Fail::Io(format!("connect {remote}:{SYNC_PORT}: {e}"));
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).map_err(io)?;
    sock.bind(&SocketAddrV4::new(local, 0).into()).map_err(io)?;
    sock.set_nonblocking(true).map_err(io)?;
    match sock.connect(&SocketAddrV4::new(remote, SYNC_PORT).into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
        Err(e) => return Err(io(e)),
    }
    let std_stream: std::net::TcpStream = sock.into();
    let a = smol::Async::new(std_stream).map_err(io)?;
    with_limit(HANDSHAKE, a.writable()).await?.map_err(io)?;
    if let Some(e) = a.get_ref().take_error().map_err(io)? {
        return Err(io(e));
    }
    let stream = TcpStream::from(a);
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

#[allow(clippy::too_many_arguments)]
async fn secondary_session(
    local: Ipv4Addr,
    remote: Ipv4Addr,
    key: Key,
    store: &Arc<Store>,
    tx: &Sender<Event>,
    id: u64,
    data_dir: &std::path::Path,
) -> Outcome<()> {
    let mut stream = dial(local, remote).await?;
    let mine = random16()?;
    let theirs = exchange_randoms(&mut stream, &mine).await?;
    let session = core::session_key(&key, &theirs, &mine);
    let mut seal = Sealer::new(&session, Direction::ToPrimary)?;
    let mut open = Sealer::new(&session, Direction::ToSecondary)?;
    let mut reader = Reader {
        stream: stream.clone(),
        buf: Vec::new(),
    };
    let (seq, hash) = store.repl_head().map_err(store_err)?;
    send(&mut stream, &mut seal, &Msg::Position { seq, hash }).await?;
    log::info!("sync: following the active node {remote} from {seq}");
    let mut pieces: Vec<u8> = Vec::new();
    let mut first_ack = true;
    loop {
        let msg = match reader.next(&mut open, IDLE).await? {
            Msg::Fragment { total, bytes } => {
                if total > core::MAX_ENTRY || (pieces.len() + bytes.len()) as u64 > total {
                    return Err(Fail::Rejected(format!(
                        "fragment of {} bytes past an entry of {total}",
                        bytes.len()
                    )));
                }
                pieces.extend_from_slice(&bytes);
                if (pieces.len() as u64) < total {
                    continue;
                }
                Msg::Entries(vec![std::mem::take(&mut pieces)])
            }
            _ if !pieces.is_empty() => {
                return Err(Fail::Rejected(
                    "an entry's fragments were interrupted".into(),
                ));
            }
            msg => msg,
        };
        match msg {
            Msg::Head { seq: head } => {
                report(tx, Report::PeerHead { id, seq: head }).await;
                let last = store.repl_seq().map_err(store_err)?;
                mark_first_ack(&mut first_ack, data_dir, &key);
                send(&mut stream, &mut seal, &Msg::Ack { seq: last }).await?;
            }
            Msg::Reverse => {
                log::info!("sync: the active node joins the pairing: sending it this node's data");
                send_snapshot(&mut stream, &mut seal, store).await?;
            }
            Msg::Entries(raw) if raw.is_empty() => {
                return Err(Fail::Rejected("an empty batch of entries".into()));
            }
            Msg::Entries(raw) => {
                // Decoding and applying may take a while: off the loop.
                let s = store.clone();
                let (last, objects) = smol::unblock(move || {
                    let mut records = Vec::with_capacity(raw.len());
                    for b in &raw {
                        records.push(
                            ReplRecord::decode(b)
                                .map_err(|e| Fail::Rejected(format!("undecodable entry: {e}")))?,
                        );
                    }
                    let objects = records.iter().any(ReplRecord::feeds_provisioning);
                    let last = records.last().map_or(0, ReplRecord::seq);
                    s.apply_batch(&records)
                        .map_err(|e| Fail::Rejected(format!("entries refused: {e}")))?;
                    Ok::<_, Fail>((last, objects))
                })
                .await?;
                report(
                    tx,
                    Report::Applied {
                        id,
                        seq: last,
                        objects,
                    },
                )
                .await;
                mark_first_ack(&mut first_ack, data_dir, &key);
                send(&mut stream, &mut seal, &Msg::Ack { seq: last }).await?;
            }
            Msg::Restart(restart) => {
                let common = match restart {
                    Restart::Snapshot => store.repl_seq().map_err(store_err)?,
                    Restart::Diverged { .. } | Restart::Ahead { .. } => {
                        let s = store.clone();
                        let (first, hashes) = smol::unblock(move || s.repl_hashes())
                            .await
                            .map_err(store_err)?;
                        send(&mut stream, &mut seal, &Msg::History { first, hashes }).await?;
                        let Msg::Common { seq } = reader.next(&mut open, HANDSHAKE).await? else {
                            return Err(Fail::Rejected("expected the common point".into()));
                        };
                        seq
                    }
                };
                let why = match restart {
                    Restart::Snapshot => "behind",
                    Restart::Diverged { .. } => "diverged",
                    Restart::Ahead { .. } => "ahead",
                };
                let (archived, dir) =
                    archive(store, &data_dir.join("archive"), why, common).await?;
                send(
                    &mut stream,
                    &mut seal,
                    &Msg::Archived {
                        count: archived.count,
                        first: archived.first,
                        last: archived.last,
                        dir: dir.clone(),
                    },
                )
                .await?;
                report(tx, Report::Archived { archived, dir }).await;
                report(tx, Report::Snapshot { id }).await;
                let seq = receive_snapshot(&mut reader, &mut open, store).await?;
                report(
                    tx,
                    Report::Applied {
                        id,
                        seq,
                        objects: true,
                    },
                )
                .await;
                mark_first_ack(&mut first_ack, data_dir, &key);
                send(&mut stream, &mut seal, &Msg::Ack { seq }).await?;
            }
            _ => return Err(Fail::Rejected("unexpected message from the primary".into())),
        }
    }
}

/// Saves this store before it is replaced (see `Store::archive_to`) in
/// `root/<time>-<why>`; returns what was archived and where.
async fn archive(
    store: &Arc<Store>,
    root: &std::path::Path,
    why: &str,
    common: u64,
) -> Outcome<(Archived, String)> {
    let name = format!(
        "{}-{why}",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3f")
    );
    let dir = root.join(name);
    // Room first: the oldest go before the copy is made (a full flash is when it matters
    // most), and so the new archive is never the one removed, whatever the clock says
    // (a box that booted without its time names it 1970...).
    let r = root.to_path_buf();
    smol::unblock(move || prune_archives(&r, ARCHIVES_KEPT - 1)).await;
    let s = store.clone();
    let d = dir.clone();
    let archived = smol::unblock(move || {
        let archived = s.archive_to(&d, common);
        if archived.is_err() {
            // A partial copy (a full disk) would count as an archive and push out a
            // whole one.
            let _ = std::fs::remove_dir_all(&d);
        }
        archived
    })
    .await
    .map_err(store_err)?;
    Ok((archived, dir.display().to_string()))
}

/// Archives kept in `data_dir/archive/`: each is a copy of the store, so on an
/// appliance's flash they must not pile up over the years of failovers.
const ARCHIVES_KEPT: usize = 5;

/// Removes all but the newest `keep` archives under `root`. Only directories named
/// like [`archive`]'s (`<YYYYmmddTHHMMSS.fff>-<why>`, so that names sort by time)
/// are counted or touched. One that cannot be removed is logged and skipped, so it
/// does not stop the others going. Returns what it removed (and logged).
fn prune_archives(root: &std::path::Path, keep: usize) -> Vec<std::path::PathBuf> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            log::warn!("sync: cannot list the archives in {}: {e}", root.display());
            return Vec::new();
        }
    };
    let mut dirs: Vec<std::path::PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                let b = n.as_bytes();
                b.len() > 20
                    && b[..8].iter().all(u8::is_ascii_digit)
                    && b[8] == b'T'
                    && b[19] == b'-'
            })
        })
        .collect();
    dirs.sort();
    let excess = dirs.len().saturating_sub(keep);
    let mut gone = Vec::new();
    for d in dirs.into_iter().take(excess) {
        match std::fs::remove_dir_all(&d) {
            Ok(()) => {
                log::info!("sync: removed the old archive {}", d.display());
                gone.push(d);
            }
            Err(e) => log::warn!("sync: cannot remove the old archive {}: {e}", d.display()),
        }
    }
    gone
}

/// Before the secondary's first acknowledgement: from then on it holds
/// this pairing's history, marked in `ha/synced` at once (until then a
/// node that is not the coordinator would take the coordinator's data if
/// it became active, so the mark must not wait for anything).
fn mark_first_ack(first_ack: &mut bool, data_dir: &std::path::Path, key: &Key) {
    if std::mem::take(first_ack) {
        mark_joined(data_dir, key);
    }
}

/// Receives a snapshot into the store in one transaction; returns where it
/// stands. Anything short of a complete, well-formed transfer changes
/// nothing.
async fn receive_snapshot(
    reader: &mut Reader,
    open: &mut Sealer,
    store: &Arc<Store>,
) -> Outcome<u64> {
    let Msg::SnapshotBegin { seq, hash } = reader.next(open, IDLE).await? else {
        return Err(Fail::Rejected("expected a snapshot".into()));
    };
    /// `Ok(None)`: the transfer is complete with this many records.
    type Part = Result<Option<Vec<Item>>, String>;
    let (parts, recv) = smol::channel::bounded::<Part>(2);
    let s = store.clone();
    let install = smol::unblock(move || {
        s.install_snapshot((seq, hash), || match recv.recv_blocking() {
            Ok(part) => part,
            Err(_) => Err("the transfer ended early".into()),
        })
    });
    let mut items = 0u64;
    let fed: Outcome<()> = async {
        loop {
            match reader.next(open, IDLE).await? {
                Msg::SnapshotChunk(chunk) => {
                    let mut out = Vec::with_capacity(chunk.len());
                    for (tag, k, v) in chunk {
                        let d = core::db_of_tag(tag)
                            .ok_or_else(|| Fail::Rejected(format!("unknown database {tag}")))?;
                        out.push((d, k, v));
                    }
                    items += out.len() as u64;
                    if parts.send(Ok(Some(out))).await.is_err() {
                        return Err(Fail::Store("snapshot install stopped".into()));
                    }
                }
                Msg::SnapshotEnd { items: sent } if sent == items => {
                    let _ = parts.send(Ok(None)).await;
                    return Ok(());
                }
                Msg::SnapshotEnd { items: sent } => {
                    return Err(Fail::Rejected(format!(
                        "snapshot of {sent} records, {items} received"
                    )));
                }
                _ => return Err(Fail::Rejected("unexpected message in a snapshot".into())),
            }
        }
    }
    .await;
    if let Err(f) = fed {
        let _ = parts.send(Err(f.text().to_string())).await;
        drop(parts);
        let _ = install.await;
        return Err(f);
    }
    drop(parts);
    let n = install.await.map_err(store_err)?;
    log::info!("sync: installed a snapshot at {seq} ({n} records)");
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_archives_are_removed_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let names = [
            "20261101T100000.000-diverged",
            "20261102T100000.000-behind",
            "20261103T100000.000-ahead",
            "20261104T100000.000-joined",
        ];
        for n in names {
            std::fs::create_dir_all(root.path().join(n).join("inner")).unwrap();
        }
        // Not archives: kept whatever their age.
        std::fs::create_dir(root.path().join("notes")).unwrap();
        std::fs::write(root.path().join("20261001T100000.000-file"), b"x").unwrap();
        let gone = prune_archives(root.path(), 2);
        assert_eq!(
            gone,
            vec![root.path().join(names[0]), root.path().join(names[1])]
        );
        let mut left: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["20261001T100000.000-file", names[2], names[3], "notes"]
        );
        assert!(prune_archives(root.path(), 2).is_empty());
        // Before the first archive there is no directory: nothing to do, no error.
        assert!(prune_archives(&root.path().join("absent"), 2).is_empty());
    }
}
