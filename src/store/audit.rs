//! Audit queries beyond the chain: a page of a period with filters, the
//! objects of one transaction as they were before and after it, and the
//! later transactions that touched the same objects.

use std::ops::Bound::{Excluded, Included, Unbounded};

use super::records::{self, AuditRecord};
use super::{AuditEntry, Store, StoreError, audit_entry};
use crate::audit::{Filter, Touched};
use crate::clock::WallTime;
use crate::model::{Kind, ObjectRef};

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// More entries match after this page.
    pub more: bool,
}

impl Store {
    /// The entries that match `filter`, newest first, skipping the first
    /// `skip` matches and returning at most `limit`.
    ///
    /// The walk goes backwards from the newest entry and stops at the first
    /// entry older than the period: entries are in transaction order, and
    /// transaction times only grow (a wall clock stepped backwards can hide
    /// entries written across the step from a listing, never from `show`).
    pub fn audit_page(
        &self,
        filter: &Filter,
        skip: usize,
        limit: usize,
    ) -> Result<AuditPage, StoreError> {
        let rtxn = self.env.read_txn()?;
        let mut entries = Vec::new();
        let mut matched = 0usize;
        let mut more = false;
        let end = self.first_key_at_or_after(&rtxn, filter.end_us)?;
        let range = (
            Unbounded,
            end.as_ref().map_or(Unbounded, |k| Excluded(&k[..])),
        );
        for item in self.audit.rev_range(&rtxn, &range)? {
            let (_, value) = item?;
            let AuditRecord::V1 { body, .. } = records::decode_audit(value)?;
            if body.time_us >= filter.end_us {
                continue;
            }
            if body.time_us < filter.start_us {
                break;
            }
            if !filter.matches(body.time_us, &body.user, &body.kind, body.action.into()) {
                continue;
            }
            matched += 1;
            if matched <= skip {
                continue;
            }
            if entries.len() == limit {
                more = true;
                break;
            }
            entries.push(audit_entry(body));
        }
        Ok(AuditPage { entries, more })
    }

    /// Hands every entry that matches `filter` to `f`, newest first, in one
    /// read transaction, until `f` returns false. Object states are not
    /// decoded (`before`/`after` are `None`): memory stays flat however
    /// many entries match.
    pub fn audit_scan(
        &self,
        filter: &Filter,
        mut f: impl FnMut(&AuditEntry) -> bool,
    ) -> Result<(), StoreError> {
        let rtxn = self.env.read_txn()?;
        let end = self.first_key_at_or_after(&rtxn, filter.end_us)?;
        let range = (
            Unbounded,
            end.as_ref().map_or(Unbounded, |k| Excluded(&k[..])),
        );
        for item in self.audit.rev_range(&rtxn, &range)? {
            let (_, value) = item?;
            let AuditRecord::V1 { mut body, .. } = records::decode_audit(value)?;
            if body.time_us >= filter.end_us {
                continue;
            }
            if body.time_us < filter.start_us {
                break;
            }
            if !filter.matches(body.time_us, &body.user, &body.kind, body.action.into()) {
                continue;
            }
            body.before = None;
            body.after = None;
            if !f(&audit_entry(body)) {
                break;
            }
        }
        Ok(())
    }

    /// The key of the first transaction whose time is at or after `time_us`
    /// (`None`: every entry is older), by binary search over transaction
    /// ids (dense between the anchor and the head, times growing with them):
    /// a listing of an old month starts there instead of walking back
    /// through every newer entry.
    fn first_key_at_or_after(
        &self,
        rtxn: &heed::RoTxn<heed::WithoutTls>,
        time_us: i64,
    ) -> Result<Option<[u8; 12]>, StoreError> {
        let first = |from: u64| -> Result<Option<(u64, i64)>, StoreError> {
            let start = records::audit_key(from, 0);
            match self
                .audit
                .range(rtxn, &(Included(&start[..]), Unbounded))?
                .next()
            {
                Some(item) => {
                    let (_, value) = item?;
                    let AuditRecord::V1 { body, .. } = records::decode_audit(value)?;
                    Ok(Some((body.txid, body.time_us)))
                }
                None => Ok(None),
            }
        };
        let Some((lo_tx, lo_time)) = first(0)? else {
            return Ok(None);
        };
        if lo_time >= time_us {
            return Ok(Some(records::audit_key(lo_tx, 0)));
        }
        let Some(last) = self.audit.last(rtxn)? else {
            return Ok(None);
        };
        let Some((hi_tx, _)) = records::split_audit_key(last.0) else {
            return Ok(None);
        };
        // Invariant: the transaction at `lo` is older than `time_us`; the
        // answer, if any, is in (lo, hi].
        let (mut lo, mut hi) = (lo_tx, hi_tx + 1);
        while hi.saturating_sub(lo) > 1 {
            let mid = lo + (hi - lo) / 2;
            match first(mid)? {
                Some((tx, t)) if t < time_us => lo = tx.max(mid),
                Some(_) => hi = mid,
                None => hi = mid,
            }
        }
        if hi > hi_tx {
            return Ok(None);
        }
        Ok(first(hi)?.map(|(tx, _)| records::audit_key(tx, 0)))
    }

