//! ARP over Ethernet: a pure frame codec (smoltcp-style `Packet`/`Repr`
//! split) and the `AF_PACKET` adapter for `Action::SendGarp` and
//! `Action::ArpProbe` -> `Event::ArpProbeAnswers` ([`ArpSocket::probe_all`]).
//!
//! Codec contract: [`Packet::new_checked`] validates the length once, after
//! which no accessor panics; [`Repr::parse`] (and the free [`parse`]) accept
//! any byte slice and return `None` for anything that is not an
//! Ethernet/IPv4 ARP request or reply. Frames are built with
//! [`Repr::emit`] into a [`FRAME_LEN`]-byte buffer.
//!
//! Gratuitous ARP (RFC 5227 section 3 "announcement"): a request with
//! sender IP = target IP = the address, broadcast; plus the reply form that
//! some old stacks only honour. Probe (RFC 5227 section 2.1.1): a request
//! with sender IP 0.0.0.0 and target hardware address zero.

use std::io::{self, Read};
use std::mem::size_of;
use std::net::Ipv4Addr;
use std::time::Duration;

use smol::{Async, Timer};
use socket2::{Domain, SockAddr, SockAddrStorage, Socket, Type};

/// Ethernet header + ARP body for Ethernet/IPv4.
pub const FRAME_LEN: usize = 14 + 28;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const BROADCAST: [u8; 6] = [0xff; 6];

/// ARP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Request,
    Reply,
}

impl Operation {
    fn to_u16(self) -> u16 {
        match self {
            Self::Request => 1,
            Self::Reply => 2,
        }
    }
}

mod field {
    use std::ops::Range;
    pub const ETH_DST: Range<usize> = 0..6;
    pub const ETH_SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const HTYPE: Range<usize> = 14..16;
    pub const PTYPE: Range<usize> = 16..18;
    pub const HLEN: usize = 18;
    pub const PLEN: usize = 19;
    pub const OPER: Range<usize> = 20..22;
    pub const SHA: Range<usize> = 22..28;
    pub const SPA: Range<usize> = 28..32;
    pub const THA: Range<usize> = 32..38;
    pub const TPA: Range<usize> = 38..42;
}

/// Read-only view of an Ethernet frame carrying ARP.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` if it is long enough for every accessor.
    pub fn new_checked(buffer: T) -> Option<Self> {
        (buffer.as_ref().len() >= FRAME_LEN).then_some(Self { buffer })
    }

    fn bytes<const N: usize>(&self, r: std::ops::Range<usize>) -> [u8; N] {
        let mut out = [0; N];
        // new_checked guarantees len >= FRAME_LEN >= r.end; N == r.len().
        out.copy_from_slice(&self.buffer.as_ref()[r]);
        out
    }

    fn u16_at(&self, r: std::ops::Range<usize>) -> u16 {
        u16::from_be_bytes(self.bytes::<2>(r))
    }

    pub fn eth_dst(&self) -> [u8; 6] {
        self.bytes(field::ETH_DST)
    }
    pub fn eth_src(&self) -> [u8; 6] {
        self.bytes(field::ETH_SRC)
    }
    pub fn ethertype(&self) -> u16 {
        self.u16_at(field::ETHERTYPE)
    }
    pub fn hardware_type(&self) -> u16 {
        self.u16_at(field::HTYPE)
    }
    pub fn protocol_type(&self) -> u16 {
        self.u16_at(field::PTYPE)
    }
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }
    pub fn operation(&self) -> u16 {
        self.u16_at(field::OPER)
    }
    pub fn sender_hw(&self) -> [u8; 6] {
        self.bytes(field::SHA)
    }
    pub fn sender_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.bytes::<4>(field::SPA))
    }
    pub fn target_hw(&self) -> [u8; 6] {
        self.bytes(field::THA)
    }
    pub fn target_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.bytes::<4>(field::TPA))
    }
}

