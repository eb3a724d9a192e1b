//! The daemon: the one event loop, and the adapters that feed it.
//!
//! ```text
//!   control socket ──accept──> connection task ──Event::Request──┐
//!   (kpbx, 0600)      (one per client: frames,   (reply channel)  │
//!                      timeouts, SO_PEERCRED)                     v
//!   SIGINT/SIGTERM ─────────────────────────────Event::Signal──> loop ──> handlers ──> Store
//! ```
//!
//! Invariants:
//! - Only this module spawns tasks, and all of them run on one thread; the
//!   HA node alone is driven on a thread of its own (`ha.rs`), so that
//!   heartbeats never wait for the loop's heavy work.
//! - Every request is executed by the loop, one at a time, so handlers see a
//!   consistent store and never race each other.
//! - Adapters turn I/O into [`Event`]s; they never touch the store.

mod audit;
mod cdr;
mod control;
mod ha;
mod handlers;
pub mod logging;
mod mail;
mod mgmt;
mod pi_mutex;
mod protect;
mod provisioning;
mod redirect;
mod serve;
mod sip_pnp;
mod sync;
mod task_cmds;
mod tasks;
mod users;
mod workers;

use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;

use smol::LocalExecutor;
use smol::channel::{Receiver, Sender};
use smol::stream::StreamExt;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::control::{Reply, Request};
use crate::model::Origin;
use crate::store::{Store, StoreError};