    /// Every object one transaction touched, in order, with its decoded
    /// state before and after. Empty if there is no such transaction.
    pub fn audit_touched(&self, txid: u64) -> Result<Vec<(AuditEntry, Touched)>, StoreError> {
        let rtxn = self.env.read_txn()?;
        let start = records::audit_key(txid, 0);
        let end = records::audit_key(txid, u32::MAX);
        let mut out = Vec::new();
        for item in self
            .audit
            .range(&rtxn, &(Included(&start[..]), Included(&end[..])))?
        {
            let (_, value) = item?;
            let AuditRecord::V1 { body, .. } = records::decode_audit(value)?;
            let kind = Kind::from_name(&body.kind).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "audit entry {}.{} names an unknown object type {:?}",
                    body.txid, body.index, body.kind
                ))
            })?;
            let decode = |bytes: &Option<Vec<u8>>| {
                bytes
                    .as_deref()
                    .map(|b| records::decode_object(kind, &body.id, b))
                    .transpose()
            };
            let touched = Touched {
                target: ObjectRef {
                    kind,
                    id: body.id.clone(),
                },
                before: decode(&body.before)?,
                after: decode(&body.after)?,
            };
            out.push((audit_entry(body), touched));
        }
        Ok(out)
    }

    /// The transactions after `txid` that touched any of `targets`, in
    /// order, without repeats.
    pub fn audit_later(&self, txid: u64, targets: &[ObjectRef]) -> Result<Vec<u64>, StoreError> {
        let rtxn = self.env.read_txn()?;
        let start = records::audit_key(txid, u32::MAX);
        let mut out: Vec<u64> = Vec::new();
        for item in self
            .audit
            .range(&rtxn, &(Excluded(&start[..]), Unbounded))?
        {
            let (_, value) = item?;
            let AuditRecord::V1 { body, .. } = records::decode_audit(value)?;
            if out.last() == Some(&body.txid) {
                continue;
            }
            if targets
                .iter()
                .any(|t| t.id == body.id && t.kind.as_str() == body.kind)
            {
                out.push(body.txid);
            }
        }
        Ok(out)
    }

    /// Removes whole transactions older than `cutoff_us` from the start of
    /// the log, at most `max_entries` entries per call, never the newest
    /// transaction, and moves the chain's anchor to the first kept entry
    /// (its key and the hash it follows), so `verify_audit` still checks
    /// everything that is left. Returns the number of entries removed.
    pub fn audit_prune(&self, cutoff_us: i64, max_entries: usize) -> Result<u64, StoreError> {
        let mut tx = self.begin()?;
        let mut chain = self.chain(&tx.txn)?;
        let Some(head) = chain.head_key else {
            return Ok(0);
        };
        let mut doomed: Vec<[u8; 12]> = Vec::new();
        let mut anchor: Option<((u64, u32), [u8; 32])> = None;
        let mut pending_tx: Vec<[u8; 12]> = Vec::new();
        let mut current_tx: Option<u64> = None;
        for item in self.audit.iter(&tx.txn)? {
            let (key, value) = item?;
            let Some((txid, index)) = records::split_audit_key(key) else {
                return Err(StoreError::Corrupt(
                    "audit entry with a malformed key".into(),
                ));
            };
            let AuditRecord::V1 {
                body, prev_hash, ..
            } = records::decode_audit(value)?;
            if current_tx != Some(txid) {
                // A transaction boundary: the previous one was wholly old.
                doomed.append(&mut pending_tx);
                current_tx = Some(txid);
                if txid == head.0 || body.time_us >= cutoff_us || doomed.len() >= max_entries {
                    anchor = Some(((txid, index), prev_hash));
                    break;
                }
            }
            pending_tx.push(records::audit_key(txid, index));
        }
        let Some((anchor_key, anchor_prev)) = anchor else {
            return Ok(0);
        };
        if doomed.is_empty() {
            return Ok(0);
        }
        for key in &doomed {
            tx.delete(super::repl::Db::Audit, key)?;
        }
        chain.anchor_key = Some(anchor_key);
        chain.anchor_prev_hash = anchor_prev;
        tx.put(
            super::repl::Db::Meta,
            super::META_CHAIN,
            &records::to_bytes(&records::ChainRecord::V1(chain)),
        )?;
        self.finish(tx, cutoff_us)?;
        Ok(doomed.len() as u64)
    }
}

/// The start of the month `months` before the month of `now` in `tz`: what
/// a retention of `months` months keeps from (`months == 0`: keep all).
pub fn retention_cutoff(now: WallTime, months: u32, tz: &jiff::tz::TimeZone) -> Option<i64> {
    if months == 0 {
        return None;
    }
    let m = crate::audit::Month::of(now.as_unix_micros(), tz);
    let first = jiff::civil::date(m.year, m.month, 1)
        .checked_sub(jiff::Span::new().months(i64::from(months)))
        .ok()?;
    Some(
        first
            .to_zoned(tz.clone())
            .ok()?
            .timestamp()
            .as_microsecond(),
    )
}
