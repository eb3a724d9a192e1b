//! The HA configuration object: a singleton (`ha`) built from `key=value`
//! fields over its previous state, valid by construction.
//!
//! Every rule of [`crate::ha::Config::validate`] is applied here (when the
//! role is not `disabled`), so the store never holds a configuration the HA
//! core would refuse. What is only known on the box (the serial number, the
//! interfaces) is read by the daemon when the runtime starts.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::prov::MASK;
use crate::ha::{Config, DefaultActive, PathConfig, ResourceIp, Role, parse_seconds};

/// The id of the singleton.
pub const HA_ID: &str = "ha";

/// Where this node's serial number is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SerialSource {
    /// The first line of a file (`file:PATH`).
    File(String),
    /// `/sys/class/dmi/id/product_serial` (x86 appliances and VMs).
    Dmi,
    /// `/proc/device-tree/serial-number` (ARM boards).
    DeviceTree,
}

impl SerialSource {
    pub fn parse(text: &str) -> Result<SerialSource, String> {
        match text {
            "dmi" => Ok(SerialSource::Dmi),
            "devicetree" => Ok(SerialSource::DeviceTree),
            _ => match text.strip_prefix("file:") {
                Some(path) if path.starts_with('/') && clean(path) => {
                    Ok(SerialSource::File(path.to_string()))
                }
                _ => Err(format!(
                    "serial_source {text:?} must be file:/ABSOLUTE/PATH, dmi or devicetree"
                )),
            },
        }
    }

    /// The file that holds the serial number.
    pub fn path(&self) -> &str {
        match self {
            SerialSource::File(p) => p,
            SerialSource::Dmi => "/sys/class/dmi/id/product_serial",
            SerialSource::DeviceTree => "/proc/device-tree/serial-number",
        }
    }
}

impl fmt::Display for SerialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SerialSource::File(p) => write!(f, "file:{p}"),
            SerialSource::Dmi => f.write_str("dmi"),
            SerialSource::DeviceTree => f.write_str("devicetree"),
        }
    }
}

/// The stored HA settings of this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HaSettings {
    /// Validated unless `role` is `disabled`.
    pub config: Config,
    pub serial_source: SerialSource,
    /// Directory with `acquire.d/` and `release.d/`; `None` = no hooks.
    pub hook_dir: Option<String>,
}

/// Field names accepted by `kpbx ha configure`, in display order.
pub const FIELDS: &[&str] = &[
    "role",
    "remote_serial",
    "pairing_code",
    "interface",
    "local_ip",
    "remote_ip",
    "prefix",
    "sync_interface",
    "sync_local_ip",
    "sync_remote_ip",
    "sync_prefix",
    "resources",
    "ping_group",
    "default_active",
    "heartbeat_interval",
    "keepalive_warning",
    "keepalive_out_of_service",
    "init_timeout",
    "ping_interval",
    "ping_dampen",
    "serial_source",
    "hook_dir",
];

fn clean(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() || c == '"' || c == '\'' || c == '\\')
}

fn unspecified_path() -> PathConfig {
    PathConfig {
        interface: String::new(),
        local_ip: Ipv4Addr::UNSPECIFIED,
        remote_ip: Ipv4Addr::UNSPECIFIED,
        prefix: 24,
    }
}

impl Default for HaSettings {
    fn default() -> Self {
        HaSettings {
            config: Config::new(
                Role::Disabled,
                unspecified_path(),
                unspecified_path(),
                Vec::new(),
                DefaultActive::Local,
            ),
            serial_source: SerialSource::Dmi,
            hook_dir: None,
        }
    }
}

/// Seconds with up to six decimals, without trailing zeros (`0.1`, `3`).
pub fn format_seconds(d: Duration) -> String {
    if d.subsec_micros() == 0 {
        return d.as_secs().to_string();
    }
    let s = format!("{}.{:06}", d.as_secs(), d.subsec_micros());
    s.trim_end_matches('0').to_string()
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Disabled => "disabled",
        Role::Enabled => "enabled",
        Role::Coordinator => "coordinator",
    }
}

fn interface_name(key: &str, v: &str) -> Result<String, String> {
    if v.is_empty()
        || v.len() > 15
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'@'))
    {
        return Err(format!(
            "{key} {v:?} is not an interface name (1-15 letters, digits, . - _)"
        ));
    }
    Ok(v.to_string())
}

fn ip(key: &str, v: &str) -> Result<Ipv4Addr, String> {
    v.parse()
        .map_err(|_| format!("{key} {v:?} is not an IPv4 address"))
}

fn prefix(key: &str, v: &str) -> Result<u8, String> {
    v.parse::<u8>()
        .ok()
        .filter(|p| (1..=32).contains(p))
        .ok_or_else(|| format!("{key} {v:?} must be a prefix length from 1 to 32"))
}

fn seconds(key: &str, v: &str) -> Result<Duration, String> {
    parse_seconds(v).map_err(|_| format!("{key} {v:?} is not a number of seconds (e.g. 3, 0.25)"))
}

