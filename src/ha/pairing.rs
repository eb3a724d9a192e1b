//! First contact: prove the pairing secret both ways, then move a cluster key.
//!
//! Architecture invariant: no I/O and no randomness of its own; nonces and
//! the key are drawn from an [`Entropy`] pool the caller fills.
//!
//! ```text
//! coordinator                               secondary
//!   PairHello { nc }            ---->
//!                               <----  PairChallenge { nc, ns }
//!   PairProof { nc, ns,
//!     HMAC(s, "coordinator"|nc|ns),
//!     key ^ HMAC(s, "wrap"|nc|ns) } ---->   checks the proof, unwraps the key
//!                               <----  PairAccept { HMAC(s, "secondary"|nc|ns|key) }
//!   checks the proof: paired                paired
//! ```
//!
//! A wrong serial number (or code) fails the coordinator's proof at the
//! secondary, which answers `PairReject`; both sides report it and back off
//! (1 s doubling to 64 s), so guesses are rate-limited.

use std::time::Duration;

use super::auth::{self, Key};
use super::wire::{Frame, KEY_LEN, NONCE_LEN, Nonce, RejectReason};
use crate::clock::Instant;

const RETRY: Duration = Duration::from_secs(1);
const MAX_BACKOFF_SHIFT: u32 = 6;

/// Caller-supplied random bytes.
#[derive(Default)]
pub(crate) struct Entropy {
    pool: Vec<u8>,
    pub(crate) requested: bool,
}

impl std::fmt::Debug for Entropy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Entropy({} bytes)", self.pool.len())
    }
}

impl Entropy {
    pub(crate) fn supply(&mut self, bytes: &[u8]) {
        self.pool.extend_from_slice(bytes);
        self.requested = false;
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        if self.pool.len() < N {
            return None;
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.pool[..N]);
        self.pool.drain(..N);
        Some(out)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    Coordinator,
    Secondary,
}

#[derive(Clone, Debug)]
enum Stage {
    Idle,
    /// Coordinator: hello sent.
    Hello {
        nc: Nonce,
        key: Key,
    },
    /// Coordinator: proof sent, waiting for the accept.
    Proved {
        nc: Nonce,
        ns: Nonce,
        key: Key,
        proof: Frame,
    },
    /// Secondary: challenge sent, waiting for the proof.
    Challenged {
        nc: Nonce,
        ns: Nonce,
    },
}

/// What the pairing wants from the node.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Output {
    Send(Frame),
    Paired(Key),
    Refused(String),
    NeedEntropy,
}

#[derive(Debug)]
pub(crate) struct Pairing {
    side: Side,
    secret: Key,
    own_serial: String,
    stage: Stage,
    next_send: Option<Instant>,
    backoff_until: Option<Instant>,
    pub(crate) failures: u32,
    /// The secondary's accept, kept to answer a retransmitted proof.
    last_accept: Option<Frame>,
}

impl Pairing {
    pub(crate) fn new(side: Side, secret: Key, own_serial: String) -> Pairing {
        Pairing {
            side,
            secret,
            own_serial,
            stage: Stage::Idle,
            next_send: None,
            backoff_until: None,
            failures: 0,
            last_accept: None,
        }
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.side {
            Side::Coordinator => {
                let next = self.next_send.unwrap_or(Instant::ZERO);
                Some(self.backoff_until.map_or(next, |b| b.max(next)))
            }
            Side::Secondary => None,
        }
    }

    fn backing_off(&self, now: Instant) -> bool {
        self.backoff_until.is_some_and(|b| now < b)
    }

    fn fail(&mut self, now: Instant, message: String, out: &mut Vec<Output>) {
        self.failures = self.failures.saturating_add(1);
        let shift = (self.failures - 1).min(MAX_BACKOFF_SHIFT);
        let backoff = RETRY * (1u32 << shift);
        self.backoff_until = Some(now + backoff);
        self.stage = Stage::Idle;
        self.next_send = Some(now + backoff);
        out.push(Output::Refused(format!(
            "{message}; next attempt in {} s",
            backoff.as_secs()
        )));
    }

    /// Entropy arrived: a coordinator waiting for it may start at once.
    pub(crate) fn entropy_arrived(&mut self) {
        if matches!(self.stage, Stage::Idle) {
            self.next_send = None;
        }
    }

