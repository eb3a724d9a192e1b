//! Tenant scope: in multitenant mode a caller whose role is tenant-scoped
//! (the built-in `pbx_admin` and `supervisor`, or a custom role marked so)
//! works inside its own tenant only.
//!
//! Pure: the caller's tenant and a lookup of devices' tenants come in, the
//! decision (or the reason for a refusal) goes out. Applied after the role's
//! permissions, so it only ever narrows them.
//!
//! Inside tenant `T` a scoped caller may:
//! - read and change the provisioning objects of `T` (accounts, templates,
//!   devices, placeholders: ids `T/...`, `tenant=T` on creation), read the
//!   shared catalogue (brands, models, built-in templates) and its tenant;
//! - read `T`'s generated files and the fetch log of `T`'s devices;
//! - use the HA panel, scheduled tasks and call records (call records are
//!   not split by tenant on this box);
//! - see the system settings and the status.
//!
//! It may not change box-wide things (system settings, tenants, brands,
//! models, redirection servers, users and roles), read the audit log (it
//! spans every tenant), import CSV files (rows could name other tenants), or
//! list unassigned devices and redirection registrations (box-wide).

use crate::control::Command;

/// Kinds whose objects belong to a tenant (ids `tenant/key`).
const TENANT_KINDS: &[&str] = &["account", "template", "device", "placeholder"];

