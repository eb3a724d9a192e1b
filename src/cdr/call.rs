//! CDR aggregation: `Master.csv` legs → one row per call.
//!
//! **Grouping.** Legs sharing a `linkedid` form one call; a leg without
//! `linkedid` is grouped by its `uniqueid`; a leg with neither is a call on
//! its own (keyed by channel and start). Asterisk writes a leg when it ends
//! and nothing in `Master.csv` says "last leg", so [`CallAggregator`] emits a
//! call once no leg has ended for `quiet` seconds before the `now` the caller
//! passes in ([`CallAggregator::flush`]), or all at once ([`group_calls`]).
//!
//! **Row fields.** Legs are ordered by (start, sequence, input order). The
//! first leg gives caller (its `clid`, falling back to `src`) and called
//! number (`dst`). Start/end are the earliest start and latest end; answer
//! is the earliest answer of an `ANSWERED` leg; billable seconds run from
//! that answer to the call's end. Status is `ANSWERED` if any leg was
//! answered, else the first leg's disposition. "Answered by" is the peer of
//! the first answered leg's `dstchannel` (`PJSIP/201-0000001a` → `201`).
//!
//! **Direction** ([`DirectionRule`]): a number is an extension when it is
//! all ASCII digits and its length is within the configured range (default
//! 2–6). Caller extension → `Internal` if the called number is an extension,
//! else `Outbound`; caller a non-empty non-extension → `Inbound`; caller
//! empty (anonymous) → `Unknown`.

use std::collections::BTreeMap;

use jiff::Timestamp;

use super::master_csv::{CdrRecord, Disposition, parse_clid};

/// Call direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Extension to extension.
    Internal,
    /// External caller to the PBX.
    Inbound,
    /// Extension to an external number.
    Outbound,
    /// Not derivable (e.g. anonymous caller).
    Unknown,
}

/// Which numbers are extensions: all digits, length in `min_digits..=max_digits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirectionRule {
    /// Shortest extension.
    pub min_digits: usize,
    /// Longest extension.
    pub max_digits: usize,
}

impl Default for DirectionRule {
    fn default() -> DirectionRule {
        DirectionRule {
            min_digits: 2,
            max_digits: 6,
        }
    }
}

impl DirectionRule {
    /// `true` when `number` looks like an extension.
    pub fn is_extension(&self, number: &str) -> bool {
        let len = number.len();
        len >= self.min_digits
            && len <= self.max_digits
            && number.bytes().all(|b| b.is_ascii_digit())
    }

    /// Direction of a call from `caller` to `called`.
    pub fn direction(&self, caller: &str, called: &str) -> Direction {
        match (
            caller.is_empty(),
            self.is_extension(caller),
            self.is_extension(called),
        ) {
            (true, _, _) => Direction::Unknown,
            (false, true, true) => Direction::Internal,
            (false, true, false) => Direction::Outbound,
            (false, false, _) => Direction::Inbound,
        }
    }
}

/// One CDR row: a whole call, with its legs for the detailed view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRow {
    /// Call id: the linkedid (or uniqueid) shared by its legs.
    pub id: String,
    /// Earliest leg start.
    pub start: Timestamp,
    /// Earliest answer among answered legs.
    pub answer: Option<Timestamp>,
    /// Latest leg end.
    pub end: Timestamp,
    /// `end - start`, seconds.
    pub duration: u64,
    /// `end - answer`, seconds; 0 when unanswered.
    pub billsec: u64,
    /// Caller number.
    pub caller_number: String,
    /// Caller name, if known.
    pub caller_name: Option<String>,
    /// Called number.
    pub called_number: String,
    /// Peer that answered, from the answering leg's `dstchannel`.
    pub answered_by: Option<String>,
    /// Overall status.
    pub status: Disposition,
    /// Direction by [`DirectionRule`].
    pub direction: Direction,
    /// The legs, ordered.
    pub legs: Vec<CdrRecord>,
}

/// Groups legs into calls, emitting a call once it has been quiet long enough.
#[derive(Clone, Debug)]
pub struct CallAggregator {
    rule: DirectionRule,
    /// Call id → (arrival index of the first leg, legs).
    open: BTreeMap<String, (u64, Vec<CdrRecord>)>,
    arrivals: u64,
}

