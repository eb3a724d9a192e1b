//! System settings: the box-wide values other areas read (host name, time
//! zone, NTP server, the PBX's SIP ports). Each set key is one object of kind
//! `setting` whose id is the key's name; an absent object means the default.

use std::net::IpAddr;

/// The settings the box knows, with their defaults and rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SettingKey {
    Hostname,
    Location,
    Timezone,
    NtpServer,
    PbxAddress,
    SipPort,
    SipTlsPort,
    Multitenant,
    ProvScanMisses,
    ProvScanWindow,
    ProvScanBlock,
    CallcenterLicence,
    CdrMasterCsv,
    CdrQueueLog,
    CdrRetentionMonths,
    CdrColumns,
    ApiSessionSeconds,
    ApiLockoutFailures,
    ApiLockoutSeconds,
    AuditRetentionMonths,
}

impl SettingKey {
    pub const ALL: &'static [SettingKey] = &[
        SettingKey::Hostname,
        SettingKey::Location,
        SettingKey::Timezone,
        SettingKey::NtpServer,
        SettingKey::PbxAddress,
        SettingKey::SipPort,
        SettingKey::SipTlsPort,
        SettingKey::Multitenant,
        SettingKey::ProvScanMisses,
        SettingKey::ProvScanWindow,
        SettingKey::ProvScanBlock,
        SettingKey::CallcenterLicence,
        SettingKey::CdrMasterCsv,
        SettingKey::CdrQueueLog,
        SettingKey::CdrRetentionMonths,
        SettingKey::CdrColumns,
        SettingKey::ApiSessionSeconds,
        SettingKey::ApiLockoutFailures,
        SettingKey::ApiLockoutSeconds,
        SettingKey::AuditRetentionMonths,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SettingKey::Hostname => "hostname",
            SettingKey::Location => "location",
            SettingKey::Timezone => "timezone",
            SettingKey::NtpServer => "ntp_server",
            SettingKey::PbxAddress => "pbx_address",
            SettingKey::SipPort => "sip_port",
            SettingKey::SipTlsPort => "sip_tls_port",
            SettingKey::Multitenant => "multitenant",
            SettingKey::ProvScanMisses => "prov_scan_misses",
            SettingKey::ProvScanWindow => "prov_scan_window",
            SettingKey::ProvScanBlock => "prov_scan_block",
            SettingKey::CallcenterLicence => "callcenter_licence",
            SettingKey::CdrMasterCsv => "cdr_master_csv",
            SettingKey::CdrQueueLog => "cdr_queue_log",
            SettingKey::CdrRetentionMonths => "cdr_retention_months",
            SettingKey::CdrColumns => "cdr_columns",
            SettingKey::ApiSessionSeconds => "api_session_seconds",
            SettingKey::ApiLockoutFailures => "api_lockout_failures",
            SettingKey::ApiLockoutSeconds => "api_lockout_seconds",
            SettingKey::AuditRetentionMonths => "audit_retention_months",
        }
    }

    pub fn default_value(self) -> &'static str {
        match self {
            SettingKey::Hostname => "kpbx",
            SettingKey::Location => "",
            SettingKey::Timezone => "UTC",
            SettingKey::NtpServer => "pool.ntp.org",
            SettingKey::PbxAddress => "auto",
            SettingKey::SipPort => "5060",
            SettingKey::SipTlsPort => "5061",
            SettingKey::Multitenant => "off",
            SettingKey::ProvScanMisses => "10",
            SettingKey::ProvScanWindow => "60",
            SettingKey::ProvScanBlock => "600",
            SettingKey::CallcenterLicence => "",
            SettingKey::CdrMasterCsv | SettingKey::CdrQueueLog => "auto",
            SettingKey::CdrRetentionMonths => "24",
            SettingKey::CdrColumns => "cdr_csv",
            SettingKey::ApiSessionSeconds => "3600",
            SettingKey::ApiLockoutFailures => "5",
            SettingKey::ApiLockoutSeconds => "900",
            SettingKey::AuditRetentionMonths => "0",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            SettingKey::Hostname => "host name of the box (RFC 1123)",
            SettingKey::Location => "free text shown in status, up to 128 characters",
            SettingKey::Timezone => "IANA time zone of the box, e.g. Europe/Rome",
            SettingKey::NtpServer => "NTP server given to phones: host name or IP address",
            SettingKey::PbxAddress => {
                "address phones register to: an IP address or host name, or `auto` \
                 (the HA resource IP when HA is on, else the first interface address)"
            }
            SettingKey::SipPort => "SIP UDP/TCP port, 1-65535",
            SettingKey::SipTlsPort => "SIP TLS port, 1-65535",
            SettingKey::Multitenant => {
                "on: provisioning objects belong to tenants; off: single tenant"
            }
            SettingKey::ProvScanMisses => {
                "requests for unknown MAC-named files within prov_scan_window that block an address (0: never)"
            }
            SettingKey::ProvScanWindow => "seconds over which scanning misses are counted",
            SettingKey::ProvScanBlock => "seconds a scanning address stays blocked (HTTP and TFTP)",
            SettingKey::CallcenterLicence => {
                "call-center licence key; empty: no licence (Send Call Center CDR tasks are refused)"
            }
            SettingKey::CdrMasterCsv => {
                "Asterisk Master.csv to follow: an absolute path, `auto` \
                 (asterisk_log_dir/cdr-csv/Master.csv) or `off`"
            }
            SettingKey::CdrQueueLog => {
                "Asterisk queue_log to follow: an absolute path, `auto` \
                 (asterisk_log_dir/queue_log) or `off`"
            }
            SettingKey::CdrRetentionMonths => {
                "months call records are kept (0: forever), pruned daily"
            }
            SettingKey::CdrColumns => {
                "Master.csv layout: cdr_csv, cdr_custom_legacy, or field names in column order \
                 (`-` skips a column), e.g. clid,src,dst,-,start,answer,end"
            }
            SettingKey::ApiSessionSeconds => "lifetime of a management API session token, seconds",
            SettingKey::ApiLockoutFailures => {
                "failed API logins (per user and address) that lock the pair out"
            }
            SettingKey::ApiLockoutSeconds => "seconds an API login lockout lasts",
            SettingKey::AuditRetentionMonths => {
                "months of audit log kept (0: keep everything); older entries are pruned"
            }
        }
    }

    /// Whether the generated provisioning files or the file servers read
    /// this setting (a change regenerates them).
    pub fn feeds_provisioning(self) -> bool {
        matches!(
            self,
            SettingKey::Hostname
                | SettingKey::Timezone
                | SettingKey::NtpServer
                | SettingKey::PbxAddress
                | SettingKey::SipPort
                | SettingKey::SipTlsPort
                | SettingKey::Multitenant
                | SettingKey::ProvScanMisses
                | SettingKey::ProvScanWindow
                | SettingKey::ProvScanBlock
        )
    }

    pub fn from_name(name: &str) -> Option<SettingKey> {
        SettingKey::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Checks a value for this key and returns it normalised.
    pub fn parse_value(self, value: &str) -> Result<String, String> {
        match self {
            SettingKey::Hostname => hostname(value).map(str::to_ascii_lowercase),
            SettingKey::Location => {
                if value.chars().count() > 128 {
                    Err("is longer than 128 characters".to_string())
                } else if value.chars().any(char::is_control) {
                    Err("may not contain control characters".to_string())
                } else {
                    Ok(value.to_string())
                }
            }
            SettingKey::Timezone => {
                if value == "UTC" || jiff::tz::db().get(value).is_ok() {
                    Ok(value.to_string())
                } else {
                    Err(format!("{value:?} is not a known IANA time zone"))
                }
            }
            SettingKey::NtpServer => host_or_ip(value),
            SettingKey::PbxAddress => {
                if value == "auto" {
                    Ok(value.to_string())
                } else {
                    host_or_ip(value)
                }
            }
            SettingKey::ProvScanMisses => number(value, 0, 100_000),
            SettingKey::ProvScanWindow => number(value, 1, 86_400),
            SettingKey::ProvScanBlock => number(value, 1, 7 * 86_400),
            SettingKey::CallcenterLicence => {
                if value.len() > 128
                    || !value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    Err("is up to 128 letters, digits, - and _".to_string())
                } else {
                    Ok(value.to_string())
                }
            }
            SettingKey::CdrMasterCsv | SettingKey::CdrQueueLog => match value {
                "auto" | "off" => Ok(value.to_string()),
                _ if value.starts_with('/') && !value.chars().any(char::is_control) => {
                    Ok(value.to_string())
                }
                _ => Err(format!(
                    "{value:?} is not an absolute path, `auto` or `off`"
                )),
            },
            SettingKey::CdrRetentionMonths => number(value, 0, 1200),
            SettingKey::CdrColumns => {
                crate::cdr::columns::parse_columns(value).map(|_| value.trim().to_string())
            }
            SettingKey::ApiSessionSeconds => number(value, 1, 7 * 86_400),
            SettingKey::ApiLockoutFailures => number(value, 1, 1000),
            SettingKey::ApiLockoutSeconds => number(value, 1, 86_400),
            SettingKey::AuditRetentionMonths => number(value, 0, 1200),
            SettingKey::Multitenant => match value {
                "on" | "off" => Ok(value.to_string()),
                _ => Err(format!("{value:?} is not on or off")),
            },
            SettingKey::SipPort | SettingKey::SipTlsPort => match value.parse::<u16>() {
                Ok(port) if port > 0 => Ok(port.to_string()),
                _ => Err(format!("{value:?} is not a port number 1-65535")),
            },
        }
    }
}

