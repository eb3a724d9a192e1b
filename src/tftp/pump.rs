//! The transfer thread (adapter): every running transfer's socket, timer and file, driven by
//! one `epoll_wait` loop of its own.
//!
//! Why a thread and not a task per transfer on the loop: a lock-step transfer waits once per
//! block. Through the loop's reactor that wait costs about five syscalls beyond the `recvfrom`
//! and `sendto` (one-shot re-registration of the socket, of the timer descriptor and of the
//! reactor's notifier, `timerfd_settime`, `epoll_pwait`) plus executor bookkeeping, which made
//! kpbxd slower than tftpd-hpa on firmware downloads. Here each socket is added to the epoll
//! set once (level-triggered) and the retransmission timers are a heap whose earliest deadline
//! is `epoll_wait`'s timeout, so a block costs `epoll_wait` + `recvfrom` + `sendto`, and one
//! `epoll_wait` serves every transfer that became ready (a boot storm).
//!
//! The thread owns nothing of the product: the loop decides (parses the request, asks the
//! [`FileSource`](super::FileSource), opens the file, binds the socket) and hands over a
//! [`Start`]; the thread reports a [`Done`] back through a channel the loop reads. The
//! protocol stays in the pure [`Transfer`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use rustix::event::{EventfdFlags, epoll, eventfd};

use super::packet::{self, ErrorCode, Packet};
use super::transfer::{Failure, Payload, State, Transfer};
use super::{FileData, Outcome};
use crate::clock::{Clock, Instant, SystemClock};

/// A transfer handed to the thread: its socket (bound, non-blocking), the machine (with its
/// first datagrams queued) and the file.
pub(super) struct Start {
    pub sock: UdpSocket,
    pub t: Transfer,
    pub data: FileData,
    pub path: String,
}

/// How a transfer ended, for the loop's fetch log.
pub(super) struct Done {
    pub peer: SocketAddr,
    pub path: String,
    pub outcome: Outcome,
    pub bytes: u64,
    pub retransmits: u64,
}

/// The loop's end: hands transfers over. Dropping it stops the thread (running transfers are
/// abandoned, their sockets closed).
pub(super) struct Handle {
    /// `None` only while dropping.
    tx: Option<mpsc::Sender<Start>>,
    bell: Arc<Doorbell>,
}

impl Handle {
    /// Starts the thread. Its reports arrive on `done`; the channel closes when it stops.
    /// `clock` must be the one the handed-over transfers were started with (their
    /// deadlines are on its time line).
    pub(super) fn spawn(
        done: smol::channel::Sender<Done>,
        clock: SystemClock,
    ) -> io::Result<Handle> {
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC)?;
        let bell = Arc::new(Doorbell {
            fd: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?,
            rung: AtomicBool::new(false),
        });
        epoll::add(
            &ep,
            bell.fd.as_fd(),
            epoll::EventData::new_u64(BELL),
            epoll::EventFlags::IN,
        )?;
        let (tx, rx) = mpsc::channel();
        let pump = Pump {
            ep,
            bell: bell.clone(),
            rx,
            done,
            slots: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            clock,
            out: Vec::with_capacity(packet::DATA_HEADER_LEN + usize::from(u16::MAX)),
            rbuf: vec![0u8; 2048],
        };
        std::thread::Builder::new()
            .name("kpbxd-tftp".into())
            // Buffers are on the heap; the loop needs little stack.
            .stack_size(256 << 10)
            .spawn(move || pump.run())?;
        Ok(Handle { tx: Some(tx), bell })
    }

    /// Hands a transfer over. Fails only if the thread is gone (the transfer is dropped).
    pub(super) fn start(&self, s: Start) -> io::Result<()> {
        let stopped = || io::Error::other("the transfer thread stopped");
        self.tx
            .as_ref()
            .ok_or_else(stopped)?
            .send(s)
            .map_err(|_| stopped())?;
        self.bell.ring();
        Ok(())
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // Disconnect first, then wake the thread so that it sees it.
        drop(self.tx.take());
        self.bell.ring();
    }
}

