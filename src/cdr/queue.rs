//! Call-center aggregation: queue_log events → one row per queue entry, plus
//! the operator (agent) event list.
//!
//! [`QueueAggregator`] is a small state machine fed one [`QueueLogLine`] at a
//! time. An entry opens at `ENTERQUEUE` (keyed by callid + queue), collects
//! ring attempts (`RINGNOANSWER`, `RINGCANCELED`, `CONNECT`) and is emitted
//! only when its terminal event arrives (`COMPLETE*`, transfer, `ABANDON`,
//! `EXITWITH*`, `EXITEMPTY`, `WITHDRAW`). Open entries are never emitted,
//! except by [`QueueAggregator::expire`], which the adapter calls with a
//! time it read (entries whose terminal line was lost, e.g. after a crash).
//! Events for an entry that was never opened (its `ENTERQUEUE` lies before
//! the resume point) are counted in [`QueueAggregator::orphans`] and dropped.

use std::collections::HashMap;

use jiff::Timestamp;

use super::queue_log::{ExitKind, HungUpBy, QueueEvent, QueueLogLine};

/// How a queue entry ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueOutcome {
    /// Connected to an agent; `by` hung up.
    Answered {
        /// Who hung up.
        by: HungUpBy,
    },
    /// Connected, then transferred to `target`.
    Transferred {
        /// `true` for an attended transfer.
        attended: bool,
        /// `exten@context` (blind) or `method:data` (attended).
        target: String,
    },
    /// Caller hung up while waiting.
    Abandoned,
    /// Queue timeout expired.
    Timeout,
    /// No members available (leavewhenempty).
    ExitEmpty,
    /// Caller pressed a key.
    ExitWithKey {
        /// The key.
        key: String,
    },
    /// Withdrawn through AMI.
    Withdrawn,
    /// No terminal event seen: emitted by [`QueueAggregator::expire`] or
    /// when the same caller re-entered the same queue.
    Incomplete,
}

/// Result of one ring attempt to an agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingResult {
    /// `RINGNOANSWER`
    NoAnswer,
    /// `RINGCANCELED`: the caller left while it rang.
    Canceled,
    /// `CONNECT`
    Connected,
}

/// One agent rung for a queue entry (detailed call-center CDR).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingAttempt {
    /// Time the attempt ended (logged).
    pub time: Timestamp,
    /// Agent (member name or interface).
    pub agent: String,
    /// Ring time in milliseconds, when logged.
    pub ring_ms: Option<u64>,
    /// Outcome.
    pub result: RingResult,
}

/// One call-center CDR row: a caller's stay in one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueEntryRow {
    /// Caller channel uniqueid.
    pub callid: String,
    /// Queue name.
    pub queue: String,
    /// `ENTERQUEUE` time.
    pub entered: Timestamp,
    /// Terminal event time.
    pub ended: Timestamp,
    /// Caller number.
    pub caller_number: String,
    /// Caller name, when logged.
    pub caller_name: Option<String>,
    /// Position on entry.
    pub entry_position: Option<u64>,
    /// Seconds waited before answer or exit.
    pub wait_secs: Option<u64>,
    /// Seconds the answering agent's phone rang.
    pub ring_secs: Option<u64>,
    /// Answering agent.
    pub agent: Option<String>,
    /// Seconds talked (answered or transferred calls).
    pub talk_secs: Option<u64>,
    /// How it ended.
    pub outcome: QueueOutcome,
    /// Every agent rung, in order.
    pub attempts: Vec<RingAttempt>,
}

/// Kind of operator (agent) event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorAction {
    /// `AGENTLOGIN`
    Login {
        /// Agent channel.
        channel: String,
    },
    /// `AGENTLOGOFF`
    Logoff {
        /// Agent channel.
        channel: String,
        /// Seconds logged in.
        logintime: Option<u64>,
    },
    /// `ADDMEMBER`
    AddMember {
        /// Added paused.
        paused: bool,
    },
    /// `REMOVEMEMBER`
    RemoveMember,
    /// `PAUSE`, or `PAUSEALL` when `queue` is `None`.
    Pause {
        /// Reason (may be empty).
        reason: String,
    },
    /// `UNPAUSE`, or `UNPAUSEALL` when `queue` is `None`.
    Unpause {
        /// Reason (may be empty).
        reason: String,
    },
}

/// One operator event row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorEvent {
    /// When.
    pub time: Timestamp,
    /// Queue concerned; `None` for global events (`NONE` in the log).
    pub queue: Option<String>,
    /// Agent (member name or interface).
    pub agent: String,
    /// What happened.
    pub action: OperatorAction,
}

/// What one event produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueOutput {
    /// A completed queue entry.
    Entry(QueueEntryRow),
    /// An operator event.
    Operator(OperatorEvent),
}

/// Incremental call-center aggregator. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct QueueAggregator {
    open: HashMap<(String, String), QueueEntryRow>,
    orphans: u64,
}

