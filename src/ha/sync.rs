//! HA data sync, the pure part: the encrypted frame codec of the sync
//! channel, the primary's decision on a secondary's position, where two
//! histories part, and the tracker that turns acknowledgements into
//! synchronous or asynchronous commits. `daemon::sync` is the adapter.
//!
//! Invariant: pure. Time, randomness and the store's log are inputs.
//!
//! # The channel
//! A TCP stream over the sync interface. Each side first sends 16 random
//! bytes in clear; the session key is `HMAC(cluster key, "kpbx-ha sync v1" ||
//! primary random || secondary random)`, so frames of an older session never
//! verify in a new one. Then every frame is
//!
//! ```text
//! "KS" | version 1 | direction (0 primary->secondary, 1 back) | counter u64 BE | length u32 BE | ciphertext+tag
//! ```
//!
//! sealed with ChaCha20-Poly1305 (nonce: direction, three zero bytes,
//! counter; the 16 header bytes are the associated data). Counters start at
//! 0 and go up by one per frame and direction: a replayed, reordered,
//! truncated or forged frame fails to open and the connection is dropped.

use std::time::Duration;

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};

use super::auth::Key;
use crate::clock::Instant;

pub const MAGIC: [u8; 2] = *b"KS";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 16;
pub const TAG_LEN: usize = 16;
/// Largest sealed payload: a batch of log entries, or a snapshot chunk.
pub const MAX_FRAME: usize = 8 << 20;

/// Which way a frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ToSecondary = 0,
    ToPrimary = 1,
}

/// Why a frame was refused. Any of these ends the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    Short,
    BadMagic,
    BadVersion(u8),
    WrongDirection,
    /// Not the next counter: replayed, reordered or dropped frames.
    OutOfSequence {
        expected: u64,
        got: u64,
    },
    TooLarge(usize),
    /// Authentication failed: forged, damaged, or another key.
    Forged,
    Undecodable(String),
}

/// Derives the session key from the cluster key and both randoms.
pub fn session_key(cluster: &Key, primary_random: &[u8; 16], secondary_random: &[u8; 16]) -> Key {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &cluster.0);
    let mut m = ring::hmac::Context::with_key(&key);
    m.update(b"kpbx-ha sync v1\0");
    m.update(primary_random);
    m.update(secondary_random);
    let mut out = [0; 32];
    out.copy_from_slice(m.sign().as_ref());
    Key(out)
}

/// One direction of a session: seals what this side sends, or opens what
/// it receives, in counter order.
pub struct Sealer {
    key: LessSafeKey,
    direction: Direction,
    counter: u64,
}

fn nonce(direction: Direction, counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[0] = direction as u8;
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

fn header(direction: Direction, counter: u64, len: usize) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..2].copy_from_slice(&MAGIC);
    h[2] = VERSION;
    h[3] = direction as u8;
    h[4..12].copy_from_slice(&counter.to_be_bytes());
    h[12..].copy_from_slice(&(len as u32).to_be_bytes());
    h
}

impl Sealer {
    /// Fails only if ring refuses a 32-byte ChaCha20-Poly1305 key.
    pub fn new(session: &Key, direction: Direction) -> Result<Sealer, FrameError> {
        let unbound =
            UnboundKey::new(&CHACHA20_POLY1305, &session.0).map_err(|_| FrameError::Forged)?;
        Ok(Sealer {
            key: LessSafeKey::new(unbound),
            direction,
            counter: 0,
        })
    }

    /// The next frame carrying `msg`.
    pub fn seal(&mut self, msg: &Msg) -> Result<Vec<u8>, FrameError> {
        let mut body =
            postcard::to_stdvec(msg).map_err(|e| FrameError::Undecodable(e.to_string()))?;
        if body.len() + TAG_LEN > MAX_FRAME {
            return Err(FrameError::TooLarge(body.len()));
        }
        let h = header(self.direction, self.counter, body.len() + TAG_LEN);
        self.key
            .seal_in_place_append_tag(nonce(self.direction, self.counter), Aad::from(h), &mut body)
            .map_err(|_| FrameError::Forged)?;
        self.counter += 1;
        let mut frame = h.to_vec();
        frame.extend_from_slice(&body);
        Ok(frame)
    }

