//! The job planner: per MAC, what the vendor's service holds (as of our last
//! success) and the operations still to do, with retry times as data.
//!
//! `reconcile` compares a MAC's state with what the configuration wants and
//! plans the operations; `finish` records the outcome of the first operation
//! and when to try again. Both are pure (time is an argument). The daemon
//! runs them inside one `data_write` each, so a success is recorded in the
//! same transaction that removes its operation: nothing is done twice.
//!
//! The on-disk form is [`JobRecord`] (versioned postcard), kept apart from
//! the domain type [`JobState`].

use serde::{Deserialize, Serialize};

use crate::clock::WallTime;
use crate::model::prov::RedirectBrand;

use super::{Failure, Op, Target};

/// First retry delay after a transient failure; doubles per attempt.
pub const BACKOFF_BASE_S: i64 = 30;
/// Longest delay between automatic attempts.
pub const BACKOFF_MAX_S: i64 = 3600;
/// Longest `Retry-After` honoured.
pub const RETRY_AFTER_MAX_S: u64 = 86_400;

/// One MAC's redirection state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobState {
    /// What the service holds for this MAC, per our last success.
    pub registered: Option<Target>,
    /// Operations still to do, first first.
    pub ops: Vec<Op>,
    /// Failed attempts of the first operation.
    pub attempts: u32,
    /// When to try the first operation; `None` with operations left: parked
    /// after a failure that needs a change (credentials, ownership) or a sync.
    pub next_attempt: Option<WallTime>,
    pub last_attempt: Option<WallTime>,
    pub last_error: Option<String>,
}

impl JobState {
    /// Whether the first operation may run at `now`.
    pub fn is_due(&self, now: WallTime) -> bool {
        !self.ops.is_empty()
            && self
                .next_attempt
                .is_some_and(|t| t.as_unix_micros() <= now.as_unix_micros())
    }

    /// Nothing to remember.
    pub fn is_empty(&self) -> bool {
        self.registered.is_none() && self.ops.is_empty() && self.last_error.is_none()
    }
}

/// What the configuration wants for a MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Desired {
    /// Redirected through this (enabled) server.
    Registered(Target),
    /// Its server is disabled: keep everything as it is, do nothing.
    Hold,
    /// No redirection (no server, or no device).
    Nothing,
}

/// Plans the operations that take `state` to `desired`. `rearm`: the
/// device or its server was just saved, so a parked operation runs again.
pub fn reconcile(state: JobState, desired: &Desired, rearm: bool, now: WallTime) -> JobState {
    let mut s = state;
    let wanted: Vec<Op> = match desired {
        Desired::Hold => return s,
        Desired::Registered(t) => match &s.registered {
            Some(r) if r == t => Vec::new(),
            Some(r) if r.server != t.server => {
                vec![Op::Deregister(r.clone()), Op::Register(t.clone())]
            }
            _ => vec![Op::Register(t.clone())],
        },
        Desired::Nothing => match &s.registered {
            Some(r) => vec![Op::Deregister(r.clone())],
            None => Vec::new(),
        },
    };
    if wanted != s.ops {
        s.ops = wanted;
        s.attempts = 0;
        s.next_attempt = (!s.ops.is_empty()).then_some(now);
        s.last_error = None;
    } else if rearm && !s.ops.is_empty() {
        s.next_attempt = Some(now);
        s.attempts = 0;
    }
    s
}

/// The delay before attempt `attempts + 1` after a transient failure.
pub fn backoff(attempts: u32, failure: &Failure) -> i64 {
    let exp = attempts.saturating_sub(1).min(20);
    let delay = (BACKOFF_BASE_S << exp).min(BACKOFF_MAX_S);
    match failure {
        Failure::RateLimited {
            retry_after_s: Some(s),
        } => delay.max(i64::try_from((*s).min(RETRY_AFTER_MAX_S)).unwrap_or(0)),
        _ => delay,
    }
}

/// Records the outcome of `op` (which was the first operation when it
/// started). A success changes what the service holds even if the
/// configuration changed meanwhile; the caller reconciles afterwards.
pub fn finish(state: JobState, op: &Op, outcome: &Result<(), Failure>, now: WallTime) -> JobState {
    let mut s = state;
    s.last_attempt = Some(now);
    let first = s.ops.first() == Some(op);
    match outcome {
        Ok(()) => {
            s.registered = match op {
                Op::Register(t) => Some(t.clone()),
                Op::Deregister(_) => None,
            };
            if first {
                s.ops.remove(0);
            }
            s.attempts = 0;
            s.last_error = None;
            s.next_attempt = (!s.ops.is_empty()).then_some(now);
        }
        Err(f) => {
            if !first {
                // The plan changed while this ran; the new first operation
                // keeps its own schedule.
                return s;
            }
            s.attempts = s.attempts.saturating_add(1);
            s.last_error = Some(f.to_string());
            s.next_attempt = if f.is_transient() {
                Some(WallTime::from_unix_micros(
                    now.as_unix_micros()
                        .saturating_add(backoff(s.attempts, f).saturating_mul(1_000_000)),
                ))
            } else {
                None
            };
        }
    }
    s
}