/// Everything that reaches the event loop.
pub enum Event {
    /// A decoded request from a client, and where to send the reply.
    Request {
        request: Request,
        origin: Origin,
        reply: Sender<Reply>,
        /// The file a `cdr import` passed with the request.
        upload: Option<cdr::Upload>,
    },
    /// A signal asking the daemon to stop.
    Stop(&'static str),
    /// Time to look at interface addresses (dynamic placeholders).
    CheckInterfaces,
    /// The HA thread: what the loop acts on (state, holder, sync view)
    /// changed, or it asks whether the loop answers.
    HaChanged,
    /// The HA core asks to store `role=disabled` (the peer disabled HA).
    HaRoleDisabled,
    /// A redirection-server operation finished.
    Redirect(redirect::Done),
    /// Time to look at the CDR files.
    CdrPoll,
    /// Time to look at the task schedule and the outbox.
    Tick,
    /// A task run's worker thread finished.
    TaskDone {
        task: u64,
        run: u64,
        result: Result<tasks::Output, String>,
    },
    /// A mail delivery attempt finished.
    MailDone {
        message: u64,
        index: usize,
        outcome: crate::mail::outbox::Outcome,
    },
    /// One step of a management API call.
    Mgmt(mgmt::Step),
    /// Something the HA data sync channel did.
    Sync(sync::Report),
    /// A worker thread's answer to a request; a change's answer waits for
    /// the HA peer like one from the loop.
    Answer {
        change: bool,
        answer: Reply,
        reply: Sender<Reply>,
    },
    /// A password-setting command whose hash a worker thread computed.
    UserHashed {
        origin: Origin,
        command: crate::control::Command,
        hash: Result<String, String>,
        reply: Sender<Reply>,
    },
}

/// How often the task schedule and the outbox are looked at. The wall clock
/// is read each time, so a clock step is noticed within a tick.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// How often interface addresses are compared for dynamic placeholders.
const INTERFACE_POLL: std::time::Duration = std::time::Duration::from_secs(2);

impl Daemon {
    /// The scan-blocking thresholds from the system settings.
    fn apply_scan_thresholds(&self) {
        let secs = |k| {
            self.store
                .setting(k)
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        self.protect
            .set_thresholds(crate::provision::guard::Thresholds {
                misses: u32::try_from(secs(crate::model::SettingKey::ProvScanMisses)).unwrap_or(0),
                window: std::time::Duration::from_secs(secs(
                    crate::model::SettingKey::ProvScanWindow,
                )),
                block: std::time::Duration::from_secs(secs(
                    crate::model::SettingKey::ProvScanBlock,
                )),
            });
    }

    /// Tells the SIP PnP responder whether this node holds the HA resource,
    /// and answers the switches whose outcome is known.
    fn follow_ha_role(&self) {
        self.ha.borrow_mut().settle_switches(self.clock.now());
        let active = self.ha.borrow().status(self.clock.now()).state == "active";
        self.prov.borrow().served().set_ha_active(active);
    }

    /// Whether this node follows the HA active node (its store is a replica:
    /// nothing is written locally, no task, mail or CDR work runs).
    fn is_replica(&self) -> bool {
        self.store.is_replica()
    }

    /// Rebuilds the generated provisioning files; failures are logged, the
    /// previous files stay in place.
    pub fn regenerate(&self) {
        // The `timezone` setting may have changed: log stamps follow it.
        logging::set_zone(box_tz(&self.store));
        self.apply_scan_thresholds();
        let result =
            self.prov
                .borrow_mut()
                .regenerate(&self.store, &self.config, self.clock.wall());
        match result {
            Ok(r) if r.written + r.removed > 0 => log::info!(
                "provisioning: {} files, {} written, {} removed",
                r.files,
                r.written,
                r.removed
            ),
            Ok(_) => {}
            Err(e) => log::error!("provisioning: {e}"),
        }
    }
}

/// A fatal error of the daemon, each kind with its own exit code so that
/// init scripts and tests can tell them apart.
#[derive(Debug)]
pub enum DaemonError {
    /// The command line was wrong.
    Usage(String),
    /// The configuration file is missing, unreadable or invalid.
    Config(String),
    /// The store could not be opened.
    Store(StoreError),
    /// Another kpbxd holds the data dir.
    Locked(PathBuf),
    /// A socket could not be bound.
    Bind(String),
    /// Anything else at run time.
    Runtime(String),
}

impl DaemonError {
    /// The process exit code; documented in README.md.
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Usage(_) => 2,
            DaemonError::Config(_) => 3,
            DaemonError::Store(_) => 4,
            DaemonError::Bind(_) => 5,
            DaemonError::Locked(_) => 6,
            DaemonError::Runtime(_) => 1,
        }
    }
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Usage(m) => write!(f, "{m}"),
            DaemonError::Config(m) => write!(f, "configuration: {m}"),
            DaemonError::Store(e) => write!(f, "store: {e}"),
            DaemonError::Locked(p) => write!(
                f,
                "data dir {} is in use by another kpbxd process",
                p.display()
            ),
            DaemonError::Bind(m) => write!(f, "bind: {m}"),
            DaemonError::Runtime(m) => write!(f, "{m}"),
        }
    }
}

impl From<StoreError> for DaemonError {
    fn from(e: StoreError) -> DaemonError {
        match e {
            StoreError::Locked(p) => DaemonError::Locked(p),
            e => DaemonError::Store(e),
        }
    }
}

/// State owned by the event loop.
pub struct Daemon {
    config: Config,
    /// Shared with export and import threads.
    store: std::sync::Arc<Store>,
    prov: std::cell::RefCell<provisioning::Provisioning>,
    /// Scan blocking and the fetch log, shared with the file servers.
    protect: protect::SharedProtect,
    /// Where the TFTP, HTTP and HTTPS servers are bound, if they run.
    tftp: Option<std::net::SocketAddr>,
    http: Option<std::net::SocketAddr>,
    https: Option<std::net::SocketAddr>,
    /// Where the management API listens, if it runs.
    mgmt: Option<std::net::SocketAddr>,
    /// Last audit retention step: when, with how many months, and whether
    /// a backlog remained.
    prune: std::cell::Cell<Option<(crate::clock::Instant, u32, bool)>>,
    /// The SIP PnP responder's state for `kpbx status`: (state, detail).
    sip_pnp: sip_pnp::Status,
    clock: SystemClock,
    started: crate::clock::WallTime,
    started_at: crate::clock::Instant,
    ha: std::cell::RefCell<ha::HaRuntime>,
    /// HA data sync: the channel to the peer and commits waiting for it.
    sync: std::cell::RefCell<sync::SyncRuntime>,
    /// Redirection-server registrations (job in flight, HTTPS client).
    redirect: std::cell::RefCell<redirect::Runtime>,
    cdr: std::cell::RefCell<cdr::Cdr>,
    tasks: std::cell::RefCell<tasks::Tasks>,
    mail: std::cell::RefCell<mail::Mail>,
    /// For worker threads to report back to the loop.
    events: Sender<Event>,
    /// Where passwords are hashed and verified, off the loop.
    hash: workers::HashPool,
    /// Failed-login counts (`auth::lockout`): memory only, fixed size.
    lockout: std::cell::RefCell<crate::auth::lockout::Lockout>,
}

