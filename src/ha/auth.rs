//! HMAC-SHA256 for heartbeats and pairing.
//!
//! Architecture invariant: pure functions of their inputs; all randomness
//! (nonces, the cluster key) comes from the caller.
//!
//! Pairing secret: `HMAC(label, serial)` of the secondary's serial number, or
//! of the one-time pairing code when one is configured. A serial number is
//! guessable by anyone who can read the label on the box, and an observer
//! of one pairing exchange can test guesses offline; the pairing code (at
//! least 8 characters) is the stronger choice. A PAKE would remove the
//! offline guess and is future work.

use super::wire::{self, Frame, KEY_LEN, Nonce, TAG_LEN};

/// A 32-byte symmetric key (the pairing secret or the cluster key).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Key(pub [u8; KEY_LEN]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(..)")
    }
}

fn mac(key: &Key, parts: &[&[u8]]) -> [u8; 32] {
    let mut m =
        ring::hmac::Context::with_key(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key.0));
    for p in parts {
        m.update(p);
    }
    let mut out = [0; 32];
    out.copy_from_slice(m.sign().as_ref());
    out
}

/// Constant-time check of `tag` (ring's `hmac::verify`).
fn verify(key: &Key, parts: &[&[u8]], tag: &[u8]) -> bool {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key.0);
    ring::hmac::verify(&key, &parts.concat(), tag).is_ok()
}

/// The secret both nodes derive for pairing; it never crosses the wire.
pub fn pairing_secret(secondary_serial: &str, code: Option<&str>) -> Key {
    let label = Key(*b"kpbx-ha pairing secret v1\0\0\0\0\0\0\0");
    let secret = match code {
        Some(code) => mac(&label, &[b"code\0", code.trim().as_bytes()]),
        None => mac(&label, &[b"serial\0", secondary_serial.trim().as_bytes()]),
    };
    Key(secret)
}

/// The coordinator's proof of the secret.
pub fn coordinator_proof(secret: &Key, nc: &Nonce, ns: &Nonce) -> [u8; 32] {
    mac(secret, &[b"coordinator", nc, ns])
}

pub fn check_coordinator_proof(secret: &Key, nc: &Nonce, ns: &Nonce, tag: &[u8]) -> bool {
    verify(secret, &[b"coordinator", nc, ns], tag)
}

/// The secondary's proof of the secret and of the unwrapped key.
pub fn secondary_proof(secret: &Key, nc: &Nonce, ns: &Nonce, key: &Key) -> [u8; 32] {
    mac(secret, &[b"secondary", nc, ns, &key.0])
}

pub fn check_secondary_proof(secret: &Key, nc: &Nonce, ns: &Nonce, key: &Key, tag: &[u8]) -> bool {
    verify(secret, &[b"secondary", nc, ns, &key.0], tag)
}

/// Encrypts (or decrypts: XOR is its own inverse) the cluster key for transport.
pub fn wrap_key(secret: &Key, nc: &Nonce, ns: &Nonce, key: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    let pad = mac(secret, &[b"wrap", nc, ns]);
    let mut out = [0u8; KEY_LEN];
    for (o, (k, p)) in out.iter_mut().zip(key.iter().zip(pad.iter())) {
        *o = k ^ p;
    }
    out
}

/// Encodes a heartbeat and sets its tag (over every byte before the tag).
pub fn seal_heartbeat(key: &Key, mut hb: wire::Heartbeat) -> Vec<u8> {
    hb.tag = [0; TAG_LEN];
    let mut bytes = Frame::Heartbeat(hb).to_vec();
    let split = bytes.len() - TAG_LEN;
    let tag = mac(key, &[&bytes[..split]]);
    bytes[split..].copy_from_slice(&tag);
    bytes
}

/// Whether a parsed heartbeat's raw bytes carry a valid tag.
pub fn verify_heartbeat(key: &Key, bytes: &[u8]) -> bool {
    match bytes.len().checked_sub(TAG_LEN) {
        Some(split) => verify(key, &[&bytes[..split]], &bytes[split..]),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ha::wire::{Path, WireState};

    #[test]
    fn serial_and_code_give_different_secrets() {
        let a = pairing_secret("KP-1", None);
        assert_eq!(a, pairing_secret(" KP-1 ", None));
        assert_ne!(a, pairing_secret("KP-2", None));
        assert_ne!(a, pairing_secret("KP-1", Some("KP-1")));
    }

    #[test]
    fn heartbeat_tag_detects_any_change() {
        let key = Key([3; 32]);
        let hb = wire::Heartbeat {
            incarnation: 1,
            seq: 2,
            epoch: 0,
            path: Path::Sync,
            state: WireState::Passive,
            flags: 0,
            ping_seen: 0,
            ping_total: 0,
            tag: [0; 32],
        };
        let bytes = seal_heartbeat(&key, hb);
        assert!(verify_heartbeat(&key, &bytes));
        assert!(!verify_heartbeat(&Key([4; 32]), &bytes));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            assert!(!verify_heartbeat(&key, &b), "byte {i}");
        }
        assert!(!verify_heartbeat(&key, &bytes[..10]));
    }

    #[test]
    fn wrap_round_trips() {
        let s = pairing_secret("x", None);
        let k = [42; 32];
        let w = wrap_key(&s, &[1; 16], &[2; 16], &k);
        assert_ne!(w, k);
        assert_eq!(wrap_key(&s, &[1; 16], &[2; 16], &w), k);
    }
}
