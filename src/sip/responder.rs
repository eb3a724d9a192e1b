//! The PURE PnP responder: datagram in, datagrams out.
//!
//! A SUBSCRIBE with `Event: ua-profile` and a device MAC that the lookup
//! knows gets a `200 OK` and one NOTIFY with the provisioning URL, both to
//! the source address and port of the request. A retransmission (same
//! Call-ID and MAC within [`WINDOW`]) gets the same `200 OK` again (same
//! To-tag) but no second NOTIFY. A device that was just notified is not
//! notified again for [`MAC_GAP`], whatever the Call-ID: SUBSCRIBEs are
//! multicast and unauthenticated, so a flood naming a known MAC with fresh
//! Call-IDs (and spoofed sources) must not turn into a flood of NOTIFYs.
//! Memory is bounded: at most [`MAX_ENTRIES`] Call-IDs are remembered;
//! expired ones go first, then the oldest; the per-device gaps expire
//! after [`MAC_GAP`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::clock::Instant;

use super::{Message, Notify, device_mac, header_param, header_uri, notify, ok_response, parse};
use crate::model::Mac;

/// How long a Call-ID is remembered (SIP timer F, 64 × T1).
pub const WINDOW: Duration = Duration::from_secs(32);
/// Most Call-IDs remembered at once.
pub const MAX_ENTRIES: usize = 1024;
/// The least time between two NOTIFYs to one device (new Call-IDs; a
/// retransmission gets its `200 OK` again, never a NOTIFY). A phone that
/// starts over sends its next SUBSCRIBE far later than this.
pub const MAC_GAP: Duration = Duration::from_secs(2);

/// What the product says of a device's MAC (the responder's lookup).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A device to answer, with its provisioning URL.
    Answer(String),
    /// A device this node does not answer for, and why (the HA passive node;
    /// a device that is disabled or got no files).
    Silent(&'static str),
    /// No such device.
    Unknown,
}

/// What became of one datagram (for the fetch log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 200 OK and NOTIFY with this URL sent.
    Notified(String),
    /// A retransmission: 200 OK again, no NOTIFY.
    Retransmission,
    /// A known device notified less than [`MAC_GAP`] ago, under another
    /// Call-ID: nothing sent.
    Throttled,
    /// A known device this node does not answer for ([`Lookup::Silent`]):
    /// nothing sent.
    Silent(&'static str),
    /// No device has this MAC: nothing sent.
    Unknown,
    /// A ua-profile SUBSCRIBE without a MAC we can read: nothing sent.
    NoMac,
    /// Not a SIP message, or not a ua-profile SUBSCRIBE: nothing sent.
    Ignored,
}

/// One exchange, as reported to the fetch log hook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    pub source: SocketAddr,
    pub mac: Option<Mac>,
    pub outcome: Outcome,
}

struct Entry {
    seen: Instant,
    to_tag: String,
}

pub struct Responder {
    seed: u64,
    counter: u64,
    /// By (MAC, Call-ID): the same Call-ID naming another MAC is no
    /// retransmission, and cannot displace the phone's own entry.
    calls: HashMap<(Mac, String), Entry>,
    /// When each device was last notified (entries younger than [`MAC_GAP`]).
    notified: HashMap<Mac, Instant>,
}

impl Responder {
    /// `seed` makes tags and branches unique across restarts (the adapter
    /// passes something random-ish, tests a constant).
    pub fn new(seed: u64) -> Responder {
        Responder {
            seed,
            counter: 0,
            calls: HashMap::new(),
            notified: HashMap::new(),
        }
    }

    pub fn remembered(&self) -> usize {
        self.calls.len()
    }

