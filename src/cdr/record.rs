//! On-disk records of the CDR tables (`Table::Call`, `Table::QueueEntry`,
//! `Table::OperatorEvent`, `Table::IngestState`), kept apart from the domain
//! rows of [`super::call`] and [`super::queue`]. Versioned (`V1`), encoded
//! with postcard; golden-byte tests pin the layouts.
//!
//! Keys: 8 bytes of start time (microseconds since the epoch, big endian,
//! sign bit flipped so that order is time order) followed by a suffix that
//! identifies the record: the call id for calls, `callid NUL queue` for queue
//! entries, and the first 8 bytes of the SHA-256 of the encoded record for
//! operator events. The same record always gets the same key, so reading a
//! file again overwrites instead of duplicating.

use serde::{Deserialize, Serialize};

use super::call::{CallRow, Direction};
use super::master_csv::{CdrRecord, Disposition};
use super::queue::{OperatorAction, OperatorEvent, QueueEntryRow, QueueOutcome, RingResult};
use super::queue_log::HungUpBy;

/// Microseconds since the epoch → 8 ordered key bytes.
pub fn time_key(micros: i64) -> [u8; 8] {
    ((micros as u64) ^ (1 << 63)).to_be_bytes()
}

/// The time part of a key (inverse of [`time_key`]); `None` if too short.
pub fn key_time(key: &[u8]) -> Option<i64> {
    let b: [u8; 8] = key.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(b) ^ (1 << 63)) as i64)
}

fn micros(ts: jiff::Timestamp) -> i64 {
    ts.as_microsecond()
}

/// `ANSWERED`, `NO ANSWER`…: Asterisk's text of a disposition.
pub fn disposition_text(d: &Disposition) -> String {
    match d {
        Disposition::Answered => "ANSWERED".into(),
        Disposition::NoAnswer => "NO ANSWER".into(),
        Disposition::Busy => "BUSY".into(),
        Disposition::Failed => "FAILED".into(),
        Disposition::Congestion => "CONGESTION".into(),
        Disposition::Other(s) => s.clone(),
    }
}

/// One stored call (CDR row with its legs).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum CallRecord {
    V1(CallV1),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CallV1 {
    pub id: String,
    pub start_us: i64,
    pub answer_us: Option<i64>,
    pub end_us: i64,
    pub duration: u64,
    pub billsec: u64,
    pub caller_number: String,
    pub caller_name: Option<String>,
    pub called_number: String,
    pub answered_by: Option<String>,
    /// Asterisk's disposition text (`ANSWERED`, `NO ANSWER`…).
    pub status: String,
    /// `internal`, `inbound`, `outbound`, `unknown`.
    pub direction: String,
    pub legs: Vec<LegV1>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LegV1 {
    pub uniqueid: Option<String>,
    pub linkedid: Option<String>,
    pub sequence: Option<u64>,
    pub accountcode: String,
    pub src: String,
    pub dst: String,
    pub dcontext: String,
    pub clid: String,
    pub channel: String,
    pub dstchannel: String,
    pub lastapp: String,
    pub lastdata: String,
    pub start_us: i64,
    pub answer_us: Option<i64>,
    pub end_us: i64,
    pub duration: u64,
    pub billsec: u64,
    pub disposition: String,
    pub amaflags: String,
    pub userfield: Option<String>,
    pub peeraccount: Option<String>,
}

fn direction_text(d: Direction) -> &'static str {
    match d {
        Direction::Internal => "internal",
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
        Direction::Unknown => "unknown",
    }
}

