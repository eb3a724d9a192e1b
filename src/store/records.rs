//! On-disk records: the store's ABI.
//!
//! Every value written to LMDB is a postcard-encoded enum whose variant is the
//! record's version (`V1`, later `V2`...). A new version is a new variant;
//! old variants stay decodable forever and are converted to the current
//! domain type here. Domain types (`model`) never derive `Serialize`: this
//! module is the only place that knows the layout, and the golden-byte tests
//! at the bottom fail if a layout changes by accident.

use serde::{Deserialize, Serialize};

use crate::model::access::{Access, Area, Permission};
use crate::model::prov::{
    FileFormat, FileRule, MacFormat, PlaceholderValue, RedirectApi, RedirectBrand, YmcsRegion,
};
use crate::model::{
    Account, Action, Brand, Device, DeviceModel, HaSettings, Kind, Mac, Object, Placeholder,
    RedirectServer, Role, SerialSource, Setting, SettingKey, Source, Template, Tenant, User,
};

/// Why a record could not be turned back into a domain value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------- objects

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum SettingRecord {
    V1 { value: String },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum TenantRecord {
    V1 { uuid: String, name: String },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum AccountRecord {
    V1 {
        tenant: Option<String>,
        extension: String,
        sip_user: String,
        sip_password: String,
        display_name: String,
        first_name: String,
        last_name: String,
        email: String,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum BrandRecord {
    V1 { name: String },
}

/// A file rule as prefix, MAC format index (`MacFormat::ALL`), suffix.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct FileRuleV1 {
    prefix: String,
    mac_format: u8,
    suffix: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum ModelRecord {
    V1 {
        name: String,
        brand: String,
        xml: bool,
        rules: Vec<FileRuleV1>,
        model_files: Vec<(String, String)>,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum TemplateRecord {
    V1 {
        tenant: Option<String>,
        name: String,
        model: String,
        content: String,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum DeviceRecord {
    /// Same bytes as the original struct variant `V1 { .. }`.
    V1(DeviceV1),
    /// Adds the per-device HTTP digest credentials.
    V2 {
        v1: DeviceV1,
        http_user: String,
        http_password: String,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct DeviceV1 {
    mac: [u8; 6],
    tenant: Option<String>,
    enabled: bool,
    model: String,
    template: String,
    account: Option<String>,
    redirect_server: Option<String>,
    notes: String,
    dhcp: bool,
    ip: Option<[u8; 4]>,
    netmask: Option<[u8; 4]>,
    gateway: Option<[u8; 4]>,
    dns1: Option<[u8; 4]>,
    dns2: Option<[u8; 4]>,
    phone_user: String,
    phone_password: String,
    remote_addr: String,
    remote_port: Option<u16>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum PlaceholderValueV1 {
    Static(String),
    Interface(String),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum PlaceholderRecord {
    V1 {
        tenant: Option<String>,
        name: String,
        value: PlaceholderValueV1,
    },
}

/// A user; `password_hash` is a PHC-style string (`auth::password`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum UserRecord {
    V1 {
        name: String,
        password_hash: String,
        role: String,
        tenant: Option<String>,
        email: String,
    },
}

/// A custom role: permissions as (area name, write).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum RoleRecord {
    V1 {
        name: String,
        permissions: Vec<(String, bool)>,
        tenant_scoped: bool,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum RedirectServerRecord {
    /// Same bytes as the original struct variant `V1 { .. }`. Its `user`
    /// and `password` served every API of the brand (REST first, XML-RPC
    /// after a refusal).
    V1(RedirectServerV1),
    /// Names the API and keeps the REST access key apart from the XML-RPC
    /// user and password.
    V2 {
        v1: RedirectServerV1,
        /// `RedirectApi::ALL` index.
        api: u8,
        access_key_id: String,
        access_key_secret: String,
        /// 0 eu, 1 us, 2 au.
        region: u8,
    },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct RedirectServerV1 {
    name: String,
    /// 0 Snom, 1 Yealink, 2 Escene.
    brand: u8,
    user: String,
    password: String,
    enabled: bool,
    url: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct HaPathV1 {
    interface: String,
    local_ip: [u8; 4],
    remote_ip: [u8; 4],
    prefix: u8,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct HaResourceV1 {
    addr: [u8; 4],
    prefix: u8,
    interface: String,
}

/// Times in microseconds.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum HaRecord {
    V1 {
        /// 0 disabled, 1 enabled, 2 coordinator.
        role: u8,
        remote_serial: String,
        pairing_code: Option<String>,
        lan: HaPathV1,
        sync: HaPathV1,
        resources: Vec<HaResourceV1>,
        ping_group: Vec<[u8; 4]>,
        default_remote: bool,
        heartbeat_interval_us: u64,
        keepalive_warning_us: u64,
        keepalive_out_of_service_us: u64,
        init_timeout_us: u64,
        ping_interval_us: u64,
        ping_dampen_us: u64,
        /// `file:PATH`, `dmi` or `devicetree`.
        serial_source: String,
        hook_dir: Option<String>,
    },
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn ha_path_v1(p: &crate::ha::PathConfig) -> HaPathV1 {
    HaPathV1 {
        interface: p.interface.clone(),
        local_ip: p.local_ip.octets(),
        remote_ip: p.remote_ip.octets(),
        prefix: p.prefix,
    }
}

fn ha_path(p: HaPathV1) -> crate::ha::PathConfig {
    crate::ha::PathConfig {
        interface: p.interface,
        local_ip: p.local_ip.into(),
        remote_ip: p.remote_ip.into(),
        prefix: p.prefix,
    }
}

fn encode_ha(h: &HaSettings) -> Vec<u8> {
    use crate::ha::{DefaultActive, Role};
    let c = &h.config;
    to_bytes(&HaRecord::V1 {
        role: match c.role {
            Role::Disabled => 0,
            Role::Enabled => 1,
            Role::Coordinator => 2,
        },
        remote_serial: c.remote_serial.clone(),
        pairing_code: c.pairing_code.clone(),
        lan: ha_path_v1(&c.lan),
        sync: ha_path_v1(&c.sync),
        resources: c
            .resources
            .iter()
            .map(|r| HaResourceV1 {
                addr: r.addr.octets(),
                prefix: r.prefix,
                interface: r.interface.clone(),
            })
            .collect(),
        ping_group: c.ping_group.iter().map(|a| a.octets()).collect(),
        default_remote: c.default_active == DefaultActive::Remote,
        heartbeat_interval_us: micros(c.heartbeat_interval),
        keepalive_warning_us: micros(c.keepalive_warning),
        keepalive_out_of_service_us: micros(c.keepalive_out_of_service),
        init_timeout_us: micros(c.init_timeout),
        ping_interval_us: micros(c.ping_interval),
        ping_dampen_us: micros(c.ping_dampen),
        serial_source: h.serial_source.to_string(),
        hook_dir: h.hook_dir.clone(),
    })
}

fn decode_ha(bytes: &[u8]) -> Result<HaSettings, DecodeError> {
    use crate::ha::{Config, DefaultActive, ResourceIp, Role};
    use std::time::Duration;
    let HaRecord::V1 {
        role,
        remote_serial,
        pairing_code,
        lan,
        sync,
        resources,
        ping_group,
        default_remote,
        heartbeat_interval_us,
        keepalive_warning_us,
        keepalive_out_of_service_us,
        init_timeout_us,
        ping_interval_us,
        ping_dampen_us,
        serial_source,
        hook_dir,
    } = from_bytes(bytes)?;
    let role = match role {
        0 => Role::Disabled,
        1 => Role::Enabled,
        2 => Role::Coordinator,
        r => return Err(DecodeError(format!("unknown HA role {r}"))),
    };
    let mut config = Config::new(
        role,
        ha_path(lan),
        ha_path(sync),
        resources
            .into_iter()
            .map(|r| ResourceIp {
                addr: r.addr.into(),
                prefix: r.prefix,
                interface: r.interface,
            })
            .collect(),
        if default_remote {
            DefaultActive::Remote
        } else {
            DefaultActive::Local
        },
    );
    config.remote_serial = remote_serial;
    config.pairing_code = pairing_code;
    config.ping_group = ping_group.into_iter().map(Into::into).collect();
    config.heartbeat_interval = Duration::from_micros(heartbeat_interval_us);
    config.keepalive_warning = Duration::from_micros(keepalive_warning_us);
    config.keepalive_out_of_service = Duration::from_micros(keepalive_out_of_service_us);
    config.init_timeout = Duration::from_micros(init_timeout_us);
    config.ping_interval = Duration::from_micros(ping_interval_us);
    config.ping_dampen = Duration::from_micros(ping_dampen_us);
    Ok(HaSettings {
        config,
        serial_source: SerialSource::parse(&serial_source).map_err(DecodeError)?,
        hook_dir,
    })
}

fn octets(a: Option<std::net::Ipv4Addr>) -> Option<[u8; 4]> {
    a.map(|a| a.octets())
}

fn ipv4(a: Option<[u8; 4]>) -> Option<std::net::Ipv4Addr> {
    a.map(std::net::Ipv4Addr::from)
}

/// Encodes an object's value (its key holds kind and id).
pub fn encode_object(object: &Object) -> Vec<u8> {
    match object {
        Object::Setting(s) => to_bytes(&SettingRecord::V1 {
            value: s.value().to_string(),
        }),
        Object::Tenant(t) => to_bytes(&TenantRecord::V1 {
            uuid: t.uuid.clone(),
            name: t.name.clone(),
        }),
        Object::Account(a) => to_bytes(&AccountRecord::V1 {
            tenant: a.tenant.clone(),
            extension: a.extension.clone(),
            sip_user: a.sip_user.clone(),
            sip_password: a.sip_password.clone(),
            display_name: a.display_name.clone(),
            first_name: a.first_name.clone(),
            last_name: a.last_name.clone(),
            email: a.email.clone(),
        }),
        Object::Brand(b) => to_bytes(&BrandRecord::V1 {
            name: b.name.clone(),
        }),
        Object::Model(m) => to_bytes(&ModelRecord::V1 {
            name: m.name.clone(),
            brand: m.brand.clone(),
            xml: m.format == FileFormat::Xml,
            rules: m
                .rules
                .iter()
                .map(|r| FileRuleV1 {
                    prefix: r.prefix.clone(),
                    mac_format: MacFormat::ALL.iter().position(|f| *f == r.mac).unwrap_or(0) as u8,
                    suffix: r.suffix.clone(),
                })
                .collect(),
            model_files: m.model_files.clone(),
        }),
        Object::Template(t) => to_bytes(&TemplateRecord::V1 {
            tenant: t.tenant.clone(),
            name: t.name.clone(),
            model: t.model.clone(),
            content: t.content.clone(),
        }),
        Object::Device(d) => to_bytes(&DeviceRecord::V2 {
            http_user: d.http_user.clone(),
            http_password: d.http_password.clone(),
            v1: DeviceV1 {
                mac: d.mac.octets(),
                tenant: d.tenant.clone(),
                enabled: d.enabled,
                model: d.model.clone(),
                template: d.template.clone(),
                account: d.account.clone(),
                redirect_server: d.redirect_server.clone(),
                notes: d.notes.clone(),
                dhcp: d.dhcp,
                ip: octets(d.ip),
                netmask: octets(d.netmask),
                gateway: octets(d.gateway),
                dns1: octets(d.dns1),
                dns2: octets(d.dns2),
                phone_user: d.phone_user.clone(),
                phone_password: d.phone_password.clone(),
                remote_addr: d.remote_addr.clone(),
                remote_port: d.remote_port,
            },
        }),
        Object::Placeholder(p) => to_bytes(&PlaceholderRecord::V1 {
            tenant: p.tenant.clone(),
            name: p.name.clone(),
            value: match &p.value {
                PlaceholderValue::Static(v) => PlaceholderValueV1::Static(v.clone()),
                PlaceholderValue::Interface(i) => PlaceholderValueV1::Interface(i.clone()),
            },
        }),
        Object::RedirectServer(r) => to_bytes(&RedirectServerRecord::V2 {
            v1: RedirectServerV1 {
                name: r.name.clone(),
                brand: match r.brand {
                    RedirectBrand::Snom => 0,
                    RedirectBrand::Yealink => 1,
                    RedirectBrand::Escene => 2,
                },
                user: r.user.clone(),
                password: r.password.clone(),
                enabled: r.enabled,
                url: r.url.clone(),
            },
            api: RedirectApi::ALL
                .iter()
                .position(|a| *a == r.api)
                .and_then(|i| u8::try_from(i).ok())
                .unwrap_or(u8::MAX),
            access_key_id: r.access_key_id.clone(),
            access_key_secret: r.access_key_secret.clone(),
            region: match r.region {
                YmcsRegion::Eu => 0,
                YmcsRegion::Us => 1,
                YmcsRegion::Au => 2,
            },
        }),
        Object::Ha(h) => encode_ha(h),
        Object::Task(t) => super::task_records::encode_task(t),
        Object::Mail(m) => super::task_records::encode_mail(m),
        Object::User(u) => to_bytes(&UserRecord::V1 {
            name: u.name.clone(),
            password_hash: u.password_hash.clone(),
            role: u.role.clone(),
            tenant: u.tenant.clone(),
            email: u.email.clone(),
        }),
        Object::Role(r) => to_bytes(&RoleRecord::V1 {
            name: r.name.clone(),
            permissions: r
                .permissions
                .iter()
                .map(|p| (p.area.as_str().to_string(), p.access == Access::Write))
                .collect(),
            tenant_scoped: r.tenant_scoped,
        }),
    }
}

/// Decodes an object stored under `kind`/`id`.
pub fn decode_object(kind: Kind, id: &str, bytes: &[u8]) -> Result<Object, DecodeError> {
    let object = match kind {
        Kind::Setting => {
            let SettingRecord::V1 { value } = from_bytes(bytes)?;
            let key = SettingKey::from_name(id)
                .ok_or_else(|| DecodeError(format!("unknown setting {id:?}")))?;
            return Setting::new(key, &value)
                .map(Object::Setting)
                .map_err(DecodeError);
        }
        Kind::Tenant => {
            let TenantRecord::V1 { uuid, name } = from_bytes(bytes)?;
            Object::Tenant(Tenant { uuid, name })
        }
        Kind::Account => {
            let AccountRecord::V1 {
                tenant,
                extension,
                sip_user,
                sip_password,
                display_name,
                first_name,
                last_name,
                email,
            } = from_bytes(bytes)?;
            Object::Account(Account {
                tenant,
                extension,
                sip_user,
                sip_password,
                display_name,
                first_name,
                last_name,
                email,
            })
        }
        Kind::Brand => {
            let BrandRecord::V1 { name } = from_bytes(bytes)?;
            Object::Brand(Brand { name })
        }
        Kind::Model => {
            let ModelRecord::V1 {
                name,
                brand,
                xml,
                rules,
                model_files,
            } = from_bytes(bytes)?;
            let rules = rules
                .into_iter()
                .map(|r| {
                    let mac = *MacFormat::ALL
                        .get(usize::from(r.mac_format))
                        .ok_or_else(|| {
                            DecodeError(format!("unknown MAC format {}", r.mac_format))
                        })?;
                    Ok(FileRule {
                        prefix: r.prefix,
                        mac,
                        suffix: r.suffix,
                    })
                })
                .collect::<Result<Vec<_>, DecodeError>>()?;
            Object::Model(DeviceModel {
                name,
                brand,
                format: if xml {
                    FileFormat::Xml
                } else {
                    FileFormat::Plain
                },
                rules,
                model_files,
            })
        }
        Kind::Template => {
            let TemplateRecord::V1 {
                tenant,
                name,
                model,
                content,
            } = from_bytes(bytes)?;
            Object::Template(Template {
                tenant,
                name,
                model,
                content,
            })
        }
        Kind::Device => {
            let (v1, http_user, http_password) = match from_bytes(bytes)? {
                DeviceRecord::V1(v1) => (v1, String::new(), String::new()),
                DeviceRecord::V2 {
                    v1,
                    http_user,
                    http_password,
                } => (v1, http_user, http_password),
            };
            let DeviceV1 {
                mac,
                tenant,
                enabled,
                model,
                template,
                account,
                redirect_server,
                notes,
                dhcp,
                ip,
                netmask,
                gateway,
                dns1,
                dns2,
                phone_user,
                phone_password,
                remote_addr,
                remote_port,
            } = v1;
            Object::Device(Device {
                mac: Mac::from_octets(mac),
                tenant,
                enabled,
                model,
                template,
                account,
                redirect_server,
                notes,
                dhcp,
                ip: ipv4(ip),
                netmask: ipv4(netmask),
                gateway: ipv4(gateway),
                dns1: ipv4(dns1),
                dns2: ipv4(dns2),
                phone_user,
                phone_password,
                remote_addr,
                remote_port,
                http_user,
                http_password,
            })
        }
        Kind::Placeholder => {
            let PlaceholderRecord::V1 {
                tenant,
                name,
                value,
            } = from_bytes(bytes)?;
            Object::Placeholder(Placeholder {
                tenant,
                name,
                value: match value {
                    PlaceholderValueV1::Static(v) => PlaceholderValue::Static(v),
                    PlaceholderValueV1::Interface(i) => PlaceholderValue::Interface(i),
                },
            })
        }
        Kind::RedirectServer => Object::RedirectServer(decode_redirect_server(bytes)?),
        Kind::Ha => Object::Ha(decode_ha(bytes)?),
        Kind::Task => Object::Task(super::task_records::decode_task(bytes)?),
        Kind::Mail => Object::Mail(super::task_records::decode_mail(bytes)?),
        Kind::User => {
            let UserRecord::V1 {
                name,
                password_hash,
                role,
                tenant,
                email,
            } = from_bytes(bytes)?;
            Object::User(User {
                name,
                password_hash,
                role,
                tenant,
                email,
            })
        }
        Kind::Role => {
            let RoleRecord::V1 {
                name,
                permissions,
                tenant_scoped,
            } = from_bytes(bytes)?;
            let permissions = permissions
                .into_iter()
                .map(|(area, write)| {
                    Ok(Permission {
                        area: Area::from_name(&area)
                            .ok_or_else(|| DecodeError(format!("unknown area {area:?}")))?,
                        access: if write { Access::Write } else { Access::Read },
                    })
                })
                .collect::<Result<_, DecodeError>>()?;
            Object::Role(Role {
                name,
                permissions,
                tenant_scoped,
            })
        }
    };
    if object.id() != id {
        return Err(DecodeError(format!(
            "{} record under id {id:?} holds {:?}",
            kind.as_str(),
            object.id()
        )));
    }
    Ok(object)
}

/// The object an LMDB key of [`object_key`] names; `None` for another key.
pub fn object_of_key(key: &[u8]) -> Option<crate::model::ObjectRef> {
    let nul = key.iter().position(|b| *b == 0)?;
    let kind = Kind::from_name(std::str::from_utf8(&key[..nul]).ok()?)?;
    let id = std::str::from_utf8(&key[nul + 1..]).ok()?;
    Some(crate::model::ObjectRef {
        kind,
        id: id.to_string(),
    })
}

/// The LMDB key of an object: kind name, NUL, id.
pub fn object_key(kind: Kind, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(kind.as_str().len() + 1 + id.len());
    key.extend_from_slice(kind.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The key prefix of every object of `kind`.
pub fn kind_prefix(kind: Kind) -> Vec<u8> {
    object_key(kind, "")
}

/// Splits an object key back into kind and id.
pub fn split_object_key(key: &[u8]) -> Result<(Kind, String), DecodeError> {
    let bad = || DecodeError("malformed object key".to_string());
    let nul = key.iter().position(|&b| b == 0).ok_or_else(bad)?;
    let kind = std::str::from_utf8(&key[..nul]).map_err(|_| bad())?;
    let kind =
        Kind::from_name(kind).ok_or_else(|| DecodeError(format!("unknown kind {kind:?}")))?;
    let id = std::str::from_utf8(&key[nul + 1..]).map_err(|_| bad())?;
    Ok((kind, id.to_string()))
}

// ---------------------------------------------------------------- audit

/// The hashed part of an audit entry.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AuditBodyV1 {
    pub txid: u64,
    pub index: u32,
    /// UTC, microseconds since the Unix epoch.
    pub time_us: i64,
    pub user: String,
    pub source: SourceV1,
    pub action: ActionV1,
    pub kind: String,
    pub id: String,
    pub description: String,
    /// The object's record before and after the change (`encode_object`).
    pub before: Option<Vec<u8>>,
    pub after: Option<Vec<u8>>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionV1 {
    Create,
    Update,
    Delete,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum SourceV1 {
    Console,
    Address(std::net::IpAddr),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum AuditRecord {
    V1 {
        body: AuditBodyV1,
        prev_hash: [u8; 32],
        hash: [u8; 32],
    },
}

impl From<Action> for ActionV1 {
    fn from(a: Action) -> ActionV1 {
        match a {
            Action::Create => ActionV1::Create,
            Action::Update => ActionV1::Update,
            Action::Delete => ActionV1::Delete,
        }
    }
}

impl From<ActionV1> for Action {
    fn from(a: ActionV1) -> Action {
        match a {
            ActionV1::Create => Action::Create,
            ActionV1::Update => Action::Update,
            ActionV1::Delete => Action::Delete,
        }
    }
}

impl From<&Source> for SourceV1 {
    fn from(s: &Source) -> SourceV1 {
        match s {
            Source::Console => SourceV1::Console,
            Source::Address(ip) => SourceV1::Address(*ip),
        }
    }
}

impl From<&SourceV1> for Source {
    fn from(s: &SourceV1) -> Source {
        match s {
            SourceV1::Console => Source::Console,
            SourceV1::Address(ip) => Source::Address(*ip),
        }
    }
}

fn decode_redirect_server(bytes: &[u8]) -> Result<RedirectServer, DecodeError> {
    let (v1, v2) = match from_bytes(bytes)? {
        RedirectServerRecord::V1(v1) => (v1, None),
        RedirectServerRecord::V2 {
            v1,
            api,
            access_key_id,
            access_key_secret,
            region,
        } => (v1, Some((api, access_key_id, access_key_secret, region))),
    };
    let RedirectServerV1 {
        name,
        brand,
        user,
        password,
        enabled,
        url,
    } = v1;
    let brand = match brand {
        0 => RedirectBrand::Snom,
        1 => RedirectBrand::Yealink,
        2 => RedirectBrand::Escene,
        b => return Err(DecodeError(format!("unknown redirection brand {b}"))),
    };
    let (api, access_key_id, access_key_secret, region) = match v2 {
        Some((api, id, secret, region)) => (
            *RedirectApi::ALL
                .get(usize::from(api))
                .ok_or_else(|| DecodeError(format!("unknown redirection api {api}")))?,
            id,
            secret,
            match region {
                0 => YmcsRegion::Eu,
                1 => YmcsRegion::Us,
                2 => YmcsRegion::Au,
                r => return Err(DecodeError(format!("unknown YMCS region {r}"))),
            },
        ),
        // A V1 server was tried first with the brand's REST API (SRAPS,
        // the signed RPS JSON API), with `user`/`password` as the access
        // key: it keeps that API, its key, and its user and password for
        // a switch to XML-RPC.
        None => (
            match brand {
                RedirectBrand::Snom => RedirectApi::Sraps,
                RedirectBrand::Yealink => RedirectApi::RpsJson,
                RedirectBrand::Escene => RedirectApi::None,
            },
            user.clone(),
            password.clone(),
            YmcsRegion::Eu,
        ),
    };
    Ok(RedirectServer {
        name,
        brand,
        api,
        user,
        password,
        access_key_id,
        access_key_secret,
        region,
        enabled,
        url,
    })
}

/// The audit key: transaction id then index within it, big-endian so that
/// LMDB's byte order is the log's order.
pub fn audit_key(txid: u64, index: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&txid.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

pub fn split_audit_key(key: &[u8]) -> Option<(u64, u32)> {
    let key: &[u8; 12] = key.try_into().ok()?;
    let (tx, ix) = key.split_at(8);
    Some((
        u64::from_be_bytes(tx.try_into().ok()?),
        u32::from_be_bytes(ix.try_into().ok()?),
    ))
}

/// The chain hash of an entry: SHA-256 over a domain tag, the previous
/// entry's hash and the body's encoding.
pub fn chain_hash(prev: &[u8; 32], body: &AuditBodyV1) -> [u8; 32] {
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    h.update(b"kpbxd-audit-v1\0");
    h.update(prev);
    h.update(&to_bytes(body));
    let mut out = [0; 32];
    out.copy_from_slice(h.finish().as_ref());
    out
}

pub fn encode_audit(record: &AuditRecord) -> Vec<u8> {
    to_bytes(record)
}

pub fn decode_audit(bytes: &[u8]) -> Result<AuditRecord, DecodeError> {
    from_bytes(bytes)
}

// ---------------------------------------------------------------- meta

/// The identity of a data dir, written once when it is created.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum StoreIdRecord {
    V1 { magic: [u8; 8], created_us: i64 },
}

pub const MAGIC: [u8; 8] = *b"KPBXDSTO";

/// The head of the audit chain: the last entry's key and hash, and where a
/// verifier starts (an anchor, moved forward when old entries are pruned).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainV1 {
    pub next_txid: u64,
    pub head_key: Option<(u64, u32)>,
    pub head_hash: [u8; 32],
    pub anchor_key: Option<(u64, u32)>,
    pub anchor_prev_hash: [u8; 32],
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ChainRecord {
    V1(ChainV1),
}

pub fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    postcard::to_stdvec(value).unwrap_or_default()
}

pub fn from_bytes<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    postcard::from_bytes(bytes).map_err(|e| DecodeError(format!("undecodable record: {e}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn device_v1_records_still_decode_without_credentials() {
        let fields = vec![
            ("mac".to_string(), "00:04:13:00:00:01".to_string()),
            ("model".to_string(), "m".to_string()),
            ("template".to_string(), "t".to_string()),
            ("http_user".to_string(), "u".to_string()),
            ("http_password".to_string(), "p".to_string()),
        ];
        let mut f = crate::model::prov::Fields::new(&fields).unwrap();
        let d = Device::from_fields(None, &mut f).unwrap();
        let v2 = encode_object(&Object::Device(d.clone()));
        assert_eq!(v2[0], 1, "written as V2");
        assert_eq!(
            decode_object(Kind::Device, &d.mac.to_string(), &v2).unwrap(),
            Object::Device(d.clone())
        );
        // The same device as a V1 record: tag 0, then the V1 fields.
        let DeviceRecord::V2 { v1, .. } = from_bytes::<DeviceRecord>(&v2).unwrap() else {
            panic!("not V2");
        };
        let v1 = to_bytes(&DeviceRecord::V1(v1));
        assert_eq!(v1[0], 0);
        let Object::Device(old) = decode_object(Kind::Device, &d.mac.to_string(), &v1).unwrap()
        else {
            panic!("not a device");
        };
        assert!(old.http_user.is_empty() && old.http_password.is_empty());
        assert_eq!(old.mac, d.mac);
    }

    use super::*;

    #[test]
    fn redirect_server_v1_records_migrate_to_their_first_api() {
        // A V1 record as written before V2 existed: tag 0, then the fields.
        let v1 = |brand: u8| {
            to_bytes(&RedirectServerRecord::V1(RedirectServerV1 {
                name: "s".into(),
                brand,
                user: "k".into(),
                password: "p".into(),
                enabled: true,
                url: "u".into(),
            }))
        };
        assert_eq!(
            v1(0),
            [0, 1, b's', 0, 1, b'k', 1, b'p', 1, 1, b'u'],
            "V1 layout"
        );
        let Object::RedirectServer(snom) =
            decode_object(Kind::RedirectServer, "s", &v1(0)).unwrap()
        else {
            panic!("not a redirection server");
        };
        // The key it was tried with first, and the pair kept for XML-RPC.
        assert_eq!(snom.api, RedirectApi::Sraps);
        assert_eq!(
            (snom.access_key_id.as_str(), snom.access_key_secret.as_str()),
            ("k", "p")
        );
        assert_eq!((snom.user.as_str(), snom.password.as_str()), ("k", "p"));
        let Object::RedirectServer(yea) = decode_object(Kind::RedirectServer, "s", &v1(1)).unwrap()
        else {
            panic!("not a redirection server");
        };
        assert_eq!(yea.api, RedirectApi::RpsJson);
        let Object::RedirectServer(esc) = decode_object(Kind::RedirectServer, "s", &v1(2)).unwrap()
        else {
            panic!("not a redirection server");
        };
        assert_eq!(esc.api, RedirectApi::None);
        // Written back, it is a V2 record that decodes to the same server.
        let v2 = encode_object(&Object::RedirectServer(snom.clone()));
        assert_eq!(
            v2,
            [
                1, 1, b's', 0, 1, b'k', 1, b'p', 1, 1, b'u', 0, 1, b'k', 1, b'p', 0
            ],
            "V2 layout"
        );
        assert_eq!(
            decode_object(Kind::RedirectServer, "s", &v2).unwrap(),
            Object::RedirectServer(snom)
        );
        let mut bad = v2.clone();
        bad[11] = 9;
        assert!(decode_object(Kind::RedirectServer, "s", &bad).is_err());
    }

    #[test]
    fn setting_record_layout_is_pinned() {
        let s = Object::Setting(Setting::new(SettingKey::Hostname, "pbx").unwrap());
        // Variant 0 (V1), string length 3, "pbx".
        assert_eq!(encode_object(&s), [0, 3, b'p', b'b', b'x']);
        assert_eq!(
            decode_object(Kind::Setting, "hostname", &[0, 3, b'p', b'b', b'x']).unwrap(),
            s
        );
    }

    #[test]
    fn user_and_role_record_layouts_are_pinned() {
        let u = Object::User(User {
            name: "ann".into(),
            password_hash: "h".into(),
            role: "r".into(),
            tenant: None,
            email: "e".into(),
        });
        let bytes = [0, 3, b'a', b'n', b'n', 1, b'h', 1, b'r', 0, 1, b'e'];
        assert_eq!(encode_object(&u), bytes);
        assert_eq!(decode_object(Kind::User, "ann", &bytes).unwrap(), u);
        let r = Object::Role(Role {
            name: "r".into(),
            permissions: vec![Permission {
                area: Area::Audit,
                access: Access::Write,
            }],
            tenant_scoped: false,
        });
        let bytes = [0, 1, b'r', 1, 5, b'a', b'u', b'd', b'i', b't', 1, 0];
        assert_eq!(encode_object(&r), bytes);
        assert_eq!(decode_object(Kind::Role, "r", &bytes).unwrap(), r);
        let unknown = [0, 1, b'r', 1, 4, b'm', b'o', b'o', b'n', 1, 0];
        assert!(decode_object(Kind::Role, "r", &unknown).is_err());
    }

    #[test]
    fn audit_record_layout_is_pinned() {
        let body = AuditBodyV1 {
            txid: 1,
            index: 0,
            time_us: 2,
            user: "u".into(),
            source: SourceV1::Console,
            action: ActionV1::Create,
            kind: "k".into(),
            id: "i".into(),
            description: "d".into(),
            before: None,
            after: Some(vec![9]),
        };
        let bytes = to_bytes(&body);
        assert_eq!(
            bytes,
            [
                1, 0, 4, 1, b'u', 0, 0, 1, b'k', 1, b'i', 1, b'd', 0, 1, 1, 9
            ]
        );
        let h = chain_hash(&[0; 32], &body);
        assert_ne!(h, chain_hash(&[1; 32], &body));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        for len in 0..2000usize {
            let bytes: Vec<u8> = (0..len % 97)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = decode_audit(&bytes);
            let _ = decode_object(Kind::Setting, "hostname", &bytes);
            let _ = split_object_key(&bytes);
            let _ = split_audit_key(&bytes);
        }
    }

    #[test]
    fn ha_record_round_trips_and_starts_with_its_version() {
        let fields: Vec<(String, String)> = [
            ("role", "enabled"),
            ("interface", "lan0"),
            ("local_ip", "198.51.100.2"),
            ("remote_ip", "198.51.100.1"),
            ("sync_interface", "sync0"),
            ("sync_local_ip", "192.0.2.2"),
            ("sync_remote_ip", "192.0.2.1"),
            ("resources", "198.51.100.10"),
            ("ping_group", "198.51.100.100"),
            ("heartbeat_interval", "0.1"),
            ("keepalive_warning", "0.3"),
            ("keepalive_out_of_service", "0.5"),
            ("init_timeout", "2"),
            ("serial_source", "file:/run/serial"),
            ("hook_dir", "/etc/kpbx/ha"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let o = Object::Ha(HaSettings::from_fields(None, &fields).unwrap());
        let bytes = encode_object(&o);
        assert_eq!(bytes[..2], [0, 1], "variant V1, role enabled");
        assert_eq!(decode_object(Kind::Ha, "ha", &bytes).unwrap(), o);
        assert!(decode_object(Kind::Ha, "other", &bytes).is_err());
    }

    #[test]
    fn keys_round_trip() {
        let k = object_key(Kind::Setting, "sip_port");
        assert_eq!(
            split_object_key(&k).unwrap(),
            (Kind::Setting, "sip_port".to_string())
        );
        assert_eq!(split_audit_key(&audit_key(7, 3)), Some((7, 3)));
        assert!(audit_key(1, u32::MAX) < audit_key(2, 0));
    }
}
