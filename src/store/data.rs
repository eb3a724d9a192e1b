//! Operational data: what the services record, as opposed to what users
//! configure. Call records, ingest positions, task runs, the mail outbox,
//! redirection-server jobs, login sessions.
//!
//! These records are not configuration, so they are not written through
//! [`Store::commit`] and have no audit entries. They live in the same LMDB
//! environment (one file, one backup, one replication stream later) in one
//! database, `data`, keyed by a one-byte [`Table`] tag followed by the
//! owner's key. Values are the owner's versioned records: each owning module
//! defines a `…Record` enum with `V1`, `V2`… variants and encodes it with
//! [`super::records::to_bytes`]. This module only moves bytes.
//!
//! Reads stream: [`Store::data_scan`] hands each entry to a callback inside
//! one read transaction, so an export of a million rows never holds them all.

use std::ops::Bound;
use std::ops::ControlFlow;

use super::repl::{Db, Tx};
use super::{Store, StoreError};

/// The tables. Tags are part of the on-disk format: never reuse or change one;
/// append new tables with new tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// CDR: one row per call, keyed by start time.
    Call,
    /// Call-center CDR: one row per queue entry, keyed by entry time.
    QueueEntry,
    /// Call-center operator (agent) events, keyed by time.
    OperatorEvent,
    /// Position and counters of each followed file.
    IngestState,
    /// Scheduled-task runs (history).
    TaskRun,
    /// Mail outbox: messages until the server accepted them, then their result.
    Outbox,
    /// Redirection-server registration jobs and their last result.
    RedirectJob,
    /// Management API sessions.
    Session,
    /// Retired: failed logins per user and address, as older versions
    /// stored them (emptied at start; the tag stays taken).
    LoginFailure,
}

impl Table {
    pub const ALL: [Table; 9] = [
        Table::Call,
        Table::QueueEntry,
        Table::OperatorEvent,
        Table::IngestState,
        Table::TaskRun,
        Table::Outbox,
        Table::RedirectJob,
        Table::Session,
        Table::LoginFailure,
    ];

    /// The on-disk tag.
    pub const fn tag(self) -> u8 {
        match self {
            Table::Call => 1,
            Table::QueueEntry => 2,
            Table::OperatorEvent => 3,
            Table::IngestState => 4,
            Table::TaskRun => 5,
            Table::Outbox => 6,
            Table::RedirectJob => 7,
            Table::Session => 8,
            Table::LoginFailure => 9,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Table::Call => "call",
            Table::QueueEntry => "queue_entry",
            Table::OperatorEvent => "operator_event",
            Table::IngestState => "ingest_state",
            Table::TaskRun => "task_run",
            Table::Outbox => "outbox",
            Table::RedirectJob => "redirect_job",
            Table::Session => "session",
            Table::LoginFailure => "login_failure",
        }
    }
}

fn full_key(table: Table, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(table.tag());
    k.extend_from_slice(key);
    k
}

/// The LMDB key range of `range` within `table`.
fn full_range(
    table: Table,
    range: (Bound<&[u8]>, Bound<&[u8]>),
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let tag = table.tag();
    let start = match range.0 {
        Bound::Included(k) => Bound::Included(full_key(table, k)),
        Bound::Excluded(k) => Bound::Excluded(full_key(table, k)),
        Bound::Unbounded => Bound::Included(vec![tag]),
    };
    let end = match range.1 {
        Bound::Included(k) => Bound::Included(full_key(table, k)),
        Bound::Excluded(k) => Bound::Excluded(full_key(table, k)),
        // Tags are below 255, so `tag + 1` exists and bounds the table.
        Bound::Unbounded => Bound::Excluded(vec![tag + 1]),
    };
    (start, end)
}

fn as_refs(r: &(Bound<Vec<u8>>, Bound<Vec<u8>>)) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        r.0.as_ref().map(Vec::as_slice),
        r.1.as_ref().map(Vec::as_slice),
    )
}

/// Scan order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// A write transaction over the data tables. Dropped without
/// [`Store::data_write`] returning `Ok`, it is aborted.
pub struct DataTxn<'s> {
    store: &'s Store,
    tx: Tx<'s>,
}

impl DataTxn<'_> {
    pub fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.tx.get(Db::Data, &full_key(table, key))
    }

    pub fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.tx.put(Db::Data, &full_key(table, key), value)
    }

    /// Whether the key was there.
    pub fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool, StoreError> {
        self.tx.delete(Db::Data, &full_key(table, key))
    }

    /// Deletes every entry of `table` in `range`; returns how many.
    pub fn delete_range(
        &mut self,
        table: Table,
        range: (Bound<&[u8]>, Bound<&[u8]>),
    ) -> Result<u64, StoreError> {
        let r = full_range(table, range);
        self.tx.delete_range(Db::Data, as_refs(&r))
    }

    /// Like [`Store::data_scan`], inside this transaction (sees its writes).
    pub fn scan(
        &self,
        table: Table,
        range: (Bound<&[u8]>, Bound<&[u8]>),
        order: Order,
        f: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<(), StoreError> {
        scan(self.store, self.tx.read(), table, range, order, f)
    }
}

fn scan(
    store: &Store,
    txn: &heed::RoTxn<'_, heed::WithoutTls>,
    table: Table,
    range: (Bound<&[u8]>, Bound<&[u8]>),
    order: Order,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>, StoreError>,
) -> Result<(), StoreError> {
    let r = full_range(table, range);
    let r = as_refs(&r);
    let mut visit = |item: heed::Result<(&[u8], &[u8])>| -> Result<ControlFlow<()>, StoreError> {
        let (key, value) = item?;
        f(&key[1..], value)
    };
    match order {
        Order::Ascending => {
            for item in store.data.range(txn, &r)? {
                if visit(item)?.is_break() {
                    break;
                }
            }
        }
        Order::Descending => {
            for item in store.data.rev_range(txn, &r)? {
                if visit(item)?.is_break() {
                    break;
                }
            }
        }
    }
    Ok(())
}

