//! Provisioning objects: tenants, accounts, brands, device models, templates,
//! devices, custom placeholders and redirection servers.
//!
//! Each type is built from `key=value` fields (as typed on the console or
//! read from a CSV row) over its previous state, so `add` and `set` share one
//! parser, and every rule that concerns one object alone is checked here.
//! Rules that span objects (references, uniqueness, placeholders in use) are
//! checked by the store inside the commit.

use std::fmt;
use std::net::Ipv4Addr;

/// How secrets are shown anywhere outside the store.
pub const MASK: &str = "********";

/// A MAC address, stored normalised as 12 upper-case hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac([u8; 6]);

impl Mac {
    /// Accepts `AABBCCDDEEFF`, `AA:BB:CC:DD:EE:FF` and `AA-BB-CC-DD-EE-FF`,
    /// in either case.
    pub fn parse(text: &str) -> Result<Mac, String> {
        let bad = |why: &str| format!("{text:?} is not a MAC address: {why}");
        let digits: String = match text.len() {
            12 => text.to_string(),
            17 => {
                let sep = text.as_bytes()[2];
                if sep != b':' && sep != b'-' {
                    return Err(bad("separators must be ':' or '-'"));
                }
                let parts: Vec<&str> = text.split(sep as char).collect();
                if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
                    return Err(bad("expected six groups of two hex digits"));
                }
                parts.concat()
            }
            _ => {
                return Err(bad(
                    "expected 12 hex digits, optionally in pairs separated by ':' or '-'",
                ));
            }
        };
        let mut mac = [0u8; 6];
        for (i, byte) in mac.iter_mut().enumerate() {
            let pair = digits
                .get(2 * i..2 * i + 2)
                .ok_or_else(|| bad("not ASCII"))?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad("not hex"))?;
        }
        if mac == [0; 6] || mac == [0xff; 6] {
            return Err(bad(
                "all-zero and broadcast addresses are not device addresses",
            ));
        }
        if mac[0] & 1 == 1 {
            return Err(bad("a multicast address is not a device address"));
        }
        Ok(Mac(mac))
    }

    pub fn from_octets(octets: [u8; 6]) -> Mac {
        Mac(octets)
    }

    pub fn octets(self) -> [u8; 6] {
        self.0
    }

    pub fn format(self, f: MacFormat) -> String {
        let (sep, upper) = match f {
            MacFormat::Upper => ("", true),
            MacFormat::Lower => ("", false),
            MacFormat::UpperColon => (":", true),
            MacFormat::LowerColon => (":", false),
            MacFormat::UpperDash => ("-", true),
            MacFormat::LowerDash => ("-", false),
        };
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|b| {
                if upper {
                    format!("{b:02X}")
                } else {
                    format!("{b:02x}")
                }
            })
            .collect();
        parts.join(sep)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(MacFormat::Upper))
    }
}

/// How a MAC is written inside a file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MacFormat {
    Upper,
    Lower,
    UpperColon,
    LowerColon,
    UpperDash,
    LowerDash,
}

impl MacFormat {
    pub const ALL: &'static [MacFormat] = &[
        MacFormat::Upper,
        MacFormat::Lower,
        MacFormat::UpperColon,
        MacFormat::LowerColon,
        MacFormat::UpperDash,
        MacFormat::LowerDash,
    ];

    /// The format's name: the example MAC written in it.
    pub fn name(self) -> &'static str {
        match self {
            MacFormat::Upper => "AABBCCDDEEFF",
            MacFormat::Lower => "aabbccddeeff",
            MacFormat::UpperColon => "AA:BB:CC:DD:EE:FF",
            MacFormat::LowerColon => "aa:bb:cc:dd:ee:ff",
            MacFormat::UpperDash => "AA-BB-CC-DD-EE-FF",
            MacFormat::LowerDash => "aa-bb-cc-dd-ee-ff",
        }
    }

    pub fn from_name(name: &str) -> Option<MacFormat> {
        MacFormat::ALL.iter().copied().find(|f| f.name() == name)
    }
}

/// A file-name rule of a model: prefix + MAC + suffix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRule {
    pub prefix: String,
    pub mac: MacFormat,
    pub suffix: String,
}

impl FileRule {
    /// Parses `prefix{MAC}suffix`, where `{MAC}` is written in the wanted
    /// format, e.g. `snomD785-{AABBCCDDEEFF}.htm` or `{aabbccddeeff}.cfg`.
    pub fn parse(text: &str) -> Result<FileRule, String> {
        let (prefix, rest) = text.split_once('{').ok_or_else(|| {
            format!("file rule {text:?} has no {{MAC}} part, e.g. {{aabbccddeeff}}.cfg")
        })?;
        let (fmt, suffix) = rest
            .split_once('}')
            .ok_or_else(|| format!("file rule {text:?}: unclosed {{"))?;
        let mac = MacFormat::from_name(fmt).ok_or_else(|| {
            let known: Vec<&str> = MacFormat::ALL.iter().map(|f| f.name()).collect();
            format!(
                "file rule {text:?}: MAC format {fmt:?} is not one of {}",
                known.join(", ")
            )
        })?;
        for part in [prefix, suffix] {
            file_name_part(part).map_err(|e| format!("file rule {text:?}: {e}"))?;
        }
        if prefix.is_empty() && suffix.is_empty() {
            return Err(format!("file rule {text:?} needs a prefix or a suffix"));
        }
        Ok(FileRule {
            prefix: prefix.to_string(),
            mac,
            suffix: suffix.to_string(),
        })
    }

