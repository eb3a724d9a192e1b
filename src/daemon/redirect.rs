//! Redirection-server registrations: the adapter between the configuration,
//! the durable job table and the vendors' services.
//!
//! ```text
//!   commit touching devices / redirect servers ─┐
//!   daemon start ───────────────────────────────┼─> reconcile: plan::reconcile per MAC,
//!                                               │   one data_write (Table::RedirectJob)
//!   every event (2 s ticker included) ─> drive: first due job ─spawn─> flow::perform
//!                                                 (HTTPS on the loop, async)
//!   Event::Redirect(Done) <───────────────────────────────────────────────┘
//!     └─> finish: plan::finish + plan::reconcile in one data_write, then drive again
//! ```
//!
//! Invariants:
//! - One operation in flight at a time, so a MAC is never worked on twice
//!   at once; its success is recorded in the same transaction that removes
//!   the operation, so a completed operation is not repeated.
//! - The task only talks HTTPS and sends its outcome back; the loop alone
//!   reads and writes the store.
//! - Credentials go to the service and nowhere else: not in logs, errors or
//!   the job table (which holds server names and URLs only).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, ControlFlow};
use std::rc::Rc;
use std::time::Duration;

use smol::LocalExecutor;
use smol::channel::Sender;

use crate::clock::{Clock, WallTime};
use crate::control::{RedirectView, Reply};
use crate::http::client::HttpsClient;
use crate::model::{Kind, Mac, Object, ObjectRef, RedirectServer};
use crate::redirect::flow::{self, Context, Session};
use crate::redirect::plan::{self, Desired, JobState};
use crate::redirect::{Failure, Op, Target};
use crate::store::data::{Order, Table};
use crate::store::{Store, StoreError};

use super::{Daemon, Event};

/// Deadline of one request to a vendor's service.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The outcome of one operation, sent back to the loop with the session
/// it borrowed.
pub struct Done {
    mac: Mac,
    op: Op,
    outcome: Result<(), Failure>,
    session: Session,
    warnings: Vec<String>,
}

/// State owned by the loop.
pub struct Runtime {
    tx: Sender<Event>,
    client: Option<HttpsClient>,
    in_flight: Option<Mac>,
    /// What the APIs remember between operations (SRAPS setting uuid and
    /// clock offset, YMCS tokens); lent to the operation in flight.
    session: Session,
    /// Nothing can be due before this time (the earliest next attempt seen
    /// by the last scan); `None`: scan. Every write of the job table resets
    /// it, so the loop does not decode the table after every event.
    idle_until: Option<WallTime>,
}

impl Runtime {
    pub fn new(tx: Sender<Event>) -> Runtime {
        Runtime {
            tx,
            client: None,
            in_flight: None,
            session: Session::default(),
            idle_until: None,
        }
    }
}

/// What the configuration says: each MAC's wish and its server.
struct Wanted {
    desired: BTreeMap<Mac, Desired>,
    /// The device's redirection server, by MAC.
    device_server: BTreeMap<Mac, String>,
    /// Device ids to MAC.
    device_ids: BTreeMap<String, Mac>,
    servers: BTreeMap<String, RedirectServer>,
}

fn wanted(store: &Store) -> Result<Wanted, StoreError> {
    let servers: BTreeMap<String, RedirectServer> = store
        .list(Kind::RedirectServer)?
        .into_iter()
        .filter_map(|o| match o {
            Object::RedirectServer(s) => Some((s.name.clone(), s)),
            _ => None,
        })
        .collect();
    let mut w = Wanted {
        desired: BTreeMap::new(),
        device_server: BTreeMap::new(),
        device_ids: BTreeMap::new(),
        servers,
    };
    for object in store.list(Kind::Device)? {
        let Object::Device(d) = object else { continue };
        w.device_ids.insert(d.mac.to_string(), d.mac);
        let Some(name) = &d.redirect_server else {
            continue;
        };
        w.device_server.insert(d.mac, name.clone());
        let desired = match w.servers.get(name) {
            Some(s) if s.enabled => Desired::Registered(Target {
                server: s.name.clone(),
                brand: s.brand,
                url: s.url.clone(),
            }),
            Some(_) => Desired::Hold,
            None => Desired::Nothing,
        };
        w.desired.insert(d.mac, desired);
    }
    Ok(w)
}

fn all() -> (Bound<&'static [u8]>, Bound<&'static [u8]>) {
    (Bound::Unbounded, Bound::Unbounded)
}

fn mac_of_key(key: &[u8]) -> Option<Mac> {
    std::str::from_utf8(key)
        .ok()
        .and_then(|k| Mac::parse(k).ok())
}

