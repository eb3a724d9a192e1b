//! The read-transfer state machine (sans-IO).
//!
//! PURE: no sockets, no clock, no file access. The driver feeds it
//! [`Transfer::handle_datagram`] (anything that arrived on the transfer's
//! socket) and [`Transfer::handle_timeout`], always with the current
//! [`Instant`], then drains [`Transfer::poll_transmit`] and sleeps until
//! [`Transfer::poll_timeout`]. Calling `handle_timeout` early is a harmless
//! no-op.
//!
//! The machine knows only the file's size. A DATA datagram comes out as a
//! [`Payload::Data`] descriptor (wire block number, byte offset, length); the
//! driver copies those bytes from memory or reads them from disk. This keeps
//! the machine free of I/O and lets tests drive 70,000 blocks in milliseconds.
//!
//! Blocks are counted internally as `u64` (block 1 is the first); the wire
//! carries the low 16 bits, so block 65536 goes out as 0 (rollover).
//!
//! Retransmission: only on timeout, never on a duplicate ACK, which avoids
//! the Sorcerer's Apprentice bug (RFC 1350 erratum, RFC 1123 4.2.3.1). With
//! RFC 7440 windows, an ACK for a block inside the window in flight moves the
//! window to start right after it, so a client that saw a gap resumes there.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use super::packet::{BLKSIZE_MAX, BLKSIZE_MIN, ErrorCode, Options, Packet};
use crate::clock::Instant;

/// Server-side bounds for option negotiation and retransmission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest `blksize` granted. **Default: 1468** (Ethernet MTU 1500 − IP 20
    /// − UDP 8 − TFTP 4: the largest block that is not fragmented). Use less
    /// behind VPNs (sipXcom settled on 1300).
    pub max_blksize: u16,
    /// Largest `windowsize` granted. **Default: 64** blocks.
    pub max_windowsize: u16,
    /// Retransmission timeout when the client does not ask for one.
    /// **Default: 1 s.**
    pub timeout: Duration,
    /// Accept the client's RFC 2349 `timeout` (1..=255 s). **Default: true.**
    pub accept_client_timeout: bool,
    /// Retransmissions of the same datagram before the transfer is abandoned.
    /// **Default: 5.**
    pub max_retries: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blksize: 1468,
            max_windowsize: 64,
            timeout: Duration::from_secs(1),
            accept_client_timeout: true,
            max_retries: 5,
        }
    }
}

/// The outcome of option negotiation for one read request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub blksize: u16,
    pub windowsize: u16,
    pub timeout: Duration,
    /// The OACK to send: only options the client asked for and the server
    /// accepts (RFC 2347). `None` means start directly with DATA block 1.
    pub oack: Option<Options>,
}

/// Negotiates the options of a read request for a file of `size` bytes.
pub fn negotiate(asked: &Options, size: u64, limits: &Limits) -> Negotiated {
    let mut oack = Options::default();
    let max_blk = limits.max_blksize.clamp(BLKSIZE_MIN, BLKSIZE_MAX);
    let blksize = match asked.blksize {
        Some(b) => {
            let b = b.min(max_blk);
            oack.blksize = Some(b);
            b
        }
        None => 512,
    };
    let windowsize = match asked.windowsize {
        Some(w) => {
            let w = w.min(limits.max_windowsize.max(1));
            oack.windowsize = Some(w);
            w
        }
        None => 1,
    };
    let timeout = match asked.timeout {
        Some(t) if limits.accept_client_timeout => {
            oack.timeout = Some(t);
            Duration::from_secs(u64::from(t))
        }
        _ => limits.timeout,
    };
    if asked.tsize.is_some() {
        oack.tsize = Some(size);
    }
    Negotiated {
        blksize,
        windowsize,
        timeout,
        oack: (!oack.is_empty()).then_some(oack),
    }
}