    pub fn file_name(&self, mac: Mac) -> String {
        format!("{}{}{}", self.prefix, mac.format(self.mac), self.suffix)
    }
}

impl fmt::Display for FileRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{{}}}{}", self.prefix, self.mac.name(), self.suffix)
    }
}

/// Characters a generated file name may contain: they end up in URLs, TFTP
/// requests and file system paths.
fn file_name_part(s: &str) -> Result<(), String> {
    if s.len() > 64 {
        return Err("longer than 64 characters".to_string());
    }
    if s.contains("..") {
        return Err("may not contain \"..\"".to_string());
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        Some(c) => Err(format!(
            "character {c:?} is not allowed (letters, digits, '.', '-', '_')"
        )),
        None => Ok(()),
    }
}

/// A file name for a model-wide file.
pub fn file_name(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("a file name is required".to_string());
    }
    if s.starts_with('.') {
        return Err(format!("file name {s:?} may not start with '.'"));
    }
    file_name_part(s).map_err(|e| format!("file name {s:?}: {e}"))?;
    Ok(s.to_string())
}

/// The file format of a model's files, which sets how values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    Xml,
    Plain,
}

impl FileFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Xml => "xml",
            FileFormat::Plain => "plain",
        }
    }

    fn parse(s: &str) -> Result<FileFormat, String> {
        match s {
            "xml" => Ok(FileFormat::Xml),
            "plain" => Ok(FileFormat::Plain),
            _ => Err(format!("format {s:?} is not xml or plain")),
        }
    }
}

/// The brand of a redirection service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectBrand {
    Snom,
    Yealink,
    Escene,
}

impl RedirectBrand {
    pub fn as_str(self) -> &'static str {
        match self {
            RedirectBrand::Snom => "snom",
            RedirectBrand::Yealink => "yealink",
            RedirectBrand::Escene => "escene",
        }
    }

    fn parse(s: &str) -> Result<RedirectBrand, String> {
        match s.to_ascii_lowercase().as_str() {
            "snom" => Ok(RedirectBrand::Snom),
            "yealink" => Ok(RedirectBrand::Yealink),
            "escene" => Ok(RedirectBrand::Escene),
            _ => Err(format!("brand {s:?} is not snom, yealink or escene")),
        }
    }
}

/// The vendor API a redirection server is reached through. Each takes its
/// own kind of credentials: the XML-RPC services the account's user and
/// password (HTTP Basic), the REST services an access key id and secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectApi {
    /// Snom SRAPS REST API (Hawk; access key id and secret).
    Sraps,
    /// Snom's XML-RPC `redirect.*` service (user and password).
    SnomXmlrpc,
    /// Yealink Management Cloud Service Open API v2 (OAuth token from the
    /// RPS portal's AccessKey ID and Secret).
    Ymcs,
    /// Yealink's "JSON API for RPS Management Platform" on api-dm
    /// (`X-Ca-*` signed; access key id and secret).
    RpsJson,
    /// Yealink RPS XML-RPC (user and password).
    RpsXmlrpc,
    /// No API (Escene publishes none).
    None,
}

impl RedirectApi {
    pub const ALL: [RedirectApi; 6] = [
        RedirectApi::Sraps,
        RedirectApi::SnomXmlrpc,
        RedirectApi::Ymcs,
        RedirectApi::RpsJson,
        RedirectApi::RpsXmlrpc,
        RedirectApi::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RedirectApi::Sraps => "sraps",
            RedirectApi::SnomXmlrpc => "snom_xmlrpc",
            RedirectApi::Ymcs => "ymcs",
            RedirectApi::RpsJson => "rps_json",
            RedirectApi::RpsXmlrpc => "rps_xmlrpc",
            RedirectApi::None => "none",
        }
    }

    /// The brand whose service this API reaches.
    pub fn brand(self) -> RedirectBrand {
        match self {
            RedirectApi::Sraps | RedirectApi::SnomXmlrpc => RedirectBrand::Snom,
            RedirectApi::Ymcs | RedirectApi::RpsJson | RedirectApi::RpsXmlrpc => {
                RedirectBrand::Yealink
            }
            RedirectApi::None => RedirectBrand::Escene,
        }
    }

    /// A new server's API when none is named: what the vendor offers new
    /// accounts today (SRAPS replaced Snom's RDS; current Yealink RPS
    /// accounts get YMCS keys).
    pub fn default_for(brand: RedirectBrand) -> RedirectApi {
        match brand {
            RedirectBrand::Snom => RedirectApi::Sraps,
            RedirectBrand::Yealink => RedirectApi::Ymcs,
            RedirectBrand::Escene => RedirectApi::None,
        }
    }

    /// Whether the API authenticates with an access key id and secret
    /// (otherwise with the account's user and password, or nothing).
    pub fn uses_keys(self) -> bool {
        matches!(
            self,
            RedirectApi::Sraps | RedirectApi::Ymcs | RedirectApi::RpsJson
        )
    }

    fn parse(s: &str) -> Result<RedirectApi, String> {
        RedirectApi::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == s.to_ascii_lowercase())
            .ok_or_else(|| {
                format!("api {s:?} is not sraps, snom_xmlrpc, ymcs, rps_json, rps_xmlrpc or none")
            })
    }
}