impl CallAggregator {
    /// An empty aggregator using `rule` for directions.
    pub fn new(rule: DirectionRule) -> CallAggregator {
        CallAggregator {
            rule,
            open: BTreeMap::new(),
            arrivals: 0,
        }
    }

    /// Adds one leg.
    pub fn push(&mut self, leg: CdrRecord) {
        let arrival = self.arrivals;
        self.arrivals += 1;
        let entry = self
            .open
            .entry(call_key(&leg))
            .or_insert_with(|| (arrival, Vec::new()));
        entry.1.push(leg);
    }

    /// Calls not yet emitted.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Emits every call whose latest leg ended at least `quiet` seconds
    /// before `now`, ordered by start then id.
    pub fn flush(&mut self, now: Timestamp, quiet: i64) -> Vec<CallRow> {
        let ready: Vec<String> = self
            .open
            .iter()
            .filter(|(_, (_, legs))| {
                let last_end = legs
                    .iter()
                    .map(|l| l.end.as_second())
                    .max()
                    .unwrap_or(i64::MIN);
                now.as_second().saturating_sub(last_end) >= quiet
            })
            .map(|(id, _)| id.clone())
            .collect();
        self.take(&ready)
    }

    /// Emits every open call, ordered by start then id.
    pub fn flush_all(&mut self) -> Vec<CallRow> {
        let all: Vec<String> = self.open.keys().cloned().collect();
        self.take(&all)
    }

    fn take(&mut self, ids: &[String]) -> Vec<CallRow> {
        let mut calls: Vec<(u64, CallRow)> = ids
            .iter()
            .filter_map(|id| {
                let (arrival, legs) = self.open.remove(id)?;
                build_call(id.clone(), legs, &self.rule).map(|row| (arrival, row))
            })
            .collect();
        calls.sort_by(|(a, x), (b, y)| (x.start, &x.id, a).cmp(&(y.start, &y.id, b)));
        calls.into_iter().map(|(_, row)| row).collect()
    }
}

/// Groups a batch of legs (e.g. a report period) into calls.
pub fn group_calls(legs: impl IntoIterator<Item = CdrRecord>, rule: DirectionRule) -> Vec<CallRow> {
    let mut aggregator = CallAggregator::new(rule);
    for leg in legs {
        aggregator.push(leg);
    }
    aggregator.flush_all()
}

/// The id of the call a leg belongs to: its `linkedid`, else its `uniqueid`,
/// else `channel@start`.
pub fn call_key(leg: &CdrRecord) -> String {
    let non_empty = |s: &Option<String>| s.as_ref().filter(|s| !s.is_empty()).cloned();
    non_empty(&leg.linkedid)
        .or_else(|| non_empty(&leg.uniqueid))
        .unwrap_or_else(|| format!("{}@{}", leg.channel, leg.start.as_second()))
}

/// Builds a row from a call's legs; `None` only for an empty list.
fn build_call(id: String, mut legs: Vec<CdrRecord>, rule: &DirectionRule) -> Option<CallRow> {
    legs.sort_by_key(|l| (l.start, l.sequence));
    let first = legs.first()?;
    let start = legs.iter().map(|l| l.start).min()?;
    let end = legs.iter().map(|l| l.end).max()?;
    let answered = legs
        .iter()
        .filter(|l| l.disposition == Disposition::Answered);
    let answer = answered.clone().filter_map(|l| l.answer).min();
    let answered_by = answered.clone().find_map(|l| peer_of(&l.dstchannel));
    let status = if answered.count() > 0 {
        Disposition::Answered
    } else {
        first.disposition.clone()
    };
    let clid = parse_clid(&first.clid);
    let caller_number = clid.number.unwrap_or_else(|| first.src.clone());
    let secs = |from: Timestamp| {
        u64::try_from(end.as_second().saturating_sub(from.as_second())).unwrap_or(0)
    };
    Some(CallRow {
        id,
        start,
        answer,
        end,
        duration: secs(start),
        billsec: answer.map_or(0, secs),
        direction: rule.direction(&caller_number, &first.dst),
        caller_number,
        caller_name: clid.name,
        called_number: first.dst.clone(),
        answered_by,
        status,
        legs,
    })
}

