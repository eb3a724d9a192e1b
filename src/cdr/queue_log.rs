//! Parser for Asterisk `queue_log` lines (`main/logger.c`, `apps/app_queue.c`).
//!
//! Line: `epoch|callid|queue|agent|event|data1|data2|…`. There is no quoting:
//! every `|` separates a field. Numeric data that is missing (older Asterisk
//! versions write fewer fields) is `None`; numeric data that is present but
//! not a number rejects the line. Unknown events (QUEUESTART, CONFIGRELOAD,
//! PENALTY, …) parse as [`QueueEvent::Other`] so callers can ignore them.

use std::fmt;

use jiff::Timestamp;

use super::{LineParser, Reason};

/// Why a `queue_log` line was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueLogError {
    /// Fewer than the 5 fixed fields.
    TooFewFields {
        /// Fields found.
        found: usize,
    },
    /// The first field is not a valid epoch second.
    BadTime,
    /// The event name is empty.
    NoEvent,
    /// A data field that must be numeric is not.
    BadNumber {
        /// Event name.
        event: String,
        /// 1-based data field index.
        data: usize,
    },
}

impl fmt::Display for QueueLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueLogError::TooFewFields { found } => write!(f, "{found} fields, need at least 5"),
            QueueLogError::BadTime => write!(f, "first field is not an epoch time"),
            QueueLogError::NoEvent => write!(f, "empty event name"),
            QueueLogError::BadNumber { event, data } => {
                write!(f, "{event}: data{data} is not a number")
            }
        }
    }
}

/// Who ended a completed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HungUpBy {
    /// `COMPLETECALLER`
    Caller,
    /// `COMPLETEAGENT`
    Agent,
}

/// How a queue caller left the queue without being answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExitKind {
    /// `ABANDON`: caller hung up while waiting.
    Abandon,
    /// `EXITWITHTIMEOUT`: queue timeout expired.
    Timeout,
    /// `EXITEMPTY`: no members left (leavewhenempty).
    Empty,
    /// `EXITWITHKEY`: caller pressed `key`.
    Key(String),
    /// `WITHDRAW`: withdrawn via AMI.
    Withdraw,
}

/// A parsed queue_log event. Times are seconds unless named `_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueEvent {
    /// `ENTERQUEUE|url|callerid num|position[|callerid name]`
    EnterQueue {
        /// Caller number.
        caller_number: String,
        /// Caller name, when logged.
        caller_name: Option<String>,
        /// Position on entry.
        position: Option<u64>,
    },
    /// `RINGNOANSWER|ringtime ms`
    RingNoAnswer {
        /// Ring time, milliseconds.
        ring_ms: Option<u64>,
    },
    /// `RINGCANCELED|ms rung before the caller hung up`
    RingCanceled {
        /// Ring time, milliseconds.
        ring_ms: Option<u64>,
    },
    /// `CONNECT|holdtime|member uniqueid|ringtime`
    Connect {
        /// Wait before answer.
        holdtime: Option<u64>,
        /// Member channel's uniqueid.
        member_uniqueid: String,
        /// Ring time of the answering member.
        ringtime: Option<u64>,
    },
    /// `COMPLETECALLER` / `COMPLETEAGENT`: `holdtime|calltime|origposition`
    Complete {
        /// Who hung up.
        by: HungUpBy,
        /// Wait before answer.
        holdtime: Option<u64>,
        /// Talk time.
        calltime: Option<u64>,
    },
    /// Caller left unanswered: `[key|]position|origposition|waittime`.
    Exit {
        /// Why.
        kind: ExitKind,
        /// Position when leaving.
        position: Option<u64>,
        /// Position on entry.
        origposition: Option<u64>,
        /// Time waited.
        waittime: Option<u64>,
    },
    /// `BLINDTRANSFER` / `TRANSFER`: `exten|context|holdtime|calltime|origposition`;
    /// `ATTENDEDTRANSFER`: `method|method data|holdtime|calltime|origposition`.
    Transfer {
        /// `true` for ATTENDEDTRANSFER.
        attended: bool,
        /// `exten@context`, or `method:data` for attended transfers.
        target: String,
        /// Wait before answer.
        holdtime: Option<u64>,
        /// Talk time before the transfer.
        calltime: Option<u64>,
    },
    /// `ADDMEMBER|[PAUSED]`
    AddMember {
        /// Added paused.
        paused: bool,
    },
    /// `REMOVEMEMBER`
    RemoveMember,
    /// `PAUSE|reason`
    Pause {
        /// Reason (may be empty).
        reason: String,
    },
    /// `UNPAUSE|reason`
    Unpause {
        /// Reason (may be empty).
        reason: String,
    },
    /// `PAUSEALL|reason`
    PauseAll {
        /// Reason (may be empty).
        reason: String,
    },
    /// `UNPAUSEALL|reason`
    UnpauseAll {
        /// Reason (may be empty).
        reason: String,
    },
    /// `AGENTLOGIN|channel`
    AgentLogin {
        /// Agent channel.
        channel: String,
    },
    /// `AGENTLOGOFF|channel|logintime`
    AgentLogoff {
        /// Agent channel.
        channel: String,
        /// Seconds logged in.
        logintime: Option<u64>,
    },
    /// Any other event, kept verbatim (QUEUESTART, CONFIGRELOAD, PENALTY, …).
    Other {
        /// Event name.
        name: String,
        /// Data fields.
        data: Vec<String>,
    },
}

