//! smol adapter: accept loop, connection limits (in all and per client address),
//! keep-alive loop, timeouts, TLS: the one HTTP stack. Provisioning's files and the
//! management listener (API and web console, `daemon/mgmt.rs`) are [`Site`]s on it.
//!
//! All connections of one [`Server::run`] are tasks of an executor owned by that future:
//! dropping the future closes the listener and every connection.
//!
//! Cheap per request: timeouts are per-connection deadlines (an atomic store, read from the
//! coarse monotonic clock) checked by one watchdog task every [`TICK`], not reactor timers
//! (whose insertion costs a reactor wake-up each); read and write buffers are lent from
//! per-thread pools only while bytes are in flight, so an idle keep-alive connection holds no
//! buffer (plain TCP waits for readability first; a TLS connection keeps rustls's own buffers
//! anyway). A fresh connection reads optimistically (its request is usually there already).
//! A keep-alive connection parses every request into the same [`Request`] (its path and
//! header strings keep their allocations), so a file hit allocates nothing.
//!
//! File bodies go out with `sendfile` (plain TCP, head sent with `MSG_MORE`) or `pread` in
//! 64 KiB chunks (TLS), on the connection task, like nginx without aio: right for page-cached
//! flash; move to `smol::unblock` if profiling ever says otherwise.

use super::edge::{Edge, Registered};
use super::request::{self, Limits, Method, Request, Status, Version};
use super::response::{self, Conn, Entity, Plan};
use super::{Body, Fetch, Lookup, RequestInfo, Response, Site};
use smol::Timer;
use smol::future::FutureExt as _;
use smol::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::FileExt as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Server settings. Defaults: see [`Config::default`].
#[derive(Clone, Debug)]
pub struct Config {
    /// Head size/count and body-discard limits (8 KiB, 64 headers, 1 KiB).
    pub limits: Limits,
    /// Whole request head (and, on HTTPS, the handshake for the first one) must arrive
    /// within this time after the connection is accepted or after its first byte (10 s) → 408.
    pub head_timeout: Duration,
    /// How long a keep-alive connection may wait for the next request (15 s): closed silently.
    pub idle_timeout: Duration,
    /// Longest stall of a single write before the connection is dropped (30 s).
    pub send_timeout: Duration,
    /// The TLS handshake must be done within this time after accept (10 s; never later than
    /// `head_timeout`), or the connection is closed.
    pub handshake_timeout: Duration,
    /// A request body must arrive within this time after its head (10 s) → 408.
    pub body_timeout: Duration,
    /// Concurrent connections (2048, at most half the soft `RLIMIT_NOFILE`); excess ones get a
    /// best-effort 503 (plain HTTP) and are closed at once.
    pub max_connections: usize,
    /// Concurrent connections from one client address (IPv6: its /64); 0: no such limit.
    /// Excess ones are closed at once, before TLS (a FIN, not a handshake paid for).
    pub per_address: usize,
    /// Requests per keep-alive connection before `Connection: close` (1000; 0 = no limit).
    pub max_requests_per_connection: u64,
    /// HTTPS when set.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15),
            send_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 2048,
            per_address: 0,
            max_requests_per_connection: 1000,
            tls: None,
        }
    }
}

/// Counters, shared with whoever holds [`Server::stats`].
#[derive(Debug, Default)]
pub struct Stats {
    pub accepted: AtomicU64,
    /// Closed at accept: over a limit or refused by [`Site::admit`].
    pub rejected: AtomicU64,
    pub active: AtomicUsize,
    pub requests: AtomicU64,
    /// Head or idle timeouts, TLS handshake timeouts and stalled writes.
    pub timeouts: AtomicU64,
}

/// An HTTP(S) server for one [`Site`].
pub struct Server<S> {
    site: Arc<S>,
    cfg: Arc<Config>,
    stats: Arc<Stats>,
}

const CHUNK: usize = 64 * 1024;
/// Bodies up to this size go out in the same write as the head.
const COALESCE: usize = 16 * 1024;
const LINGER: Duration = Duration::from_secs(1);
/// Watchdog period: timeouts fire up to this late.
pub const TICK: Duration = Duration::from_millis(200);
const RESP_503: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
Content-Length: 20\r\nConnection: close\r\n\r\nService Unavailable\n";

struct ActiveGuard(Arc<Stats>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Relaxed);
    }
}

// ---- buffer pool --------------------------------------------------------------------------

thread_local! {
    /// Read buffers, kept at their length (initialised bytes, contents stale): taking one
    /// costs no zeroing.
    static READ_POOL: RefCell<Pool> = const { RefCell::new(Pool::new()) };
    /// Response buffers, cleared.
    static OUT_POOL: RefCell<Pool> = const { RefCell::new(Pool::new()) };
}
/// Bytes a pool keeps: bounded by size, not count, so that a thousand busy connections
/// (each holding a small buffer while its socket drains) still find one.
const POOL_MAX_BYTES: usize = 1 << 20;
const POOL_MAX_CAP: usize = 64 * 1024;

struct Pool {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
}

impl Pool {
    const fn new() -> Pool {
        Pool {
            bufs: Vec::new(),
            bytes: 0,
        }
    }
}

type PoolKey = std::thread::LocalKey<RefCell<Pool>>;