    /// How many bytes the frame starting in `buf` has, once its header is
    /// there (`None`: need more bytes).
    pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        if buf[..2] != MAGIC {
            return Err(FrameError::BadMagic);
        }
        if buf[2] != VERSION {
            return Err(FrameError::BadVersion(buf[2]));
        }
        let len = u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]) as usize;
        if !(TAG_LEN..=MAX_FRAME).contains(&len) {
            return Err(FrameError::TooLarge(len));
        }
        Ok(Some(HEADER_LEN + len))
    }

    /// Opens one whole frame (see [`Sealer::frame_len`]).
    pub fn open(&mut self, frame: &[u8]) -> Result<Msg, FrameError> {
        let total = Self::frame_len(frame)?.ok_or(FrameError::Short)?;
        if frame.len() != total {
            return Err(FrameError::Short);
        }
        if frame[3] != self.direction as u8 {
            return Err(FrameError::WrongDirection);
        }
        let mut c = [0u8; 8];
        c.copy_from_slice(&frame[4..12]);
        let counter = u64::from_be_bytes(c);
        if counter != self.counter {
            return Err(FrameError::OutOfSequence {
                expected: self.counter,
                got: counter,
            });
        }
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(&frame[..HEADER_LEN]);
        let mut body = frame[HEADER_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(nonce(self.direction, counter), Aad::from(h), &mut body)
            .map_err(|_| FrameError::Forged)?;
        let msg =
            postcard::from_bytes(plain).map_err(|e| FrameError::Undecodable(e.to_string()))?;
        self.counter += 1;
        Ok(msg)
    }
}

/// What travels on the channel (postcard; variants only appended).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// The secondary's position: the last entry it holds and its hash.
    Position { seq: u64, hash: [u8; 32] },
    /// Log entries, in order (encoded `store::repl::ReplRecord`s).
    Entries(Vec<Vec<u8>>),
    /// The secondary stored everything up to `seq` durably.
    Ack { seq: u64 },
    /// The primary's answer when the secondary cannot follow the log.
    Restart(Restart),
    /// After a `Diverged` or `Ahead` restart, the secondary's log hashes
    /// (entry `first` on), so that the primary can tell where they part.
    History { first: u64, hashes: Vec<[u8; 32]> },
    /// The last entry both histories hold (0: none provable).
    Common { seq: u64 },
    /// The secondary saved what it held past `Common` (`count` entries,
    /// `first..=last`) with a copy of its store, in `dir` on its disk.
    Archived {
        count: u64,
        first: u64,
        last: u64,
        dir: String,
    },
    /// A snapshot follows; it stands at entry `seq` with hash `hash`.
    SnapshotBegin { seq: u64, hash: [u8; 32] },
    /// Records of the snapshot: (database tag, key, value); see [`db_tag`].
    SnapshotChunk(Vec<(u8, Vec<u8>, Vec<u8>)>),
    /// The snapshot is complete: `items` records were sent.
    SnapshotEnd { items: u64 },
    /// A piece of one log entry too large for a frame; the entry is whole
    /// once `total` bytes have come, and is then applied like `Entries`.
    Fragment { total: u64, bytes: Vec<u8> },
    /// The primary has never held this pairing's data and is not the
    /// coordinator (a secondary that is active at the first pairing): the
    /// secondary, the coordinator, sends its snapshot first, then follows.
    Reverse,
    /// The primary's last entry: sent when idle (a keepalive the secondary
    /// acknowledges) so that the secondary knows how far behind it is.
    Head { seq: u64 },
}

/// Largest log entry a secondary reassembles from fragments.
pub const MAX_ENTRY: u64 = 512 << 20;

/// The wire tag of a replicated database in snapshot chunks.
pub fn db_tag(db: crate::store::repl::Db) -> u8 {
    use crate::store::repl::Db;
    match db {
        Db::Meta => 0,
        Db::Objects => 1,
        Db::Audit => 2,
        Db::Data => 3,
    }
}

