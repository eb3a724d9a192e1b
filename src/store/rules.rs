//! Rules that span objects, checked inside the commit's write transaction
//! after the changes are written and before anything is durable: a
//! violation aborts the whole transaction.
//!
//! Each changed object is checked against the state the transaction would
//! leave: what it refers to must exist; what is deleted must not be referred
//! to. Messages name the objects involved.

use heed::RwTxn;

use super::{CommitError, Store, StoreError, records};
use crate::model::prov::scoped_id;
use crate::model::{Device, Kind, Object, ObjectRef, SettingKey};
use crate::provision;

fn invalid(m: String) -> CommitError {
    CommitError::Invalid(m)
}

struct View<'s, 't> {
    store: &'s Store,
    txn: &'t RwTxn<'t>,
    catalogue: &'static provision::catalogue::Catalogue,
}

impl View<'_, '_> {
    fn get(&self, kind: Kind, id: &str) -> Result<Option<Object>, StoreError> {
        let key = records::object_key(kind, id);
        match self.store.objects.get(self.txn, &key)? {
            Some(bytes) => Ok(Some(records::decode_object(kind, id, bytes)?)),
            None => Ok(None),
        }
    }

    fn exists(&self, kind: Kind, id: &str) -> Result<bool, StoreError> {
        let key = records::object_key(kind, id);
        Ok(self.store.objects.get(self.txn, &key)?.is_some())
    }

    fn list(&self, kind: Kind) -> Result<Vec<Object>, StoreError> {
        let prefix = records::kind_prefix(kind);
        let mut out = Vec::new();
        for item in self.store.objects.prefix_iter(self.txn, &prefix)? {
            let (key, value) = item?;
            let (kind, id) = records::split_object_key(key)?;
            out.push(records::decode_object(kind, &id, value)?);
        }
        Ok(out)
    }

    fn multitenant(&self) -> Result<bool, StoreError> {
        Ok(matches!(
            self.get(Kind::Setting, SettingKey::Multitenant.name())?,
            Some(Object::Setting(s)) if s.value() == "on"
        ))
    }

    fn model_exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.catalogue.models.iter().any(|m| m.name == name)
            || self.exists(Kind::Model, name)?)
    }

    /// The model of the template a device of `tenant` would use by `name`.
    fn template_model(
        &self,
        tenant: &Option<String>,
        name: &str,
    ) -> Result<Option<String>, StoreError> {
        for id in [scoped_id(tenant, name), name.to_string()] {
            if let Some(Object::Template(t)) = self.get(Kind::Template, &id)? {
                return Ok(Some(t.model));
            }
        }
        Ok(self
            .catalogue
            .templates
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.model.clone()))
    }

    /// Placeholders a template of `tenant` may use.
    fn placeholder_known(&self, tenant: &Option<String>, name: &str) -> Result<bool, StoreError> {
        if provision::is_builtin(name) {
            return Ok(true);
        }
        let Some(custom) = name.strip_prefix('_') else {
            return Ok(false);
        };
        Ok(self.exists(Kind::Placeholder, custom)?
            || (tenant.is_some() && self.exists(Kind::Placeholder, &scoped_id(tenant, custom))?))
    }

    fn tenant_scope(&self, kind: Kind, tenant: &Option<String>) -> Result<(), CommitError> {
        match (self.multitenant()?, tenant) {
            (true, None) => Err(invalid(format!(
                "multitenant mode is on: a {} needs a tenant",
                kind.as_str()
            ))),
            (false, Some(t)) => Err(invalid(format!(
                "multitenant mode is off: a {} cannot belong to tenant {t}",
                kind.as_str()
            ))),
            (true, Some(t)) if !self.exists(Kind::Tenant, t)? => {
                Err(invalid(format!("tenant {t} does not exist")))
            }
            _ => Ok(()),
        }
    }

    fn users(&self, kind: Kind, uses: impl Fn(&Object) -> bool) -> Result<Vec<String>, StoreError> {
        Ok(self
            .list(kind)?
            .iter()
            .filter(|o| uses(o))
            .map(Object::id)
            .collect())
    }
}

fn in_use(what: &ObjectRef, kind: Kind, ids: &[String]) -> Result<(), CommitError> {
    if ids.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = ids.iter().take(10).map(String::as_str).collect();
    let more = if ids.len() > 10 {
        format!(" and {} more", ids.len() - 10)
    } else {
        String::new()
    };
    Err(invalid(format!(
        "{what} is used by {} {}{more}",
        kind.as_str().replace('_', " "),
        shown.join(", ")
    )))
}

/// Checks every changed object; `changes` pairs each target with the object
/// it now is (`None` if deleted) and what it was before.
pub(super) fn check(
    store: &Store,
    txn: &RwTxn,
    changes: &[(ObjectRef, Option<Object>, Option<Object>)],
) -> Result<(), CommitError> {
    if changes
        .iter()
        .all(|(r, ..)| r.kind == Kind::Setting && r.id != SettingKey::Multitenant.name())
    {
        return Ok(());
    }
    let v = View {
        store,
        txn,
        catalogue: provision::catalogue::catalogue(),
    };
    for (target, after, before) in changes {
        match after {
            Some(o) => check_put(&v, o)?,
            None => {
                if let Some(b) = before {
                    check_delete(&v, target, b)?;
                }
            }
        }
    }
    Ok(())
}

