//! Users, roles and the permission check every request passes before its
//! handler. Called only by the event loop.

use super::Daemon;
use super::handlers::{Handled, commit, refuse, store_error};
use crate::auth::{self, password};
use crate::control::{Command, ErrorCode, ErrorView, ObjectView, Reply};
use crate::model::access::{ADMIN, Role};
use crate::model::{Change, Kind, Object, ObjectRef, Origin, Source, User};

/// The Unix user that is `admin` on the console when no kpbx user of the
/// same name exists.
pub const CONSOLE_ROOT: &str = "root";

/// Who the caller is, as far as permissions go.
pub(super) struct Caller {
    pub role: Role,
    /// In multitenant mode, the tenant a tenant-scoped role works in.
    pub scope: Option<String>,
}

/// Maps the caller to a role: a stored user of that name (console callers
/// by their Unix user name, API callers by their login), else, on the
/// console only, root as `admin`.
pub(super) fn caller(daemon: &Daemon, origin: &Origin) -> Result<Caller, ErrorView> {
    let user = match daemon
        .store
        .get(Kind::User, &origin.user)
        .map_err(store_error)?
    {
        Some(Object::User(u)) => Some(u),
        _ => None,
    };
    let role_name = match (&user, &origin.source) {
        (Some(u), _) => u.role.clone(),
        (None, Source::Console) if origin.user == CONSOLE_ROOT => ADMIN.to_string(),
        (None, Source::Console) => {
            return Err(refuse(
                ErrorCode::Denied,
                format!(
                    "permission denied: Unix user {:?} is not a kpbx user (an admin can add it: \
                     kpbx user add {} role=ROLE)",
                    origin.user, origin.user
                ),
            ));
        }
        (None, Source::Address(_)) => {
            return Err(refuse(
                ErrorCode::Denied,
                format!("permission denied: no user {:?}", origin.user),
            ));
        }
    };
    let role = role(daemon, &role_name)?;
    let multitenant = daemon
        .store
        .setting(crate::model::SettingKey::Multitenant)
        .map_err(store_error)?
        == "on";
    let scope = match (&user, role.tenant_scoped && multitenant) {
        (_, false) => None,
        (Some(u), true) => match &u.tenant {
            Some(t) => Some(t.clone()),
            None => {
                return Err(refuse(
                    ErrorCode::Denied,
                    format!(
                        "permission denied: user {:?} has the tenant-scoped role {:?} but no tenant",
                        u.name, role.name
                    ),
                ));
            }
        },
        (None, true) => None,
    };
    Ok(Caller { role, scope })
}

pub(super) fn role(daemon: &Daemon, name: &str) -> Result<Role, ErrorView> {
    if let Some(r) = Role::builtin(name) {
        return Ok(r);
    }
    match daemon.store.get(Kind::Role, name).map_err(store_error)? {
        Some(Object::Role(r)) => Ok(r),
        _ => Err(refuse(
            ErrorCode::Denied,
            format!("permission denied: role {name:?} does not exist"),
        )),
    }
}

/// The check every request passes before its handler. Returns the tenant
/// the caller is confined to, if any (lists are then filtered to it).
pub(super) fn authorize(
    daemon: &Daemon,
    origin: &Origin,
    command: &Command,
) -> Result<Option<String>, ErrorView> {
    let caller = caller(daemon, origin)?;
    let own_password = matches!(command, Command::UserPasswd { name, .. } if *name == origin.user);
    if let Some(tenant) = caller.scope.as_deref().filter(|_| !own_password) {
        let device_tenant = |mac: &str| -> Option<Option<String>> {
            let mac = crate::model::Mac::parse(mac).ok()?;
            match daemon.store.get(Kind::Device, &mac.to_string()) {
                Ok(Some(Object::Device(d))) => Some(d.tenant),
                _ => None,
            }
        };
        auth::scope::within_tenant(tenant, command, &device_tenant).map_err(|m| {
            log::warn!("denied to {}@{}: {m}", origin.user, origin.source);
            refuse(ErrorCode::Denied, m)
        })?;
    }
    let scope = caller.scope.clone();
    auth::decide(&origin.user, &caller.role, command).map_err(|m| {
        log::warn!(
            "denied {} to {}@{}: {m}",
            command.permission(),
            origin.user,
            origin.source
        );
        refuse(ErrorCode::Denied, m)
    })?;
    // On the HA passive node only the node's own HA commands change anything.
    if command.is_change() && command.permission().area != crate::model::access::Area::Ha {
        super::sync::may_change(daemon).map_err(|m| refuse(ErrorCode::Unavailable, m))?;
    }
    Ok(scope)
}

