//! Executes [`Command`]s against the store. Called only by the event loop.

use crate::clock::Clock;
use crate::control::{
    AuditView, BadEntryView, BlockedView, ChangeView, Command, CommitView, ErrorCode, ErrorView,
    FetchView, FileContentView, FileView, FilesView, ObjectView, ProvUrlView, Reply, ServiceView,
    SettingView, StatusView, UnknownDeviceView, UnknownView, VerifyView,
};
use crate::ha;
use crate::model::{Brand, Change, Kind, Mac, Object, ObjectRef, Origin, Setting, SettingKey};
use crate::model::{HA_ID, HaSettings};
use crate::provision;
use crate::store::{CommitError, Receipt, StoreError};

use super::Daemon;

/// Most audit entries one `audit list` returns.
const MAX_AUDIT_LIST: u32 = 1000;

/// Runs a command `users::authorize` has allowed, with the tenant `scope`
/// it returned (`super::route` checks before it offloads, and calls this).
pub fn handle_authorized(
    daemon: &Daemon,
    origin: &Origin,
    scope: Option<String>,
    command: Command,
) -> Reply {
    let result = match command {
        Command::Status => status(daemon),
        Command::AuditList { limit } => audit_list(daemon, limit),
        Command::AuditVerify => audit_verify(daemon),
        Command::SystemShow => system_show(daemon),
        Command::SystemSet { values } => system_set(daemon, origin, &values),
        Command::SystemUnset { keys } => system_unset(daemon, origin, &keys),
        Command::ProvList { kind } => prov_list(daemon, &kind).map(|r| match (&scope, r) {
            (Some(t), Reply::Objects(list)) => Reply::Objects(
                list.into_iter()
                    .filter(|o| {
                        let tenant = o.fields.iter().find(|(k, _)| k == "tenant");
                        crate::auth::scope::visible(
                            t,
                            &o.object_type,
                            &o.id,
                            tenant.map(|(_, v)| v.as_str()),
                            o.builtin,
                        )
                    })
                    .collect(),
            ),
            (_, r) => r,
        }),
        Command::ProvShow { kind, id } => prov_show(daemon, &kind, &id),
        Command::ProvAdd { kind, fields } => prov_add(daemon, origin, &kind, &fields),
        Command::ProvSet { kind, id, fields } => prov_set(daemon, origin, &kind, &id, &fields),
        Command::ProvDelete { kind, ids } => prov_delete(daemon, origin, &kind, &ids),
        Command::ProvImport { kind, csv } => prov_import(daemon, origin, &kind, &csv),
        Command::ProvCopyTemplate { from, name, tenant } => {
            prov_copy_template(daemon, origin, &from, &name, &tenant)
        }
        Command::ProvFiles => prov_files(daemon).map(|r| match (&scope, r) {
            (Some(t), Reply::Files(mut f)) => {
                let prefix = format!("{t}/");
                f.files.retain(|file| file.path.starts_with(&prefix));
                f.problems.clear();
                // The tenant's own devices' warnings ("device MAC: ...").
                let own: std::collections::BTreeSet<&str> =
                    f.files.iter().map(|x| x.device.as_str()).collect();
                f.warnings.retain(|w| {
                    w.strip_prefix("device ")
                        .and_then(|rest| rest.split_once(':').map(|(mac, _)| mac))
                        .is_some_and(|mac| own.contains(mac))
                });
                Reply::Files(f)
            }
            (_, r) => r,
        }),
        Command::ProvFile { path } => prov_file(daemon, &path),
        Command::ProvUrls => prov_urls(daemon).map(|mut rows| {
            if let Some(t) = &scope {
                rows.retain(|r| &r.tenant == t);
            }
            Reply::ProvUrls(rows)
        }),
        Command::ProvRender { mac } => prov_render(daemon, &mac),
        Command::ProvPreview {
            mac,
            template,
            content,
        } => prov_preview(daemon, &mac, &template, &content),
        Command::ProvLog { mac } => prov_log(daemon, mac.as_deref()),
        Command::ProvUnknown => prov_unknown(daemon),
        Command::ProvRedirectStatus => super::redirect::status(daemon).map_err(store_error),
        Command::ProvRedirectSync => super::redirect::sync(daemon).map_err(store_error),
        Command::HaConfigure { fields } => ha_configure(daemon, origin, &fields),
        Command::HaShow => ha_show(daemon),
        Command::HaStatus => {
            let mut v = daemon.ha.borrow().status(daemon.clock.now());
            v.sync = daemon.sync.borrow().status(&daemon.store);
            Ok(Reply::HaStatus(Box::new(v)))
        }
        Command::HaSwitch => ha_admin(daemon, ha::AdminCommand::Switch),
        Command::HaDisable => ha_admin(daemon, ha::AdminCommand::Disable),
        Command::HaUnpair => ha_admin(daemon, ha::AdminCommand::Unpair),
        Command::HaPair => ha_admin(daemon, ha::AdminCommand::Pair),
        Command::AuditQuery(q) => super::audit::query(daemon, &q),
        Command::AuditShow { txid } => super::audit::show(daemon, txid),
        // Answered by the export thread (daemon/audit.rs) before reaching here.
        Command::AuditExport { .. } => Err(refuse(
            ErrorCode::Unavailable,
            "audit export is a streamed answer: use kpbx audit export",
        )),
        Command::AuditRestore { txid, force } => super::audit::restore(daemon, origin, txid, force),
        c @ (Command::UserList
        | Command::UserAdd { .. }
        | Command::UserSet { .. }
        | Command::UserDelete { .. }
        | Command::UserPasswd { .. }
        | Command::RoleList
        | Command::RoleAdd { .. }
        | Command::RoleSet { .. }
        | Command::RoleDelete { .. }) => super::users::handle(daemon, origin, c),
        Command::HaEvents => {
            Ok(Reply::HaEvents(daemon.ha.borrow().events(
                daemon.clock.now(),
                daemon.clock.wall().as_unix_micros(),
            )))
        }
        // Answered by the CDR adapter (daemon/cdr.rs) before reaching here.
        Command::CdrStatus | Command::CdrImport { .. } | Command::CdrExport(_) => Err(refuse(
            ErrorCode::Unavailable,
            "CDR commands are answered by the CDR adapter",
        )),
        Command::TaskAdd { .. }
        | Command::TaskSet { .. }
        | Command::TaskDelete { .. }
        | Command::TaskList
        | Command::TaskShow { .. }
        | Command::TaskRun { .. }
        | Command::TaskHistory { .. }
        | Command::MailConfigure { .. }
        | Command::MailShow
        | Command::MailTest { .. }
        | Command::MailRetry
        | Command::MailOutbox { .. } => Ok(super::task_cmds::handle(daemon, origin, command)),
    };
    result.unwrap_or_else(Reply::Error)
}