/// The YMCS data centre an account lives in (the "Domain" the RPS portal
/// shows under System > Integration > API): `eu`, `us` or `au`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YmcsRegion {
    Eu,
    Us,
    Au,
}

impl YmcsRegion {
    pub fn as_str(self) -> &'static str {
        match self {
            YmcsRegion::Eu => "eu",
            YmcsRegion::Us => "us",
            YmcsRegion::Au => "au",
        }
    }

    fn parse(s: &str) -> Result<YmcsRegion, String> {
        match s.to_ascii_lowercase().as_str() {
            "eu" => Ok(YmcsRegion::Eu),
            "us" => Ok(YmcsRegion::Us),
            "au" => Ok(YmcsRegion::Au),
            _ => Err(format!("region {s:?} is not eu, us or au")),
        }
    }
}

/// A tenant, in multitenant mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    pub uuid: String,
    pub name: String,
}

/// An account: the PBX extension a device is bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub tenant: Option<String>,
    pub extension: String,
    pub sip_user: String,
    pub sip_password: String,
    pub display_name: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Brand {
    pub name: String,
}

/// A device model: how its files are named and written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceModel {
    pub name: String,
    pub brand: String,
    pub format: FileFormat,
    pub rules: Vec<FileRule>,
    /// Model-wide files (e.g. Yealink `y000000000028.cfg`), each rendered
    /// from the template of the same tenant named here.
    pub model_files: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pub tenant: Option<String>,
    pub name: String,
    pub model: String,
    pub content: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    pub mac: Mac,
    pub tenant: Option<String>,
    pub enabled: bool,
    pub model: String,
    pub template: String,
    pub account: Option<String>,
    pub redirect_server: Option<String>,
    pub notes: String,
    pub dhcp: bool,
    pub ip: Option<Ipv4Addr>,
    pub netmask: Option<Ipv4Addr>,
    pub gateway: Option<Ipv4Addr>,
    pub dns1: Option<Ipv4Addr>,
    pub dns2: Option<Ipv4Addr>,
    pub phone_user: String,
    pub phone_password: String,
    pub remote_addr: String,
    pub remote_port: Option<u16>,
    /// HTTP digest credentials for this device's files; empty: none.
    pub http_user: String,
    pub http_password: String,
}

/// Where a custom placeholder's value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlaceholderValue {
    Static(String),
    /// The IPv4 address of the named interface or VLAN, read live.
    Interface(String),
}

/// A custom placeholder `%%_NAME%%`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placeholder {
    pub tenant: Option<String>,
    /// Without the leading underscore and the `%%`.
    pub name: String,
    pub value: PlaceholderValue,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectServer {
    pub name: String,
    pub brand: RedirectBrand,
    /// The vendor API used; always one of the brand's.
    pub api: RedirectApi,
    /// The account's user and password: the XML-RPC APIs' credentials.
    pub user: String,
    pub password: String,
    /// The access key id and secret: the REST APIs' credentials.
    pub access_key_id: String,
    pub access_key_secret: String,
    /// YMCS only: the account's data centre.
    pub region: YmcsRegion,
    pub enabled: bool,
    pub url: String,
}

/// The id of a tenant-scoped object: `key`, or `tenant/key`.
pub fn scoped_id(tenant: &Option<String>, key: &str) -> String {
    match tenant {
        Some(t) => format!("{t}/{key}"),
        None => key.to_string(),
    }
}

// ------------------------------------------------------------ field parsing

/// The fields of a request, consumed as they are read so that unknown
/// ones can be reported.
pub struct Fields<'a> {
    items: Vec<(&'a str, &'a str)>,
}

impl<'a> Fields<'a> {
    pub fn new(items: &'a [(String, String)]) -> Result<Fields<'a>, String> {
        let mut seen: Vec<&str> = Vec::new();
        for (k, _) in items {
            if seen.contains(&k.as_str()) {
                return Err(format!("field {k:?} is given twice"));
            }
            seen.push(k);
        }
        Ok(Fields {
            items: items
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        })
    }

    pub(super) fn take(&mut self, key: &str) -> Option<&'a str> {
        let pos = self.items.iter().position(|(k, _)| *k == key)?;
        Some(self.items.remove(pos).1)
    }

    /// Fails if any field was not consumed.
    pub fn finish(self, kind: &str) -> Result<(), String> {
        match self.items.first() {
            None => Ok(()),
            Some((k, _)) => Err(format!("{kind} has no field {k:?}")),
        }
    }

    pub(super) fn text(
        &mut self,
        key: &str,
        prev: Option<&str>,
        max: usize,
    ) -> Result<String, String> {
        let value = self.take(key).or(prev).unwrap_or("");
        text(key, value, max)
    }

    pub(super) fn required(
        &mut self,
        key: &str,
        prev: Option<&str>,
        max: usize,
    ) -> Result<String, String> {
        let value = self.text(key, prev, max)?;
        if value.is_empty() {
            return Err(format!("{key} is required"));
        }
        Ok(value)
    }

    fn flag(&mut self, key: &str, prev: Option<bool>, default: bool) -> Result<bool, String> {
        match self.take(key) {
            None => Ok(prev.unwrap_or(default)),
            Some(v) => boolean(key, v),
        }
    }

    fn ipv4(&mut self, key: &str, prev: Option<Ipv4Addr>) -> Result<Option<Ipv4Addr>, String> {
        match self.take(key) {
            None => Ok(prev),
            Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{key}: {v:?} is not an IPv4 address")),
        }
    }