fn view(o: &Object, builtin: bool) -> ObjectView {
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

/// The password a command sets, if any (`user add/set password=`, `user
/// passwd`).
fn new_password(command: &Command) -> Option<&str> {
    match command {
        Command::UserAdd { fields } | Command::UserSet { fields, .. } => fields
            .iter()
            .find(|(k, _)| k == "password")
            .map(|(_, v)| v.as_str()),
        Command::UserPasswd { password, .. } => Some(password),
        _ => None,
    }
}

/// Commands that set a password are hashed on the hashing pool
/// (`workers::HashPool`; 600,000 PBKDF2 rounds would stall the loop); a
/// full queue is answered "busy" at once. The command comes back as
/// `Event::UserHashed` and is finished by [`handle_prehashed`].
pub(super) fn offload(
    daemon: &Daemon,
    origin: &Origin,
    command: Command,
    reply: &smol::channel::Sender<Reply>,
) -> Option<Command> {
    let Some(plain) = new_password(&command) else {
        return Some(command);
    };
    if let Err(m) = password::check_new(plain) {
        let _ = reply.try_send(Reply::Error(refuse(ErrorCode::Invalid, m)));
        return None;
    }
    let plain = plain.to_string();
    let (events, origin, busy) = (daemon.events.clone(), origin.clone(), reply.clone());
    let reply = reply.clone();
    let queued = daemon.hash.submit(move || {
        let hash = password::hash(&plain, password::ITERATIONS);
        let _ = events.send_blocking(super::Event::UserHashed {
            origin,
            command,
            hash,
            reply,
        });
    });
    if queued.is_err() {
        let _ = busy.try_send(Reply::Error(refuse(
            ErrorCode::Unavailable,
            "busy: too many password changes at once; try again in a few seconds",
        )));
    }
    None
}

/// Finishes a password-setting command with the hash computed off the loop.
pub(super) fn handle_prehashed(
    daemon: &Daemon,
    origin: &Origin,
    command: Command,
    hash: Result<String, String>,
) -> Reply {
    let result = hash
        .map_err(|m| refuse(ErrorCode::Unavailable, m))
        .and_then(|h| {
            // The caller's rights may have changed meanwhile.
            authorize(daemon, origin, &command)?;
            handle_with(daemon, origin, command, Some(h))
        });
    result.unwrap_or_else(Reply::Error)
}

pub(super) fn handle(daemon: &Daemon, origin: &Origin, command: Command) -> Handled {
    handle_with(daemon, origin, command, None)
}

fn handle_with(
    daemon: &Daemon,
    origin: &Origin,
    command: Command,
    prehashed: Option<String>,
) -> Handled {
    match command {
        Command::UserList => {
            let users = daemon.store.list(Kind::User).map_err(store_error)?;
            Ok(Reply::Objects(
                users.iter().map(|u| view(u, false)).collect(),
            ))
        }
        Command::RoleList => {
            let mut out: Vec<ObjectView> = Role::builtins()
                .into_iter()
                .map(|r| view(&Object::Role(r), true))
                .collect();
            let stored = daemon.store.list(Kind::Role).map_err(store_error)?;
            out.extend(stored.iter().map(|r| view(r, false)));
            Ok(Reply::Objects(out))
        }
        Command::UserAdd { fields } => put_user(daemon, origin, None, fields, prehashed),
        Command::UserSet { name, fields } => {
            let prev = existing_user(daemon, &name)?;
            put_user(daemon, origin, Some(prev), fields, prehashed)
        }
        Command::UserPasswd { name, password } => {
            let mut user = existing_user(daemon, &name)?;
            password::check_new(&password).map_err(|m| refuse(ErrorCode::Invalid, m))?;
            user.password_hash = prehashed.ok_or_else(not_hashed)?;
            commit(daemon, origin, &[Change::put(Object::User(user))])
        }
        Command::UserDelete { names } => delete(daemon, origin, Kind::User, names),
        Command::RoleAdd { fields } => put_role(daemon, origin, None, &fields),
        Command::RoleSet { name, fields } => {
            if Role::builtin(&name).is_some() {
                return Err(refuse(
                    ErrorCode::Invalid,
                    format!("role {name:?} is built in and cannot be changed"),
                ));
            }
            let prev = match daemon.store.get(Kind::Role, &name).map_err(store_error)? {
                Some(o @ Object::Role(_)) => o,
                _ => {
                    return Err(refuse(
                        ErrorCode::NotFound,
                        format!("role {name:?} does not exist"),
                    ));
                }
            };
            put_role(daemon, origin, Some(prev), &fields)
        }
        Command::RoleDelete { names } => {
            if let Some(n) = names.iter().find(|n| Role::builtin(n).is_some()) {
                return Err(refuse(
                    ErrorCode::Invalid,
                    format!("role {n:?} is built in and cannot be deleted"),
                ));
            }
            delete(daemon, origin, Kind::Role, names)
        }
        other => Err(refuse(
            ErrorCode::BadRequest,
            format!("not a user or role command: {}", other.permission()),
        )),
    }
}

/// PBKDF2 never runs on the loop: a password reaches here only hashed by
/// [`offload`] (every command goes through `route`, which offloads first).
fn not_hashed() -> ErrorView {
    refuse(
        ErrorCode::Unavailable,
        "password not hashed: commands that set one go through the hashing pool",
    )
}

fn existing_user(daemon: &Daemon, name: &str) -> Result<User, ErrorView> {
    match daemon.store.get(Kind::User, name).map_err(store_error)? {
        Some(Object::User(u)) => Ok(u),
        _ => Err(refuse(
            ErrorCode::NotFound,
            format!("user {name:?} does not exist"),
        )),
    }
}

fn put_user(
    daemon: &Daemon,
    origin: &Origin,
    prev: Option<User>,
    mut fields: Vec<(String, String)>,
    prehashed: Option<String>,
) -> Handled {
    let new_password = fields
        .iter()
        .position(|(k, _)| k == "password")
        .map(|i| fields.remove(i).1);
    let prev_object = prev.map(Object::User);
    let object = Object::from_fields(Kind::User, prev_object.as_ref(), &fields)
        .map_err(|m| refuse(ErrorCode::Invalid, m))?;
    let Object::User(mut user) = object else {
        return Err(refuse(ErrorCode::Invalid, "not a user"));
    };
    if prev_object.is_none()
        && daemon
            .store
            .get(Kind::User, &user.name)
            .map_err(store_error)?
            .is_some()
    {
        return Err(refuse(
            ErrorCode::Invalid,
            format!("user {:?} already exists", user.name),
        ));
    }
    granting(daemon, origin, &role(daemon, &user.role)?)?;
    if let Some(p) = new_password {
        password::check_new(&p).map_err(|m| refuse(ErrorCode::Invalid, m))?;
        user.password_hash = prehashed.ok_or_else(not_hashed)?;
    }
    commit(daemon, origin, &[Change::put(Object::User(user))])
}

/// The caller may hand out `granted` only if it holds every permission of
/// it (`auth::may_grant`).
fn granting(daemon: &Daemon, origin: &Origin, granted: &Role) -> Result<(), ErrorView> {
    let me = caller(daemon, origin)?;
    auth::may_grant(&me.role, granted).map_err(|m| {
        log::warn!("denied to {}@{}: {m}", origin.user, origin.source);
        refuse(ErrorCode::Denied, m)
    })
}

fn put_role(
    daemon: &Daemon,
    origin: &Origin,
    prev: Option<Object>,
    fields: &[(String, String)],
) -> Handled {
    let object = Object::from_fields(Kind::Role, prev.as_ref(), fields)
        .map_err(|m| refuse(ErrorCode::Invalid, m))?;
    if let Object::Role(r) = &object {
        granting(daemon, origin, r)?;
    }
    if prev.is_none()
        && daemon
            .store
            .get(Kind::Role, &object.id())
            .map_err(store_error)?
            .is_some()
    {
        return Err(refuse(
            ErrorCode::Invalid,
            format!("role {:?} already exists", object.id()),
        ));
    }
    commit(daemon, origin, &[Change::put(object)])
}

fn delete(daemon: &Daemon, origin: &Origin, kind: Kind, ids: Vec<String>) -> Handled {
    if ids.is_empty() {
        return Err(refuse(ErrorCode::Invalid, "nothing to delete"));
    }
    let changes: Vec<Change> = ids
        .into_iter()
        .map(|id| Change::Delete(ObjectRef { kind, id }))
        .collect();
    commit(daemon, origin, &changes)
}