/// One queue_log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueLogLine {
    /// When it was logged.
    pub time: Timestamp,
    /// Caller channel uniqueid, or `NONE`, `MANAGER`, `CLI`, `REALTIME`.
    pub callid: String,
    /// Queue name (`NONE` for global events).
    pub queue: String,
    /// Member name or interface (`NONE` when not about a member).
    pub agent: String,
    /// The event.
    pub event: QueueEvent,
}

/// [`LineParser`] for queue_log files.
#[derive(Clone, Copy, Debug, Default)]
pub struct QueueLogFormat;

impl LineParser for QueueLogFormat {
    type Output = QueueLogLine;

    fn parse(&self, record: &[u8]) -> Result<QueueLogLine, Reason> {
        parse_queue_log_line(record).map_err(Reason::QueueLog)
    }
}

/// Parses one queue_log line (terminator removed). Entry point for fuzzing:
/// never panics. Invalid UTF-8 is replaced with U+FFFD.
pub fn parse_queue_log_line(record: &[u8]) -> Result<QueueLogLine, QueueLogError> {
    let text = String::from_utf8_lossy(record);
    let fields: Vec<&str> = text.split('|').collect();
    let [time, callid, queue, agent, event, data @ ..] = fields.as_slice() else {
        return Err(QueueLogError::TooFewFields {
            found: fields.len(),
        });
    };
    let time = parse_epoch(time).ok_or(QueueLogError::BadTime)?;
    if event.is_empty() {
        return Err(QueueLogError::NoEvent);
    }
    Ok(QueueLogLine {
        time,
        callid: (*callid).to_owned(),
        queue: (*queue).to_owned(),
        agent: (*agent).to_owned(),
        event: parse_event(event, data)?,
    })
}

/// Epoch seconds, optionally with a fraction (ignored).
fn parse_epoch(text: &str) -> Option<Timestamp> {
    let whole = text.split_once('.').map_or(text, |(w, _)| w);
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Timestamp::from_second(whole.parse().ok()?).ok()
}