/// An eventfd rung at most once until the thread answers it.
struct Doorbell {
    fd: OwnedFd,
    rung: AtomicBool,
}

impl Doorbell {
    fn ring(&self) {
        if !self.rung.swap(true, Ordering::AcqRel) {
            let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
        }
    }

    /// Re-arms the bell; the caller then drains the queue.
    ///
    /// The eventfd is read before the flag is cleared. The other order loses a wake-up: a
    /// ring between clearing and reading sets the flag and writes, the read swallows that
    /// write, and every later ring finds the flag set and writes nothing, so the thread
    /// sleeps with transfers queued (seen: a boot storm stalled after 25 transfers). In
    /// this order a ring that finds the flag still set happened before the clearing (an
    /// RMW, so its send is seen by the drain that follows), and a ring after it writes.
    fn answer(&self) {
        let mut b = [0u8; 8];
        let _ = rustix::io::read(&self.fd, &mut b);
        self.rung.swap(false, Ordering::AcqRel);
    }
}

/// The epoll key of the doorbell; transfers use their slot index.
const BELL: u64 = u64::MAX;

/// Events fetched per `epoll_wait`.
const BATCH: usize = 256;

/// Disk files larger than this are read ahead in [`READ_AHEAD`] chunks
/// (one `pread` per chunk instead of per block); smaller ones block by block
/// so that a boot storm of small files costs no extra memory.
const READ_AHEAD_MIN_FILE: u64 = 256 * 1024;
const READ_AHEAD: usize = 64 * 1024;

/// A window of the file kept in memory for sequential reads.
struct ReadAhead {
    buf: Vec<u8>,
    offset: u64,
}

struct Slot {
    sock: UdpSocket,
    t: Transfer,
    data: FileData,
    ahead: Option<ReadAhead>,
    path: String,
    /// The deadline of this slot's entry in the timer heap, if it has one. The machine's
    /// deadline moves with every ACK; the heap entry is only replaced when it comes due
    /// (then re-pushed at the machine's current deadline) or when the deadline comes
    /// earlier, so timer work is about one heap operation per timeout period, not per block.
    armed: Option<Instant>,
}

struct Pump {
    ep: OwnedFd,
    bell: Arc<Doorbell>,
    rx: mpsc::Receiver<Start>,
    done: smol::channel::Sender<Done>,
    slots: Vec<Option<Slot>>,
    free: Vec<usize>,
    /// (deadline, slot) entries; stale ones (see [`Slot::armed`]) are skipped when popped.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    clock: SystemClock,
    /// One encode buffer and one receive buffer for every transfer: the thread handles one
    /// datagram at a time.
    out: Vec<u8>,
    rbuf: Vec<u8>,
}

impl Pump {
    fn run(mut self) {
        let mut events = [const { MaybeUninit::<epoll::Event>::uninit() }; BATCH];
        // One clock read per wake-up: the handling between two waits takes microseconds,
        // the deadlines are at least a millisecond apart from it.
        let mut now = self.clock.now();
        loop {
            self.expire(now);
            let timeout = self.timers.peek().map(|Reverse((d, _))| {
                let wait = d.saturating_since(now);
                rustix::event::Timespec {
                    tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
                    tv_nsec: i64::from(wait.subsec_nanos()),
                }
            });
            let ready = match epoll::wait(&self.ep, &mut events, timeout.as_ref()) {
                Ok((ready, _)) => ready,
                Err(rustix::io::Errno::INTR) => {
                    // A signal (the daemon's handlers are process-wide) cut the wait short:
                    // the deadlines are judged against the time now, not at the last wake-up.
                    now = self.clock.now();
                    continue;
                }
                Err(e) => {
                    log::error!("tftp: transfer thread stopped: epoll: {e}");
                    return self.abandon(&io::Error::from(e).to_string());
                }
            };
            now = self.clock.now();
            for ev in ready.iter() {
                match ev.data.u64() {
                    BELL => {
                        if !self.take_new() {
                            return self.abandon("server stopped");
                        }
                    }
                    key => self.readable(key as usize, now),
                }
            }
        }
    }

