//! On-disk records of task runs and scheduler progress
//! (`store::data::Table::TaskRun`). Pure encoding, no I/O.
//!
//! Keys: `r` + run id (u64 big-endian) for a run; `s` + task id for the
//! instant up to which the task's schedule is settled (persisted so that a
//! restart catches up a missed run once, and never repeats one).

// Storage plumbing: the fields say what they hold; `Run` is documented as a whole.
#![allow(missing_docs)]

use serde::{Deserialize, Serialize};

use crate::store::records::{DecodeError, from_bytes, to_bytes};

pub fn run_key(run: u64) -> [u8; 9] {
    key(b'r', run)
}

pub fn settled_key(task: u64) -> [u8; 9] {
    key(b's', task)
}

fn key(tag: u8, id: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = tag;
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

/// The id in a run or settled key.
pub fn key_id(k: &[u8]) -> Option<u64> {
    let (_, id) = k.split_first()?;
    Some(u64::from_be_bytes(id.try_into().ok()?))
}

/// One run of a task, as the history shows it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Run {
    pub run: u64,
    pub task: u64,
    pub task_name: String,
    /// `None` for a manual run.
    pub scheduled_us: Option<i64>,
    pub started_us: i64,
    /// `None` while running.
    pub finished_us: Option<i64>,
    pub period_start_us: i64,
    pub period_end_us: i64,
    pub records: u64,
    pub file_name: String,
    pub file_bytes: u64,
    pub zipped: bool,
    /// Empty when the run succeeded.
    pub error: String,
    /// The outbox message carrying the report.
    pub message: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum RunRecord {
    V1 {
        run: u64,
        task: u64,
        task_name: String,
        scheduled_us: Option<i64>,
        started_us: i64,
        finished_us: Option<i64>,
        period_start_us: i64,
        period_end_us: i64,
        records: u64,
        file_name: String,
        file_bytes: u64,
        zipped: bool,
        error: String,
        message: Option<u64>,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum SettledRecord {
    V1 { until_us: i64 },
}

pub fn encode_run(r: &Run) -> Vec<u8> {
    let r = r.clone();
    to_bytes(&RunRecord::V1 {
        run: r.run,
        task: r.task,
        task_name: r.task_name,
        scheduled_us: r.scheduled_us,
        started_us: r.started_us,
        finished_us: r.finished_us,
        period_start_us: r.period_start_us,
        period_end_us: r.period_end_us,
        records: r.records,
        file_name: r.file_name,
        file_bytes: r.file_bytes,
        zipped: r.zipped,
        error: r.error,
        message: r.message,
    })
}

pub fn decode_run(bytes: &[u8]) -> Result<Run, DecodeError> {
    let RunRecord::V1 {
        run,
        task,
        task_name,
        scheduled_us,
        started_us,
        finished_us,
        period_start_us,
        period_end_us,
        records,
        file_name,
        file_bytes,
        zipped,
        error,
        message,
    } = from_bytes(bytes)?;
    Ok(Run {
        run,
        task,
        task_name,
        scheduled_us,
        started_us,
        finished_us,
        period_start_us,
        period_end_us,
        records,
        file_name,
        file_bytes,
        zipped,
        error,
        message,
    })
}

pub fn encode_settled(until_us: i64) -> Vec<u8> {
    to_bytes(&SettledRecord::V1 { until_us })
}

pub fn decode_settled(bytes: &[u8]) -> Result<i64, DecodeError> {
    let SettledRecord::V1 { until_us } = from_bytes(bytes)?;
    Ok(until_us)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_are_pinned_and_round_trip() {
        let r = Run {
            run: 1,
            task: 2,
            task_name: "n".into(),
            scheduled_us: None,
            started_us: 3,
            finished_us: Some(4),
            period_start_us: 5,
            period_end_us: 6,
            records: 7,
            file_name: "f".into(),
            file_bytes: 8,
            zipped: true,
            error: String::new(),
            message: Some(9),
        };
        let bytes = encode_run(&r);
        assert_eq!(
            bytes,
            [
                0, 1, 2, 1, b'n', 0, 6, 1, 8, 10, 12, 7, 1, b'f', 8, 1, 0, 1, 9
            ]
        );
        assert_eq!(decode_run(&bytes).unwrap(), r);
        assert_eq!(decode_settled(&encode_settled(-1)).unwrap(), -1);
        assert_eq!(key_id(&run_key(42)), Some(42));
        assert!(run_key(1) > settled_key(u64::MAX) || run_key(1)[0] != settled_key(0)[0]);
    }
}
