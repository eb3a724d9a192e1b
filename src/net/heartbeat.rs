//! UDP heartbeat path: `Action::Send { path, bytes }` and
//! `Event::Datagram { path, from, bytes }`.
//!
//! One socket per path, bound to the path's interface (`SO_BINDTODEVICE`)
//! and local address/port, so a datagram arriving on another interface is
//! never accepted even if it is addressed to the same local address. The
//! adapter only moves bytes; the HA core authenticates them. Oversized
//! datagrams are dropped; send and receive errors are logged, never fatal.
//!
//! Datagrams that waited in the socket's queue longer than
//! [`PathSocketConfig::max_age`] (by the kernel's receive time stamp) are dropped
//! unread: after the daemon was frozen or stalled they are old news, and the core
//! would take them for current (a handover request from before a freeze).
//!
//! Clock basis: Linux stamps a received datagram only with the wall clock
//! (`SO_TIMESTAMPNS`; the software receive stamps of `SO_TIMESTAMPING` are the
//! same `CLOCK_REALTIME`), so the age is wall clock now minus that stamp
//! ([`queued_age`]); there is no monotonic stamp to use. What a step does:
//! - forward by D: every datagram queued at that instant looks D older; if
//!   that passes `max_age` it is dropped. The loop reads datagrams within
//!   milliseconds, so that is at most the heartbeat in flight on each path,
//!   one lost heartbeat for the core (far below the out-of-service time);
//! - backward: datagrams queued before the step look younger (a negative age
//!   counts as 0) and are read as fresh. Only a freeze that coincides with a
//!   backward step lets old datagrams through, as if this filter did not
//!   exist (the core still detects its own stall on the monotonic clock).
//!
//! Both cases are pinned by the unit tests below.

use std::io::{self, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg, setsockopt, sockopt};

use smol::Async;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Largest datagram accepted or sent (heartbeats are far smaller; this
/// stays below any Ethernet MTU so nothing is fragmented).
pub const MAX_DATAGRAM: usize = 1200;

/// Where a path's socket lives and whom it talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathSocketConfig {
    pub interface: String,
    pub local: SocketAddrV4,
    pub peer: SocketAddrV4,
    /// Datagrams older than this when read are dropped (zero: no limit). The daemon
    /// passes the keepalive warning time: silence that long is news in itself.
    pub max_age: Duration,
}

/// A bound UDP socket for one heartbeat path.
pub struct HeartbeatSocket {
    sock: Async<UdpSocket>,
    config: PathSocketConfig,
    /// Sends failed since the last one that worked.
    failed_sends: AtomicU64,
    /// Stale datagrams dropped since the last fresh one.
    stale: AtomicU64,
}

impl HeartbeatSocket {
    /// Creates the socket, binds it to the interface (needs `CAP_NET_RAW`
    /// on older kernels, unprivileged since Linux 5.7 when unbound) and to
    /// the local address. `SO_REUSEADDR` lets a restarted daemon rebind.
    pub fn bind(config: PathSocketConfig) -> io::Result<Self> {
        let sock = Socket::new(Domain::IPV4, Type::DGRAM.cloexec(), Some(Protocol::UDP))?;
        sock.set_reuse_address(true)?;
        sock.bind_device(Some(config.interface.as_bytes()))?;
        sock.bind(&SockAddr::from(config.local))?;
        setsockopt(&sock, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)?;
        Ok(Self {
            sock: Async::new(UdpSocket::from(sock))?,
            config,
            failed_sends: AtomicU64::new(0),
            stale: AtomicU64::new(0),
        })
    }

    pub fn config(&self) -> &PathSocketConfig {
        &self.config
    }