impl Store {
    /// Runs `f` in one write transaction over the data tables and commits it
    /// if `f` returns `Ok`. Never touches configuration or the audit log.
    pub fn data_write<T>(
        &self,
        f: impl FnOnce(&mut DataTxn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut t = DataTxn {
            store: self,
            tx: self.begin()?,
        };
        let out = f(&mut t)?;
        // The log's time stamp is informational (replication lag).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        self.finish(t.tx, now)?;
        Ok(out)
    }

    pub fn data_get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let rtxn = self.env.read_txn()?;
        Ok(self
            .data
            .get(&rtxn, &full_key(table, key))?
            .map(<[u8]>::to_vec))
    }

    /// Hands every entry of `table` within `range` (keys without the tag) to
    /// `f`, in key order or reverse, until `f` breaks. One read transaction:
    /// a consistent view, and memory does not grow with the table.
    pub fn data_scan(
        &self,
        table: Table,
        range: (Bound<&[u8]>, Bound<&[u8]>),
        order: Order,
        f: impl FnMut(&[u8], &[u8]) -> Result<ControlFlow<()>, StoreError>,
    ) -> Result<(), StoreError> {
        let rtxn = self.env.read_txn()?;
        scan(self, &rtxn, table, range, order, f)
    }

    /// Number of entries in `table`.
    pub fn data_len(&self, table: Table) -> Result<u64, StoreError> {
        let mut n = 0u64;
        self.data_scan(
            table,
            (Bound::Unbounded, Bound::Unbounded),
            Order::Ascending,
            |_, _| {
                n += 1;
                Ok(ControlFlow::Continue(()))
            },
        )?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::WallTime;

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path(), 64, WallTime::from_unix_micros(0)).unwrap();
        (dir, s)
    }

    fn keys(s: &Store, t: Table, order: Order) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        s.data_scan(t, (Bound::Unbounded, Bound::Unbounded), order, |k, _| {
            out.push(k.to_vec());
            Ok(ControlFlow::Continue(()))
        })
        .unwrap();
        out
    }

    #[test]
    fn tags_are_unique_and_pinned() {
        let mut tags: Vec<u8> = Table::ALL.iter().map(|t| t.tag()).collect();
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags, (1..=9).collect::<Vec<u8>>());
    }

    #[test]
    fn tables_are_disjoint_and_ordered() {
        let (_d, s) = open();
        s.data_write(|t| {
            t.put(Table::Outbox, b"b", b"2")?;
            t.put(Table::Outbox, b"a", b"1")?;
            t.put(Table::TaskRun, b"a", b"x")?;
            t.put(Table::RedirectJob, b"", b"y")
        })
        .unwrap();
        assert_eq!(
            keys(&s, Table::Outbox, Order::Ascending),
            [b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(
            keys(&s, Table::Outbox, Order::Descending),
            [b"b".to_vec(), b"a".to_vec()]
        );
        assert_eq!(keys(&s, Table::TaskRun, Order::Ascending), [b"a".to_vec()]);
        assert_eq!(s.data_get(Table::Outbox, b"a").unwrap().unwrap(), b"1");
        assert_eq!(s.data_len(Table::Call).unwrap(), 0);
        // Configuration and audit are untouched.
        assert_eq!(s.stats().unwrap().audit_entries, 0);
        assert_eq!(s.stats().unwrap().objects, 0);
    }

    #[test]
    fn ranges_breaks_and_deletes() {
        let (_d, s) = open();
        s.data_write(|t| {
            for i in 0u8..10 {
                t.put(Table::Call, &[i], &[i])?;
            }
            t.put(Table::QueueEntry, &[5], b"q")
        })
        .unwrap();
        let mut seen = Vec::new();
        s.data_scan(
            Table::Call,
            (Bound::Included(&[2u8][..]), Bound::Excluded(&[6u8][..])),
            Order::Ascending,
            |k, _| {
                seen.push(k[0]);
                Ok(if seen.len() == 3 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                })
            },
        )
        .unwrap();
        assert_eq!(seen, [2, 3, 4]);
        let n = s
            .data_write(|t| {
                t.delete_range(Table::Call, (Bound::Unbounded, Bound::Excluded(&[7u8][..])))
            })
            .unwrap();
        assert_eq!(n, 7);
        assert_eq!(keys(&s, Table::Call, Order::Ascending), [[7], [8], [9]]);
        assert_eq!(s.data_len(Table::QueueEntry).unwrap(), 1);
    }

    #[test]
    fn an_error_aborts_the_transaction() {
        let (_d, s) = open();
        let r: Result<(), StoreError> = s.data_write(|t| {
            t.put(Table::Outbox, b"k", b"v")?;
            Err(StoreError::Corrupt("test".into()))
        });
        assert!(r.is_err());
        assert_eq!(s.data_get(Table::Outbox, b"k").unwrap(), None);
    }

    #[test]
    fn data_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path(), 64, WallTime::from_unix_micros(0)).unwrap();
            s.data_write(|t| t.put(Table::IngestState, b"f", b"42"))
                .unwrap();
        }
        let s = Store::open(dir.path(), 64, WallTime::from_unix_micros(0)).unwrap();
        assert_eq!(
            s.data_get(Table::IngestState, b"f").unwrap().unwrap(),
            b"42"
        );
    }
}
