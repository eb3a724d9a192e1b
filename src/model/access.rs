//! Users and roles: who may do what.
//!
//! A [`Role`] grants read or write access per [`Area`]; write implies read.
//! Three roles are built in and cannot be stored over: `admin` (everything),
//! `pbx_admin` (everything, inside the user's tenant in multitenant mode) and
//! `supervisor` (the call center: CDR, and status). A [`User`] has a name, a
//! password hash (never the password), a role, an optional tenant and an
//! e-mail address.

use super::prov::{Fields, MASK};

/// A part of the product that permissions are granted on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    /// Status and system settings.
    System,
    Ha,
    Provisioning,
    /// Scheduled tasks.
    Tasks,
    /// Call records and call-center data.
    Cdr,
    Audit,
    /// Users and roles.
    Users,
}

impl Area {
    pub const ALL: &'static [Area] = &[
        Area::System,
        Area::Ha,
        Area::Provisioning,
        Area::Tasks,
        Area::Cdr,
        Area::Audit,
        Area::Users,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Area::System => "system",
            Area::Ha => "ha",
            Area::Provisioning => "provisioning",
            Area::Tasks => "tasks",
            Area::Cdr => "cdr",
            Area::Audit => "audit",
            Area::Users => "users",
        }
    }

    pub fn from_name(name: &str) -> Option<Area> {
        Area::ALL.iter().copied().find(|a| a.as_str() == name)
    }
}

/// Read or write; write implies read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// One permission: an area and an access level, written `area:read` or
/// `area:write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    pub area: Area,
    pub access: Access,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.area.as_str(), self.access.as_str())
    }
}

impl Permission {
    pub fn parse(text: &str) -> Result<Permission, String> {
        let bad = || {
            format!(
                "permission {text:?} is not AREA:read or AREA:write (areas: {})",
                Area::ALL
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let (area, access) = text.split_once(':').ok_or_else(bad)?;
        let area = Area::from_name(area).ok_or_else(bad)?;
        let access = match access {
            "read" => Access::Read,
            "write" => Access::Write,
            _ => return Err(bad()),
        };
        Ok(Permission { area, access })
    }
}

/// The built-in role names.
pub const ADMIN: &str = "admin";
pub const PBX_ADMIN: &str = "pbx_admin";
pub const SUPERVISOR: &str = "supervisor";

/// A role: a name and the permissions it grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    /// Sorted, without repeats; a write permission stands for read too.
    pub permissions: Vec<Permission>,
    /// The role's users are limited to their tenant (built-in `pbx_admin`).
    pub tenant_scoped: bool,
}

impl Role {
    /// The built-in roles.
    pub fn builtins() -> Vec<Role> {
        let all = |access| {
            Area::ALL
                .iter()
                .map(|&area| Permission { area, access })
                .collect::<Vec<_>>()
        };
        vec![
            Role {
                name: ADMIN.to_string(),
                permissions: all(Access::Write),
                tenant_scoped: false,
            },
            Role {
                name: PBX_ADMIN.to_string(),
                permissions: all(Access::Write),
                tenant_scoped: true,
            },
            Role {
                name: SUPERVISOR.to_string(),
                permissions: vec![
                    Permission {
                        area: Area::System,
                        access: Access::Read,
                    },
                    Permission {
                        area: Area::Cdr,
                        access: Access::Write,
                    },
                ],
                tenant_scoped: true,
            },
        ]
    }

    pub fn builtin(name: &str) -> Option<Role> {
        Role::builtins().into_iter().find(|r| r.name == name)
    }

    /// Whether the role grants `wanted`.
    pub fn grants(&self, wanted: Permission) -> bool {
        self.permissions
            .iter()
            .any(|p| p.area == wanted.area && p.access >= wanted.access)
    }

