//! Route netlink adapter: IPv4 addresses with lifetimes, link lookups and
//! the address and link watches, over a plain `AF_NETLINK` socket.
//!
//! Two halves: the wire codec (sans-IO: [`messages`] walks a datagram,
//! `*_request` build the few requests kpbxd sends; layouts from
//! linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h)
//! and the adapter ([`Netlink`], [`AddressWatch`], [`LinkWatch`]), which
//! alone touches sockets. Written here rather than linking rtnetlink and
//! netlink-packet-route, which cost ~0.6 MB of the stripped binary for the
//! five message kinds used (docs/size.md).
//!
//! Requests: each one opens its own socket (no sequence bookkeeping shared
//! between tasks; a cancelled request leaves nothing behind), sends one
//! message and reads until its answer: the link, the dump's `NLMSG_DONE`
//! or the acknowledgement.
//!
//! Lifetimes: `AddAddress`/`RefreshAddress` send `RTM_NEWADDR` with
//! `NLM_F_CREATE | NLM_F_REPLACE` and `IFA_CACHEINFO { valid, preferred }`
//! rounded up to whole seconds, so the kernel drops the address by itself
//! when the daemon stops refreshing it. Replace also makes add idempotent
//! and lets a refresh re-create an address that vanished.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use smol::Async;

/// Lifetime value the kernel reads as "forever".
pub const INFINITY_LIFE_TIME: u32 = u32::MAX;

/// Errors of one netlink operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetlinkError {
    /// Opening, binding or using the netlink socket failed.
    Socket(io::Error),
    /// No interface with this name.
    NoSuchInterface(String),
    /// The kernel refused a request (contains the errno).
    Kernel { op: &'static str, source: io::Error },
    /// Any other failure (unexpected or malformed answer).
    Protocol { op: &'static str, message: String },
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Socket(e) => write!(f, "netlink socket: {e}"),
            Self::NoSuchInterface(n) => write!(f, "no interface named {n:?}"),
            Self::Kernel { op, source } => write!(f, "netlink {op}: {source}"),
            Self::Protocol { op, message } => write!(f, "netlink {op}: {message}"),
        }
    }
}

impl std::error::Error for NetlinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Socket(e) | Self::Kernel { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

/// An interface as seen by netlink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Hardware address, when the link has a 6-byte one.
    pub mac: Option<[u8; 6]>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier present (`IFF_LOWER_UP`); feeds `Event::LinkChanged`.
    pub lower_up: bool,
}

/// One IPv4 address of an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Address {
    pub ifindex: u32,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    /// Remaining valid lifetime in seconds; `None` = forever.
    pub valid_secs: Option<u32>,
}

impl Ipv4Address {
    /// Whether `other` lies in this address's subnet.
    pub fn contains(&self, other: Ipv4Addr) -> bool {
        same_subnet(self.addr, other, self.prefix)
    }
}

/// Whether `a` and `b` are in the same `/prefix` subnet (prefix > 32 is false).
pub fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    if prefix > 32 {
        return false;
    }
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(a) & mask == u32::from(b) & mask
}

/// A change reported by [`AddressWatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressChange {
    /// `RTM_NEWADDR`: added, or its lifetime changed (a refresh also
    /// notifies). Maps to `Event::AddressPresent`.
    Present(Ipv4Address),
    /// `RTM_DELADDR`: deleted or expired. Maps to `Event::AddressRemoved`.
    Removed(Ipv4Address),
}

impl AddressChange {
    pub fn address(&self) -> &Ipv4Address {
        match self {
            Self::Present(a) | Self::Removed(a) => a,
        }
    }
}

/// Seconds for `IFA_CACHEINFO`: rounded up, at least 1, below "forever".
pub fn lifetime_secs(valid_for: Duration) -> u32 {
    let secs = valid_for.as_secs() + u64::from(valid_for.subsec_nanos() > 0);
    u32::try_from(secs.max(1))
        .unwrap_or(INFINITY_LIFE_TIME - 1)
        .min(INFINITY_LIFE_TIME - 1)
}