fn leg_v1(l: &CdrRecord) -> LegV1 {
    LegV1 {
        uniqueid: l.uniqueid.clone(),
        linkedid: l.linkedid.clone(),
        sequence: l.sequence,
        accountcode: l.accountcode.clone(),
        src: l.src.clone(),
        dst: l.dst.clone(),
        dcontext: l.dcontext.clone(),
        clid: l.clid.clone(),
        channel: l.channel.clone(),
        dstchannel: l.dstchannel.clone(),
        lastapp: l.lastapp.clone(),
        lastdata: l.lastdata.clone(),
        start_us: micros(l.start),
        answer_us: l.answer.map(micros),
        end_us: micros(l.end),
        duration: l.duration,
        billsec: l.billsec,
        disposition: disposition_text(&l.disposition),
        amaflags: l.amaflags.clone(),
        userfield: l.userfield.clone(),
        peeraccount: l.peeraccount.clone(),
    }
}

impl CallRecord {
    pub fn from_row(row: &CallRow) -> CallRecord {
        CallRecord::V1(CallV1 {
            id: row.id.clone(),
            start_us: micros(row.start),
            answer_us: row.answer.map(micros),
            end_us: micros(row.end),
            duration: row.duration,
            billsec: row.billsec,
            caller_number: row.caller_number.clone(),
            caller_name: row.caller_name.clone(),
            called_number: row.called_number.clone(),
            answered_by: row.answered_by.clone(),
            status: disposition_text(&row.status),
            direction: direction_text(row.direction).into(),
            legs: row.legs.iter().map(leg_v1).collect(),
        })
    }

    /// The table key: start time, then the call id.
    pub fn key(&self) -> Vec<u8> {
        let CallRecord::V1(c) = self;
        let mut k = time_key(c.start_us).to_vec();
        k.extend_from_slice(c.id.as_bytes());
        k
    }
}