fn load(bytes: Option<Vec<u8>>, mac: &Mac) -> JobState {
    match bytes.map(|b| plan::decode(&b)) {
        None => JobState::default(),
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            log::warn!("redirect: record of {mac} is unreadable ({e}); starting it afresh");
            JobState::default()
        }
    }
}

/// Every record and every configured device: the MACs to look at.
fn known_macs(store: &Store, w: &Wanted) -> Result<BTreeSet<Mac>, StoreError> {
    let mut macs: BTreeSet<Mac> = w.desired.keys().copied().collect();
    store.data_scan(Table::RedirectJob, all(), Order::Ascending, |k, _| {
        if let Some(mac) = mac_of_key(k) {
            macs.insert(mac);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(macs)
}

/// Plans the operations of every MAC against the configuration. `touched`:
/// the objects of the commit that just happened (their parked operations
/// run again).
pub fn reconcile(daemon: &Daemon, touched: &[ObjectRef]) -> Result<(), StoreError> {
    let w = wanted(&daemon.store)?;
    let now = daemon.clock.wall();
    let touched_servers: BTreeSet<&str> = touched
        .iter()
        .filter(|r| r.kind == Kind::RedirectServer)
        .map(|r| r.id.as_str())
        .collect();
    let touched_macs: BTreeSet<Mac> = touched
        .iter()
        .filter(|r| r.kind == Kind::Device)
        .filter_map(|r| w.device_ids.get(&r.id).copied())
        .collect();
    let macs = known_macs(&daemon.store, &w)?;
    let mut planned = 0;
    daemon.store.data_write(|t| {
        for mac in &macs {
            let key = plan::key(mac);
            let old = load(t.get(Table::RedirectJob, &key)?, mac);
            let desired = w.desired.get(mac).cloned().unwrap_or(Desired::Nothing);
            let on_touched = |name: Option<&str>| name.is_some_and(|n| touched_servers.contains(n));
            let rearm = touched_macs.contains(mac)
                || on_touched(w.device_server.get(mac).map(String::as_str))
                || on_touched(old.ops.first().map(|op| op.target().server.as_str()));
            let new = plan::reconcile(old.clone(), &desired, rearm, now);
            if new != old {
                if new.ops != old.ops {
                    planned += 1;
                }
                if new.is_empty() {
                    t.delete(Table::RedirectJob, &key)?;
                } else {
                    t.put(Table::RedirectJob, &key, &plan::encode(&new))?;
                }
            }
        }
        Ok(())
    })?;
    daemon.redirect.borrow_mut().idle_until = None;
    if planned > 0 {
        log::info!("redirect: {planned} devices have new redirection work");
    }
    Ok(())
}

/// Starts the first due operation, if none is in flight.
pub fn drive(daemon: &Daemon, ex: &Rc<LocalExecutor<'static>>) {
    // A deleted server's operations are dropped one by one; bounded.
    for _ in 0..64 {
        match start_next(daemon, ex) {
            Ok(true) => continue,
            Ok(false) => return,
            Err(e) => {
                log::error!("redirect: {e}");
                return;
            }
        }
    }
}

/// `Ok(true)`: look again (an operation was dropped without a request).
fn start_next(daemon: &Daemon, ex: &Rc<LocalExecutor<'static>>) -> Result<bool, StoreError> {
    let now = daemon.clock.wall();
    {
        let rt = daemon.redirect.borrow();
        let idle = rt
            .idle_until
            .is_some_and(|t| now.as_unix_micros() < t.as_unix_micros());
        if rt.in_flight.is_some() || idle {
            return Ok(false);
        }
    }
    let servers = wanted(&daemon.store)?.servers;
    let mut found = None;
    // Far enough to mean "until something changes".
    let mut earliest = WallTime::from_unix_micros(i64::MAX);
    daemon
        .store
        .data_scan(Table::RedirectJob, all(), Order::Ascending, |k, v| {
            let (Some(mac), Ok(state)) = (mac_of_key(k), plan::decode(v)) else {
                return Ok(ControlFlow::Continue(()));
            };
            let (Some(op), Some(next)) = (state.ops.first(), state.next_attempt) else {
                return Ok(ControlFlow::Continue(()));
            };
            match servers.get(&op.target().server) {
                // A disabled server keeps its work and does nothing.
                Some(s) if !s.enabled => Ok(ControlFlow::Continue(())),
                _ if !state.is_due(now) => {
                    if next.as_unix_micros() < earliest.as_unix_micros() {
                        earliest = next;
                    }
                    Ok(ControlFlow::Continue(()))
                }
                s => {
                    found = Some((mac, op.clone(), s.cloned()));
                    Ok(ControlFlow::Break(()))
                }
            }
        })?;
    let Some((mac, op, server)) = found else {
        daemon.redirect.borrow_mut().idle_until = Some(earliest);
        return Ok(false);
    };
    let Some(server) = server else {
        abandon(daemon, &mac, &op, now)?;
        return Ok(true);
    };
    let client = {
        let mut rt = daemon.redirect.borrow_mut();
        if rt.client.is_none() {
            match HttpsClient::from_ca_file(&daemon.config.ca_bundle, REQUEST_TIMEOUT) {
                Ok(c) => rt.client = Some(c),
                Err(e) => {
                    drop(rt);
                    let outcome = Err(Failure::Unreachable(format!("ca_bundle: {e}")));
                    record(daemon, &mac, &op, &outcome)?;
                    return Ok(false);
                }
            }
        }
        rt.in_flight = Some(mac);
        rt.client.clone()
    };
    let Some(client) = client else {
        return Ok(false);
    };
    log::info!(
        "redirect: {} {mac} on {} ({})",
        op.verb(),
        server.name,
        server.brand.as_str()
    );
    let (tx, mut session) = {
        let mut rt = daemon.redirect.borrow_mut();
        (rt.tx.clone(), std::mem::take(&mut rt.session))
    };
    let endpoints = daemon.config.redirect_endpoints.clone();
    let now_ms = u64::try_from(now.as_unix_micros() / 1000).unwrap_or(0);
    let seed = nonce_seed();
    ex.spawn(async move {
        let mut n = 0u64;
        let mut nonce = || {
            n += 1;
            format!("{seed:016x}{n:016x}")
        };
        let mut cx = Context {
            endpoints: &endpoints,
            server: &server,
            now_ms,
            nonce: &mut nonce,
            session: &mut session,
            warnings: Vec::new(),
        };
        let outcome = flow::perform(&client, &mut cx, &op, &mac).await;
        let warnings = cx.warnings;
        let done = Done {
            mac,
            op,
            outcome,
            session,
            warnings,
        };
        let _ = tx.send(Event::Redirect(done)).await;
    })
    .detach();
    Ok(false)
}

/// Random bits for nonces (uniqueness, not secrecy, is what counts).
fn nonce_seed() -> u64 {
    use std::io::Read as _;
    let mut b = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    match random {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    }
}

/// The operation's server is gone: nothing can be done on its service.
fn abandon(daemon: &Daemon, mac: &Mac, op: &Op, now: WallTime) -> Result<(), StoreError> {
    log::warn!(
        "redirect: {} {mac} dropped: redirection server {} no longer exists",
        op.verb(),
        op.target().server
    );
    let w = wanted(&daemon.store)?;
    daemon.redirect.borrow_mut().idle_until = None;
    daemon.store.data_write(|t| {
        let key = plan::key(mac);
        let mut s = load(t.get(Table::RedirectJob, &key)?, mac);
        if s.ops.first() == Some(op) {
            s.ops.remove(0);
            if matches!(op, Op::Deregister(_)) {
                s.registered = None;
            }
            s.last_attempt = Some(now);
            s.last_error = Some(format!(
                "could not {} on {}: the redirection server was deleted",
                op.verb(),
                op.target().server
            ));
            s.next_attempt = (!s.ops.is_empty()).then_some(now);
        }
        let desired = w.desired.get(mac).cloned().unwrap_or(Desired::Nothing);
        let s = plan::reconcile(s, &desired, false, now);
        if s.is_empty() {
            t.delete(Table::RedirectJob, &key)?;
        } else {
            t.put(Table::RedirectJob, &key, &plan::encode(&s))?;
        }
        Ok(())
    })
}

/// Records an outcome and plans what follows, in one transaction.
fn record(
    daemon: &Daemon,
    mac: &Mac,
    op: &Op,
    outcome: &Result<(), Failure>,
) -> Result<(), StoreError> {
    let now = daemon.clock.wall();
    let w = wanted(&daemon.store)?;
    daemon.redirect.borrow_mut().idle_until = None;
    daemon.store.data_write(|t| {
        let key = plan::key(mac);
        let old = load(t.get(Table::RedirectJob, &key)?, mac);
        let s = plan::finish(old, op, outcome, now);
        let desired = w.desired.get(mac).cloned().unwrap_or(Desired::Nothing);
        let s = plan::reconcile(s, &desired, false, now);
        if s.is_empty() {
            t.delete(Table::RedirectJob, &key)?;
        } else {
            t.put(Table::RedirectJob, &key, &plan::encode(&s))?;
        }
        Ok(())
    })
}

/// An operation finished.
pub fn on_done(daemon: &Daemon, done: Done) {
    let Done {
        mac,
        op,
        outcome,
        session,
        warnings,
    } = done;
    {
        let mut rt = daemon.redirect.borrow_mut();
        rt.in_flight = None;
        rt.session = session;
    }
    for w in warnings {
        log::warn!(
            "redirect: {} {mac} on {}: {w}",
            op.verb(),
            op.target().server
        );
    }
    match &outcome {
        Ok(()) => log::info!(
            "redirect: {} {mac} on {}: done",
            op.verb(),
            op.target().server
        ),
        Err(f) => log::warn!(
            "redirect: {} {mac} on {}: {f}",
            op.verb(),
            op.target().server
        ),
    }
    if let Err(e) = record(daemon, &mac, &op, &outcome) {
        log::error!("redirect: recording the outcome for {mac}: {e}");
    }
}

/// `kpbx prov redirect sync`: every pending operation is due now.
pub fn sync(daemon: &Daemon) -> Result<Reply, StoreError> {
    reconcile(daemon, &[])?;
    let now = daemon.clock.wall();
    daemon.store.data_write(|t| {
        let mut states = Vec::new();
        t.scan(Table::RedirectJob, all(), Order::Ascending, |k, v| {
            if let (Some(mac), Ok(s)) = (mac_of_key(k), plan::decode(v)) {
                states.push((mac, s));
            }
            Ok(ControlFlow::Continue(()))
        })?;
        for (mac, s) in states {
            let new = plan::sync(s.clone(), now);
            if new != s {
                t.put(Table::RedirectJob, &plan::key(&mac), &plan::encode(&new))?;
            }
        }
        Ok(())
    })?;
    daemon.redirect.borrow_mut().idle_until = None;
    status(daemon)
}

/// The read-only fields `prov device show` adds: provisioned on the
/// redirection server, and the last error.
pub fn device_fields(daemon: &Daemon, device: &crate::model::Device) -> Vec<(String, String)> {
    let state = daemon
        .store
        .data_get(Table::RedirectJob, &plan::key(&device.mac))
        .ok()
        .flatten()
        .and_then(|b| plan::decode(&b).ok())
        .unwrap_or_default();
    let provisioned = device.redirect_server.is_some()
        && state.registered.as_ref().map(|r| &r.server) == device.redirect_server.as_ref()
        && state.ops.is_empty();
    vec![
        (
            "redirect_provisioned".to_string(),
            if provisioned { "yes" } else { "no" }.to_string(),
        ),
        (
            "redirect_error".to_string(),
            state.last_error.unwrap_or_default(),
        ),
    ]
}

/// `kpbx prov redirect status`.
pub fn status(daemon: &Daemon) -> Result<Reply, StoreError> {
    let w = wanted(&daemon.store)?;
    let now = daemon.clock.wall();
    let mut states: BTreeMap<Mac, JobState> = BTreeMap::new();
    daemon
        .store
        .data_scan(Table::RedirectJob, all(), Order::Ascending, |k, v| {
            if let Some(mac) = mac_of_key(k) {
                states.insert(mac, plan::decode(v).unwrap_or_default());
            }
            Ok(ControlFlow::Continue(()))
        })?;
    let macs: BTreeSet<Mac> = w
        .device_server
        .keys()
        .chain(states.keys())
        .copied()
        .collect();
    let in_flight = daemon.redirect.borrow().in_flight;
    let views = macs
        .into_iter()
        .map(|mac| {
            let s = states.remove(&mac).unwrap_or_default();
            let server = w.device_server.get(&mac).cloned().unwrap_or_default();
            let registered_on = s
                .registered
                .as_ref()
                .map(|r| r.server.clone())
                .unwrap_or_default();
            let held = s
                .ops
                .first()
                .and_then(|op| w.servers.get(&op.target().server))
                .is_some_and(|srv| !srv.enabled)
                || w.servers.get(&server).is_some_and(|srv| !srv.enabled);
            let state = if in_flight == Some(mac) {
                "in progress"
            } else if s.ops.is_empty() {
                if held { "held" } else { "" }
            } else if held {
                "held"
            } else if s.next_attempt.is_none() {
                "parked"
            } else if s.is_due(now) {
                "due"
            } else {
                "waiting"
            };
            RedirectView {
                mac: mac.to_string(),
                provisioned: !server.is_empty() && registered_on == server && s.ops.is_empty(),
                server,
                registered_on,
                pending: s
                    .ops
                    .iter()
                    .map(|op| format!("{} on {}", op.verb(), op.target().server))
                    .collect(),
                state: state.to_string(),
                attempts: s.attempts,
                next_attempt_us: s.next_attempt.map(WallTime::as_unix_micros),
                last_attempt_us: s.last_attempt.map(WallTime::as_unix_micros),
                last_error: s.last_error.unwrap_or_default(),
            }
        })
        .collect();
    Ok(Reply::Redirects(views))
}
