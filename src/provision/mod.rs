//! Provisioning files: from the configuration to each phone's files.
//!
//! Architecture invariant: pure. [`generate`] takes a [`Snapshot`] of the
//! configuration (plus the interface addresses dynamic placeholders need)
//! and returns every file with its content; the daemon writes them to the
//! data dir and serves them. Nothing here reads the store, the clock or
//! the network.
//!
//! A device gets files when it is enabled and has an account: one per
//! file-name rule of its model, rendered from its template; each model's
//! model-wide files are rendered once per tenant that has devices of it.

pub mod catalogue;
pub mod dictionary;
pub mod guard;
pub mod template;
pub mod tz;
pub mod urls;

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;

use crate::model::prov::{FileFormat, MacFormat, PlaceholderValue};
use crate::model::{Account, Device, DeviceModel, Mac, Placeholder, Template};

/// Built-in placeholders: name and meaning. README.md lists them too.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "PBXADDRESS",
        "address phones register to (the HA resource IP when HA is on)",
    ),
    ("SIPPORT", "the PBX's SIP UDP/TCP port"),
    ("SIPTLSPORT", "the PBX's SIP TLS port"),
    (
        "PROVURL",
        "provisioning URL of this device's files (ends with '/')",
    ),
    ("NTPSERVER", "NTP server"),
    ("TIMEZONE", "IANA time zone of the box, e.g. Europe/Rome"),
    (
        "TZOFFSET",
        "standard (non-DST) UTC offset of the time zone, e.g. +01:00",
    ),
    ("TZHOURS", "the same offset in hours, e.g. +1 or +5:30"),
    ("TZSECONDS", "the same offset in seconds, e.g. 3600"),
    (
        "TZPOSIX",
        "POSIX TZ rule of the time zone with its DST rules, e.g. CET-1CEST,M3.5.0,M10.5.0/3",
    ),
    ("HOSTNAME", "host name of the PBX"),
    (
        "FILENAME",
        "name of the file being generated (a model with several file rules renders each)",
    ),
    ("MAC", "device MAC, AABBCCDDEEFF"),
    ("MACLOWER", "device MAC, aabbccddeeff"),
    ("MACCOLON", "device MAC, AA:BB:CC:DD:EE:FF"),
    ("BRAND", "device brand"),
    ("MODEL", "device model"),
    (
        "IPADDRMODE",
        "on when the device uses DHCP, off when static",
    ),
    ("IPADDR", "static IP address"),
    ("IPNETMASK", "static netmask"),
    ("IPGATEWAY", "static gateway"),
    ("IPDNS1", "first DNS server"),
    ("IPDNS2", "second DNS server"),
    ("PHONEUSERNAME", "user name of the phone's web interface"),
    (
        "PHONEPASSWORD",
        "password of the phone's web interface (admin)",
    ),
    ("REMOTEADDR", "remote-control address"),
    ("REMOTEPORT", "remote-control port"),
    ("EXTENSION", "account extension"),
    ("SIPUSER", "account SIP user name"),
    ("SIPPASSWORD", "account SIP password"),
    ("DISPLAYNAME", "account display name"),
    ("FIRSTNAME", "account first name"),
    ("LASTNAME", "account last name"),
    ("EMAIL", "account e-mail"),
];

pub fn is_builtin(name: &str) -> bool {
    BUILTIN
        .iter()
        .chain(tz::PLACEHOLDERS)
        .any(|(n, _)| *n == name)
}

/// Box-wide values the placeholders need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PbxValues {
    pub hostname: String,
    pub pbx_address: String,
    pub sip_port: String,
    pub sip_tls_port: String,
    pub ntp_server: String,
    pub timezone: String,
    /// The zone in every vendor's encoding ([`tz::Values::new`]).
    pub tz: tz::Values,
    /// `http://PBXADDRESS[:port]/provisioning/`, without the tenant part.
    pub prov_base: String,
}

