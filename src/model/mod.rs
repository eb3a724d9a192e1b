//! Domain types of the configuration: the objects the store holds, who changes
//! them, and the changes themselves.
//!
//! Invariant: pure and free of storage concerns. An [`Object`] is valid by
//! construction (parse, don't validate); how it is laid out on disk lives in
//! `store::records`, never here. Domain types are not `Serialize`.

pub mod access;
pub mod ha;
pub mod prov;
pub mod setting;
pub mod task;

use std::fmt;
use std::net::IpAddr;

pub use access::{Role, User};
pub use ha::{HA_ID, HaSettings, SerialSource};
pub use prov::{
    Account, Brand, Device, DeviceModel, Mac, Placeholder, RedirectServer, Template, Tenant,
};
pub use setting::{Setting, SettingKey};
pub use task::{MAIL_ID, MailSettings, Task};

/// Where a change came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The local console: the control socket.
    Console,
    /// A network client (the management API, a peer).
    Address(IpAddr),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Console => f.write_str("console"),
            Source::Address(ip) => write!(f, "{ip}"),
        }
    }
}

/// Who makes a change and from where; recorded in every audit entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub user: String,
    pub source: Source,
}

/// What a change did to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// The type of a configuration object. Each later area adds its kinds here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Setting,
    Tenant,
    Account,
    Brand,
    Model,
    Template,
    Device,
    Placeholder,
    RedirectServer,
    /// The HA configuration (a singleton, id `ha`).
    Ha,
    /// A scheduled task (id: a number).
    Task,
    /// The SMTP settings (a singleton, id `mail`).
    Mail,
    /// A user of the console or the management API (id: the name).
    User,
    /// A custom role (id: the name); built-in roles are not stored.
    Role,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[
        Kind::Setting,
        Kind::Tenant,
        Kind::Account,
        Kind::Brand,
        Kind::Model,
        Kind::Template,
        Kind::Device,
        Kind::Placeholder,
        Kind::RedirectServer,
        Kind::Ha,
        Kind::Task,
        Kind::Mail,
        Kind::User,
        Kind::Role,
    ];

    /// The stable name, used in keys on disk, in the audit log and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Setting => "setting",
            Kind::Tenant => "tenant",
            Kind::Account => "account",
            Kind::Brand => "brand",
            Kind::Model => "model",
            Kind::Template => "template",
            Kind::Device => "device",
            Kind::Placeholder => "placeholder",
            Kind::RedirectServer => "redirect_server",
            Kind::Ha => "ha",
            Kind::Task => "task",
            Kind::Mail => "mail",
            Kind::User => "user",
            Kind::Role => "role",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == name)
    }

    /// The kinds `prov KIND …` (`Command::Prov*`) manage. Settings, HA,
    /// tasks, mail, users and roles have commands (and permissions) of
    /// their own and are not reachable through the provisioning commands.
    pub const PROVISIONING: [Kind; 8] = [
        Kind::Tenant,
        Kind::Account,
        Kind::Brand,
        Kind::Model,
        Kind::Template,
        Kind::Device,
        Kind::Placeholder,
        Kind::RedirectServer,
    ];

    /// A provisioning kind by name ([`Kind::PROVISIONING`]).
    pub fn provisioning(name: &str) -> Option<Kind> {
        Kind::PROVISIONING
            .iter()
            .copied()
            .find(|k| k.as_str() == name)
    }
}