/// Runs the daemon until SIGINT or SIGTERM.
pub fn run(config: Config) -> Result<(), DaemonError> {
    // Signals are turned into events; install the handlers before any
    // thread exists so that every thread inherits the right mask.
    let mut signals = async_signal::Signals::new([
        async_signal::Signal::Int,
        async_signal::Signal::Term,
        async_signal::Signal::Hup,
    ])
    .map_err(|e| DaemonError::Runtime(format!("cannot install signal handlers: {e}")))?;

    let clock = SystemClock::with_offset(config.clock_offset);
    if config.clock_offset != 0 {
        log::warn!(
            "clock_offset = {} s: the wall clock is shifted (test only)",
            config.clock_offset
        );
    }
    let store = Store::open(&config.data_dir, config.store_max_mb, clock.wall())?;
    // Stamps in the box's zone from the first line on: the HA thread logs
    // as soon as it starts, before the first regeneration.
    logging::set_zone(box_tz(&store));
    // Login failures are counted in memory (`auth::lockout`): drop what
    // older versions stored, one record per made-up user name and address.
    let had_failures = store
        .data_len(crate::store::data::Table::LoginFailure)
        .is_ok_and(|n| n > 0);
    if had_failures {
        match store.data_write(|t| {
            t.delete_range(
                crate::store::data::Table::LoginFailure,
                (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
            )
        }) {
            Ok(n) => log::info!("store: dropped {n} stored login-failure records"),
            Err(e) => log::error!("store: dropping login-failure records: {e}"),
        }
    }
    let listener = control::bind(&config.control_socket)?;
    log::info!(
        "kpbxd {} started: data dir {}, control socket {}",
        env!("CARGO_PKG_VERSION"),
        config.data_dir.display(),
        config.control_socket.display()
    );

    let prov = provisioning::Provisioning::new(&config.data_dir);
    let protect = protect::SharedProtect::default();
    let tftp = match config.tftp_listen {
        Some(listen) => Some(bind_tftp(&config, listen, &prov, &protect)?),
        None => None,
    };
    let http = match config.http_listen {
        Some(listen) => Some(bind_http(&config, listen, &prov, &protect, None)?),
        None => None,
    };
    let https = match config.https_listen {
        Some(listen) => Some(bind_http(
            &config,
            listen,
            &prov,
            &protect,
            Some(tls_config(&config, &store)?),
        )?),
        None => None,
    };
    let mgmt = match config.mgmt_listen {
        Some(listen) => {
            let fail = |e: std::io::Error| DaemonError::Bind(format!("mgmt {listen}: {e}"));
            let listener = crate::http::server::bind(listen).map_err(fail)?;
            let addr = listener.local_addr().map_err(fail)?;
            log::info!("mgmt: management API on https://{addr}/api/v1/");
            Some((addr, listener, tls_config(&config, &store)?))
        }
        None => None,
    };
    let multitenant = store.setting(crate::model::SettingKey::Multitenant)? == "on";
    let disabled = |why: &str| Rc::new(std::cell::RefCell::new(("disabled", why.to_string())));
    let (sip_pnp, sip_pnp_state) = if !config.sip_pnp {
        (None, disabled("sip_pnp = off"))
    } else if multitenant {
        log::info!("sip_pnp: disabled in multitenant mode");
        (None, disabled("multitenant mode"))
    } else {
        let (task, status) =
            sip_pnp::start(&config, prov.served(), pnp_hook(&protect, prov.served()));
        (Some(task), status)
    };
    let (tx, rx) = smol::channel::bounded::<Event>(64);
    let tasks = tasks::Tasks::new(&store, &config.data_dir, clock.wall().to_timestamp());
    let mail = mail::Mail::new(&store, config.ca_bundle.clone());
    let store = std::sync::Arc::new(store);
    let ha = ha::HaRuntime::start(&config.data_dir, store.clone(), clock.clone(), tx.clone())
        .map_err(|e| DaemonError::Runtime(format!("cannot start the HA thread: {e}")))?;
    let hash = workers::HashPool::start(workers::HashPool::workers_for_this_box())
        .map_err(|e| DaemonError::Runtime(format!("cannot start the hashing threads: {e}")))?;
    let daemon = Daemon {
        hash: hash.clone(),
        lockout: Default::default(),
        sip_pnp: sip_pnp_state,
        ha: std::cell::RefCell::new(ha),
        sync: std::cell::RefCell::new(sync::SyncRuntime::new(&config.data_dir, tx.clone())),
        redirect: std::cell::RefCell::new(redirect::Runtime::new(tx.clone())),
        started: clock.wall(),
        started_at: clock.now(),
        prov: std::cell::RefCell::new(prov),
        protect,
        tftp: tftp.as_ref().map(|(addr, _)| *addr),
        http: http.as_ref().map(|(addr, ..)| *addr),
        https: https.as_ref().map(|(addr, ..)| *addr),
        mgmt: mgmt.as_ref().map(|(addr, ..)| *addr),
        prune: std::cell::Cell::new(None),
        clock,
        store,
        config,
        cdr: std::cell::RefCell::new(cdr::Cdr::default()),
        tasks: std::cell::RefCell::new(tasks),
        mail: std::cell::RefCell::new(mail),
        events: tx.clone(),
    };
    daemon.regenerate();
    if let Err(e) = redirect::reconcile(&daemon, &[]) {
        log::error!("redirect: {e}");
    }
    let ex = Rc::new(LocalExecutor::new());

    // Not `smol::block_on`: that one has the loop thread wait for I/O in
    // the one process-wide reactor (async-io) whenever the loop is idle,
    // and every thread's timers and sockets, the HA thread's included, are
    // then delivered by the loop thread. At ordinary priority on a busy box
    // it waited up to 175 ms for a core (perf sched, 50 password changes
    // hashing, load 12): the heartbeat timer fired that late. Parked here
    // instead, the loop is woken by the reactor thread ("async-io") or the
    // HA thread, both real-time (`ha::raise_priority`).
    let result = smol::future::block_on(ex.run(async {
        let acceptor = ex.spawn(control::accept_loop(
            ex.clone(),
            listener,
            tx.clone(),
            daemon.store.clone(),
        ));
        let tftp_task = tftp.map(|(addr, server)| {
            ex.spawn(async move {
                if let Err(e) = server.serve().await {
                    log::error!("tftp {addr}: stopped: {e}");
                }
            })
        });
        let sip_pnp_task = sip_pnp.map(|task| ex.spawn(task));
        let mgmt_task = mgmt.map(|(addr, listener, tls)| {
            let site = mgmt::Site {
                events: tx.clone(),
                pool: hash,
            };
            let server =
                crate::http::Server::new(std::sync::Arc::new(site), mgmt::http_config(tls));
            ex.spawn(async move {
                if let Err(e) = server.run(listener).await {
                    log::error!("mgmt {addr}: stopped: {e}");
                }
            })
        });
        let stopper = ex.spawn({
            let tx = tx.clone();
            async move {
                while let Some(signal) = signals.next().await {
                    let name = match signal {
                        Ok(async_signal::Signal::Hup) => {
                            log::info!("SIGHUP: nothing to reload yet");
                            continue;
                        }
                        Ok(async_signal::Signal::Int) => "SIGINT",
                        Ok(_) => "SIGTERM",
                        Err(_) => continue,
                    };
                    let _ = tx.send(Event::Stop(name)).await;
                }
            }
        });
        let ticker = ex.spawn({
            let tx = tx.clone();
            async move {
                loop {
                    smol::Timer::after(INTERFACE_POLL).await;
                    if tx.send(Event::CheckInterfaces).await.is_err() {
                        return;
                    }
                }
            }
        });
        let cdr_ticker = ex.spawn({
            let tx = tx.clone();
            async move {
                loop {
                    if tx.send(Event::CdrPoll).await.is_err() {
                        return;
                    }
                    smol::Timer::after(cdr::POLL).await;
                }
            }
        });
        let tick_task = ex.spawn({
            let tx = tx.clone();
            async move {
                loop {
                    smol::Timer::after(TICK).await;
                    if tx.send(Event::Tick).await.is_err() {
                        return;
                    }
                }
            }
        });
        let web_tasks: Vec<_> = [http, https]
            .into_iter()
            .flatten()
            .map(|(addr, server, listener)| {
                ex.spawn(async move {
                    if let Err(e) = server.run(listener).await {
                        log::error!("http {addr}: stopped: {e}");
                    }
                })
            })
            .collect();
        let result = event_loop(&daemon, &ex, rx).await;
        let ha_stopped = daemon.ha.borrow_mut().shutdown();
        ha_stopped.await;
        drop(web_tasks);
        drop(acceptor);
        drop(stopper);
        drop(ticker);
        drop(cdr_ticker);
        drop(tick_task);
        drop(tftp_task);
        drop(sip_pnp_task);
        drop(mgmt_task);
        result
    }));

    control::unlink(&daemon.config.control_socket);
    log::info!("kpbxd stopped");
    result
}

/// SIP PnP exchanges go to the log and to the per-device fetch log.
fn pnp_hook(
    protect: &protect::SharedProtect,
    served: provisioning::SharedServed,
) -> sip_pnp::FetchHook {
    use crate::sip::responder::Outcome;
    let log = sip_pnp::log_hook();
    let protect = protect.clone();
    Rc::new(move |time, ex| {
        log(time, ex);
        let Some(mac) = ex.mac else { return };
        let ip = ex.source.ip();
        match &ex.outcome {
            Outcome::Notified(url) => protect.record_pnp(ip, mac, true, &format!("notified {url}")),
            Outcome::Retransmission => protect.record_pnp(ip, mac, true, "retransmission"),
            Outcome::Silent(why) => {
                protect.record_pnp(ip, mac, true, &format!("not answered: {why}"))
            }
            // A configured device that is disabled or has no account is
            // not answered, but it is no unassigned device.
            Outcome::Unknown if served.is_known(mac) => protect.record_pnp(
                ip,
                mac,
                true,
                "not answered: disabled or without an account",
            ),
            Outcome::Unknown => protect.record_pnp(ip, mac, false, "unknown"),
            // A throttled SUBSCRIBE is part of a flood: recording it would flood the log.
            Outcome::Throttled | Outcome::NoMac | Outcome::Ignored => {}
        }
    })
}

/// Binds the TFTP server on the generated files and the static directory.
fn bind_tftp(
    config: &Config,
    listen: std::net::SocketAddr,
    prov: &provisioning::Provisioning,
    protect: &protect::SharedProtect,
) -> Result<(std::net::SocketAddr, crate::tftp::server::Server), DaemonError> {
    let _ = std::fs::create_dir_all(&config.static_dir);
    let static_dir = crate::tftp::DirSource::new(&config.static_dir).ok();
    if static_dir.is_none() {
        log::warn!(
            "static_dir {} is not readable: only generated files are served",
            config.static_dir.display()
        );
    }
    let source = serve::ProvisioningSource {
        served: prov.served(),
        protect: protect.clone(),
        static_dir,
    };
    // Each transfer holds a socket: stay well below the descriptor limit.
    let fds = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| soft);
    let tftp_config = crate::tftp::server::Config {
        listen,
        max_transfers: usize::try_from(fds / 2).unwrap_or(512).clamp(16, 2048),
        ..crate::tftp::server::Config::default()
    };
    let server = crate::tftp::server::Server::bind(tftp_config, Rc::new(source))
        .map_err(|e| DaemonError::Bind(format!("tftp {listen}: {e}")))?;
    let addr = server
        .local_addr()
        .map_err(|e| DaemonError::Bind(format!("tftp {listen}: {e}")))?;
    log::info!("tftp: listening on {addr}");
    Ok((addr, server))
}