    /// Starts the transfers the loop handed over; false once the loop is gone.
    fn take_new(&mut self) -> bool {
        self.bell.answer();
        loop {
            match self.rx.try_recv() {
                Ok(s) => self.insert(s),
                Err(mpsc::TryRecvError::Empty) => return true,
                Err(mpsc::TryRecvError::Disconnected) => return false,
            }
        }
    }

    fn insert(&mut self, s: Start) {
        let key = self.free.pop().unwrap_or(self.slots.len());
        let data = epoll::EventData::new_u64(key as u64);
        if let Err(e) = epoll::add(&self.ep, s.sock.as_fd(), data, epoll::EventFlags::IN) {
            self.report(Done {
                peer: s.t.peer(),
                path: s.path,
                outcome: Outcome::Io(format!("epoll: {e}")),
                bytes: 0,
                retransmits: 0,
            });
            if key < self.slots.len() {
                self.free.push(key);
            }
            return;
        }
        let ahead = match &s.data {
            FileData::Disk(_) if s.t.size() > READ_AHEAD_MIN_FILE => {
                let blksize = usize::try_from(s.t.blksize()).unwrap_or(READ_AHEAD);
                Some(ReadAhead {
                    buf: Vec::with_capacity(READ_AHEAD.max(blksize)),
                    offset: 0,
                })
            }
            _ => None,
        };
        let slot = Slot {
            sock: s.sock,
            t: s.t,
            data: s.data,
            ahead,
            path: s.path,
            armed: None,
        };
        if key == self.slots.len() {
            self.slots.push(Some(slot));
        } else {
            self.slots[key] = Some(slot);
        }
        self.drive(key);
    }

    /// Up to a window of datagrams for `key`: 1 in lock-step (the next ACK cannot come
    /// before the next block is sent, so a second `recvfrom` would only find nothing), the
    /// window otherwise (a client may acknowledge every block of a window). Level-triggered:
    /// more queued ones fire the next wait. A client that keeps sending (duplicates, strays)
    /// cannot hold off its retransmission timer: [`Pump::expire`] runs on every turn of the
    /// loop.
    fn readable(&mut self, key: usize, now: Instant) {
        let Some(Some(slot)) = self.slots.get_mut(key) else {
            return; // ended earlier in this batch
        };
        for _ in 0..slot.t.window() {
            let Some((n, from)) = recv(&slot.sock, &mut self.rbuf) else {
                break;
            };
            slot.t.handle_datagram(now, from, &self.rbuf[..n]);
            if slot.t.state() != &State::Running {
                break;
            }
        }
        self.drive(key);
    }

    /// Fires the due timers.
    fn expire(&mut self, now: Instant) {
        while let Some(&Reverse((d, key))) = self.timers.peek() {
            if d > now {
                return;
            }
            self.timers.pop();
            let Some(Some(slot)) = self.slots.get_mut(key) else {
                continue;
            };
            if slot.armed != Some(d) {
                continue; // stale: the slot has an earlier entry, or was reused
            }
            slot.armed = None;
            slot.t.handle_timeout(now);
            self.drive(key);
        }
    }

    /// Sends what the machine queued, then re-arms its timer or ends it.
    fn drive(&mut self, key: usize) {
        let Some(Some(slot)) = self.slots.get_mut(key) else {
            return;
        };
        while let Some(tx) = slot.t.poll_transmit() {
            if let Err(e) = encode(&slot.data, &tx.payload, &mut self.out, slot.ahead.as_mut()) {
                let err = Packet::Error {
                    code: ErrorCode::NotDefined,
                    message: "Server error",
                };
                let _ = send_to(&slot.sock, &err.to_vec(), slot.t.peer());
                return self.end(key, Outcome::Io(e.to_string()));
            }
            // A failed send (even a full buffer) is covered by the retransmission timer.
            let _ = send_to(&slot.sock, &self.out, tx.dst);
        }
        let outcome = match slot.t.state() {
            State::Running => match slot.t.poll_timeout() {
                // A deadline already past fires on the next turn of the loop.
                Some(d) => {
                    if slot.armed.is_none_or(|a| d < a) {
                        slot.armed = Some(d);
                        self.timers.push(Reverse((d, key)));
                    }
                    return;
                }
                None => Outcome::TimedOut,
            },
            State::Completed => Outcome::Completed,
            State::Failed(Failure::TimedOut) => Outcome::TimedOut,
            State::Failed(Failure::ClientError(c)) => Outcome::ClientAborted(*c),
        };
        self.end(key, outcome);
    }