/// A validated Ethernet/IPv4 ARP frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub eth_dst: [u8; 6],
    pub eth_src: [u8; 6],
    pub operation: Operation,
    pub sender_hw: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_hw: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl Repr {
    /// Parses a frame; `None` for anything but Ethernet/IPv4 ARP
    /// request/reply. Trailing bytes (Ethernet padding) are ignored.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Option<Self> {
        if packet.ethertype() != ETHERTYPE_ARP
            || packet.hardware_type() != 1
            || packet.protocol_type() != 0x0800
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return None;
        }
        let operation = match packet.operation() {
            1 => Operation::Request,
            2 => Operation::Reply,
            _ => return None,
        };
        Some(Self {
            eth_dst: packet.eth_dst(),
            eth_src: packet.eth_src(),
            operation,
            sender_hw: packet.sender_hw(),
            sender_ip: packet.sender_ip(),
            target_hw: packet.target_hw(),
            target_ip: packet.target_ip(),
        })
    }

    /// The frame bytes.
    pub fn emit(&self) -> [u8; FRAME_LEN] {
        let mut b = [0u8; FRAME_LEN];
        b[field::ETH_DST].copy_from_slice(&self.eth_dst);
        b[field::ETH_SRC].copy_from_slice(&self.eth_src);
        b[field::ETHERTYPE].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        b[field::HTYPE].copy_from_slice(&1u16.to_be_bytes());
        b[field::PTYPE].copy_from_slice(&0x0800u16.to_be_bytes());
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
        b[field::OPER].copy_from_slice(&self.operation.to_u16().to_be_bytes());
        b[field::SHA].copy_from_slice(&self.sender_hw);
        b[field::SPA].copy_from_slice(&self.sender_ip.octets());
        b[field::THA].copy_from_slice(&self.target_hw);
        b[field::TPA].copy_from_slice(&self.target_ip.octets());
        b
    }

    /// Gratuitous ARP request (RFC 5227 announcement): broadcast, sender
    /// and target IP both `ip`, target hardware zero.
    pub fn garp_request(mac: [u8; 6], ip: Ipv4Addr) -> Self {
        Self {
            eth_dst: BROADCAST,
            eth_src: mac,
            operation: Operation::Request,
            sender_hw: mac,
            sender_ip: ip,
            target_hw: [0; 6],
            target_ip: ip,
        }
    }

    /// Gratuitous ARP reply: broadcast, target hardware = our MAC.
    pub fn garp_reply(mac: [u8; 6], ip: Ipv4Addr) -> Self {
        Self {
            operation: Operation::Reply,
            target_hw: mac,
            ..Self::garp_request(mac, ip)
        }
    }

    /// RFC 5227 probe for `ip`: sender IP 0.0.0.0.
    pub fn probe(mac: [u8; 6], ip: Ipv4Addr) -> Self {
        Self {
            eth_dst: BROADCAST,
            eth_src: mac,
            operation: Operation::Request,
            sender_hw: mac,
            sender_ip: Ipv4Addr::UNSPECIFIED,
            target_hw: [0; 6],
            target_ip: ip,
        }
    }

    /// Whether this frame shows another host (not `our_mac`) using `ip`:
    /// a reply from it, or its own announcement (RFC 5227 section 2.1.1).
    pub fn claims(&self, ip: Ipv4Addr, our_mac: [u8; 6]) -> bool {
        self.sender_ip == ip && self.sender_hw != our_mac && self.eth_src != our_mac
    }
}

/// Parses any bytes; never panics (fuzz entry point).
pub fn parse(bytes: &[u8]) -> Option<Repr> {
    Packet::new_checked(bytes).and_then(|p| Repr::parse(&p))
}

/// An `AF_PACKET` socket for ARP on one interface.
pub struct ArpSocket {
    sock: Async<Socket>,
    ifindex: u32,
    mac: [u8; 6],
}

fn link_addr(ifindex: u32, dst: [u8; 6]) -> io::Result<SockAddr> {
    let index = i32::try_from(ifindex).map_err(|_| io::ErrorKind::InvalidInput)?;
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_storage is larger and more aligned than sockaddr_ll,
    // and all-zero bytes are a valid sockaddr_ll.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = ETHERTYPE_ARP.to_be();
    ll.sll_ifindex = index;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&dst);
    let len = size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the storage holds an initialised sockaddr_ll of `len` bytes.
    Ok(unsafe { SockAddr::new(storage, len) })
}

