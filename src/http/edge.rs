//! Edge-triggered readiness for the HTTP server's sockets (adapter).
//!
//! async-io registers every socket in one-shot mode, so each wait for readability costs an
//! `epoll_ctl` on the socket, i.e. one per keep-alive request. Here the server's sockets sit
//! in an epoll instance of their own, added once (on their first wait), edge-triggered; that
//! epoll descriptor is itself registered with async-io, so one wake-up of the loop's reactor
//! serves every connection that became ready (one `epoll_ctl` + one `epoll_wait` per batch,
//! none per request). Closing a socket removes it from the epoll set (no `EPOLL_CTL_DEL`).
//!
//! Readiness is a counter per direction, bumped by [`Edge::run`] on each event. A stream
//! remembers the count at which it last saw "would block" (or a short read, which on a
//! stream socket means the queue was empty: the next arrival fires a new edge, as nginx
//! assumes); while the two are equal it waits instead of trying the syscall.

use rustix::event::epoll;
use smol::Async;
use std::io;
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// Events fetched per `epoll_wait`.
const BATCH: usize = 256;

/// One direction's readiness: event count and the task waiting for the next one.
#[derive(Default)]
struct Dir {
    tick: AtomicU64,
    /// Hang-up or error seen: always ready from now on (a short read that took the last
    /// bytes before a FIN must not wait for an edge that already came).
    end: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Dir {
    fn fire(&self, end: bool) {
        if end {
            self.end.store(true, Ordering::Release);
        }
        self.tick.fetch_add(1, Ordering::AcqRel);
        let w = self.waker.lock().ok().and_then(|mut w| w.take());
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Ready unless no event came since `seen`; else registers `cx`'s waker.
    fn poll(&self, seen: u64, cx: &mut Context<'_>) -> Poll<u64> {
        let t = self.tick.load(Ordering::Acquire);
        if t != seen || self.end.load(Ordering::Acquire) {
            return Poll::Ready(t);
        }
        if let Ok(mut w) = self.waker.lock() {
            match &*w {
                Some(old) if old.will_wake(cx.waker()) => {}
                _ => *w = Some(cx.waker().clone()),
            }
        }
        // An event between the load and the registration would be lost: look again.
        let t = self.tick.load(Ordering::Acquire);
        if t != seen || self.end.load(Ordering::Acquire) {
            Poll::Ready(t)
        } else {
            Poll::Pending
        }
    }
}

#[derive(Default)]
struct Slot {
    read: Dir,
    write: Dir,
}

/// Registered sockets by key (index); `free` holds unused indices.
#[derive(Default)]
struct Slots {
    live: Vec<Option<Arc<Slot>>>,
    free: Vec<usize>,
}

/// An epoll instance for one server's sockets.
pub(crate) struct Edge {
    ep: OwnedFd,
    slots: Mutex<Slots>,
}

impl Edge {
    pub(crate) fn new() -> io::Result<Arc<Edge>> {
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        Ok(Arc::new(Edge {
            ep,
            slots: Mutex::new(Slots::default()),
        }))
    }

    /// Registers `io` (already non-blocking) for edge-triggered read and write readiness.
    /// It enters the epoll set only when it first has to wait: a connection whose request is
    /// there at once and that closes after the answer never costs an `epoll_ctl`.
    pub(crate) fn register<T: AsFd>(self: &Arc<Self>, io: T) -> io::Result<Registered<T>> {
        let slot = Arc::new(Slot::default());
        let key = {
            let mut s = self.slots.lock().map_err(|_| io::ErrorKind::Other)?;
            match s.free.pop() {
                Some(k) => {
                    s.live[k] = Some(slot.clone());
                    k
                }
                None => {
                    s.live.push(Some(slot.clone()));
                    s.live.len() - 1
                }
            }
        };
        Ok(Registered {
            io: Some(io),
            edge: self.clone(),
            slot,
            key,
            added: false,
            // Fresh sockets count as ready: try the syscall first.
            read_seen: u64::MAX,
            write_seen: u64::MAX,
        })
    }

    fn release(&self, key: usize) {
        if let Ok(mut s) = self.slots.lock()
            && let Some(e) = s.live.get_mut(key)
        {
            *e = None;
            s.free.push(key);
        }
    }

    /// Dispatches events to the registered sockets, forever. Fails only if the epoll
    /// descriptor cannot be registered with or waited on through the loop's reactor.
    pub(crate) async fn run(self: Arc<Self>) -> io::Result<()> {
        let outer = Async::new_nonblocking(EpollFd(self.clone()))?;
        loop {
            // A full batch: more may be queued; let the woken tasks run first.
            while self.dispatch()? == BATCH {
                smol::future::yield_now().await;
            }
            outer.readable().await?;
        }
    }

    /// One `epoll_wait` without waiting: wakes the sockets' tasks; returns the event count.
    fn dispatch(&self) -> io::Result<usize> {
        let mut buf = [const { MaybeUninit::<epoll::Event>::uninit() }; BATCH];
        let now = rustix::event::Timespec::default();
        let (events, _) = loop {
            match epoll::wait(&self.ep, &mut buf, Some(&now)) {
                Err(rustix::io::Errno::INTR) => {}
                r => break r?,
            }
        };
        for ev in events.iter() {
            let Ok(key) = usize::try_from(ev.data.u64()) else {
                continue;
            };
            let slot = self
                .slots
                .lock()
                .ok()
                .and_then(|s| s.live.get(key).cloned().flatten());
            let Some(slot) = slot else { continue };
            let f = ev.flags;
            let err = epoll::EventFlags::ERR | epoll::EventFlags::HUP;
            let rdhup = f.intersects(epoll::EventFlags::RDHUP | err);
            if rdhup || f.contains(epoll::EventFlags::IN) {
                slot.read.fire(rdhup);
            }
            if f.intersects(epoll::EventFlags::OUT | err) {
                slot.write.fire(f.intersects(err));
            }
        }
        Ok(events.len())
    }
}

/// The epoll descriptor as an I/O source of the loop's reactor.
struct EpollFd(Arc<Edge>);

impl AsFd for EpollFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.ep.as_fd()
    }
}