/// Everything generation reads.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub pbx: PbxValues,
    pub accounts: Vec<Account>,
    pub models: Vec<DeviceModel>,
    pub templates: Vec<Template>,
    pub devices: Vec<Device>,
    pub placeholders: Vec<Placeholder>,
    /// IPv4 addresses of the box's interfaces, by name.
    pub interfaces: BTreeMap<String, Ipv4Addr>,
}

/// One generated file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub tenant: Option<String>,
    pub name: String,
    pub content: Arc<[u8]>,
    /// The device it belongs to; `None` for a model-wide file.
    pub device: Option<Mac>,
}

impl File {
    /// The path below the provisioning root: `name` or `tenant/name`.
    pub fn path(&self) -> String {
        crate::model::prov::scoped_id(&self.tenant, &self.name)
    }
}

/// A device that got no file, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub device: Option<Mac>,
    pub message: String,
}

#[derive(Clone, Debug, Default)]
pub struct Output {
    pub files: Vec<File>,
    pub problems: Vec<Problem>,
    /// Devices that got their files with something left out (a time zone
    /// their vendor cannot express, a setting the built-in template cannot
    /// write), and what.
    pub warnings: Vec<Problem>,
    /// Devices that get no file by their configuration (disabled, no
    /// account), and why: not a fault, but listed.
    pub idle: Vec<Problem>,
}

struct Index<'a> {
    snapshot: &'a Snapshot,
    models: BTreeMap<&'a str, &'a DeviceModel>,
    templates: BTreeMap<(Option<&'a str>, &'a str), &'a Template>,
    accounts: BTreeMap<(Option<&'a str>, &'a str), &'a Account>,
    env: minijinja::Environment<'static>,
    compile_errors: BTreeMap<String, String>,
    /// The custom placeholders each template uses (without `_`).
    uses: BTreeMap<String, BTreeSet<String>>,
    /// Every placeholder each template uses.
    uses_all: BTreeMap<String, BTreeSet<String>>,
}

fn template_key(t: &Template) -> String {
    match &t.tenant {
        Some(tenant) => format!("{tenant}/{}", t.name),
        None => format!("-/{}", t.name),
    }
}