impl ArpSocket {
    /// Opens a raw ARP socket on the interface (needs `CAP_NET_RAW`).
    /// `ifindex` and `mac` come from [`super::netlink::Netlink::link`].
    ///
    /// Created with protocol 0 (no packet hook yet) and then bound with the
    /// ARP protocol: the kernel registers the hook once, without the RCU
    /// grace period (`synchronize_net`, 10-30 ms on a busy box) it waits for
    /// when a socket created with a protocol is re-bound, so opening is cheap
    /// enough for the HA thread. Closing still waits for one (drop it
    /// elsewhere when that matters).
    pub fn open(ifindex: u32, mac: [u8; 6]) -> io::Result<Self> {
        let sock = Socket::new(Domain::PACKET, Type::RAW.cloexec(), None)?;
        sock.bind(&link_addr(ifindex, BROADCAST)?)?;
        Ok(Self {
            sock: Async::new(sock)?,
            ifindex,
            mac,
        })
    }

    /// Opens a raw packet socket that only sends (needs `CAP_NET_RAW`):
    /// protocol 0 and unbound, so the kernel hands it no frame to queue and
    /// it can stay open as long as the node runs. Opening a receiving socket
    /// (bind) and closing any packet socket each wait for an RCU grace
    /// period, 10-30 ms on a busy box: too long for the thread that sends
    /// the heartbeats to spend on every gratuitous ARP.
    pub fn open_sender(ifindex: u32, mac: [u8; 6]) -> io::Result<Self> {
        let sock = Socket::new(Domain::PACKET, Type::RAW.cloexec(), None)?;
        Ok(Self {
            sock: Async::new(sock)?,
            ifindex,
            mac,
        })
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Sends one frame.
    pub async fn send(&self, repr: &Repr) -> io::Result<()> {
        let frame = repr.emit();
        let to = link_addr(self.ifindex, repr.eth_dst)?;
        self.sock.write_with(|s| s.send_to(&frame, &to)).await?;
        Ok(())
    }

    /// `Action::SendGarp`: one announcement, request and reply form.
    pub async fn send_garp(&self, ip: Ipv4Addr) -> io::Result<()> {
        self.send(&Repr::garp_request(self.mac, ip)).await?;
        self.send(&Repr::garp_reply(self.mac, ip)).await
    }

    /// `count` announcements `interval` apart (keep the spread > 1 s so
    /// Linux `locktime` does not swallow them, see notes/ha.md).
    pub async fn garp_burst(&self, ip: Ipv4Addr, count: u32, interval: Duration) -> io::Result<()> {
        for i in 0..count {
            if i > 0 {
                Timer::after(interval).await;
            }
            self.send_garp(ip).await?;
        }
        Ok(())
    }

    /// Receives the next ARP frame, skipping anything unparsable.
    pub async fn recv(&self) -> io::Result<Repr> {
        let mut buf = [0u8; 1518];
        loop {
            let n = self.sock.read_with(|s| (&*s).read(&mut buf)).await?;
            if let Some(repr) = buf.get(..n).and_then(parse) {
                return Ok(repr);
            }
        }
    }

    /// `Action::ArpProbe` -> `Event::ArpProbeResult`: sends an RFC 5227
    /// probe and waits up to `timeout` for another MAC claiming `ip`.
    /// `Ok(None)` = nobody answered (the core treats it as free).
    pub async fn probe(&self, ip: Ipv4Addr, timeout: Duration) -> io::Result<Option<[u8; 6]>> {
        // Frames queued before this probe (an earlier holder's replies) say
        // nothing about now: drop what is already there, at most a bounded
        // number so a flood cannot keep us here.
        for _ in 0..4096 {
            match smol::future::poll_once(self.recv()).await {
                Some(Ok(_)) => continue,
                _ => break,
            }
        }
        // The socket is already bound, so a reply that races the send is queued.
        self.send(&Repr::probe(self.mac, ip)).await?;
        let mac = self.mac;
        let wait = async {
            loop {
                let r = self.recv().await?;
                if r.claims(ip, mac) {
                    return Ok(Some(r.sender_hw));
                }
            }
        };
        let deadline = async {
            Timer::after(timeout).await;
            Ok(None)
        };
        smol::future::or(wait, deadline).await
    }

    /// `Action::ArpProbe` -> `Event::ArpProbeAnswers`: sends an RFC 5227
    /// probe and collects every distinct MAC claiming `ip`, until `timeout`
    /// or `linger` after the first claim, whichever is first (hosts that
    /// answer the same broadcast answer together). Empty = nobody.
    pub async fn probe_all(
        &self,
        ip: Ipv4Addr,
        timeout: Duration,
        linger: Duration,
    ) -> io::Result<Vec<[u8; 6]>> {
        for _ in 0..4096 {
            match smol::future::poll_once(self.recv()).await {
                Some(Ok(_)) => continue,
                _ => break,
            }
        }
        self.send(&Repr::probe(self.mac, ip)).await?;
        let mac = self.mac;
        let end = std::time::Instant::now() + timeout;
        let mut owners: Vec<[u8; 6]> = Vec::new();
        // Bounded: a flood of distinct claimers cannot grow this past 16.
        while owners.len() < 16 {
            let until = match owners.is_empty() {
                true => end,
                false => end.min(std::time::Instant::now() + linger),
            };
            let recv = async { Some(self.recv().await) };
            let timer = async {
                Timer::at(until).await;
                None
            };
            match smol::future::or(recv, timer).await {
                None => break,
                Some(Err(e)) => return Err(e),
                Some(Ok(r)) => {
                    if r.claims(ip, mac) && !owners.contains(&r.sender_hw) {
                        owners.push(r.sender_hw);
                    }
                }
            }
        }
        Ok(owners)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
    const IP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

    #[test]
    fn garp_bytes() {
        let f = Repr::garp_request(MAC, IP).emit();
        assert_eq!(&f[..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[12..22], &[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&f[28..32], &IP.octets());
        assert_eq!(&f[32..38], &[0; 6]);
        assert_eq!(&f[38..42], &IP.octets());
        let r = Repr::garp_reply(MAC, IP).emit();
        assert_eq!(&r[20..22], &[0, 2]);
        assert_eq!(&r[32..38], &MAC);
    }

    #[test]
    fn probe_has_zero_sender() {
        let p = parse(&Repr::probe(MAC, IP).emit()).expect("parses");
        assert_eq!(p.sender_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(p.target_ip, IP);
        assert!(!p.claims(IP, [9; 6]));
    }

    #[test]
    fn round_trip_and_padding() {
        for r in [
            Repr::garp_request(MAC, IP),
            Repr::garp_reply(MAC, IP),
            Repr::probe(MAC, IP),
        ] {
            let mut padded = r.emit().to_vec();
            padded.resize(60, 0);
            assert_eq!(parse(&padded), Some(r));
        }
    }

    #[test]
    fn rejects_non_arp() {
        let good = Repr::garp_request(MAC, IP).emit();
        assert!(parse(&good[..FRAME_LEN - 1]).is_none());
        for (i, v) in [
            (12, 0x86u8),
            (13, 0x00),
            (15, 6),
            (18, 8),
            (19, 16),
            (21, 3),
        ] {
            let mut b = good;
            b[i] = v;
            assert!(parse(&b).is_none(), "byte {i}");
        }
    }

    #[test]
    fn claims_needs_other_mac() {
        let reply = Repr {
            eth_dst: MAC,
            eth_src: [2, 0, 0, 0, 0, 2],
            operation: Operation::Reply,
            sender_hw: [2, 0, 0, 0, 0, 2],
            sender_ip: IP,
            target_hw: MAC,
            target_ip: Ipv4Addr::UNSPECIFIED,
        };
        assert!(reply.claims(IP, MAC));
        assert!(!reply.claims(Ipv4Addr::new(198, 51, 100, 11), MAC));
        assert!(!Repr::garp_request(MAC, IP).claims(IP, MAC));
    }

    /// 20,000 seeded pseudo-random inputs: parse never panics, and every
    /// accepted frame re-emits to its own first 42 bytes.
    #[test]
    fn parse_random_inputs() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            // xorshift64*
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        let template = Repr::garp_reply(MAC, IP).emit();
        let mut accepted = 0;
        for i in 0..20_000 {
            let len = (next() % 80) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half the inputs start from a valid frame with a few flips, so
            // the accept path is exercised too.
            if i % 2 == 0 && len >= FRAME_LEN {
                buf[..FRAME_LEN].copy_from_slice(&template);
                let flips = next() % 3;
                for _ in 0..flips {
                    let at = (next() as usize) % len;
                    buf[at] = next() as u8;
                }
            }
            if let Some(r) = parse(&buf) {
                accepted += 1;
                assert_eq!(&r.emit()[..], &buf[..FRAME_LEN]);
            }
        }
        assert!(accepted > 1000, "accept path exercised: {accepted}");
    }
}