    fn optional(
        &mut self,
        key: &str,
        prev: Option<&str>,
        max: usize,
    ) -> Result<Option<String>, String> {
        let value = self.text(key, prev, max)?;
        Ok(Some(value).filter(|v| !v.is_empty()))
    }
}

fn text(key: &str, value: &str, max: usize) -> Result<String, String> {
    if value.chars().count() > max {
        return Err(format!("{key} is longer than {max} characters"));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(format!("{key} may not contain control characters"));
    }
    Ok(value.to_string())
}

fn single_line(key: &str, value: &str) -> Result<(), String> {
    if value.contains(['\n', '\t']) {
        return Err(format!("{key} must be one line"));
    }
    Ok(())
}

pub(super) fn boolean(key: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" | "1" => Ok(true),
        "no" | "off" | "false" | "0" => Ok(false),
        _ => Err(format!("{key}: {v:?} is not yes or no")),
    }
}

/// A name used as an id: letters, digits, `.`, `-`, `_`, 1-64 characters.
pub fn name(key: &str, value: &str) -> Result<String, String> {
    if value.is_empty() || value.len() > 64 {
        return Err(format!("{key} must be 1 to 64 characters"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' ')))
    {
        return Err(format!("{key} {value:?}: character {c:?} is not allowed"));
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err(format!("{key} {value:?} may not start or end with a space"));
    }
    Ok(value.to_string())
}

fn tenant_field(
    fields: &mut Fields,
    prev: Option<&Option<String>>,
) -> Result<Option<String>, String> {
    match fields.take("tenant") {
        None => Ok(prev.cloned().flatten()),
        Some("") => Ok(None),
        Some(t) => uuid(t).map(Some),
    }
}

/// A tenant UUID in its canonical lower-case hyphenated form.
pub fn uuid(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    let ok = lower.len() == 36
        && lower.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if ok {
        Ok(lower)
    } else {
        Err(format!("{text:?} is not a UUID"))
    }
}

impl Tenant {
    pub fn from_fields(prev: Option<&Tenant>, fields: &mut Fields) -> Result<Tenant, String> {
        let uuid = match (fields.take("uuid"), prev) {
            (Some(u), Some(p)) if uuid(u)? != p.uuid => {
                return Err("a tenant's uuid cannot change".to_string());
            }
            (Some(u), _) => uuid(u)?,
            (None, Some(p)) => p.uuid.clone(),
            (None, None) => return Err("uuid is required".to_string()),
        };
        let name = fields.required("name", prev.map(|p| p.name.as_str()), 64)?;
        single_line("name", &name)?;
        Ok(Tenant { uuid, name })
    }

    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![("uuid", self.uuid.clone()), ("name", self.name.clone())]
    }
}

impl Account {
    pub fn from_fields(prev: Option<&Account>, fields: &mut Fields) -> Result<Account, String> {
        let tenant = tenant_field(fields, prev.map(|p| &p.tenant))?;
        let extension = fields.required("extension", prev.map(|p| p.extension.as_str()), 32)?;
        if prev.is_some_and(|p| p.extension != extension || p.tenant != tenant) {
            return Err(
                "an account's tenant and extension cannot change; delete and re-create it"
                    .to_string(),
            );
        }
        if !extension
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '#')
        {
            return Err(format!(
                "extension {extension:?} may contain only letters, digits, * and #"
            ));
        }
        let sip_user = fields.text("sip_user", prev.map(|p| p.sip_user.as_str()), 64)?;
        let sip_user = if sip_user.is_empty() {
            extension.clone()
        } else {
            sip_user
        };
        let sip_password =
            fields.required("sip_password", prev.map(|p| p.sip_password.as_str()), 128)?;
        let account = Account {
            tenant,
            sip_user,
            sip_password,
            display_name: fields.text("display_name", prev.map(|p| p.display_name.as_str()), 64)?,
            first_name: fields.text("first_name", prev.map(|p| p.first_name.as_str()), 64)?,
            last_name: fields.text("last_name", prev.map(|p| p.last_name.as_str()), 64)?,
            email: fields.text("email", prev.map(|p| p.email.as_str()), 128)?,
            extension,
        };
        for (k, v) in [
            ("sip_user", &account.sip_user),
            ("sip_password", &account.sip_password),
            ("display_name", &account.display_name),
            ("first_name", &account.first_name),
            ("last_name", &account.last_name),
            ("email", &account.email),
        ] {
            single_line(k, v)?;
        }
        if !account.email.is_empty() && !account.email.contains('@') {
            return Err(format!(
                "email {:?} is not an e-mail address",
                account.email
            ));
        }
        Ok(account)
    }

    pub fn id(&self) -> String {
        scoped_id(&self.tenant, &self.extension)
    }

    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("tenant", self.tenant.clone().unwrap_or_default()),
            ("extension", self.extension.clone()),
            ("sip_user", self.sip_user.clone()),
            ("sip_password", MASK.to_string()),
            ("display_name", self.display_name.clone()),
            ("first_name", self.first_name.clone()),
            ("last_name", self.last_name.clone()),
            ("email", self.email.clone()),
        ]
    }
}

impl Brand {
    pub fn from_fields(prev: Option<&Brand>, fields: &mut Fields) -> Result<Brand, String> {
        let n = fields.required("name", prev.map(|p| p.name.as_str()), 64)?;
        Ok(Brand {
            name: name("name", &n)?,
        })
    }

    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![("name", self.name.clone())]
    }
}

