//! HA frames on the wire: parse untrusted bytes, emit into a buffer.
//!
//! Architecture invariant: [`parse`] never panics, whatever the input; it
//! returns a typed [`Error`]. Authentication is not checked here (see
//! `auth`): a parsed [`Heartbeat`] is only well formed, not trusted.
//!
//! Every frame starts with an 8-byte header, all integers big-endian:
//!
//! ```text
//! 0      4        5      6          8
//! | "KPHA" | version | kind | body len | body ...
//! ```
//!
//! | kind | body |
//! |---|---|
//! | 1 heartbeat | incarnation u64, seq u64, epoch u64, path u8, state u8, flags u8, ping seen u8, ping total u8, 3 zero bytes, HMAC-SHA256 tag (32) |
//! | 2 pair hello | nonce_c (16), serial (u8 len + ASCII) |
//! | 3 pair challenge | nonce_c (16), nonce_s (16), serial (u8 len + ASCII) |
//! | 4 pair proof | nonce_c (16), nonce_s (16), mac (32), wrapped key (32) |
//! | 5 pair accept | nonce_c (16), nonce_s (16), mac (32) |
//! | 6 pair reject | nonce_c (16), nonce_s (16), reason u8 |

use std::fmt;

pub const MAGIC: [u8; 4] = *b"KPHA";
pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 8;
pub const TAG_LEN: usize = 32;
/// Heartbeat body without the tag.
const HEARTBEAT_FIELDS_LEN: usize = 32;
pub const HEARTBEAT_LEN: usize = HEADER_LEN + HEARTBEAT_FIELDS_LEN + TAG_LEN;
/// Longest frame this module emits or accepts.
pub const MAX_FRAME_LEN: usize = 256;
pub const NONCE_LEN: usize = 16;
pub const KEY_LEN: usize = 32;
const MAX_SERIAL_LEN: usize = 32;

pub type Nonce = [u8; NONCE_LEN];

/// Why bytes were not a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    Truncated,
    BadMagic,
    UnsupportedVersion(u8),
    UnknownKind(u8),
    BadLength,
    BadField,
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => write!(f, "truncated frame"),
            Error::BadMagic => write!(f, "bad magic"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            Error::UnknownKind(k) => write!(f, "unknown frame kind {k}"),
            Error::BadLength => write!(f, "body length does not match the frame kind"),
            Error::BadField => write!(f, "invalid field value"),
            Error::BufferTooSmall => write!(f, "output buffer too small"),
        }
    }
}

impl std::error::Error for Error {}

/// Which network path a heartbeat was sent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    Sync,
    Lan,
}

impl Path {
    pub const ALL: [Path; 2] = [Path::Sync, Path::Lan];

    fn to_u8(self) -> u8 {
        match self {
            Path::Sync => 1,
            Path::Lan => 2,
        }
    }

    fn from_u8(v: u8) -> Option<Path> {
        match v {
            1 => Some(Path::Sync),
            2 => Some(Path::Lan),
            _ => None,
        }
    }
}

/// The node state as announced to the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireState {
    Init,
    Passive,
    Active,
}

impl WireState {
    fn to_u8(self) -> u8 {
        match self {
            WireState::Init => 1,
            WireState::Passive => 2,
            WireState::Active => 3,
        }
    }

    fn from_u8(v: u8) -> Option<WireState> {
        match v {
            1 => Some(WireState::Init),
            2 => Some(WireState::Passive),
            3 => Some(WireState::Active),
            _ => None,
        }
    }
}

/// Heartbeat flag bits.
pub mod flags {
    /// The sender holds the resource.
    pub const HOLDS: u8 = 1 << 0;
    /// The sender believes it is the default active node.
    pub const DEFAULT: u8 = 1 << 1;
    /// The sender released the resource for the receiver to take at once.
    pub const HANDOVER: u8 = 1 << 2;
    /// The sender asks the receiver to hand the resource over (admin switch on the passive).
    pub const SWITCH_REQUEST: u8 = 1 << 3;
    /// The sender is disabling HA on both nodes.
    pub const DISABLE: u8 = 1 << 4;
    /// The sender unpairs; the receiver forgets the cluster key.
    pub const UNPAIR: u8 = 1 << 5;
    /// The sender is the coordinator.
    pub const COORDINATOR: u8 = 1 << 6;
    /// The sender may hold the resource (LAN up and, with a ping group, a member seen).
    pub const ELIGIBLE: u8 = 1 << 7;
}

