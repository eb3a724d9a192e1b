//! Following one growing file: the pure part of the adapter contract.
//!
//! A [`Follower`] owns the splitter, the line parser and the aggregator of
//! one file (`Master.csv` or `queue_log`), and the persisted
//! [`IngestStateV1`]. The adapter reads bytes and hands them to
//! [`Follower::feed`]; it writes the returned rows **and**
//! [`Follower::state`] in one transaction. It never reads a clock or a file.
//!
//! **Restarts.** Aggregators keep open calls / queue entries in memory. The
//! state records, besides the position just past the last record handled
//! (`offset`), the keys of the entries still open and the position of the
//! first line of the oldest one (`replay_offset`). After a restart the
//! adapter reads again from `replay_offset`; up to `offset`, only lines of
//! those open entries are fed (everything else was already handled and
//! stored), so nothing is lost or counted twice, and rows emitted again get
//! the same keys anyway.
//!
//! **Rotation and truncation.** [`Follower::rotate`] starts a new file at
//! its beginning. Open entries stay in memory and complete normally when
//! their lines continue in the new file; only if the daemon also restarts
//! before they complete are they lost (their later lines count as orphans).

use std::collections::{HashMap, HashSet, VecDeque};

use jiff::Timestamp;

use super::Ingest;
use super::call::{CallAggregator, DirectionRule, call_key};
use super::lines::{Position, SplitterConfig};
use super::master_csv::{CdrRecord, MasterFormat};
use super::queue::{QueueAggregator, QueueOutput};
use super::queue_log::{QueueEvent, QueueLogFormat};
use super::record::{CallRecord, IngestStateV1, OperatorEventRecord, QueueEntryRecord};

/// Malformed records remembered in the state.
pub const LAST_ERRORS: usize = 5;
/// A call is complete when no leg of it ended for this many seconds of
/// wall-clock time ([`Follower::tick`]) or of log time (later legs).
pub const CALL_QUIET_SECS: i64 = 120;
/// Queue entries with no terminal event this long (log time) after they
/// entered are emitted as incomplete.
pub const QUEUE_EXPIRE_SECS: i64 = 24 * 3600;
/// How long (log time) and how many emitted calls are remembered for late legs.
pub const RECENT_SECS: i64 = 3600;
pub const RECENT_MAX: usize = 10_000;

/// Rows produced by one feed or tick.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rows {
    pub calls: Vec<CallRecord>,
    pub entries: Vec<QueueEntryRecord>,
    pub operators: Vec<OperatorEventRecord>,
}

