//! Login lockout, in memory and bounded whatever an attacker sends.
//!
//! The decision and the count are one step: a login takes a
//! [`Ticket`] ([`Lockout::reserve`]) *before* its password is verified, and
//! a reservation counts as a failure until [`Lockout::finish`] says
//! otherwise. So parallel guesses never get more than the threshold of
//! password verifications.
//!
//! Thresholds per window (`N` = `api_lockout_failures`):
//! - per (user, address): `N`;
//! - per user, across addresses: `4N` (many addresses get no more);
//! - per address, across user names: `8N`.
//!
//! Reaching a threshold locks for `api_lockout_seconds`, doubled on each
//! lock in a row, up to 64 times.
//!
//! Whose failures count against whom:
//! - **Accounts** (names the store knows) are tracked exactly, by name and
//!   by (name, address): failures on other names or from other addresses
//!   never count against an account's own pair.
//! - A (name, address) pair that logged in within [`KNOWN_US`] is *known*:
//!   it answers to its own count only, not to the user's or the address's.
//!   So an attacker guessing at `admin` from many addresses, or flooding from
//!   random addresses, cannot lock `admin` out of the address it works from.
//!   (A first login from a new address during such a flood may be refused.)
//! - **Other names** share three fixed tables of [`SLOTS`] slots, indexed by a
//!   keyed hash (a random key per process, so nobody can aim at a slot). A
//!   slot whose key differs is taken over only once idle; two keys on one
//!   busy slot share its count, which only makes the lockout stricter for
//!   names that have no account. The address table is shared by everyone
//!   but known pairs.
//!
//! Memory: the three tables (fixed, under 256 KiB), plus per account at most
//! [`pair_cap`] pairs, for at most [`MAX_ACCOUNTS`] accounts (beyond that an
//! account is counted in the shared tables). Nothing is written to disk.
//!
//! Pure: time comes in as an argument.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::IpAddr;

/// Slots per shared table.
pub const SLOTS: usize = 2048;
/// The per-user threshold, as a multiple of the per-pair one.
pub const USER_FACTOR: u32 = 4;
/// The per-address threshold, as a multiple of the per-pair one.
pub const ADDRESS_FACTOR: u32 = 8;
/// Longest lock, as a multiple of the configured one.
pub const MAX_BACKOFF: u32 = 64;
/// How long a successful login makes its (user, address) pair known.
pub const KNOWN_US: i64 = 30 * 86_400 * 1_000_000;
/// Known pairs kept per account (the most recent).
pub const KNOWN_MAX: usize = 16;
/// Accounts tracked exactly.
pub const MAX_ACCOUNTS: usize = 4096;
/// A reservation not finished in this time (client gone) stops counting.
const PENDING_US: i64 = 150_000_000;

/// Pairs tracked per account: what the per-user threshold lets in during
/// two windows, plus the known ones.
pub fn pair_cap(limit: u32) -> usize {
    (limit.max(1) as usize)
        .saturating_mul(2 * USER_FACTOR as usize)
        .saturating_add(KNOWN_MAX)
}

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

    /// Lapses stale counts; the seconds to wait, 0 when one more
    /// verification is allowed under `limit`.
    fn wait(&mut self, now_us: i64, limit: u32, lock_us: i64) -> u64 {
        if now_us - self.touched_us > PENDING_US {
            self.pending = 0;
        }
        if self.locked_until_us <= now_us && now_us - self.touched_us > lock_us {
            self.failures = 0;
        }
        if self.locked_until_us > now_us {
            secs(self.locked_until_us - now_us)
        } else if self.failures.saturating_add(self.pending) >= limit {
            // The threshold is taken by verifications under way.
            1
        } else {
            0
        }
    }

    fn reserve(&mut self, now_us: i64) {
        self.pending += 1;
        self.touched_us = now_us;
    }

    /// Settles one reservation; returns whether the slot is locked.
    fn finish(
        &mut self,
        outcome: Option<bool>,
        clear_on_success: bool,
        now_us: i64,
        limit: u32,
        lock_us: i64,
    ) -> bool {
        self.pending = self.pending.saturating_sub(1);
        match outcome {
            None | Some(true) if !clear_on_success => {}
            None => {}
            Some(true) => {
                self.failures = 0;
                self.strikes = 0;
            }
            Some(false) => {
                self.touched_us = now_us;
                // Already locked: a late failure neither clears nor
                // shortens the lock.
                if self.locked_until_us <= now_us {
                    self.failures += 1;
                    if self.failures >= limit {
                        let factor = 1i64 << self.strikes.min(MAX_BACKOFF.trailing_zeros());
                        self.locked_until_us =
                            now_us.saturating_add(lock_us.saturating_mul(factor));
                        self.strikes = self.strikes.saturating_add(1);
                        self.failures = 0;
                    }
                }
            }
        }
        self.locked_until_us > now_us
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Pair {
    slot: Slot,
    /// Logged in successfully: known until then.
    known_until_us: i64,
}

#[derive(Debug, Default)]
struct Account {
    user: Slot,
    pairs: HashMap<IpAddr, Pair>,
}

/// One password verification allowed: hand it back to [`Lockout::finish`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    user: String,
    address: IpAddr,
    /// Counted on the account's exact entries (else the shared pair and
    /// user slots, `shared[0..2]`).
    account: bool,
    /// Shared slots the reservation counts on: pair, user, address.
    shared: [Option<usize>; 3],
    /// The pair logged in before: its own count only (not the account's
    /// user slot, not the shared address slot).
    known: bool,
}

