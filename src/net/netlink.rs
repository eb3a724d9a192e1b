//! rtnetlink adapter: IPv4 addresses with lifetimes, link lookups and the
//! address watch.
//!
//! API boundary: only this module knows rtnetlink. Connections are built
//! with `new_connection_with_socket::<SmolSocket>()`; the connection future
//! is returned to the caller, who spawns it on its executor (only the
//! daemon spawns).
//!
//! Lifetimes: `AddAddress`/`RefreshAddress` send `RTM_NEWADDR` with
//! `NLM_F_CREATE | NLM_F_REPLACE` and `IFA_CACHEINFO { valid, preferred }`
//! rounded up to whole seconds, so the kernel drops the address by itself
//! when the daemon stops refreshing it. Replace also makes add idempotent
//! and lets a refresh re-create an address that vanished.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::time::Duration;

use netlink_packet_route::address::{AddressAttribute, AddressMessage, CacheInfo};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::sys::{SmolSocket, SocketAddr};
use rtnetlink::{AddressMessageBuilder, Handle, MulticastGroup};
use smol::stream::{Stream, StreamExt};

/// Lifetime value the kernel reads as "forever".
pub const INFINITY_LIFE_TIME: u32 = u32::MAX;

/// Errors of one netlink operation.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetlinkError {
    /// Opening or binding the netlink socket failed.
    Socket(io::Error),
    /// No interface with this name.
    NoSuchInterface(String),
    /// The kernel refused a request (contains the errno).
    Kernel { op: &'static str, source: io::Error },
    /// Any other rtnetlink failure (unexpected message, closed connection).
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

fn map_err(op: &'static str, e: rtnetlink::Error) -> NetlinkError {
    use rtnetlink::Error as E;
    // Never format `e` itself: its Display prints `UnexpectedMessage` with
    // `{:?}`, which links the Debug impls of every route message type
    // (~150 KB of the stripped binary).
    let message = match e {
        E::NetlinkError(m) if m.code.is_some() => {
            return NetlinkError::Kernel {
                op,
                source: m.to_io(),
            };
        }
        E::NetlinkError(_) => "error message without code".to_string(),
        E::UnexpectedMessage(_) => "unexpected message".to_string(),
        E::RequestFailed => "request failed (connection closed)".to_string(),
        E::NamespaceError(s) | E::InvalidNla(s) => s,
        E::InvalidHardwareAddress(_) => "invalid hardware address".to_string(),
        E::InvalidIp(_) | E::InvalidAddress(..) => "invalid address".to_string(),
    };
    NetlinkError::Protocol { op, message }
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

/// Handle for address and link requests.
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// Opens a route netlink socket. Spawn the returned future on the
    /// executor before awaiting any request; it ends when every handle is
    /// dropped.
    pub fn connect() -> Result<(Self, impl Future<Output = ()> + Send + 'static), NetlinkError> {
        let (conn, handle, _unsolicited) =
            rtnetlink::new_connection_with_socket::<SmolSocket>().map_err(NetlinkError::Socket)?;
        Ok((Self { handle }, conn))
    }

    /// The link called `name` (index, MAC, flags).
    pub async fn link(&self, name: &str) -> Result<Link, NetlinkError> {
        let mut stream = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match stream.next().await {
            Some(Ok(msg)) => Ok(link_from(&msg)),
            Some(Err(rtnetlink::Error::NetlinkError(m)))
                if m.code.is_some_and(|c| c.get() == -libc::ENODEV) =>
            {
                Err(NetlinkError::NoSuchInterface(name.to_string()))
            }
            Some(Err(e)) => Err(map_err("get link", e)),
            None => Err(NetlinkError::NoSuchInterface(name.to_string())),
        }
    }

    /// IPv4 addresses on the interface with this index (the start-up dump
    /// that yields `Event::AddressPresent`).
    pub async fn ipv4_addresses(&self, ifindex: u32) -> Result<Vec<Ipv4Address>, NetlinkError> {
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute();
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            let msg = item.map_err(|e| map_err("dump addresses", e))?;
            // The filter is applied in user space by rtnetlink; keep ours too.
            if let Some(a) = ipv4_from(&msg).filter(|a| a.ifindex == ifindex) {
                out.push(a);
            }
        }
        Ok(out)
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
        let secs = lifetime_secs(valid_for);
        let mut req = self
            .handle
            .address()
            .add(ifindex, IpAddr::V4(addr), prefix)
            .replace();
        let mut info = CacheInfo::default();
        info.ifa_valid = secs;
        info.ifa_preferred = secs;
        req.message_mut()
            .attributes
            .push(AddressAttribute::CacheInfo(info));
        req.execute().await.map_err(|e| map_err(op, e))
    }

    /// `Action::RemoveAddress`. Returns `false` if it was not there.
    pub async fn remove_address(
        &self,
        interface: &str,
        addr: Ipv4Addr,
        prefix: u8,
    ) -> Result<bool, NetlinkError> {
        let link = self.link(interface).await?;
        let msg = AddressMessageBuilder::<Ipv4Addr>::new()
            .index(link.index)
            .address(addr, prefix)
            .build();
        match self.handle.address().del(msg).execute().await {
            Ok(()) => Ok(true),
            Err(rtnetlink::Error::NetlinkError(m))
                if m.code.is_some_and(|c| c.get() == -libc::EADDRNOTAVAIL) =>
            {
                Ok(false)
            }
            Err(e) => Err(map_err("remove address", e)),
        }
    }
}