/// A heartbeat as it appears on the wire (not yet authenticated).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub incarnation: u64,
    pub seq: u64,
    pub epoch: u64,
    pub path: Path,
    pub state: WireState,
    pub flags: u8,
    pub ping_seen: u8,
    pub ping_total: u8,
    pub tag: [u8; TAG_LEN],
}

/// Why the receiver refused a pairing attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// The coordinator's proof did not match our serial number or code.
    BadProof,
    /// Too many failed attempts; try later.
    RateLimited,
}

/// A decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Heartbeat(Heartbeat),
    PairHello {
        nonce_c: Nonce,
        serial: String,
    },
    PairChallenge {
        nonce_c: Nonce,
        nonce_s: Nonce,
        serial: String,
    },
    PairProof {
        nonce_c: Nonce,
        nonce_s: Nonce,
        mac: [u8; 32],
        wrapped_key: [u8; KEY_LEN],
    },
    PairAccept {
        nonce_c: Nonce,
        nonce_s: Nonce,
        mac: [u8; 32],
    },
    PairReject {
        nonce_c: Nonce,
        nonce_s: Nonce,
        reason: RejectReason,
    },
}

/// Parses one frame from untrusted bytes. Never panics.
pub fn parse(bytes: &[u8]) -> Result<Frame, Error> {
    Frame::parse(bytes)
}

/// A bounds-checked reader over a byte slice.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.rest.len() < n {
            return Err(Error::BadLength);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn serial(&mut self) -> Result<String, Error> {
        let len = usize::from(self.u8()?);
        if len > MAX_SERIAL_LEN {
            return Err(Error::BadField);
        }
        let raw = self.take(len)?;
        if !raw.iter().all(|b| b.is_ascii_graphic()) {
            return Err(Error::BadField);
        }
        // All bytes are ASCII, so this cannot fail.
        String::from_utf8(raw.to_vec()).map_err(|_| Error::BadField)
    }

    fn finish(self) -> Result<(), Error> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::BadLength)
        }
    }
}

impl Frame {
    pub fn parse(bytes: &[u8]) -> Result<Frame, Error> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if bytes[0..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        if bytes[4] != VERSION {
            return Err(Error::UnsupportedVersion(bytes[4]));
        }
        let kind = bytes[5];
        let body_len = usize::from(u16::from_be_bytes([bytes[6], bytes[7]]));
        let body = &bytes[HEADER_LEN..];
        if body.len() < body_len {
            return Err(Error::Truncated);
        }
        if body.len() > body_len || bytes.len() > MAX_FRAME_LEN {
            return Err(Error::BadLength);
        }
        let mut r = Reader { rest: body };
        let frame = match kind {
            1 => {
                let incarnation = r.u64()?;
                let seq = r.u64()?;
                let epoch = r.u64()?;
                let path = Path::from_u8(r.u8()?).ok_or(Error::BadField)?;
                let state = WireState::from_u8(r.u8()?).ok_or(Error::BadField)?;
                let flag_bits = r.u8()?;
                let ping_seen = r.u8()?;
                let ping_total = r.u8()?;
                if ping_seen > ping_total || r.array::<3>()? != [0; 3] {
                    return Err(Error::BadField);
                }
                Frame::Heartbeat(Heartbeat {
                    incarnation,
                    seq,
                    epoch,
                    path,
                    state,
                    flags: flag_bits,
                    ping_seen,
                    ping_total,
                    tag: r.array()?,
                })
            }
            2 => Frame::PairHello {
                nonce_c: r.array()?,
                serial: r.serial()?,
            },
            3 => Frame::PairChallenge {
                nonce_c: r.array()?,
                nonce_s: r.array()?,
                serial: r.serial()?,
            },
            4 => Frame::PairProof {
                nonce_c: r.array()?,
                nonce_s: r.array()?,
                mac: r.array()?,
                wrapped_key: r.array()?,
            },
            5 => Frame::PairAccept {
                nonce_c: r.array()?,
                nonce_s: r.array()?,
                mac: r.array()?,
            },
            6 => Frame::PairReject {
                nonce_c: r.array()?,
                nonce_s: r.array()?,
                reason: match r.u8()? {
                    1 => RejectReason::BadProof,
                    2 => RejectReason::RateLimited,
                    _ => return Err(Error::BadField),
                },
            },
            k => return Err(Error::UnknownKind(k)),
        };
        r.finish()?;
        Ok(frame)
    }