impl<'a> Index<'a> {
    fn new(snapshot: &'a Snapshot, builtin: &'a catalogue::Catalogue) -> Index<'a> {
        let mut models: BTreeMap<&str, &DeviceModel> = BTreeMap::new();
        for m in builtin.models.iter().chain(&snapshot.models) {
            models.insert(m.name.as_str(), m);
        }
        let mut templates = BTreeMap::new();
        for t in builtin.templates.iter().chain(&snapshot.templates) {
            templates.insert((t.tenant.as_deref(), t.name.as_str()), t);
        }
        let accounts = snapshot
            .accounts
            .iter()
            .map(|a| ((a.tenant.as_deref(), a.extension.as_str()), a))
            .collect();
        let mut env = template::environment();
        let mut compile_errors = BTreeMap::new();
        let mut uses = BTreeMap::new();
        let mut uses_all = BTreeMap::new();
        for t in templates.values() {
            let all = template::placeholders_used(&t.content);
            let custom = all
                .iter()
                .filter_map(|n| n.strip_prefix('_').map(str::to_string))
                .collect();
            uses.insert(template_key(t), custom);
            uses_all.insert(template_key(t), all);
            let format = models
                .get(t.model.as_str())
                .map_or(FileFormat::Plain, |m| m.format);
            let name = template::registered_name(&template_key(t), format);
            let (source, _) = template::translate(&t.content);
            if let Err(e) = env.add_template_owned(name.clone(), source) {
                compile_errors.insert(name, e.to_string());
            }
        }
        Index {
            snapshot,
            models,
            templates,
            accounts,
            env,
            compile_errors,
            uses,
            uses_all,
        }
    }

    /// Why a template's output lacks something on this box: each time-zone
    /// placeholder it uses that its vendor cannot fill (one message per
    /// reason).
    fn shortcomings(&self, t: &Template) -> BTreeSet<String> {
        let unavailable = &self.snapshot.pbx.tz.unavailable;
        self.uses_all
            .get(&template_key(t))
            .into_iter()
            .flatten()
            .filter_map(|name| unavailable.get(name.as_str()).cloned())
            .collect()
    }

    /// The custom placeholder values a template needs: an error only if a
    /// placeholder it uses cannot be resolved.
    fn custom_for(
        &self,
        t: &Template,
        tenant: Option<&str>,
    ) -> Result<BTreeMap<String, String>, String> {
        let empty = BTreeSet::new();
        let used = self.uses.get(&template_key(t)).unwrap_or(&empty);
        let mut out = BTreeMap::new();
        for (name, value) in self.custom(tenant) {
            match value {
                Ok(v) => {
                    out.insert(name, v);
                }
                Err(e) if used.contains(&name) => return Err(e),
                Err(_) => {}
            }
        }
        Ok(out)
    }

    /// A tenant's template, else the global one of that name (built-ins
    /// included).
    fn template(&self, tenant: Option<&str>, name: &str) -> Option<&'a Template> {
        self.templates
            .get(&(tenant, name))
            .or_else(|| self.templates.get(&(None, name)))
            .copied()
    }

    fn render(
        &self,
        t: &Template,
        format: FileFormat,
        ctx: &BTreeMap<&'static str, String>,
        custom: &BTreeMap<String, String>,
    ) -> Result<Vec<u8>, String> {
        let name = template::registered_name(&template_key(t), format);
        if let Some(e) = self.compile_errors.get(&name) {
            return Err(format!("template {} does not compile: {e}", t.name));
        }
        let tpl = self
            .env
            .get_template(&name)
            .map_err(|e| format!("template {}: {e}", t.name))?;
        let mut values: BTreeMap<String, &str> = ctx
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_str()))
            .collect();
        for (k, v) in custom {
            values.insert(format!("_{k}"), v);
        }
        tpl.render(&values)
            .map(String::into_bytes)
            .map_err(|e| format!("template {}: {e}", t.name))
    }

    /// Custom placeholders visible to a tenant: global ones overridden by
    /// the tenant's own. A dynamic one whose interface has no address is
    /// an error naming it.
    fn custom(&self, tenant: Option<&str>) -> BTreeMap<String, Result<String, String>> {
        let mut out = BTreeMap::new();
        let scoped = self
            .snapshot
            .placeholders
            .iter()
            .filter(|p| p.tenant.is_none())
            .chain(
                self.snapshot
                    .placeholders
                    .iter()
                    .filter(|p| p.tenant.as_deref() == tenant && tenant.is_some()),
            );
        for p in scoped {
            let value = match &p.value {
                PlaceholderValue::Static(v) => Ok(v.clone()),
                PlaceholderValue::Interface(i) => self
                    .snapshot
                    .interfaces
                    .get(i)
                    .map(|a| a.to_string())
                    .ok_or_else(|| format!("%%_{}%%: interface {i} has no IPv4 address", p.name)),
            };
            out.insert(p.name.clone(), value);
        }
        out
    }
}

/// The standard (non-DST) UTC offset of a zone in `year`, in seconds: the
/// smaller of its offsets on 1 January and 1 July, which is standard time in
/// both hemispheres.
pub fn standard_offset(tz: &jiff::tz::TimeZone, year: i16) -> i32 {
    let at = |month| {
        jiff::civil::date(year, month, 1)
            .to_zoned(tz.clone())
            .map(|z| z.offset().seconds())
            .unwrap_or(0)
    };
    at(1).min(at(7))
}

/// `+01:00` (`colon`) or `+1`, `+5:30`, `-3:30`.
fn offset_text(seconds: i32, colon: bool) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let (h, m) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
    match (colon, m) {
        (true, _) => format!("{sign}{h:02}:{m:02}"),
        (false, 0) => format!("{sign}{h}"),
        (false, _) => format!("{sign}{h}:{m:02}"),
    }
}