    /// The bound local address (resolves port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddrV4> {
        match self.sock.get_ref().local_addr()? {
            SocketAddr::V4(a) => Ok(a),
            _ => Err(io::ErrorKind::InvalidData.into()),
        }
    }

    /// `Action::Send`: sends to the peer. Errors (too large, unreachable,
    /// interface down) are logged and returned for counting; the caller
    /// should not stop on them.
    pub async fn send(&self, bytes: &[u8]) -> io::Result<()> {
        if bytes.len() > MAX_DATAGRAM {
            log::warn!(
                "heartbeat on {}: {} bytes exceeds {MAX_DATAGRAM}, not sent",
                self.config.interface,
                bytes.len()
            );
            return Err(io::ErrorKind::InvalidInput.into());
        }
        // One line when sending starts failing and one when it recovers,
        // not one per heartbeat while a link is down.
        match self.sock.send_to(bytes, self.config.peer).await {
            Ok(_) => {
                let failed = self.failed_sends.swap(0, Ordering::Relaxed);
                if failed > 0 {
                    log::info!(
                        "heartbeat send on {} to {} works again after {failed} failures",
                        self.config.interface,
                        self.config.peer
                    );
                }
                Ok(())
            }
            Err(e) => {
                if self.failed_sends.fetch_add(1, Ordering::Relaxed) == 0 {
                    log::warn!(
                        "heartbeat send on {} to {}: {e} (further failures counted, not logged)",
                        self.config.interface,
                        self.config.peer
                    );
                }
                Err(e)
            }
        }
    }

    /// Waits for the next acceptable datagram: `(from, bytes)` for
    /// `Event::Datagram`. Oversized datagrams and transient errors (ICMP
    /// port unreachable reported as `ECONNREFUSED`, ...) are logged and
    /// skipped; only a failure to wait on the socket is returned.
    pub async fn recv(&self) -> io::Result<(Ipv4Addr, Vec<u8>)> {
        loop {
            // One byte more than allowed, to detect oversized datagrams
            // without MSG_TRUNC.
            let mut buf = [0u8; MAX_DATAGRAM + 1];
            match self.sock.read_with(|s| recv_stamped(s, &mut buf)).await {
                Ok((n, from, stamp)) => {
                    let Some(from) = from else {
                        continue;
                    };
                    if self.is_stale(stamp) {
                        continue;
                    }
                    if n > MAX_DATAGRAM {
                        log::warn!(
                            "heartbeat on {}: oversized datagram from {from} dropped",
                            self.config.interface
                        );
                        continue;
                    }
                    return Ok((*from.ip(), buf[..n].to_vec()));
                }
                Err(e) if is_transient(&e) => {
                    log::warn!("heartbeat recv on {}: {e}", self.config.interface);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl HeartbeatSocket {
    /// Whether a datagram received at `stamp` (wall clock) is too old now; counts and,
    /// once fresh ones come again, logs the dropped ones. A wall clock stepped back
    /// makes the age negative: taken as fresh.
    fn is_stale(&self, stamp: Option<Duration>) -> bool {
        let max = self.config.max_age;
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let age = queued_age(stamp, now);
        if !max.is_zero() && age > max {
            self.stale.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let dropped = self.stale.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            log::warn!(
                "heartbeat on {}: dropped {dropped} datagrams that waited more than {} ms unread (the daemon was stalled or frozen)",
                self.config.interface,
                max.as_millis()
            );
        }
        false
    }
}

/// One `recvmsg`: length, IPv4 source, kernel receive time (since the epoch).
fn recv_stamped(
    s: &UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, Option<SocketAddrV4>, Option<Duration>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let msg = recvmsg::<SockaddrIn>(s.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let mut stamp = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmTimestampns(t) = c {
                stamp = u64::try_from(t.tv_sec())
                    .ok()
                    .map(|sec| Duration::new(sec, u32::try_from(t.tv_nsec()).unwrap_or(0)));
            }
        }
    }
    let from = msg.address.map(|a| SocketAddrV4::new(a.ip(), a.port()));
    Ok((msg.bytes, from, stamp))
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNREFUSED
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EINTR
                | libc::ENOBUFS
        )
    )
}

/// How long a datagram stamped `stamp` (wall clock, since the epoch) waited,
/// at wall clock `now`: no stamp or a stamp in the future (the clock stepped
/// back) is 0; a clock stepped forward adds the step.
pub fn queued_age(stamp: Option<Duration>, now: Duration) -> Duration {
    stamp.map_or(Duration::ZERO, |t| now.saturating_sub(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(1);

    #[test]
    fn queued_age_follows_the_wall_clock_including_its_steps() {
        let stamp = Duration::from_secs(1_000);
        // Read 5 ms later: fresh.
        let age = queued_age(Some(stamp), stamp + Duration::from_millis(5));
        assert_eq!(age, Duration::from_millis(5));
        assert!(age <= MAX);
        // The clock stepped forward by 10 s while it was queued: looks old, dropped.
        let age = queued_age(
            Some(stamp),
            stamp + Duration::from_millis(5) + Duration::from_secs(10),
        );
        assert!(age > MAX);
        // The clock stepped back by 10 s: a negative age counts as 0 (fresh),
        // even if it really waited 3 s (a freeze at the same time).
        let age = queued_age(
            Some(stamp),
            stamp + Duration::from_secs(3) - Duration::from_secs(10),
        );
        assert_eq!(age, Duration::ZERO);
        // No stamp: fresh.
        assert_eq!(queued_age(None, stamp), Duration::ZERO);
    }
}