fn link_from(msg: &LinkMessage) -> Link {
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        mac: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        lower_up: msg.header.flags.contains(LinkFlags::LowerUp),
    };
    for attr in &msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name.clone_from(n),
            LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
            _ => {}
        }
    }
    link
}

fn ipv4_from(msg: &AddressMessage) -> Option<Ipv4Address> {
    if msg.header.family != AddressFamily::Inet {
        return None;
    }
    let mut local = None;
    let mut address = None;
    let mut valid_secs = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(IpAddr::V4(a)) => local = Some(*a),
            AddressAttribute::Address(IpAddr::V4(a)) => address = Some(*a),
            AddressAttribute::CacheInfo(c) if c.ifa_valid != INFINITY_LIFE_TIME => {
                valid_secs = Some(c.ifa_valid);
            }
            _ => {}
        }
    }
    Some(Ipv4Address {
        ifindex: msg.header.index,
        // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer
        // on point-to-point links.
        addr: local.or(address)?,
        prefix: msg.header.prefix_len,
        valid_secs,
    })
}

/// The unsolicited-message stream rtnetlink hands out.
type Unsolicited =
    Pin<Box<dyn Stream<Item = (NetlinkMessage<RouteNetlinkMessage>, SocketAddr)> + Send>>;

/// Subscription to `RTNLGRP_IPV4_IFADDR`.
pub struct AddressWatch {
    messages: Unsolicited,
}

impl AddressWatch {
    /// Subscribes before returning, so a change made after this call is
    /// reported. Spawn the returned future (the socket reader).
    pub fn subscribe() -> Result<(Self, impl Future<Output = ()> + Send + 'static), NetlinkError> {
        let (conn, _handle, messages) =
            rtnetlink::new_multicast_connection_with_socket::<SmolSocket>(&[
                MulticastGroup::Ipv4Ifaddr,
            ])
            .map_err(NetlinkError::Socket)?;
        Ok((
            Self {
                messages: Box::pin(messages),
            },
            conn,
        ))
    }

    /// The next IPv4 address change on any interface; `None` if the
    /// connection ended. Filter with [`AddressChange::address`].
    pub async fn next(&mut self) -> Option<AddressChange> {
        while let Some((msg, _from)) = self.messages.next().await {
            let NetlinkPayload::InnerMessage(inner) = msg.payload else {
                continue;
            };
            match inner {
                RouteNetlinkMessage::NewAddress(m) => {
                    if let Some(a) = ipv4_from(&m) {
                        return Some(AddressChange::Present(a));
                    }
                }
                RouteNetlinkMessage::DelAddress(m) => {
                    if let Some(a) = ipv4_from(&m) {
                        return Some(AddressChange::Removed(a));
                    }
                }
                _ => {}
            }
        }
        None
    }
}

/// Subscription to `RTNLGRP_LINK`: carrier and flag changes, for
/// `Event::LinkChanged { path, up: link.lower_up }`.
pub struct LinkWatch {
    messages: Unsolicited,
}

impl LinkWatch {
    /// Subscribes before returning. Spawn the returned future.
    pub fn subscribe() -> Result<(Self, impl Future<Output = ()> + Send + 'static), NetlinkError> {
        let (conn, _handle, messages) =
            rtnetlink::new_multicast_connection_with_socket::<SmolSocket>(&[MulticastGroup::Link])
                .map_err(NetlinkError::Socket)?;
        Ok((
            Self {
                messages: Box::pin(messages),
            },
            conn,
        ))
    }

    /// The next link notification (any interface; filter on
    /// [`Link::index`] or [`Link::name`]). A deleted link is reported with
    /// `up` and `lower_up` false. `None` if the connection ended.
    pub async fn next(&mut self) -> Option<Link> {
        while let Some((msg, _from)) = self.messages.next().await {
            let NetlinkPayload::InnerMessage(inner) = msg.payload else {
                continue;
            };
            match inner {
                RouteNetlinkMessage::NewLink(m) => return Some(link_from(&m)),
                RouteNetlinkMessage::DelLink(m) => {
                    return Some(Link {
                        up: false,
                        lower_up: false,
                        ..link_from(&m)
                    });
                }
                _ => {}
            }
        }
        None
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
}