    fn kind(&self) -> u8 {
        match self {
            Frame::Heartbeat(_) => 1,
            Frame::PairHello { .. } => 2,
            Frame::PairChallenge { .. } => 3,
            Frame::PairProof { .. } => 4,
            Frame::PairAccept { .. } => 5,
            Frame::PairReject { .. } => 6,
        }
    }

    /// Encoded length of this frame.
    pub fn buffer_len(&self) -> usize {
        let mut sink = Vec::new();
        self.write_body(&mut sink);
        HEADER_LEN + sink.len()
    }

    /// Writes the frame into `buf`, returning the number of bytes written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let bytes = self.to_vec();
        let out = buf.get_mut(..bytes.len()).ok_or(Error::BufferTooSmall)?;
        out.copy_from_slice(&bytes);
        Ok(bytes.len())
    }

    /// The encoded frame.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(HEARTBEAT_FIELDS_LEN + TAG_LEN);
        self.write_body(&mut body);
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.kind());
        // Bodies are at most ~100 bytes, far below u16::MAX.
        out.extend_from_slice(&(body.len() as u16).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    fn write_body(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Heartbeat(h) => {
                out.extend_from_slice(&h.incarnation.to_be_bytes());
                out.extend_from_slice(&h.seq.to_be_bytes());
                out.extend_from_slice(&h.epoch.to_be_bytes());
                out.extend_from_slice(&[
                    h.path.to_u8(),
                    h.state.to_u8(),
                    h.flags,
                    h.ping_seen.min(h.ping_total),
                    h.ping_total,
                    0,
                    0,
                    0,
                ]);
                out.extend_from_slice(&h.tag);
            }
            Frame::PairHello { nonce_c, serial } => {
                out.extend_from_slice(nonce_c);
                write_serial(out, serial);
            }
            Frame::PairChallenge {
                nonce_c,
                nonce_s,
                serial,
            } => {
                out.extend_from_slice(nonce_c);
                out.extend_from_slice(nonce_s);
                write_serial(out, serial);
            }
            Frame::PairProof {
                nonce_c,
                nonce_s,
                mac,
                wrapped_key,
            } => {
                out.extend_from_slice(nonce_c);
                out.extend_from_slice(nonce_s);
                out.extend_from_slice(mac);
                out.extend_from_slice(wrapped_key);
            }
            Frame::PairAccept {
                nonce_c,
                nonce_s,
                mac,
            } => {
                out.extend_from_slice(nonce_c);
                out.extend_from_slice(nonce_s);
                out.extend_from_slice(mac);
            }
            Frame::PairReject {
                nonce_c,
                nonce_s,
                reason,
            } => {
                out.extend_from_slice(nonce_c);
                out.extend_from_slice(nonce_s);
                out.push(match reason {
                    RejectReason::BadProof => 1,
                    RejectReason::RateLimited => 2,
                });
            }
        }
    }
}

