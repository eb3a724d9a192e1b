//! Delivery state of one outgoing message, per recipient.
//!
//! Each recipient is delivered on its own SMTP envelope, so one refused
//! address does not hold back the others and the status is exact per
//! recipient. Rules:
//! - A delivery is done once the server accepted it (`250` after DATA) or
//!   refused it permanently (`5xx`): it is never attempted again.
//! - A transient failure (connection refused, timeout, TLS set-up, `4xx`)
//!   is retried with exponential backoff (1, 2, 4 ... minutes, at most 30)
//!   until `retry_window` after the message was queued; then it fails.
//! - Sending twice is only possible if the box stops between the server's
//!   acceptance and the write that records it (SMTP has no way around that).

use std::time::Duration;

/// Microseconds since the Unix epoch (UTC).
pub type Micros = i64;

/// First retry delay; doubled per attempt up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_secs(60);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    Sent { at: Micros },
    Failed { at: Micros, reason: String },
}

impl Status {
    pub fn is_done(&self) -> bool {
        !matches!(self, Status::Pending)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Sent { .. } => "sent",
            Status::Failed { .. } => "failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub recipient: String,
    pub status: Status,
    pub attempts: u32,
    /// When the next attempt is due (only meaningful while pending).
    pub next_attempt: Micros,
    /// The last transient error, shown while retrying.
    pub last_error: String,
}

/// The result of one SMTP attempt for one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    Transient(String),
    Permanent(String),
}

/// One queued message: what it is and how far each recipient got. The
/// message bytes are kept apart (they can be large and never change).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: u64,
    pub queued: Micros,
    pub subject: String,
    /// The task run that produced it, if any.
    pub run: Option<u64>,
    pub retry_window: Duration,
    pub deliveries: Vec<Delivery>,
}

fn micros(d: Duration) -> Micros {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The delay before attempt number `attempts + 1`, after `attempts` failures.
pub fn backoff(attempts: u32) -> Duration {
    let factor = 1u32 << attempts.saturating_sub(1).min(10);
    FIRST_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

impl Message {
    pub fn new(
        id: u64,
        queued: Micros,
        subject: String,
        run: Option<u64>,
        retry_window: Duration,
        recipients: &[String],
    ) -> Message {
        Message {
            id,
            queued,
            subject,
            run,
            retry_window,
            deliveries: recipients
                .iter()
                .map(|r| Delivery {
                    recipient: r.clone(),
                    status: Status::Pending,
                    attempts: 0,
                    next_attempt: queued,
                    last_error: String::new(),
                })
                .collect(),
        }
    }

    /// Indexes of the deliveries due at `now`.
    pub fn due(&self, now: Micros) -> Vec<usize> {
        self.deliveries
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.status.is_done() && d.next_attempt <= now)
            .map(|(i, _)| i)
            .collect()
    }

    /// The earliest pending attempt, if any delivery is pending.
    pub fn next_deadline(&self) -> Option<Micros> {
        self.deliveries
            .iter()
            .filter(|d| !d.status.is_done())
            .map(|d| d.next_attempt)
            .min()
    }

    pub fn is_done(&self) -> bool {
        self.deliveries.iter().all(|d| d.status.is_done())
    }

    /// Records the outcome of an attempt for delivery `index` made at `now`.
    /// Outcomes for finished or unknown deliveries are ignored.
    pub fn record(&mut self, index: usize, outcome: Outcome, now: Micros) {
        let deadline = self.queued.saturating_add(micros(self.retry_window));
        let Some(d) = self.deliveries.get_mut(index) else {
            return;
        };
        if d.status.is_done() {
            return;
        }
        d.attempts = d.attempts.saturating_add(1);
        match outcome {
            Outcome::Accepted => d.status = Status::Sent { at: now },
            Outcome::Permanent(reason) => d.status = Status::Failed { at: now, reason },
            Outcome::Transient(error) => {
                let next = now.saturating_add(micros(backoff(d.attempts)));
                if next > deadline {
                    d.status = Status::Failed {
                        at: now,
                        reason: format!("gave up after {} attempts: {error}", d.attempts),
                    };
                } else {
                    d.next_attempt = next;
                }
                d.last_error = error;
            }
        }
    }

    /// Makes every pending delivery due at `now` (`kpbx mail retry`).
    pub fn retry_now(&mut self, now: Micros) {
        for d in &mut self.deliveries {
            if !d.status.is_done() {
                d.next_attempt = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Micros = 60_000_000;

    fn msg() -> Message {
        Message::new(
            1,
            0,
            "s".into(),
            None,
            Duration::from_secs(3600),
            &["a@x.y".into(), "b@x.y".into()],
        )
    }

    #[test]
    fn backoff_doubles_up_to_thirty_minutes() {
        let mins: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs() / 60).collect();
        assert_eq!(mins, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn each_recipient_has_its_own_fate() {
        let mut m = msg();
        assert_eq!(m.due(0), [0, 1]);
        m.record(0, Outcome::Accepted, 5);
        m.record(1, Outcome::Transient("421 busy".into()), 5);
        assert_eq!(m.deliveries[0].status, Status::Sent { at: 5 });
        assert_eq!(m.due(5), Vec::<usize>::new());
        assert_eq!(m.next_deadline(), Some(5 + MIN));
        assert_eq!(m.due(5 + MIN), [1]);
        m.record(1, Outcome::Permanent("550 no such user".into()), 6 * MIN);
        assert!(m.is_done());
        assert_eq!(m.next_deadline(), None);
        // A late outcome changes nothing: no second delivery is recorded.
        m.record(0, Outcome::Transient("x".into()), 7 * MIN);
        assert_eq!(m.deliveries[0].attempts, 1);
    }

    #[test]
    fn transient_failures_give_up_after_the_window() {
        let mut m = msg();
        let mut now = 0;
        for _ in 0..20 {
            if m.deliveries[0].status.is_done() {
                break;
            }
            now = m.deliveries[0].next_attempt;
            m.record(0, Outcome::Transient("connection refused".into()), now);
        }
        let Status::Failed { at, reason } = &m.deliveries[0].status else {
            panic!("{:?}", m.deliveries[0]);
        };
        assert!(*at <= 60 * MIN, "{at}");
        assert!(now <= 60 * MIN);
        assert!(reason.contains("connection refused"), "{reason}");
        // 1+2+4+8+16 = 31 min, the next wait (30) passes the hour.
        assert_eq!(m.deliveries[0].attempts, 6);
    }

    #[test]
    fn retry_now_makes_pending_due() {
        let mut m = msg();
        m.record(0, Outcome::Transient("refused".into()), 0);
        m.record(1, Outcome::Accepted, 0);
        assert_eq!(m.due(1), Vec::<usize>::new());
        m.retry_now(1);
        assert_eq!(m.due(1), [0]);
        assert_eq!(m.deliveries[1].status, Status::Sent { at: 0 });
    }
}
