//! Login lockout, in memory and bounded whatever an attacker sends.
//!
//! The decision and the count are one step: a login takes a
//! [`Ticket`] ([`Lockout::reserve`]) *before* its password is verified, and
//! a reservation counts as a failure until [`Lockout::finish`] says
//! otherwise. So parallel guesses never get more than the threshold of
//! password verifications.
//!
//! Three fixed-size tables of [`SLOTS`] slots each, indexed by a keyed hash
//! (a random key per process, so an attacker cannot aim at a slot):
//! - per (user, address): threshold `N` (`api_lockout_failures`);
//! - per user, across addresses: `4N` (many addresses get no more);
//! - per address, across user names: `8N`.
//!
//! Reaching a threshold locks that slot for `api_lockout_seconds`, doubled
//! on each lock in a row, up to 64 times. A slot whose key differs is taken
//! over only once idle (nothing pending, not locked): two keys that share a
//! busy slot share its count, which can only make the lockout stricter.
//! Memory: 3 × 2048 slots × 40 bytes, fixed. Nothing is written to disk.
//!
//! Pure: time comes in as an argument.

use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

/// Slots per table.
pub const SLOTS: usize = 2048;
/// The per-user threshold, as a multiple of the per-pair one.
pub const USER_FACTOR: u32 = 4;
/// The per-address threshold, as a multiple of the per-pair one.
pub const ADDRESS_FACTOR: u32 = 8;
/// Longest lock, as a multiple of the configured one.
pub const MAX_BACKOFF: u32 = 64;
/// A reservation not finished in this time (client gone) stops counting.
const PENDING_US: i64 = 150_000_000;

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    tag: u64,
    failures: u32,
    pending: u32,
    /// Locks in a row (the next lock lasts `lock << strikes`).
    strikes: u32,
    locked_until_us: i64,
    /// Last failure or reservation; counts older than the lock time lapse.
    touched_us: i64,
}

impl Slot {
    fn idle(&self, now_us: i64, lock_us: i64) -> bool {
        self.locked_until_us <= now_us
            && (self.pending == 0 || now_us - self.touched_us > PENDING_US)
            && (self.failures == 0 || now_us - self.touched_us > lock_us)
    }
}

/// One password verification allowed: hand it back to [`Lockout::finish`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    slots: [(usize, u64); 3],
}

pub struct Lockout {
    key: std::collections::hash_map::RandomState,
    tables: [Vec<Slot>; 3],
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout::new()
    }
}

impl Lockout {
    pub fn new() -> Lockout {
        Lockout {
            key: std::collections::hash_map::RandomState::new(),
            tables: [
                vec![Slot::default(); SLOTS],
                vec![Slot::default(); SLOTS],
                vec![Slot::default(); SLOTS],
            ],
        }
    }

    fn hash(&self, table: u8, user: Option<&str>, address: Option<IpAddr>) -> u64 {
        let mut h = self.key.build_hasher();
        table.hash(&mut h);
        user.hash(&mut h);
        address.hash(&mut h);
        h.finish() | 1 // 0 marks an empty slot
    }

    fn keys(&self, user: &str, address: IpAddr) -> [u64; 3] {
        [
            self.hash(0, Some(user), Some(address)),
            self.hash(1, Some(user), None),
            self.hash(2, None, Some(address)),
        ]
    }

    /// A verification for `user` from `address`, or the seconds to wait.
    /// `limit`: failures per (user, address); `lock_us`: the first lock.
    pub fn reserve(
        &mut self,
        user: &str,
        address: IpAddr,
        now_us: i64,
        limit: u32,
        lock_us: i64,
    ) -> Result<Ticket, u64> {
        let limit = limit.max(1);
        let limits = [
            limit,
            limit.saturating_mul(USER_FACTOR),
            limit.saturating_mul(ADDRESS_FACTOR),
        ];
        let keys = self.keys(user, address);
        let mut slots = [(0usize, 0u64); 3];
        let mut wait = 0u64;
        for (t, &key) in keys.iter().enumerate() {
            let i = (key as usize) % SLOTS;
            let slot = &mut self.tables[t][i];
            if slot.tag != key && slot.idle(now_us, lock_us) {
                *slot = Slot {
                    tag: key,
                    strikes: 0,
                    ..Slot::default()
                };
            }
            if now_us - slot.touched_us > PENDING_US {
                slot.pending = 0;
            }
            if slot.locked_until_us <= now_us && now_us - slot.touched_us > lock_us {
                slot.failures = 0;
            }
            if slot.locked_until_us > now_us {
                wait = wait.max(secs(slot.locked_until_us - now_us));
            } else if slot.failures.saturating_add(slot.pending) >= limits[t] {
                // The threshold is taken by verifications under way.
                wait = wait.max(1);
            }
            slots[t] = (i, key);
        }
        if wait > 0 {
            return Err(wait);
        }
        for (t, &(i, _)) in slots.iter().enumerate() {
            let slot = &mut self.tables[t][i];
            slot.pending += 1;
            slot.touched_us = now_us;
        }
        Ok(Ticket { slots })
    }