    /// Coordinator: (re)sends the hello or the proof when due.
    pub(crate) fn on_timeout(
        &mut self,
        now: Instant,
        entropy: &mut Entropy,
        out: &mut Vec<Output>,
    ) {
        if self.side != Side::Coordinator
            || self.backing_off(now)
            || self.next_send.is_some_and(|t| now < t)
        {
            return;
        }
        match &self.stage {
            Stage::Idle | Stage::Hello { .. } => {
                if matches!(self.stage, Stage::Idle) {
                    let (Some(nc), Some(key)) =
                        (entropy.take::<NONCE_LEN>(), entropy.take::<KEY_LEN>())
                    else {
                        out.push(Output::NeedEntropy);
                        self.next_send = Some(now + RETRY);
                        return;
                    };
                    self.stage = Stage::Hello { nc, key: Key(key) };
                }
                if let Stage::Hello { nc, .. } = &self.stage {
                    out.push(Output::Send(Frame::PairHello {
                        nonce_c: *nc,
                        serial: self.own_serial.clone(),
                    }));
                }
            }
            Stage::Proved { proof, .. } => out.push(Output::Send(proof.clone())),
            Stage::Challenged { .. } => {}
        }
        self.next_send = Some(now + RETRY);
    }

    pub(crate) fn on_frame(
        &mut self,
        now: Instant,
        frame: &Frame,
        entropy: &mut Entropy,
        out: &mut Vec<Output>,
    ) {
        match (self.side, frame) {
            (Side::Secondary, Frame::PairHello { nonce_c, .. }) => {
                if self.backing_off(now) {
                    return;
                }
                let ns = match &self.stage {
                    Stage::Challenged { nc, ns } if nc == nonce_c => *ns,
                    _ => {
                        let Some(ns) = entropy.take::<NONCE_LEN>() else {
                            out.push(Output::NeedEntropy);
                            return;
                        };
                        ns
                    }
                };
                self.stage = Stage::Challenged { nc: *nonce_c, ns };
                out.push(Output::Send(Frame::PairChallenge {
                    nonce_c: *nonce_c,
                    nonce_s: ns,
                    serial: self.own_serial.clone(),
                }));
            }
            (
                Side::Secondary,
                Frame::PairProof {
                    nonce_c,
                    nonce_s,
                    mac,
                    wrapped_key,
                },
            ) => {
                if let Some(
                    accept @ Frame::PairAccept {
                        nonce_c: c,
                        nonce_s: s,
                        ..
                    },
                ) = &self.last_accept
                    && c == nonce_c
                    && s == nonce_s
                {
                    out.push(Output::Send(accept.clone()));
                    return;
                }
                let Stage::Challenged { nc, ns } = &self.stage else {
                    return;
                };
                if nc != nonce_c || ns != nonce_s {
                    return;
                }
                let (nc, ns) = (*nc, *ns);
                if !auth::check_coordinator_proof(&self.secret, &nc, &ns, mac) {
                    out.push(Output::Send(Frame::PairReject {
                        nonce_c: nc,
                        nonce_s: ns,
                        reason: RejectReason::BadProof,
                    }));
                    self.fail(
                        now,
                        "pairing refused: the coordinator does not know this node's serial number (or pairing code)".into(),
                        out,
                    );
                    return;
                }
                let key = Key(auth::wrap_key(&self.secret, &nc, &ns, wrapped_key));
                let accept = Frame::PairAccept {
                    nonce_c: nc,
                    nonce_s: ns,
                    mac: auth::secondary_proof(&self.secret, &nc, &ns, &key),
                };
                out.push(Output::Send(accept.clone()));
                self.last_accept = Some(accept);
                self.stage = Stage::Idle;
                self.failures = 0;
                out.push(Output::Paired(key));
            }
            (
                Side::Coordinator,
                Frame::PairChallenge {
                    nonce_c, nonce_s, ..
                },
            ) => {
                let Stage::Hello { nc, key } = &self.stage else {
                    return;
                };
                if nc != nonce_c {
                    return;
                }
                let (nc, key, ns) = (*nc, *key, *nonce_s);
                let proof = Frame::PairProof {
                    nonce_c: nc,
                    nonce_s: ns,
                    mac: auth::coordinator_proof(&self.secret, &nc, &ns),
                    wrapped_key: auth::wrap_key(&self.secret, &nc, &ns, &key.0),
                };
                out.push(Output::Send(proof.clone()));
                self.stage = Stage::Proved { nc, ns, key, proof };
                self.next_send = Some(now + RETRY);
            }
            (
                Side::Coordinator,
                Frame::PairAccept {
                    nonce_c,
                    nonce_s,
                    mac,
                },
            ) => {
                let Stage::Proved { nc, ns, key, .. } = &self.stage else {
                    return;
                };
                if nc != nonce_c || ns != nonce_s {
                    return;
                }
                let key = *key;
                if auth::check_secondary_proof(&self.secret, nc, ns, &key, mac) {
                    self.stage = Stage::Idle;
                    self.next_send = None;
                    self.failures = 0;
                    out.push(Output::Paired(key));
                } else {
                    self.fail(
                        now,
                        "pairing refused: the peer could not prove knowledge of the secret".into(),
                        out,
                    );
                }
            }
            (
                Side::Coordinator,
                Frame::PairReject {
                    nonce_c, reason, ..
                },
            ) => {
                let current = match &self.stage {
                    Stage::Hello { nc, .. } | Stage::Proved { nc, .. } => nc == nonce_c,
                    _ => false,
                };
                if !current {
                    return;
                }
                let why = match reason {
                    RejectReason::BadProof => {
                        "pairing refused by the peer: wrong remote serial number (or pairing code)"
                    }
                    RejectReason::RateLimited => "pairing refused by the peer: too many attempts",
                };
                self.fail(now, why.into(), out);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        c_serial_known: &str,
        code_c: Option<&str>,
        code_s: Option<&str>,
    ) -> (Vec<Output>, Vec<Output>) {
        let mut c = Pairing::new(
            Side::Coordinator,
            auth::pairing_secret(c_serial_known, code_c),
            "C1".into(),
        );
        let mut s = Pairing::new(
            Side::Secondary,
            auth::pairing_secret("S1", code_s),
            "S1".into(),
        );
        let mut ec = Entropy::default();
        ec.supply(&[7; 64]);
        let mut es = Entropy::default();
        es.supply(&[9; 64]);
        let (mut all_c, mut all_s) = (Vec::new(), Vec::new());
        let now = Instant::from_millis(1);
        let mut out = Vec::new();
        c.on_timeout(now, &mut ec, &mut out);
        for _ in 0..4 {
            let mut to_s = Vec::new();
            for o in out.drain(..) {
                if let Output::Send(f) = &o {
                    to_s.push(f.clone());
                }
                all_c.push(o);
            }
            let mut back = Vec::new();
            for f in to_s {
                s.on_frame(now, &f, &mut es, &mut back);
            }
            for o in back {
                if let Output::Send(f) = &o {
                    c.on_frame(now, f, &mut ec, &mut out);
                }
                all_s.push(o);
            }
        }
        all_c.append(&mut out);
        (all_c, all_s)
    }

    fn paired(outs: &[Output]) -> Option<Key> {
        outs.iter().find_map(|o| match o {
            Output::Paired(k) => Some(*k),
            _ => None,
        })
    }

    #[test]
    fn right_serial_pairs_with_same_key() {
        let (c, s) = run("S1", None, None);
        let kc = paired(&c).expect("coordinator paired");
        assert_eq!(Some(kc), paired(&s));
        assert_eq!(kc, Key([7; 32]));
    }

    #[test]
    fn wrong_serial_is_refused_on_both_sides() {
        let (c, s) = run("S2", None, None);
        assert_eq!(paired(&c), None);
        assert_eq!(paired(&s), None);
        assert!(s.iter().any(|o| matches!(o, Output::Refused(_))));
        assert!(
            c.iter()
                .any(|o| matches!(o, Output::Refused(m) if m.contains("wrong remote serial")))
        );
    }

    #[test]
    fn pairing_code_must_match() {
        let (c, _) = run("whatever", Some("code-1234"), Some("code-1234"));
        assert!(paired(&c).is_some());
        let (c, _) = run("S1", Some("code-1234"), Some("code-9999"));
        assert!(paired(&c).is_none());
    }

    #[test]
    fn secret_never_on_the_wire() {
        let secret = auth::pairing_secret("S1", None);
        let (c, s) = run("S1", None, None);
        for o in c.iter().chain(s.iter()) {
            if let Output::Send(f) = o {
                let bytes = f.to_vec();
                assert!(!bytes.windows(32).any(|w| w == secret.0));
                assert!(!bytes.windows(32).any(|w| w == [7; 32]), "key in clear");
            }
        }
    }
}