// ---- wire codec (sans-IO) ----

const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const AF_INET: u8 = 2;
/// `struct ifinfomsg` and `struct ifaddrmsg` sizes.
const IFINFOMSG_LEN: usize = 16;
const IFADDRMSG_LEN: usize = 8;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_CACHEINFO: u16 = 6;
const IFF_UP: u32 = 0x1;
const IFF_LOWER_UP: u32 = 0x1_0000;
/// `NLA_F_NESTED | NLA_F_NET_BYTEORDER`, masked off attribute types.
const NLA_TYPE_MASK: u16 = 0x3fff;
/// `RTMGRP_LINK` and `RTMGRP_IPV4_IFADDR` (bind-time group bits).
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// One decoded netlink message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// `NLMSG_ERROR`: `errno` 0 is an acknowledgement, else minus an errno.
    Error { errno: i32 },
    /// `NLMSG_DONE`: end of a dump.
    Done,
    /// `RTM_NEWLINK` (an answer, a dump entry or a notification).
    NewLink(Link),
    /// `RTM_DELLINK`.
    DelLink(Link),
    /// `RTM_NEWADDR` of an IPv4 address.
    NewAddress(Ipv4Address),
    /// `RTM_DELADDR` of an IPv4 address.
    DelAddress(Ipv4Address),
    /// Anything else: other types, other families, truncated payloads.
    Other,
}

/// The messages of one datagram with their sequence numbers. Stops at the
/// first header whose length does not fit; never panics on any input.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = (u32, Message)> + '_ {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32_at(rest, 0)? as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            rest = &[];
            return None;
        }
        let kind = u16_at(rest, 4)?;
        let seq = u32_at(rest, 8)?;
        let payload = &rest[NLMSG_HDRLEN..len];
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        let msg = match kind {
            NLMSG_ERROR => match i32_at(payload, 0) {
                Some(errno) => Message::Error { errno },
                None => Message::Other,
            },
            NLMSG_DONE => Message::Done,
            RTM_NEWLINK => link(payload).map_or(Message::Other, Message::NewLink),
            RTM_DELLINK => link(payload).map_or(Message::Other, Message::DelLink),
            RTM_NEWADDR => ipv4(payload).map_or(Message::Other, Message::NewAddress),
            RTM_DELADDR => ipv4(payload).map_or(Message::Other, Message::DelAddress),
            _ => Message::Other,
        };
        Some((seq, msg))
    })
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// `(type, value)` of each attribute; stops at the first malformed one.
fn attributes(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> + '_ {
    let mut rest = buf;
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(rest, 0)?);
        let kind = u16_at(rest, 2)? & NLA_TYPE_MASK;
        if len < 4 || len > rest.len() {
            rest = &[];
            return None;
        }
        let value = &rest[4..len];
        rest = rest.get(align4(len)..).unwrap_or(&[]);
        Some((kind, value))
    })
}

fn link(payload: &[u8]) -> Option<Link> {
    let index = u32_at(payload, 4)?;
    let flags = u32_at(payload, 8)?;
    let mut link = Link {
        index,
        name: String::new(),
        mac: None,
        up: flags & IFF_UP != 0,
        lower_up: flags & IFF_LOWER_UP != 0,
    };
    for (kind, value) in attributes(payload.get(IFINFOMSG_LEN..)?) {
        match kind {
            IFLA_IFNAME => {
                let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                link.name = String::from_utf8_lossy(&value[..end]).into_owned();
            }
            IFLA_ADDRESS => link.mac = <[u8; 6]>::try_from(value).ok(),
            _ => {}
        }
    }
    Some(link)
}

