//! Adapter: the SIP PnP responder on 224.0.1.75:5060.
//!
//! One UDP socket bound to the group address and port (SO_REUSEADDR, so it
//! receives only datagrams sent to the group, never the unicast SIP of a
//! PBX bound to 5060), joined to the group on every interface with an IPv4
//! address (re-checked periodically, so new VLANs join too). IP_PKTINFO
//! tells which local address the request came in on: the NOTIFY carries
//! `http://<that address>[:port]/provisioning/`, built like `%%PROVURL%%`, plus
//! the device's file for Snom ([`crate::provision::pnp_paths`]).
//! The pure [`crate::sip::responder::Responder`] decides what to send.
//!
//! A SIP stack on the same box that holds UDP 5060 without SO_REUSEADDR (bound to
//! 0.0.0.0:5060) makes the bind fail. That must not stop the daemon: the responder
//! shows `failed` in `kpbx status` with the reason and retries every [`RETRY_BIND`].

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::IoSliceMut;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg, setsockopt, sockopt};
use smol::Async;

use super::DaemonError;
use super::provisioning::{SharedServed, interfaces};
use crate::clock::{Clock, SystemClock, WallTime};
use crate::config::Config;
use crate::sip::responder::{Exchange, Outcome, Responder};

/// The IANA `sip.mcast.net` group.
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 1, 75);
pub const PORT: u16 = 5060;
/// How often a failed bind is tried again.
const RETRY_BIND: Duration = Duration::from_secs(10);
/// How often interfaces are re-read to join the group on new ones.
const REJOIN: Duration = Duration::from_secs(5);
/// At most one "unassigned device" line per MAC per this long.
const UNKNOWN_LOG: Duration = Duration::from_secs(60);
const MAX_LOGGED: usize = 256;

/// Called for every exchange; the lead connects it to the fetch log.
pub type FetchHook = Rc<dyn Fn(WallTime, &Exchange)>;

/// The default hook: one log line per answered or unknown device, with
/// unknown MACs rate-limited.
pub fn log_hook() -> FetchHook {
    let clock = SystemClock::default();
    let seen = std::cell::RefCell::new(std::collections::HashMap::new());
    Rc::new(move |_, ex: &Exchange| match (&ex.outcome, ex.mac) {
        (Outcome::Notified(url), Some(mac)) => {
            log::info!("sip-pnp {}: device {mac}: NOTIFY {url}", ex.source)
        }
        (Outcome::Unknown, Some(mac)) => {
            let now = clock.now();
            let mut seen = seen.borrow_mut();
            let fresh = seen
                .get(&mac)
                .is_none_or(|t: &crate::clock::Instant| now.saturating_since(*t) >= UNKNOWN_LOG);
            if fresh {
                if seen.len() >= MAX_LOGGED {
                    seen.clear();
                }
                seen.insert(mac, now);
                log::info!("sip-pnp {}: unassigned device {mac}", ex.source);
            }
        }
        _ => {}
    })
}

pub struct SipPnp {
    socket: Async<UdpSocket>,
    joined: BTreeSet<Ipv4Addr>,
    served: SharedServed,
    config: Config,
    hook: FetchHook,
}

/// The responder's state for `kpbx status` (state, detail), kept up to date by its task.
pub type Status = Rc<RefCell<(&'static str, String)>>;

/// Binds the responder and returns its task (to spawn on the loop) and its status. If the
/// port is taken the status says so and the task keeps trying, then serves.
pub fn start(
    config: &Config,
    served: SharedServed,
    hook: FetchHook,
) -> (impl Future<Output = ()> + 'static, Status) {
    let listening = || ("running", format!("listening on {GROUP}:{PORT}"));
    let failed = |e: &DaemonError| {
        (
            "failed",
            format!("{e}; retrying every {}s", RETRY_BIND.as_secs()),
        )
    };
    let first = bind(config, served.clone(), hook.clone());
    let status: Status = Rc::new(RefCell::new(match &first {
        Ok(_) => listening(),
        Err(e) => {
            log::warn!(
                "{e}: SIP PnP answers no phone until the port is free; retrying every {}s",
                RETRY_BIND.as_secs()
            );
            failed(e)
        }
    }));
    let config = config.clone();
    let task = {
        let status = status.clone();
        async move {
            let mut pnp = first;
            loop {
                match pnp {
                    Ok(p) => {
                        if status.borrow().0 != "running" {
                            log::info!("sip_pnp: bound {GROUP}:{PORT} at last");
                            *status.borrow_mut() = listening();
                        }
                        return p.serve().await;
                    }
                    Err(e) => *status.borrow_mut() = failed(&e),
                }
                smol::Timer::after(RETRY_BIND).await;
                pnp = bind(&config, served.clone(), hook.clone());
            }
        }
    };
    (task, status)
}

/// Binds 224.0.1.75:5060 and joins the group on every interface.
fn bind(config: &Config, served: SharedServed, hook: FetchHook) -> Result<SipPnp, DaemonError> {
    let fail = |e: std::io::Error| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            " (another program holds UDP port 5060 without SO_REUSEADDR)"
        } else {
            ""
        };
        DaemonError::Bind(format!("sip_pnp {GROUP}:{PORT}: {e}{hint}"))
    };
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )
    .map_err(fail)?;
    socket.set_reuse_address(true).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    socket
        .bind(&SocketAddrV4::new(GROUP, PORT).into())
        .map_err(fail)?;
    setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)
        .map_err(|e| fail(std::io::Error::from(e)))?;
    let socket = Async::new(UdpSocket::from(socket)).map_err(fail)?;
    let mut pnp = SipPnp {
        socket,
        joined: BTreeSet::new(),
        served,
        config: config.clone(),
        hook,
    };
    pnp.join_all();
    log::info!(
        "sip_pnp: listening on {GROUP}:{PORT}, joined on {:?}",
        pnp.joined
    );
    Ok(pnp)
}

