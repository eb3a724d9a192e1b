//! Audit queries beyond the chain: a page of a period with filters, the
//! objects of one transaction as they were before and after it, and the
//! later transactions that touched the same objects.

use std::ops::Bound::{Excluded, Included, Unbounded};

use super::records::{self, AuditRecord};
use super::{AuditEntry, Store, StoreError, audit_entry};
use crate::audit::{Filter, Touched};
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
        for item in self.audit.rev_iter(&rtxn)? {
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
}