fn pbx_context(pbx: &PbxValues, tenant: Option<&str>) -> BTreeMap<&'static str, String> {
    let prov_url = match tenant {
        Some(t) => format!("{}{t}/", pbx.prov_base),
        None => pbx.prov_base.clone(),
    };
    BTreeMap::from([
        ("PBXADDRESS", pbx.pbx_address.clone()),
        ("SIPPORT", pbx.sip_port.clone()),
        ("SIPTLSPORT", pbx.sip_tls_port.clone()),
        ("PROVURL", prov_url),
        ("NTPSERVER", pbx.ntp_server.clone()),
        ("TIMEZONE", pbx.timezone.clone()),
        ("TZOFFSET", offset_text(pbx.tz.offset, true)),
        ("TZHOURS", offset_text(pbx.tz.offset, false)),
        ("TZSECONDS", pbx.tz.offset.to_string()),
        ("HOSTNAME", pbx.hostname.clone()),
        ("FILENAME", String::new()),
    ])
    .into_iter()
    .chain(
        tz::PLACEHOLDERS
            .iter()
            .map(|(n, _)| *n)
            .chain(["TZPOSIX"])
            .map(|n| (n, pbx.tz.values.get(n).cloned().unwrap_or_default())),
    )
    .collect()
}

fn device_context(
    pbx: &PbxValues,
    d: &Device,
    m: &DeviceModel,
    a: &Account,
) -> BTreeMap<&'static str, String> {
    let ip = |v: Option<Ipv4Addr>| v.map(|a| a.to_string()).unwrap_or_default();
    let mut ctx = pbx_context(pbx, d.tenant.as_deref());
    ctx.extend([
        ("MAC", d.mac.format(MacFormat::Upper)),
        ("MACLOWER", d.mac.format(MacFormat::Lower)),
        ("MACCOLON", d.mac.format(MacFormat::UpperColon)),
        ("BRAND", m.brand.clone()),
        ("MODEL", m.name.clone()),
        ("IPADDRMODE", if d.dhcp { "on" } else { "off" }.to_string()),
        ("IPADDR", ip(d.ip)),
        ("IPNETMASK", ip(d.netmask)),
        ("IPGATEWAY", ip(d.gateway)),
        ("IPDNS1", ip(d.dns1)),
        ("IPDNS2", ip(d.dns2)),
        ("PHONEUSERNAME", d.phone_user.clone()),
        ("PHONEPASSWORD", d.phone_password.clone()),
        ("REMOTEADDR", d.remote_addr.clone()),
        (
            "REMOTEPORT",
            d.remote_port.map(|p| p.to_string()).unwrap_or_default(),
        ),
        ("EXTENSION", a.extension.clone()),
        ("SIPUSER", a.sip_user.clone()),
        ("SIPPASSWORD", a.sip_password.clone()),
        ("DISPLAYNAME", a.display_name.clone()),
        ("FIRSTNAME", a.first_name.clone()),
        ("LASTNAME", a.last_name.clone()),
        ("EMAIL", a.email.clone()),
    ]);
    ctx
}