impl DeviceModel {
    pub fn from_fields(
        prev: Option<&DeviceModel>,
        fields: &mut Fields,
    ) -> Result<DeviceModel, String> {
        let n = fields.required("name", prev.map(|p| p.name.as_str()), 64)?;
        let brand = fields.required("brand", prev.map(|p| p.brand.as_str()), 64)?;
        let format = match fields.take("format") {
            Some(f) => FileFormat::parse(f)?,
            None => prev.map_or(FileFormat::Plain, |p| p.format),
        };
        let rules = match fields.take("files") {
            Some(list) => list
                .split_whitespace()
                .map(FileRule::parse)
                .collect::<Result<Vec<_>, _>>()?,
            None => prev.map(|p| p.rules.clone()).unwrap_or_default(),
        };
        if rules.is_empty() {
            return Err(
                "files is required: one or more rules such as {aabbccddeeff}.cfg".to_string(),
            );
        }
        let model_files = match fields.take("model_files") {
            Some(list) => list
                .split_whitespace()
                .map(|pair| {
                    let (file, template) = pair.split_once('=').ok_or_else(|| {
                        format!("model_files: expected FILE=TEMPLATE, found {pair:?}")
                    })?;
                    Ok((file_name(file)?, name("template", template)?))
                })
                .collect::<Result<Vec<_>, String>>()?,
            None => prev.map(|p| p.model_files.clone()).unwrap_or_default(),
        };
        Ok(DeviceModel {
            name: name("name", &n)?,
            brand: name("brand", &brand)?,
            format,
            rules,
            model_files,
        })
    }

    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let rules: Vec<String> = self.rules.iter().map(ToString::to_string).collect();
        let files: Vec<String> = self
            .model_files
            .iter()
            .map(|(f, t)| format!("{f}={t}"))
            .collect();
        vec![
            ("name", self.name.clone()),
            ("brand", self.brand.clone()),
            ("format", self.format.as_str().to_string()),
            ("files", rules.join(" ")),
            ("model_files", files.join(" ")),
        ]
    }
}

impl Template {
    pub fn from_fields(prev: Option<&Template>, fields: &mut Fields) -> Result<Template, String> {
        let tenant = tenant_field(fields, prev.map(|p| &p.tenant))?;
        let n = fields.required("name", prev.map(|p| p.name.as_str()), 64)?;
        let model = fields.required("model", prev.map(|p| p.model.as_str()), 64)?;
        let content = fields.text("content", prev.map(|p| p.content.as_str()), 256 * 1024)?;
        if content.is_empty() {
            return Err("content is required".to_string());
        }
        Ok(Template {
            tenant,
            name: name("name", &n)?,
            model,
            content,
        })
    }

    pub fn id(&self) -> String {
        scoped_id(&self.tenant, &self.name)
    }

    pub fn fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("tenant", self.tenant.clone().unwrap_or_default()),
            ("name", self.name.clone()),
            ("model", self.model.clone()),
            ("content", self.content.clone()),
        ]
    }
}

