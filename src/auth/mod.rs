//! Who may do what: the permission each [`Command`] needs, the decision
//! for a caller's role, and password hashing.
//!
//! Invariant: the decision is pure (role in, allowed or the missing
//! permission out); `daemon::access` looks the caller up in the store.
//! Passwords are kept only as PBKDF2-HMAC-SHA256 hashes with a random salt
//! and a high iteration count, compared in constant time.

pub mod api;
pub mod password;
pub mod scope;
pub mod session;

use crate::control::Command;
use crate::model::access::{Access, Area, Permission, Role};

impl Command {
    /// The area a command belongs to. No wildcard: a new command must say.
    pub fn area(&self) -> Area {
        match self {
            Command::Status
            | Command::SystemShow
            | Command::SystemSet { .. }
            | Command::SystemUnset { .. } => Area::System,
            Command::AuditList { .. }
            | Command::AuditVerify
            | Command::AuditQuery(_)
            | Command::AuditExport { .. }
            | Command::AuditShow { .. }
            | Command::AuditRestore { .. } => Area::Audit,
            Command::ProvList { .. }
            | Command::ProvShow { .. }
            | Command::ProvAdd { .. }
            | Command::ProvSet { .. }
            | Command::ProvDelete { .. }
            | Command::ProvImport { .. }
            | Command::ProvCopyTemplate { .. }
            | Command::ProvFiles
            | Command::ProvFile { .. }
            | Command::ProvRender { .. }
            | Command::ProvLog { .. }
            | Command::ProvUnknown
            | Command::ProvRedirectStatus
            | Command::ProvRedirectSync
            | Command::ProvUrls => Area::Provisioning,
            Command::CdrStatus | Command::CdrImport { .. } | Command::CdrExport(_) => Area::Cdr,
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
            | Command::MailOutbox { .. } => Area::Tasks,
            Command::HaConfigure { .. }
            | Command::HaStatus
            | Command::HaSwitch
            | Command::HaDisable
            | Command::HaUnpair
            | Command::HaPair
            | Command::HaEvents
            | Command::HaShow => Area::Ha,
            Command::UserList
            | Command::UserAdd { .. }
            | Command::UserSet { .. }
            | Command::UserDelete { .. }
            | Command::UserPasswd { .. }
            | Command::RoleList
            | Command::RoleAdd { .. }
            | Command::RoleSet { .. }
            | Command::RoleDelete { .. } => Area::Users,
        }
    }

    /// The permission a command needs: its area, write if it changes
    /// anything.
    pub fn permission(&self) -> Permission {
        Permission {
            area: self.area(),
            access: if self.is_change() {
                Access::Write
            } else {
                Access::Read
            },
        }
    }
}

/// Whether `user` with `role` may run `command`; the error names the
/// missing permission.
pub fn decide(user: &str, role: &Role, command: &Command) -> Result<(), String> {
    // Everyone may set their own password.
    if let Command::UserPasswd { name, .. } = command
        && name == user
    {
        return Ok(());
    }
    let wanted = command.permission();
    if role.grants(wanted) {
        Ok(())
    } else {
        Err(format!(
            "permission denied: user {user:?} (role {}) lacks {wanted}",
            role.name
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::access::{ADMIN, SUPERVISOR};

    #[test]
    fn refusals_name_the_missing_permission() {
        let sup = Role::builtin(SUPERVISOR).unwrap();
        assert!(decide("s", &sup, &Command::Status).is_ok());
        let e = decide("s", &sup, &Command::AuditVerify).unwrap_err();
        assert!(e.ends_with("lacks audit:read"), "{e}");
        let e = decide("s", &sup, &Command::HaSwitch).unwrap_err();
        assert!(e.ends_with("lacks ha:write"), "{e}");
        let own = Command::UserPasswd {
            name: "s".into(),
            password: "x".into(),
        };
        assert!(decide("s", &sup, &own).is_ok());
        let other = Command::UserPasswd {
            name: "t".into(),
            password: "x".into(),
        };
        assert!(decide("s", &sup, &other).is_err());
        let admin = Role::builtin(ADMIN).unwrap();
        assert!(decide("a", &admin, &Command::HaSwitch).is_ok());
    }
}
