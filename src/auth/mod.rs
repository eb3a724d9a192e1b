//! Who may do what: the permission each [`Command`] needs, the decision
//! for a caller's role, and password hashing.
//!
//! Invariant: the decision is pure (role in, allowed or the missing
//! permission out); `daemon::access` looks the caller up in the store.
//! Passwords are kept only as PBKDF2-HMAC-SHA256 hashes with a random salt
//! and a high iteration count, compared in constant time.

pub mod api;
pub mod lockout;
pub mod password;
pub mod scope;
pub mod session;
pub mod table;

use crate::control::Command;
use crate::model::access::{Permission, Role};

impl Command {
    /// The permission a command needs ([`table::required`]; setting one's
    /// own password needs none).
    pub fn permission(&self) -> Permission {
        table::required(self).permission()
    }
}

/// Whether `user` with `role` may run `command` ([`table::required`]); the
/// error names the missing permission.
pub fn decide(user: &str, role: &Role, command: &Command) -> Result<(), String> {
    let req = table::required(command);
    if req.met_by(user, role) {
        Ok(())
    } else {
        Err(format!(
            "permission denied: user {user:?} (role {}) lacks {}",
            role.name,
            req.permission()
        ))
    }
}

/// Whether a caller with role `granter` may hand out `granted` (assign it
/// to a user, or define it): only permissions it holds itself, so
/// `users:write` alone never makes anyone admin. The error lists what is
/// missing.
pub fn may_grant(granter: &Role, granted: &Role) -> Result<(), String> {
    let missing: Vec<String> = granted
        .permissions
        .iter()
        .filter(|p| !granter.grants(**p))
        .map(ToString::to_string)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "permission denied: role {} grants {} that role {} lacks (a user grants only \
             permissions it holds)",
            granted.name,
            missing.join(", "),
            granter.name
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
        let clerk = Role {
            name: "clerk".into(),
            permissions: vec![Permission::parse("users:write").unwrap()],
            tenant_scoped: false,
        };
        let e = may_grant(&clerk, &admin).unwrap_err();
        assert!(e.contains("system:write"), "{e}");
        assert!(may_grant(&admin, &clerk).is_ok());
        assert!(may_grant(&clerk, &clerk).is_ok());
    }
}