impl QueueAggregator {
    /// An empty aggregator.
    pub fn new() -> QueueAggregator {
        QueueAggregator::default()
    }

    /// Entries opened and not yet ended.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Call events dropped because their entry was never opened.
    pub fn orphans(&self) -> u64 {
        self.orphans
    }

    /// Feeds one event; returns what it completed, in order (at most two:
    /// a re-entry closes the previous stay as [`QueueOutcome::Incomplete`]).
    pub fn push(&mut self, line: &QueueLogLine) -> Vec<QueueOutput> {
        if let Some(action) = operator_action(&line.event) {
            let queue = (line.queue != "NONE").then(|| line.queue.clone());
            let event = OperatorEvent {
                time: line.time,
                queue,
                agent: line.agent.clone(),
                action,
            };
            return vec![QueueOutput::Operator(event)];
        }
        let key = (line.callid.clone(), line.queue.clone());
        if let QueueEvent::EnterQueue {
            caller_number,
            caller_name,
            position,
        } = &line.event
        {
            let row = QueueEntryRow {
                callid: line.callid.clone(),
                queue: line.queue.clone(),
                entered: line.time,
                ended: line.time,
                caller_number: caller_number.clone(),
                caller_name: caller_name.clone(),
                entry_position: *position,
                wait_secs: None,
                ring_secs: None,
                agent: None,
                talk_secs: None,
                outcome: QueueOutcome::Incomplete,
                attempts: Vec::new(),
            };
            let previous = self.open.insert(key, row);
            return previous.map(QueueOutput::Entry).into_iter().collect();
        }
        if matches!(line.event, QueueEvent::Other { .. }) {
            return Vec::new();
        }
        let Some(row) = self.open.get_mut(&key) else {
            self.orphans += 1;
            return Vec::new();
        };
        let Some(outcome) = apply(row, line) else {
            return Vec::new();
        };
        let Some(mut row) = self.open.remove(&key) else {
            return Vec::new();
        };
        row.ended = line.time;
        row.outcome = outcome;
        vec![QueueOutput::Entry(row)]
    }

