//! Executes [`Command`]s against the store. Called only by the event loop.

use crate::clock::Clock;
use crate::control::{
    AuditView, BadEntryView, ChangeView, Command, CommitView, ErrorCode, ErrorView, Reply,
    ServiceView, SettingView, StatusView, VerifyView,
};
use crate::model::{Change, Kind, Object, ObjectRef, Origin, Setting, SettingKey};
use crate::store::{CommitError, Receipt, StoreError};

use super::Daemon;

/// Most audit entries one `audit list` returns.
const MAX_AUDIT_LIST: u32 = 1000;

pub fn handle(daemon: &Daemon, origin: &Origin, command: Command) -> Reply {
    let result = match command {
        Command::Status => status(daemon),
        Command::AuditList { limit } => audit_list(daemon, limit),
        Command::AuditVerify => audit_verify(daemon),
        Command::SystemShow => system_show(daemon),
        Command::SystemSet { values } => system_set(daemon, origin, &values),
        Command::SystemUnset { keys } => system_unset(daemon, origin, &keys),
    };
    result.unwrap_or_else(Reply::Error)
}

type Handled = Result<Reply, ErrorView>;

fn refuse(code: ErrorCode, message: impl Into<String>) -> ErrorView {
    ErrorView {
        code,
        message: message.into(),
    }
}

fn store_error(e: StoreError) -> ErrorView {
    log::error!("store: {e}");
    refuse(ErrorCode::Store, e.to_string())
}

fn status(daemon: &Daemon) -> Handled {
    let stats = daemon.store.stats().map_err(store_error)?;
    let uptime = daemon.clock.now().saturating_since(daemon.started_at);
    Ok(Reply::Status(StatusView {
        version: env!("CARGO_PKG_VERSION").to_string(),
        pid: std::process::id(),
        uptime_secs: uptime.as_secs(),
        started_us: daemon.started.as_unix_micros(),
        data_dir: daemon.config.data_dir.display().to_string(),
        control_socket: daemon.config.control_socket.display().to_string(),
        schema: stats.schema,
        objects: stats.objects,
        audit_entries: stats.audit_entries,
        last_txid: stats.last_txid,
        store_bytes: stats.disk_bytes,
        services: vec![
            ServiceView {
                name: "store".to_string(),
                state: "running".to_string(),
                detail: format!(
                    "LMDB schema {}, {} objects, {} audit entries",
                    stats.schema, stats.objects, stats.audit_entries
                ),
            },
            ServiceView {
                name: "control".to_string(),
                state: "running".to_string(),
                detail: format!("listening on {}", daemon.config.control_socket.display()),
            },
        ],
    }))
}

fn audit_list(daemon: &Daemon, limit: u32) -> Handled {
    let limit = limit.clamp(1, MAX_AUDIT_LIST) as usize;
    let entries = daemon.store.audit_latest(limit).map_err(store_error)?;
    Ok(Reply::Audit(
        entries
            .into_iter()
            .map(|e| AuditView {
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
            })
            .collect(),
    ))
}

fn audit_verify(daemon: &Daemon) -> Handled {
    let v = daemon.store.verify_audit().map_err(store_error)?;
    if let Some(bad) = &v.first_bad {
        log::warn!(
            "audit verify: first bad entry {}.{}: {}",
            bad.txid,
            bad.index,
            bad.reason
        );
    }
    Ok(Reply::Verified(VerifyView {
        entries: v.entries,
        ok: v.first_bad.is_none(),
        first_bad: v.first_bad.map(|b| BadEntryView {
            txid: b.txid,
            index: b.index,
            reason: b.reason,
        }),
    }))
}

fn system_show(daemon: &Daemon) -> Handled {
    let set = daemon.store.settings().map_err(store_error)?;
    Ok(Reply::Settings(
        SettingKey::ALL
            .iter()
            .map(|&key| {
                let value = set
                    .iter()
                    .find(|s| s.key == key)
                    .map(|s| s.value().to_string());
                SettingView {
                    key: key.name().to_string(),
                    is_default: value.is_none(),
                    value: value.unwrap_or_else(|| key.default_value().to_string()),
                    default: key.default_value().to_string(),
                    help: key.help().to_string(),
                }
            })
            .collect(),
    ))
}

fn system_set(daemon: &Daemon, origin: &Origin, values: &[(String, String)]) -> Handled {
    if values.is_empty() {
        return Err(refuse(ErrorCode::Invalid, "nothing to set"));
    }
    let changes = values
        .iter()
        .map(|(k, v)| Setting::parse(k, v).map(|s| Change::Put(Object::Setting(s))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refuse(ErrorCode::Invalid, e))?;
    commit(daemon, origin, &changes)
}

fn system_unset(daemon: &Daemon, origin: &Origin, keys: &[String]) -> Handled {
    if keys.is_empty() {
        return Err(refuse(ErrorCode::Invalid, "nothing to unset"));
    }
    let mut changes = Vec::new();
    for name in keys {
        let key = SettingKey::from_name(name)
            .ok_or_else(|| refuse(ErrorCode::Invalid, format!("unknown setting {name:?}")))?;
        // Resetting a key that already has its default is a no-op.
        if daemon
            .store
            .get(Kind::Setting, key.name())
            .map_err(store_error)?
            .is_some()
        {
            changes.push(Change::Delete(ObjectRef {
                kind: Kind::Setting,
                id: key.name().to_string(),
            }));
        }
    }
    commit(daemon, origin, &changes)
}

/// The handlers' only way to change configuration: through `Store::commit`.
fn commit(daemon: &Daemon, origin: &Origin, changes: &[Change]) -> Handled {
    let receipt = daemon
        .store
        .commit(origin, daemon.clock.wall(), changes)
        .map_err(|e| match e {
            CommitError::Invalid(m) => refuse(ErrorCode::Invalid, m),
            CommitError::NotFound(r) => refuse(ErrorCode::NotFound, format!("{r} does not exist")),
            CommitError::Store(e) => store_error(e),
        })?;
    let Receipt { txid, changes } = receipt;
    if let Some(txid) = txid {
        // Descriptions may quote values; the log gets kinds and ids only.
        let what: Vec<String> = changes
            .iter()
            .map(|(a, r, _)| format!("{} {r}", a.as_str()))
            .collect();
        log::info!(
            "txid {txid} by {}@{}: {}",
            origin.user,
            origin.source,
            what.join(", ")
        );
    }
    Ok(Reply::Committed(CommitView {
        txid,
        changes: changes
            .into_iter()
            .map(|(action, r, description)| ChangeView {
                action: action.as_str().to_string(),
                object_type: r.kind.as_str().to_string(),
                object_id: r.id,
                description,
            })
            .collect(),
    }))
}