fn pool_take(pool: &'static PoolKey) -> Vec<u8> {
    pool.with_borrow_mut(|p| {
        let v = p.bufs.pop()?;
        p.bytes -= v.capacity();
        Some(v)
    })
    .unwrap_or_default()
}

fn pool_give(pool: &'static PoolKey, v: Vec<u8>) {
    if v.capacity() == 0 || v.capacity() > POOL_MAX_CAP {
        return;
    }
    pool.with_borrow_mut(|p| {
        if p.bytes + v.capacity() <= POOL_MAX_BYTES {
            p.bytes += v.capacity();
            p.bufs.push(v);
        }
    });
}

/// A read buffer of at least `min` bytes.
fn read_take(min: usize) -> Vec<u8> {
    let mut v = pool_take(&READ_POOL);
    if v.len() < min {
        v.resize(min, 0);
    }
    v
}

fn read_give(v: Vec<u8>) {
    pool_give(&READ_POOL, v);
}

fn out_give(mut v: Vec<u8>) {
    v.clear();
    pool_give(&OUT_POOL, v);
}

// ---- Date header ------------------------------------------------------------------------

thread_local! {
    /// The current second's `Date` value: formatted once per second, not per response.
    static DATE: std::cell::Cell<(u64, [u8; 29])> = const { std::cell::Cell::new((u64::MAX, [b' '; 29])) };
}

/// `Date` of a response sent now (IMF-fixdate, always 29 bytes).
struct Date([u8; 29]);

impl Date {
    fn now() -> Date {
        let secs = coarse(rustix::time::ClockId::RealtimeCoarse).as_secs();
        let (cached, bytes) = DATE.get();
        if cached == secs {
            return Date(bytes);
        }
        let bytes = response::http_date_bytes(secs);
        DATE.set((secs, bytes));
        Date(bytes)
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

// ---- clocks and deadlines -----------------------------------------------------------------

/// A coarse clock (`CLOCK_*_COARSE`: the vDSO returns the last tick's time without reading
/// the TSC, a few ns; resolution 1-10 ms, ample for second-granular `Date`s and for
/// deadlines checked every [`TICK`]). Several reads per request, so the cheap kind.
fn coarse(clock: rustix::time::ClockId) -> Duration {
    let ts = rustix::time::clock_gettime(clock);
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Now on the deadlines' time line: µs of the coarse monotonic clock.
fn mono() -> u64 {
    micros(coarse(rustix::time::ClockId::MonotonicCoarse))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The deadline `d` from now.
fn after(d: Duration) -> u64 {
    mono().saturating_add(micros(d))
}

/// One connection's current deadline ([`mono`] µs; `u64::MAX`: none).
struct Watch {
    deadline: AtomicU64,
    waker: Mutex<Option<Waker>>,
}

/// Wakes connections whose deadline has passed; sleeps while there are none.
struct Watchdog {
    watches: Mutex<Vec<Weak<Watch>>>,
    bell: (smol::channel::Sender<()>, smol::channel::Receiver<()>),
}

impl Watchdog {
    fn new() -> Watchdog {
        Watchdog {
            watches: Mutex::new(Vec::new()),
            bell: smol::channel::bounded(1),
        }
    }

    fn register(&self) -> Arc<Watch> {
        let w = Arc::new(Watch {
            deadline: AtomicU64::new(u64::MAX),
            waker: Mutex::new(None),
        });
        if let Ok(mut l) = self.watches.lock() {
            l.push(Arc::downgrade(&w));
        }
        let _ = self.bell.0.try_send(());
        w
    }

    async fn run(&self) {
        loop {
            let idle = self.watches.lock().map(|l| l.is_empty()).unwrap_or(true);
            if idle {
                let _ = self.bell.1.recv().await;
                continue;
            }
            Timer::after(TICK).await;
            let now = mono();
            if let Ok(mut l) = self.watches.lock() {
                l.retain(|w| match w.upgrade() {
                    Some(w) => {
                        if w.deadline.load(Relaxed) <= now {
                            let k = w.waker.lock().ok().and_then(|mut k| k.take());
                            if let Some(k) = k {
                                k.wake();
                            }
                        }
                        true
                    }
                    None => false,
                });
            }
        }
    }
}

/// Resolves once the connection's deadline has passed.
struct Expired<'a> {
    watch: &'a Watch,
}

impl Future for Expired<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if mono() >= self.watch.deadline.load(Relaxed) {
            return Poll::Ready(());
        }
        if let Ok(mut k) = self.watch.waker.lock() {
            match &*k {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *k = Some(cx.waker().clone()),
            }
        }
        Poll::Pending
    }
}

/// Races `fut` against the connection's deadline.
async fn timed<T>(fut: impl Future<Output = io::Result<T>>, exp: Expired<'_>) -> io::Result<T> {
    fut.or(async {
        exp.await;
        Err(io::ErrorKind::TimedOut.into())
    })
    .await
}

// ---- transports ---------------------------------------------------------------------------

/// A connection's byte stream.
trait Io: AsyncRead + AsyncWrite + Unpin {
    /// Waits until a read would make progress, without holding a buffer. May return early.
    fn ready(&mut self) -> impl Future<Output = io::Result<()>>;
    /// Ends the write side: TLS close_notify (if any), then TCP FIN.
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>>;
    /// The plain socket, when bytes can go straight from a file to it (`sendfile`).
    fn plain(&mut self) -> Option<&mut Registered<TcpStream>>;
}

impl Io for Registered<TcpStream> {
    fn ready(&mut self) -> impl Future<Output = io::Result<()>> {
        self.readable()
    }
    fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
        std::future::ready(self.get_ref().shutdown(std::net::Shutdown::Write))
    }
    fn plain(&mut self) -> Option<&mut Registered<TcpStream>> {
        Some(self)
    }
}