/// One datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub dst: SocketAddr,
    pub payload: Payload,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// A DATA packet: header with `block`, then `len` bytes of the file
    /// from `offset`.
    Data { block: u16, offset: u64, len: usize },
    /// A complete datagram (OACK or ERROR).
    Bytes(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Running,
    /// The client acknowledged the last block.
    Completed,
    Failed(Failure),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// `max_retries` retransmissions went unanswered.
    TimedOut,
    /// The client sent an ERROR packet (e.g. 8 after refusing the OACK).
    ClientError(u16),
}

/// One read transfer.
#[derive(Debug)]
pub struct Transfer {
    peer: SocketAddr,
    size: u64,
    blksize: u64,
    window: u64,
    timeout: Duration,
    max_retries: u32,
    /// Number of DATA blocks, including the final short (maybe empty) one.
    total: u64,
    /// The encoded OACK while it awaits ACK 0.
    oack: Option<Vec<u8>>,
    /// Highest block acknowledged; 0 before any.
    acked: u64,
    /// Highest block sent.
    sent: u64,
    retries: u32,
    retransmits: u64,
    deadline: Option<Instant>,
    state: State,
    out: VecDeque<Transmit>,
}

impl Transfer {
    /// Starts a transfer: queues the OACK, or the first window of DATA.
    pub fn new(
        peer: SocketAddr,
        size: u64,
        negotiated: &Negotiated,
        max_retries: u32,
        now: Instant,
    ) -> Transfer {
        let blksize = u64::from(negotiated.blksize.max(1));
        let mut t = Transfer {
            peer,
            size,
            blksize,
            window: u64::from(negotiated.windowsize.max(1)),
            timeout: negotiated.timeout,
            max_retries,
            total: size / blksize + 1,
            oack: negotiated.oack.map(|o| Packet::Oack(o).to_vec()),
            acked: 0,
            sent: 0,
            retries: 0,
            retransmits: 0,
            deadline: None,
            state: State::Running,
            out: VecDeque::new(),
        };
        match &t.oack {
            Some(o) => {
                let o = o.clone();
                t.push(Payload::Bytes(o));
                t.deadline = Some(now + t.timeout);
            }
            None => t.send_window(now),
        }
        t
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Number of DATA blocks of the whole transfer.
    pub fn total_blocks(&self) -> u64 {
        self.total
    }

    /// The file's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The negotiated block size.
    pub fn blksize(&self) -> u64 {
        self.blksize
    }

    /// The negotiated windowsize (1: lock-step).
    pub fn window(&self) -> u64 {
        self.window
    }

    /// File bytes the client has acknowledged.
    pub fn bytes_acked(&self) -> u64 {
        self.acked.saturating_mul(self.blksize).min(self.size)
    }

    /// Datagrams sent again after a timeout.
    pub fn retransmits(&self) -> u64 {
        self.retransmits
    }

    /// When [`Transfer::handle_timeout`] should be called; `None` once finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// A datagram arrived on the transfer's socket from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        if from != self.peer {
            // RFC 1350: a packet with the wrong TID gets error 5 and does not
            // disturb the transfer.
            let err = Packet::Error {
                code: ErrorCode::UnknownTransferId,
                message: "Unknown transfer ID",
            };
            self.out.push_back(Transmit {
                dst: from,
                payload: Payload::Bytes(err.to_vec()),
            });
            return;
        }
        if self.state != State::Running {
            return;
        }
        match super::packet::parse(datagram) {
            Ok(Packet::Ack(n)) => self.handle_ack(now, n),
            Ok(Packet::Error { code, .. }) => {
                self.finish(State::Failed(Failure::ClientError(code.as_u16())))
            }
            // Anything else from the client is ignored; malformed datagrams too.
            _ => {}
        }
    }

    fn handle_ack(&mut self, now: Instant, n: u16) {
        if self.oack.is_some() {
            if n == 0 {
                self.oack = None;
                self.retries = 0;
                self.send_window(now);
            }
            return;
        }
        // Which block in (acked, sent] has wire number n? The window is at
        // most 65535 blocks, so the answer is unique.
        let delta = u64::from(n.wrapping_sub(self.acked as u16));
        if delta == 0 || delta > self.sent - self.acked {
            // A duplicate of the previous ACK or a stale one: never answer it
            // with data (Sorcerer's Apprentice); the timer retransmits.
            return;
        }
        self.acked += delta;
        self.retries = 0;
        if self.acked == self.total {
            self.finish(State::Completed);
        } else {
            self.send_window(now);
        }
    }

    /// The timer fired. Early or repeated calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.deadline {
            Some(d) if now >= d && self.state == State::Running => {}
            _ => return,
        }
        if self.retries >= self.max_retries {
            let err = Packet::Error {
                code: ErrorCode::NotDefined,
                message: "Timed out",
            };
            self.push(Payload::Bytes(err.to_vec()));
            self.finish(State::Failed(Failure::TimedOut));
            return;
        }
        self.retries += 1;
        if let Some(o) = &self.oack {
            let o = o.clone();
            self.push(Payload::Bytes(o));
            self.retransmits += 1;
        } else {
            for k in self.acked + 1..=self.sent {
                self.push_data(k);
                self.retransmits += 1;
            }
        }
        self.deadline = Some(now + self.timeout);
    }

    fn finish(&mut self, state: State) {
        self.state = state;
        self.deadline = None;
    }

    /// Sends blocks acked+1 ..= acked+window (bounded by the last block).
    fn send_window(&mut self, now: Instant) {
        let last = (self.acked + self.window).min(self.total);
        for k in self.acked + 1..=last {
            self.push_data(k);
        }
        self.sent = last;
        self.deadline = Some(now + self.timeout);
    }

    fn push_data(&mut self, k: u64) {
        let offset = (k - 1) * self.blksize;
        let len = self.blksize.min(self.size - offset) as usize;
        self.push(Payload::Data {
            block: k as u16,
            offset,
            len,
        });
    }

    fn push(&mut self, payload: Payload) {
        self.out.push_back(Transmit {
            dst: self.peer,
            payload,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tftp::packet::parse;

    fn peer() -> SocketAddr {
        "127.0.0.1:40000".parse().unwrap()
    }

    fn neg(blksize: u16, windowsize: u16, oack: bool) -> Negotiated {
        Negotiated {
            blksize,
            windowsize,
            timeout: Duration::from_secs(1),
            oack: oack.then_some(Options {
                blksize: Some(blksize),
                ..Options::default()
            }),
        }
    }

    fn ack(n: u16) -> Vec<u8> {
        Packet::Ack(n).to_vec()
    }

    fn drain(t: &mut Transfer) -> Vec<Transmit> {
        std::iter::from_fn(|| t.poll_transmit()).collect()
    }

    fn data_blocks(tx: &[Transmit]) -> Vec<u16> {
        tx.iter()
            .filter_map(|x| match x.payload {
                Payload::Data { block, .. } => Some(block),
                Payload::Bytes(_) => None,
            })
            .collect()
    }

    /// A simulated RFC 7440 client on a lossy link, in virtual time.
    struct Sim {
        t: Transfer,
        now: Instant,
        window: u64,
        blksize: u64,
        /// Next block expected, as u64.
        next: u64,
        /// Bytes received in order.
        received: u64,
        since_ack: u64,
        done: bool,
        /// Wire block numbers in arrival order (accepted only).
        wire_seen: Vec<u16>,
        data_sent: u64,
        acks_sent: u64,
        drop_data: Box<dyn FnMut(u64) -> bool>,
        drop_ack: Box<dyn FnMut(u64) -> bool>,
        duplicate_acks: bool,
    }

    impl Sim {
        fn new(size: u64, n: Negotiated) -> Sim {
            let t = Transfer::new(peer(), size, &n, 5, Instant::ZERO);
            Sim {
                t,
                now: Instant::ZERO,
                window: u64::from(n.windowsize),
                blksize: u64::from(n.blksize),
                next: 1,
                received: 0,
                since_ack: 0,
                done: false,
                wire_seen: Vec::new(),
                data_sent: 0,
                acks_sent: 0,
                drop_data: Box::new(|_| false),
                drop_ack: Box::new(|_| false),
                duplicate_acks: false,
            }
        }

        /// Runs to the end; returns the number of timer firings.
        fn run(&mut self, max_steps: u64) -> u64 {
            let mut timeouts = 0;
            for _ in 0..max_steps {
                let tx = drain(&mut self.t);
                let mut acks = Vec::new();
                for x in tx {
                    assert_eq!(x.dst, peer());
                    match x.payload {
                        Payload::Bytes(b) => match parse(&b).unwrap() {
                            Packet::Oack(_) => acks.push(0u16),
                            Packet::Error { .. } => {}
                            p => panic!("unexpected {p:?}"),
                        },
                        Payload::Data { block, offset, len } => {
                            self.data_sent += 1;
                            if (self.drop_data)(self.data_sent) {
                                continue;
                            }
                            if self.done {
                                // Lingering after the end: re-ACK the last block.
                                acks.push((self.next - 1) as u16);
                                continue;
                            }
                            if block == self.next as u16 {
                                assert_eq!(offset, (self.next - 1) * self.blksize);
                                self.wire_seen.push(block);
                                self.received += len as u64;
                                self.next += 1;
                                self.since_ack += 1;
                                if (len as u64) < self.blksize {
                                    self.done = true;
                                    acks.push(block);
                                } else if self.since_ack >= self.window {
                                    acks.push(block);
                                    self.since_ack = 0;
                                }
                            } else {
                                // Gap or duplicate: re-ACK the last in-order block.
                                acks.push((self.next - 1) as u16);
                                self.since_ack = 0;
                            }
                        }
                    }
                }
                for a in acks {
                    self.acks_sent += 1;
                    if (self.drop_ack)(self.acks_sent) {
                        continue;
                    }
                    self.t.handle_datagram(self.now, peer(), &ack(a));
                    if self.duplicate_acks {
                        self.t.handle_datagram(self.now, peer(), &ack(a));
                    }
                }
                if self.t.state() != &State::Running {
                    // Flush a final ERROR, if any.
                    drain(&mut self.t);
                    return timeouts;
                }
                if self.t.out.is_empty() {
                    let d = self
                        .t
                        .poll_timeout()
                        .expect("running transfer has a deadline");
                    assert!(d > self.now, "deadline must lie in the future");
                    self.now = d;
                    self.t.handle_timeout(self.now);
                    timeouts += 1;
                }
            }
            panic!("transfer did not finish in {max_steps} steps");
        }
    }

    #[test]
    fn negotiate_replies_only_with_asked_options() {
        let l = Limits::default();
        let n = negotiate(&Options::default(), 100, &l);
        assert_eq!(n.oack, None);
        assert_eq!((n.blksize, n.windowsize, n.timeout), (512, 1, l.timeout));

        let asked = Options {
            tsize: Some(0),
            ..Options::default()
        };
        let n = negotiate(&asked, 1234, &l);
        assert_eq!(
            n.oack,
            Some(Options {
                tsize: Some(1234),
                ..Options::default()
            })
        );
        assert_eq!(n.blksize, 512);

        let asked = Options {
            blksize: Some(9000),
            windowsize: Some(500),
            timeout: Some(3),
            tsize: None,
        };
        let n = negotiate(&asked, 1, &l);
        assert_eq!(n.blksize, 1468, "clamped to the MTU-safe maximum");
        assert_eq!(n.windowsize, 64);
        assert_eq!(n.timeout, Duration::from_secs(3));
        assert_eq!(
            n.oack,
            Some(Options {
                blksize: Some(1468),
                windowsize: Some(64),
                timeout: Some(3),
                tsize: None
            })
        );

        let strict = Limits {
            accept_client_timeout: false,
            max_blksize: 1300,
            ..Limits::default()
        };
        let n = negotiate(&asked, 1, &strict);
        assert_eq!(n.timeout, strict.timeout);
        assert_eq!(n.oack.unwrap().timeout, None);
        assert_eq!(n.blksize, 1300);

        let small = Options {
            blksize: Some(8),
            ..Options::default()
        };
        assert_eq!(negotiate(&small, 1, &l).blksize, 8);
    }

    #[test]
    fn lockstep_without_options() {
        let mut t = Transfer::new(peer(), 1000, &neg(512, 1, false), 5, Instant::ZERO);
        let tx = drain(&mut t);
        assert_eq!(
            tx,
            vec![Transmit {
                dst: peer(),
                payload: Payload::Data {
                    block: 1,
                    offset: 0,
                    len: 512
                }
            }]
        );
        t.handle_datagram(Instant::from_millis(1), peer(), &ack(1));
        let tx = drain(&mut t);
        assert_eq!(
            tx[0].payload,
            Payload::Data {
                block: 2,
                offset: 512,
                len: 488
            }
        );
        assert_eq!(t.poll_timeout(), Some(Instant::from_millis(1001)));
        t.handle_datagram(Instant::from_millis(2), peer(), &ack(2));
        assert_eq!(t.state(), &State::Completed);
        assert_eq!(t.poll_timeout(), None);
        assert_eq!(t.bytes_acked(), 1000);
        assert!(drain(&mut t).is_empty());
    }

    #[test]
    fn exact_multiple_ends_with_empty_block() {
        let mut s = Sim::new(1024, neg(512, 1, false));
        s.run(100);
        assert_eq!(s.t.state(), &State::Completed);
        assert_eq!(s.wire_seen, vec![1, 2, 3]);
        assert_eq!(s.received, 1024);
        assert_eq!(s.t.total_blocks(), 3);

        let mut t = Transfer::new(peer(), 0, &neg(512, 1, false), 5, Instant::ZERO);
        assert_eq!(
            drain(&mut t)[0].payload,
            Payload::Data {
                block: 1,
                offset: 0,
                len: 0
            }
        );
        t.handle_datagram(Instant::ZERO, peer(), &ack(1));
        assert_eq!(t.state(), &State::Completed);
    }

    #[test]
    fn oack_waits_for_ack_zero_and_is_retransmitted() {
        let n = negotiate(
            &Options {
                blksize: Some(1428),
                tsize: Some(0),
                ..Options::default()
            },
            5000,
            &Limits::default(),
        );
        let mut t = Transfer::new(peer(), 5000, &n, 5, Instant::ZERO);
        let tx = drain(&mut t);
        assert_eq!(
            tx[0].payload,
            Payload::Bytes(b"\x00\x06blksize\x001428\0tsize\x005000\0".to_vec())
        );
        assert_eq!(tx.len(), 1);
        // An ACK for a data block before ACK 0 is ignored.
        t.handle_datagram(Instant::ZERO, peer(), &ack(1));
        assert!(drain(&mut t).is_empty());
        // Timeout: the OACK goes out again.
        t.handle_timeout(Instant::from_millis(999));
        assert!(drain(&mut t).is_empty(), "early timer call is a no-op");
        t.handle_timeout(Instant::from_millis(1000));
        assert_eq!(drain(&mut t), tx);
        t.handle_datagram(Instant::from_millis(1001), peer(), &ack(0));
        assert_eq!(data_blocks(&drain(&mut t)), vec![1]);
        // A duplicate ACK 0 does not resend block 1.
        t.handle_datagram(Instant::from_millis(1002), peer(), &ack(0));
        assert!(drain(&mut t).is_empty());
        assert_eq!(t.retransmits(), 1);
    }

    #[test]
    fn duplicate_acks_do_not_cause_sorcerers_apprentice() {
        // Each ACK is delivered twice; with no loss the server must send
        // every block exactly once.
        let mut s = Sim::new(100 * 512 + 7, neg(512, 1, false));
        s.duplicate_acks = true;
        let timeouts = s.run(10_000);
        assert_eq!(s.t.state(), &State::Completed);
        assert_eq!(timeouts, 0);
        assert_eq!(s.data_sent, 101);
        assert_eq!(s.received, 100 * 512 + 7);
    }

    #[test]
    fn delayed_duplicate_ack_after_retransmit_is_ignored() {
        // The classic apprentice trigger: ACK n is delayed, the server
        // retransmits n, then both ACKs arrive. Only one copy of n+1 may go.
        let mut t = Transfer::new(peer(), 3 * 512, &neg(512, 1, false), 5, Instant::ZERO);
        drain(&mut t);
        t.handle_timeout(Instant::from_millis(1000));
        assert_eq!(data_blocks(&drain(&mut t)), vec![1]);
        t.handle_datagram(Instant::from_millis(1001), peer(), &ack(1));
        t.handle_datagram(Instant::from_millis(1002), peer(), &ack(1));
        assert_eq!(data_blocks(&drain(&mut t)), vec![2]);
    }

    #[test]
    fn loss_of_data_and_acks_is_recovered() {
        let mut s = Sim::new(300 * 512 + 100, neg(512, 1, false));
        s.drop_data = Box::new(|i| i % 7 == 0);
        s.drop_ack = Box::new(|i| i % 5 == 0);
        let timeouts = s.run(100_000);
        assert_eq!(s.t.state(), &State::Completed);
        assert_eq!(s.received, 300 * 512 + 100);
        assert!(timeouts > 0 && s.t.retransmits() > 0);
        assert_eq!(s.wire_seen.len(), 301);
    }

    #[test]
    fn windowsize_sends_a_window_per_ack_and_survives_loss() {
        let mut t = Transfer::new(peer(), 20 * 512, &neg(512, 4, false), 5, Instant::ZERO);
        assert_eq!(data_blocks(&drain(&mut t)), vec![1, 2, 3, 4]);
        t.handle_datagram(Instant::ZERO, peer(), &ack(4));
        assert_eq!(data_blocks(&drain(&mut t)), vec![5, 6, 7, 8]);
        // The client saw a gap after 6: it acks 6 and the window restarts at 7.
        t.handle_datagram(Instant::ZERO, peer(), &ack(6));
        assert_eq!(data_blocks(&drain(&mut t)), vec![7, 8, 9, 10]);
        // A stale ACK from before is ignored.
        t.handle_datagram(Instant::ZERO, peer(), &ack(4));
        assert!(drain(&mut t).is_empty());
        // Timeout retransmits the whole window in flight.
        t.handle_timeout(Instant::from_millis(1000));
        assert_eq!(data_blocks(&drain(&mut t)), vec![7, 8, 9, 10]);

        let mut s = Sim::new(1000 * 512 + 1, neg(512, 8, false));
        s.drop_data = Box::new(|i| i % 13 == 0);
        s.drop_ack = Box::new(|i| i % 11 == 0);
        s.run(100_000);
        assert_eq!(s.t.state(), &State::Completed);
        assert_eq!(s.received, 1000 * 512 + 1);
    }

    #[test]
    fn windowsize_without_loss_needs_one_ack_per_window() {
        let mut s = Sim::new(64 * 512, neg(512, 16, true));
        let timeouts = s.run(1000);
        assert_eq!(timeouts, 0);
        assert_eq!(s.t.state(), &State::Completed);
        // 65 blocks (64 full + empty): ACK 0, 4 window ACKs, final ACK.
        assert_eq!(s.acks_sent, 6);
        assert_eq!(s.data_sent, 65);
    }

    #[test]
    fn rollover_70000_blocks_of_8_bytes() {
        for window in [1u16, 16] {
            let size = 70_000 * 8 + 3;
            let mut s = Sim::new(size, neg(8, window, true));
            s.run(200_000);
            assert_eq!(s.t.state(), &State::Completed, "window {window}");
            assert_eq!(s.received, size);
            assert_eq!(s.wire_seen.len(), 70_001);
            assert_eq!(s.wire_seen[65_534], 65_535);
            assert_eq!(s.wire_seen[65_535], 0, "block after 65535 is 0");
            assert_eq!(s.wire_seen[65_536], 1);
            assert_eq!(s.t.bytes_acked(), size);
        }
    }

    #[test]
    fn rollover_with_loss_around_the_wrap() {
        let size = 66_000 * 8;
        let mut s = Sim::new(size, neg(8, 8, false));
        s.drop_data = Box::new(|i| (65_530..65_545).contains(&i) && i % 2 == 0);
        s.drop_ack = Box::new(|i| i % 997 == 0);
        s.run(500_000);
        assert_eq!(s.t.state(), &State::Completed);
        assert_eq!(s.received, size);
    }

    #[test]
    fn retries_exhausted_fails_after_bounded_attempts() {
        let mut t = Transfer::new(peer(), 10_000, &neg(512, 1, false), 3, Instant::ZERO);
        let mut sends = drain(&mut t).len();
        let mut now = Instant::ZERO;
        for _ in 0..10 {
            let Some(d) = t.poll_timeout() else { break };
            now = d;
            t.handle_timeout(now);
            sends += data_blocks(&drain(&mut t)).len();
        }
        assert_eq!(t.state(), &State::Failed(Failure::TimedOut));
        assert_eq!(sends, 4, "one send plus three retries");
        assert_eq!(now, Instant::from_millis(4000));
        assert_eq!(t.poll_timeout(), None);
        t.handle_timeout(Instant::from_millis(99_000));
        assert!(drain(&mut t).is_empty());
    }

    #[test]
    fn retry_counter_resets_on_progress() {
        let mut s = Sim::new(50 * 512, neg(512, 1, false));
        // Every block is lost 5 times in a row then delivered: 5 retries each
        // never exhaust a limit of 5 because progress resets the counter.
        s.drop_data = Box::new(|i| i % 6 != 0);
        s.run(100_000);
        assert_eq!(s.t.state(), &State::Completed);
    }

    #[test]
    fn wrong_tid_gets_error_5_and_does_not_disturb() {
        let mut t = Transfer::new(peer(), 2000, &neg(512, 1, false), 5, Instant::ZERO);
        drain(&mut t);
        let intruder: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let before = t.poll_timeout();
        t.handle_datagram(Instant::from_millis(5), intruder, &ack(1));
        let tx = drain(&mut t);
        assert_eq!(tx.len(), 1);
        assert_eq!(tx[0].dst, intruder);
        let Payload::Bytes(b) = &tx[0].payload else {
            panic!("expected an error datagram")
        };
        assert!(matches!(
            parse(b),
            Ok(Packet::Error {
                code: ErrorCode::UnknownTransferId,
                ..
            })
        ));
        assert_eq!(t.poll_timeout(), before);
        assert_eq!(t.state(), &State::Running);
        t.handle_datagram(Instant::from_millis(6), peer(), &ack(1));
        assert_eq!(data_blocks(&drain(&mut t)), vec![2]);
    }

    #[test]
    fn client_error_and_garbage() {
        let mut t = Transfer::new(peer(), 2000, &neg(512, 1, false), 5, Instant::ZERO);
        drain(&mut t);
        t.handle_datagram(Instant::ZERO, peer(), b"\x00");
        t.handle_datagram(Instant::ZERO, peer(), b"\x00\x03\x00\x01xx");
        assert_eq!(t.state(), &State::Running);
        assert!(drain(&mut t).is_empty());
        t.handle_datagram(
            Instant::ZERO,
            peer(),
            &Packet::Error {
                code: ErrorCode::OptionsRefused,
                message: "no",
            }
            .to_vec(),
        );
        assert_eq!(t.state(), &State::Failed(Failure::ClientError(8)));
        assert_eq!(t.poll_timeout(), None);
        t.handle_datagram(Instant::ZERO, peer(), &ack(1));
        assert!(drain(&mut t).is_empty());
    }
}