impl Device {
    pub fn from_fields(prev: Option<&Device>, fields: &mut Fields) -> Result<Device, String> {
        let mac = match (fields.take("mac"), prev) {
            (Some(m), Some(p)) if Mac::parse(m)? != p.mac => {
                return Err("a device's MAC cannot change; delete and re-create it".to_string());
            }
            (Some(m), _) => Mac::parse(m)?,
            (None, Some(p)) => p.mac,
            (None, None) => return Err("mac is required".to_string()),
        };
        let tenant = tenant_field(fields, prev.map(|p| &p.tenant))?;
        let port = match fields.take("remote_port") {
            None => prev.and_then(|p| p.remote_port),
            Some("") => None,
            Some(v) => Some(
                v.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("remote_port: {v:?} is not a port number 1-65535"))?,
            ),
        };
        let device = Device {
            mac,
            tenant,
            enabled: fields.flag("enabled", prev.map(|p| p.enabled), true)?,
            model: fields.required("model", prev.map(|p| p.model.as_str()), 64)?,
            template: fields.required("template", prev.map(|p| p.template.as_str()), 64)?,
            account: fields.optional("account", prev.and_then(|p| p.account.as_deref()), 32)?,
            redirect_server: fields.optional(
                "redirect_server",
                prev.and_then(|p| p.redirect_server.as_deref()),
                64,
            )?,
            notes: fields.text("notes", prev.map(|p| p.notes.as_str()), 1024)?,
            dhcp: fields.flag("dhcp", prev.map(|p| p.dhcp), true)?,
            ip: fields.ipv4("ip", prev.and_then(|p| p.ip))?,
            netmask: fields.ipv4("netmask", prev.and_then(|p| p.netmask))?,
            gateway: fields.ipv4("gateway", prev.and_then(|p| p.gateway))?,
            dns1: fields.ipv4("dns1", prev.and_then(|p| p.dns1))?,
            dns2: fields.ipv4("dns2", prev.and_then(|p| p.dns2))?,
            phone_user: fields.text("phone_user", prev.map(|p| p.phone_user.as_str()), 64)?,
            phone_password: fields.text(
                "phone_password",
                prev.map(|p| p.phone_password.as_str()),
                128,
            )?,
            remote_addr: fields.text("remote_addr", prev.map(|p| p.remote_addr.as_str()), 253)?,
            remote_port: port,
            http_user: fields.text("http_user", prev.map(|p| p.http_user.as_str()), 64)?,
            http_password: fields.text(
                "http_password",
                prev.map(|p| p.http_password.as_str()),
                128,
            )?,
        };
        for (k, v) in [
            ("phone_user", &device.phone_user),
            ("phone_password", &device.phone_password),
            ("remote_addr", &device.remote_addr),
            ("http_user", &device.http_user),
            ("http_password", &device.http_password),
        ] {
            single_line(k, v)?;
        }
        if device.http_user.is_empty() != device.http_password.is_empty() {
            return Err("http_user and http_password: give both or neither".to_string());
        }
        if device.http_user.contains(['"', ':', '\\']) {
            return Err("http_user may not contain \", : or \\".to_string());
        }
        if !device.dhcp && (device.ip.is_none() || device.netmask.is_none()) {
            return Err("with dhcp=no, ip and netmask are required".to_string());
        }
        if let Some(mask) = device.netmask {
            let bits = u32::from(mask);
            if bits.leading_ones() + bits.trailing_zeros() != 32 {
                return Err(format!("netmask {mask} is not a contiguous mask"));
            }
        }
        Ok(device)
    }

    /// A device without an account gets no file and is shown as disabled.
    pub fn is_active(&self) -> bool {
        self.enabled && self.account.is_some()
    }

    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let ip = |a: Option<Ipv4Addr>| a.map(|a| a.to_string()).unwrap_or_default();
        let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
        vec![
            ("mac", self.mac.to_string()),
            ("tenant", self.tenant.clone().unwrap_or_default()),
            ("enabled", yes(self.enabled)),
            ("active", yes(self.is_active())),
            ("model", self.model.clone()),
            ("template", self.template.clone()),
            ("account", self.account.clone().unwrap_or_default()),
            (
                "redirect_server",
                self.redirect_server.clone().unwrap_or_default(),
            ),
            ("notes", self.notes.clone()),
            ("dhcp", yes(self.dhcp)),
            ("ip", ip(self.ip)),
            ("netmask", ip(self.netmask)),
            ("gateway", ip(self.gateway)),
            ("dns1", ip(self.dns1)),
            ("dns2", ip(self.dns2)),
            ("phone_user", self.phone_user.clone()),
            (
                "phone_password",
                if self.phone_password.is_empty() {
                    String::new()
                } else {
                    MASK.to_string()
                },
            ),
            ("remote_addr", self.remote_addr.clone()),
            (
                "remote_port",
                self.remote_port.map(|p| p.to_string()).unwrap_or_default(),
            ),
            ("http_user", self.http_user.clone()),
            (
                "http_password",
                if self.http_password.is_empty() {
                    String::new()
                } else {
                    MASK.to_string()
                },
            ),
        ]
    }
}

impl Placeholder {
    pub fn from_fields(
        prev: Option<&Placeholder>,
        fields: &mut Fields,
    ) -> Result<Placeholder, String> {
        let tenant = tenant_field(fields, prev.map(|p| &p.tenant))?;
        let raw = fields.required("name", prev.map(|p| p.name.as_str()), 64)?;
        let bare = raw.trim_start_matches("%%").trim_end_matches("%%");
        let bare = bare.strip_prefix('_').unwrap_or(bare);
        if bare.is_empty()
            || !bare
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(format!(
                "placeholder name {raw:?} must be upper-case letters, digits and '_' (used as %%_NAME%%)"
            ));
        }
        let value = match (fields.take("value"), fields.take("interface")) {
            (Some(_), Some(_)) => {
                return Err(
                    "give either value (static) or interface (dynamic), not both".to_string(),
                );
            }
            (Some(v), None) => PlaceholderValue::Static(text("value", v, 1024)?),
            (None, Some(i)) => PlaceholderValue::Interface(interface_name(i)?),
            (None, None) => match prev {
                Some(p) => p.value.clone(),
                None => return Err("value (static) or interface (dynamic) is required".to_string()),
            },
        };
        if matches!(&value, PlaceholderValue::Static(v) if v.contains("%%")) {
            return Err(format!(
                "value of %%_{bare}%% refers to another placeholder; values are literal and never expanded"
            ));
        }
        Ok(Placeholder {
            tenant,
            name: bare.to_string(),
            value,
        })
    }

    pub fn id(&self) -> String {
        scoped_id(&self.tenant, &self.name)
    }

    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let (kind, value) = match &self.value {
            PlaceholderValue::Static(v) => ("static", v.clone()),
            PlaceholderValue::Interface(i) => ("interface", i.clone()),
        };
        vec![
            ("tenant", self.tenant.clone().unwrap_or_default()),
            ("name", format!("%%_{}%%", self.name)),
            ("type", kind.to_string()),
            ("value", value),
        ]
    }
}

/// A Linux interface name (IFNAMSIZ - 1 characters, no '/' or spaces).
fn interface_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() < 16
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    if ok {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not an interface name"))
    }
}