fn ipv4(payload: &[u8]) -> Option<Ipv4Address> {
    if *payload.first()? != AF_INET {
        return None;
    }
    let prefix = *payload.get(1)?;
    let ifindex = u32_at(payload, 4)?;
    let (mut local, mut address, mut valid_secs) = (None, None, None);
    for (kind, value) in attributes(payload.get(IFADDRMSG_LEN..)?) {
        let v4 = <[u8; 4]>::try_from(value).ok().map(Ipv4Addr::from);
        match kind {
            IFA_LOCAL => local = v4.or(local),
            IFA_ADDRESS => address = v4.or(address),
            // struct ifa_cacheinfo { ifa_prefered, ifa_valid, cstamp, tstamp }
            IFA_CACHEINFO => {
                if let Some(valid) = u32_at(value, 4).filter(|&v| v != INFINITY_LIFE_TIME) {
                    valid_secs = Some(valid);
                }
            }
            _ => {}
        }
    }
    Some(Ipv4Address {
        ifindex,
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer
        // on point-to-point links.
        addr: local.or(address)?,
        prefix,
        valid_secs,
    })
}

/// A request under construction: header, family header, attributes.
struct Request(Vec<u8>);

impl Request {
    fn new(kind: u16, flags: u16, seq: u32, family_header: &[u8]) -> Self {
        let mut b = Vec::with_capacity(64);
        b.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `done`
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(&flags.to_ne_bytes());
        b.extend_from_slice(&seq.to_ne_bytes());
        b.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it
        b.extend_from_slice(family_header);
        Self(b)
    }

    fn attr(mut self, kind: u16, value: &[u8]) -> Self {
        let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(value);
        self.0.resize(align4(self.0.len()), 0);
        self
    }

    fn done(mut self) -> Vec<u8> {
        let len = u32::try_from(self.0.len()).unwrap_or(u32::MAX);
        self.0[..4].copy_from_slice(&len.to_ne_bytes());
        self.0
    }
}

fn ifaddrmsg(prefix: u8, ifindex: u32) -> [u8; IFADDRMSG_LEN] {
    let mut h = [0u8; IFADDRMSG_LEN];
    h[0] = AF_INET;
    h[1] = prefix;
    h[4..].copy_from_slice(&ifindex.to_ne_bytes());
    h
}

/// `RTM_GETLINK` of the link called `name`; answered by one `RTM_NEWLINK`
/// or an error (`ENODEV` when there is none).
pub fn get_link_request(seq: u32, name: &str) -> Vec<u8> {
    let mut value = name.as_bytes().to_vec();
    value.push(0);
    Request::new(RTM_GETLINK, NLM_F_REQUEST, seq, &[0; IFINFOMSG_LEN])
        .attr(IFLA_IFNAME, &value)
        .done()
}

/// `RTM_GETADDR` dump of the IPv4 addresses (all interfaces).
pub fn dump_addresses_request(seq: u32) -> Vec<u8> {
    Request::new(
        RTM_GETADDR,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        &ifaddrmsg(0, 0),
    )
    .done()
}

/// The address attributes `ip addr add A/P` sends: `IFA_ADDRESS` and
/// `IFA_LOCAL`, and the broadcast address below /31.
fn address_attrs(mut r: Request, addr: Ipv4Addr, prefix: u8) -> Request {
    if addr.is_multicast() {
        return r;
    }
    r = r
        .attr(IFA_ADDRESS, &addr.octets())
        .attr(IFA_LOCAL, &addr.octets());
    if prefix < 31 {
        let brd = u32::MAX >> u32::from(prefix) | u32::from(addr);
        r = r.attr(IFA_BROADCAST, &brd.to_be_bytes());
    }
    r
}

/// `RTM_NEWADDR` with create + replace and both lifetimes `secs`.
pub fn put_address_request(
    seq: u32,
    ifindex: u32,
    addr: Ipv4Addr,
    prefix: u8,
    secs: u32,
) -> Vec<u8> {
    let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
    let r = Request::new(RTM_NEWADDR, flags, seq, &ifaddrmsg(prefix, ifindex));
    let mut cacheinfo = [0u8; 16];
    cacheinfo[..4].copy_from_slice(&secs.to_ne_bytes()); // ifa_prefered
    cacheinfo[4..8].copy_from_slice(&secs.to_ne_bytes()); // ifa_valid
    address_attrs(r, addr, prefix)
        .attr(IFA_CACHEINFO, &cacheinfo)
        .done()
}