/// Writes a serial, keeping only printable ASCII and at most 32 bytes so the
/// result always parses.
fn write_serial(out: &mut Vec<u8>, serial: &str) {
    let clean: Vec<u8> = serial
        .bytes()
        .filter(u8::is_ascii_graphic)
        .take(MAX_SERIAL_LEN)
        .collect();
    out.push(clean.len() as u8);
    out.extend_from_slice(&clean);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat() -> Frame {
        Frame::Heartbeat(Heartbeat {
            incarnation: 7,
            seq: 0x0102,
            epoch: 3,
            path: Path::Lan,
            state: WireState::Active,
            flags: flags::HOLDS | flags::COORDINATOR,
            ping_seen: 2,
            ping_total: 3,
            tag: [0xab; TAG_LEN],
        })
    }

    #[test]
    fn heartbeat_golden_bytes() {
        let bytes = heartbeat().to_vec();
        let mut expected = vec![
            b'K', b'P', b'H', b'A', 1, 1, 0, 64, // header
            0, 0, 0, 0, 0, 0, 0, 7, // incarnation
            0, 0, 0, 0, 0, 0, 1, 2, // seq
            0, 0, 0, 0, 0, 0, 0, 3, // epoch
            2, 3, 0x41, 2, 3, 0, 0, 0, // path, state, flags, ping, pad
        ];
        expected.extend_from_slice(&[0xab; TAG_LEN]);
        assert_eq!(bytes, expected);
        assert_eq!(bytes.len(), HEARTBEAT_LEN);
        assert_eq!(parse(&bytes), Ok(heartbeat()));
    }

    #[test]
    fn reject_golden_bytes() {
        let f = Frame::PairReject {
            nonce_c: [1; 16],
            nonce_s: [2; 16],
            reason: RejectReason::BadProof,
        };
        let bytes = f.to_vec();
        assert_eq!(&bytes[..8], &[b'K', b'P', b'H', b'A', 1, 6, 0, 33]);
        assert_eq!(bytes[8..24], [1; 16]);
        assert_eq!(bytes[24..40], [2; 16]);
        assert_eq!(bytes[40], 1);
        assert_eq!(parse(&bytes), Ok(f));
    }

    #[test]
    fn all_kinds_round_trip() {
        let frames = [
            heartbeat(),
            Frame::PairHello {
                nonce_c: [9; 16],
                serial: "KP-0001".into(),
            },
            Frame::PairChallenge {
                nonce_c: [9; 16],
                nonce_s: [8; 16],
                serial: "KP-0002".into(),
            },
            Frame::PairProof {
                nonce_c: [9; 16],
                nonce_s: [8; 16],
                mac: [7; 32],
                wrapped_key: [6; 32],
            },
            Frame::PairAccept {
                nonce_c: [9; 16],
                nonce_s: [8; 16],
                mac: [5; 32],
            },
        ];
        for f in frames {
            let mut buf = [0u8; MAX_FRAME_LEN];
            let n = f.emit(&mut buf).unwrap();
            assert_eq!(n, f.buffer_len());
            assert_eq!(parse(&buf[..n]), Ok(f));
        }
    }

    #[test]
    fn typed_errors() {
        let good = heartbeat().to_vec();
        assert_eq!(parse(&good[..3]), Err(Error::Truncated));
        assert_eq!(parse(&good[..40]), Err(Error::Truncated));
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(parse(&b), Err(Error::BadMagic));
        let mut b = good.clone();
        b[4] = 2;
        assert_eq!(parse(&b), Err(Error::UnsupportedVersion(2)));
        let mut b = good.clone();
        b[5] = 99;
        assert_eq!(parse(&b), Err(Error::UnknownKind(99)));
        let mut b = good.clone();
        b.push(0);
        assert_eq!(parse(&b), Err(Error::BadLength));
        let mut b = good.clone();
        b[32] = 9; // path
        assert_eq!(parse(&b), Err(Error::BadField));
        let mut b = good.clone();
        b[35] = 4; // ping seen > total
        assert_eq!(parse(&b), Err(Error::BadField));
        let mut b = good;
        b[7] = 20; // body shorter than the kind needs
        b.truncate(28);
        assert_eq!(parse(&b), Err(Error::BadLength));
    }

    /// A tiny deterministic fuzz loop: mutations of valid frames never panic.
    #[test]
    fn mutations_never_panic() {
        let seeds = [
            heartbeat().to_vec(),
            Frame::PairHello {
                nonce_c: [1; 16],
                serial: "S".into(),
            }
            .to_vec(),
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for seed in &seeds {
            for _ in 0..5000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let mut b = seed.clone();
                let i = (x as usize) % b.len();
                b[i] = (x >> 32) as u8;
                b.truncate((x >> 40) as usize % (b.len() + 1));
                let _ = parse(&b);
            }
        }
        let _ = parse(&[0xff; 300]);
    }
}