impl Ticket {
    /// The user logged in from this address before (within [`KNOWN_US`]).
    pub fn known(&self) -> bool {
        self.known
    }
}

pub struct Lockout {
    key: std::collections::hash_map::RandomState,
    tables: [Vec<Slot>; 3],
    accounts: HashMap<String, Account>,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout::new()
    }
}

fn limits(limit: u32) -> [u32; 3] {
    let limit = limit.max(1);
    [
        limit,
        limit.saturating_mul(USER_FACTOR),
        limit.saturating_mul(ADDRESS_FACTOR),
    ]
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
            accounts: HashMap::new(),
        }
    }

    fn hash(&self, table: u8, user: Option<&str>, address: Option<IpAddr>) -> u64 {
        let mut h = self.key.build_hasher();
        table.hash(&mut h);
        user.hash(&mut h);
        address.hash(&mut h);
        h.finish() | 1 // 0 marks an empty slot
    }

    /// The shared slot of `table` for this key, taken over if idle; the
    /// seconds to wait on it.
    fn shared_wait(
        &mut self,
        table: usize,
        user: Option<&str>,
        address: Option<IpAddr>,
        now_us: i64,
        limit: u32,
        lock_us: i64,
    ) -> (usize, u64) {
        let key = self.hash(table as u8, user, address);
        let i = (key as usize) % SLOTS;
        let slot = &mut self.tables[table][i];
        if slot.tag != key && slot.idle(now_us, lock_us) {
            *slot = Slot {
                tag: key,
                ..Slot::default()
            };
        }
        (i, slot.wait(now_us, limit, lock_us))
    }

    /// Makes room for one more account or pair: drops idle entries.
    fn prune(&mut self, now_us: i64, lock_us: i64) {
        self.accounts.retain(|_, a| {
            a.pairs
                .retain(|_, p| p.known_until_us > now_us || !p.slot.idle(now_us, lock_us));
            !a.pairs.is_empty() || !a.user.idle(now_us, lock_us)
        });
    }

    /// A verification for `user` from `address`, or the seconds to wait.
    /// `account`: the store has this user. `limit`: failures per (user,
    /// address); `lock_us`: the first lock.
    pub fn reserve(
        &mut self,
        user: &str,
        address: IpAddr,
        account: bool,
        now_us: i64,
        limit: u32,
        lock_us: i64,
    ) -> Result<Ticket, u64> {
        let limits = limits(limit);
        let mut account = account;
        if account && !self.accounts.contains_key(user) && self.accounts.len() >= MAX_ACCOUNTS {
            self.prune(now_us, lock_us);
            account = self.accounts.len() < MAX_ACCOUNTS;
        }
        let mut ticket = Ticket {
            user: user.to_string(),
            address,
            account,
            shared: [None; 3],
            known: false,
        };
        let mut wait = 0u64;
        let mut known = false;
        if account {
            let cap = pair_cap(limit);
            let acc = self.accounts.entry(user.to_string()).or_default();
            if !acc.pairs.contains_key(&address) && acc.pairs.len() >= cap {
                acc.pairs
                    .retain(|_, p| p.known_until_us > now_us || !p.slot.idle(now_us, lock_us));
                if acc.pairs.len() >= cap {
                    // Only while the per-user threshold is spent in two
                    // windows in a row: nothing new gets in anyway.
                    return Err(1);
                }
            }
            let pair = acc.pairs.entry(address).or_default();
            known = pair.known_until_us > now_us;
            ticket.known = known;
            wait = wait.max(pair.slot.wait(now_us, limits[0], lock_us));
            if !known {
                wait = wait.max(acc.user.wait(now_us, limits[1], lock_us));
            }
        } else {
            let (i, w) = self.shared_wait(0, Some(user), Some(address), now_us, limits[0], lock_us);
            ticket.shared[0] = Some(i);
            wait = wait.max(w);
            let (i, w) = self.shared_wait(1, Some(user), None, now_us, limits[1], lock_us);
            ticket.shared[1] = Some(i);
            wait = wait.max(w);
        }
        if !known {
            let (i, w) = self.shared_wait(2, None, Some(address), now_us, limits[2], lock_us);
            ticket.shared[2] = Some(i);
            wait = wait.max(w);
        }
        if wait > 0 {
            return Err(wait);
        }
        if account {
            let acc = self.accounts.get_mut(user).expect("entry made above");
            if let Some(p) = acc.pairs.get_mut(&address) {
                p.slot.reserve(now_us);
            }
            if !ticket.known {
                acc.user.reserve(now_us);
            }
        }
        for (t, i) in ticket.shared.iter().enumerate() {
            if let Some(i) = *i {
                self.tables[t][i].reserve(now_us);
            }
        }
        Ok(ticket)
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
        let limits = limits(limit);
        let mut pair_locked = false;
        if ticket.account
            && let Some(acc) = self.accounts.get_mut(&ticket.user)
        {
            if let Some(p) = acc.pairs.get_mut(&ticket.address) {
                pair_locked = p.slot.finish(outcome, true, now_us, limits[0], lock_us);
                if outcome == Some(true) {
                    p.known_until_us = now_us.saturating_add(KNOWN_US);
                }
            }
            if !ticket.known {
                acc.user.finish(outcome, false, now_us, limits[1], lock_us);
            }
            if outcome == Some(true) {
                forget_oldest_known(&mut acc.pairs, now_us);
            }
        }
        // A reservation counted on its shared slots whoever's tag they
        // carry now (a busy slot is shared, never taken over): it is given
        // back there, or a flood of colliding keys would leave pending
        // counts behind that refuse every login landing on the slot.
        for (t, i) in ticket.shared.iter().enumerate() {
            if let Some(i) = *i {
                let locked = self.tables[t][i].finish(outcome, t == 0, now_us, limits[t], lock_us);
                if t == 0 {
                    pair_locked = locked;
                }
            }
        }
        pair_locked
    }

    /// Bytes the tables take: the shared ones (fixed) and the accounts'.
    pub fn memory(&self) -> usize {
        let pairs: usize = self.accounts.values().map(|a| a.pairs.capacity()).sum();
        3 * SLOTS * std::mem::size_of::<Slot>()
            + self.accounts.capacity() * (std::mem::size_of::<Account>() + 64)
            + pairs * (std::mem::size_of::<Pair>() + std::mem::size_of::<IpAddr>())
    }
}

