//! The smol adapter: sockets, timers and tasks around the pure
//! [`Transfer`](super::transfer::Transfer).
//!
//! - One UDP socket on the listen port receives requests. Its receive buffer
//!   is enlarged ([`Config::recv_buffer`]) so that a boot storm of RRQs is
//!   queued, not dropped, and the request path does little work: parse,
//!   sanitise, `FileSource::open`, bind one ephemeral socket, spawn.
//! - Each transfer runs as a task on the caller's `LocalExecutor` with its own
//!   ephemeral socket (its TID). The task sleeps until a datagram arrives or
//!   the state machine's deadline passes; there is no polling.
//! - Refusals (errors 1, 2, 4 and "busy") are sent from the listen socket
//!   without creating a socket or a task.
//! - A peer (address and port) with a running transfer is ignored when it
//!   repeats its RRQ; at most [`Config::max_transfers`] run at once.
//!
//! Everything runs on one thread; file reads are positioned reads
//! (`pread`) of one block from the page cache, done inline.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::FileExt;
use std::rc::Rc;

use smol::{Async, LocalExecutor, Timer, future};
use socket2::{Domain, Protocol, Socket, Type};

use super::packet::{self, ErrorCode, Mode, Packet};
use super::transfer::{self, Failure, Limits, Payload, State, Transfer};
use super::{FetchRecord, FileData, FileError, FileSource, Outcome, sanitize_path};
use crate::clock::{Clock, SystemClock};

/// Server configuration. Every field has a documented default.
#[derive(Clone, Debug)]
pub struct Config {
    /// **Default: 0.0.0.0:69.**
    pub listen: SocketAddr,
    /// Option and retransmission bounds; see [`Limits`].
    pub limits: Limits,
    /// Transfers running at once; further RRQs get error 0 "Server busy".
    /// Each transfer holds one socket, so keep this below the process's
    /// RLIMIT_NOFILE (often 1024 by default) minus the daemon's other
    /// descriptors; running out of descriptors is also answered "busy".
    /// **Default: 2048.**
    pub max_transfers: usize,
    /// Requested SO_RCVBUF of the listen socket, in bytes. The kernel caps it
    /// at `net.core.rmem_max` (doubled). **Default: 4 MiB.**
    pub recv_buffer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 69)),
            limits: Limits::default(),
            max_transfers: 2048,
            recv_buffer: 4 << 20,
        }
    }
}

/// Requests handled back to back before the listener yields to transfers.
const REQUEST_BURST: u32 = 64;

/// A bound TFTP server; run it with [`Server::serve`].
pub struct Server {
    socket: Async<UdpSocket>,
    config: Config,
    source: Rc<dyn FileSource>,
    active: Rc<RefCell<HashSet<SocketAddr>>>,
    clock: SystemClock,
}

