//! Protecting the credentials in provisioning files.
//!
//! MAC addresses are guessable, and a MAC-named file holds a SIP password,
//! so an address that keeps asking for unknown MAC-named files is scanning:
//! [`ScanGuard`] blocks it for a while, on HTTP and TFTP alike, while other
//! addresses (real phones) go on. A request whose User-Agent carries a MAC
//! other than the file's is refused ([`ua_mismatch`]).
//!
//! Invariant: pure. Time is an argument; memory is bounded whatever the
//! number of addresses seen.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use crate::clock::Instant;
use crate::model::Mac;

/// The MAC a file name or User-Agent carries: the first run of exactly
/// twelve hex digits not touching other hex digits, or six hex pairs
/// separated by `:` or `-`. Runs starting with six zeros are vendors'
/// model-wide names (Poly `000000000000.cfg`, Yealink `y000000000108.cfg`),
/// no phone's MAC (OUI 00:00:00 is on no phone).
pub fn find_mac(text: &str) -> Option<Mac> {
    let b = text.as_bytes();
    let hex = |i: usize| b.get(i).is_some_and(u8::is_ascii_hexdigit);
    let bounded = |start: usize, end: usize| (start == 0 || !hex(start - 1)) && !hex(end);
    let phone = |m: &Mac| {
        !m.format(crate::model::prov::MacFormat::Lower)
            .starts_with("000000")
    };
    for start in 0..b.len() {
        if !hex(start) || (start > 0 && hex(start - 1)) {
            continue;
        }
        // Six pairs with separators.
        if let Some(candidate) = b.get(start..start + 17) {
            let sep = candidate[2];
            let paired = (sep == b':' || sep == b'-')
                && (0..6).all(|p| hex(start + 3 * p) && hex(start + 3 * p + 1))
                && (1..6).all(|p| candidate[3 * p - 1] == sep);
            if paired
                && bounded(start, start + 17)
                && let Some(mac) = text.get(start..start + 17).and_then(|t| Mac::parse(t).ok())
                && phone(&mac)
            {
                return Some(mac);
            }
        }
        // Twelve digits in a row.
        if (start..start + 12).all(hex)
            && bounded(start, start + 12)
            && let Some(mac) = text.get(start..start + 12).and_then(|t| Mac::parse(t).ok())
            && phone(&mac)
        {
            return Some(mac);
        }
    }
    None
}

/// Whether the User-Agent names a MAC other than the file's.
pub fn ua_mismatch(user_agent: Option<&str>, file_mac: Option<Mac>) -> Option<(Mac, Mac)> {
    let ua = find_mac(user_agent?)?;
    let file = file_mac?;
    (ua != file).then_some((ua, file))
}

/// When an address counts as scanning, and for how long it is blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// Unknown MAC-named files within `window` that trigger a block;
    /// 0 disables blocking.
    pub misses: u32,
    pub window: Duration,
    pub block: Duration,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            misses: 10,
            window: Duration::from_secs(60),
            block: Duration::from_secs(600),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    window_start: Instant,
    misses: u32,
    blocked_until: Option<Instant>,
    last_seen: Instant,
}

/// Per-address miss counts and blocks.
#[derive(Debug)]
pub struct ScanGuard {
    pub thresholds: Thresholds,
    entries: HashMap<IpAddr, Entry>,
    max_entries: usize,
}

/// What [`ScanGuard::miss`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// This miss started a block.
    Blocked,
}

impl ScanGuard {
    /// Addresses tracked at once; the least recently seen is forgotten.
    pub const MAX_ENTRIES: usize = 4096;

    pub fn new(thresholds: Thresholds) -> ScanGuard {
        ScanGuard {
            thresholds,
            entries: HashMap::new(),
            max_entries: Self::MAX_ENTRIES,
        }
    }

    /// Whether `ip` is blocked now.
    pub fn is_blocked(&self, now: Instant, ip: IpAddr) -> bool {
        self.entries
            .get(&ip)
            .and_then(|e| e.blocked_until)
            .is_some_and(|until| now < until)
    }

    /// Records a request for an unknown MAC-named file.
    pub fn miss(&mut self, now: Instant, ip: IpAddr) -> Verdict {
        if self.thresholds.misses == 0 {
            return Verdict::Allowed;
        }
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.max_entries {
            self.evict(now);
        }
        let t = self.thresholds;
        let e = self.entries.entry(ip).or_insert(Entry {
            window_start: now,
            misses: 0,
            blocked_until: None,
            last_seen: now,
        });
        e.last_seen = now;
        if e.blocked_until.is_some_and(|until| now < until) {
            return Verdict::Allowed;
        }
        if now.saturating_since(e.window_start) > t.window {
            e.window_start = now;
            e.misses = 0;
        }
        e.misses = e.misses.saturating_add(1);
        if e.misses >= t.misses {
            e.blocked_until = Some(now + t.block);
            e.misses = 0;
            e.window_start = now;
            return Verdict::Blocked;
        }
        Verdict::Allowed
    }

    /// Addresses blocked now, with the time left.
    pub fn blocked(&self, now: Instant) -> Vec<(IpAddr, Duration)> {
        let mut out: Vec<(IpAddr, Duration)> = self
            .entries
            .iter()
            .filter_map(|(ip, e)| {
                let until = e.blocked_until?;
                (now < until).then(|| (*ip, until.saturating_since(now)))
            })
            .collect();
        out.sort();
        out
    }