/// The files of one device (preview and generation share this), and what
/// they had to leave out.
fn device_files(ix: &Index, d: &Device) -> Result<(Vec<File>, BTreeSet<String>), String> {
    let account = d.account.as_deref().ok_or("device has no account")?;
    let a = ix
        .accounts
        .get(&(d.tenant.as_deref(), account))
        .ok_or_else(|| format!("account {account} does not exist"))?;
    let m = ix
        .models
        .get(d.model.as_str())
        .ok_or_else(|| format!("model {} does not exist", d.model))?;
    let t = ix
        .template(d.tenant.as_deref(), &d.template)
        .ok_or_else(|| format!("template {} does not exist", d.template))?;
    let mut ctx = device_context(&ix.snapshot.pbx, d, m, a);
    let info = catalogue::info(&m.name).filter(|_| is_builtin_model(m));
    let mut files = Vec::with_capacity(m.rules.len());
    let mut warnings = BTreeSet::new();
    // A template that does not name FILENAME writes the same content into
    // every file it makes for the device: rendered once.
    let mut rendered: BTreeMap<String, Arc<[u8]>> = BTreeMap::new();
    for (i, rule) in m.rules.iter().enumerate() {
        let name = rule.file_name(d.mac);
        let rt = match info.and_then(|x| x.rule_template(i)) {
            Some(own) => ix
                .template(d.tenant.as_deref(), own)
                .ok_or_else(|| format!("template {own} does not exist"))?,
            None => t,
        };
        let key = template_key(rt);
        let per_file = ix
            .uses_all
            .get(&key)
            .is_some_and(|u| u.contains("FILENAME"));
        let content = match rendered.get(&key) {
            Some(c) if !per_file => c.clone(),
            _ => {
                ctx.insert("FILENAME", name.clone());
                let custom = ix.custom_for(rt, d.tenant.as_deref())?;
                let c: Arc<[u8]> = ix.render(rt, m.format, &ctx, &custom)?.into();
                rendered.insert(key, c.clone());
                c
            }
        };
        warnings.extend(ix.shortcomings(rt));
        files.push(File {
            tenant: d.tenant.clone(),
            name,
            content,
            device: Some(d.mac),
        });
    }
    warnings.extend(catalogue::limits(t, d));
    Ok((files, warnings))
}

/// Whether `m` is the catalogue's own model (a user's model never shadows a
/// built-in name; the store refuses it).
fn is_builtin_model(m: &DeviceModel) -> bool {
    catalogue::catalogue().models.iter().any(|b| b == m)
}

/// Every file for the snapshot, and the devices that got none.
pub fn generate(snapshot: &Snapshot) -> Output {
    let ix = Index::new(snapshot, catalogue::catalogue());
    let mut out = Output::default();
    let mut model_tenants: BTreeSet<(Option<&str>, &str)> = BTreeSet::new();
    for d in &snapshot.devices {
        if !d.is_active() {
            out.idle.push(Problem {
                device: Some(d.mac),
                message: if d.enabled {
                    "no account".into()
                } else {
                    "disabled".into()
                },
            });
            continue;
        }
        match device_files(&ix, d) {
            Ok((files, warnings)) => {
                model_tenants.insert((d.tenant.as_deref(), d.model.as_str()));
                out.files.extend(files);
                out.warnings
                    .extend(warnings.into_iter().map(|message| Problem {
                        device: Some(d.mac),
                        message,
                    }));
            }
            Err(message) => out.problems.push(Problem {
                device: Some(d.mac),
                message,
            }),
        }
    }
    for (tenant, model) in model_tenants {
        let Some(m) = ix.models.get(model) else {
            continue;
        };
        for (file, template) in &m.model_files {
            let result = ix
                .template(tenant, template)
                .ok_or_else(|| format!("model {model}: template {template} does not exist"))
                .and_then(|t| {
                    let custom = ix.custom_for(t, tenant)?;
                    let mut ctx = pbx_context(&snapshot.pbx, tenant);
                    ctx.insert("FILENAME", file.clone());
                    ix.render(t, m.format, &ctx, &custom)
                });
            match result {
                Ok(content) => out.files.push(File {
                    tenant: tenant.map(str::to_string),
                    name: file.clone(),
                    content: content.into(),
                    device: None,
                }),
                Err(message) => out.problems.push(Problem {
                    device: None,
                    message,
                }),
            }
        }
    }
    out.files.sort_by_key(File::path);
    out.files.dedup_by(|a, b| a.path() == b.path());
    out
}