    /// Emits, as [`QueueOutcome::Incomplete`], every open entry that entered
    /// before `cutoff`, oldest first (ties by callid, queue).
    pub fn expire(&mut self, cutoff: Timestamp) -> Vec<QueueEntryRow> {
        let stale: Vec<(String, String)> = self
            .open
            .iter()
            .filter(|(_, row)| row.entered < cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        let mut rows: Vec<QueueEntryRow> =
            stale.iter().filter_map(|k| self.open.remove(k)).collect();
        rows.sort_by(|a, b| {
            (a.entered, &a.callid, &a.queue).cmp(&(b.entered, &b.callid, &b.queue))
        });
        rows
    }
}

/// Operator events, or `None` for call events.
fn operator_action(event: &QueueEvent) -> Option<OperatorAction> {
    let action = match event {
        QueueEvent::AgentLogin { channel } => OperatorAction::Login {
            channel: channel.clone(),
        },
        QueueEvent::AgentLogoff { channel, logintime } => OperatorAction::Logoff {
            channel: channel.clone(),
            logintime: *logintime,
        },
        QueueEvent::AddMember { paused } => OperatorAction::AddMember { paused: *paused },
        QueueEvent::RemoveMember => OperatorAction::RemoveMember,
        QueueEvent::Pause { reason } | QueueEvent::PauseAll { reason } => OperatorAction::Pause {
            reason: reason.clone(),
        },
        QueueEvent::Unpause { reason } | QueueEvent::UnpauseAll { reason } => {
            OperatorAction::Unpause {
                reason: reason.clone(),
            }
        }
        _ => return None,
    };
    Some(action)
}

/// Applies a call event to an open entry; returns the outcome if it ends it.
fn apply(row: &mut QueueEntryRow, line: &QueueLogLine) -> Option<QueueOutcome> {
    let mut attempt = |ring_ms: Option<u64>, result: RingResult| {
        row.attempts.push(RingAttempt {
            time: line.time,
            agent: line.agent.clone(),
            ring_ms,
            result,
        });
    };
    match &line.event {
        QueueEvent::RingNoAnswer { ring_ms } => attempt(*ring_ms, RingResult::NoAnswer),
        QueueEvent::RingCanceled { ring_ms } => attempt(*ring_ms, RingResult::Canceled),
        QueueEvent::Connect {
            holdtime, ringtime, ..
        } => {
            attempt(
                ringtime.map(|s| s.saturating_mul(1000)),
                RingResult::Connected,
            );
            row.wait_secs = *holdtime;
            row.ring_secs = *ringtime;
            row.agent = Some(line.agent.clone());
        }
        QueueEvent::Complete {
            by,
            holdtime,
            calltime,
        } => {
            row.wait_secs = row.wait_secs.or(*holdtime);
            row.talk_secs = *calltime;
            row.agent = row.agent.take().or_else(|| Some(line.agent.clone()));
            return Some(QueueOutcome::Answered { by: *by });
        }
        QueueEvent::Transfer {
            attended,
            target,
            holdtime,
            calltime,
        } => {
            row.wait_secs = row.wait_secs.or(*holdtime);
            row.talk_secs = *calltime;
            row.agent = row.agent.take().or_else(|| Some(line.agent.clone()));
            return Some(QueueOutcome::Transferred {
                attended: *attended,
                target: target.clone(),
            });
        }
        QueueEvent::Exit { kind, waittime, .. } => {
            row.wait_secs = *waittime;
            return Some(match kind {
                ExitKind::Abandon => QueueOutcome::Abandoned,
                ExitKind::Timeout => QueueOutcome::Timeout,
                ExitKind::Empty => QueueOutcome::ExitEmpty,
                ExitKind::Key(key) => QueueOutcome::ExitWithKey { key: key.clone() },
                ExitKind::Withdraw => QueueOutcome::Withdrawn,
            });
        }
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdr::queue_log::parse_queue_log_line;

    fn feed(aggregator: &mut QueueAggregator, line: &str) -> Vec<QueueOutput> {
        aggregator.push(&parse_queue_log_line(line.as_bytes()).expect("valid"))
    }

    #[test]
    fn open_entry_is_not_emitted_until_terminal() {
        let mut agg = QueueAggregator::new();
        assert!(feed(&mut agg, "10|c1|q|NONE|ENTERQUEUE||021|1").is_empty());
        assert!(feed(&mut agg, "20|c1|q|Anna|RINGNOANSWER|5000").is_empty());
        assert!(feed(&mut agg, "25|c1|q|Bob|CONNECT|15|m1|5").is_empty());
        assert_eq!(agg.open_count(), 1);
        let out = feed(&mut agg, "90|c1|q|Bob|COMPLETEAGENT|15|65|1");
        let [QueueOutput::Entry(row)] = out.as_slice() else {
            panic!("one entry expected: {out:?}")
        };
        assert_eq!(
            row.outcome,
            QueueOutcome::Answered {
                by: HungUpBy::Agent
            }
        );
        assert_eq!(
            (row.wait_secs, row.ring_secs, row.talk_secs),
            (Some(15), Some(5), Some(65))
        );
        assert_eq!(row.attempts.len(), 2);
        assert_eq!(agg.open_count(), 0);
    }

    #[test]
    fn same_caller_in_two_queues_is_two_entries() {
        let mut agg = QueueAggregator::new();
        feed(&mut agg, "10|c1|sales|NONE|ENTERQUEUE||021|1");
        feed(&mut agg, "40|c1|sales|NONE|EXITWITHTIMEOUT|1|1|30");
        feed(&mut agg, "41|c1|support|NONE|ENTERQUEUE||021|1");
        let out = feed(&mut agg, "50|c1|support|NONE|ABANDON|1|1|9");
        let [QueueOutput::Entry(row)] = out.as_slice() else {
            panic!("one entry expected: {out:?}")
        };
        assert_eq!(
            (row.queue.as_str(), row.outcome.clone()),
            ("support", QueueOutcome::Abandoned)
        );
    }

    #[test]
    fn reentry_closes_previous_stay_as_incomplete() {
        let mut agg = QueueAggregator::new();
        feed(&mut agg, "10|c1|q|NONE|ENTERQUEUE||021|1");
        let out = feed(&mut agg, "20|c1|q|NONE|ENTERQUEUE||021|1");
        let [QueueOutput::Entry(row)] = out.as_slice() else {
            panic!("one entry expected: {out:?}")
        };
        assert_eq!(
            (row.outcome.clone(), row.entered.as_second()),
            (QueueOutcome::Incomplete, 10)
        );
        assert_eq!(agg.open_count(), 1);
    }

    #[test]
    fn orphan_events_are_counted_and_dropped() {
        let mut agg = QueueAggregator::new();
        assert!(feed(&mut agg, "20|c9|q|Anna|COMPLETECALLER|1|2|1").is_empty());
        assert!(feed(&mut agg, "21|NONE|NONE|NONE|CONFIGRELOAD|").is_empty());
        assert_eq!(agg.orphans(), 1);
    }

    #[test]
    fn expire_emits_stale_entries_oldest_first() {
        let mut agg = QueueAggregator::new();
        feed(&mut agg, "30|c2|q|NONE|ENTERQUEUE||022|1");
        feed(&mut agg, "10|c1|q|NONE|ENTERQUEUE||021|1");
        feed(&mut agg, "50|c3|q|NONE|ENTERQUEUE||023|1");
        let cutoff = Timestamp::from_second(40).expect("valid");
        let ids: Vec<String> = agg.expire(cutoff).into_iter().map(|r| r.callid).collect();
        assert_eq!(ids, ["c1", "c2"]);
        assert_eq!(agg.open_count(), 1);
    }
}