/// `ADDR[/PREFIX][@INTERFACE]`; the LAN prefix and interface fill the gaps.
fn resource(text: &str, lan: &PathConfig) -> Result<ResourceIp, String> {
    let (addr_prefix, interface) = match text.split_once('@') {
        Some((a, i)) => (a, interface_name("resource interface", i)?),
        None => (text, lan.interface.clone()),
    };
    let (addr, p) = match addr_prefix.split_once('/') {
        Some((a, p)) => (ip("resource", a)?, prefix("resource prefix", p)?),
        None => (ip("resource", addr_prefix)?, lan.prefix),
    };
    Ok(ResourceIp {
        addr,
        prefix: p,
        interface,
    })
}

impl HaSettings {
    /// Applies `key=value` fields over `prev` (or the defaults) and checks
    /// every rule. Refusals say what to fix.
    pub fn from_fields(
        prev: Option<&HaSettings>,
        fields: &[(String, String)],
    ) -> Result<HaSettings, String> {
        let mut s = prev.cloned().unwrap_or_default();
        let mut seen: Vec<&str> = Vec::new();
        let mut resources_text: Option<&str> = None;
        for (k, v) in fields {
            let (k, v) = (k.as_str(), v.trim());
            if seen.contains(&k) {
                return Err(format!("field {k:?} is given twice"));
            }
            seen.push(k);
            if !clean(v) || v.len() > 1024 {
                return Err(format!(
                    "{k}: control characters, quotes and backslashes are not allowed"
                ));
            }
            let c = &mut s.config;
            match k {
                "role" => {
                    c.role = match v {
                        "disabled" => Role::Disabled,
                        "enabled" => Role::Enabled,
                        "coordinator" => Role::Coordinator,
                        _ => {
                            return Err(format!(
                                "role {v:?} must be disabled, enabled or coordinator"
                            ));
                        }
                    }
                }
                "remote_serial" => c.remote_serial = v.to_string(),
                "pairing_code" => {
                    c.pairing_code = (!v.is_empty()).then(|| v.to_string());
                }
                "interface" => c.lan.interface = interface_name(k, v)?,
                "local_ip" => c.lan.local_ip = ip(k, v)?,
                "remote_ip" => c.lan.remote_ip = ip(k, v)?,
                "prefix" => c.lan.prefix = prefix(k, v)?,
                "sync_interface" => c.sync.interface = interface_name(k, v)?,
                "sync_local_ip" => c.sync.local_ip = ip(k, v)?,
                "sync_remote_ip" => c.sync.remote_ip = ip(k, v)?,
                "sync_prefix" => c.sync.prefix = prefix(k, v)?,
                "resources" => resources_text = Some(v),
                "ping_group" => {
                    c.ping_group = v
                        .split_whitespace()
                        .map(|a| ip("ping_group member", a))
                        .collect::<Result<_, _>>()?;
                }
                "default_active" => {
                    c.default_active = match v {
                        "local" => DefaultActive::Local,
                        "remote" => DefaultActive::Remote,
                        _ => return Err(format!("default_active {v:?} must be local or remote")),
                    }
                }
                "heartbeat_interval" => c.heartbeat_interval = seconds(k, v)?,
                "keepalive_warning" => c.keepalive_warning = seconds(k, v)?,
                "keepalive_out_of_service" => c.keepalive_out_of_service = seconds(k, v)?,
                "init_timeout" => c.init_timeout = seconds(k, v)?,
                "ping_interval" => c.ping_interval = seconds(k, v)?,
                "ping_dampen" => c.ping_dampen = seconds(k, v)?,
                "serial_source" => s.serial_source = SerialSource::parse(v)?,
                "hook_dir" => {
                    s.hook_dir = match v {
                        "" => None,
                        p if p.starts_with('/') => Some(p.to_string()),
                        p => return Err(format!("hook_dir {p:?} must be an absolute path")),
                    }
                }
                _ => {
                    return Err(format!(
                        "ha has no field {k:?} (known: {})",
                        FIELDS.join(", ")
                    ));
                }
            }
        }
        // Resources are read last: their defaults come from the LAN fields.
        if let Some(text) = resources_text {
            s.config.resources = text
                .split_whitespace()
                .map(|r| resource(r, &s.config.lan))
                .collect::<Result<_, _>>()?;
        }
        if s.config.role != Role::Disabled {
            for (key, iface) in [
                ("interface", &s.config.lan.interface),
                ("sync_interface", &s.config.sync.interface),
            ] {
                if iface.is_empty() {
                    return Err(format!("{key} is required"));
                }
            }
            for (key, a) in [
                ("local_ip", s.config.lan.local_ip),
                ("remote_ip", s.config.lan.remote_ip),
                ("sync_local_ip", s.config.sync.local_ip),
                ("sync_remote_ip", s.config.sync.remote_ip),
            ] {
                if a.is_unspecified() {
                    return Err(format!("{key} is required"));
                }
            }
            s.config.validate().map_err(|e| e.to_string())?;
        }
        Ok(s)
    }