/// Keeps the [`KNOWN_MAX`] most recent known pairs of an account.
fn forget_oldest_known(pairs: &mut HashMap<IpAddr, Pair>, now_us: i64) {
    let known = pairs.values().filter(|p| p.known_until_us > now_us).count();
    if known > KNOWN_MAX
        && let Some(p) = pairs
            .values_mut()
            .filter(|p| p.known_until_us > now_us)
            .min_by_key(|p| p.known_until_us)
    {
        p.known_until_us = 0;
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
            .filter_map(|_| l.reserve("ann", a, true, 0, 5, LOCK).ok())
            .collect();
        assert_eq!(tickets.len(), 5);
        for t in tickets {
            l.finish(t, Some(false), 1, 5, LOCK);
        }
        assert_eq!(l.reserve("ann", a, true, 2, 5, LOCK), Err(10));
        // A late failure does not clear the lock; it lapses on time.
        assert!(l.reserve("ann", a, true, LOCK + 2, 5, LOCK).is_ok());
    }

    #[test]
    fn locks_double_up_to_64_times() {
        let mut l = Lockout::new();
        let a = ip("127.0.0.2");
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..9 {
            for _ in 0..5 {
                let t = l.reserve("ann", a, true, now, 5, LOCK).unwrap();
                l.finish(t, Some(false), now, 5, LOCK);
            }
            let w = l.reserve("ann", a, true, now, 5, LOCK).unwrap_err();
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
            while let Ok(t) = l.reserve("ann", a, true, 0, 5, LOCK) {
                checks += 1;
                l.finish(t, Some(false), 0, 5, LOCK);
            }
        }
        assert_eq!(checks, 20);
        assert!(
            l.reserve("bob", ip("127.0.1.200"), true, 0, 5, LOCK)
                .is_ok()
        );
    }

    #[test]
    fn memory_is_fixed() {
        let mut l = Lockout::new();
        let before = l.memory();
        for i in 0..100_000u32 {
            let a = IpAddr::from(i.to_be_bytes());
            if let Ok(t) = l.reserve(&format!("u{i}"), a, false, i64::from(i), 5, LOCK) {
                l.finish(t, Some(false), i64::from(i), 5, LOCK);
            }
        }
        assert_eq!(l.memory(), before);
        assert!(before < 256 * 1024);
    }

    /// xorshift: the floods below are the same on every run.
    fn rng(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    fn random_ip(r: u64) -> IpAddr {
        let b = r.to_be_bytes();
        IpAddr::from([127, b[1], b[2], b[3].max(1)])
    }

    /// A sustained flood at what two workers verify (one every 75 ms),
    /// 1,000 attempts a second with random names from random addresses,
    /// for 15 minutes (the default lock time); 66 verifications queued at
    /// most, the rest refused as busy (`finish(None)`), as the daemon does.
    fn flood(l: &mut Lockout, now: &mut i64, lock: i64) -> Vec<Ticket> {
        let mut next = rng(0x9e37_79b9_7f4a_7c15);
        let mut queued: std::collections::VecDeque<(i64, Ticket)> = Default::default();
        for _ in 0..900_000 {
            *now += 1_000;
            while queued.front().is_some_and(|(t, _)| *t <= *now) {
                let (_, t) = queued.pop_front().unwrap();
                l.finish(t, Some(false), *now, 5, lock);
            }
            let user = format!("u{}", next());
            if let Ok(t) = l.reserve(&user, random_ip(next()), false, *now, 5, lock) {
                if queued.len() < 66 {
                    let at = queued.back().map_or(*now, |q| q.0).max(*now) + 75_000;
                    queued.push_back((at, t));
                } else {
                    l.finish(t, None, *now, 5, lock);
                }
            }
        }
        queued.into_iter().map(|q| q.1).collect()
    }

    #[test]
    fn a_flood_of_other_names_leaves_no_pending_count_behind() {
        let lock = 900_000_000;
        let mut l = Lockout::new();
        let mut now = 0;
        for t in flood(&mut l, &mut now, lock) {
            l.finish(t, Some(false), now, 5, lock);
        }
        for table in &l.tables {
            assert_eq!(table.iter().map(|s| s.pending).sum::<u32>(), 0);
        }
        assert!(
            l.accounts.is_empty(),
            "names without an account are not tracked by name"
        );
    }

    #[test]
    fn a_flood_of_other_names_never_locks_an_account_out_of_its_known_address() {
        let lock = 900_000_000;
        let mut l = Lockout::new();
        let home = ip("192.0.2.10");
        let t = l.reserve("admin", home, true, 0, 5, lock).unwrap();
        l.finish(t, Some(true), 0, 5, lock);
        let mut now = 0;
        for t in flood(&mut l, &mut now, lock) {
            l.finish(t, Some(false), now, 5, lock);
        }
        // The shared tables are saturated (every name without an account
        // and most fresh addresses are refused) ...
        let mut next = rng(7);
        let refused = (0..1000)
            .filter(|_| {
                let user = format!("p{}", next());
                l.reserve(&user, random_ip(next()), false, now, 5, lock)
                    .is_err()
            })
            .count();
        assert!(refused > 900, "{refused}");
        // ... and admin still gets its own five checks from home.
        for _ in 0..5 {
            let t = l.reserve("admin", home, true, now, 5, lock).unwrap();
            l.finish(t, Some(false), now, 5, lock);
        }
        assert!(l.reserve("admin", home, true, now, 5, lock).is_err());
    }

    #[test]
    fn guessing_at_an_account_from_many_addresses_spares_its_known_address() {
        let mut l = Lockout::new();
        let home = ip("192.0.2.10");
        let t = l.reserve("admin", home, true, 0, 5, LOCK).unwrap();
        l.finish(t, Some(true), 0, 5, LOCK);
        let mut checks = 0;
        for i in 0..=255u8 {
            let a = ip(&format!("198.51.100.{i}"));
            while let Ok(t) = l.reserve("admin", a, true, 1, 5, LOCK) {
                checks += 1;
                l.finish(t, Some(false), 1, 5, LOCK);
            }
        }
        assert_eq!(checks, 20, "the per-user ceiling holds for other addresses");
        let t = l
            .reserve("admin", home, true, 2, 5, LOCK)
            .expect("home is known");
        assert!(!l.finish(t, Some(true), 2, 5, LOCK));
        assert!(l.memory() < 256 * 1024 + 64 * 1024);
    }

    #[test]
    fn an_account_keeps_its_sixteen_latest_known_addresses() {
        let mut l = Lockout::new();
        for i in 0..20u8 {
            let t = l.reserve(
                "ann",
                ip(&format!("192.0.2.{i}")),
                true,
                i64::from(i),
                5,
                LOCK,
            );
            l.finish(t.unwrap(), Some(true), i64::from(i), 5, LOCK);
        }
        let known = |l: &Lockout| {
            l.accounts["ann"]
                .pairs
                .values()
                .filter(|p| p.known_until_us > 100)
                .count()
        };
        assert_eq!(known(&l), KNOWN_MAX);
        assert!(l.accounts["ann"].pairs[&ip("192.0.2.0")].known_until_us == 0);
    }
}