type WebServer = (
    std::net::SocketAddr,
    crate::http::Server<serve::ProvisioningSite>,
    std::net::TcpListener,
);

/// Binds an HTTP (or, with `tls`, HTTPS) server on the generated files.
fn bind_http(
    config: &Config,
    listen: std::net::SocketAddr,
    prov: &provisioning::Provisioning,
    protect: &protect::SharedProtect,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
) -> Result<WebServer, DaemonError> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let fail = |e: std::io::Error| DaemonError::Bind(format!("{scheme} {listen}: {e}"));
    let static_dir = crate::http::dir::DirSite::new(&config.static_dir, "provisioning").ok();
    let site = serve::ProvisioningSite {
        served: prov.served(),
        protect: protect.clone(),
        static_dir,
        digest: crate::http::digest::Verifier::new(serve::REALM, serve::nonce_secret()),
    };
    let listener = crate::http::server::bind(listen).map_err(fail)?;
    let addr = listener.local_addr().map_err(fail)?;
    let http_config = crate::http::Config {
        tls,
        ..crate::http::Config::default()
    };
    log::info!("{scheme}: listening on {addr}");
    Ok((
        addr,
        crate::http::Server::new(std::sync::Arc::new(site), http_config),
        listener,
    ))
}

/// The names and addresses the self-signed certificate is made for:
/// localhost, the hostname (setting and system), loopback, every interface
/// address and the HA resource addresses.
fn tls_names(store: &Store) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "kpbx".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if let Ok(h) = store.setting(crate::model::SettingKey::Hostname) {
        names.push(h);
    }
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        names.push(h.trim().to_string());
    }
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for ifa in addrs {
            let Some(a) = ifa.address.as_ref() else {
                continue;
            };
            if let Some(v4) = a.as_sockaddr_in() {
                names.push(v4.ip().to_string());
            } else if let Some(v6) = a.as_sockaddr_in6() {
                // Link-local addresses need a zone, which no URL carries.
                if (v6.ip().segments()[0] & 0xffc0) != 0xfe80 {
                    names.push(v6.ip().to_string());
                }
            }
        }
    }
    if let Ok(Some(crate::model::Object::Ha(h))) =
        store.get(crate::model::Kind::Ha, crate::model::ha::HA_ID)
    {
        names.extend(h.config.resources.iter().map(|r| r.addr.to_string()));
    }
    names.retain(|n| !n.is_empty());
    names.sort();
    names.dedup();
    names
}