/// `RTM_DELADDR` of `addr/prefix` on the interface.
pub fn delete_address_request(seq: u32, ifindex: u32, addr: Ipv4Addr, prefix: u8) -> Vec<u8> {
    let r = Request::new(
        RTM_DELADDR,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        &ifaddrmsg(prefix, ifindex),
    );
    address_attrs(r, addr, prefix).done()
}

// ---- adapter ----

/// Receive buffer: larger than any single message the kernel sends here
/// (a link with many attributes is a few KiB; dumps come in pages).
const RECV_BUF: usize = 64 * 1024;

/// A route netlink socket bound to `groups` (0: requests only).
struct Socket(Async<OwnedFd>);

impl Socket {
    fn open(groups: u32) -> io::Result<Self> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            None, // NETLINK_ROUTE is protocol 0
        )?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, groups))?;
        Ok(Self(Async::new(fd)?))
    }

    async fn send(&self, msg: &[u8]) -> io::Result<()> {
        let kernel = SocketAddrNetlink::new(0, 0);
        self.0
            .write_with(|fd| Ok(rustix::net::sendto(fd, msg, SendFlags::empty(), &kernel)?))
            .await
            .map(drop)
    }

    async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read_with(|fd| Ok(rustix::net::recv(fd, &mut *buf, RecvFlags::empty())?.0))
            .await
    }
}

/// What a request waits for.
enum Want {
    Link,
    Dump,
    Ack,
}

/// The answer to a request, per [`Want`].
enum Answer {
    Link(Link),
    Addresses(Vec<Ipv4Address>),
    Ack,
}

fn kernel(op: &'static str, errno: i32) -> NetlinkError {
    NetlinkError::Kernel {
        op,
        source: io::Error::from_raw_os_error(errno.saturating_neg()),
    }
}

/// Handle for address and link requests.
#[derive(Clone, Copy, Debug)]
pub struct Netlink(());

impl Netlink {
    /// Checks that a route netlink socket can be opened (so a missing
    /// permission is reported at start); each request opens its own.
    pub fn connect() -> Result<Self, NetlinkError> {
        Socket::open(0).map_err(NetlinkError::Socket)?;
        Ok(Self(()))
    }

    async fn request(
        &self,
        op: &'static str,
        req: &[u8],
        want: Want,
    ) -> Result<Answer, NetlinkError> {
        let sock = Socket::open(0).map_err(NetlinkError::Socket)?;
        sock.send(req).await.map_err(NetlinkError::Socket)?;
        let seq = u32_at(req, 8).unwrap_or(0);
        let mut buf = vec![0u8; RECV_BUF];
        let mut addresses = Vec::new();
        loop {
            let n = sock.recv(&mut buf).await.map_err(NetlinkError::Socket)?;
            if n == 0 {
                return Err(NetlinkError::Protocol {
                    op,
                    message: "empty answer".to_string(),
                });
            }
            for (s, msg) in messages(&buf[..n]) {
                if s != seq {
                    continue;
                }
                match (msg, &want) {
                    (Message::Error { errno: 0 }, Want::Ack) => return Ok(Answer::Ack),
                    (Message::Error { errno }, _) => return Err(kernel(op, errno)),
                    (Message::NewLink(l), Want::Link) => return Ok(Answer::Link(l)),
                    (Message::NewAddress(a), Want::Dump) => addresses.push(a),
                    (Message::Done, Want::Dump) => return Ok(Answer::Addresses(addresses)),
                    _ => {}
                }
            }
        }
    }

    /// The link called `name` (index, MAC, flags).
    pub async fn link(&self, name: &str) -> Result<Link, NetlinkError> {
        match self
            .request("get link", &get_link_request(1, name), Want::Link)
            .await
        {
            Ok(Answer::Link(l)) => Ok(l),
            Err(NetlinkError::Kernel { source, .. })
                if source.raw_os_error() == Some(libc::ENODEV) =>
            {
                Err(NetlinkError::NoSuchInterface(name.to_string()))
            }
            Err(e) => Err(e),
            Ok(_) => Err(NetlinkError::NoSuchInterface(name.to_string())),
        }
    }