impl SipPnp {
    /// Joins the group on every interface, asking again on each pass: an interface deleted
    /// and made anew (a VLAN, a bridge) lost its membership with it, under the same address.
    /// EADDRINUSE means still a member.
    fn join_all(&mut self) {
        let mut joined = BTreeSet::new();
        for (name, addr) in interfaces() {
            match self.socket.get_ref().join_multicast_v4(&GROUP, &addr) {
                Ok(()) => {
                    if self.joined.contains(&addr) {
                        log::info!("sip_pnp: joined {GROUP} again on {name} ({addr})");
                    }
                    joined.insert(addr);
                }
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                    joined.insert(addr);
                }
                Err(e) => log::debug!("sip_pnp: cannot join {GROUP} on {name} ({addr}): {e}"),
            }
        }
        self.joined = joined;
    }

    /// Receives one datagram: (bytes, source, local address it came in on).
    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<(usize, SocketAddr, Option<Ipv4Addr>)> {
        self.socket
            .read_with(|s| {
                let mut iov = [IoSliceMut::new(buf)];
                let mut cmsg = nix::cmsg_space!(libc::in_pktinfo);
                let msg = recvmsg::<SockaddrIn>(
                    s.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::empty(),
                )
                .map_err(std::io::Error::from)?;
                let mut local = None;
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        if let ControlMessageOwned::Ipv4PacketInfo(info) = c {
                            local = Some(Ipv4Addr::from(u32::from_be(info.ipi_spec_dst.s_addr)));
                        }
                    }
                }
                let source = msg
                    .address
                    .map(|a| SocketAddr::V4(SocketAddrV4::new(a.ip(), a.port())))
                    .ok_or_else(|| std::io::Error::other("no source address"))?;
                Ok((msg.bytes, source, local))
            })
            .await
    }

    /// Serves until the task is dropped.
    pub async fn serve(mut self) {
        let clock = SystemClock::default();
        let seed = clock.wall().as_unix_micros() as u64 ^ u64::from(std::process::id()) << 32;
        let mut responder = Responder::new(seed);
        let mut buf = vec![0u8; crate::sip::MAX_MESSAGE];
        let mut last_join = clock.now();
        loop {
            let got = smol::future::or(async { Some(self.recv(&mut buf).await) }, async {
                smol::Timer::after(REJOIN).await;
                None
            })
            .await;
            if clock.now().saturating_since(last_join) >= REJOIN {
                self.join_all();
                last_join = clock.now();
            }
            let (n, source, local) = match got {
                None => continue,
                Some(Ok(r)) => r,
                Some(Err(e)) => {
                    log::warn!("sip_pnp: receive: {e}");
                    smol::Timer::after(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(local) = local.filter(|a| !a.is_unspecified()) else {
                continue;
            };
            let served = &self.served;
            let config = &self.config;
            let (out, exchange) = responder.handle(
                clock.now(),
                source,
                SocketAddr::new(IpAddr::V4(local), PORT),
                &buf[..n],
                |mac| served.pnp_lookup(mac, &local.to_string(), config),
            );
            for (dest, bytes) in out {
                if let Err(e) = self.socket.send_to(&bytes, dest).await {
                    log::warn!("sip_pnp: send to {dest}: {e}");
                }
            }
            (self.hook)(clock.wall(), &exchange);
        }
    }
}