/// The configured certificate, or the self-signed one in `data_dir/tls` with the operator's
/// RSA pair beside it, if any (`http::tls::pick` chooses per client).
fn tls_config(
    config: &Config,
    store: &Store,
) -> Result<std::sync::Arc<rustls::ServerConfig>, DaemonError> {
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            let rsa = config.data_dir.join("tls").join(crate::http::tls::RSA_CERT);
            if rsa.exists() {
                log::warn!(
                    "{} is not used: tls_cert/tls_key serve every client",
                    rsa.display()
                );
            }
            crate::http::tls::from_pem_files(cert, key)
                .map_err(|e| DaemonError::Config(format!("tls_cert/tls_key: {e}")))
        }
        _ => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            crate::http::tls::self_signed(&config.data_dir.join("tls"), &tls_names(store), now)
                .map(|(tls, _)| tls)
                .map_err(|e| DaemonError::Runtime(format!("self-signed certificate: {e}")))
        }
    }
}

/// The zone named by the `timezone` setting; UTC (logged) if the name is
/// unknown to the system's zone database. Every adapter that needs the
/// box's local time asks here.
pub(crate) fn named_tz(name: &str) -> jiff::tz::TimeZone {
    if name == "UTC" {
        return jiff::tz::TimeZone::UTC;
    }
    jiff::tz::TimeZone::get(name).unwrap_or_else(|e| {
        log::warn!("timezone {name}: {e}; using UTC");
        jiff::tz::TimeZone::UTC
    })
}

