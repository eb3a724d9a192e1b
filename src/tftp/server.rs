//! The smol adapter on the loop's side: the listen socket and the decisions; the
//! [`pump`](super::pump) thread runs the transfers.
//!
//! - One UDP socket on the listen port receives requests. Its receive buffer
//!   is enlarged ([`Config::recv_buffer`]) so that a boot storm of RRQs is
//!   queued, not dropped, and the request path does little work: parse,
//!   sanitise, `FileSource::open`, bind one ephemeral socket, hand over.
//! - Each transfer gets its own ephemeral socket (its TID) and runs on the transfer
//!   thread, which reports its end back here; the report becomes
//!   [`FileSource::fetched`] on the loop.
//! - Refusals (errors 1, 2, 4 and "busy") are sent from the listen socket
//!   without creating a socket or a transfer.
//! - A peer (address and port) with a running transfer is ignored when it
//!   repeats its RRQ; at most [`Config::max_transfers`] run at once.

use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;

use smol::{Async, future};
use socket2::{Domain, Protocol, Socket, Type};

use super::packet::{self, ErrorCode, Mode, Packet};
use super::pump::{self, Done, Start};
use super::transfer::{self, Limits, Transfer};
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
    /// Peers with a running transfer.
    active: RefCell<HashSet<SocketAddr>>,
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
            active: RefCell::new(HashSet::new()),
            clock: SystemClock::default(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.get_ref().local_addr()
    }

    /// Receives requests and transfer reports forever; starts the transfer thread,
    /// which stops when this future is dropped. Returns only on a fatal socket error
    /// or if the transfer thread stopped.
    pub async fn serve(self) -> io::Result<()> {
        let (done_tx, done_rx) = smol::channel::unbounded::<Done>();
        let pump = pump::Handle::spawn(done_tx, self.clock.clone())?;
        let reports = async {
            while let Ok(d) = done_rx.recv().await {
                self.active.borrow_mut().remove(&d.peer);
                self.source.fetched(&FetchRecord {
                    peer: d.peer,
                    path: &d.path,
                    outcome: d.outcome,
                    bytes: d.bytes,
                    retransmits: d.retransmits,
                });
            }
            Err(io::Error::other("the transfer thread stopped"))
        };
        future::or(self.requests(&pump), reports).await
    }

    async fn requests(&self, pump: &pump::Handle) -> io::Result<()> {
        let mut buf = vec![0u8; 4096];
        let mut burst = 0u32;
        loop {
            match self.socket.recv_from(&mut buf).await {
                Ok((n, peer)) => self.handle_request(pump, peer, &buf[..n]),
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

    fn handle_request(&self, pump: &pump::Handle, peer: SocketAddr, datagram: &[u8]) {
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
            // A request with an unknown mode or no file name is answered
            // as tftpd-hpa answers it (ERROR 4); the answer is no larger
            // than the request, so it amplifies nothing.
            Err(e @ (packet::Error::InvalidMode | packet::Error::EmptyFilename)) => {
                let outcome = match e {
                    packet::Error::InvalidMode => Outcome::BadMode,
                    _ => Outcome::BadPath,
                };
                return self.refuse(
                    peer,
                    "",
                    ErrorCode::IllegalOperation,
                    "Illegal TFTP operation",
                    outcome,
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
        let data = match (req.mode, data) {
            (Mode::Netascii, data) => match netascii(data) {
                Ok(d) => d,
                Err(e) => {
                    return self.refuse(
                        peer,
                        req.filename,
                        ErrorCode::NotDefined,
                        "File too large for netascii; use octet",
                        Outcome::Io(e),
                    );
                }
            },
            (_, data) => data,
        };
        let size = match &data {
            FileData::Memory(m) => Ok(m.len() as u64),
            FileData::Disk(f) => f.metadata().map(|m| m.len()),
        };
        let sock = size.and_then(|size| {
            let local = SocketAddr::new(self.config.listen.ip(), 0);
            let sock = UdpSocket::bind(local)?;
            sock.set_nonblocking(true)?;
            Ok((size, sock))
        });
        let (size, sock) = match sock {
            Ok(x) => x,
            // EMFILE / ENFILE (Linux): out of descriptors is overload, not a
            // broken file; answer like the max_transfers bound does.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENFILE | libc::EMFILE)) => {
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
        let start = Start {
            sock,
            t,
            data,
            path: req.filename.to_owned(),
        };
        match pump.start(start) {
            Ok(()) => {
                self.active.borrow_mut().insert(peer);
            }
            // The thread is gone; `serve` is about to return its error.
            Err(e) => self.refuse(
                peer,
                req.filename,
                ErrorCode::NotDefined,
                "Server error",
                Outcome::Io(e.to_string()),
            ),
        }
    }
}

/// Largest file served in netascii mode: it is converted whole in memory
/// (configuration files; firmware is fetched in octet mode).
pub const NETASCII_MAX: u64 = 1 << 20;

/// The file converted for a netascii transfer.
fn netascii(data: FileData) -> Result<FileData, String> {
    let bytes: Vec<u8> = match data {
        FileData::Memory(m) => m.to_vec(),
        FileData::Disk(f) => {
            let len = f.metadata().map_err(|e| e.to_string())?.len();
            if len > NETASCII_MAX {
                return Err(format!("{len} bytes, over the netascii limit"));
            }
            let mut bytes = Vec::with_capacity(len as usize);
            std::io::Read::read_to_end(&mut std::io::Read::take(f, NETASCII_MAX + 1), &mut bytes)
                .map_err(|e| e.to_string())?;
            bytes
        }
    };
    if bytes.len() as u64 > NETASCII_MAX {
        return Err(format!("{} bytes, over the netascii limit", bytes.len()));
    }
    Ok(FileData::Memory(packet::to_netascii(&bytes).into()))
}