/// A socket registered with an [`Edge`]. Dropping it closes the socket.
pub(crate) struct Registered<T: AsFd> {
    /// Always `Some` until drop.
    io: Option<T>,
    edge: Arc<Edge>,
    slot: Arc<Slot>,
    key: usize,
    /// In the epoll set (added on the first wait).
    added: bool,
    read_seen: u64,
    write_seen: u64,
}

impl<T: AsFd> Drop for Registered<T> {
    fn drop(&mut self) {
        // Close first (which leaves the epoll set), then free the key for reuse.
        drop(self.io.take());
        self.edge.release(self.key);
    }
}

impl<T: AsFd> Registered<T> {
    pub(crate) fn get_ref(&self) -> &T {
        // `io` is only taken in drop.
        self.io.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// The read-side count to pass to [`Registered::read_blocked`] after a syscall.
    pub(crate) fn read_tick(&self) -> u64 {
        self.slot.read.tick.load(Ordering::Acquire)
    }

    pub(crate) fn write_tick(&self) -> u64 {
        self.slot.write.tick.load(Ordering::Acquire)
    }

    /// A read at `tick` found nothing more to read (EAGAIN or a short read).
    pub(crate) fn read_blocked(&mut self, tick: u64) {
        self.read_seen = tick;
    }

    /// A write at `tick` found the send buffer full (EAGAIN; a short write proves nothing).
    pub(crate) fn write_would_block(&mut self, tick: u64) -> io::Result<()> {
        stale_end(&self.slot.write)?;
        self.write_seen = tick;
        Ok(())
    }

    /// A read at `tick` got EAGAIN: [`Registered::read_blocked`], unless the socket hung up.
    pub(crate) fn read_would_block(&mut self, tick: u64) -> io::Result<()> {
        stale_end(&self.slot.read)?;
        self.read_blocked(tick);
        Ok(())
    }

    pub(crate) fn poll_readable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.slot.read.poll(self.read_seen, cx) {
            Poll::Ready(_) => Poll::Ready(Ok(())),
            Poll::Pending => self.add_pending(),
        }
    }

    pub(crate) fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.slot.write.poll(self.write_seen, cx) {
            Poll::Ready(_) => Poll::Ready(Ok(())),
            Poll::Pending => self.add_pending(),
        }
    }

    /// About to wait (waker registered): joins the epoll set if not yet in it. Adding
    /// reports the current readiness as an edge, so bytes that came after the last
    /// "would block" are not missed.
    fn add_pending(&mut self) -> Poll<io::Result<()>> {
        if !self.added {
            let flags = epoll::EventFlags::IN
                | epoll::EventFlags::OUT
                | epoll::EventFlags::RDHUP
                | epoll::EventFlags::ET;
            let data = epoll::EventData::new_u64(self.key as u64);
            if let Err(e) = epoll::add(&self.edge.ep, self.get_ref().as_fd(), data, flags) {
                return Poll::Ready(Err(e.into()));
            }
            self.added = true;
        }
        Poll::Pending
    }

    /// Until a read may make progress (returns at once if it may already).
    pub(crate) fn readable(&mut self) -> impl Future<Output = io::Result<()>> + '_ {
        std::future::poll_fn(move |cx| self.poll_readable(cx))
    }

    /// Until a write may make progress.
    pub(crate) fn writable(&mut self) -> impl Future<Output = io::Result<()>> + '_ {
        std::future::poll_fn(move |cx| self.poll_writable(cx))
    }
}