impl Io for futures_rustls::server::TlsStream<Registered<TcpStream>> {
    fn ready(&mut self) -> impl Future<Output = io::Result<()>> {
        // rustls may hold decrypted bytes already: never wait on the socket here.
        std::future::ready(Ok(()))
    }
    async fn shutdown(&mut self) -> io::Result<()> {
        self.close().await?;
        self.get_ref()
            .0
            .get_ref()
            .shutdown(std::net::Shutdown::Write)
    }
    fn plain(&mut self) -> Option<&mut Registered<TcpStream>> {
        None
    }
}

/// Zero-copy file body on plain TCP: the head with `MSG_MORE`, then `sendfile` in ≤ 1 MiB
/// steps (yielding between steps so one download cannot starve other connections).
/// `file: None`: the body (if any) is in `head` already. `closing`: the connection is closed
/// right after, so the last bytes are held (`MSG_MORE`) and leave with the FIN in one
/// segment train instead of two. Returns the body bytes sent, or the error.
/// The send timeout restarts on every bit of progress.
async fn sendfile_tcp<S>(
    sock: &mut Registered<TcpStream>,
    head: &[u8],
    file: Option<&std::fs::File>,
    p: &Plan,
    closing: bool,
    ctx: &Ctx<'_, S>,
) -> Result<u64, (io::Error, u64)> {
    use rustix::io::Errno;
    use rustix::net::SendFlags;
    async fn wait<S>(
        sock: &mut Registered<TcpStream>,
        tick: u64,
        ctx: &Ctx<'_, S>,
    ) -> io::Result<()> {
        sock.write_would_block(tick)?;
        let r = timed(sock.writable(), ctx.expired()).await;
        ctx.set_deadline(after(ctx.cfg.send_timeout));
        r
    }
    ctx.set_deadline(after(ctx.cfg.send_timeout));
    let mut pos = 0;
    while pos < head.len() {
        // MSG_MORE only when body bytes follow or the close pushes them: a corked head
        // would otherwise wait ~200 ms.
        let more = closing || (file.is_some() && p.send_body && p.body_len() > 0);
        let flags = SendFlags::NOSIGNAL
            | if more {
                SendFlags::MORE
            } else {
                SendFlags::empty()
            };
        let tick = sock.write_tick();
        match rustix::net::send(sock.get_ref(), &head[pos..], flags) {
            Ok(n) => pos += n,
            Err(Errno::AGAIN) => wait(sock, tick, ctx).await.map_err(|e| (e, 0))?,
            Err(Errno::INTR) => {}
            Err(e) => return Err((e.into(), 0)),
        }
    }
    if !p.send_body || p.body_len() == 0 {
        return Ok(0);
    }
    let Some(file) = file else {
        return Ok(p.body_len());
    };
    let mut off = p.start;
    while off < p.end {
        let want = usize::try_from(p.end - off)
            .unwrap_or(usize::MAX)
            .min(1 << 20);
        let mut o = off;
        let tick = sock.write_tick();
        match rustix::fs::sendfile(sock.get_ref(), file, Some(&mut o), want) {
            Ok(0) => return Err((io::ErrorKind::UnexpectedEof.into(), off - p.start)),
            Ok(n) => {
                off += n as u64;
                if n == want {
                    smol::future::yield_now().await;
                }
            }
            Err(Errno::AGAIN) => wait(sock, tick, ctx)
                .await
                .map_err(|e| (e, off - p.start))?,
            Err(Errno::INTR) => {}
            Err(e) => return Err((e.into(), off - p.start)),
        }
    }
    Ok(off - p.start)
}

