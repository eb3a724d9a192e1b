//! Ping group bookkeeping with dampening.
//!
//! The adapter pings every member each `ping_interval` and reports each
//! outcome as `Event::PingResult`; this module only counts. A member's new
//! state counts in the node-to-node comparison only after it held for
//! `ping_dampen`, so a flapping member never moves the resource. The first
//! result for a member counts at once (there is nothing to protect yet).
//! Acquiring because the peer went silent uses the *fresh* count instead:
//! members whose latest result was a reply received recently.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::clock::Instant;

#[derive(Clone, Debug)]
struct Member {
    addr: Ipv4Addr,
    raw_up: Option<bool>,
    raw_since: Instant,
    last_result: Instant,
    effective: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct PingGroup {
    members: Vec<Member>,
    dampen: Duration,
    fresh: Duration,
}

impl PingGroup {
    pub(crate) fn new(addrs: &[Ipv4Addr], dampen: Duration, interval: Duration) -> PingGroup {
        let members = addrs
            .iter()
            .map(|&addr| Member {
                addr,
                raw_up: None,
                raw_since: Instant::ZERO,
                last_result: Instant::ZERO,
                effective: false,
            })
            .collect();
        PingGroup {
            members,
            dampen,
            fresh: interval.saturating_mul(3),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub(crate) fn total(&self) -> u8 {
        u8::try_from(self.members.len()).unwrap_or(u8::MAX)
    }

    /// Records one result; unknown targets are ignored.
    pub(crate) fn record(&mut self, now: Instant, target: Ipv4Addr, up: bool) {
        let Some(m) = self.members.iter_mut().find(|m| m.addr == target) else {
            return;
        };
        match m.raw_up {
            None => {
                m.effective = up;
                m.raw_since = now;
            }
            Some(prev) if prev != up => m.raw_since = now,
            Some(_) => {}
        }
        m.raw_up = Some(up);
        m.last_result = now;
        self.update(now);
    }

    /// Promotes states that held for the dampening time.
    pub(crate) fn update(&mut self, now: Instant) {
        for m in &mut self.members {
            if let Some(raw) = m.raw_up
                && raw != m.effective
                && now.saturating_since(m.raw_since) >= self.dampen
            {
                m.effective = raw;
            }
        }
    }

    /// When a pending state change will be promoted.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.members
            .iter()
            .filter(|m| m.raw_up.is_some_and(|raw| raw != m.effective))
            .map(|m| m.raw_since + self.dampen)
            .min()
    }

    /// Dampened count of reachable members.
    pub(crate) fn effective_count(&self) -> u8 {
        let n = self.members.iter().filter(|m| m.effective).count();
        u8::try_from(n).unwrap_or(u8::MAX)
    }

    /// Members whose latest result is a recent reply.
    pub(crate) fn fresh_count(&self, now: Instant) -> usize {
        self.members
            .iter()
            .filter(|m| m.raw_up == Some(true) && now.saturating_since(m.last_result) <= self.fresh)
            .count()
    }

    /// Every member has been tried at least once.
    pub(crate) fn ready(&self) -> bool {
        self.members.iter().all(|m| m.raw_up.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn flapping_member_is_dampened() {
        let a = Ipv4Addr::new(10, 0, 0, 100);
        let mut g = PingGroup::new(&[a], Duration::from_secs(5), Duration::from_secs(1));
        assert!(!g.ready());
        g.record(at(0), a, true);
        assert_eq!(g.effective_count(), 1);
        for i in 1..20u64 {
            g.record(at(i * 1000), a, i % 3 != 0);
            assert_eq!(g.effective_count(), 1, "at {i} s");
        }
        g.record(at(20_000), a, false);
        assert_eq!(g.next_deadline(), Some(at(25_000)));
        g.update(at(24_999));
        assert_eq!(g.effective_count(), 1);
        g.update(at(25_000));
        assert_eq!(g.effective_count(), 0);
        assert_eq!(g.fresh_count(at(25_000)), 0);
    }

    #[test]
    fn fresh_count_expires() {
        let a = Ipv4Addr::new(10, 0, 0, 100);
        let mut g = PingGroup::new(&[a], Duration::from_secs(5), Duration::from_secs(1));
        g.record(at(0), a, true);
        assert_eq!(g.fresh_count(at(3000)), 1);
        assert_eq!(g.fresh_count(at(3001)), 0);
    }
}