    /// Closes the transfer's socket (leaving the epoll set) and reports it.
    fn end(&mut self, key: usize, outcome: Outcome) {
        let Some(slot) = self.slots.get_mut(key).and_then(Option::take) else {
            return;
        };
        self.free.push(key);
        self.report(Done {
            peer: slot.t.peer(),
            path: slot.path,
            outcome,
            bytes: slot.t.bytes_acked(),
            retransmits: slot.t.retransmits(),
        });
    }

    fn report(&self, done: Done) {
        // Unbounded: fails only when the loop is gone, and then nobody wants the report.
        let _ = self.done.try_send(done);
    }

    /// The thread is stopping: every running transfer ends with `why`.
    fn abandon(mut self, why: &str) {
        for key in 0..self.slots.len() {
            self.end(key, Outcome::Io(why.to_owned()));
        }
    }
}

/// One `recvfrom` without waiting. `None` when nothing is queued (a slot reused within a
/// batch), or on an error queued on the socket (ICMP port unreachable from a vanished
/// client): reading it cleared it, and the retransmission timer decides.
fn recv(sock: &UdpSocket, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    loop {
        match rustix::net::recvfrom(sock, &mut *buf, rustix::net::RecvFlags::empty()) {
            // Not an IP peer: cannot happen on a UDP/IP socket.
            Ok((n, _, Some(from))) => {
                return SocketAddr::try_from(from)
                    .ok()
                    .map(|f| (n.min(buf.len()), f));
            }
            Ok((_, _, None)) => return None,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
}

/// `sendto` straight through rustix (no libc cancellation bookkeeping).
fn send_to(sock: &UdpSocket, buf: &[u8], dst: SocketAddr) -> io::Result<()> {
    loop {
        match rustix::net::sendto(sock, buf, rustix::net::SendFlags::empty(), &dst) {
            Ok(_) => return Ok(()),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Writes the datagram for `payload` into `out`, reading file data as needed.
fn encode(
    data: &FileData,
    payload: &Payload,
    out: &mut Vec<u8>,
    ahead: Option<&mut ReadAhead>,
) -> io::Result<()> {
    out.clear();
    let (block, offset, len) = match payload {
        Payload::Bytes(b) => {
            out.extend_from_slice(b);
            return Ok(());
        }
        Payload::Data { block, offset, len } => (*block, *offset, *len),
    };
    packet::emit_data_header(block, out);
    let short = || io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank");
    match (data, ahead) {
        (FileData::Memory(m), _) => {
            let start = usize::try_from(offset).map_err(|_| short())?;
            let chunk = m.get(start..start + len).ok_or_else(short)?;
            out.extend_from_slice(chunk);
        }
        (FileData::Disk(f), None) => {
            out.resize(packet::DATA_HEADER_LEN + len, 0);
            // Fails with UnexpectedEof if the file shrank.
            f.read_exact_at(&mut out[packet::DATA_HEADER_LEN..], offset)?;
        }
        (FileData::Disk(f), Some(ra)) => {
            let end = offset + len as u64;
            let cached = offset >= ra.offset && end <= ra.offset + ra.buf.len() as u64;
            if !cached {
                let want = ra.buf.capacity().max(len);
                ra.buf.resize(want, 0);
                let mut got = 0;
                while got < want {
                    match f.read_at(&mut ra.buf[got..], offset + got as u64) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                ra.buf.truncate(got);
                ra.offset = offset;
                if got < len {
                    return Err(short());
                }
            }
            let start = (offset - ra.offset) as usize;
            out.extend_from_slice(&ra.buf[start..start + len]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tftp::packet::Options;
    use crate::tftp::transfer::{Limits, negotiate};
    use std::time::Duration;

    fn start(clock: &SystemClock, client: &UdpSocket, data: &[u8], path: &str) -> Start {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_nonblocking(true).unwrap();
        let n = negotiate(&Options::default(), data.len() as u64, &Limits::default());
        let peer = client.local_addr().unwrap();
        let t = Transfer::new(peer, data.len() as u64, &n, 5, clock.now());
        Start {
            sock,
            t,
            data: FileData::Memory(data.into()),
            path: path.into(),
        }
    }

    /// The doorbell never loses a ring: a producer sends and rings in bursts while a
    /// consumer waits on the eventfd, answers and drains, as the thread does. Every message
    /// must arrive with the consumer only ever woken by the bell. (With the flag cleared
    /// before the eventfd was read, this stalled within a few thousand bursts.)
    #[test]
    fn the_doorbell_loses_no_ring() {
        const MESSAGES: u32 = 200_000;
        let bell = Arc::new(Doorbell {
            fd: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).unwrap(),
            rung: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel::<u32>();
        let consumer = {
            let bell = bell.clone();
            std::thread::spawn(move || {
                let mut got = 0;
                let mut pfd = [rustix::event::PollFd::new(
                    &bell.fd,
                    rustix::event::PollFlags::IN,
                )];
                let limit = rustix::event::Timespec {
                    tv_sec: 2,
                    tv_nsec: 0,
                };
                while got < MESSAGES {
                    // A wait that times out means a ring was lost.
                    if rustix::event::poll(&mut pfd, Some(&limit)).unwrap() == 0 {
                        return got;
                    }
                    bell.answer();
                    got += rx.try_iter().count() as u32;
                }
                got
            })
        };
        for i in 0..MESSAGES {
            tx.send(i).unwrap();
            bell.ring();
            if i % 7 == 0 {
                std::thread::yield_now();
            }
        }
        assert_eq!(consumer.join().unwrap(), MESSAGES, "a ring was lost");
    }

    /// A lock-step transfer runs to its end and is reported; dropping the handle stops the
    /// thread, abandoning (and reporting) what still runs.
    #[test]
    fn runs_transfers_reports_them_and_stops_with_its_handle() {
        let (done_tx, done_rx) = smol::channel::unbounded();
        let clock = SystemClock::default();
        let pump = Handle::spawn(done_tx, clock.clone()).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let file: Vec<u8> = (0..1300u32).map(|i| i as u8).collect();
        pump.start(start(&clock, &client, &file, "a.cfg")).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 600];
        for _ in 0..10 {
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..2], &[0, 3], "a DATA packet");
            got.extend_from_slice(&buf[4..n]);
            client.send_to(&[0, 4, buf[2], buf[3]], from).unwrap();
            if n < 516 {
                break;
            }
        }
        assert_eq!(got, file);
        let d = smol::block_on(done_rx.recv()).unwrap();
        assert_eq!(
            (d.path.as_str(), d.outcome, d.bytes),
            ("a.cfg", Outcome::Completed, 1300)
        );

        // A second transfer whose client never answers, then the loop goes away.
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        pump.start(start(&clock, &silent, &file, "b.cfg")).unwrap();
        drop(pump);
        let d = smol::block_on(async {
            smol::future::or(async { done_rx.recv().await.ok() }, async {
                smol::Timer::after(Duration::from_secs(5)).await;
                None
            })
            .await
        })
        .expect("the abandoned transfer is reported");
        assert_eq!(d.path, "b.cfg");
        assert_eq!(d.outcome, Outcome::Io("server stopped".into()));
        // The thread is gone: its end of the channel is closed.
        assert!(smol::block_on(done_rx.recv()).is_err());
    }
}