/// The database of a wire tag; `None` for an unknown tag.
pub fn db_of_tag(tag: u8) -> Option<crate::store::repl::Db> {
    use crate::store::repl::Db;
    match tag {
        0 => Some(Db::Meta),
        1 => Some(Db::Objects),
        2 => Some(Db::Audit),
        3 => Some(Db::Data),
        _ => None,
    }
}

/// The last entry two histories share: the highest `n` from `first` on at
/// which the secondary's hash (`hashes[n - first]`) is the primary's. The
/// entries are hash-chained, so everything before `n` is shared as well.
/// 0 when none is provable (the histories part before both logs' start).
pub fn common(first: u64, hashes: &[[u8; 32]], hash_at: &dyn Fn(u64) -> Option<[u8; 32]>) -> u64 {
    for (i, h) in hashes.iter().enumerate().rev() {
        let n = first + i as u64;
        if n > 0 && hash_at(n) == Some(*h) {
            return n;
        }
    }
    0
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// The entries it needs are no longer in the log: take a snapshot.
    Snapshot,
    /// Its entry `at` is not the primary's: the histories parted at or
    /// before `at`. It archives what it holds past the common part, then
    /// takes a snapshot.
    Diverged { at: u64 },
    /// It holds entries past the primary's last (written on it during a
    /// split, or in asynchronous mode before a failover). It compares the
    /// primary's last entry with its own, archives what the primary never
    /// had, then takes a snapshot.
    Ahead {
        primary_last: u64,
        primary_hash: [u8; 32],
    },
}

/// What the primary does about a secondary at `(seq, hash)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Send the log from `from` on.
    Stream {
        from: u64,
    },
    Restart(Restart),
}

/// The primary's decision. `hash_at(n)` is the hash of its entry `n` while
/// the log holds it (`Some([0; 32])` for 0), `last` its newest entry.
pub fn plan(
    last: u64,
    hash_at: &dyn Fn(u64) -> Option<[u8; 32]>,
    seq: u64,
    hash: [u8; 32],
) -> Plan {
    if seq > last {
        return Plan::Restart(Restart::Ahead {
            primary_last: last,
            primary_hash: hash_at(last).unwrap_or([0; 32]),
        });
    }
    match hash_at(seq) {
        Some(h) if h == hash => Plan::Stream { from: seq + 1 },
        Some(_) => Plan::Restart(Restart::Diverged { at: seq }),
        None => Plan::Restart(Restart::Snapshot),
    }
}

/// Replication mode as `kpbx ha status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No peer connected.
    Alone,
    /// Commits wait for the peer's acknowledgement.
    Sync,
    /// The peer lagged past the bound: commits are acknowledged locally;
    /// back to sync once caught up.
    Async,
    /// The peer connected behind this node and is catching up (commits are
    /// acknowledged locally until it has).
    CatchingUp,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Alone => "alone",
            Mode::Sync => "sync",
            Mode::Async => "async",
            Mode::CatchingUp => "catching up",
        }
    }
}

/// Turns commits and acknowledgements into released waiters and a mode.
#[derive(Debug)]
pub struct Acks {
    bound: Duration,
    mode: Mode,
    acked: u64,
    /// Commits waiting for an ack: (seq, deadline).
    waiting: Vec<(u64, Instant)>,
}