fn parse_event(name: &str, data: &[&str]) -> Result<QueueEvent, QueueLogError> {
    let text = |i: usize| data.get(i).map_or(String::new(), |s| (*s).to_owned());
    let num = |i: usize| -> Result<Option<u64>, QueueLogError> {
        match data.get(i).map(|s| s.trim()) {
            None | Some("") => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|_| QueueLogError::BadNumber {
                event: name.to_owned(),
                data: i + 1,
            }),
        }
    };
    let exit = |kind: ExitKind, first: usize| -> Result<QueueEvent, QueueLogError> {
        Ok(QueueEvent::Exit {
            kind,
            position: num(first)?,
            origposition: num(first + 1)?,
            waittime: num(first + 2)?,
        })
    };
    let event = match name {
        "ENTERQUEUE" => QueueEvent::EnterQueue {
            caller_number: text(1),
            caller_name: data
                .get(3)
                .filter(|s| !s.is_empty())
                .map(|s| (*s).to_owned()),
            position: num(2)?,
        },
        "RINGNOANSWER" => QueueEvent::RingNoAnswer { ring_ms: num(0)? },
        "RINGCANCELED" => QueueEvent::RingCanceled { ring_ms: num(0)? },
        "CONNECT" => QueueEvent::Connect {
            holdtime: num(0)?,
            member_uniqueid: text(1),
            ringtime: num(2)?,
        },
        "COMPLETECALLER" | "COMPLETEAGENT" => QueueEvent::Complete {
            by: if name == "COMPLETECALLER" {
                HungUpBy::Caller
            } else {
                HungUpBy::Agent
            },
            holdtime: num(0)?,
            calltime: num(1)?,
        },
        "ABANDON" => exit(ExitKind::Abandon, 0)?,
        "EXITWITHTIMEOUT" => exit(ExitKind::Timeout, 0)?,
        "EXITEMPTY" => exit(ExitKind::Empty, 0)?,
        "WITHDRAW" => exit(ExitKind::Withdraw, 0)?,
        "EXITWITHKEY" => exit(ExitKind::Key(text(0)), 1)?,
        "BLINDTRANSFER" | "TRANSFER" => QueueEvent::Transfer {
            attended: false,
            target: format!("{}@{}", text(0), text(1)),
            holdtime: num(2)?,
            calltime: num(3)?,
        },
        "ATTENDEDTRANSFER" => QueueEvent::Transfer {
            attended: true,
            target: format!("{}:{}", text(0), text(1)),
            holdtime: num(2)?,
            calltime: num(3)?,
        },
        "ADDMEMBER" => QueueEvent::AddMember {
            paused: text(0) == "PAUSED",
        },
        "REMOVEMEMBER" => QueueEvent::RemoveMember,
        "PAUSE" => QueueEvent::Pause { reason: text(0) },
        "UNPAUSE" => QueueEvent::Unpause { reason: text(0) },
        "PAUSEALL" => QueueEvent::PauseAll { reason: text(0) },
        "UNPAUSEALL" => QueueEvent::UnpauseAll { reason: text(0) },
        "AGENTLOGIN" => QueueEvent::AgentLogin { channel: text(0) },
        "AGENTLOGOFF" => QueueEvent::AgentLogoff {
            channel: text(0),
            logintime: num(1)?,
        },
        other => QueueEvent::Other {
            name: other.to_owned(),
            data: data.iter().map(|s| (*s).to_owned()).collect(),
        },
    };
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(line: &str) -> QueueEvent {
        parse_queue_log_line(line.as_bytes()).expect("valid").event
    }

    #[test]
    fn fixed_fields() {
        let line = parse_queue_log_line(b"1774000100|1774000100.1|support|NONE|ENTERQUEUE||021|1")
            .expect("ok");
        assert_eq!(
            line.time,
            Timestamp::from_second(1_774_000_100).expect("ok")
        );
        assert_eq!(
            (
                line.callid.as_str(),
                line.queue.as_str(),
                line.agent.as_str()
            ),
            ("1774000100.1", "support", "NONE")
        );
        let enter = QueueEvent::EnterQueue {
            caller_number: "021".into(),
            caller_name: None,
            position: Some(1),
        };
        assert_eq!(line.event, enter);
    }

    #[test]
    fn call_events() {
        assert_eq!(
            event("1|c|q|a|RINGCANCELED|1500"),
            QueueEvent::RingCanceled {
                ring_ms: Some(1500)
            }
        );
        assert_eq!(
            event("1|c|q|a|CONNECT|30|1.2"),
            QueueEvent::Connect {
                holdtime: Some(30),
                member_uniqueid: "1.2".into(),
                ringtime: None
            },
            "pre-1.6 CONNECT has no ringtime"
        );
        assert_eq!(
            event("1|c|q|NONE|WITHDRAW|1|2|3|info"),
            QueueEvent::Exit {
                kind: ExitKind::Withdraw,
                position: Some(1),
                origposition: Some(2),
                waittime: Some(3)
            }
        );
        assert_eq!(
            event("1|c|q|a|TRANSFER|250|ctx|1|2|1"),
            QueueEvent::Transfer {
                attended: false,
                target: "250@ctx".into(),
                holdtime: Some(1),
                calltime: Some(2)
            }
        );
        assert_eq!(
            event("1|NONE|q|NONE|PENALTY|3"),
            QueueEvent::Other {
                name: "PENALTY".into(),
                data: vec!["3".into()]
            }
        );
        assert_eq!(
            event("1|NONE|NONE|NONE|QUEUESTART"),
            QueueEvent::Other {
                name: "QUEUESTART".into(),
                data: vec![]
            }
        );
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_queue_log_line(b"1|c|q|a"),
            Err(QueueLogError::TooFewFields { found: 4 })
        );
        assert_eq!(
            parse_queue_log_line(b"-1|c|q|a|X"),
            Err(QueueLogError::BadTime)
        );
        assert_eq!(
            parse_queue_log_line(b"99999999999999999999|c|q|a|X"),
            Err(QueueLogError::BadTime)
        );
        assert_eq!(
            parse_queue_log_line(b"1|c|q|a|RINGNOANSWER|soon"),
            Err(QueueLogError::BadNumber {
                event: "RINGNOANSWER".into(),
                data: 1
            })
        );
        assert!(
            parse_queue_log_line(b"1.5|c|q|a|X").is_ok(),
            "fractional epoch accepted"
        );
    }
}