/// Whether `command` stays inside tenant `tenant`. `device_tenant(mac)` is
/// the tenant of a device (`None`: no such device; `Some(None)`: no tenant).
pub fn within_tenant(
    tenant: &str,
    command: &Command,
    device_tenant: &dyn Fn(&str) -> Option<Option<String>>,
) -> Result<(), String> {
    let outside = |what: &str| {
        Err(format!(
            "permission denied: {what} is outside tenant {tenant} (the role is tenant-scoped)"
        ))
    };
    let own_id = |id: &str| id.split_once('/').is_some_and(|(t, _)| t == tenant);
    let scoped_kind = |kind: &str| TENANT_KINDS.contains(&kind);
    let own_device = |mac: &str| matches!(device_tenant(mac), Some(Some(t)) if t == tenant);
    // Devices are known by MAC (unique on the box), the others by `tenant/key`.
    let own = |kind: &str, id: &str| {
        if kind == "device" {
            own_device(id)
        } else {
            own_id(id)
        }
    };
    // An object that names another (a device's template) reads it: the
    // named one must be the tenant's or shared, as for a copy.
    let foreign_reference = |fields: &[(String, String)]| match fields
        .iter()
        .find(|(k, v)| k == "template" && v.contains('/') && !own_id(v))
    {
        Some((_, v)) => outside(&format!("template {v}")),
        None => Ok(()),
    };
    match command {
        Command::Status | Command::SystemShow => Ok(()),
        Command::SystemSet { .. } | Command::SystemUnset { .. } => {
            outside("changing system settings")
        }
        Command::ProvList { .. } => Ok(()), // filtered to the tenant by the caller
        Command::ProvShow { kind, id } => {
            if scoped_kind(kind) && !own(kind, id) {
                return outside(&format!("{kind} {id}"));
            }
            if kind == "tenant" && id != tenant {
                return outside(&format!("tenant {id}"));
            }
            Ok(())
        }
        Command::ProvAdd { kind, fields } => {
            if !scoped_kind(kind) {
                return outside(&format!("creating a {kind} (shared by every tenant)"));
            }
            foreign_reference(fields)?;
            match fields.iter().find(|(k, _)| k == "tenant") {
                Some((_, t)) if t == tenant => Ok(()),
                _ => outside(&format!("a {kind} without tenant={tenant}")),
            }
        }
        Command::ProvSet { kind, id, fields } => {
            if !scoped_kind(kind) || !own(kind, id) {
                return outside(&format!("{kind} {id}"));
            }
            foreign_reference(fields)?;
            match fields.iter().find(|(k, _)| k == "tenant") {
                Some((_, t)) if t != tenant => outside(&format!("moving {kind} {id} to {t}")),
                _ => Ok(()),
            }
        }
        Command::ProvDelete { kind, ids } => {
            match ids.iter().find(|id| !scoped_kind(kind) || !own(kind, id)) {
                Some(id) => outside(&format!("{kind} {id}")),
                None => Ok(()),
            }
        }
        Command::ProvImport { .. } => outside("a CSV import (its rows may name any tenant)"),
        // Both ends: the copy lands in the tenant, and what it reads is the
        // tenant's own template or a shared one (ids without a tenant).
        Command::ProvCopyTemplate {
            from, tenant: to, ..
        } => {
            if from.contains('/') && !own_id(from) {
                return outside(&format!("template {from}"));
            }
            match to {
                Some(t) if t == tenant => Ok(()),
                _ => outside(&format!("a template copy without tenant {tenant}")),
            }
        }
        Command::ProvFiles => Ok(()), // filtered to the tenant by the caller
        Command::ProvUrls => Ok(()),  // filtered to the tenant by the caller
        Command::ProvFile { path } => {
            if own_id(path) {
                Ok(())
            } else {
                outside(&format!("file {path}"))
            }
        }
        Command::ProvRender { mac } => {
            if own_device(mac) {
                Ok(())
            } else {
                outside(&format!("device {mac}"))
            }
        }
        Command::ProvPreview { mac, template, .. } => {
            if !own_device(mac) {
                outside(&format!("device {mac}"))
            } else if template.contains('/') && !own_id(template) {
                outside(&format!("template {template}"))
            } else {
                Ok(())
            }
        }
        Command::ProvLog { mac } => match mac {
            Some(m) if own_device(m) => Ok(()),
            Some(m) => outside(&format!("device {m}")),
            None => outside("the fetch log of every device"),
        },
        Command::ProvUnknown => outside("the box-wide list of unassigned devices"),
        Command::ProvRedirectStatus | Command::ProvRedirectSync => {
            outside("the box-wide redirection registrations")
        }
        Command::AuditList { .. }
        | Command::AuditVerify
        | Command::AuditQuery(_)
        | Command::AuditExport { .. }
        | Command::AuditShow { .. }
        | Command::AuditRestore { .. } => outside("the audit log (it spans every tenant)"),
        Command::UserList
        | Command::UserAdd { .. }
        | Command::UserSet { .. }
        | Command::UserDelete { .. }
        | Command::RoleList
        | Command::RoleAdd { .. }
        | Command::RoleSet { .. }
        | Command::RoleDelete { .. } => outside("managing users and roles"),
        // Own password: allowed before the scope is looked at.
        Command::UserPasswd { .. } => outside("another user's password"),
        Command::HaConfigure { .. }
        | Command::HaStatus
        | Command::HaSwitch
        | Command::HaDisable
        | Command::HaUnpair
        | Command::HaPair
        | Command::HaEvents
        | Command::HaShow
        | Command::CdrStatus
        | Command::CdrImport { .. }
        | Command::CdrExport(_)
        | Command::TaskAdd { .. }
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
        | Command::MailOutbox { .. } => Ok(()),
    }
}

