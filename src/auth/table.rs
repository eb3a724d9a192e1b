//! The permission table: what each [`Command`] needs, in one exhaustive
//! `match` with no catch-all. Both the console and the management API ask
//! here (through `auth::decide`, called by `daemon::users::authorize` from
//! the shared `route()`); nothing else decides.
//!
//! Commands that take a kind (`prov list|show|add|set|delete|import`) need
//! the permission of the area the kind belongs to ([`kind_area`]), so a
//! provisioning clerk can never reach settings, HA, tasks, mail, users or
//! roles through them, whatever the provisioning handlers accept.
//!
//! The README's permission matrix is generated from this table
//! ([`matrix`]) and a test checks that the README matches it.

use crate::control::{AuditQuery, Command, ExportRequest};
use crate::model::Kind;
use crate::model::access::{Access, Area, Permission, Role};

/// What running a command takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// The caller's role must grant this permission.
    Needs(Permission),
    /// Setting the password of user `name`: the user itself may, anyone
    /// else needs the permission.
    OwnPasswordOr {
        name: String,
        permission: Permission,
    },
}

impl Requirement {
    /// The permission a caller other than the one named needs.
    pub fn permission(&self) -> Permission {
        match self {
            Requirement::Needs(p) | Requirement::OwnPasswordOr { permission: p, .. } => *p,
        }
    }

    /// Whether `user` with `role` meets the requirement.
    pub fn met_by(&self, user: &str, role: &Role) -> bool {
        match self {
            Requirement::Needs(p) => role.grants(*p),
            Requirement::OwnPasswordOr { name, permission } => {
                name == user || role.grants(*permission)
            }
        }
    }
}

/// The area the objects of `kind` belong to. No catch-all: a new kind
/// must say.
pub fn kind_area(kind: Kind) -> Area {
    match kind {
        Kind::Setting => Area::System,
        Kind::Tenant
        | Kind::Account
        | Kind::Brand
        | Kind::Model
        | Kind::Template
        | Kind::Device
        | Kind::Placeholder
        | Kind::RedirectServer => Area::Provisioning,
        Kind::Ha => Area::Ha,
        Kind::Task | Kind::Mail => Area::Tasks,
        Kind::User | Kind::Role => Area::Users,
    }
}

/// The permission to read (`Access::Read`) or change (`Access::Write`) an
/// object of the kind named `kind`. A name that is no kind at all is
/// refused later by the handler; it needs the provisioning permission
/// the command would need for a provisioning kind.
fn by_kind(kind: &str, access: Access) -> Requirement {
    let area = Kind::from_name(kind).map_or(Area::Provisioning, kind_area);
    Requirement::Needs(Permission { area, access })
}

fn needs(area: Area, access: Access) -> Requirement {
    Requirement::Needs(Permission { area, access })
}

/// What `command` needs. One exhaustive match: adding a command without a
/// row does not compile.
pub fn required(command: &Command) -> Requirement {
    use Access::{Read, Write};
    match command {
        Command::Status | Command::SystemShow => needs(Area::System, Read),
        Command::SystemSet { .. } | Command::SystemUnset { .. } => needs(Area::System, Write),
        Command::AuditList { .. }
        | Command::AuditVerify
        | Command::AuditQuery(_)
        | Command::AuditExport { .. }
        | Command::AuditShow { .. } => needs(Area::Audit, Read),
        // And, at restore time, the write permission (and tenant scope) for
        // every object put back (`daemon::audit::restore`).
        Command::AuditRestore { .. } => needs(Area::Audit, Write),
        Command::ProvList { kind } | Command::ProvShow { kind, .. } => by_kind(kind, Read),
        Command::ProvAdd { kind, .. }
        | Command::ProvSet { kind, .. }
        | Command::ProvDelete { kind, .. }
        | Command::ProvImport { kind, .. } => by_kind(kind, Write),
        Command::ProvCopyTemplate { .. } => by_kind(Kind::Template.as_str(), Write),
        Command::ProvFiles
        | Command::ProvFile { .. }
        | Command::ProvRender { .. }
        | Command::ProvPreview { .. }
        | Command::ProvLog { .. }
        | Command::ProvUnknown
        | Command::ProvRedirectStatus
        | Command::ProvUrls => needs(Area::Provisioning, Read),
        Command::ProvRedirectSync => needs(Area::Provisioning, Write),
        Command::CdrStatus | Command::CdrExport(_) => needs(Area::Cdr, Read),
        Command::CdrImport { .. } => needs(Area::Cdr, Write),
        Command::TaskList
        | Command::TaskShow { .. }
        | Command::TaskHistory { .. }
        | Command::MailShow
        | Command::MailOutbox { .. } => needs(Area::Tasks, Read),
        Command::TaskAdd { .. }
        | Command::TaskSet { .. }
        | Command::TaskDelete { .. }
        | Command::TaskRun { .. }
        | Command::MailConfigure { .. }
        | Command::MailTest { .. }
        | Command::MailRetry => needs(Area::Tasks, Write),
        Command::HaStatus | Command::HaEvents | Command::HaShow => needs(Area::Ha, Read),
        Command::HaConfigure { .. }
        | Command::HaSwitch
        | Command::HaDisable
        | Command::HaUnpair
        | Command::HaPair => needs(Area::Ha, Write),
        Command::UserList | Command::RoleList => needs(Area::Users, Read),
        Command::UserAdd { .. }
        | Command::UserSet { .. }
        | Command::UserDelete { .. }
        | Command::RoleAdd { .. }
        | Command::RoleSet { .. }
        | Command::RoleDelete { .. } => needs(Area::Users, Write),
        Command::UserPasswd { name, .. } => Requirement::OwnPasswordOr {
            name: name.clone(),
            permission: Permission {
                area: Area::Users,
                access: Write,
            },
        },
    }
}

