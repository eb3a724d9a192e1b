//! Frames on the control socket.
//!
//! ```text
//! 0      2        3        4                8
//! +------+--------+--------+----------------+----------------------+
//! | "KP" | version| flags=0| length (u32 BE)| postcard payload ... |
//! +------+--------+--------+----------------+----------------------+
//! ```
//!
//! A client sends [`Request`] frames and reads one [`Answer`] frame for each
//! (or, for a stream, chunk answers until one that is not a chunk). An answer
//! carries the box's time zone (the `timezone` setting) beside the reply:
//! the console shows every time in it and never guesses from its own
//! environment. Version 2 added the zone.
//! Anything else (bad magic, another version, a length over the limit, a
//! payload that does not decode exactly) is a [`FrameError`]: the daemon
//! answers with an error reply and closes the connection.

use std::fmt;

use super::{Reply, Request};

pub const MAGIC: [u8; 2] = *b"KP";
pub const VERSION: u8 = 2;
pub const HEADER_LEN: usize = 8;
/// Largest request payload the daemon reads.
pub const MAX_REQUEST: usize = 16 << 20;
/// Largest reply payload the CLI reads.
pub const MAX_REPLY: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    BadMagic,
    UnsupportedVersion(u8),
    UnsupportedFlags(u8),
    TooLarge { len: usize, max: usize },
    Truncated,
    Undecodable(String),
    TrailingBytes(usize),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadMagic => f.write_str("not a kpbx control frame"),
            FrameError::UnsupportedVersion(v) => write!(
                f,
                "unsupported control protocol version {v} (this side speaks {VERSION})"
            ),
            FrameError::UnsupportedFlags(x) => write!(f, "unsupported frame flags {x:#04x}"),
            FrameError::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the limit of {max}")
            }
            FrameError::Truncated => f.write_str("truncated frame"),
            FrameError::Undecodable(e) => write!(f, "undecodable frame payload: {e}"),
            FrameError::TrailingBytes(n) => write!(f, "{n} unexpected bytes after the payload"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Checks a frame header and returns the payload length that follows.
pub fn parse_header(header: &[u8; HEADER_LEN], max: usize) -> Result<usize, FrameError> {
    if header[..2] != MAGIC {
        return Err(FrameError::BadMagic);
    }
    if header[2] != VERSION {
        return Err(FrameError::UnsupportedVersion(header[2]));
    }
    if header[3] != 0 {
        return Err(FrameError::UnsupportedFlags(header[3]));
    }
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(len)
}

fn frame(payload: Vec<u8>) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

fn decode<'a, T: serde::Deserialize<'a>>(payload: &'a [u8]) -> Result<T, FrameError> {
    let (value, rest) =
        postcard::take_from_bytes(payload).map_err(|e| FrameError::Undecodable(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

pub fn encode_request(request: &Request) -> Vec<u8> {
    frame(postcard::to_stdvec(request).unwrap_or_default())
}

/// A reply as the console receives it: the box's zone and the reply.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Answer {
    /// IANA name of the box's zone, e.g. `Europe/Rome`.
    pub zone: String,
    pub reply: Reply,
}

/// [`Answer`] borrowed, for encoding (the same postcard bytes).
#[derive(serde::Serialize)]
struct AnswerRef<'a> {
    zone: &'a str,
    reply: &'a Reply,
}

pub fn encode_reply(reply: &Reply, zone: &str) -> Vec<u8> {
    frame(postcard::to_stdvec(&AnswerRef { zone, reply }).unwrap_or_default())
}

pub fn decode_request(payload: &[u8]) -> Result<Request, FrameError> {
    decode(payload)
}

pub fn decode_reply(payload: &[u8]) -> Result<Answer, FrameError> {
    decode(payload)
}

/// Decodes one whole request frame from a buffer (header and payload); the
/// entry point of the fuzz target.
pub fn decode_request_frame(bytes: &[u8]) -> Result<Request, FrameError> {
    let header: &[u8; HEADER_LEN] = bytes
        .get(..HEADER_LEN)
        .and_then(|h| h.try_into().ok())
        .ok_or(FrameError::Truncated)?;
    let len = parse_header(header, MAX_REQUEST)?;
    let payload = &bytes[HEADER_LEN..];
    match payload.len().cmp(&len) {
        std::cmp::Ordering::Less => Err(FrameError::Truncated),
        std::cmp::Ordering::Greater => Err(FrameError::TrailingBytes(payload.len() - len)),
        std::cmp::Ordering::Equal => decode_request(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Command;

    #[test]
    fn round_trip() {
        let r = Request {
            command: Command::AuditList { limit: 5 },
        };
        let bytes = encode_request(&r);
        assert_eq!(bytes, [b'K', b'P', VERSION, 0, 0, 0, 0, 2, 1, 5]);
        assert_eq!(decode_request_frame(&bytes).unwrap(), r);
        // An answer carries the box's zone beside the reply.
        let reply = Reply::Audit(Vec::new());
        let bytes = encode_reply(&reply, "Europe/Rome");
        let answer = decode_reply(&bytes[HEADER_LEN..]).unwrap();
        assert_eq!(answer.zone, "Europe/Rome");
        assert_eq!(answer.reply, reply);
    }

    #[test]
    fn bad_frames_are_named() {
        let good = encode_request(&Request {
            command: Command::Status,
        });
        let mut v = good.clone();
        v[0] = b'G';
        assert_eq!(decode_request_frame(&v), Err(FrameError::BadMagic));
        let mut v = good.clone();
        v[2] = 9;
        assert_eq!(
            decode_request_frame(&v),
            Err(FrameError::UnsupportedVersion(9))
        );
        let mut v = good.clone();
        v[4] = 0xff;
        assert!(matches!(
            decode_request_frame(&v),
            Err(FrameError::TooLarge { .. })
        ));
        assert_eq!(decode_request_frame(&good[..5]), Err(FrameError::Truncated));
        let mut v = good.clone();
        v.push(0);
        assert_eq!(decode_request_frame(&v), Err(FrameError::TrailingBytes(1)));
        let v = [b'K', b'P', VERSION, 0, 0, 0, 0, 1, 77];
        assert!(matches!(
            decode_request_frame(&v),
            Err(FrameError::Undecodable(_))
        ));
        // "GET / HTTP/1.0" on the control socket.
        assert_eq!(
            decode_request_frame(b"GET / HTTP/1.0\r\n\r\n"),
            Err(FrameError::BadMagic)
        );
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut seed = 0x2545f4914f6cdd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for i in 0..20_000u32 {
            let len = (next() % 64) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if i % 2 == 0 && bytes.len() >= HEADER_LEN {
                // Keep a valid header so the payload decoder is exercised.
                let n = (bytes.len() - HEADER_LEN) as u32;
                bytes[..2].copy_from_slice(&MAGIC);
                bytes[2] = VERSION;
                bytes[3] = 0;
                bytes[4..8].copy_from_slice(&n.to_be_bytes());
            }
            let _ = decode_request_frame(&bytes);
            let _ = decode_reply(&bytes);
        }
    }
}