/// One stored queue entry (call-center CDR row with its ring attempts).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum QueueEntryRecord {
    V1(QueueEntryV1),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct QueueEntryV1 {
    pub callid: String,
    pub queue: String,
    pub entered_us: i64,
    pub ended_us: i64,
    pub caller_number: String,
    pub caller_name: Option<String>,
    pub entry_position: Option<u64>,
    pub wait_secs: Option<u64>,
    pub ring_secs: Option<u64>,
    pub agent: Option<String>,
    pub talk_secs: Option<u64>,
    /// `answered`, `transferred`, `abandoned`, `timeout`, `exit_empty`,
    /// `exit_with_key`, `withdrawn`, `incomplete`.
    pub outcome: String,
    /// `caller`/`agent` (who hung up), the transfer target, or the key.
    pub outcome_detail: String,
    pub attempts: Vec<AttemptV1>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AttemptV1 {
    pub time_us: i64,
    pub agent: String,
    pub ring_ms: Option<u64>,
    /// `no_answer`, `canceled`, `connected`.
    pub result: String,
}

fn outcome_texts(o: &QueueOutcome) -> (&'static str, String) {
    match o {
        QueueOutcome::Answered { by } => (
            "answered",
            match by {
                HungUpBy::Caller => "caller".into(),
                HungUpBy::Agent => "agent".into(),
            },
        ),
        QueueOutcome::Transferred { attended, target } => (
            "transferred",
            format!("{}{target}", if *attended { "attended " } else { "blind " }),
        ),
        QueueOutcome::Abandoned => ("abandoned", String::new()),
        QueueOutcome::Timeout => ("timeout", String::new()),
        QueueOutcome::ExitEmpty => ("exit_empty", String::new()),
        QueueOutcome::ExitWithKey { key } => ("exit_with_key", key.clone()),
        QueueOutcome::Withdrawn => ("withdrawn", String::new()),
        QueueOutcome::Incomplete => ("incomplete", String::new()),
    }
}

impl QueueEntryRecord {
    pub fn from_row(row: &QueueEntryRow) -> QueueEntryRecord {
        let (outcome, outcome_detail) = outcome_texts(&row.outcome);
        QueueEntryRecord::V1(QueueEntryV1 {
            callid: row.callid.clone(),
            queue: row.queue.clone(),
            entered_us: micros(row.entered),
            ended_us: micros(row.ended),
            caller_number: row.caller_number.clone(),
            caller_name: row.caller_name.clone(),
            entry_position: row.entry_position,
            wait_secs: row.wait_secs,
            ring_secs: row.ring_secs,
            agent: row.agent.clone(),
            talk_secs: row.talk_secs,
            outcome: outcome.into(),
            outcome_detail,
            attempts: row
                .attempts
                .iter()
                .map(|a| AttemptV1 {
                    time_us: micros(a.time),
                    agent: a.agent.clone(),
                    ring_ms: a.ring_ms,
                    result: match a.result {
                        RingResult::NoAnswer => "no_answer",
                        RingResult::Canceled => "canceled",
                        RingResult::Connected => "connected",
                    }
                    .into(),
                })
                .collect(),
        })
    }

    /// The table key: entry time, then `callid NUL queue`.
    pub fn key(&self) -> Vec<u8> {
        let QueueEntryRecord::V1(q) = self;
        let mut k = time_key(q.entered_us).to_vec();
        k.extend_from_slice(q.callid.as_bytes());
        k.push(0);
        k.extend_from_slice(q.queue.as_bytes());
        k
    }
}

/// One stored operator (agent) event.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum OperatorEventRecord {
    V1(OperatorEventV1),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct OperatorEventV1 {
    pub time_us: i64,
    pub queue: Option<String>,
    pub agent: String,
    /// `login`, `logoff`, `add_member`, `remove_member`, `pause`, `unpause`.
    pub action: String,
    /// The pause reason, or the agent channel for login/logoff, or
    /// `paused` for a member added paused.
    pub detail: String,
    /// Seconds logged in (logoff).
    pub logintime: Option<u64>,
}

impl OperatorEventRecord {
    pub fn from_event(e: &OperatorEvent) -> OperatorEventRecord {
        let (action, detail, logintime) = match &e.action {
            OperatorAction::Login { channel } => ("login", channel.clone(), None),
            OperatorAction::Logoff { channel, logintime } => {
                ("logoff", channel.clone(), *logintime)
            }
            OperatorAction::AddMember { paused } => (
                "add_member",
                if *paused {
                    "paused".into()
                } else {
                    String::new()
                },
                None,
            ),
            OperatorAction::RemoveMember => ("remove_member", String::new(), None),
            OperatorAction::Pause { reason } => ("pause", reason.clone(), None),
            OperatorAction::Unpause { reason } => ("unpause", reason.clone(), None),
        };
        OperatorEventRecord::V1(OperatorEventV1 {
            time_us: micros(e.time),
            queue: e.queue.clone(),
            agent: e.agent.clone(),
            action: action.into(),
            detail,
            logintime,
        })
    }

    /// The table key: time, then 8 bytes of the record's SHA-256.
    pub fn key(&self) -> Vec<u8> {
        let OperatorEventRecord::V1(o) = self;
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            &crate::store::records::to_bytes(self),
        );
        let mut k = time_key(o.time_us).to_vec();
        k.extend_from_slice(&digest.as_ref()[..8]);
        k
    }
}