fn check_put(v: &View, object: &Object) -> Result<(), CommitError> {
    match object {
        Object::Setting(s) if s.key == SettingKey::Multitenant => {
            let on = s.value() == "on";
            for kind in [
                Kind::Account,
                Kind::Template,
                Kind::Device,
                Kind::Placeholder,
            ] {
                let wrong = v.users(kind, |o| tenant_of(o).is_some() != on)?;
                if let Some(id) = wrong.first() {
                    return Err(invalid(format!(
                        "cannot turn multitenant {}: {} {id} and {} other objects would be in the wrong scope",
                        s.value(),
                        kind.as_str(),
                        wrong.len() - 1
                    )));
                }
            }
        }
        Object::Setting(_) => {}
        Object::Task(t) if t.task_type == crate::model::task::TaskType::SendCallCenterCdr => {
            let licensed = matches!(
                v.get(Kind::Setting, SettingKey::CallcenterLicence.name())?,
                Some(Object::Setting(s)) if !s.value().is_empty()
            );
            if !licensed {
                return Err(invalid(format!(
                    "task {}: Send Call Center CDR needs a call-center licence (set callcenter_licence first)",
                    t.id
                )));
            }
        }
        Object::Task(_) | Object::Mail(_) => {}
        Object::Tenant(t) => {
            if !v.multitenant()? {
                return Err(invalid(format!(
                    "multitenant mode is off: set multitenant=on before adding tenant {}",
                    t.uuid
                )));
            }
        }
        Object::Account(a) => v.tenant_scope(Kind::Account, &a.tenant)?,
        Object::Brand(b) => {
            if v.catalogue
                .brands
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&b.name))
            {
                return Err(invalid(format!("brand {} is built in", b.name)));
            }
        }
        Object::Model(m) => {
            if v.catalogue
                .models
                .iter()
                .any(|x| x.name.eq_ignore_ascii_case(&m.name))
            {
                return Err(invalid(format!(
                    "model {} is built in and read-only",
                    m.name
                )));
            }
            let brand_ok = v.catalogue.brands.contains(&m.brand.as_str())
                || v.exists(Kind::Brand, &m.brand)?;
            if !brand_ok {
                return Err(invalid(format!(
                    "model {}: brand {} does not exist",
                    m.name, m.brand
                )));
            }
            for (file, template) in &m.model_files {
                if v.template_model(&None, template)?.is_none() {
                    return Err(invalid(format!(
                        "model {}: template {template} for {file} does not exist",
                        m.name
                    )));
                }
            }
        }
        Object::Template(t) => {
            v.tenant_scope(Kind::Template, &t.tenant)?;
            if v.catalogue
                .templates
                .iter()
                .any(|x| x.name.eq_ignore_ascii_case(&t.name))
            {
                return Err(invalid(format!(
                    "template {} is built in and read-only; copy it under another name",
                    t.name
                )));
            }
            if !v.model_exists(&t.model)? {
                return Err(invalid(format!(
                    "template {}: model {} does not exist",
                    t.name, t.model
                )));
            }
            let lookup_error = std::cell::RefCell::new(None);
            let known = |n: &str| match v.placeholder_known(&t.tenant, n) {
                Ok(k) => k,
                Err(e) => {
                    lookup_error.borrow_mut().get_or_insert(e);
                    true
                }
            };
            let checked = provision::template::check(&t.content, &known);
            if let Some(e) = lookup_error.into_inner() {
                return Err(e.into());
            }
            checked.map_err(|e| invalid(format!("template {}: {e}", t.name)))?;
        }
        Object::Device(d) => check_device(v, d)?,
        Object::Placeholder(p) => v.tenant_scope(Kind::Placeholder, &p.tenant)?,
        // The vendor's own rules (API of the brand, Yealink's server-name
        // characters), whoever built the object.
        Object::RedirectServer(r) => r.check().map_err(invalid)?,
        Object::Role(_) => {}
        Object::User(u) => {
            let role_known =
                crate::model::Role::builtin(&u.role).is_some() || v.exists(Kind::Role, &u.role)?;
            if !role_known {
                return Err(invalid(format!(
                    "user {:?}: role {:?} does not exist",
                    u.name, u.role
                )));
            }
            if let Some(t) = &u.tenant
                && !v.exists(Kind::Tenant, t)?
            {
                return Err(invalid(format!(
                    "user {:?}: tenant {t:?} does not exist",
                    u.name
                )));
            }
        }
        Object::Ha(h) => {
            // Built valid; checked again so no other path can store a
            // configuration the HA core would refuse.
            if h.id() != crate::model::HA_ID {
                return Err(invalid(
                    "the HA configuration is a singleton with id ha".into(),
                ));
            }
            if h.config.role != crate::ha::Role::Disabled {
                h.config
                    .validate()
                    .map_err(|e| invalid(format!("ha: {e}")))?;
            }
        }
    }
    Ok(())
}