/// A configuration object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    Setting(Setting),
    Tenant(Tenant),
    Account(Account),
    Brand(Brand),
    Model(DeviceModel),
    Template(Template),
    Device(Device),
    Placeholder(Placeholder),
    RedirectServer(RedirectServer),
    Ha(HaSettings),
    Task(Task),
    Mail(MailSettings),
    User(User),
    Role(Role),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Setting(_) => Kind::Setting,
            Object::Tenant(_) => Kind::Tenant,
            Object::Account(_) => Kind::Account,
            Object::Brand(_) => Kind::Brand,
            Object::Model(_) => Kind::Model,
            Object::Template(_) => Kind::Template,
            Object::Device(_) => Kind::Device,
            Object::Placeholder(_) => Kind::Placeholder,
            Object::RedirectServer(_) => Kind::RedirectServer,
            Object::Ha(_) => Kind::Ha,
            Object::Task(_) => Kind::Task,
            Object::Mail(_) => Kind::Mail,
            Object::User(_) => Kind::User,
            Object::Role(_) => Kind::Role,
        }
    }

    /// The object's id, unique within its kind.
    pub fn id(&self) -> String {
        match self {
            Object::Setting(s) => s.key.name().to_string(),
            Object::Tenant(t) => t.uuid.clone(),
            Object::Account(a) => a.id(),
            Object::Brand(b) => b.name.clone(),
            Object::Model(m) => m.name.clone(),
            Object::Template(t) => t.id(),
            Object::Device(d) => d.mac.to_string(),
            Object::Placeholder(p) => p.id(),
            Object::RedirectServer(r) => r.name.clone(),
            Object::Ha(h) => h.id(),
            Object::Task(t) => t.id.to_string(),
            Object::Mail(_) => MAIL_ID.to_string(),
            Object::User(u) => u.name.clone(),
            Object::Role(r) => r.name.clone(),
        }
    }

    /// Field names and values for display and diffs. Secrets are never
    /// returned in clear: their value is replaced by a fixed mask.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        match self {
            Object::Setting(s) => vec![("value", s.value().to_string())],
            Object::Tenant(o) => o.fields(),
            Object::Account(o) => o.fields(),
            Object::Brand(o) => o.fields(),
            Object::Model(o) => o.fields(),
            Object::Template(o) => o.fields(),
            Object::Device(o) => o.fields(),
            Object::Placeholder(o) => o.fields(),
            Object::RedirectServer(o) => o.fields(),
            Object::Ha(o) => o.fields(),
            Object::Task(o) => o.fields(),
            Object::Mail(o) => o.fields(),
            Object::User(o) => o.fields(),
            Object::Role(o) => o.fields(),
        }
    }

    /// The raw values of the object's secret fields, by the names
    /// [`Object::fields`] shows them under (masked). Only for deciding whether
    /// a secret changed; never shown.
    pub fn secrets(&self) -> Vec<(&'static str, String)> {
        match self {
            Object::Account(a) => vec![("sip_password", a.sip_password.clone())],
            Object::Device(d) => vec![
                ("phone_password", d.phone_password.clone()),
                ("http_password", d.http_password.clone()),
            ],
            Object::Mail(m) => vec![("password", m.password.clone())],
            Object::RedirectServer(r) => vec![
                ("password", r.password.clone()),
                ("access_key_secret", r.access_key_secret.clone()),
            ],
            Object::Ha(h) => vec![(
                "pairing_code",
                h.config.pairing_code.clone().unwrap_or_default(),
            )],
            Object::User(u) => vec![("password", u.password_hash.clone())],
            Object::Setting(_)
            | Object::Role(_)
            | Object::Tenant(_)
            | Object::Brand(_)
            | Object::Model(_)
            | Object::Template(_)
            | Object::Placeholder(_)
            | Object::Task(_) => Vec::new(),
        }
    }

    /// Builds an object of `kind` from `key=value` fields over its previous
    /// state (`None` to create). Settings are not built this way.
    pub fn from_fields(
        kind: Kind,
        prev: Option<&Object>,
        fields: &[(String, String)],
    ) -> Result<Object, String> {
        if kind == Kind::Ha {
            let prev = match prev {
                Some(Object::Ha(p)) => Some(p),
                _ => None,
            };
            return HaSettings::from_fields(prev, fields).map(Object::Ha);
        }
        let mut f = prov::Fields::new(fields)?;
        if kind == Kind::Mail {
            let prev = match prev {
                Some(Object::Mail(p)) => Some(p),
                _ => None,
            };
            let mail = MailSettings::from_fields(prev, &mut f)?;
            f.finish("mail")?;
            return Ok(Object::Mail(mail));
        }
        let object = match (kind, prev) {
            (Kind::Tenant, None) => Object::Tenant(Tenant::from_fields(None, &mut f)?),
            (Kind::Tenant, Some(Object::Tenant(p))) => {
                Object::Tenant(Tenant::from_fields(Some(p), &mut f)?)
            }
            (Kind::Account, None) => Object::Account(Account::from_fields(None, &mut f)?),
            (Kind::Account, Some(Object::Account(p))) => {
                Object::Account(Account::from_fields(Some(p), &mut f)?)
            }
            (Kind::Brand, None) => Object::Brand(Brand::from_fields(None, &mut f)?),
            (Kind::Brand, Some(Object::Brand(p))) => {
                Object::Brand(Brand::from_fields(Some(p), &mut f)?)
            }
            (Kind::Model, None) => Object::Model(DeviceModel::from_fields(None, &mut f)?),
            (Kind::Model, Some(Object::Model(p))) => {
                Object::Model(DeviceModel::from_fields(Some(p), &mut f)?)
            }
            (Kind::Template, None) => Object::Template(Template::from_fields(None, &mut f)?),
            (Kind::Template, Some(Object::Template(p))) => {
                Object::Template(Template::from_fields(Some(p), &mut f)?)
            }
            (Kind::Device, None) => Object::Device(Device::from_fields(None, &mut f)?),
            (Kind::Device, Some(Object::Device(p))) => {
                Object::Device(Device::from_fields(Some(p), &mut f)?)
            }
            (Kind::Placeholder, None) => {
                Object::Placeholder(Placeholder::from_fields(None, &mut f)?)
            }
            (Kind::Placeholder, Some(Object::Placeholder(p))) => {
                Object::Placeholder(Placeholder::from_fields(Some(p), &mut f)?)
            }
            (Kind::RedirectServer, None) => {
                Object::RedirectServer(RedirectServer::from_fields(None, &mut f)?)
            }
            (Kind::RedirectServer, Some(Object::RedirectServer(p))) => {
                Object::RedirectServer(RedirectServer::from_fields(Some(p), &mut f)?)
            }
            (Kind::User, None) => Object::User(User::from_fields(None, &mut f)?),
            (Kind::User, Some(Object::User(p))) => {
                Object::User(User::from_fields(Some(p), &mut f)?)
            }
            (Kind::Role, None) => Object::Role(Role::from_fields(None, &mut f)?),
            (Kind::Role, Some(Object::Role(p))) => {
                Object::Role(Role::from_fields(Some(p), &mut f)?)
            }
            (kind, _) => {
                return Err(format!(
                    "{} objects are not edited with fields",
                    kind.as_str()
                ));
            }
        };
        f.finish(kind.as_str())?;
        if let Some(p) = prev.filter(|p| p.id() != object.id()) {
            return Err(format!(
                "the id of {} {:?} cannot change",
                kind.as_str(),
                p.id()
            ));
        }
        Ok(object)
    }

    /// A one-line human description of a change to this object.
    pub fn describe_change(&self, action: Action) -> String {
        match (self, action) {
            (Object::Setting(s), Action::Delete) => {
                format!("reset {} to its default", s.key.name())
            }
            (Object::Setting(s), _) => format!("set {} to {:?}", s.key.name(), s.value()),
            (Object::Ha(h), _) => format!("HA configuration saved (role {})", h.role_name()),
            (Object::Mail(m), _) => format!("mail settings saved (server {})", m.server),
            (Object::Task(t), action) => format!(
                "{} task {} {:?} ({})",
                action.as_str(),
                t.id,
                t.name,
                t.task_type.title()
            ),
            (o, action) => {
                let verb = match action {
                    Action::Create => "created",
                    Action::Update => "updated",
                    Action::Delete => "deleted",
                };
                format!("{verb} {} {}", o.kind().as_str().replace('_', " "), o.id())
            }
        }
    }
}