/// EAGAIN after a hang-up or error event: a real one makes reads give 0 or the error and
/// writes EPIPE, so the event was stale (a descriptor a child still shared when its key was
/// reused). Waiting would spin, since the latch keeps the direction ready: fail instead.
fn stale_end(dir: &Dir) -> io::Result<()> {
    if dir.end.load(Ordering::Acquire) {
        return Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "hang-up reported, yet the socket would block",
        ));
    }
    Ok(())
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

impl smol::io::AsyncRead for Registered<TcpStream> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            std::task::ready!(this.poll_readable(cx))?;
            let tick = this.read_tick();
            // rustix: the raw syscall, without libc's cancellation-point bookkeeping.
            match rustix::net::recv(this.get_ref(), &mut *buf, rustix::net::RecvFlags::empty())
                .map(|(n, _)| n)
                .map_err(io::Error::from)
            {
                Ok(n) => {
                    if n < buf.len() {
                        this.read_blocked(tick);
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if would_block(&e) => {
                    if let Err(e) = this.read_would_block(tick) {
                        return Poll::Ready(Err(e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl smol::io::AsyncWrite for Registered<TcpStream> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            std::task::ready!(this.poll_writable(cx))?;
            let tick = this.write_tick();
            // A short write is no proof of a full buffer (no edge would follow): only
            // EAGAIN waits.
            match rustix::net::send(this.get_ref(), buf, rustix::net::SendFlags::NOSIGNAL)
                .map_err(io::Error::from)
            {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if would_block(&e) => {
                    if let Err(e) = this.write_would_block(tick) {
                        return Poll::Ready(Err(e));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_ref().shutdown(std::net::Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smol::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[test]
    fn wakes_on_data_and_space_and_frees_keys() {
        smol::block_on(async {
            let edge = Edge::new().expect("epoll");
            let ex = smol::Executor::new();
            let _d = ex.spawn(edge.clone().run());
            ex.run(async {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                let addr = l.local_addr().expect("addr");
                let mut client = std::net::TcpStream::connect(addr).expect("connect");
                let (s, _) = l.accept().expect("accept");
                s.set_nonblocking(true).expect("nonblocking");
                let mut r = edge.register(s).expect("register");
                // Nothing there yet: the read waits for the edge of the client's write.
                let reader = async {
                    let mut b = [0u8; 16];
                    let n = r.read(&mut b).await.expect("read");
                    (n, b)
                };
                let writer = async {
                    smol::Timer::after(std::time::Duration::from_millis(50)).await;
                    std::io::Write::write_all(&mut client, b"ping").expect("write");
                };
                let ((n, b), ()) = smol::future::zip(reader, writer).await;
                assert_eq!(&b[..n], b"ping");
                // Fill the send buffer until a write would block, then drain on the
                // client side: the writer must be woken by the edge of freed space.
                client.set_nonblocking(false).expect("blocking");
                let big = vec![7u8; 8 << 20];
                let drain = std::thread::spawn(move || {
                    let mut got = 0usize;
                    let mut b = vec![0u8; 1 << 16];
                    while got < 8 << 20 {
                        match std::io::Read::read(&mut client, &mut b) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got += n,
                        }
                    }
                    got
                });
                r.write_all(&big).await.expect("write all");
                r.close().await.expect("shutdown");
                assert_eq!(drain.join().expect("join"), 8 << 20);
                drop(r);
                assert_eq!(edge.slots.lock().expect("lock").free, vec![0]);
            })
            .await;
        });
    }

    /// A stale hang-up (an event for a descriptor a forked child still shared when its key
    /// was reused) latches a live, empty socket "ready forever": its read must fail, not
    /// spin on EAGAIN.
    #[test]
    fn a_stale_hang_up_fails_the_read_instead_of_spinning() {
        let edge = Edge::new().expect("epoll");
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let _client = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (s, _) = l.accept().expect("accept");
        s.set_nonblocking(true).expect("nonblocking");
        let mut r = edge.register(s).expect("register");
        r.slot.read.fire(true);
        r.slot.write.fire(true);
        smol::block_on(async {
            let mut b = [0u8; 16];
            let e = r
                .read(&mut b)
                .await
                .expect_err("no data, yet latched ready");
            assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted);
        });
        let tick = r.write_tick();
        let e = r.write_would_block(tick).expect_err("latched write side");
        assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted);
    }
}