/// The name of a command's variant, as the API's JSON spells it
/// (`{"ProvList": {...}}`). Exhaustive: a new command must be named here,
/// and [`samples`] then needs one for the tests to pass.
pub fn name(command: &Command) -> &'static str {
    match command {
        Command::Status => "Status",
        Command::AuditList { .. } => "AuditList",
        Command::AuditVerify => "AuditVerify",
        Command::SystemShow => "SystemShow",
        Command::SystemSet { .. } => "SystemSet",
        Command::SystemUnset { .. } => "SystemUnset",
        Command::ProvList { .. } => "ProvList",
        Command::ProvShow { .. } => "ProvShow",
        Command::ProvAdd { .. } => "ProvAdd",
        Command::ProvSet { .. } => "ProvSet",
        Command::ProvDelete { .. } => "ProvDelete",
        Command::ProvImport { .. } => "ProvImport",
        Command::ProvCopyTemplate { .. } => "ProvCopyTemplate",
        Command::ProvFiles => "ProvFiles",
        Command::ProvFile { .. } => "ProvFile",
        Command::ProvRender { .. } => "ProvRender",
        Command::ProvPreview { .. } => "ProvPreview",
        Command::HaConfigure { .. } => "HaConfigure",
        Command::HaStatus => "HaStatus",
        Command::HaSwitch => "HaSwitch",
        Command::HaDisable => "HaDisable",
        Command::HaUnpair => "HaUnpair",
        Command::HaPair => "HaPair",
        Command::HaEvents => "HaEvents",
        Command::HaShow => "HaShow",
        Command::ProvLog { .. } => "ProvLog",
        Command::ProvUnknown => "ProvUnknown",
        Command::ProvRedirectStatus => "ProvRedirectStatus",
        Command::ProvRedirectSync => "ProvRedirectSync",
        Command::CdrStatus => "CdrStatus",
        Command::CdrImport { .. } => "CdrImport",
        Command::CdrExport(_) => "CdrExport",
        Command::TaskAdd { .. } => "TaskAdd",
        Command::TaskSet { .. } => "TaskSet",
        Command::TaskDelete { .. } => "TaskDelete",
        Command::TaskList => "TaskList",
        Command::TaskShow { .. } => "TaskShow",
        Command::TaskRun { .. } => "TaskRun",
        Command::TaskHistory { .. } => "TaskHistory",
        Command::MailConfigure { .. } => "MailConfigure",
        Command::MailShow => "MailShow",
        Command::MailTest { .. } => "MailTest",
        Command::MailRetry => "MailRetry",
        Command::MailOutbox { .. } => "MailOutbox",
        Command::AuditQuery(_) => "AuditQuery",
        Command::AuditShow { .. } => "AuditShow",
        Command::AuditRestore { .. } => "AuditRestore",
        Command::UserList => "UserList",
        Command::UserAdd { .. } => "UserAdd",
        Command::UserSet { .. } => "UserSet",
        Command::UserDelete { .. } => "UserDelete",
        Command::UserPasswd { .. } => "UserPasswd",
        Command::RoleList => "RoleList",
        Command::RoleAdd { .. } => "RoleAdd",
        Command::RoleSet { .. } => "RoleSet",
        Command::RoleDelete { .. } => "RoleDelete",
        Command::AuditExport { .. } => "AuditExport",
        Command::ProvUrls => "ProvUrls",
    }
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One harmless instance of every command (objects that do not exist,
/// fields that do not validate), with ids inside `tenant`: what the
/// permission tests send as every role, and the rows of [`matrix`].
/// Kind-taking commands come once per kind they are most often used with
/// (`account`) and once with a kind of another area (`mail`), so the
/// derivation from the kind is exercised.
pub fn samples(tenant: &str) -> Vec<Command> {
    let id = format!("{tenant}/authz-none");
    let export = ExportRequest {
        callcenter: false,
        from: None,
        to: None,
        interval: Some("current-day".into()),
        format: "csv".into(),
        mask: false,
        delimiter: b',',
        bom: false,
        operator_events: false,
    };
    vec![
        Command::Status,
        Command::AuditList { limit: 1 },
        Command::AuditVerify,
        Command::SystemShow,
        Command::SystemSet {
            values: kv(&[("no_such_setting", "x")]),
        },
        Command::SystemUnset {
            keys: vec!["no_such_setting".into()],
        },
        Command::ProvList {
            kind: "account".into(),
        },
        Command::ProvList {
            kind: "mail".into(),
        },
        Command::ProvShow {
            kind: "account".into(),
            id: id.clone(),
        },
        Command::ProvShow {
            kind: "mail".into(),
            id: "mail".into(),
        },
        Command::ProvAdd {
            kind: "account".into(),
            fields: kv(&[("tenant", tenant), ("no_such_field", "x")]),
        },
        Command::ProvAdd {
            kind: "task".into(),
            fields: kv(&[("no_such_field", "x")]),
        },
        Command::ProvSet {
            kind: "account".into(),
            id: id.clone(),
            fields: kv(&[("no_such_field", "x")]),
        },
        Command::ProvSet {
            kind: "mail".into(),
            id: "mail".into(),
            fields: kv(&[("no_such_field", "x")]),
        },
        Command::ProvDelete {
            kind: "account".into(),
            ids: vec![id.clone()],
        },
        Command::ProvDelete {
            kind: "task".into(),
            ids: vec!["999999".into()],
        },
        Command::ProvImport {
            kind: "account".into(),
            csv: "no_such_field\nx\n".into(),
        },
        Command::ProvCopyTemplate {
            from: format!("{tenant}/authz-none"),
            name: "authz-copy".into(),
            tenant: Some(tenant.to_string()),
        },
        Command::ProvFiles,
        Command::ProvFile {
            path: format!("{tenant}/authz-none.cfg"),
        },
        Command::ProvRender {
            mac: "0004130000ff".into(),
        },
        Command::ProvPreview {
            mac: "0004130000ff".into(),
            template: "authz-none".into(),
            content: String::new(),
        },
        Command::HaConfigure { fields: vec![] },
        Command::HaStatus,
        Command::HaSwitch,
        Command::HaDisable,
        Command::HaUnpair,
        Command::HaPair,
        Command::HaEvents,
        Command::HaShow,
        Command::ProvLog {
            mac: Some("0004130000ff".into()),
        },
        Command::ProvUnknown,
        Command::ProvRedirectStatus,
        Command::ProvRedirectSync,
        Command::CdrStatus,
        Command::CdrImport {
            callcenter: false,
            path: "/nonexistent/Master.csv".into(),
        },
        Command::CdrExport(export),
        Command::TaskAdd {
            fields: kv(&[("no_such_field", "x")]),
        },
        Command::TaskSet {
            id: 999_999,
            fields: kv(&[("no_such_field", "x")]),
        },
        Command::TaskDelete { ids: vec![999_999] },
        Command::TaskList,
        Command::TaskShow { id: 999_999 },
        Command::TaskRun { id: 999_999 },
        Command::TaskHistory {
            id: Some(999_999),
            limit: 1,
        },
        Command::MailConfigure {
            fields: kv(&[("no_such_field", "x")]),
        },
        Command::MailShow,
        Command::MailTest {
            address: "not an address".into(),
        },
        Command::MailRetry,
        Command::MailOutbox { limit: 1 },
        Command::AuditQuery(AuditQuery::default()),
        Command::AuditShow { txid: 999_999 },
        Command::AuditRestore {
            txid: 999_999,
            force: false,
        },
        Command::UserList,
        Command::UserAdd {
            fields: kv(&[("no_such_field", "x")]),
        },
        Command::UserSet {
            name: "authz-nobody".into(),
            fields: kv(&[("email", "x@example.com")]),
        },
        Command::UserDelete {
            names: vec!["authz-nobody".into()],
        },
        Command::UserPasswd {
            name: "authz-nobody".into(),
            password: "short".into(),
        },
        Command::RoleList,
        Command::RoleAdd {
            fields: kv(&[("no_such_field", "x")]),
        },
        Command::RoleSet {
            name: "authz-nobody".into(),
            fields: kv(&[("permissions", "none")]),
        },
        Command::RoleDelete {
            names: vec!["authz-nobody".into()],
        },
        Command::AuditExport {
            query: AuditQuery::default(),
            format: "csv".into(),
        },
        Command::ProvUrls,
    ]
}

/// A short description of a kind-taking sample's kind, for the matrix.
fn kind_of(command: &Command) -> Option<&str> {
    match command {
        Command::ProvList { kind }
        | Command::ProvShow { kind, .. }
        | Command::ProvAdd { kind, .. }
        | Command::ProvSet { kind, .. }
        | Command::ProvDelete { kind, .. }
        | Command::ProvImport { kind, .. } => Some(kind),
        _ => None,
    }
}

/// The README's permission matrix (Markdown), generated from [`required`]
/// over [`samples`] and the built-in roles.
pub fn matrix() -> String {
    let builtins = Role::builtins();
    let mut out = String::from("| Command | Needs |");
    for r in &builtins {
        out.push_str(&format!(" {} |", r.name));
    }
    out.push_str("\n|---|---|");
    for _ in &builtins {
        out.push_str("---|");
    }
    out.push('\n');
    // Devices named by the samples belong to tenant `T` here.
    let devices = |_: &str| Some(Some("T".to_string()));
    for c in samples("T") {
        let label = match kind_of(&c) {
            Some(k) => format!("{} (kind {k})", name(&c)),
            None => name(&c).to_string(),
        };
        let req = required(&c);
        let needs = match &req {
            Requirement::Needs(p) => format!("`{p}`"),
            Requirement::OwnPasswordOr { permission, .. } => {
                format!("own: none; others: `{permission}`")
            }
        };
        out.push_str(&format!("| {label} | {needs} |"));
        for r in &builtins {
            let cell = match (req.met_by("someone-else", r), r.tenant_scoped) {
                (false, _) => "no",
                (true, false) => "yes",
                (true, true) => match super::scope::within_tenant("T", &c, &devices) {
                    Ok(()) => "yes (T)",
                    Err(_) => "single-tenant only",
                },
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out.push_str("\nKind-taking commands need the area of the kind:");
    for k in Kind::ALL {
        out.push_str(&format!(" `{}` {};", k.as_str(), kind_area(*k).as_str()));
    }
    out.pop();
    out.push_str(".\n");
    out
}

/// Every variant name of [`Command`], read from its serde description:
/// unlike a hand-kept list, it cannot fall behind the enum.
pub fn variant_names() -> &'static [&'static str] {
    use serde::de::{self, Deserializer, Visitor};
    struct Probe(Option<&'static [&'static str]>);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("probe")
        }
    }
    impl std::error::Error for Stop {}
    impl de::Error for Stop {
        fn custom<T: std::fmt::Display>(_: T) -> Self {
            Stop
        }
    }
    impl<'de> Deserializer<'de> for &mut Probe {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_enum<V: Visitor<'de>>(
            self,
            _: &'static str,
            variants: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(variants);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map struct identifier ignored_any
        }
    }
    let mut probe = Probe(None);
    let _ = <Command as serde::Deserialize>::deserialize(&mut probe);
    probe.0.unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::access::{PBX_ADMIN, SUPERVISOR};

    #[test]
    fn kinds_decide_the_permission() {
        let set = |kind: &str| {
            required(&Command::ProvSet {
                kind: kind.into(),
                id: "x".into(),
                fields: vec![],
            })
            .permission()
            .to_string()
        };
        assert_eq!(set("account"), "provisioning:write");
        assert_eq!(set("mail"), "tasks:write");
        assert_eq!(set("task"), "tasks:write");
        assert_eq!(set("user"), "users:write");
        assert_eq!(set("setting"), "system:write");
        assert_eq!(set("ha"), "ha:write");
        assert_eq!(set("nonsense"), "provisioning:write");
        let list = required(&Command::ProvList {
            kind: "role".into(),
        });
        assert_eq!(list.permission().to_string(), "users:read");
    }

    #[test]
    fn every_variant_has_a_sample() {
        let names: std::collections::BTreeSet<&str> = samples("t").iter().map(name).collect();
        let all = variant_names();
        assert_eq!(
            names,
            all.iter().copied().collect(),
            "samples() must hold one of every Command"
        );
    }

    #[test]
    fn own_password_needs_nothing() {
        let sup = Role::builtin(SUPERVISOR).unwrap();
        let own = required(&Command::UserPasswd {
            name: "s".into(),
            password: "x".into(),
        });
        assert!(own.met_by("s", &sup));
        assert!(!own.met_by("t", &sup));
        assert!(own.met_by("t", &Role::builtin(PBX_ADMIN).unwrap()));
    }
}