    /// The verification of `ticket` is over: `Some(ok)` its outcome, `None`
    /// when it never ran (the worker pool was full). Returns whether the
    /// (user, address) pair is now locked.
    pub fn finish(
        &mut self,
        ticket: Ticket,
        outcome: Option<bool>,
        now_us: i64,
        limit: u32,
        lock_us: i64,
    ) -> bool {
        let limit = limit.max(1);
        let limits = [
            limit,
            limit.saturating_mul(USER_FACTOR),
            limit.saturating_mul(ADDRESS_FACTOR),
        ];
        let mut pair_locked = false;
        for (t, &(i, key)) in ticket.slots.iter().enumerate() {
            let slot = &mut self.tables[t][i];
            if slot.tag != key {
                continue; // taken over meanwhile (only when idle)
            }
            slot.pending = slot.pending.saturating_sub(1);
            match outcome {
                None => {}
                // A success clears its own pair, not the user's or the
                // address's wider counts.
                Some(true) if t == 0 => {
                    slot.failures = 0;
                    slot.strikes = 0;
                }
                Some(true) => {}
                Some(false) => {
                    slot.touched_us = now_us;
                    if slot.locked_until_us > now_us {
                        // Already locked: a late failure neither clears
                        // nor shortens the lock.
                        continue;
                    }
                    slot.failures += 1;
                    if slot.failures >= limits[t] {
                        let factor = 1i64 << slot.strikes.min(MAX_BACKOFF.trailing_zeros());
                        slot.locked_until_us =
                            now_us.saturating_add(lock_us.saturating_mul(factor));
                        slot.strikes = slot.strikes.saturating_add(1);
                        slot.failures = 0;
                    }
                }
            }
            if t == 0 && slot.locked_until_us > now_us {
                pair_locked = true;
            }
        }
        pair_locked
    }

    /// Bytes the tables take (fixed).
    pub fn memory(&self) -> usize {
        3 * SLOTS * std::mem::size_of::<Slot>()
    }
}

fn secs(us: i64) -> u64 {
    (us.max(0) as u64).div_ceil(1_000_000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: i64 = 10_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parallel_reservations_never_exceed_the_threshold() {
        let mut l = Lockout::new();
        let a = ip("127.0.0.2");
        let tickets: Vec<_> = (0..60)
            .filter_map(|_| l.reserve("ann", a, 0, 5, LOCK).ok())
            .collect();
        assert_eq!(tickets.len(), 5);
        for t in tickets {
            l.finish(t, Some(false), 1, 5, LOCK);
        }
        assert_eq!(l.reserve("ann", a, 2, 5, LOCK), Err(10));
        // A late failure does not clear the lock; it lapses on time.
        assert!(l.reserve("ann", a, LOCK + 2, 5, LOCK).is_ok());
    }

    #[test]
    fn locks_double_up_to_64_times() {
        let mut l = Lockout::new();
        let a = ip("127.0.0.2");
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..9 {
            for _ in 0..5 {
                let t = l.reserve("ann", a, now, 5, LOCK).unwrap();
                l.finish(t, Some(false), now, 5, LOCK);
            }
            let w = l.reserve("ann", a, now, 5, LOCK).unwrap_err();
            waits.push(w);
            now += w as i64 * 1_000_000;
        }
        assert_eq!(waits, [10, 20, 40, 80, 160, 320, 640, 640, 640]);
    }

    #[test]
    fn many_addresses_meet_the_per_user_ceiling() {
        let mut l = Lockout::new();
        let mut checks = 0;
        for i in 0..100u8 {
            let a = ip(&format!("127.0.1.{i}"));
            while let Ok(t) = l.reserve("ann", a, 0, 5, LOCK) {
                checks += 1;
                l.finish(t, Some(false), 0, 5, LOCK);
            }
        }
        assert_eq!(checks, 20);
        assert!(l.reserve("bob", ip("127.0.1.200"), 0, 5, LOCK).is_ok());
    }

    #[test]
    fn memory_is_fixed() {
        let mut l = Lockout::new();
        let before = l.memory();
        for i in 0..100_000u32 {
            let a = IpAddr::from(i.to_be_bytes());
            if let Ok(t) = l.reserve(&format!("u{i}"), a, i64::from(i), 5, LOCK) {
                l.finish(t, Some(false), i64::from(i), 5, LOCK);
            }
        }
        assert_eq!(l.memory(), before);
        assert!(before < 256 * 1024);
    }
}