/// `kpbx prov redirect sync`: every pending operation is due now.
pub fn sync(state: JobState, now: WallTime) -> JobState {
    let mut s = state;
    if !s.ops.is_empty() {
        s.next_attempt = Some(now);
    }
    s
}

// --------------------------------------------------------------- records

/// The key of a MAC's record in `Table::RedirectJob`.
pub fn key(mac: &crate::model::Mac) -> Vec<u8> {
    super::mac_text(mac).into_bytes()
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct TargetRecord {
    server: String,
    /// 0 snom, 1 yealink, 2 escene.
    brand: u8,
    url: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum OpRecord {
    Register(TargetRecord),
    Deregister(TargetRecord),
}

/// The on-disk form of [`JobState`]. Variants are only appended.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum JobRecord {
    V1 {
        registered: Option<TargetRecord>,
        ops: Vec<OpRecord>,
        attempts: u32,
        next_attempt_us: Option<i64>,
        last_attempt_us: Option<i64>,
        last_error: Option<String>,
    },
}

fn target_record(t: &Target) -> TargetRecord {
    TargetRecord {
        server: t.server.clone(),
        brand: match t.brand {
            RedirectBrand::Snom => 0,
            RedirectBrand::Yealink => 1,
            RedirectBrand::Escene => 2,
        },
        url: t.url.clone(),
    }
}

fn target(r: TargetRecord) -> Result<Target, String> {
    Ok(Target {
        server: r.server,
        brand: match r.brand {
            0 => RedirectBrand::Snom,
            1 => RedirectBrand::Yealink,
            2 => RedirectBrand::Escene,
            b => return Err(format!("unknown redirection brand {b}")),
        },
        url: r.url,
    })
}

pub fn encode(s: &JobState) -> Vec<u8> {
    crate::store::records::to_bytes(&JobRecord::V1 {
        registered: s.registered.as_ref().map(target_record),
        ops: s
            .ops
            .iter()
            .map(|op| match op {
                Op::Register(t) => OpRecord::Register(target_record(t)),
                Op::Deregister(t) => OpRecord::Deregister(target_record(t)),
            })
            .collect(),
        attempts: s.attempts,
        next_attempt_us: s.next_attempt.map(WallTime::as_unix_micros),
        last_attempt_us: s.last_attempt.map(WallTime::as_unix_micros),
        last_error: s.last_error.clone(),
    })
}

pub fn decode(bytes: &[u8]) -> Result<JobState, String> {
    let record: JobRecord =
        crate::store::records::from_bytes(bytes).map_err(|e| format!("redirect job: {e}"))?;
    let JobRecord::V1 {
        registered,
        ops,
        attempts,
        next_attempt_us,
        last_attempt_us,
        last_error,
    } = record;
    Ok(JobState {
        registered: registered.map(target).transpose()?,
        ops: ops
            .into_iter()
            .map(|op| match op {
                OpRecord::Register(t) => target(t).map(Op::Register),
                OpRecord::Deregister(t) => target(t).map(Op::Deregister),
            })
            .collect::<Result<_, _>>()?,
        attempts,
        next_attempt: next_attempt_us.map(WallTime::from_unix_micros),
        last_attempt: last_attempt_us.map(WallTime::from_unix_micros),
        last_error,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn t(server: &str, url: &str) -> Target {
        Target {
            server: server.into(),
            brand: RedirectBrand::Snom,
            url: url.into(),
        }
    }

    fn at(s: i64) -> WallTime {
        WallTime::from_unix_micros(s * 1_000_000)
    }

    #[test]
    fn register_then_success_then_nothing_to_do() {
        let a = t("a", "https://p/");
        let s = reconcile(
            JobState::default(),
            &Desired::Registered(a.clone()),
            false,
            at(10),
        );
        assert_eq!(s.ops, vec![Op::Register(a.clone())]);
        assert!(s.is_due(at(10)));
        let s = finish(s, &Op::Register(a.clone()), &Ok(()), at(11));
        assert_eq!(s.registered, Some(a.clone()));
        assert!(s.ops.is_empty() && !s.is_due(at(99)));
        // Saving again plans nothing.
        let s2 = reconcile(s.clone(), &Desired::Registered(a.clone()), true, at(12));
        assert_eq!(s2, s);
    }

    #[test]
    fn moves_deletions_and_disabled_servers() {
        let a = t("a", "https://p/");
        let b = t("b", "https://q/");
        let done = JobState {
            registered: Some(a.clone()),
            ..JobState::default()
        };
        let s = reconcile(done.clone(), &Desired::Registered(b.clone()), false, at(1));
        assert_eq!(
            s.ops,
            vec![Op::Deregister(a.clone()), Op::Register(b.clone())]
        );
        // A new URL on the same server re-registers.
        let a2 = t("a", "https://p2/");
        let s = reconcile(done.clone(), &Desired::Registered(a2.clone()), false, at(1));
        assert_eq!(s.ops, vec![Op::Register(a2)]);
        let s = reconcile(done.clone(), &Desired::Nothing, false, at(1));
        assert_eq!(s.ops, vec![Op::Deregister(a.clone())]);
        let s = finish(s, &Op::Deregister(a.clone()), &Ok(()), at(2));
        assert!(s.is_empty());
        // Disabled: nothing changes.
        assert_eq!(reconcile(done.clone(), &Desired::Hold, true, at(1)), done);
        // A pending registration that is no longer wanted is dropped.
        let s = reconcile(
            JobState::default(),
            &Desired::Registered(b.clone()),
            false,
            at(1),
        );
        assert!(reconcile(s, &Desired::Nothing, false, at(2)).is_empty());
    }

    #[test]
    fn failures_back_off_or_park() {
        let a = t("a", "https://p/");
        let op = Op::Register(a.clone());
        let s = reconcile(
            JobState::default(),
            &Desired::Registered(a.clone()),
            false,
            at(0),
        );
        let down = Err(Failure::Unreachable("refused".into()));
        let s = finish(s, &op, &down, at(0));
        assert_eq!((s.attempts, s.next_attempt), (1, Some(at(30))));
        let s = finish(s, &op, &down, at(30));
        assert_eq!(s.next_attempt, Some(at(90)));
        let mut s2 = s.clone();
        for i in 0..30 {
            s2 = finish(s2, &op, &down, at(100 + i));
        }
        assert_eq!(s2.next_attempt, Some(at(129 + BACKOFF_MAX_S)));
        let limited = Err(Failure::RateLimited {
            retry_after_s: Some(600),
        });
        assert_eq!(
            finish(s.clone(), &op, &limited, at(0)).next_attempt,
            Some(at(600))
        );
        let owned = finish(s, &op, &Err(Failure::OwnedByOther), at(5));
        assert_eq!(owned.next_attempt, None);
        assert_eq!(
            owned.last_error.as_deref(),
            Some("MAC owned by another account")
        );
        assert!(!owned.is_due(at(1_000_000)));
        // A save re-arms it; so does a sync.
        assert!(
            reconcile(owned.clone(), &Desired::Registered(a.clone()), true, at(6)).is_due(at(6))
        );
        assert!(sync(owned, at(7)).is_due(at(7)));
    }

    #[test]
    fn stale_outcomes() {
        let a = t("a", "https://p/");
        let b = t("b", "https://q/");
        // Registered on a while the user moved the device to b: the success
        // counts, and the plan now deregisters a first.
        let s = reconcile(
            JobState::default(),
            &Desired::Registered(b.clone()),
            false,
            at(0),
        );
        let s = finish(s, &Op::Register(a.clone()), &Ok(()), at(1));
        assert_eq!(s.registered, Some(a.clone()));
        let s = reconcile(s, &Desired::Registered(b.clone()), false, at(1));
        assert_eq!(
            s.ops,
            vec![Op::Deregister(a.clone()), Op::Register(b.clone())]
        );
        // A failure of an operation no longer planned changes nothing.
        let before = s.clone();
        let s = finish(s, &Op::Register(a), &Err(Failure::Auth("k".into())), at(2));
        assert_eq!(s.ops, before.ops);
        assert_eq!(s.next_attempt, before.next_attempt);
    }

    #[test]
    fn record_layout_is_pinned() {
        let s = JobState {
            registered: Some(t("a", "u")),
            ops: vec![Op::Deregister(t("a", "u"))],
            attempts: 2,
            next_attempt: Some(WallTime::from_unix_micros(5)),
            last_attempt: None,
            last_error: Some("e".into()),
        };
        let bytes = encode(&s);
        assert_eq!(
            bytes,
            [
                0, 1, 1, b'a', 0, 1, b'u', 1, 1, 1, b'a', 0, 1, b'u', 2, 1, 10, 0, 1, 1, b'e'
            ]
        );
        assert_eq!(decode(&bytes).unwrap(), s);
        assert!(decode(&[7]).is_err());
        assert!(decode(&[0, 1, 1, b'a', 9, 1, b'u', 0, 0, 0, 0, 0]).is_err());
    }
}
