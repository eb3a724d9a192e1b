//! Handlers of `kpbx audit list` (period queries), `audit show` and
//! `audit restore`. Called only by the event loop, through `handlers`.

use super::Daemon;
use super::handlers::{Handled, commit, refuse, store_error, stored_ha};
use crate::audit::{self, Filter, Month};
use crate::clock::Clock;
use crate::control::Command;
use crate::control::{
    AuditObjectView, AuditPageView, AuditQuery, AuditTransactionView, AuditView, ErrorCode,
    FieldDiffView, Reply,
};
use crate::model::{Kind, Origin, SettingKey};
use crate::store::AuditEntry;

/// Entries per page unless asked otherwise, and at most.
const DEFAULT_PAGE: u32 = 50;
/// Most later transactions named in a refused restore.
const MAX_CONFLICTS_NAMED: usize = 20;

pub(super) fn view(e: AuditEntry) -> AuditView {
    AuditView {
        txid: e.txid,
        index: e.index,
        time_us: e.time.as_unix_micros(),
        user: e.user,
        source: e.source.to_string(),
        action: e.action.as_str().to_string(),
        object_type: e.kind,
        object_id: e.id,
        description: e.description,
        before: e.before,
        after: e.after,
    }
}

/// The period, filter and columns a query asks for.
fn filter_of(
    daemon: &Daemon,
    q: &AuditQuery,
) -> Result<(Month, Filter, Vec<String>), crate::control::ErrorView> {
    let invalid = |m: String| refuse(ErrorCode::Invalid, m);
    let tz = super::box_tz(&daemon.store);
    let month = match &q.month {
        Some(m) => Month::parse(m).map_err(invalid)?,
        None => Month::of(daemon.clock.wall().as_unix_micros(), &tz),
    };
    let (start_us, end_us) = audit::period(month, q.day, &tz).map_err(invalid)?;
    let action = q
        .action
        .as_deref()
        .map(audit::parse_action)
        .transpose()
        .map_err(invalid)?;
    if let Some(kind) = q.object_type.as_deref()
        && Kind::from_name(kind).is_none()
    {
        return Err(invalid(format!("unknown object type {kind:?}")));
    }
    let columns = if q.columns.is_empty() {
        Vec::new()
    } else {
        audit::parse_columns(&q.columns.join(",")).map_err(invalid)?
    };
    let filter = Filter {
        start_us,
        end_us,
        user: q.user.clone(),
        kind: q.object_type.clone(),
        action,
    };
    Ok((month, filter, columns))
}

/// `kpbx audit export`: streamed from a thread, like the CDR exports.
pub(super) fn offload(
    daemon: &Daemon,
    command: Command,
    reply: &smol::channel::Sender<Reply>,
) -> Option<Command> {
    let Command::AuditExport { query, format } = command else {
        return Some(command);
    };
    let prepared = filter_of(daemon, &query).and_then(|(_, filter, columns)| {
        audit::export::Format::parse(&format)
            .map(|f| (filter, columns, f))
            .map_err(|e| refuse(ErrorCode::Invalid, e))
    });
    let (filter, columns, format) = match prepared {
        Ok(p) => p,
        Err(e) => {
            let _ = reply.try_send(Reply::Error(e));
            return None;
        }
    };
    let store = std::sync::Arc::clone(&daemon.store);
    let tz = super::box_tz(&daemon.store);
    let reply = reply.clone();
    let spawned = std::thread::Builder::new()
        .name("audit-export".into())
        .spawn(move || {
            let out = super::cdr::ChunkWriter::new(reply.clone());
            let result = audit::export::export(&store, &filter, &columns, format, tz, out)
                .and_then(|(mut out, rows)| {
                    std::io::Write::flush(&mut out).map_err(|e| e.to_string())?;
                    Ok((rows, out.written()))
                });
            store.release_mapped_pages();
            let answer = match result {
                Ok((rows, bytes)) => Reply::StreamEnd(crate::control::StreamEndView {
                    rows,
                    bytes,
                    from_us: filter.start_us,
                    to_us: filter.end_us,
                }),
                Err(e) => {
                    log::warn!("audit: export failed: {e}");
                    Reply::error(ErrorCode::Invalid, format!("export failed: {e}"))
                }
            };
            let _ = reply.send_blocking(answer);
        });
    if let Err(e) = spawned {
        log::error!("audit: cannot start the export thread: {e}");
    }
    None
}