/// What SIP PnP tells each enabled device outside any tenant to fetch, relative to the
/// provisioning base URL (`http://ADDRESS/provisioning/`).
///
/// Snom phones fetch the NOTIFY's URL as their settings file (Snom's own example is
/// `.../sipphoneconfig.xml?mac={mac}`), so a Snom device gets the name of its first file
/// (`<MAC>.xml` with the catalogue's models). Yealink, Fanvil and Htek take a directory and
/// name the files themselves, and for the others nothing better is documented, so they get
/// the base alone (`shared/notes/provisioning.md` §3.1). The brand is the device model's.
///
/// Only devices that got files in `files` ([`generate`]'s output) are answered: one without
/// an account, or whose files could not be made, would be sent to fetch what is not there.
pub fn pnp_paths(snapshot: &Snapshot, files: &[File]) -> BTreeMap<Mac, String> {
    let provisioned: BTreeSet<Mac> = files.iter().filter_map(|f| f.device).collect();
    let builtin = &catalogue::catalogue().models;
    let model = |name: &str| {
        snapshot
            .models
            .iter()
            .chain(builtin)
            .find(|m| m.name == name)
    };
    snapshot
        .devices
        .iter()
        .filter(|d| d.tenant.is_none() && provisioned.contains(&d.mac))
        .map(|d| {
            let file = model(&d.model)
                .filter(|m| m.brand.eq_ignore_ascii_case("snom"))
                .and_then(|m| m.rules.first())
                .map(|r| r.file_name(d.mac));
            (d.mac, file.unwrap_or_default())
        })
        .collect()
}

/// The files one device would get, without saving anything.
pub fn preview(snapshot: &Snapshot, mac: Mac) -> Result<Vec<File>, String> {
    let ix = Index::new(snapshot, catalogue::catalogue());
    let d = snapshot
        .devices
        .iter()
        .find(|d| d.mac == mac)
        .ok_or_else(|| format!("device {mac} does not exist"))?;
    if !d.enabled {
        return Err(format!("device {mac} is disabled"));
    }
    device_files(&ix, d).map(|(files, _)| files)
}

/// The files one device would get were `template` (`name` or
/// `tenant/name`: the device's tenant's own or a shared one) to read
/// `content` and the device to use it: the template editor's preview of
/// text not yet saved. Nothing is saved; `snapshot` is this preview's copy.
pub fn preview_draft(
    mut snapshot: Snapshot,
    mac: Mac,
    template: &str,
    content: &str,
) -> Result<Vec<File>, String> {
    let (tenant, name) = match template.split_once('/') {
        Some((t, n)) => (Some(t), n),
        None => (None, template),
    };
    let d = snapshot
        .devices
        .iter_mut()
        .find(|d| d.mac == mac)
        .ok_or_else(|| format!("device {mac} does not exist"))?;
    if tenant.is_some() && tenant != d.tenant.as_deref() {
        return Err(format!(
            "template {template} is not of device {mac}'s tenant"
        ));
    }
    // The device's own lookup (its tenant's, else shared) must land on the
    // template named: a tenant's template of the same name hides a shared one.
    let own = snapshot
        .templates
        .iter()
        .any(|t| t.tenant.is_some() && t.tenant == d.tenant && t.name == name);
    if tenant.is_none() && own {
        return Err(format!(
            "template {template} is hidden for device {mac} by its tenant's own {name}"
        ));
    }
    d.template = name.to_string();
    let found = snapshot
        .templates
        .iter()
        .find(|t| t.tenant.as_deref() == tenant && t.name == name)
        .ok_or_else(|| format!("template {template} does not exist"))?;
    // The checks a save makes (placeholders known, syntax), with the line
    // and column, before rendering.
    let tenant = found.tenant.clone();
    let known = |n: &str| {
        is_builtin(n)
            || n.strip_prefix('_').is_some_and(|custom| {
                snapshot
                    .placeholders
                    .iter()
                    .any(|p| p.name == custom && (p.tenant.is_none() || p.tenant == tenant))
            })
    };
    template::check(content, &known).map_err(|e| format!("template {template}: {e}"))?;
    let found = snapshot
        .templates
        .iter_mut()
        .find(|t| t.tenant == tenant && t.name == name)
        .ok_or_else(|| format!("template {template} does not exist"))?;
    found.content = content.to_string();
    preview(&snapshot, mac)
}