/// Where the follower of one file is, and what it saw. Key: the file's role
/// (`master_csv`, `queue_log`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum IngestStateRecord {
    V1(IngestStateV1),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct IngestStateV1 {
    /// The file followed (as configured when this was written).
    pub path: String,
    /// Device and inode of the file the positions refer to.
    pub dev: u64,
    pub ino: u64,
    /// Just past the last record handled (good or malformed).
    pub offset: u64,
    pub line: u64,
    /// Where to resume reading after a restart: the first line of the
    /// oldest entry still open (≤ `offset`).
    pub replay_offset: u64,
    pub replay_line: u64,
    /// Keys of the entries open at `offset` (call ids; `callid NUL queue`).
    /// Between `replay_offset` and `offset` only their lines are fed again.
    pub open: Vec<String>,
    /// Records parsed, malformed, and rows written since the state was
    /// created.
    pub records: u64,
    pub malformed: u64,
    pub rows: u64,
    /// The last few malformed records: (line, reason).
    pub last_errors: Vec<(u64, String)>,
    /// Rotations and truncations seen.
    pub rotations: u64,
    /// When this state was written (µs since the epoch).
    pub updated_us: i64,
    /// The file's first bytes (up to 64): a file rewritten in place is told
    /// from the one read even when it is not shorter.
    pub head: Vec<u8>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::records::{from_bytes, to_bytes};

    #[test]
    fn time_keys_order_like_time() {
        let ks: Vec<[u8; 8]> = [-5i64, -1, 0, 1, 1_774_000_000_000_000]
            .iter()
            .map(|&t| time_key(t))
            .collect();
        assert!(ks.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(key_time(&time_key(-5)), Some(-5));
        assert_eq!(key_time(&[1, 2]), None);
    }

    #[test]
    fn call_record_layout_is_pinned() {
        let r = CallRecord::V1(CallV1 {
            id: "1.1".into(),
            start_us: 1,
            answer_us: None,
            end_us: 2,
            duration: 3,
            billsec: 0,
            caller_number: "201".into(),
            caller_name: Some("A".into()),
            called_number: "202".into(),
            answered_by: None,
            status: "BUSY".into(),
            direction: "internal".into(),
            legs: vec![],
        });
        let bytes = to_bytes(&r);
        assert_eq!(
            bytes,
            [
                0, 3, b'1', b'.', b'1', 2, 0, 4, 3, 0, 3, b'2', b'0', b'1', 1, 1, b'A', 3, b'2',
                b'0', b'2', 0, 4, b'B', b'U', b'S', b'Y', 8, b'i', b'n', b't', b'e', b'r', b'n',
                b'a', b'l', 0
            ]
        );
        assert_eq!(from_bytes::<CallRecord>(&bytes).unwrap(), r);
        let mut key = time_key(1).to_vec();
        key.extend_from_slice(b"1.1");
        assert_eq!(r.key(), key);
    }

    #[test]
    fn queue_and_operator_layouts_are_pinned() {
        let q = QueueEntryRecord::V1(QueueEntryV1 {
            callid: "c".into(),
            queue: "q".into(),
            entered_us: 1,
            ended_us: 1,
            caller_number: String::new(),
            caller_name: None,
            entry_position: Some(1),
            wait_secs: None,
            ring_secs: None,
            agent: None,
            talk_secs: None,
            outcome: "timeout".into(),
            outcome_detail: String::new(),
            attempts: vec![AttemptV1 {
                time_us: 1,
                agent: "a".into(),
                ring_ms: Some(5),
                result: "no_answer".into(),
            }],
        });
        assert_eq!(
            to_bytes(&q),
            [
                0, 1, b'c', 1, b'q', 2, 2, 0, 0, 1, 1, 0, 0, 0, 0, 7, b't', b'i', b'm', b'e', b'o',
                b'u', b't', 0, 1, 2, 1, b'a', 1, 5, 9, b'n', b'o', b'_', b'a', b'n', b's', b'w',
                b'e', b'r'
            ]
        );
        let mut key = time_key(1).to_vec();
        key.extend_from_slice(b"c\0q");
        assert_eq!(q.key(), key);
        let o = OperatorEventRecord::V1(OperatorEventV1 {
            time_us: 0,
            queue: None,
            agent: "a".into(),
            action: "pause".into(),
            detail: "x".into(),
            logintime: None,
        });
        assert_eq!(
            to_bytes(&o),
            [
                0, 0, 0, 1, b'a', 5, b'p', b'a', b'u', b's', b'e', 1, b'x', 0
            ]
        );
        assert_eq!(o.key().len(), 16);
        assert_eq!(o.key(), o.clone().key());
        let s = IngestStateRecord::V1(IngestStateV1::default());
        assert_eq!(to_bytes(&s), [0; 16],);
    }
}