impl RedirectServer {
    pub fn from_fields(
        prev: Option<&RedirectServer>,
        fields: &mut Fields,
    ) -> Result<RedirectServer, String> {
        let n = fields.required("name", prev.map(|p| p.name.as_str()), 64)?;
        let brand = match fields.take("brand") {
            Some(b) => RedirectBrand::parse(b)?,
            None => prev
                .map(|p| p.brand)
                .ok_or("brand is required (snom, yealink, escene)")?,
        };
        let api = match fields.take("api") {
            Some("") => RedirectApi::default_for(brand),
            Some(a) => RedirectApi::parse(a)?,
            // A new brand without a named API: that brand's default.
            None => prev
                .map(|p| p.api)
                .filter(|a| a.brand() == brand)
                .unwrap_or(RedirectApi::default_for(brand)),
        };
        let region = match fields.take("region") {
            Some(r) => YmcsRegion::parse(r)?,
            None => prev.map_or(YmcsRegion::Eu, |p| p.region),
        };
        let url = fields.required("url", prev.map(|p| p.url.as_str()), 512)?;
        if !(url.starts_with("http://")
            || url.starts_with("https://")
            || url.starts_with("tftp://"))
        {
            return Err(format!(
                "url {url:?} must start with http://, https:// or tftp://"
            ));
        }
        let server = RedirectServer {
            name: name("name", &n)?,
            brand,
            api,
            user: fields.text("user", prev.map(|p| p.user.as_str()), 128)?,
            password: fields.text("password", prev.map(|p| p.password.as_str()), 256)?,
            access_key_id: fields.text(
                "access_key_id",
                prev.map(|p| p.access_key_id.as_str()),
                128,
            )?,
            access_key_secret: fields.text(
                "access_key_secret",
                prev.map(|p| p.access_key_secret.as_str()),
                256,
            )?,
            region,
            enabled: fields.flag("enabled", prev.map(|p| p.enabled), true)?,
            url,
        };
        for (k, v) in [
            ("user", &server.user),
            ("password", &server.password),
            ("access_key_id", &server.access_key_id),
            ("access_key_secret", &server.access_key_secret),
            ("url", &server.url),
        ] {
            single_line(k, v)?;
        }
        server.check()?;
        Ok(server)
    }