pub(super) fn query(daemon: &Daemon, q: &AuditQuery) -> Handled {
    let (month, filter, columns) = filter_of(daemon, q)?;
    let page = q.page.max(1);
    // 0 is "not given" on the wire; anything above the maximum is refused
    // (the same rule as `audit::parse_bounded`), not clamped.
    let page_size = match q.page_size {
        0 => DEFAULT_PAGE,
        n if n > crate::audit::MAX_PAGE_SIZE => {
            return Err(refuse(
                ErrorCode::BadRequest,
                crate::audit::parse_bounded(
                    "page_size",
                    &n.to_string(),
                    crate::audit::MAX_PAGE_SIZE,
                )
                .err()
                .unwrap_or_default(),
            ));
        }
        n => n,
    };
    let skip = (page as usize - 1).saturating_mul(page_size as usize);
    let found = daemon
        .store
        .audit_page(&filter, skip, page_size as usize)
        .map_err(store_error)?;
    Ok(Reply::AuditPage(AuditPageView {
        month: month.to_string(),
        day: q.day,
        page,
        page_size,
        more: found.more,
        columns,
        entries: found.entries.into_iter().map(view).collect(),
    }))
}

pub(super) fn show(daemon: &Daemon, txid: u64) -> Handled {
    let touched = daemon.store.audit_touched(txid).map_err(store_error)?;
    let Some((first, _)) = touched.first() else {
        return Err(refuse(
            ErrorCode::NotFound,
            format!("transaction {txid} is not in the audit log"),
        ));
    };
    let head = (
        first.time.as_unix_micros(),
        first.user.clone(),
        first.source.to_string(),
    );
    let objects = touched
        .into_iter()
        .map(|(e, t)| AuditObjectView {
            index: e.index,
            action: e.action.as_str().to_string(),
            object_type: e.kind,
            object_id: e.id,
            description: e.description,
            fields: audit::diff(t.before.as_ref(), t.after.as_ref())
                .into_iter()
                .map(|f| FieldDiffView {
                    field: f.field,
                    before: f.before,
                    after: f.after,
                    secret: f.secret,
                    changed: f.changed,
                })
                .collect(),
        })
        .collect();
    Ok(Reply::AuditTransaction(AuditTransactionView {
        txid,
        time_us: head.0,
        user: head.1,
        source: head.2,
        objects,
    }))
}