/// `PJSIP/201-0000001a` → `201`; `Local/201@from-internal-0000;2` → `201`.
/// `None` for an empty channel.
pub fn peer_of(channel: &str) -> Option<String> {
    if channel.is_empty() {
        return None;
    }
    let resource = channel.split_once('/').map_or(channel, |(_, r)| r);
    let peer = resource.rsplit_once('-').map_or(resource, |(p, _)| p);
    let peer = peer.split_once('@').map_or(peer, |(p, _)| p);
    (!peer.is_empty()).then(|| peer.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdr::master_csv::parse_master_line;

    fn leg(uniqueid: &str, linkedid: &str, start: &str, end: &str, disposition: &str) -> CdrRecord {
        let line = format!(
            "\"\",\"201\",\"202\",\"c\",\"\",\"PJSIP/201-1\",\"PJSIP/202-2\",\"Dial\",\"\",\"{start}\",,\
             \"{end}\",1,0,\"{disposition}\",\"\",\"{uniqueid}\",\"\",\"\",\"{linkedid}\",1"
        );
        parse_master_line(line.as_bytes()).expect("valid")
    }

    #[test]
    fn direction_rule() {
        let rule = DirectionRule::default();
        assert_eq!(rule.direction("201", "202"), Direction::Internal);
        assert_eq!(rule.direction("201", "0501234567"), Direction::Outbound);
        assert_eq!(rule.direction("+390501234567", "201"), Direction::Inbound);
        assert_eq!(rule.direction("", "201"), Direction::Unknown);
        assert!(!rule.is_extension("2"), "too short");
        assert!(!rule.is_extension("1234567"), "too long");
        assert!(
            !rule.is_extension("*97"),
            "feature codes are not extensions"
        );
        let wide = DirectionRule {
            min_digits: 3,
            max_digits: 8,
        };
        assert_eq!(wide.direction("201", "1234567"), Direction::Internal);
    }

    #[test]
    fn peer_names() {
        assert_eq!(peer_of("PJSIP/201-0000001a").as_deref(), Some("201"));
        assert_eq!(
            peer_of("SIP/trunk-eu-0000001a").as_deref(),
            Some("trunk-eu")
        );
        assert_eq!(
            peer_of("Local/201@from-internal-00000001;2").as_deref(),
            Some("201")
        );
        assert_eq!(peer_of(""), None);
    }

    #[test]
    fn legs_without_linkedid_group_by_uniqueid() {
        let calls = group_calls(
            [
                leg(
                    "u1",
                    "",
                    "2026-03-20 10:00:00",
                    "2026-03-20 10:00:01",
                    "BUSY",
                ),
                leg(
                    "u2",
                    "",
                    "2026-03-20 09:00:00",
                    "2026-03-20 09:00:01",
                    "FAILED",
                ),
            ],
            DirectionRule::default(),
        );
        let ids: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["u2", "u1"], "ordered by start");
    }

    #[test]
    fn flush_waits_for_quiet_period() {
        let mut agg = CallAggregator::new(DirectionRule::default());
        agg.push(leg(
            "u1",
            "L",
            "2026-03-20 10:00:00",
            "2026-03-20 10:00:10",
            "NO ANSWER",
        ));
        agg.push(leg(
            "u2",
            "L",
            "2026-03-20 10:00:00",
            "2026-03-20 10:01:00",
            "ANSWERED",
        ));
        let at = |s: &str| -> Timestamp { s.parse().expect("valid") };
        assert!(agg.flush(at("2026-03-20T10:01:30Z"), 60).is_empty());
        let calls = agg.flush(at("2026-03-20T10:02:00Z"), 60);
        assert_eq!(calls.len(), 1);
        assert_eq!(
            (calls[0].legs.len(), calls[0].status.clone()),
            (2, Disposition::Answered)
        );
        assert_eq!(agg.open_count(), 0);
    }
}