    /// The rules of one redirection server, whoever builds it: the field
    /// parser above and the store's commit (`store::rules`) both call this.
    pub fn check(&self) -> Result<(), String> {
        if self.api.brand() != self.brand {
            return Err(format!(
                "redirection server {}: api {} is not a {} API ({})",
                self.name,
                self.api.as_str(),
                self.brand.as_str(),
                RedirectApi::ALL
                    .iter()
                    .filter(|a| a.brand() == self.brand)
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        // Yealink RPS refuses other server names with "Error:The server
        // name can only contain 'A-z 0-9 - _ . '(include space)" (the
        // XML-RPC service's answer, as handled by peoplefone/provisioning-rpc
        // ProvisioningRPCDeviceYealink.php). Every Yealink API names the
        // same RPS server object, so the rule holds for all three.
        if self.brand == RedirectBrand::Yealink
            && let Some(c) = self
                .name
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ')))
        {
            return Err(format!(
                "redirection server {:?}: Yealink RPS server names may only contain A-z 0-9 - _ . and space, not {c:?}",
                self.name
            ));
        }
        Ok(())
    }

    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mask = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                MASK.to_string()
            }
        };
        vec![
            ("name", self.name.clone()),
            ("brand", self.brand.as_str().to_string()),
            ("api", self.api.as_str().to_string()),
            ("user", self.user.clone()),
            ("password", mask(&self.password)),
            ("access_key_id", self.access_key_id.clone()),
            ("access_key_secret", mask(&self.access_key_secret)),
            ("region", self.region.as_str().to_string()),
            (
                "enabled",
                if self.enabled { "yes" } else { "no" }.to_string(),
            ),
            ("url", self.url.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirection_servers_name_their_api_and_its_credentials() {
        let parse = |prev: Option<&RedirectServer>, pairs: &[(&str, &str)]| {
            let f = fields(pairs);
            let mut f = Fields::new(&f).unwrap();
            let r = RedirectServer::from_fields(prev, &mut f);
            f.finish("redirect_server").map(|()| r)?
        };
        let snom = parse(
            None,
            &[("name", "s"), ("brand", "snom"), ("url", "https://p/")],
        )
        .unwrap();
        assert_eq!(
            (snom.api, snom.region),
            (RedirectApi::Sraps, YmcsRegion::Eu)
        );
        let yea = parse(
            None,
            &[("name", "y"), ("brand", "Yealink"), ("url", "https://p/")],
        )
        .unwrap();
        assert_eq!(yea.api, RedirectApi::Ymcs);
        let esc = parse(
            None,
            &[("name", "e"), ("brand", "escene"), ("url", "https://p/")],
        )
        .unwrap();
        assert_eq!(esc.api, RedirectApi::None);
        // Another brand without a named API takes that brand's default.
        let moved = parse(Some(&yea), &[("brand", "snom")]).unwrap();
        assert_eq!(moved.api, RedirectApi::Sraps);
        let keys = parse(
            Some(&yea),
            &[
                ("api", "rps_json"),
                ("access_key_id", "AK"),
                ("access_key_secret", "SK"),
                ("region", "au"),
            ],
        )
        .unwrap();
        assert_eq!(
            (keys.api, keys.access_key_id.as_str(), keys.region),
            (RedirectApi::RpsJson, "AK", YmcsRegion::Au)
        );
        let shown = keys.fields();
        assert!(shown.contains(&("access_key_secret", MASK.to_string())));
        assert!(shown.contains(&("api", "rps_json".to_string())));
        assert!(!format!("{shown:?}").contains("SK"));
        for (pairs, why) in [
            (vec![("api", "sraps")], "not a yealink API"),
            (vec![("api", "soap")], "is not sraps"),
            (vec![("region", "cn")], "is not eu, us or au"),
            (vec![("access_key_secret", "a\tb")], "one line"),
        ] {
            let e = parse(Some(&yea), &pairs).unwrap_err();
            assert!(e.contains(why), "{pairs:?}: {e}");
        }
        // The Yealink character rule, beyond the generic name rule.
        let mut odd = yea.clone();
        odd.name = "caf\u{e9}".into();
        assert!(odd.check().unwrap_err().contains("A-z 0-9 - _ . and space"));
        odd.brand = RedirectBrand::Snom;
        odd.api = RedirectApi::SnomXmlrpc;
        assert_eq!(odd.check(), Ok(()));
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn macs_are_normalised() {
        for text in [
            "0004132A3B4C",
            "00:04:13:2a:3b:4c",
            "00-04-13-2A-3B-4C",
            "0004132a3b4c",
        ] {
            assert_eq!(
                Mac::parse(text).unwrap().to_string(),
                "0004132A3B4C",
                "{text}"
            );
        }
        let m = Mac::parse("0004132A3B4C").unwrap();
        assert_eq!(m.format(MacFormat::LowerColon), "00:04:13:2a:3b:4c");
        assert_eq!(m.format(MacFormat::UpperDash), "00-04-13-2A-3B-4C");
    }

    #[test]
    fn bad_macs_say_why() {
        for (text, why) in [
            ("0004132A3B4", "expected 12 hex digits"),
            ("00:04:13:2A:3B-4C", "expected six groups"),
            ("00.04.13.2A.3B.4C", "separators"),
            ("0004132A3B4G", "not hex"),
            ("000000000000", "all-zero"),
            ("FFFFFFFFFFFF", "broadcast"),
            ("010203040506", "multicast"),
            ("00:04:13:2A:3B:4C:", "expected 12 hex digits"),
            ("ÄÄÄÄÄÄ", "not hex"),
            ("ÄÄÄÄÄ", "expected 12 hex digits"),
        ] {
            let e = Mac::parse(text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn file_rules() {
        let r = FileRule::parse("snomD785-{AABBCCDDEEFF}.htm").unwrap();
        assert_eq!(
            r.file_name(Mac::parse("000413aabbcc").unwrap()),
            "snomD785-000413AABBCC.htm"
        );
        assert_eq!(r.to_string(), "snomD785-{AABBCCDDEEFF}.htm");
        for (bad, why) in [
            ("{aabbccddeeff}", "needs a prefix or a suffix"),
            ("x.cfg", "no {MAC} part"),
            ("{AABB}.cfg", "is not one of"),
            ("../{aabbccddeeff}.cfg", "may not contain \"..\""),
            ("a/{aabbccddeeff}", "not allowed"),
            ("{aabbccddeeff}..cfg", "\"..\""),
        ] {
            let e = FileRule::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn device_fields_parse_and_patch() {
        let f = fields(&[
            ("mac", "00-04-13-2a-3b-4c"),
            ("model", "D785"),
            ("template", "snom"),
        ]);
        let mut items = Fields::new(&f).unwrap();
        let d = Device::from_fields(None, &mut items).unwrap();
        items.finish("device").unwrap();
        assert!(d.enabled && d.dhcp && !d.is_active());

        let f = fields(&[("dhcp", "no"), ("ip", "192.0.2.10")]);
        let e = Device::from_fields(Some(&d), &mut Fields::new(&f).unwrap()).unwrap_err();
        assert_eq!(e, "with dhcp=no, ip and netmask are required");
        let f = fields(&[("remote_port", "0")]);
        assert!(Device::from_fields(Some(&d), &mut Fields::new(&f).unwrap()).is_err());
        let f = fields(&[("account", "201"), ("phone_password", "s3cret")]);
        let d2 = Device::from_fields(Some(&d), &mut Fields::new(&f).unwrap()).unwrap();
        assert!(d2.is_active());
        assert!(
            d2.fields()
                .iter()
                .any(|(k, v)| *k == "phone_password" && v == MASK)
        );

        let f = fields(&[("mac", "0004132a3b4c"), ("colour", "red")]);
        let mut items = Fields::new(&f).unwrap();
        assert!(Device::from_fields(Some(&d), &mut items).is_ok());
        assert_eq!(
            items.finish("device").unwrap_err(),
            "device has no field \"colour\""
        );
    }

    #[test]
    fn placeholders_are_literal() {
        let f = fields(&[("name", "%%_SITE%%"), ("value", "HQ")]);
        let p = Placeholder::from_fields(None, &mut Fields::new(&f).unwrap()).unwrap();
        assert_eq!(p.name, "SITE");
        let f = fields(&[("name", "LOOP"), ("value", "%%_SITE%%")]);
        let e = Placeholder::from_fields(None, &mut Fields::new(&f).unwrap()).unwrap_err();
        assert!(e.contains("never expanded"), "{e}");
        let f = fields(&[("name", "VLAN"), ("interface", "eth0.20")]);
        let p = Placeholder::from_fields(None, &mut Fields::new(&f).unwrap()).unwrap();
        assert_eq!(p.value, PlaceholderValue::Interface("eth0.20".into()));
        let f = fields(&[("name", "bad-name"), ("value", "x")]);
        assert!(Placeholder::from_fields(None, &mut Fields::new(&f).unwrap()).is_err());
    }
}
