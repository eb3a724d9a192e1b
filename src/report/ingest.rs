//! The store side of CDR ingestion: rows and the follower's state written
//! in one transaction, one-shot imports from a reader, retention pruning.

use std::io::Read;
use std::ops::Bound;

use crate::cdr::follow::{FileKind, Follower, Rows};
use crate::cdr::record::{IngestStateRecord, IngestStateV1, time_key};
use crate::store::data::Table;
use crate::store::records::{from_bytes, to_bytes};
use crate::store::{Store, StoreError};

/// `Table::IngestState` key of the `Master.csv` follower.
pub const MASTER_KEY: &[u8] = b"master_csv";
/// `Table::IngestState` key of the `queue_log` follower.
pub const QUEUE_KEY: &[u8] = b"queue_log";

/// Writes `rows` and, if given, the follower state under `state_key`, in
/// one transaction: a crash keeps both or neither.
pub fn commit(
    store: &Store,
    rows: &Rows,
    state: Option<(&[u8], &IngestStateV1)>,
) -> Result<(), StoreError> {
    store.data_write(|t| {
        for c in &rows.calls {
            t.put(Table::Call, &c.key(), &to_bytes(c))?;
        }
        for q in &rows.entries {
            t.put(Table::QueueEntry, &q.key(), &to_bytes(q))?;
        }
        for o in &rows.operators {
            t.put(Table::OperatorEvent, &o.key(), &to_bytes(o))?;
        }
        if let Some((key, state)) = state {
            t.put(
                Table::IngestState,
                key,
                &to_bytes(&IngestStateRecord::V1(state.clone())),
            )?;
        }
        Ok(())
    })
}

/// The stored follower state, if any.
pub fn load_state(store: &Store, key: &[u8]) -> Result<Option<IngestStateV1>, StoreError> {
    match store.data_get(Table::IngestState, key)? {
        None => Ok(None),
        Some(bytes) => {
            let IngestStateRecord::V1(s) = from_bytes(&bytes)?;
            Ok(Some(s))
        }
    }
}

/// What a one-shot import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub records: u64,
    pub malformed: u64,
    pub rows: u64,
    pub last_errors: Vec<(u64, String)>,
}

/// Reads a whole file (any size, in chunks) and stores its rows. Rows
/// already stored (same keys) are overwritten, so importing twice is
/// harmless. Entries still open at the end are stored as complete as they
/// are (queue entries with outcome `incomplete`).
pub fn import(
    store: &Store,
    kind: FileKind,
    mut input: impl Read,
) -> Result<ImportSummary, String> {
    let mut follower = Follower::resume(kind, IngestStateV1::default());
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {e}")),
        };
        let rows = follower.feed(&buf[..n]);
        commit(store, &rows, None).map_err(|e| e.to_string())?;
    }
    // A last line without its newline is a record too.
    let mut rows = follower.feed(b"\n");
    let end = follower.finish();
    rows.calls.extend(end.calls);
    rows.entries.extend(end.entries);
    commit(store, &rows, None).map_err(|e| e.to_string())?;
    let s = follower.state();
    Ok(ImportSummary {
        records: s.records,
        malformed: s.malformed,
        rows: s.rows,
        last_errors: s.last_errors.clone(),
    })
}

/// Deletes the rows of the three CDR tables older than `before_us`;
/// returns how many.
pub fn prune(store: &Store, before_us: i64) -> Result<u64, StoreError> {
    let to = time_key(before_us);
    store.data_write(|t| {
        let mut n = 0;
        for table in [Table::Call, Table::QueueEntry, Table::OperatorEvent] {
            n += t.delete_range(table, (Bound::Unbounded, Bound::Excluded(&to[..])))?;
        }
        Ok(n)
    })
}