    /// Forgets expired entries, and the least recently seen if still full.
    fn evict(&mut self, now: Instant) {
        let window = self.thresholds.window;
        self.entries.retain(|_, e| {
            e.blocked_until.is_some_and(|u| now < u) || now.saturating_since(e.last_seen) <= window
        });
        if self.entries.len() >= self.max_entries
            && let Some(oldest) = self
                .entries
                .iter()
                .filter(|(_, e)| e.blocked_until.is_none_or(|u| now >= u))
                .min_by_key(|(_, e)| e.last_seen)
                .map(|(ip, _)| *ip)
        {
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> Instant {
        Instant::from_millis(s * 1000)
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([198, 51, 100, n])
    }

    #[test]
    fn macs_in_names_and_user_agents() {
        let m = |s: &str| find_mac(s).map(|m| m.to_string());
        assert_eq!(m("001565aabb01.cfg").as_deref(), Some("001565AABB01"));
        assert_eq!(
            m("snomD785-000413922D24.htm").as_deref(),
            Some("000413922D24")
        );
        assert_eq!(m("cfg000b828aa872.xml").as_deref(), Some("000B828AA872"));
        assert_eq!(
            m("acme-00-04-A3-00-00-01.xml").as_deref(),
            Some("0004A3000001")
        );
        assert_eq!(
            m("Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37").as_deref(),
            Some("0015654AA937")
        );
        assert_eq!(
            m("Mozilla/4.0 (compatible; snom710-SIP 8.7.5.35 1.1.5-IFX-05.01.12 000413741767)")
                .as_deref(),
            Some("000413741767")
        );
        assert_eq!(
            m("Gigaset N720 DM PRO/70.089.00.000.000;7C2F80CA21E4").as_deref(),
            Some("7C2F80CA21E4")
        );
        assert_eq!(
            m("Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872").as_deref(),
            Some("000B828AA872")
        );
        assert_eq!(m("FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430"), None);
        assert_eq!(
            m("0123456789abcdef0123").as_deref(),
            None,
            "a longer hex run is no MAC"
        );
        assert_eq!(m(""), None);
        // Vendors' model-wide names are no MACs.
        assert_eq!(m("y000000000108.cfg"), None);
        assert_eq!(m("000000000000.cfg"), None);
        assert_eq!(m("000000000000-directory.xml"), None);
        assert_eq!(
            m("y000000000000-0015654aa937").as_deref(),
            Some("0015654AA937"),
            "a zero run does not hide a later MAC"
        );
    }

    #[test]
    fn user_agent_mac_must_match_the_file() {
        let file = find_mac("001565aabb01.cfg");
        assert_eq!(
            ua_mismatch(Some("Yealink SIP-T46G 28.72.0.1 00:15:65:aa:bb:01"), file),
            None
        );
        let other = ua_mismatch(Some("Yealink SIP-T46G 28.72.0.1 00:15:65:aa:bb:02"), file);
        assert_eq!(
            other.map(|(u, f)| (u.to_string(), f.to_string())),
            Some(("001565AABB02".into(), "001565AABB01".into()))
        );
        assert_eq!(
            ua_mismatch(Some("curl/8.0"), file),
            None,
            "no MAC in the agent"
        );
        assert_eq!(ua_mismatch(None, file), None);
        assert_eq!(
            ua_mismatch(Some("x 001565aabb02"), None),
            None,
            "no MAC in the file"
        );
    }

    #[test]
    fn scanners_are_blocked_and_others_are_not() {
        let mut g = ScanGuard::new(Thresholds {
            misses: 3,
            window: Duration::from_secs(10),
            block: Duration::from_secs(60),
        });
        assert_eq!(g.miss(at(0), ip(1)), Verdict::Allowed);
        assert_eq!(g.miss(at(1), ip(1)), Verdict::Allowed);
        assert_eq!(g.miss(at(1), ip(2)), Verdict::Allowed);
        assert_eq!(g.miss(at(2), ip(1)), Verdict::Blocked);
        assert!(g.is_blocked(at(3), ip(1)));
        assert!(!g.is_blocked(at(3), ip(2)), "another address goes on");
        assert!(g.is_blocked(at(61), ip(1)));
        assert!(!g.is_blocked(at(62), ip(1)), "the block ends");
        assert_eq!(g.blocked(at(3)).len(), 1);
        // Misses spread wider than the window never block.
        for s in 0..10 {
            assert_eq!(g.miss(at(100 + s * 11), ip(3)), Verdict::Allowed);
        }
    }

    #[test]
    fn disabled_and_bounded() {
        let mut g = ScanGuard::new(Thresholds {
            misses: 0,
            ..Thresholds::default()
        });
        for _ in 0..100 {
            assert_eq!(g.miss(at(0), ip(1)), Verdict::Allowed);
        }
        let mut g = ScanGuard::new(Thresholds::default());
        for i in 0..(ScanGuard::MAX_ENTRIES as u32 * 2) {
            let addr = IpAddr::from(std::net::Ipv4Addr::from(0xc6336400 + i));
            g.miss(at(u64::from(i / 100)), addr);
        }
        assert!(g.entries.len() <= ScanGuard::MAX_ENTRIES);
    }
}