/// A set system setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: SettingKey,
    value: String,
}

impl Setting {
    /// A setting with a checked value.
    pub fn new(key: SettingKey, value: &str) -> Result<Setting, String> {
        let value = key
            .parse_value(value)
            .map_err(|e| format!("{}: {e}", key.name()))?;
        Ok(Setting { key, value })
    }

    /// Parses `name` and `value` from text, as typed on the console.
    pub fn parse(name: &str, value: &str) -> Result<Setting, String> {
        let key = SettingKey::from_name(name).ok_or_else(|| {
            let known: Vec<&str> = SettingKey::ALL.iter().map(|k| k.name()).collect();
            format!("unknown setting {name:?} (known: {})", known.join(", "))
        })?;
        Setting::new(key, value)
    }

    pub fn value(&self) -> &str {
        &self.value
    }
}

impl std::ops::Deref for Setting {
    type Target = SettingKey;
    fn deref(&self) -> &SettingKey {
        &self.key
    }
}

fn number(value: &str, min: u32, max: u32) -> Result<String, String> {
    match value.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n.to_string()),
        _ => Err(format!(
            "{value:?} is not a whole number from {min} to {max}"
        )),
    }
}

fn hostname(value: &str) -> Result<&str, String> {
    let bad = || format!("{value:?} is not a valid host name");
    if value.is_empty() || value.len() > 253 {
        return Err(bad());
    }
    for label in value.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(value)
}