/// Whether an object shown by `ProvList` belongs in tenant `tenant`'s view
/// (`object_tenant`: its `tenant` field): its own objects, the tenant
/// itself, and the shared catalogue.
pub fn visible(
    tenant: &str,
    object_type: &str,
    id: &str,
    object_tenant: Option<&str>,
    builtin: bool,
) -> bool {
    match object_type {
        "tenant" => id == tenant,
        k if TENANT_KINDS.contains(&k) => builtin || object_tenant == Some(tenant),
        "redirect_server" => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_scoped_caller_stays_in_its_tenant() {
        let devices = |mac: &str| match mac {
            "000413000001" => Some(Some("t1".to_string())),
            "000413000002" => Some(Some("t2".to_string())),
            _ => None,
        };
        let ok = |c: Command| within_tenant("t1", &c, &devices);
        assert!(
            ok(Command::ProvAdd {
                kind: "device".into(),
                fields: kv(&[("tenant", "t1"), ("mac", "000413000003")])
            })
            .is_ok()
        );
        let e = ok(Command::ProvAdd {
            kind: "device".into(),
            fields: kv(&[("tenant", "t2")]),
        })
        .unwrap_err();
        assert!(e.contains("outside tenant t1"), "{e}");
        assert!(
            ok(Command::ProvAdd {
                kind: "device".into(),
                fields: vec![]
            })
            .is_err()
        );
        assert!(
            ok(Command::ProvAdd {
                kind: "brand".into(),
                fields: vec![]
            })
            .is_err()
        );
        assert!(
            ok(Command::ProvSet {
                kind: "account".into(),
                id: "t1/201".into(),
                fields: vec![]
            })
            .is_ok()
        );
        assert!(
            ok(Command::ProvSet {
                kind: "account".into(),
                id: "t1/201".into(),
                fields: kv(&[("tenant", "t2")])
            })
            .is_err()
        );
        assert!(
            ok(Command::ProvDelete {
                kind: "account".into(),
                ids: vec!["t1/201".into(), "t2/201".into()]
            })
            .is_err()
        );
        assert!(
            ok(Command::ProvShow {
                kind: "device".into(),
                id: "000413000002".into()
            })
            .is_err()
        );
        assert!(
            ok(Command::ProvShow {
                kind: "device".into(),
                id: "000413000001".into()
            })
            .is_ok()
        );
        assert!(
            ok(Command::ProvShow {
                kind: "account".into(),
                id: "t2/201".into()
            })
            .is_err()
        );
        assert!(
            ok(Command::ProvRender {
                mac: "000413000001".into()
            })
            .is_ok()
        );
        assert!(
            ok(Command::ProvRender {
                mac: "000413000002".into()
            })
            .is_err()
        );
        for (mac, template, fine) in [
            ("000413000001", "mine", true),
            ("000413000001", "t1/mine", true),
            ("000413000001", "t2/theirs", false),
            ("000413000002", "mine", false),
        ] {
            let c = Command::ProvPreview {
                mac: mac.into(),
                template: template.into(),
                content: String::new(),
            };
            assert_eq!(ok(c).is_ok(), fine, "{mac} {template}");
        }
        assert!(
            ok(Command::ProvFile {
                path: "t2/x.cfg".into()
            })
            .is_err()
        );
        assert!(
            ok(Command::ProvCopyTemplate {
                from: "t2/x".into(),
                name: "y".into(),
                tenant: Some("t1".into())
            })
            .is_err()
        );
        assert!(
            ok(Command::ProvCopyTemplate {
                from: "fanvil-x".into(),
                name: "y".into(),
                tenant: Some("t1".into())
            })
            .is_ok()
        );
        assert!(
            ok(Command::ProvSet {
                kind: "device".into(),
                id: "000413000001".into(),
                fields: kv(&[("template", "t2/x")])
            })
            .is_err()
        );
        assert!(ok(Command::SystemSet { values: vec![] }).is_err());
        assert!(ok(Command::AuditVerify).is_err());
        assert!(ok(Command::UserList).is_err());
        assert!(ok(Command::HaStatus).is_ok());
        assert!(ok(Command::TaskList).is_ok());
    }

    #[test]
    fn lists_show_the_tenant_and_the_shared_catalogue() {
        assert!(visible("t1", "device", "000413000001", Some("t1"), false));
        assert!(!visible("t1", "device", "000413000002", Some("t2"), false));
        assert!(visible("t1", "template", "snom-d785", None, true));
        assert!(!visible("t1", "account", "201", None, false));
        assert!(visible("t1", "brand", "Snom", None, true));
        assert!(visible("t1", "tenant", "t1", None, false));
        assert!(!visible("t1", "tenant", "t2", None, false));
        assert!(!visible("t1", "redirect_server", "r", None, false));
    }
}