impl Rows {
    pub fn len(&self) -> usize {
        self.calls.len() + self.entries.len() + self.operators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

enum Core {
    Master {
        ingest: Box<Ingest<MasterFormat>>,
        format: Box<MasterFormat>,
        agg: CallAggregator,
    },
    Queue {
        ingest: Ingest<QueueLogFormat>,
        agg: QueueAggregator,
    },
}

/// What a follower reads.
#[derive(Clone, Debug)]
pub enum FileKind {
    Master(Box<MasterFormat>),
    QueueLog,
}

/// One followed file. See the module docs.
pub struct Follower {
    core: Core,
    state: IngestStateV1,
    /// Open entry key → position of its first line in the current file.
    first: HashMap<String, Position>,
    /// Records ending at or before this offset were handled before a restart.
    replay_until: u64,
    replay_keys: HashSet<String>,
    /// Latest time seen in the log (seconds).
    log_time: i64,
    /// Calls emitted recently, by id, with their legs: a late leg re-opens
    /// its call, so the stored row (same key) is rewritten complete.
    recent: HashMap<String, Vec<CdrRecord>>,
    recent_order: VecDeque<(i64, String)>,
}

impl Follower {
    /// A follower resuming from `state` (from the store), or at the start of
    /// the file for a default state. Read the file from
    /// [`Follower::read_from`].
    pub fn resume(kind: FileKind, state: IngestStateV1) -> Follower {
        let from = Position {
            offset: state.replay_offset,
            line: state.replay_line.max(1),
        };
        let core = match kind {
            FileKind::Master(format) => Core::Master {
                ingest: Box::new(Ingest::new(SplitterConfig::CSV, (*format).clone(), from)),
                format,
                agg: CallAggregator::new(DirectionRule::default()),
            },
            FileKind::QueueLog => Core::Queue {
                ingest: Ingest::new(SplitterConfig::PLAIN, QueueLogFormat, from),
                agg: QueueAggregator::new(),
            },
        };
        Follower {
            core,
            replay_until: state.offset,
            replay_keys: state.open.iter().cloned().collect(),
            state,
            first: HashMap::new(),
            log_time: i64::MIN,
            recent: HashMap::new(),
            recent_order: VecDeque::new(),
        }
    }

    /// The file offset to read from next.
    pub fn read_from(&self) -> u64 {
        self.state.replay_offset
    }

    /// The state to persist with the rows just returned.
    pub fn state(&self) -> &IngestStateV1 {
        &self.state
    }

    /// Mutable state, for the adapter's bookkeeping (path, inode, time).
    pub fn state_mut(&mut self) -> &mut IngestStateV1 {
        &mut self.state
    }

    /// The file was replaced or truncated: continue at the start of the
    /// new content. Open entries stay in memory.
    pub fn rotate(&mut self) {
        match &mut self.core {
            Core::Master { ingest, format, .. } => {
                **ingest = Ingest::new(SplitterConfig::CSV, (**format).clone(), Position::START);
            }
            Core::Queue { ingest, .. } => {
                *ingest = Ingest::new(SplitterConfig::PLAIN, QueueLogFormat, Position::START);
            }
        }
        self.first.clear();
        self.replay_until = 0;
        self.replay_keys.clear();
        self.state.rotations += 1;
        self.state.offset = 0;
        self.state.line = 1;
        self.sync_state();
    }

    /// Feeds the next bytes of the file.
    pub fn feed(&mut self, chunk: &[u8]) -> Rows {
        let mut rows = Rows::default();
        match &mut self.core {
            Core::Master { ingest, agg, .. } => {
                let mut start = ingest.position();
                for item in ingest.push(chunk) {
                    let end = match &item {
                        Ok(p) => p.end,
                        Err(m) => m.end,
                    };
                    // The resume point before this record (blank lines skipped
                    // silently may lie between).
                    let start = std::mem::replace(&mut start, end);
                    let replay = end.offset <= self.replay_until;
                    match item {
                        Ok(p) => {
                            let key = call_key(&p.value);
                            if replay && !self.replay_keys.contains(&key) {
                                continue;
                            }
                            if !replay {
                                self.state.records += 1;
                            }
                            self.log_time = self.log_time.max(p.value.end.as_second());
                            self.first.entry(key.clone()).or_insert(start);
                            if let Some(legs) = self.recent.remove(&key) {
                                for leg in legs {
                                    agg.push(leg);
                                }
                            }
                            agg.push(p.value);
                        }
                        Err(m) => {
                            if !replay {
                                note_malformed(&mut self.state, m.line, m.reason.to_string());
                            }
                        }
                    }
                    if !replay {
                        self.state.offset = end.offset;
                        self.state.line = end.line;
                    }
                }
                if let Ok(now) = Timestamp::from_second(self.log_time) {
                    let done = agg.flush(now, CALL_QUIET_SECS);
                    self.emitted(done, &mut rows);
                }
            }
            Core::Queue { ingest, agg } => {
                let mut start = ingest.position();
                for item in ingest.push(chunk) {
                    let end = match &item {
                        Ok(p) => p.end,
                        Err(m) => m.end,
                    };
                    let start = std::mem::replace(&mut start, end);
                    let replay = end.offset <= self.replay_until;
                    match item {
                        Ok(p) => {
                            let line = p.value;
                            let key = format!("{}\0{}", line.callid, line.queue);
                            if replay && !self.replay_keys.contains(&key) {
                                continue;
                            }
                            if !replay {
                                self.state.records += 1;
                            }
                            self.log_time = self.log_time.max(line.time.as_second());
                            for out in agg.push(&line) {
                                match out {
                                    QueueOutput::Entry(e) => {
                                        self.first.remove(&format!("{}\0{}", e.callid, e.queue));
                                        rows.entries.push(QueueEntryRecord::from_row(&e));
                                    }
                                    QueueOutput::Operator(o) => {
                                        rows.operators.push(OperatorEventRecord::from_event(&o));
                                    }
                                }
                            }
                            if matches!(line.event, QueueEvent::EnterQueue { .. }) {
                                self.first.insert(key, start);
                            }
                        }
                        Err(m) => {
                            if !replay {
                                note_malformed(&mut self.state, m.line, m.reason.to_string());
                            }
                        }
                    }
                    if !replay {
                        self.state.offset = end.offset;
                        self.state.line = end.line;
                    }
                }
                if let Ok(now) = Timestamp::from_second(self.log_time) {
                    let cutoff = now - jiff::SignedDuration::from_secs(QUEUE_EXPIRE_SECS);
                    for e in agg.expire(cutoff) {
                        self.first.remove(&format!("{}\0{}", e.callid, e.queue));
                        rows.entries.push(QueueEntryRecord::from_row(&e));
                    }
                }
            }
        }
        self.sync_state();
        self.state.rows += rows.len() as u64;
        rows
    }

    /// Wall-clock flush: calls quiet for [`CALL_QUIET_SECS`] before `now`.
    pub fn tick(&mut self, now: Timestamp) -> Rows {
        let mut rows = Rows::default();
        if let Core::Master { agg, .. } = &mut self.core {
            let done = agg.flush(now, CALL_QUIET_SECS);
            self.emitted(done, &mut rows);
        }
        self.sync_state();
        self.state.rows += rows.len() as u64;
        rows
    }

    /// End of a one-shot import: every open entry is emitted (queue
    /// entries as incomplete).
    pub fn finish(&mut self) -> Rows {
        let mut rows = Rows::default();
        match &mut self.core {
            Core::Master { agg, .. } => {
                for row in agg.flush_all() {
                    rows.calls.push(CallRecord::from_row(&row));
                }
            }
            Core::Queue { agg, .. } => {
                let all = Timestamp::MAX;
                for e in agg.expire(all) {
                    rows.entries.push(QueueEntryRecord::from_row(&e));
                }
            }
        }
        self.first.clear();
        self.sync_state();
        self.state.rows += rows.len() as u64;
        rows
    }

    /// Entries open in memory.
    pub fn open_count(&self) -> usize {
        match &self.core {
            Core::Master { agg, .. } => agg.open_count(),
            Core::Queue { agg, .. } => agg.open_count(),
        }
    }

    /// Records emitted calls in `rows` and remembers them for late legs.
    fn emitted(&mut self, calls: Vec<super::call::CallRow>, rows: &mut Rows) {
        for row in calls {
            self.first.remove(&row.id);
            rows.calls.push(CallRecord::from_row(&row));
            let end = row.end.as_second();
            self.recent_order.push_back((end, row.id.clone()));
            self.recent.insert(row.id, row.legs);
        }
        while let Some((end, id)) = self.recent_order.front() {
            let stale = self.log_time.saturating_sub(*end) > RECENT_SECS;
            if !stale && self.recent_order.len() <= RECENT_MAX {
                break;
            }
            self.recent.remove(id);
            self.recent_order.pop_front();
        }
    }

    /// Copies the open keys and the replay point into the state.
    fn sync_state(&mut self) {
        let read = match &self.core {
            Core::Master { ingest, .. } => ingest.position(),
            Core::Queue { ingest, .. } => ingest.position(),
        };
        if read.offset < self.replay_until {
            // Still replaying: the stored open set and replay point stay
            // valid (the committed offset has not moved), and a partial
            // picture of the open entries must not replace them.
            return;
        }
        let mut open: Vec<String> = self.first.keys().cloned().collect();
        open.sort_unstable();
        let oldest = self.first.values().min().copied().unwrap_or(Position {
            offset: self.state.offset,
            line: self.state.line,
        });
        let committed = Position {
            offset: self.state.offset,
            line: self.state.line,
        };
        let replay = oldest.min(committed);
        self.state.replay_offset = replay.offset;
        self.state.replay_line = replay.line;
        self.state.open = open;
    }
}

fn note_malformed(state: &mut IngestStateV1, line: u64, reason: String) {
    state.malformed += 1;
    state.last_errors.push((line, reason));
    if state.last_errors.len() > LAST_ERRORS {
        let extra = state.last_errors.len() - LAST_ERRORS;
        state.last_errors.drain(..extra);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cdr::master_csv::ColumnMapping;
    use crate::cdr::record::CallRecord;

    fn leg(id: &str, start: &str, end: &str) -> String {
        format!(
            "\"\",\"201\",\"202\",\"c\",\"\",\"PJSIP/201-1\",\"PJSIP/202-2\",\"Dial\",\"\",\"{start}\",,\"{end}\",1,0,\"NO ANSWER\",\"\",\"{id}\",\"\",\"\",\"{id}\",1\n"
        )
    }

    fn master() -> FileKind {
        FileKind::Master(Box::new(MasterFormat {
            mapping: ColumnMapping::CDR_CSV,
            tz: jiff::tz::TimeZone::UTC,
        }))
    }

    fn ids(rows: &Rows) -> Vec<(String, usize)> {
        rows.calls
            .iter()
            .map(|c| {
                let CallRecord::V1(c) = c;
                (c.id.clone(), c.legs.len())
            })
            .collect()
    }

    #[test]
    fn open_calls_are_replayed_after_a_restart_and_nothing_else() {
        // Call a has legs on lines 1 and 3; b (line 2) is complete by log
        // time once line 3 (ten minutes later) is read.
        let file = [
            leg("a", "2026-01-01 10:00:00", "2026-01-01 10:00:05"),
            leg("b", "2026-01-01 10:01:00", "2026-01-01 10:01:05"),
            leg("a", "2026-01-01 10:00:00", "2026-01-01 10:10:00"),
            leg("c", "2026-01-01 10:30:00", "2026-01-01 10:30:05"),
        ]
        .concat();
        let line2 = file.find("\"b\"").unwrap();
        let line2 = file[..line2].rfind('\n').unwrap() + 1;
        let line3 = line2 + file[line2..].find('\n').unwrap() + 1;
        let line4 = line3 + file[line3..].find('\n').unwrap() + 1;
        let mut f = Follower::resume(master(), IngestStateV1::default());
        // Lines 1-2: both calls open.
        assert!(f.feed(&file.as_bytes()[..line3]).is_empty());
        let state = f.state().clone();
        assert_eq!(state.open, ["a", "b"]);
        assert_eq!((state.replay_offset, state.offset), (0, line3 as u64));
        // Crash; a new process resumes from the stored state.
        let mut g = Follower::resume(master(), state);
        assert_eq!(g.read_from(), 0);
        let rows = g.feed(&file.as_bytes()[..line4]);
        assert_eq!(ids(&rows), [("b".to_string(), 1)]);
        assert_eq!(g.state().records, 3, "replayed lines are not counted again");
        let rows = g.feed(&file.as_bytes()[line4..]);
        assert_eq!(ids(&rows), [("a".to_string(), 2)]);
        assert_eq!(g.state().open, ["c"]);
        assert_eq!(g.state().replay_offset, line4 as u64);
        // A late leg of an emitted call re-opens it: the row is rewritten whole.
        let late = leg("a", "2026-01-01 10:00:00", "2026-01-01 10:20:00");
        let mut got = ids(&g.feed(late.as_bytes()));
        got.extend(ids(&g.tick("2026-01-02T00:00:00Z".parse().unwrap())));
        got.sort();
        assert_eq!(got, [("a".to_string(), 3), ("c".to_string(), 1)]);
        assert!(g.state().open.is_empty());
    }
}