    pub fn id(&self) -> String {
        HA_ID.to_string()
    }

    /// Field names and values; the pairing code is masked.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let c = &self.config;
        let list = |v: Vec<String>| v.join(" ");
        vec![
            ("role", role_name(c.role).to_string()),
            ("remote_serial", c.remote_serial.clone()),
            (
                "pairing_code",
                if c.pairing_code.is_some() {
                    MASK.to_string()
                } else {
                    String::new()
                },
            ),
            ("interface", c.lan.interface.clone()),
            ("local_ip", c.lan.local_ip.to_string()),
            ("remote_ip", c.lan.remote_ip.to_string()),
            ("prefix", c.lan.prefix.to_string()),
            ("sync_interface", c.sync.interface.clone()),
            ("sync_local_ip", c.sync.local_ip.to_string()),
            ("sync_remote_ip", c.sync.remote_ip.to_string()),
            ("sync_prefix", c.sync.prefix.to_string()),
            (
                "resources",
                list(
                    c.resources
                        .iter()
                        .map(|r| format!("{}/{}@{}", r.addr, r.prefix, r.interface))
                        .collect(),
                ),
            ),
            (
                "ping_group",
                list(c.ping_group.iter().map(|a| a.to_string()).collect()),
            ),
            (
                "default_active",
                match c.default_active {
                    DefaultActive::Local => "local",
                    DefaultActive::Remote => "remote",
                }
                .to_string(),
            ),
            ("heartbeat_interval", format_seconds(c.heartbeat_interval)),
            ("keepalive_warning", format_seconds(c.keepalive_warning)),
            (
                "keepalive_out_of_service",
                format_seconds(c.keepalive_out_of_service),
            ),
            ("init_timeout", format_seconds(c.init_timeout)),
            ("ping_interval", format_seconds(c.ping_interval)),
            ("ping_dampen", format_seconds(c.ping_dampen)),
            ("serial_source", self.serial_source.to_string()),
            ("hook_dir", self.hook_dir.clone().unwrap_or_default()),
        ]
    }

    pub fn role_name(&self) -> &'static str {
        role_name(self.config.role)
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

    fn good() -> Vec<(String, String)> {
        kv(&[
            ("role", "coordinator"),
            ("remote_serial", "KP-B"),
            ("interface", "lan0"),
            ("local_ip", "198.51.100.1"),
            ("remote_ip", "198.51.100.2"),
            ("prefix", "24"),
            ("sync_interface", "sync0"),
            ("sync_local_ip", "192.0.2.1"),
            ("sync_remote_ip", "192.0.2.2"),
            ("resources", "198.51.100.10/24@lan0"),
            ("heartbeat_interval", "0.1"),
            ("keepalive_warning", "0.3"),
            ("keepalive_out_of_service", "0.5"),
            ("init_timeout", "2"),
            ("pairing_code", "secret-code"),
            ("serial_source", "file:/tmp/serial"),
        ])
    }

    #[test]
    fn valid_config_round_trips_through_fields() {
        let s = HaSettings::from_fields(None, &good()).unwrap();
        assert_eq!(s.config.heartbeat_interval, Duration::from_millis(100));
        assert_eq!(s.config.resources[0].interface, "lan0");
        let f = s.fields();
        let get = |k: &str| f.iter().find(|(n, _)| *n == k).unwrap().1.clone();
        assert_eq!(get("pairing_code"), MASK);
        assert_eq!(get("heartbeat_interval"), "0.1");
        assert_eq!(get("resources"), "198.51.100.10/24@lan0");
        assert_eq!(get("serial_source"), "file:/tmp/serial");
    }

    #[test]
    fn refusals_name_the_reason() {
        let with = |k: &str, v: &str| {
            let mut f = good();
            f.retain(|(n, _)| n != k);
            f.push((k.to_string(), v.to_string()));
            HaSettings::from_fields(None, &f).unwrap_err()
        };
        assert_eq!(
            with("resources", "198.51.101.10/24@lan0"),
            "resource IP 198.51.101.10 is not in the interface's subnet"
        );
        assert_eq!(
            with("sync_interface", "lan0"),
            "sync interface must differ from the LAN interface"
        );
        assert!(with("keepalive_out_of_service", "0.2").contains("2 x heartbeat"));
        assert!(with("role", "boss").contains("coordinator"));
        assert!(with("bogus", "1").contains("no field"));
        assert!(with("heartbeat_interval", "1e3").contains("seconds"));
        assert!(with("serial_source", "file:rel").contains("ABSOLUTE"));
    }

    #[test]
    fn disabled_needs_nothing_and_keeps_the_rest() {
        let s = HaSettings::from_fields(None, &good()).unwrap();
        let d = HaSettings::from_fields(Some(&s), &kv(&[("role", "disabled")])).unwrap();
        assert_eq!(d.config.role, Role::Disabled);
        assert_eq!(d.config.lan, s.config.lan);
        assert!(HaSettings::from_fields(None, &kv(&[("role", "disabled")])).is_ok());
    }
}