    /// IPv4 addresses on the interface with this index (the start-up dump
    /// that yields `Event::AddressPresent`).
    pub async fn ipv4_addresses(&self, ifindex: u32) -> Result<Vec<Ipv4Address>, NetlinkError> {
        match self
            .request("dump addresses", &dump_addresses_request(1), Want::Dump)
            .await?
        {
            // The kernel dumps every interface; keep this one's.
            Answer::Addresses(mut all) => {
                all.retain(|a| a.ifindex == ifindex);
                Ok(all)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// IPv4 addresses of the interface called `name` (provisioning needs
    /// "the IPv4 address of a named interface", HA validation subnet checks).
    pub async fn ipv4_addresses_of(&self, name: &str) -> Result<Vec<Ipv4Address>, NetlinkError> {
        let link = self.link(name).await?;
        self.ipv4_addresses(link.index).await
    }

    /// `Action::AddAddress`: add `addr/prefix` on `interface` with a finite
    /// valid (and preferred) lifetime. Idempotent.
    pub async fn add_address(
        &self,
        interface: &str,
        addr: Ipv4Addr,
        prefix: u8,
        valid_for: Duration,
    ) -> Result<(), NetlinkError> {
        let link = self.link(interface).await?;
        self.put_address(link.index, addr, prefix, valid_for, "add address")
            .await
    }

    /// `Action::RefreshAddress`: replace the address with a new lifetime
    /// (re-creates it if it vanished meanwhile).
    pub async fn refresh_address(
        &self,
        interface: &str,
        addr: Ipv4Addr,
        prefix: u8,
        valid_for: Duration,
    ) -> Result<(), NetlinkError> {
        let link = self.link(interface).await?;
        self.put_address(link.index, addr, prefix, valid_for, "refresh address")
            .await
    }

    async fn put_address(
        &self,
        ifindex: u32,
        addr: Ipv4Addr,
        prefix: u8,
        valid_for: Duration,
        op: &'static str,
    ) -> Result<(), NetlinkError> {
        let req = put_address_request(1, ifindex, addr, prefix, lifetime_secs(valid_for));
        self.request(op, &req, Want::Ack).await.map(drop)
    }

    /// `Action::RemoveAddress`. Returns `false` if it was not there.
    pub async fn remove_address(
        &self,
        interface: &str,
        addr: Ipv4Addr,
        prefix: u8,
    ) -> Result<bool, NetlinkError> {
        let link = self.link(interface).await?;
        let req = delete_address_request(1, link.index, addr, prefix);
        match self.request("remove address", &req, Want::Ack).await {
            Ok(_) => Ok(true),
            Err(NetlinkError::Kernel { source, .. })
                if source.raw_os_error() == Some(libc::EADDRNOTAVAIL) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// A socket subscribed to notifications, with the decoded messages of
/// the last datagram not handed out yet.
struct Subscription {
    sock: Socket,
    buf: Vec<u8>,
    pending: VecDeque<Message>,
}

impl Subscription {
    fn open(groups: u32) -> Result<Self, NetlinkError> {
        Ok(Self {
            sock: Socket::open(groups).map_err(NetlinkError::Socket)?,
            buf: vec![0u8; RECV_BUF],
            pending: VecDeque::new(),
        })
    }

    /// The next notification; `None` if the socket failed. An overrun
    /// (`ENOBUFS`: the kernel dropped notifications) is logged and the
    /// watch goes on.
    async fn next(&mut self, what: &str) -> Option<Message> {
        loop {
            if let Some(m) = self.pending.pop_front() {
                return Some(m);
            }
            match self.sock.recv(&mut self.buf).await {
                Ok(n) => self
                    .pending
                    .extend(messages(&self.buf[..n]).map(|(_, m)| m)),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    log::warn!("netlink {what} watch: notifications lost (receive buffer overrun)");
                }
                Err(e) => {
                    log::error!("netlink {what} watch: {e}");
                    return None;
                }
            }
        }
    }
}

/// Subscription to `RTNLGRP_IPV4_IFADDR`.
pub struct AddressWatch(Subscription);

impl AddressWatch {
    /// Subscribes before returning, so a change made after this call is
    /// reported.
    pub fn subscribe() -> Result<Self, NetlinkError> {
        Subscription::open(RTMGRP_IPV4_IFADDR).map(Self)
    }

    /// The next IPv4 address change on any interface; `None` if the
    /// socket failed. Filter with [`AddressChange::address`].
    pub async fn next(&mut self) -> Option<AddressChange> {
        loop {
            match self.0.next("address").await? {
                Message::NewAddress(a) => return Some(AddressChange::Present(a)),
                Message::DelAddress(a) => return Some(AddressChange::Removed(a)),
                _ => {}
            }
        }
    }
}

/// Subscription to `RTNLGRP_LINK`: carrier and flag changes, for
/// `Event::LinkChanged { path, up: link.lower_up }`.
pub struct LinkWatch(Subscription);

impl LinkWatch {
    /// Subscribes before returning.
    pub fn subscribe() -> Result<Self, NetlinkError> {
        Subscription::open(RTMGRP_LINK).map(Self)
    }

    /// The next link notification (any interface; filter on
    /// [`Link::index`] or [`Link::name`]). A deleted link is reported with
    /// `up` and `lower_up` false. `None` if the socket failed.
    pub async fn next(&mut self) -> Option<Link> {
        loop {
            match self.0.next("link").await? {
                Message::NewLink(l) => return Some(l),
                Message::DelLink(l) => {
                    return Some(Link {
                        up: false,
                        lower_up: false,
                        ..l
                    });
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_rounds_up() {
        assert_eq!(lifetime_secs(Duration::from_millis(0)), 1);
        assert_eq!(lifetime_secs(Duration::from_millis(2500)), 3);
        assert_eq!(lifetime_secs(Duration::from_secs(3)), 3);
        assert_eq!(lifetime_secs(Duration::from_secs(u64::MAX)), u32::MAX - 1);
    }

    #[test]
    fn subnet() {
        let a = Ipv4Addr::new(198, 51, 100, 1);
        assert!(same_subnet(a, Ipv4Addr::new(198, 51, 100, 254), 24));
        assert!(!same_subnet(a, Ipv4Addr::new(198, 51, 101, 1), 24));
        assert!(same_subnet(a, Ipv4Addr::new(1, 2, 3, 4), 0));
        assert!(!same_subnet(a, a, 33));
    }

    /// The request `ip addr add 198.51.100.10/24 dev <7> valid_lft 3
    /// preferred_lft 3` would send, decoded back as the kernel's own
    /// RTM_NEWADDR notification has the same layout.
    #[test]
    fn address_request_round_trips() {
        let vip = Ipv4Addr::new(198, 51, 100, 10);
        let req = put_address_request(9, 7, vip, 24, 3);
        assert_eq!(req.len() % 4, 0);
        assert_eq!(u32_at(&req, 0), Some(req.len() as u32));
        let all: Vec<_> = messages(&req).collect();
        assert_eq!(
            all,
            vec![(
                9,
                Message::NewAddress(Ipv4Address {
                    ifindex: 7,
                    addr: vip,
                    prefix: 24,
                    valid_secs: Some(3),
                })
            )]
        );
        let brd = attributes(&req[NLMSG_HDRLEN + IFADDRMSG_LEN..])
            .find(|(k, _)| *k == IFA_BROADCAST)
            .map(|(_, v)| v.to_vec());
        assert_eq!(brd, Some(vec![198, 51, 100, 255]));
    }

    #[test]
    fn truncated_input_never_panics() {
        let mut req = get_link_request(3, "lan0");
        // Pretend it is an RTM_NEWLINK answer.
        req[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
        let full: Vec<_> = messages(&req).collect();
        assert!(matches!(&full[..], [(3, Message::NewLink(l))] if l.name == "lan0"));
        for n in 0..req.len() {
            let _ = messages(&req[..n]).count();
            let mut bad = req.clone();
            bad[n] = 0xff;
            let _ = messages(&bad).count();
        }
    }
}