fn host_or_ip(value: &str) -> Result<String, String> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(ip.to_string());
    }
    hostname(value)
        .map(str::to_ascii_lowercase)
        .map_err(|_| format!("{value:?} is not an IP address or host name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        for key in SettingKey::ALL {
            let v = key.parse_value(key.default_value());
            assert_eq!(v.as_deref(), Ok(key.default_value()), "{}", key.name());
        }
    }

    #[test]
    fn values_are_checked() {
        assert_eq!(
            Setting::parse("hostname", "PBX-1").unwrap().value(),
            "pbx-1"
        );
        assert!(Setting::parse("hostname", "-bad").is_err());
        assert!(Setting::parse("hostname", "a..b").is_err());
        assert!(Setting::parse("sip_port", "0").is_err());
        assert!(Setting::parse("sip_port", "65536").is_err());
        assert_eq!(Setting::parse("sip_port", "05060").unwrap().value(), "5060");
        assert!(Setting::parse("location", "a\nb").is_err());
        assert!(Setting::parse("location", &"x".repeat(129)).is_err());
        assert_eq!(
            Setting::parse("ntp_server", "192.0.2.1").unwrap().value(),
            "192.0.2.1"
        );
        assert!(Setting::parse("timezone", "Mars/Olympus").is_err());
        let e = Setting::parse("colour", "red").unwrap_err();
        assert!(e.starts_with("unknown setting \"colour\""), "{e}");
    }
}