/// The box's time zone (the `timezone` setting).
pub(crate) fn box_tz(store: &Store) -> jiff::tz::TimeZone {
    named_tz(
        &store
            .setting(crate::model::SettingKey::Timezone)
            .unwrap_or_else(|_| "UTC".into()),
    )
}

/// The passive node applied replicated configuration: rebuild what is
/// derived from it (the provisioning files the passive node serves too).
fn after_replication(daemon: &Daemon) {
    daemon.regenerate();
}

/// This node just became writable after following the active node: every
/// runtime built from the store starts again from the replicated data.
fn after_takeover(daemon: &Daemon) {
    log::info!("taking over: reloading tasks, outbox and redirection jobs from the store");
    daemon.regenerate();
    let now = daemon.clock.wall().to_timestamp();
    *daemon.tasks.borrow_mut() = tasks::Tasks::new(&daemon.store, &daemon.config.data_dir, now);
    *daemon.mail.borrow_mut() = mail::Mail::new(&daemon.store, daemon.config.ca_bundle.clone());
    if let Err(e) = redirect::reconcile(daemon, &[]) {
        log::error!("redirect: {e}");
    }
}

/// Runs one command from the console or the management API: the caller's
/// permission, then the thread offloads (exports, imports, mail tests,
/// password hashing), then the loop handlers; `ha switch` is answered once
/// the resource has moved, a change once the HA peer holds it. The loop's
/// tail (`sync::drive`, the HA role) runs after every event.
fn route(
    daemon: &Daemon,
    origin: &Origin,
    command: crate::control::Command,
    upload: Option<cdr::Upload>,
    reply: Sender<Reply>,
) {
    // The caller's permission first, also for what is answered from a
    // thread (exports, imports, mail tests).
    let scope = match users::authorize(daemon, origin, &command) {
        Ok(scope) => scope,
        Err(e) => {
            let _ = reply.try_send(Reply::Error(e));
            return;
        }
    };
    let Some(command) = cdr::offload(daemon, command, upload, &reply)
        .and_then(|c| task_cmds::offload(daemon, c, &reply))
        .and_then(|c| audit::offload(daemon, c, &reply))
        .and_then(|c| users::offload(daemon, origin, c, &reply))
    else {
        return;
    };
    let switch = matches!(command, crate::control::Command::HaSwitch);
    let held = daemon.ha.borrow().holds();
    let before = sync::Before::now(daemon);
    let answer = handlers::handle_authorized(daemon, origin, scope, command);
    if switch && !matches!(answer, Reply::Error(_)) {
        // Answered once the resource has moved, or not.
        daemon
            .ha
            .borrow_mut()
            .await_switch(daemon.clock.now(), held, reply);
        return;
    }
    // Only a request that wrote waits for the HA peer; the client may
    // have gone by then, that is its business.
    before.answer(daemon, sync::to_client(reply, answer));
}