pub(super) type Handled = Result<Reply, ErrorView>;

pub(super) fn refuse(code: ErrorCode, message: impl Into<String>) -> ErrorView {
    ErrorView {
        code,
        message: message.into(),
    }
}

pub(super) fn store_error(e: StoreError) -> ErrorView {
    // The details go to the log, never to the client.
    log::error!("store: {e}");
    refuse(
        ErrorCode::Store,
        "the store failed (details in the daemon log)",
    )
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
        services: services(daemon, &stats),
    }))
}

fn services(daemon: &Daemon, stats: &crate::store::Stats) -> Vec<ServiceView> {
    let service = |name: &str, state: &str, detail: String, listen: Option<String>| ServiceView {
        name: name.to_string(),
        state: state.to_string(),
        detail,
        listen,
    };
    let prov = daemon.prov.borrow();
    let files = prov.files().count();
    let problems = prov.problems().len();
    let idle = prov.idle().len();
    vec![
        service(
            "store",
            "running",
            format!(
                "LMDB schema {}, {} objects, {} audit entries",
                stats.schema, stats.objects, stats.audit_entries
            ),
            None,
        ),
        service(
            "control",
            "running",
            format!("listening on {}", daemon.config.control_socket.display()),
            None,
        ),
        service(
            "provisioning",
            if problems == 0 { "running" } else { "degraded" },
            format!(
                "{files} generated files, {} devices without files ({problems} by an error, \
                 {idle} disabled or without an account)",
                problems + idle
            ),
            None,
        ),
        listener("tftp", daemon.tftp),
        listener("http", daemon.http),
        listener("https", daemon.https),
        {
            let (state, detail) = daemon.ha.borrow().service(daemon.clock.now());
            service("ha", &state, detail, None)
        },
        {
            let (mut state, mut detail) = daemon.sip_pnp.borrow().clone();
            // Switched to multitenant mode while running: the responder has
            // no single tenant's files to point at and answers nothing.
            let multitenant = daemon
                .store
                .setting(crate::model::SettingKey::Multitenant)
                .is_ok_and(|v| v == "on");
            if multitenant && state != "disabled" {
                state = "disabled";
                detail = "multitenant mode (answers nothing)".to_string();
            }
            service("sip_pnp", state, detail, None)
        },
        listener("mgmt", daemon.mgmt),
        {
            let v = daemon.sync.borrow().status(&daemon.store);
            let state = match v.role.as_str() {
                "none" => "idle",
                _ => "running",
            };
            let peer = v.peer_seq.map_or("-".to_string(), |p| p.to_string());
            let detail = format!(
                "{} ({}), transaction {} here, {peer} at the peer",
                v.mode, v.role, v.local_seq
            );
            service("ha_sync", state, detail, None)
        },
    ]
}

