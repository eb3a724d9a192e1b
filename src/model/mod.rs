//! Domain types of the configuration: the objects the store holds, who changes
//! them, and the changes themselves.
//!
//! Invariant: pure and free of storage concerns. An [`Object`] is valid by
//! construction (parse, don't validate); how it is laid out on disk lives in
//! `store::records`, never here. Domain types are not `Serialize`.

pub mod setting;

use std::fmt;
use std::net::IpAddr;

pub use setting::{Setting, SettingKey};

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
}

impl Kind {
    pub const ALL: &'static [Kind] = &[Kind::Setting];

    /// The stable name, used in keys on disk, in the audit log and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Setting => "setting",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == name)
    }
}

/// A configuration object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    Setting(Setting),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Setting(_) => Kind::Setting,
        }
    }

    /// The object's id, unique within its kind.
    pub fn id(&self) -> String {
        match self {
            Object::Setting(s) => s.key.name().to_string(),
        }
    }

    /// Field names and values for display and diffs. Secrets are never
    /// returned in clear: their value is replaced by a fixed mask.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        match self {
            Object::Setting(s) => vec![("value", s.value().to_string())],
        }
    }

    /// A one-line human description of a change from `before` to `self`.
    pub fn describe_change(&self, action: Action) -> String {
        match (self, action) {
            (Object::Setting(s), Action::Delete) => {
                format!("reset {} to its default", s.key.name())
            }
            (Object::Setting(s), _) => format!("set {} to {:?}", s.key.name(), s.value()),
        }
    }
}

/// A reference to an object: its kind and id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    pub kind: Kind,
    pub id: String,
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
    Put(Object),
    /// Delete the object; deleting an absent object is an error.
    Delete(ObjectRef),
}

impl Change {
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