/// What woke the loop.
enum Wake {
    Event(Box<Event>),
    HaTimer,
    Closed,
}

async fn event_loop(
    daemon: &Daemon,
    ex: &Rc<LocalExecutor<'static>>,
    rx: Receiver<Event>,
) -> Result<(), DaemonError> {
    sync::drive(daemon, ex);
    redirect::drive(daemon, ex);
    loop {
        let now = daemon.clock.now();
        let wait = [
            daemon.ha.borrow().next_wait(now),
            daemon.sync.borrow().next_wait(now),
        ]
        .into_iter()
        .flatten()
        .min();
        let recv = async {
            match rx.recv().await {
                Ok(e) => Wake::Event(Box::new(e)),
                Err(_) => Wake::Closed,
            }
        };
        let wake = match wait {
            None => recv.await,
            Some(d) => {
                smol::future::or(recv, async {
                    smol::Timer::after(d).await;
                    Wake::HaTimer
                })
                .await
            }
        };
        daemon.ha.borrow().loop_alive(daemon.clock.now());
        let event = match wake {
            Wake::Event(e) => *e,
            Wake::HaTimer => {
                daemon.ha.borrow().loop_alive(daemon.clock.now());
                sync::on_timer(daemon);
                sync::drive(daemon, ex);
                daemon.follow_ha_role();
                continue;
            }
            Wake::Closed => break,
        };
        match event {
            // The tail below follows what changed.
            Event::HaChanged => {}
            Event::HaRoleDisabled => ha::store_role_disabled(daemon),
            Event::Request {
                request,
                origin,
                reply,
                upload,
            } => route(daemon, &origin, request.command, upload, reply),
            Event::CdrPoll if daemon.is_replica() => {}
            Event::CdrPoll => {
                daemon.cdr.borrow_mut().poll(daemon);
                // A backlog is read a budget at a time, other events between.
                if daemon.cdr.borrow().behind() {
                    let _ = daemon.events.try_send(Event::CdrPoll);
                }
            }
            Event::UserHashed {
                origin,
                command,
                hash,
                reply,
            } => {
                let before = sync::Before::now(daemon);
                let answer = users::handle_prehashed(daemon, &origin, command, hash);
                before.answer(daemon, sync::to_client(reply, answer));
            }
            Event::Sync(report) => sync::on_report(daemon, ex, report),
            Event::Answer {
                change,
                answer,
                reply,
            } => sync::answer(daemon, change, sync::to_client(reply, answer)),
            Event::Tick if daemon.is_replica() => {}
            Event::Tick => {
                let now = daemon.clock.wall().to_timestamp();
                let host = task_cmds::hostname(daemon);
                daemon
                    .tasks
                    .borrow_mut()
                    .tick(&daemon.store, &host, now, &daemon.events);
                daemon
                    .mail
                    .borrow_mut()
                    .tick(&daemon.store, now.as_microsecond(), &daemon.events);
            }
            Event::TaskDone { task, run, result } => {
                let now = daemon.clock.wall().to_timestamp();
                daemon.tasks.borrow_mut().done(
                    &daemon.store,
                    &mut daemon.mail.borrow_mut(),
                    task,
                    run,
                    result,
                    now,
                );
            }
            Event::MailDone {
                message,
                index,
                outcome,
            } => {
                let now = daemon.clock.wall().as_unix_micros();
                daemon
                    .mail
                    .borrow_mut()
                    .done(&daemon.store, message, index, outcome, now);
            }
            Event::Mgmt(step) => mgmt::on_event(daemon, step),
            Event::CheckInterfaces => {
                if !daemon.is_replica() {
                    audit::maybe_prune(daemon);
                }
                let changed = daemon.prov.borrow_mut().interfaces_changed();
                if changed {
                    log::info!("interface addresses changed: regenerating provisioning files");
                    daemon.regenerate();
                }
            }
            Event::Stop(why) => {
                log::info!("{why}: stopping");
                return Ok(());
            }
            Event::Redirect(done) => redirect::on_done(daemon, done),
        }
        sync::drive(daemon, ex);
        daemon.follow_ha_role();
        if !daemon.is_replica() {
            redirect::drive(daemon, ex);
        }
    }
    Err(DaemonError::Runtime("event sources closed".to_string()))
}