fn check_device(v: &View, d: &Device) -> Result<(), CommitError> {
    v.tenant_scope(Kind::Device, &d.tenant)?;
    if !v.model_exists(&d.model)? {
        return Err(invalid(format!(
            "device {}: model {} does not exist",
            d.mac, d.model
        )));
    }
    match v.template_model(&d.tenant, &d.template)? {
        None => {
            return Err(invalid(format!(
                "device {}: template {} does not exist",
                d.mac, d.template
            )));
        }
        Some(m) if m != d.model => {
            return Err(invalid(format!(
                "device {}: template {} is for model {m}, not {}",
                d.mac, d.template, d.model
            )));
        }
        Some(_) => {}
    }
    if let Some(account) = &d.account
        && !v.exists(Kind::Account, &scoped_id(&d.tenant, account))?
    {
        return Err(invalid(format!(
            "device {}: account {account} does not exist",
            d.mac
        )));
    }
    if let Some(server) = &d.redirect_server
        && !v.exists(Kind::RedirectServer, server)?
    {
        return Err(invalid(format!(
            "device {}: redirection server {server} does not exist",
            d.mac
        )));
    }
    Ok(())
}

fn tenant_of(o: &Object) -> Option<&str> {
    match o {
        Object::Account(a) => a.tenant.as_deref(),
        Object::Template(t) => t.tenant.as_deref(),
        Object::Device(d) => d.tenant.as_deref(),
        Object::Placeholder(p) => p.tenant.as_deref(),
        Object::User(u) => u.tenant.as_deref(),
        _ => None,
    }
}

fn check_delete(v: &View, target: &ObjectRef, before: &Object) -> Result<(), CommitError> {
    match before {
        Object::Tenant(t) => {
            for kind in [
                Kind::Account,
                Kind::Template,
                Kind::Device,
                Kind::Placeholder,
                Kind::User,
            ] {
                in_use(target, kind, &v.users(kind, |o| tenant_of(o) == Some(t.uuid.as_str()))?)?;
            }
        }
        Object::Account(a) => in_use(
            target,
            Kind::Device,
            &v.users(Kind::Device, |o| {
                matches!(o, Object::Device(d) if d.tenant == a.tenant && d.account.as_deref() == Some(&a.extension))
            })?,
        )?,
        Object::Brand(b) => in_use(
            target,
            Kind::Model,
            &v.users(Kind::Model, |o| matches!(o, Object::Model(m) if m.brand == b.name))?,
        )?,
        Object::Model(m) => {
            in_use(
                target,
                Kind::Device,
                &v.users(Kind::Device, |o| matches!(o, Object::Device(d) if d.model == m.name))?,
            )?;
            in_use(
                target,
                Kind::Template,
                &v.users(Kind::Template, |o| matches!(o, Object::Template(t) if t.model == m.name))?,
            )?;
        }
        Object::Template(t) => {
            // Devices of the template's tenant (or any, for a global one)
            // that name it and do not find another template of that name.
            let users = v.users(Kind::Device, |o| {
                matches!(o, Object::Device(d) if d.template == t.name
                    && (t.tenant.is_none() || d.tenant == t.tenant))
            })?;
            let mut orphaned = Vec::new();
            for mac in users {
                if let Some(Object::Device(d)) = v.get(Kind::Device, &mac)?
                    && v.template_model(&d.tenant, &d.template)?.is_none()
                {
                    orphaned.push(mac);
                }
            }
            in_use(target, Kind::Device, &orphaned)?;
            in_use(
                target,
                Kind::Model,
                &v.users(Kind::Model, |o| {
                    matches!(o, Object::Model(m) if m.model_files.iter().any(|(_, x)| *x == t.name))
                })?,
            )?;
        }
        Object::Placeholder(p) => {
            let name = format!("_{}", p.name);
            let users = v.users(Kind::Template, |o| {
                matches!(o, Object::Template(t) if (p.tenant.is_none() || t.tenant == p.tenant)
                    && provision::template::placeholders_used(&t.content).contains(&name))
            })?;
            if !users.is_empty() {
                return Err(invalid(format!(
                    "placeholder %%{name}%% is used by template {}",
                    users.join(", ")
                )));
            }
        }
        Object::RedirectServer(r) => in_use(
            target,
            Kind::Device,
            &v.users(Kind::Device, |o| {
                matches!(o, Object::Device(d) if d.redirect_server.as_deref() == Some(&r.name))
            })?,
        )?,
        Object::Role(r) => in_use(
            target,
            Kind::User,
            &v.users(Kind::User, |o| matches!(o, Object::User(u) if u.role == r.name))?,
        )?,
        Object::Setting(_)
        | Object::Device(_)
        | Object::Ha(_)
        | Object::User(_)
        | Object::Task(_)
        | Object::Mail(_) => {}
    }
    Ok(())
}