impl Acks {
    pub fn new(bound: Duration) -> Acks {
        Acks {
            bound,
            mode: Mode::Alone,
            acked: 0,
            waiting: Vec::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// The peer connected and is at `seq`.
    pub fn connected(&mut self, seq: u64, last: u64) {
        self.acked = seq;
        self.mode = if seq >= last {
            Mode::Sync
        } else {
            Mode::CatchingUp
        };
    }

    /// The peer went away: everything waiting is released.
    pub fn disconnected(&mut self) -> Vec<u64> {
        self.mode = Mode::Alone;
        self.waiting.drain(..).map(|(s, _)| s).collect()
    }

    /// A local commit got `seq`. `true`: answer the client now (no peer,
    /// or asynchronous); `false`: wait for [`Acks::ack`] or the deadline.
    pub fn committed(&mut self, seq: u64, now: Instant) -> bool {
        match self.mode {
            Mode::Sync => {
                self.waiting.push((seq, now + self.bound));
                false
            }
            Mode::Alone | Mode::Async | Mode::CatchingUp => true,
        }
    }

    /// The peer stored everything up to `seq`; returns the released
    /// commits. Catching up to `last` returns to synchronous mode.
    pub fn ack(&mut self, seq: u64, last: u64) -> Vec<u64> {
        self.acked = self.acked.max(seq);
        if matches!(self.mode, Mode::Async | Mode::CatchingUp) && self.acked >= last {
            self.mode = Mode::Sync;
        }
        let (done, still): (Vec<_>, Vec<_>) = self.waiting.drain(..).partition(|(s, _)| *s <= seq);
        self.waiting = still;
        done.into_iter().map(|(s, _)| s).collect()
    }

    /// Past a deadline the cluster goes asynchronous and every waiter is
    /// released.
    pub fn timeout(&mut self, now: Instant) -> Vec<u64> {
        if self.waiting.iter().any(|(_, d)| *d <= now) {
            self.mode = Mode::Async;
            return self.waiting.drain(..).map(|(s, _)| s).collect();
        }
        Vec::new()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.waiting.iter().map(|(_, d)| *d).min()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn pair() -> (Sealer, Sealer) {
        let k = session_key(&Key([7; 32]), &[1; 16], &[2; 16]);
        (
            Sealer::new(&k, Direction::ToSecondary).unwrap(),
            Sealer::new(&k, Direction::ToSecondary).unwrap(),
        )
    }

    #[test]
    fn frames_round_trip_in_order() {
        let (mut tx, mut rx) = pair();
        let msgs = [
            Msg::Position {
                seq: 5,
                hash: [9; 32],
            },
            Msg::Entries(vec![vec![1, 2, 3], vec![]]),
            Msg::Ack { seq: 7 },
            Msg::Restart(Restart::Diverged { at: 3 }),
        ];
        for m in &msgs {
            let f = tx.seal(m).unwrap();
            assert_eq!(Sealer::frame_len(&f).unwrap(), Some(f.len()));
            assert_eq!(&rx.open(&f).unwrap(), m);
        }
    }

    #[test]
    fn replayed_forged_and_foreign_frames_are_refused() {
        let (mut tx, mut rx) = pair();
        let f0 = tx.seal(&Msg::Ack { seq: 1 }).unwrap();
        let f1 = tx.seal(&Msg::Ack { seq: 2 }).unwrap();
        // Reordered, then replayed.
        assert!(matches!(
            rx.open(&f1),
            Err(FrameError::OutOfSequence {
                expected: 0,
                got: 1
            })
        ));
        rx.open(&f0).unwrap();
        assert!(matches!(
            rx.open(&f0),
            Err(FrameError::OutOfSequence { .. })
        ));
        // A flipped bit anywhere after the header.
        let mut bad = f1.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(rx.open(&bad), Err(FrameError::Forged));
        // A frame of the other direction (reflected back at its sender).
        let mut bad = f1.clone();
        bad[3] = 1;
        assert_eq!(rx.open(&bad), Err(FrameError::WrongDirection));
        // Another session key (an older session, or a wrong cluster key).
        let other = session_key(&Key([7; 32]), &[1; 16], &[3; 16]);
        let mut foreign = Sealer::new(&other, Direction::ToSecondary).unwrap();
        foreign.counter = 1;
        let g = foreign.seal(&Msg::Ack { seq: 2 }).unwrap();
        assert_eq!(rx.open(&g), Err(FrameError::Forged));
        // The genuine frame still opens: nothing above moved the counter.
        assert_eq!(rx.open(&f1).unwrap(), Msg::Ack { seq: 2 });
        // Garbage headers.
        assert_eq!(Sealer::frame_len(b"KS"), Ok(None));
        assert_eq!(Sealer::frame_len(&[b'X'; 16]), Err(FrameError::BadMagic));
        let mut big = header(Direction::ToSecondary, 0, MAX_FRAME + 1).to_vec();
        assert!(matches!(
            Sealer::frame_len(&big),
            Err(FrameError::TooLarge(_))
        ));
        big[2] = 9;
        assert_eq!(Sealer::frame_len(&big), Err(FrameError::BadVersion(9)));
        assert_eq!(rx.open(&f1[..20]), Err(FrameError::Short));
    }

    /// A log of 10 entries whose hashes are `[n; 32]`, holding 4..=10.
    fn log(n: u64) -> Option<[u8; 32]> {
        match n {
            0 => Some([0; 32]),
            4..=10 => Some([n as u8; 32]),
            _ => None,
        }
    }

    #[test]
    fn the_primary_streams_restarts_or_reports_divergence() {
        assert_eq!(plan(10, &log, 7, [7; 32]), Plan::Stream { from: 8 });
        assert_eq!(plan(10, &log, 10, [10; 32]), Plan::Stream { from: 11 });
        assert_eq!(plan(10, &log, 0, [0; 32]), Plan::Stream { from: 1 });
        // Behind the log's start: a snapshot.
        assert_eq!(plan(10, &log, 2, [2; 32]), Plan::Restart(Restart::Snapshot));
        // Same position, another history.
        assert_eq!(
            plan(10, &log, 7, [99; 32]),
            Plan::Restart(Restart::Diverged { at: 7 })
        );
        // Ahead of the primary: it holds what the primary never had.
        assert_eq!(
            plan(10, &log, 12, [12; 32]),
            Plan::Restart(Restart::Ahead {
                primary_last: 10,
                primary_hash: [10; 32]
            })
        );
    }

    #[test]
    fn the_common_point_is_the_last_equal_hash() {
        // The primary's log: entry n has hash [n; 32] up to 9.
        let primary = |n: u64| (n <= 9).then_some([n as u8; 32]);
        // The secondary holds 3..=11, parting after 6.
        let mut hashes: Vec<[u8; 32]> = (3..=6).map(|n| [n as u8; 32]).collect();
        hashes.extend([[70; 32], [80; 32], [90; 32], [100; 32], [110; 32]]);
        assert_eq!(common(3, &hashes, &primary), 6);
        // Nothing provable: parted before the secondary's log starts.
        assert_eq!(common(3, &[[0xaa; 32]], &primary), 0);
        assert_eq!(common(0, &[], &primary), 0);
    }

    #[test]
    fn random_bytes_never_open_and_never_panic() {
        let k = session_key(&Key([7; 32]), &[1; 16], &[2; 16]);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..400usize {
            let mut buf = Vec::with_capacity(len + HEADER_LEN);
            buf.extend_from_slice(&header(Direction::ToSecondary, 0, len));
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(x as u8);
            }
            let mut open = Sealer::new(&k, Direction::ToSecondary).unwrap();
            assert!(open.open(&buf).is_err());
            assert!(open.open(&buf[HEADER_LEN..]).is_err());
        }
    }

    #[test]
    fn commits_wait_for_the_peer_within_the_bound_then_go_async() {
        let t = |ms| Instant::from_millis(ms);
        let mut a = Acks::new(Duration::from_millis(200));
        assert!(a.committed(1, t(0)), "no peer: answered at once");
        a.connected(1, 1);
        assert_eq!(a.mode(), Mode::Sync);
        assert!(!a.committed(2, t(10)));
        assert!(!a.committed(3, t(20)));
        assert_eq!(a.next_deadline(), Some(t(210)));
        assert_eq!(a.ack(2, 3), vec![2]);
        assert_eq!(a.timeout(t(100)), Vec::<u64>::new());
        // The peer stalls: past the bound, asynchronous, waiters released.
        assert_eq!(a.timeout(t(220)), vec![3]);
        assert_eq!(a.mode(), Mode::Async);
        assert!(a.committed(4, t(230)));
        // Caught up: synchronous again.
        assert_eq!(a.ack(4, 4), Vec::<u64>::new());
        assert_eq!(a.mode(), Mode::Sync);
        assert!(!a.committed(5, t(300)));
        assert_eq!(a.disconnected(), vec![5]);
        assert_eq!(a.mode(), Mode::Alone);
    }
}