    fn token(&mut self) -> String {
        self.counter = self.counter.wrapping_add(1);
        // splitmix64: distinct, unpredictable-looking tokens from a counter.
        let mut z = self
            .seed
            .wrapping_add(self.counter.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        format!("{:016x}", z ^ (z >> 31))
    }

    /// Handles one datagram from `source` received on local address `local`
    /// (port: ours). `lookup` says whether and with which URL to answer.
    pub fn handle(
        &mut self,
        now: Instant,
        source: SocketAddr,
        local: SocketAddr,
        bytes: &[u8],
        lookup: impl FnOnce(Mac) -> Lookup,
    ) -> (Vec<(SocketAddr, Vec<u8>)>, Exchange) {
        let exchange = |mac, outcome| Exchange {
            source,
            mac,
            outcome,
        };
        let Ok(request) = parse(bytes) else {
            return (Vec::new(), exchange(None, Outcome::Ignored));
        };
        // Call-ID, From, To, CSeq and Via are mandatory (RFC 3261 8.1.1);
        // without them there is nothing to echo or to deduplicate on.
        let complete = ["Call-ID", "From", "To", "CSeq", "Via"]
            .iter()
            .all(|h| request.header(h).is_some_and(|v| !v.is_empty()));
        if !complete || !is_pnp_subscribe(&request) {
            return (Vec::new(), exchange(None, Outcome::Ignored));
        }
        let Some(mac) = device_mac(&request) else {
            return (Vec::new(), exchange(None, Outcome::NoMac));
        };
        let key = (
            mac,
            request.header("Call-ID").unwrap_or_default().to_string(),
        );
        self.expire(now);
        if let Some(entry) = self.calls.get(&key) {
            let ok = ok_response(&request, &entry.to_tag);
            return (
                vec![(source, ok)],
                exchange(Some(mac), Outcome::Retransmission),
            );
        }
        let url = match lookup(mac) {
            Lookup::Answer(url) => url,
            Lookup::Silent(why) => return (Vec::new(), exchange(Some(mac), Outcome::Silent(why))),
            Lookup::Unknown => return (Vec::new(), exchange(Some(mac), Outcome::Unknown)),
        };
        if self.notified.contains_key(&mac) {
            return (Vec::new(), exchange(Some(mac), Outcome::Throttled));
        }
        let to_tag = self.token();
        let ok = ok_response(&request, &to_tag);
        let from = request.header("From").unwrap_or_default();
        let to = request.header("To").unwrap_or_default();
        let uri = request
            .header("Contact")
            .map(header_uri)
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| header_uri(from))
            .to_string();
        let local_text = match local.ip() {
            IpAddr::V6(v6) => format!("[{v6}]:{}", local.port()),
            IpAddr::V4(v4) => format!("{v4}:{}", local.port()),
        };
        let branch = format!("z9hG4bK{}", self.token());
        let from_tag = header_param(to, "tag").map_or(to_tag.clone(), str::to_string);
        let body = notify(&Notify {
            uri: &uri,
            local: &local_text,
            branch: &branch,
            call_id: &key.1,
            cseq: 1,
            from_uri: header_uri(to),
            from_tag: &from_tag,
            to: from,
            url: &url,
        });
        self.remember(now, key, to_tag);
        self.notified.insert(mac, now);
        (
            vec![(source, ok), (source, body)],
            exchange(Some(mac), Outcome::Notified(url)),
        )
    }

    fn expire(&mut self, now: Instant) {
        self.calls
            .retain(|_, e| now.saturating_since(e.seen) < WINDOW);
        self.notified
            .retain(|_, at| now.saturating_since(*at) < MAC_GAP);
    }

    fn remember(&mut self, now: Instant, key: (Mac, String), to_tag: String) {
        if self.calls.len() >= MAX_ENTRIES {
            let oldest = self
                .calls
                .iter()
                .min_by_key(|(_, e)| e.seen)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.calls.remove(&k);
            }
        }
        self.calls.insert(key, Entry { seen: now, to_tag });
    }
}

/// A SUBSCRIBE for the `ua-profile` event package.
pub fn is_pnp_subscribe(m: &Message) -> bool {
    m.method()
        .is_some_and(|x| x.eq_ignore_ascii_case("SUBSCRIBE"))
        && m.header("Event").is_some_and(|e| {
            e.split(';')
                .next()
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("ua-profile"))
        })
}