/// accept4 with SOCK_NONBLOCK (no `ioctl(FIONBIO)` per connection); the stream is not
/// registered yet (a refused one never is).
async fn accept(listener: &mut Registered<TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    use rustix::io::Errno;
    use rustix::net::SocketFlags;
    loop {
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let tick = listener.read_tick();
        match rustix::net::acceptfrom_with(listener.get_ref(), flags) {
            Ok((fd, addr)) => {
                let stream = TcpStream::from(fd);
                let peer = match addr.and_then(|a| SocketAddr::try_from(a).ok()) {
                    Some(p) => p,
                    None => stream.peer_addr()?,
                };
                return Ok((stream, peer));
            }
            Err(Errno::AGAIN) => {
                listener.read_blocked(tick);
                listener.readable().await?;
            }
            Err(Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// `max` capped at half the soft descriptor limit (each connection holds a socket, and a
/// file while it sends one; the rest of the daemon needs some too).
fn connection_limit(max: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    let fds = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    max.min(usize::try_from(fds / 2).unwrap_or(usize::MAX))
        .max(1)
}

/// Listen backlog of [`bind`]: room for a boot storm's SYNs (std uses 128).
pub const BACKLOG: i32 = 1024;

/// Binds a listening socket with [`BACKLOG`] (Linux lets `listen` raise it after std's bind).
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    rustix::net::listen(&l, BACKLOG)?;
    Ok(l)
}
// ---- per-address limit --------------------------------------------------------------------

/// The address a connection counts against: IPv4-mapped addresses as the IPv4 address they
/// are, IPv6 by its /64 (one host's usual share; one client can take any address inside it).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Open connections per client address.
type Slots = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// A connection's place in [`Slots`], given back when its task ends, however it ends.
struct Slot {
    slots: Slots,
    key: IpAddr,
}

impl Slot {
    /// A place for `ip`, or `None` when its address holds `limit` connections already.
    fn take(slots: &Slots, ip: IpAddr, limit: usize) -> Option<Slot> {
        let key = client_key(ip);
        let mut map = slots.lock().ok()?;
        let mine = map.entry(key).or_insert(0);
        if *mine >= limit {
            return None;
        }
        *mine += 1;
        Some(Slot {
            slots: slots.clone(),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.slots.lock()
            && let Some(n) = map.get_mut(&self.key)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

// ---- server -------------------------------------------------------------------------------

/// Runs `ex`'s tasks, handing the thread back to the caller's executor
/// after every [`TASKS_PER_TURN`] of them. `Executor::run` would run 200
/// before yielding: with 50 TLS handshakes queued on the management
/// listener (a few ms each in a debug build) that held the daemon's loop,
/// and a `kpbx status` waiting on it, for 50-75 ms (`api_http`).
async fn run_fairly(ex: &smol::Executor<'_>) -> io::Result<()> {
    loop {
        for _ in 0..TASKS_PER_TURN {
            ex.tick().await;
        }
        smol::future::yield_now().await;
    }
}

/// See [`run_fairly`].
const TASKS_PER_TURN: usize = 4;

impl<S: Site> Server<S> {
    pub fn new(site: Arc<S>, cfg: Config) -> Server<S> {
        Server {
            site,
            cfg: Arc::new(cfg),
            stats: Arc::new(Stats::default()),
        }
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Serves `listener` until the returned future is dropped (which closes the listener and
    /// all connections). Fails only if the listener cannot be registered with the reactor;
    /// accept errors (e.g. EMFILE) are waited out (50 ms) instead of spinning.
    pub async fn run(&self, listener: TcpListener) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        let edge = Edge::new()?;
        let listener = edge.register(listener)?;
        let ex = smol::Executor::new();
        let dog = Arc::new(Watchdog::new());
        let d = dog.clone();
        ex.spawn(async move { d.run().await }).detach();
        let dispatch = ex.spawn(edge.clone().run());
        let limit = connection_limit(self.cfg.max_connections);
        let serve = self
            .accept_loop(&ex, &edge, listener, dog, limit)
            .or(dispatch);
        serve.or(run_fairly(&ex)).await
    }

    async fn accept_loop(
        &self,
        ex: &smol::Executor<'_>,
        edge: &Arc<Edge>,
        mut listener: Registered<TcpListener>,
        dog: Arc<Watchdog>,
        limit: usize,
    ) -> io::Result<()> {
        let slots = Slots::default();
        loop {
            let (stream, peer) = match accept(&mut listener).await {
                Ok(x) => x,
                Err(_) => {
                    Timer::after(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let accepted_at = mono();
            self.stats.accepted.fetch_add(1, Relaxed);
            if !self.site.admit(peer) {
                self.stats.rejected.fetch_add(1, Relaxed);
                continue;
            }
            if self.stats.active.load(Relaxed) >= limit {
                self.stats.rejected.fetch_add(1, Relaxed);
                if self.cfg.tls.is_none() {
                    // Best effort, never waits: a fresh socket's send buffer is empty.
                    use std::io::Write as _;
                    let _ = (&stream).write(RESP_503);
                }
                continue;
            }
            let slot = if self.cfg.per_address == 0 {
                None
            } else {
                let Some(slot) = Slot::take(&slots, peer.ip(), self.cfg.per_address) else {
                    self.stats.rejected.fetch_add(1, Relaxed);
                    // Refused before TLS: a FIN, not a handshake we pay for.
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    continue;
                };
                Some(slot)
            };
            let _ = stream.set_nodelay(true);
            let Ok(stream) = edge.register(stream) else {
                // Out of memory for epoll entries: like the limit, refuse this one.
                self.stats.rejected.fetch_add(1, Relaxed);
                continue;
            };
            self.stats.active.fetch_add(1, Relaxed);
            let guard = ActiveGuard(self.stats.clone());
            let (site, cfg, stats, dog) = (
                self.site.clone(),
                self.cfg.clone(),
                self.stats.clone(),
                dog.clone(),
            );
            ex.spawn(async move {
                let _guard = (guard, slot);
                handle(&*site, &cfg, &stats, &dog, stream, peer, accepted_at).await;
            })
            .detach();
        }
    }
}

async fn handle<S: Site>(
    site: &S,
    cfg: &Config,
    stats: &Stats,
    dog: &Watchdog,
    stream: Registered<TcpStream>,
    peer: SocketAddr,
    accepted_at: u64,
) {
    let watch = dog.register();
    let ctx = Ctx {
        site,
        cfg,
        stats,
        watch: &watch,
        peer,
    };
    match &cfg.tls {
        None => Connection::new(stream, ctx, false).run(accepted_at).await,
        Some(tls) => {
            // Boxed: TLS state is large and would otherwise size every plain connection.
            Box::pin(async {
                let acceptor = futures_rustls::TlsAcceptor::from(tls.clone());
                let handshake = cfg.handshake_timeout.min(cfg.head_timeout);
                watch
                    .deadline
                    .store(accepted_at.saturating_add(micros(handshake)), Relaxed);
                match timed(acceptor.accept(stream), ctx.expired()).await {
                    Ok(s) => Connection::new(s, ctx, true).run(accepted_at).await,
                    Err(e) => {
                        if e.kind() == io::ErrorKind::TimedOut {
                            stats.timeouts.fetch_add(1, Relaxed);
                        } else if super::tls::no_certificate_for(&e) {
                            let now = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_secs());
                            super::tls::log_refused(peer, now);
                        }
                    }
                }
            })
            .await
        }
    }
}

/// What every connection of a server shares.
#[derive(Clone, Copy)]
struct Ctx<'a, S> {
    site: &'a S,
    cfg: &'a Config,
    stats: &'a Stats,
    watch: &'a Watch,
    peer: SocketAddr,
}

impl<'a, S> Ctx<'a, S> {
    fn expired(&self) -> Expired<'a> {
        Expired { watch: self.watch }
    }

    /// `t`: [`mono`] µs.
    fn set_deadline(&self, t: u64) {
        self.watch.deadline.store(t, Relaxed);
    }
}

enum Head {
    /// In [`Connection::req`].
    Request,
    /// EOF or I/O error before a complete head.
    Closed,
    /// Deadline passed; `partial`: some bytes of a request had arrived (→ 408).
    TimedOut { partial: bool },
    /// Refused head: its status is sent, then the connection closed.
    Bad(request::Error),
}

struct Connection<'a, IO, S> {
    io: IO,
    ctx: Ctx<'a, S>,
    tls: bool,
    /// Received, unconsumed bytes are `buf[..len]`; pooled, empty while idle.
    buf: Vec<u8>,
    len: usize,
    /// Response being written; pooled, empty between responses.
    out: Vec<u8>,
    /// The current request, parsed in place (its allocations serve every request).
    req: Request,
    /// The current request's body; empty (no allocation) when it has none.
    body: Vec<u8>,
}

impl<'a, IO: Io, S: Site> Connection<'a, IO, S> {
    fn new(io: IO, ctx: Ctx<'a, S>, tls: bool) -> Self {
        Connection {
            io,
            ctx,
            tls,
            buf: Vec::new(),
            len: 0,
            out: Vec::new(),
            req: Request::default(),
            body: Vec::new(),
        }
    }

    fn cap(&self) -> usize {
        let lim = &self.ctx.cfg.limits;
        let body = usize::try_from(lim.max_body_discard).unwrap_or(usize::MAX);
        lim.max_head_bytes.saturating_add(1).saturating_add(body)
    }

    async fn run(mut self, accepted_at: u64) {
        let cfg = self.ctx.cfg;
        let mut served: u64 = 0;
        loop {
            let deadline = if served == 0 {
                accepted_at.saturating_add(micros(cfg.head_timeout))
            } else {
                after(cfg.idle_timeout)
            };
            match self.read_head(deadline, served == 0).await {
                Head::Closed => break,
                Head::TimedOut { partial } => {
                    self.ctx.stats.timeouts.fetch_add(1, Relaxed);
                    if partial {
                        self.error_and_close(408, None).await;
                    }
                    break;
                }
                Head::Bad(e) => {
                    self.error_and_close(e.status(), Some(e)).await;
                    break;
                }
                Head::Request => {
                    // Lent out while responding (which needs `&mut self`); put back after.
                    let req = std::mem::take(&mut self.req);
                    served += 1;
                    self.ctx.stats.requests.fetch_add(1, Relaxed);
                    let max = cfg.max_requests_per_connection;
                    let keep = req.keep_alive() && (max == 0 || served < max);
                    let conn = match (keep, req.version) {
                        (false, _) => Conn::Close,
                        (true, Version::Http10) => Conn::KeepAlive10,
                        (true, Version::Http11) => Conn::KeepAlive11,
                    };
                    let ok = self.respond(&req, conn).await;
                    let client_close = !req.keep_alive();
                    self.req = req;
                    out_give(std::mem::take(&mut self.out));
                    if !ok {
                        break;
                    }
                    if !keep {
                        // The client asked to close and sends nothing more: dropping the
                        // socket sends the FIN. Closing on our own initiative (request limit)
                        // may meet pipelined bytes: shut down first so no RST hits the reply.
                        if client_close && self.len == 0 {
                            if self.tls {
                                self.close().await;
                            }
                        } else {
                            self.close().await;
                        }
                        break;
                    }
                }
            }
        }
        read_give(std::mem::take(&mut self.buf));
        out_give(std::mem::take(&mut self.out));
    }

    /// Reads until a complete head (plus any small body, discarded) is buffered.
    async fn read_head(&mut self, deadline: u64, first: bool) -> Head {
        self.ctx.set_deadline(deadline);
        let mut partial = self.len > 0;
        let mut parse = self.len > 0;
        loop {
            if parse {
                let limits = &self.ctx.cfg.limits;
                match request::parse_head_into(&self.buf[..self.len], limits, &mut self.req) {
                    Ok(Status::Complete(())) => {
                        return self.consume().await;
                    }
                    Ok(Status::Partial) => {}
                    Err(e) => return Head::Bad(e),
                }
            }
            let n = match self.read_more(first && !partial).await {
                Ok(0) => return Head::Closed,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return Head::TimedOut { partial },
                Err(_) => return Head::Closed,
            };
            // Re-parse only when a line may have ended (cheap slow-loris defence).
            parse = self.buf[self.len..self.len + n].contains(&b'\n')
                || self.len + n > self.ctx.cfg.limits.max_head_bytes;
            self.len += n;
            if !partial && !first {
                // The idle wait is over; the head now gets its own deadline.
                self.ctx.set_deadline(after(self.ctx.cfg.head_timeout));
            }
            partial = true;
        }
    }

    /// Reads at least one byte into `buf[len..]` (lending/growing it), racing the deadline.
    async fn read_more(&mut self, optimistic: bool) -> io::Result<usize> {
        if self.buf.is_empty() {
            if optimistic {
                // A fresh connection's request has usually arrived already: try it at once
                // instead of paying a reactor round trip for readiness.
                self.grow()?;
                let r = smol::future::poll_once(self.io.read(&mut self.buf[self.len..])).await;
                if let Some(n) = r {
                    return self.after_read(n);
                }
                read_give(std::mem::take(&mut self.buf));
            }
            // Idle: wait without a buffer, then borrow one from the pool.
            timed(self.io.ready(), self.ctx.expired()).await?;
        }
        self.grow()?;
        let exp = self.ctx.expired();
        let n = timed(self.io.read(&mut self.buf[self.len..]), exp).await;
        self.after_read(n)
    }

    /// Makes room after `len`: borrows a pool buffer or grows up to [`Connection::cap`].
    fn grow(&mut self) -> io::Result<()> {
        let cap = self.cap();
        if self.buf.is_empty() {
            self.buf = read_take(2048);
            // Pooled buffers may come from a server with larger limits.
            self.buf.truncate(cap);
        }
        if self.len == self.buf.len() {
            if self.buf.len() >= cap {
                // Unreachable with a consistent parser; refuse rather than grow.
                return Err(io::ErrorKind::InvalidData.into());
            }
            let new = (self.buf.len() * 2).clamp(2048, cap);
            self.buf.resize(new, 0);
        }
        Ok(())
    }

    fn after_read(&mut self, n: io::Result<usize>) -> io::Result<usize> {
        if matches!(n, Ok(0) | Err(_)) && self.len == 0 {
            read_give(std::mem::take(&mut self.buf));
        }
        n
    }

    /// Drops the head and a (small) body from the buffer, keeping pipelined bytes.
    async fn consume(&mut self) -> Head {
        let body = usize::try_from(self.req.headers.content_length).unwrap_or(usize::MAX);
        let total = self.req.head_len.saturating_add(body);
        if total > self.cap() {
            return Head::Bad(request::Error::BodyTooLarge);
        }
        if self.len < total {
            self.ctx.set_deadline(after(self.ctx.cfg.body_timeout));
        }
        while self.len < total {
            match self.read_more(false).await {
                Ok(0) => return Head::Closed,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Head::TimedOut { partial: true };
                }
                Err(_) => return Head::Closed,
            }
        }
        self.body.clear();
        if let Some(body) = self.buf.get(self.req.head_len..total)
            && !body.is_empty()
        {
            self.body.extend_from_slice(body);
        }
        self.buf.copy_within(total..self.len, 0);
        self.len -= total;
        if self.len == 0 {
            read_give(std::mem::take(&mut self.buf));
        }
        Head::Request
    }

    fn report(&self, req: Option<&Request>, status: u16, bytes: u64) {
        self.report_from(req, status, bytes, false);
    }

    /// `static_file`: the answer was a [`Lookup::File`].
    fn report_from(&self, req: Option<&Request>, status: u16, bytes: u64, static_file: bool) {
        self.ctx.site.report(&Fetch {
            peer: self.ctx.peer,
            tls: self.tls,
            method: req.map(|r| r.method),
            user_agent: req.and_then(|r| r.headers.user_agent()),
            path: req.map(|r| &r.path),
            status,
            bytes,
            static_file,
        });
    }

    /// Writes `out` then `extra`, with the send timeout as deadline.
    async fn write_out(&mut self, extra: &[u8]) -> io::Result<()> {
        self.ctx.set_deadline(after(self.ctx.cfg.send_timeout));
        let io = &mut self.io;
        let out = &self.out;
        let res = timed(
            async move {
                io.write_all(out).await?;
                if !extra.is_empty() {
                    io.write_all(extra).await?;
                }
                io.flush().await
            },
            self.ctx.expired(),
        )
        .await;
        if res
            .as_ref()
            .is_err_and(|e| e.kind() == io::ErrorKind::TimedOut)
        {
            self.ctx.stats.timeouts.fetch_add(1, Relaxed);
        }
        res
    }

    fn start_out(&mut self) -> &mut Vec<u8> {
        if self.out.capacity() == 0 {
            self.out = pool_take(&OUT_POOL);
        }
        self.out.clear();
        &mut self.out
    }

    /// Answers a refused or timed-out head (`why`: the parser's reason) and closes.
    async fn error_and_close(&mut self, status: u16, why: Option<request::Error>) {
        let date = Date::now();
        if let Some(r) = self.ctx.site.refusal(status, why, date.as_str()) {
            if self.send_response(None, r).await {
                self.linger().await;
            }
            return;
        }
        response::write_error(self.start_out(), status, date.as_str(), Conn::Close, false);
        let sent = self.write_out(&[]).await.is_ok();
        let n = if sent {
            response::error_body(status).len() as u64
        } else {
            0
        };
        self.report(None, status, n);
        if sent {
            self.linger().await;
        }
    }

    /// Sends a response; `false` if the connection must be closed.
    async fn respond(&mut self, req: &Request, conn: Conn) -> bool {
        let head_only = req.method == Method::Head;
        let date = Date::now();
        let date = date.as_str();
        let info = RequestInfo {
            peer: self.ctx.peer,
            tls: self.tls,
            method: req.method,
            headers: &req.headers,
        };
        let body = std::mem::take(&mut self.body);
        let handled = self.ctx.site.handle(req, &body, &info, conn, date);
        self.body = body;
        if let Some(pending) = handled {
            // No deadline while the site works: it bounds its own waits.
            let r = pending.await;
            return self.send_response(Some(req), r).await;
        }
        let lookup = match req.method {
            Method::Post | Method::Other => Lookup::NotFound,
            Method::Get | Method::Head => self.ctx.site.get(&req.path, &info),
        };
        // By the path's extension (the whole path: no file_name split needed).
        let default_type = || response::content_type(req.path.as_str());
        let error_status = match (&lookup, req.method) {
            (_, Method::Post | Method::Other) => Some(405),
            (Lookup::NotFound, _) => Some(404),
            (Lookup::Forbidden, _) => Some(403),
            (Lookup::Unauthorized(_), _) => Some(401),
            _ => None,
        };
        if let Some(status) = error_status {
            let challenges: Vec<(&str, &str)> = match &lookup {
                Lookup::Unauthorized(c) if matches!(req.method, Method::Get | Method::Head) => {
                    c.iter().map(|v| ("WWW-Authenticate", v.as_str())).collect()
                }
                _ => Vec::new(),
            };
            response::write_error_with(
                self.start_out(),
                status,
                date,
                conn,
                head_only,
                &challenges,
            );
            let ok = self.write_out(&[]).await.is_ok();
            let n = if ok && !head_only {
                response::error_body(status).len() as u64
            } else {
                0
            };
            self.report(Some(req), status, n);
            return ok;
        }
        match lookup {
            Lookup::Memory(m) => {
                let e = Entity {
                    len: m.bytes.len() as u64,
                    etag: m.etag.as_ref().map(response::ETag::as_str),
                    mtime: m.mtime,
                    content_type: m.content_type.unwrap_or_else(default_type),
                };
                let p = response::plan(req.method, &req.headers, &e);
                response::write_entity_head(self.start_out(), &p, &e, date, conn);
                let body: &[u8] = if p.send_body {
                    // start <= end <= len by construction of the plan.
                    m.bytes.get(p.start as usize..p.end as usize).unwrap_or(&[])
                } else {
                    &[]
                };
                let res = if body.len() <= COALESCE {
                    self.out.extend_from_slice(body);
                    match self.io.plain() {
                        // Closing: the response leaves with the FIN (see sendfile_tcp).
                        Some(sock) if conn == Conn::Close => {
                            sendfile_tcp(sock, &self.out, None, &p, true, &self.ctx)
                                .await
                                .map(|_| ())
                                .map_err(|(e, _)| {
                                    if e.kind() == io::ErrorKind::TimedOut {
                                        self.ctx.stats.timeouts.fetch_add(1, Relaxed);
                                    }
                                    e
                                })
                        }
                        _ => self.write_out(&[]).await,
                    }
                } else {
                    self.write_out(body).await
                };
                let ok = res.is_ok();
                self.report(Some(req), p.status, if ok { body.len() as u64 } else { 0 });
                ok
            }
            Lookup::File(f) => {
                let e = Entity {
                    len: f.len,
                    etag: f.etag.as_ref().map(response::ETag::as_str),
                    mtime: f.mtime,
                    content_type: f.content_type.unwrap_or_else(default_type),
                };
                let p = response::plan(req.method, &req.headers, &e);
                response::write_entity_head(self.start_out(), &p, &e, date, conn);
                let (ok, sent) = self.send_file(&f.file, &p, conn == Conn::Close).await;
                self.report_from(Some(req), p.status, sent, true);
                ok
            }
            Lookup::NotFound | Lookup::Forbidden | Lookup::Unauthorized(_) => false, // handled above
        }
    }

    /// Sends a response the site built whole ([`Site::handle`], [`Site::refusal`]); `false`
    /// if the connection must be closed (a write failed, or a chunked body was cut).
    async fn send_response(&mut self, req: Option<&Request>, r: Response) -> bool {
        let Response { status, head, body } = r;
        self.start_out().extend_from_slice(&head);
        let mut chunks = match body {
            Body::Chunks(c) => c,
            Body::Bytes(b) => return self.send_whole(req, status, &b).await,
            Body::Static(b) => return self.send_whole(req, status, b).await,
        };
        use smol::stream::StreamExt as _;
        let mut sent = 0u64;
        let mut ok = self.write_out(&[]).await.is_ok();
        while ok {
            // `None` before the empty chunk: cut (no last chunk, so the client sees a
            // cut transfer, not a short file).
            let Some(chunk) = chunks.next().await else {
                ok = false;
                break;
            };
            let out = self.start_out();
            if chunk.is_empty() {
                out.extend_from_slice(b"0\r\n\r\n");
            } else {
                out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                out.extend_from_slice(&chunk);
                out.extend_from_slice(b"\r\n");
            }
            ok = self.write_out(&[]).await.is_ok();
            sent += chunk.len() as u64;
            if chunk.is_empty() {
                break;
            }
        }
        self.report(req, status, sent);
        ok
    }

    /// Writes the head in `out`, then `body`.
    async fn send_whole(&mut self, req: Option<&Request>, status: u16, body: &[u8]) -> bool {
        let res = if body.len() <= COALESCE {
            self.out.extend_from_slice(body);
            self.write_out(&[]).await
        } else {
            self.write_out(body).await
        };
        let ok = res.is_ok();
        self.report(req, status, if ok { body.len() as u64 } else { 0 });
        ok
    }

    /// Writes the head in `out` and the planned file range; returns (still usable, body
    /// bytes written). Memory: one 64 KiB chunk buffer per large transfer.
    async fn send_file(&mut self, file: &std::fs::File, p: &Plan, closing: bool) -> (bool, u64) {
        if self.io.plain().is_some() {
            // A small body closing the connection goes with the head in one send (and the
            // FIN): one syscall and one segment train fewer than head + sendfile + FIN.
            let inline = closing && p.send_body && p.body_len() <= COALESCE as u64;
            if inline && p.body_len() > 0 {
                let head = self.out.len();
                self.out.resize(head + p.body_len() as usize, 0);
                if file.read_exact_at(&mut self.out[head..], p.start).is_err() {
                    // File shrank or failed: cannot honour Content-Length; close.
                    return (false, 0);
                }
            }
            let file = (!inline).then_some(file);
            let Some(sock) = self.io.plain() else {
                return (false, 0);
            };
            return match sendfile_tcp(sock, &self.out, file, p, closing, &self.ctx).await {
                Ok(n) => (true, n),
                Err((e, n)) => {
                    if e.kind() == io::ErrorKind::TimedOut {
                        self.ctx.stats.timeouts.fetch_add(1, Relaxed);
                    }
                    (false, n)
                }
            };
        }
        if !p.send_body || p.body_len() == 0 {
            return (self.write_out(&[]).await.is_ok(), 0);
        }
        let total = p.body_len();
        if total <= COALESCE as u64 {
            let head = self.out.len();
            self.out.resize(head + total as usize, 0);
            if file.read_exact_at(&mut self.out[head..], p.start).is_err() {
                // File shrank or failed: cannot honour Content-Length; close.
                return (false, 0);
            }
            let ok = self.write_out(&[]).await.is_ok();
            return (ok, if ok { total } else { 0 });
        }
        if self.write_out(&[]).await.is_err() {
            return (false, 0);
        }
        let mut chunk = vec![0u8; CHUNK.min(usize::try_from(total).unwrap_or(CHUNK))];
        let mut off = p.start;
        let mut sent = 0u64;
        while off < p.end {
            let n = usize::try_from(p.end - off)
                .unwrap_or(CHUNK)
                .min(chunk.len());
            if file.read_exact_at(&mut chunk[..n], off).is_err() {
                return (false, sent);
            }
            self.ctx.set_deadline(after(self.ctx.cfg.send_timeout));
            let io = &mut self.io;
            let data = &chunk[..n];
            let res = timed(
                async move {
                    io.write_all(data).await?;
                    io.flush().await
                },
                self.ctx.expired(),
            )
            .await;
            if let Err(e) = res {
                if e.kind() == io::ErrorKind::TimedOut {
                    self.ctx.stats.timeouts.fetch_add(1, Relaxed);
                }
                return (false, sent);
            }
            off += n as u64;
            sent += n as u64;
        }
        (true, sent)
    }

    /// Explicit close (TLS close_notify, TCP FIN), bounded by [`LINGER`].
    async fn close(&mut self) {
        self.ctx.set_deadline(after(LINGER));
        let _ = timed(self.io.shutdown(), self.ctx.expired()).await;
    }

    /// After an error response: FIN, then read and drop what the client still sends (at most
    /// 64 KiB, about 1 s) so that closing does not turn into an RST that destroys the response.
    async fn linger(&mut self) {
        self.ctx.set_deadline(after(LINGER));
        let _ = timed(self.io.shutdown(), self.ctx.expired()).await;
        let mut sink = read_take(4096);
        let mut left = 64 * 1024usize;
        while left > 0 {
            match timed(self.io.read(&mut sink), self.ctx.expired()).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
        read_give(sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_limit_per_address() {
        let slots = Slots::default();
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let mut held: Vec<Slot> = (0..16)
            .map(|_| Slot::take(&slots, a, 16).unwrap())
            .collect();
        assert!(Slot::take(&slots, a, 16).is_none(), "per-address limit");
        let b: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(
            Slot::take(&slots, b, 16).is_some(),
            "another address still gets in"
        );
        held.pop();
        assert!(
            Slot::take(&slots, a, 16).is_some(),
            "a slot given back is free again"
        );
        held.clear();
        assert!(slots.lock().unwrap().is_empty(), "nothing left behind");
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_v4_as_v4() {
        let k = |t: &str| client_key(t.parse().unwrap());
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("::ffff:192.0.2.1"), k("192.0.2.1"));
    }
}