    /// `name=NAME permissions=area:access,...` (`none` for no permission).
    pub fn from_fields(prev: Option<&Role>, fields: &mut Fields) -> Result<Role, String> {
        let name = fields.required("name", prev.map(|p| p.name.as_str()), 64)?;
        check_name("role", &name)?;
        if Role::builtin(&name).is_some() {
            return Err(format!("role {name:?} is built in and cannot be changed"));
        }
        let prev_perms = prev.map(|p| p.permissions_text());
        let text = fields.text("permissions", prev_perms.as_deref(), 1000)?;
        let mut permissions = Vec::new();
        for word in text
            .split([',', ' '])
            .map(str::trim)
            .filter(|w| !w.is_empty() && *w != "none")
        {
            permissions.push(Permission::parse(word)?);
        }
        // Keep the strongest access per area.
        permissions.sort();
        permissions.dedup();
        let mut kept: Vec<Permission> = Vec::new();
        for p in permissions {
            match kept.last_mut() {
                Some(last) if last.area == p.area => *last = p,
                _ => kept.push(p),
            }
        }
        Ok(Role {
            name,
            permissions: kept,
            tenant_scoped: prev.is_some_and(|p| p.tenant_scoped),
        })
    }

    pub fn permissions_text(&self) -> String {
        if self.permissions.is_empty() {
            return "none".to_string();
        }
        self.permissions
            .iter()
            .map(Permission::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("permissions", self.permissions_text()),
        ]
    }
}

/// A user of the console (mapped from a Unix user) or the management API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// A PHC-style hash (`auth::password`); empty = no API login.
    pub password_hash: String,
    pub role: String,
    pub tenant: Option<String>,
    pub email: String,
}

impl User {
    /// Fields other than the password (`password_hash` is set by the
    /// handler from a `password` field, never given directly).
    pub fn from_fields(prev: Option<&User>, fields: &mut Fields) -> Result<User, String> {
        let name = fields.required("name", prev.map(|p| p.name.as_str()), 64)?;
        check_name("user", &name)?;
        let role = fields.required("role", prev.map(|p| p.role.as_str()), 64)?;
        let tenant = fields.text("tenant", prev.and_then(|p| p.tenant.as_deref()), 64)?;
        let email = fields.text("email", prev.map(|p| p.email.as_str()), 254)?;
        if !email.is_empty() {
            super::task::email("email", &email)?;
        }
        Ok(User {
            name,
            password_hash: prev.map(|p| p.password_hash.clone()).unwrap_or_default(),
            role,
            tenant: (!tenant.is_empty()).then_some(tenant),
            email,
        })
    }

    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("name", self.name.clone()),
            ("role", self.role.clone()),
            ("tenant", self.tenant.clone().unwrap_or_default()),
            ("email", self.email.clone()),
            (
                "password",
                if self.password_hash.is_empty() {
                    String::new()
                } else {
                    MASK.to_string()
                },
            ),
        ]
    }
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} name {name:?} must be 1 to 64 letters, digits, _ - . @"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_what_they_say() {
        let admin = Role::builtin(ADMIN).unwrap();
        for &area in Area::ALL {
            assert!(admin.grants(Permission {
                area,
                access: Access::Write
            }));
        }
        let sup = Role::builtin(SUPERVISOR).unwrap();
        let p = |t: &str| Permission::parse(t).unwrap();
        assert!(sup.grants(p("cdr:read")) && sup.grants(p("cdr:write")));
        assert!(sup.grants(p("system:read")) && !sup.grants(p("system:write")));
        assert!(!sup.grants(p("audit:read")));
        assert_eq!(p("ha:write").to_string(), "ha:write");
        assert!(Permission::parse("ha:all").is_err());
        assert!(Permission::parse("moon:read").is_err());
    }

    #[test]
    fn custom_roles_parse_and_keep_the_strongest_access() {
        let fields = vec![
            ("name".to_string(), "auditor".to_string()),
            (
                "permissions".to_string(),
                "audit:read, audit:write,provisioning:read".to_string(),
            ),
        ];
        let mut f = Fields::new(&fields).unwrap();
        let r = Role::from_fields(None, &mut f).unwrap();
        assert_eq!(r.permissions_text(), "provisioning:read,audit:write");
        let fields = vec![("name".to_string(), "admin".to_string())];
        let mut f = Fields::new(&fields).unwrap();
        assert!(Role::from_fields(None, &mut f).is_err());
    }
}