fn listener(name: &str, addr: Option<std::net::SocketAddr>) -> ServiceView {
    match addr {
        Some(addr) => ServiceView {
            name: name.to_string(),
            state: "running".to_string(),
            detail: format!("listening on {addr}"),
            listen: Some(addr.to_string()),
        },
        None => ServiceView {
            name: name.to_string(),
            state: "disabled".to_string(),
            detail: format!("{name}_listen = off"),
            listen: None,
        },
    }
}

pub(super) fn stored_ha(daemon: &Daemon) -> Result<Option<HaSettings>, ErrorView> {
    match daemon.store.get(Kind::Ha, HA_ID).map_err(store_error)? {
        Some(Object::Ha(h)) => Ok(Some(h)),
        _ => Ok(None),
    }
}

fn ha_configure(daemon: &Daemon, origin: &Origin, fields: &[(String, String)]) -> Handled {
    if fields.is_empty() {
        return Err(refuse(ErrorCode::Invalid, "nothing to configure"));
    }
    let prev = stored_ha(daemon)?;
    let next = HaSettings::from_fields(prev.as_ref(), fields)
        .map_err(|e| refuse(ErrorCode::Invalid, e))?;
    let pairing_changed = prev.as_ref().is_none_or(|p| {
        p.config.role != next.config.role
            || p.config.remote_serial != next.config.remote_serial
            || p.config.pairing_code != next.config.pairing_code
    });
    let reply = commit(daemon, origin, &[Change::put(Object::Ha(next.clone()))])?;
    if let Reply::Committed(c) = &reply
        && c.txid.is_some()
    {
        let mut rt = daemon.ha.borrow_mut();
        if pairing_changed {
            rt.forget_key();
        }
        if !rt.reconfigure(daemon.clock.now(), &next) {
            rt.request_restart();
        }
    }
    Ok(reply)
}

fn ha_show(daemon: &Daemon) -> Handled {
    let h = stored_ha(daemon)?.unwrap_or_default();
    Ok(Reply::Objects(vec![object_view(&Object::Ha(h), false)]))
}