/// A restore puts objects back as if the caller made those changes itself:
/// it needs the write permission of every object's area
/// (`auth::table::kind_area`), may only put back users and roles that
/// grant what it holds (`auth::may_grant`), and a tenant-scoped caller is
/// refused (the audit log spans every tenant). The refusal names what is
/// missing.
fn may_restore(
    daemon: &Daemon,
    origin: &Origin,
    plan: &[crate::model::Change],
) -> Result<(), crate::control::ErrorView> {
    use crate::model::access::{Access, Permission};
    use crate::model::{Change, Object};
    let caller = super::users::caller(daemon, origin)?;
    let denied = |m: String| {
        log::warn!(
            "audit restore denied to {}@{}: {m}",
            origin.user,
            origin.source
        );
        refuse(ErrorCode::Denied, m)
    };
    if let Some(t) = &caller.scope {
        return Err(denied(format!(
            "permission denied: restoring is outside tenant {t} (the role is tenant-scoped)"
        )));
    }
    let mut missing = std::collections::BTreeSet::new();
    for change in plan {
        let target = change.target();
        let wanted = Permission {
            area: crate::auth::table::kind_area(target.kind),
            access: Access::Write,
        };
        if !caller.role.grants(wanted) {
            missing.insert(format!(
                "{wanted} (for {} {})",
                target.kind.as_str(),
                target.id
            ));
        }
        if let Change::Put(o) = change {
            let granted = match o.as_ref() {
                Object::User(u) => Some(super::users::role(daemon, &u.role)?),
                Object::Role(r) => Some(r.clone()),
                _ => None,
            };
            if let Some(granted) = granted
                && let Err(m) = crate::auth::may_grant(&caller.role, &granted)
            {
                return Err(denied(m));
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(denied(format!(
            "permission denied: user {:?} (role {}) lacks {}; nothing restored",
            origin.user,
            caller.role.name,
            missing.into_iter().collect::<Vec<_>>().join(", ")
        )))
    }
}

pub(super) fn restore(daemon: &Daemon, origin: &Origin, txid: u64, force: bool) -> Handled {
    let touched: Vec<audit::Touched> = daemon
        .store
        .audit_touched(txid)
        .map_err(store_error)?
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    if touched.is_empty() {
        return Err(refuse(
            ErrorCode::NotFound,
            format!("transaction {txid} is not in the audit log"),
        ));
    }
    let targets: Vec<_> = touched.iter().map(|t| t.target.clone()).collect();
    let later = daemon
        .store
        .audit_later(txid, &targets)
        .map_err(store_error)?;
    if !later.is_empty() && !force {
        let mut named: Vec<String> = later
            .iter()
            .take(MAX_CONFLICTS_NAMED)
            .map(u64::to_string)
            .collect();
        if later.len() > MAX_CONFLICTS_NAMED {
            named.push(format!("and {} more", later.len() - MAX_CONFLICTS_NAMED));
        }
        return Err(refuse(
            ErrorCode::Conflict,
            format!(
                "objects of transaction {txid} were changed later by transaction{} {}; \
                 nothing restored (--force restores anyway)",
                if later.len() == 1 { "" } else { "s" },
                named.join(", ")
            ),
        ));
    }
    let mut lookup_error = None;
    let plan = audit::restore_plan(&touched, |r| match daemon.store.get(r.kind, &r.id) {
        Ok(o) => o,
        Err(e) => {
            lookup_error = Some(e);
            None
        }
    });
    if let Some(e) = lookup_error {
        return Err(store_error(e));
    }
    may_restore(daemon, origin, &plan)?;
    log::info!(
        "audit restore of txid {txid} by {}@{}{}",
        origin.user,
        origin.source,
        if force { " (forced)" } else { "" }
    );
    let reply = commit(daemon, origin, &plan)?;
    // The HA runtime follows its stored configuration, as after
    // `ha configure`.
    if let Reply::Committed(c) = &reply
        && c.txid.is_some()
        && targets.iter().any(|t| t.kind == Kind::Ha)
    {
        let settings = stored_ha(daemon)?.unwrap_or_default();
        let mut rt = daemon.ha.borrow_mut();
        rt.forget_key();
        if !rt.reconfigure(daemon.clock.now(), &settings) {
            rt.request_restart();
        }
    }
    Ok(reply)
}

/// Entries removed per pruning step (one write transaction).
const PRUNE_BATCH: usize = 10_000;
/// How often retention is applied when nothing changed.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Applies `audit_retention_months`: at start, hourly, soon after the
/// setting changes, and step after step while a backlog remains.
pub(super) fn maybe_prune(daemon: &Daemon) {
    let months: u32 = daemon
        .store
        .setting(SettingKey::AuditRetentionMonths)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let now = daemon.clock.now();
    let due = match daemon.prune.get() {
        None => true,
        Some((at, m, backlog)) => m != months || backlog || now.saturating_since(at) >= PRUNE_EVERY,
    };
    if !due {
        return;
    }
    let cutoff =
        crate::store::retention_cutoff(daemon.clock.wall(), months, &super::box_tz(&daemon.store));
    let pruned = match cutoff {
        None => 0,
        Some(cutoff) => match daemon.store.audit_prune(cutoff, PRUNE_BATCH) {
            Ok(n) => n,
            Err(e) => {
                log::error!("audit retention: {e}");
                0
            }
        },
    };
    if pruned > 0 {
        log::info!("audit retention ({months} months): pruned {pruned} entries; anchor moved");
    }
    daemon
        .prune
        .set(Some((now, months, pruned >= PRUNE_BATCH as u64)));
}