/// A reference to an object: its kind and id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: Kind,
    pub id: String,
}

impl ObjectRef {
    /// Whether a change to this object can change a generated provisioning
    /// file (provisioning objects, the HA resource address, and the
    /// settings the placeholders or the file servers read).
    pub fn feeds_provisioning(&self) -> bool {
        match self.kind {
            Kind::Setting => {
                SettingKey::from_name(&self.id).is_none_or(SettingKey::feeds_provisioning)
            }
            Kind::Tenant
            | Kind::Account
            | Kind::Brand
            | Kind::Model
            | Kind::Template
            | Kind::Device
            | Kind::Placeholder
            | Kind::RedirectServer
            | Kind::Ha => true,
            Kind::Task | Kind::Mail | Kind::User | Kind::Role => false,
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.kind.as_str(), self.id)
    }
}

/// One requested change. A commit takes a list of them as one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Create the object, or replace the one with the same kind and id.
    Put(Box<Object>),
    /// Delete the object; deleting an absent object is an error.
    Delete(ObjectRef),
}

impl Change {
    pub fn put(object: Object) -> Change {
        Change::Put(Box::new(object))
    }

    pub fn target(&self) -> ObjectRef {
        match self {
            Change::Put(o) => ObjectRef {
                kind: o.kind(),
                id: o.id(),
            },
            Change::Delete(r) => r.clone(),
        }
    }
}