impl Server {
    /// Binds the listen socket.
    pub fn bind(config: Config, source: Rc<dyn FileSource>) -> io::Result<Server> {
        let sock = Socket::new(
            Domain::for_address(config.listen),
            Type::DGRAM,
            Some(Protocol::UDP),
        )?;
        // Best effort: an unprivileged process is capped by rmem_max.
        let _ = sock.set_recv_buffer_size(config.recv_buffer);
        sock.bind(&config.listen.into())?;
        let socket = Async::new(UdpSocket::from(sock))?;
        Ok(Server {
            socket,
            config,
            source,
            active: Rc::new(RefCell::new(HashSet::new())),
            clock: SystemClock::default(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().local_addr()
    }

    /// Receives requests forever, spawning transfers on `ex`. The caller must
    /// be running `ex` (e.g. `ex.run(server.serve(ex.clone()))`). Returns
    /// only on a fatal socket error.
    pub async fn serve(self, ex: Rc<LocalExecutor<'static>>) -> io::Result<()> {
        let mut buf = vec![0u8; 4096];
        let mut burst = 0u32;
        loop {
            match self.socket.recv_from(&mut buf).await {
                Ok((n, peer)) => self.handle_request(&ex, peer, &buf[..n]),
                // ICMP errors reported on the socket, signals: not fatal.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
            burst += 1;
            if burst >= REQUEST_BURST {
                burst = 0;
                future::yield_now().await;
            }
        }
    }

    fn refuse(&self, peer: SocketAddr, path: &str, code: ErrorCode, msg: &str, outcome: Outcome) {
        let err = Packet::Error { code, message: msg }.to_vec();
        // Non-blocking and best effort: the client retries on loss.
        let _ = self.socket.get_ref().send_to(&err, peer);
        self.source.fetched(&FetchRecord {
            peer,
            path,
            outcome,
            bytes: 0,
            retransmits: 0,
        });
    }

    fn handle_request(&self, ex: &LocalExecutor<'static>, peer: SocketAddr, datagram: &[u8]) {
        let req = match packet::parse(datagram) {
            Ok(Packet::Rrq(r)) => r,
            Ok(Packet::Wrq(w)) => {
                return self.refuse(
                    peer,
                    w.filename,
                    ErrorCode::AccessViolation,
                    "Access violation",
                    Outcome::WriteRefused,
                );
            }
            // Other packets and garbage on the listen port: no answer, so the
            // server cannot be used as a reflector.
            _ => return,
        };
        if self.active.borrow().contains(&peer) {
            return; // a retransmitted RRQ of a running transfer
        }
        if req.mode == Mode::Mail {
            return self.refuse(
                peer,
                req.filename,
                ErrorCode::IllegalOperation,
                "Mode not supported",
                Outcome::BadMode,
            );
        }
        if self.active.borrow().len() >= self.config.max_transfers {
            return self.refuse(
                peer,
                req.filename,
                ErrorCode::NotDefined,
                "Server busy",
                Outcome::Busy,
            );
        }
        let Ok(path) = sanitize_path(req.filename) else {
            return self.refuse(
                peer,
                req.filename,
                ErrorCode::AccessViolation,
                "Access violation",
                Outcome::BadPath,
            );
        };
        let data = match self.source.open(peer, path) {
            Ok(d) => d,
            Err(FileError::NotFound) => {
                return self.refuse(
                    peer,
                    req.filename,
                    ErrorCode::FileNotFound,
                    "File not found",
                    Outcome::NotFound,
                );
            }
            Err(FileError::AccessDenied) => {
                return self.refuse(
                    peer,
                    req.filename,
                    ErrorCode::AccessViolation,
                    "Access violation",
                    Outcome::AccessDenied,
                );
            }
            Err(FileError::Io(e)) => {
                return self.refuse(
                    peer,
                    req.filename,
                    ErrorCode::NotDefined,
                    "Server error",
                    Outcome::Io(e),
                );
            }
        };
        let size = match &data {
            FileData::Memory(m) => Ok(m.len() as u64),
            FileData::Disk(f) => f.metadata().map(|m| m.len()),
        };
        let sock = size.and_then(|size| {
            let local = SocketAddr::new(self.config.listen.ip(), 0);
            Ok((size, Async::<UdpSocket>::bind(local)?))
        });
        let (size, sock) = match sock {
            Ok(x) => x,
            // EMFILE / ENFILE (Linux): out of descriptors is overload, not a
            // broken file; answer like the max_transfers bound does.
            Err(e) if matches!(e.raw_os_error(), Some(23 | 24)) => {
                return self.refuse(
                    peer,
                    req.filename,
                    ErrorCode::NotDefined,
                    "Server busy",
                    Outcome::Busy,
                );
            }
            Err(e) => {
                return self.refuse(
                    peer,
                    req.filename,
                    ErrorCode::NotDefined,
                    "Server error",
                    Outcome::Io(e.to_string()),
                );
            }
        };
        let negotiated = transfer::negotiate(&req.options, size, &self.config.limits);
        let t = Transfer::new(
            peer,
            size,
            &negotiated,
            self.config.limits.max_retries,
            self.clock.now(),
        );
        self.active.borrow_mut().insert(peer);
        let task = TransferTask {
            sock,
            t,
            data,
            clock: self.clock.clone(),
            blksize: usize::from(negotiated.blksize),
        };
        let active = Rc::clone(&self.active);
        let source = Rc::clone(&self.source);
        let path = req.filename.to_owned();
        ex.spawn(async move {
            let (outcome, bytes, retransmits) = task.run().await;
            active.borrow_mut().remove(&peer);
            source.fetched(&FetchRecord {
                peer,
                path: &path,
                outcome,
                bytes,
                retransmits,
            });
        })
        .detach();
    }
}

struct TransferTask {
    sock: Async<UdpSocket>,
    t: Transfer,
    data: FileData,
    clock: SystemClock,
    blksize: usize,
}

enum Event {
    Readable(io::Result<()>),
    Timer,
}

/// Blocks sent back to back (the client always answering at once) before the transfer
/// yields to the loop's other tasks.
const BURST: u32 = 64;

/// `sendto` straight through rustix (no libc cancellation bookkeeping), waiting for room
/// only when the socket buffer is full.
async fn send_to(sock: &Async<UdpSocket>, buf: &[u8], dst: SocketAddr) -> io::Result<()> {
    loop {
        match rustix::net::sendto(sock.get_ref(), buf, rustix::net::SendFlags::empty(), &dst) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::AGAIN) => sock.writable().await?,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// One `recvfrom` without waiting: `Ok(None)` when nothing is queued.
fn try_recv(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<Option<(usize, SocketAddr)>> {
    loop {
        match rustix::net::recvfrom(sock, &mut *buf, rustix::net::RecvFlags::empty()) {
            Ok((n, _, Some(from))) => {
                // Not an IP peer (cannot happen on a UDP/IP socket): drop the datagram.
                let Ok(from) = SocketAddr::try_from(from) else {
                    continue;
                };
                return Ok(Some((n, from)));
            }
            Ok((_, _, None)) => {}
            Err(rustix::io::Errno::AGAIN) => return Ok(None),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Disk files larger than this are read ahead in [`READ_AHEAD`] chunks
/// (one `pread` per chunk instead of per block); smaller ones block by block
/// so that a boot storm of small files costs no extra memory.
const READ_AHEAD_MIN_FILE: u64 = 256 * 1024;
const READ_AHEAD: usize = 64 * 1024;

/// A window of the file kept in memory for sequential reads.
struct ReadAhead {
    buf: Vec<u8>,
    offset: u64,
}

impl TransferTask {
    /// Drives the transfer to its end; bounded by the retry limit.
    ///
    /// The smol timer is re-armed lazily: the state machine's deadline moves
    /// with every ACK, but the timer is only moved when it fires (early fires
    /// are no-ops for the machine) or when the deadline comes earlier. That
    /// keeps timer bookkeeping to about one per timeout period, not one per
    /// block.
    async fn run(mut self) -> (Outcome, u64, u64) {
        let mut out = Vec::with_capacity(packet::DATA_HEADER_LEN + self.blksize);
        let mut rbuf = vec![0u8; 2048];
        let mut ahead = match &self.data {
            FileData::Disk(_)
                if self.t.total_blocks() * self.blksize as u64 > READ_AHEAD_MIN_FILE =>
            {
                Some(ReadAhead {
                    buf: Vec::with_capacity(READ_AHEAD.max(self.blksize)),
                    offset: 0,
                })
            }
            _ => None,
        };
        let mut timer = Timer::never();
        let mut armed: Option<crate::clock::Instant> = None;
        let mut burst = 0u32;
        loop {
            while let Some(tx) = self.t.poll_transmit() {
                if let Err(e) = self.encode(&tx.payload, &mut out, ahead.as_mut()) {
                    let err = Packet::Error {
                        code: ErrorCode::NotDefined,
                        message: "Server error",
                    };
                    let _ = send_to(&self.sock, &err.to_vec(), self.t.peer()).await;
                    return (
                        Outcome::Io(e.to_string()),
                        self.t.bytes_acked(),
                        self.t.retransmits(),
                    );
                }
                // A failed send is covered by the retransmission timer.
                let _ = send_to(&self.sock, &out, tx.dst).await;
            }
            let outcome = match self.t.state() {
                State::Running => None,
                State::Completed => Some(Outcome::Completed),
                State::Failed(Failure::TimedOut) => Some(Outcome::TimedOut),
                State::Failed(Failure::ClientError(c)) => Some(Outcome::ClientAborted(*c)),
            };
            if let Some(o) = outcome {
                return (o, self.t.bytes_acked(), self.t.retransmits());
            }
            let Some(deadline) = self.t.poll_timeout() else {
                return (
                    Outcome::TimedOut,
                    self.t.bytes_acked(),
                    self.t.retransmits(),
                );
            };
            // Lock-step: the client's ACK is often queued already (it ran while we sent);
            // take it without a trip through the reactor.
            let got = try_recv(self.sock.get_ref(), &mut rbuf);
            if let Ok(Some((n, from))) = got {
                let now = self.clock.now();
                self.t.handle_datagram(now, from, &rbuf[..n]);
                // A client that keeps sending (duplicates, strays) must not keep the
                // retransmission timer from firing.
                if self.t.poll_timeout().is_some_and(|d| now >= d) {
                    self.t.handle_timeout(now);
                }
                burst += 1;
                if burst >= BURST {
                    burst = 0;
                    future::yield_now().await;
                }
                continue;
            }
            burst = 0;
            if armed.is_none_or(|a| deadline < a) {
                let wait = deadline.saturating_since(self.clock.now());
                timer.set_after(wait);
                armed = Some(deadline);
            }
            let ev = match got {
                Ok(_) => {
                    let sock = &self.sock;
                    let tm = &mut timer;
                    future::or(async { Event::Readable(sock.readable().await) }, async {
                        tm.await;
                        Event::Timer
                    })
                    .await
                }
                Err(e) => Event::Readable(Err(e)),
            };
            match ev {
                Event::Readable(Ok(())) => {}
                Event::Readable(Err(_)) => {
                    // E.g. ICMP port unreachable from a vanished client. Do not
                    // spin on a socket error: wait for the deadline instead.
                    Timer::after(deadline.saturating_since(self.clock.now())).await;
                    self.t.handle_timeout(self.clock.now());
                }
                Event::Timer => {
                    armed = None;
                    self.t.handle_timeout(self.clock.now());
                }
            }
        }
    }

    fn encode(
        &self,
        payload: &Payload,
        out: &mut Vec<u8>,
        ahead: Option<&mut ReadAhead>,
    ) -> io::Result<()> {
        out.clear();
        let (block, offset, len) = match payload {
            Payload::Bytes(b) => {
                out.extend_from_slice(b);
                return Ok(());
            }
            Payload::Data { block, offset, len } => (*block, *offset, *len),
        };
        packet::emit_data_header(block, out);
        let short = || io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank");
        match (&self.data, ahead) {
            (FileData::Memory(m), _) => {
                let start = usize::try_from(offset).map_err(|_| short())?;
                let chunk = m.get(start..start + len).ok_or_else(short)?;
                out.extend_from_slice(chunk);
            }
            (FileData::Disk(f), None) => {
                out.resize(packet::DATA_HEADER_LEN + len, 0);
                // Fails with UnexpectedEof if the file shrank.
                f.read_exact_at(&mut out[packet::DATA_HEADER_LEN..], offset)?;
            }
            (FileData::Disk(f), Some(ra)) => {
                let end = offset + len as u64;
                let cached = offset >= ra.offset && end <= ra.offset + ra.buf.len() as u64;
                if !cached {
                    let want = ra.buf.capacity().max(len);
                    ra.buf.resize(want, 0);
                    let mut got = 0;
                    while got < want {
                        match f.read_at(&mut ra.buf[got..], offset + got as u64) {
                            Ok(0) => break,
                            Ok(n) => got += n,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(e) => return Err(e),
                        }
                    }
                    ra.buf.truncate(got);
                    ra.offset = offset;
                    if got < len {
                        return Err(short());
                    }
                }
                let start = (offset - ra.offset) as usize;
                out.extend_from_slice(&ra.buf[start..start + len]);
            }
        }
        Ok(())
    }
}