fn ha_admin(daemon: &Daemon, cmd: ha::AdminCommand) -> Handled {
    let now = daemon.clock.now();
    let result = daemon.ha.borrow_mut().admin(now, cmd);
    match result {
        Ok(()) => Ok(Reply::HaStatus(Box::new(daemon.ha.borrow().status(now)))),
        Err(e) => Err(refuse(ErrorCode::Invalid, e)),
    }
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
        .map(|(k, v)| Setting::parse(k, v).map(|s| Change::put(Object::Setting(s))))
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
pub(super) fn commit(daemon: &Daemon, origin: &Origin, changes: &[Change]) -> Handled {
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
        // Provisioning objects, the HA configuration (the resource address)
        // and the settings that feed placeholders change generated files;
        // regeneration rewrites only what differs. Tasks, mail, users and
        // the other settings do not: no need to render every file again.
        if changes.iter().any(|(_, r, _)| r.feeds_provisioning()) {
            daemon.regenerate();
        }
        let touched: Vec<ObjectRef> = changes.iter().map(|(_, r, _)| r.clone()).collect();
        if touched
            .iter()
            .any(|r| matches!(r.kind, Kind::Device | Kind::RedirectServer))
            && let Err(e) = super::redirect::reconcile(daemon, &touched)
        {
            log::error!("redirect: {e}");
        }
        daemon
            .tasks
            .borrow_mut()
            .sync(&daemon.store, daemon.clock.wall().to_timestamp());
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

// ------------------------------------------------------------ provisioning

/// Tasks and mail are not provisioning objects: a `provisioning:write`
/// caller must not reach them through `ProvSet`/`ProvDelete`.
fn prov_kind(name: &str) -> Result<Kind, ErrorView> {
    Kind::provisioning(name).ok_or_else(|| {
        let known: Vec<&str> = Kind::PROVISIONING.iter().map(|k| k.as_str()).collect();
        refuse(
            ErrorCode::Invalid,
            format!("unknown object type {name:?} (known: {})", known.join(", ")),
        )
    })
}

pub(super) fn object_view(o: &Object, builtin: bool) -> ObjectView {
    ObjectView {
        object_type: o.kind().as_str().to_string(),
        id: o.id(),
        builtin,
        fields: o
            .fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    }
}

/// Built-in objects of a kind, as objects.
fn builtins(kind: Kind) -> Vec<Object> {
    let c = provision::catalogue::catalogue();
    match kind {
        Kind::Brand => c
            .brands
            .iter()
            .map(|b| {
                Object::Brand(Brand {
                    name: b.to_string(),
                })
            })
            .collect(),
        Kind::Model => c.models.iter().cloned().map(Object::Model).collect(),
        Kind::Template => c.templates.iter().cloned().map(Object::Template).collect(),
        _ => Vec::new(),
    }
}

fn prov_list(daemon: &Daemon, kind: &str) -> Handled {
    let kind = prov_kind(kind)?;
    let mut views: Vec<ObjectView> = builtins(kind)
        .iter()
        .map(|o| object_view(o, true))
        .collect();
    let stored = daemon.store.list(kind).map_err(store_error)?;
    views.extend(stored.iter().map(|o| object_view(o, false)));
    Ok(Reply::Objects(views))
}

fn prov_show(daemon: &Daemon, kind: &str, id: &str) -> Handled {
    let kind = prov_kind(kind)?;
    let id = normalise_id(kind, id)?;
    if let Some(o) = daemon.store.get(kind, &id).map_err(store_error)? {
        let mut view = object_view(&o, false);
        if let Object::Device(d) = &o {
            view.fields
                .extend(super::redirect::device_fields(daemon, d));
        }
        return Ok(Reply::Objects(vec![view]));
    }
    match builtins(kind).into_iter().find(|o| o.id() == id) {
        Some(o) => Ok(Reply::Objects(vec![object_view(&o, true)])),
        None => Err(refuse(
            ErrorCode::NotFound,
            format!("{} {id:?} does not exist", kind.as_str()),
        )),
    }
}

/// Devices are named by MAC in any accepted format.
fn normalise_id(kind: Kind, id: &str) -> Result<String, ErrorView> {
    match kind {
        Kind::Device => Mac::parse(id)
            .map(|m| m.to_string())
            .map_err(|e| refuse(ErrorCode::Invalid, e)),
        _ => Ok(id.to_string()),
    }
}

fn prov_add(daemon: &Daemon, origin: &Origin, kind: &str, fields: &[(String, String)]) -> Handled {
    let kind = prov_kind(kind)?;
    let object =
        Object::from_fields(kind, None, fields).map_err(|e| refuse(ErrorCode::Invalid, e))?;
    let exists = daemon
        .store
        .get(kind, &object.id())
        .map_err(store_error)?
        .is_some();
    if exists {
        return Err(refuse(
            ErrorCode::Invalid,
            format!(
                "{} {} already exists; use set to change it",
                kind.as_str(),
                object.id()
            ),
        ));
    }
    commit(daemon, origin, &[Change::put(object)])
}

fn prov_set(
    daemon: &Daemon,
    origin: &Origin,
    kind: &str,
    id: &str,
    fields: &[(String, String)],
) -> Handled {
    let kind = prov_kind(kind)?;
    let id = normalise_id(kind, id)?;
    let Some(prev) = daemon.store.get(kind, &id).map_err(store_error)? else {
        if builtins(kind).iter().any(|o| o.id() == id) {
            return Err(refuse(
                ErrorCode::Invalid,
                format!(
                    "{} {id} is built in and read-only; copy it to change it",
                    kind.as_str()
                ),
            ));
        }
        return Err(refuse(
            ErrorCode::NotFound,
            format!("{} {id:?} does not exist", kind.as_str()),
        ));
    };
    let object = Object::from_fields(kind, Some(&prev), fields)
        .map_err(|e| refuse(ErrorCode::Invalid, e))?;
    commit(daemon, origin, &[Change::put(object)])
}

fn prov_delete(daemon: &Daemon, origin: &Origin, kind: &str, ids: &[String]) -> Handled {
    let kind = prov_kind(kind)?;
    let changes = ids
        .iter()
        .map(|id| normalise_id(kind, id).map(|id| Change::Delete(ObjectRef { kind, id })))
        .collect::<Result<Vec<_>, _>>()?;
    if changes.is_empty() {
        return Err(refuse(ErrorCode::Invalid, "nothing to delete"));
    }
    commit(daemon, origin, &changes)
}

/// Most rows one import takes.
const MAX_IMPORT_ROWS: usize = 100_000;

fn prov_import(daemon: &Daemon, origin: &Origin, kind: &str, csv: &str) -> Handled {
    let kind = prov_kind(kind)?;
    let rows = csv_rows(csv).map_err(|e| refuse(ErrorCode::Invalid, e))?;
    let Some(((_, header), body)) = rows.split_first() else {
        return Err(refuse(ErrorCode::Invalid, "the CSV file is empty"));
    };
    if body.len() > MAX_IMPORT_ROWS {
        return Err(refuse(
            ErrorCode::Invalid,
            format!("{} rows; at most {MAX_IMPORT_ROWS} per import", body.len()),
        ));
    }
    let mut errors = Vec::new();
    let mut changes = Vec::new();
    let mut lines: Vec<(u64, String)> = Vec::new();
    for (line, row) in body {
        if row.iter().all(String::is_empty) {
            continue;
        }
        if row.len() != header.len() {
            errors.push(format!(
                "line {line}: {} fields, the header has {}",
                row.len(),
                header.len()
            ));
            continue;
        }
        let fields: Vec<(String, String)> = header
            .iter()
            .cloned()
            .zip(row.iter().cloned())
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let built = Object::from_fields(kind, None, &fields).and_then(|o| {
            // An existing object is updated with the row's fields.
            match daemon.store.get(kind, &o.id()) {
                Ok(Some(prev)) => Object::from_fields(kind, Some(&prev), &fields),
                Ok(None) => Ok(o),
                Err(e) => Err(e.to_string()),
            }
        });
        match built {
            Ok(o) => {
                lines.push((*line, o.id()));
                changes.push(Change::put(o));
            }
            Err(e) => errors.push(format!("line {line}: {e}")),
        }
    }
    if let Some(dup) = duplicate(&lines) {
        errors.push(dup);
    }
    if !errors.is_empty() {
        let total = errors.len();
        errors.truncate(20);
        let more = if total > 20 {
            format!("; and {} more", total - 20)
        } else {
            String::new()
        };
        return Err(refuse(
            ErrorCode::Invalid,
            format!("import refused, nothing saved: {}{more}", errors.join("; ")),
        ));
    }
    commit(daemon, origin, &changes).map_err(|mut e| {
        // Point a rule that names an object at its line.
        if let Some((line, _)) = lines.iter().find(|(_, id)| e.message.contains(id.as_str())) {
            e.message = format!("import refused, nothing saved: line {line}: {}", e.message);
        }
        e
    })
}

fn duplicate(lines: &[(u64, String)]) -> Option<String> {
    let mut seen: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
    for (line, id) in lines {
        if let Some(first) = seen.insert(id, *line) {
            return Some(format!("line {line}: {id} is also on line {first}"));
        }
    }
    None
}

/// CSV records with their first line numbers, fields unquoted.
fn csv_rows(csv: &str) -> Result<Vec<(u64, Vec<String>)>, String> {
    use crate::cdr::lines::{Splitter, SplitterConfig};
    let mut splitter = Splitter::new(SplitterConfig::CSV);
    let mut records = splitter.push(csv.as_bytes());
    if !csv.ends_with('\n') {
        records.extend(splitter.push(b"\n"));
    }
    records
        .into_iter()
        .map(|r| {
            let r = r.map_err(|m| format!("line {}: {}", m.line, m.reason))?;
            let fields = crate::cdr::master_csv::split_fields(&r.bytes)
                .map_err(|e| format!("line {}: {e}", r.line))?;
            Ok((
                r.line,
                fields
                    .into_iter()
                    .map(|f| f.text.trim().to_string())
                    .collect(),
            ))
        })
        .collect()
}

fn prov_copy_template(
    daemon: &Daemon,
    origin: &Origin,
    from: &str,
    name: &str,
    tenant: &Option<String>,
) -> Handled {
    let source = match daemon
        .store
        .get(Kind::Template, from)
        .map_err(store_error)?
    {
        Some(Object::Template(t)) => t,
        _ => provision::catalogue::catalogue()
            .templates
            .iter()
            .find(|t| t.name == from)
            .cloned()
            .ok_or_else(|| {
                refuse(
                    ErrorCode::NotFound,
                    format!("template {from:?} does not exist"),
                )
            })?,
    };
    let mut fields = vec![
        ("name".to_string(), name.to_string()),
        ("model".to_string(), source.model),
        ("content".to_string(), source.content),
    ];
    if let Some(t) = tenant {
        fields.push(("tenant".to_string(), t.clone()));
    }
    prov_add(daemon, origin, "template", &fields)
}

fn prov_files(daemon: &Daemon) -> Handled {
    let prov = daemon.prov.borrow();
    Ok(Reply::Files(FilesView {
        files: prov
            .files()
            .map(|f| FileView {
                path: f.path(),
                device: f.device.map(|m| m.to_string()).unwrap_or_default(),
                size: f.content.len() as u64,
            })
            .collect(),
        problems: prov.problems().to_vec(),
        warnings: prov.warnings().to_vec(),
        idle: prov.idle().to_vec(),
    }))
}

fn prov_urls(daemon: &Daemon) -> Result<Vec<ProvUrlView>, ErrorView> {
    let mut snapshot = daemon
        .prov
        .borrow()
        .snapshot(&daemon.store, &daemon.config, daemon.clock.wall())
        .map_err(store_error)?;
    // The ports the servers are bound to (a configured port 0 is chosen at
    // start).
    let mut bound = daemon.config.clone();
    bound.http_listen = daemon.http;
    bound.https_listen = daemon.https;
    snapshot.pbx.prov_base = super::provisioning::prov_base(&snapshot.pbx.pbx_address, &bound);
    let tftp = daemon.tftp.map(|a| match a.port() {
        69 => snapshot.pbx.pbx_address.clone(),
        port => format!("{}:{port}", snapshot.pbx.pbx_address),
    });
    Ok(crate::provision::urls::urls(&snapshot, tftp.as_deref())
        .into_iter()
        .map(|r| ProvUrlView {
            tenant: r.tenant.unwrap_or_default(),
            brand: r.brand,
            setting: r.setting,
            value: r.value,
        })
        .collect())
}

fn prov_file(daemon: &Daemon, path: &str) -> Handled {
    let prov = daemon.prov.borrow();
    // The MAC part of a name matches in any case, as phones ask.
    let file = prov
        .file(path)
        .or_else(|| prov.files().find(|f| f.path().eq_ignore_ascii_case(path)))
        .ok_or_else(|| refuse(ErrorCode::NotFound, format!("no generated file {path:?}")))?;
    Ok(Reply::FileContents(vec![FileContentView {
        path: file.path(),
        content: String::from_utf8_lossy(&file.content).into_owned(),
    }]))
}

fn prov_render(daemon: &Daemon, mac: &str) -> Handled {
    let mac = Mac::parse(mac).map_err(|e| refuse(ErrorCode::Invalid, e))?;
    let snapshot = prov_snapshot(daemon)?;
    file_contents(provision::preview(&snapshot, mac))
}

fn prov_preview(daemon: &Daemon, mac: &str, template: &str, content: &str) -> Handled {
    let mac = Mac::parse(mac).map_err(|e| refuse(ErrorCode::Invalid, e))?;
    let snapshot = prov_snapshot(daemon)?;
    file_contents(provision::preview_draft(snapshot, mac, template, content))
}

fn prov_snapshot(daemon: &Daemon) -> Result<provision::Snapshot, ErrorView> {
    daemon
        .prov
        .borrow()
        .snapshot(&daemon.store, &daemon.config, daemon.clock.wall())
        .map_err(store_error)
}

fn file_contents(files: Result<Vec<provision::File>, String>) -> Handled {
    let files = files.map_err(|e| refuse(ErrorCode::Invalid, e))?;
    Ok(Reply::FileContents(
        files
            .into_iter()
            .map(|f| FileContentView {
                path: f.path(),
                content: String::from_utf8_lossy(&f.content).into_owned(),
            })
            .collect(),
    ))
}

fn prov_log(daemon: &Daemon, mac: Option<&str>) -> Handled {
    let mac = mac
        .map(Mac::parse)
        .transpose()
        .map_err(|e| refuse(ErrorCode::Invalid, e))?;
    Ok(Reply::Fetches(
        daemon
            .protect
            .fetches(mac)
            .into_iter()
            .map(|(device, f)| FetchView {
                device: device.to_string(),
                time_us: f.time.as_unix_micros(),
                protocol: f.protocol.to_string(),
                address: f.address.to_string(),
                user_agent: f.user_agent,
                file: f.file,
                result: f.result,
                bytes: f.bytes,
            })
            .collect(),
    ))
}

fn prov_unknown(daemon: &Daemon) -> Handled {
    Ok(Reply::Unknown(UnknownView {
        devices: daemon
            .protect
            .unknown()
            .into_iter()
            .map(|(mac, u)| UnknownDeviceView {
                mac: mac.to_string(),
                first_us: u.first.as_unix_micros(),
                last_us: u.last.as_unix_micros(),
                count: u.count,
                address: u.address.to_string(),
                user_agent: u.user_agent,
                file: u.file,
            })
            .collect(),
        blocked: daemon
            .protect
            .blocked()
            .into_iter()
            .map(|(ip, left)| BlockedView {
                address: ip.to_string(),
                seconds_left: left.as_secs(),
            })
            .collect(),
    }))
}
