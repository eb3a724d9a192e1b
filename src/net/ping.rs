//! ICMP echo to the ping group: produces `Event::PingResult { target,
//! reachable }` for every member each `ping_interval`.
//!
//! Socket: an unprivileged ICMP datagram socket (`SOCK_DGRAM,
//! IPPROTO_ICMP`; the caller's group must be inside
//! `net.ipv4.ping_group_range`), falling back to a raw socket (needs
//! `CAP_NET_RAW`). With a datagram socket the kernel replaces the echo
//! identifier with the socket's own and only delivers our replies; with a
//! raw socket we see every ICMP packet and match identifier and sequence
//! ourselves. Either way a reply counts only if its source is the target
//! and its sequence number is the one sent to that target in this round.
//!
//! The echo codec ([`EchoRepr`]) is pure and never panics on input.

use std::io;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use smol::{Async, Timer};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const ECHO_REPLY: u8 = 0;
const ECHO_REQUEST: u8 = 8;
/// Payload carried in each request (bytes).
pub const PAYLOAD: &[u8; 16] = b"kpbxd-ha-ping-00";

/// An ICMP echo request or reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EchoRepr {
    pub reply: bool,
    pub ident: u16,
    pub seq: u16,
    pub payload: Vec<u8>,
}

/// RFC 1071 Internet checksum.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = bytes.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl EchoRepr {
    /// Wire bytes with a correct checksum.
    pub fn emit(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(8 + self.payload.len());
        b.push(if self.reply { ECHO_REPLY } else { ECHO_REQUEST });
        b.push(0);
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&self.ident.to_be_bytes());
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.extend_from_slice(&self.payload);
        let c = checksum(&b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
        b
    }

    /// Parses an ICMP message (no IP header). `None` unless it is an echo
    /// request or reply with code 0 and a valid checksum.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let (&[kind, code, _, _, i0, i1, s0, s1], payload) = bytes.split_first_chunk::<8>()?;
        let reply = match (kind, code) {
            (ECHO_REPLY, 0) => true,
            (ECHO_REQUEST, 0) => false,
            _ => return None,
        };
        if checksum(bytes) != 0 {
            return None;
        }
        Some(Self {
            reply,
            ident: u16::from_be_bytes([i0, i1]),
            seq: u16::from_be_bytes([s0, s1]),
            payload: payload.to_vec(),
        })
    }
}

/// Strips an IPv4 header (raw sockets deliver it): `(source, icmp bytes)`
/// if the packet is ICMP.
pub fn strip_ipv4(packet: &[u8]) -> Option<(Ipv4Addr, &[u8])> {
    let first = *packet.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < 20 || *packet.get(9)? != 1 {
        return None;
    }
    let src: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
    Some((Ipv4Addr::from(src), packet.get(ihl..)?))
}

/// Which kind of ICMP socket is in use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PingMode {
    /// `SOCK_DGRAM, IPPROTO_ICMP` (unprivileged "ping socket").
    Datagram,
    /// `SOCK_RAW, IPPROTO_ICMP` (root / `CAP_NET_RAW`).
    Raw,
}

/// One ping outcome, for `Event::PingResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingResult {
    pub target: Ipv4Addr,
    pub reachable: bool,
}

/// ICMP echo sender/receiver.
pub struct Pinger {
    sock: Async<Socket>,
    mode: PingMode,
    ident: u16,
    next_seq: u16,
}

fn recv_from(sock: &Socket, buf: &mut [u8]) -> io::Result<(usize, SockAddr)> {
    // SAFETY: `[u8]` and `[MaybeUninit<u8>]` have the same layout, and
    // recv_from only writes initialised bytes into the slice.
    let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
    sock.recv_from(uninit)
}

impl Pinger {
    /// Datagram socket if permitted, raw socket otherwise.
    pub fn open() -> io::Result<Self> {
        Self::open_mode(PingMode::Datagram).or_else(|e| {
            log::info!("ping: datagram ICMP socket unavailable ({e}), using a raw socket");
            Self::open_mode(PingMode::Raw)
        })
    }

    pub fn open_mode(mode: PingMode) -> io::Result<Self> {
        let ty = match mode {
            PingMode::Datagram => Type::DGRAM,
            PingMode::Raw => Type::RAW,
        };
        let sock = Socket::new(Domain::IPV4, ty.cloexec(), Some(Protocol::ICMPV4))?;
        Ok(Self {
            sock: Async::new(sock)?,
            mode,
            // Only meaningful for raw sockets; the kernel picks it otherwise.
            ident: (std::process::id() as u16) ^ 0x4b50,
            next_seq: 1,
        })
    }

    pub fn mode(&self) -> PingMode {
        self.mode
    }

    /// Pings every target once and waits up to `timeout` for the replies.
    /// Results are in `targets` order. A send error counts as unreachable.
    pub async fn ping_all(&mut self, targets: &[Ipv4Addr], timeout: Duration) -> Vec<PingResult> {
        let deadline = Instant::now() + timeout;
        let mut pending: Vec<Option<u16>> = Vec::with_capacity(targets.len());
        for &target in targets {
            let seq = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            let req = EchoRepr {
                reply: false,
                ident: self.ident,
                seq,
                payload: PAYLOAD.to_vec(),
            }
            .emit();
            let to = SockAddr::from(SocketAddrV4::new(target, 0));
            match self.sock.write_with(|s| s.send_to(&req, &to)).await {
                Ok(_) => pending.push(Some(seq)),
                Err(e) => {
                    log::debug!("ping {target}: {e}");
                    pending.push(None);
                }
            }
        }
        let mut reachable = vec![false; targets.len()];
        let mut buf = [0u8; 1500];
        while pending.iter().any(Option::is_some) {
            let recv = async { Some(self.sock.read_with(|s| recv_from(s, &mut buf)).await) };
            let timer = async {
                Timer::at(deadline).await;
                None
            };
            let Some(res) = smol::future::or(recv, timer).await else {
                break;
            };
            let (n, from) = match res {
                Ok(r) => r,
                Err(e) => {
                    log::debug!("ping recv: {e}");
                    continue;
                }
            };
            let Some((src, icmp)) = self.reply_source(&buf[..n], &from) else {
                continue;
            };
            let Some(echo) = EchoRepr::parse(icmp).filter(|e| e.reply) else {
                continue;
            };
            if self.mode == PingMode::Raw && echo.ident != self.ident {
                continue;
            }
            for (i, &t) in targets.iter().enumerate() {
                if t == src && pending[i] == Some(echo.seq) {
                    pending[i] = None;
                    reachable[i] = true;
                }
            }
        }
        targets
            .iter()
            .zip(reachable)
            .map(|(&target, reachable)| PingResult { target, reachable })
            .collect()
    }

    fn reply_source<'b>(&self, packet: &'b [u8], from: &SockAddr) -> Option<(Ipv4Addr, &'b [u8])> {
        match self.mode {
            PingMode::Raw => strip_ipv4(packet),
            PingMode::Datagram => match from.as_socket() {
                Some(SocketAddr::V4(a)) => Some((*a.ip(), packet)),
                _ => None,
            },
        }
    }

    /// Pings `targets` every `interval` (each round waits at most
    /// `min(timeout, interval)`) and sends every result on `tx`; returns
    /// when the receiver is dropped.
    pub async fn run(
        &mut self,
        targets: &[Ipv4Addr],
        interval: Duration,
        timeout: Duration,
        tx: &smol::channel::Sender<PingResult>,
    ) {
        let timeout = timeout.min(interval);
        let mut next = Instant::now();
        loop {
            for r in self.ping_all(targets, timeout).await {
                if tx.send(r).await.is_err() {
                    return;
                }
            }
            next += interval;
            Timer::at(next).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_round_trip() {
        let e = EchoRepr {
            reply: true,
            ident: 0x1234,
            seq: 7,
            payload: b"abc".to_vec(),
        };
        let b = e.emit();
        assert_eq!(checksum(&b), 0);
        assert_eq!(EchoRepr::parse(&b), Some(e));
    }

    #[test]
    fn known_checksum() {
        // Echo request id 1 seq 1, no payload: 0x0800 + 0x0001 + 0x0001.
        let b = EchoRepr {
            reply: false,
            ident: 1,
            seq: 1,
            payload: vec![],
        }
        .emit();
        assert_eq!(b, [8, 0, 0xf7, 0xfd, 0, 1, 0, 1]);
    }

    #[test]
    fn rejects_bad_input() {
        let mut b = EchoRepr {
            reply: true,
            ident: 1,
            seq: 2,
            payload: vec![1, 2, 3],
        }
        .emit();
        assert!(EchoRepr::parse(&b[..7]).is_none());
        b[9] ^= 1;
        assert!(EchoRepr::parse(&b).is_none(), "bad checksum");
        assert!(strip_ipv4(&[0x45]).is_none());
        assert!(strip_ipv4(&[0x4f; 20]).is_none());
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut x: u64 = 42;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 64) as usize;
            let buf: Vec<u8> = (0..len).map(|i| (x >> (i % 8 * 8)) as u8).collect();
            let _ = EchoRepr::parse(&buf);
            let _ = strip_ipv4(&buf);
        }
    }
}
