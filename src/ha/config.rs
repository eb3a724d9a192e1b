//! HA configuration: the validated settings of one node.
//!
//! Architecture invariant: this module only checks values; it reads no files
//! and no interfaces. The daemon fills [`Config`] from its store and gets
//! either `Ok(())` or a [`ConfigError`] that says what to fix.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

/// What this node does in the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// HA is off: the node manages no resource and sends nothing.
    Disabled,
    /// Secondary node: waits to be paired by the coordinator.
    Enabled,
    /// Coordinator: knows the secondary's serial number and starts pairing.
    Coordinator,
}

/// Which node takes the resource when nothing else decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultActive {
    Local,
    Remote,
}

/// One interface address of this node (used for the LAN and the sync path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathConfig {
    pub interface: String,
    pub local_ip: Ipv4Addr,
    pub remote_ip: Ipv4Addr,
    pub prefix: u8,
}

/// A floating address held by the active node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceIp {
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub interface: String,
}

/// The validated HA settings of one node.
///
/// Defaults (see [`Config::DEFAULT_HEARTBEAT_INTERVAL`] and friends) are
/// chosen so that a busy LAN or a paused VM does not cause a failover:
/// they match the ~3 s dead time that keepalived (3.6 x 1 s) and Corosync 3
/// (token 3 s, raised from 1 s because 1 s was flapping) settled on, while
/// sending heartbeats five times more often, so one or two lost datagrams
/// never count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub role: Role,
    /// Serial number of the secondary (only the coordinator needs it).
    pub remote_serial: String,
    /// Optional one-time pairing code typed on both nodes; when set it
    /// replaces the serial number as the pairing secret.
    pub pairing_code: Option<String>,
    /// LAN interface: carries the resource and the second heartbeat path.
    pub lan: PathConfig,
    /// Sync interface: pairing and the first heartbeat path.
    pub sync: PathConfig,
    /// One or more floating addresses.
    pub resources: Vec<ResourceIp>,
    /// Addresses both nodes ping; may be empty.
    pub ping_group: Vec<Ipv4Addr>,
    pub default_active: DefaultActive,
    /// **Default:** 200 ms.
    pub heartbeat_interval: Duration,
    /// Silence on a path after which a warning is raised. **Default:** 1 s.
    pub keepalive_warning: Duration,
    /// Silence on every path after which the peer is out of service.
    /// **Default:** 3 s (15 heartbeats).
    pub keepalive_out_of_service: Duration,
    /// How long a booting node waits for its peer. **Default:** 60 s,
    /// enough for a switch port running classic STP (2 x 15 s forward delay)
    /// plus boot skew; the wait ends as soon as the peer is heard.
    pub init_timeout: Duration,
    /// How often the adapter pings each member. **Default:** 1 s.
    pub ping_interval: Duration,
    /// How long a member's new state must hold before it counts in the
    /// comparison between nodes. **Default:** 5 s (Pacemaker's `dampen`).
    pub ping_dampen: Duration,
}

impl Config {
    pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(200);
    pub const DEFAULT_KEEPALIVE_WARNING: Duration = Duration::from_secs(1);
    pub const DEFAULT_KEEPALIVE_OUT_OF_SERVICE: Duration = Duration::from_secs(3);
    pub const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(60);
    pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(1);
    pub const DEFAULT_PING_DAMPEN: Duration = Duration::from_secs(5);

    /// A config with the documented timing defaults.
    pub fn new(
        role: Role,
        lan: PathConfig,
        sync: PathConfig,
        resources: Vec<ResourceIp>,
        default_active: DefaultActive,
    ) -> Config {
        Config {
            role,
            remote_serial: String::new(),
            pairing_code: None,
            lan,
            sync,
            resources,
            ping_group: Vec::new(),
            default_active,
            heartbeat_interval: Config::DEFAULT_HEARTBEAT_INTERVAL,
            keepalive_warning: Config::DEFAULT_KEEPALIVE_WARNING,
            keepalive_out_of_service: Config::DEFAULT_KEEPALIVE_OUT_OF_SERVICE,
            init_timeout: Config::DEFAULT_INIT_TIMEOUT,
            ping_interval: Config::DEFAULT_PING_INTERVAL,
            ping_dampen: Config::DEFAULT_PING_DAMPEN,
        }
    }

    /// Checks every rule; the first broken one is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.role == Role::Disabled {
            return Ok(());
        }
        if self.role == Role::Coordinator
            && self.remote_serial.trim().is_empty()
            && self.pairing_code.is_none()
        {
            return Err(ConfigError::MissingRemoteSerial);
        }
        if self.remote_serial.len() > MAX_SERIAL_LEN {
            return Err(ConfigError::RemoteSerialTooLong);
        }
        if self.pairing_code.as_deref().is_some_and(|c| c.len() < 8) {
            return Err(ConfigError::PairingCodeTooShort);
        }
        for path in [&self.lan, &self.sync] {
            if path.prefix == 0 || path.prefix > 32 {
                return Err(ConfigError::BadPrefix(path.interface.clone()));
            }
            if path.local_ip == path.remote_ip {
                return Err(ConfigError::SameLocalAndRemote(path.interface.clone()));
            }
            if !same_subnet(path.local_ip, path.remote_ip, path.prefix) {
                return Err(ConfigError::RemoteNotInSubnet(path.interface.clone()));
            }
        }
        if self.sync.interface == self.lan.interface {
            return Err(ConfigError::SyncEqualsLan);
        }
        if self.resources.is_empty() {
            return Err(ConfigError::NoResource);
        }
        for r in &self.resources {
            if r.interface != self.lan.interface {
                return Err(ConfigError::ResourceNotOnLan(r.addr));
            }
            if r.prefix == 0 || r.prefix > 32 {
                return Err(ConfigError::BadPrefix(r.interface.clone()));
            }
            if !same_subnet(r.addr, self.lan.local_ip, self.lan.prefix) {
                return Err(ConfigError::ResourceNotInSubnet(r.addr));
            }
            if r.addr == self.lan.local_ip || r.addr == self.lan.remote_ip {
                return Err(ConfigError::ResourceIsNodeAddress(r.addr));
            }
        }
        if self.ping_group.len() > usize::from(u8::MAX) {
            return Err(ConfigError::PingGroupTooLarge);
        }
        let interval = self.heartbeat_interval;
        if interval < Duration::from_millis(10) || interval > Duration::from_secs(10) {
            return Err(ConfigError::HeartbeatIntervalOutOfRange);
        }
        if self.keepalive_out_of_service <= interval * 2 {
            return Err(ConfigError::OutOfServiceTooShort);
        }
        if self.keepalive_warning < interval
            || self.keepalive_warning >= self.keepalive_out_of_service
        {
            return Err(ConfigError::WarningOutOfRange);
        }
        if self.init_timeout < self.keepalive_out_of_service {
            return Err(ConfigError::InitTimeoutTooShort);
        }
        if self.ping_interval.is_zero() {
            return Err(ConfigError::PingIntervalZero);
        }
        let hour = Duration::from_secs(3600);
        if self.keepalive_out_of_service > hour
            || self.init_timeout > hour * 24
            || self.ping_interval > hour
            || self.ping_dampen > hour
        {
            return Err(ConfigError::TimeTooLong);
        }
        Ok(())
    }
}

/// Longest serial number accepted (it travels in pairing frames).
pub const MAX_SERIAL_LEN: usize = 32;

fn same_subnet(a: Ipv4Addr, b: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0);
    u32::from(a) & mask == u32::from(b) & mask
}

/// Why a config was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    MissingRemoteSerial,
    RemoteSerialTooLong,
    PairingCodeTooShort,
    BadPrefix(String),
    SameLocalAndRemote(String),
    RemoteNotInSubnet(String),
    SyncEqualsLan,
    NoResource,
    ResourceNotOnLan(Ipv4Addr),
    ResourceNotInSubnet(Ipv4Addr),
    ResourceIsNodeAddress(Ipv4Addr),
    PingGroupTooLarge,
    HeartbeatIntervalOutOfRange,
    OutOfServiceTooShort,
    WarningOutOfRange,
    InitTimeoutTooShort,
    PingIntervalZero,
    TimeTooLong,
    BadDuration(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::MissingRemoteSerial => {
                write!(f, "the coordinator needs the remote serial number")
            }
            ConfigError::RemoteSerialTooLong => {
                write!(f, "remote serial number longer than {MAX_SERIAL_LEN} bytes")
            }
            ConfigError::PairingCodeTooShort => {
                write!(f, "pairing code must have at least 8 characters")
            }
            ConfigError::BadPrefix(i) => write!(f, "prefix length on {i} must be 1..=32"),
            ConfigError::SameLocalAndRemote(i) => {
                write!(f, "local and remote IP on {i} are equal")
            }
            ConfigError::RemoteNotInSubnet(i) => {
                write!(f, "remote IP on {i} is not in the local subnet")
            }
            ConfigError::SyncEqualsLan => {
                write!(f, "sync interface must differ from the LAN interface")
            }
            ConfigError::NoResource => write!(f, "at least one resource IP is needed"),
            ConfigError::ResourceNotOnLan(a) => {
                write!(f, "resource IP {a} must be on the LAN interface")
            }
            ConfigError::ResourceNotInSubnet(a) => {
                write!(f, "resource IP {a} is not in the interface's subnet")
            }
            ConfigError::ResourceIsNodeAddress(a) => {
                write!(f, "resource IP {a} is a node's own address")
            }
            ConfigError::PingGroupTooLarge => write!(f, "ping group has more than 255 members"),
            ConfigError::HeartbeatIntervalOutOfRange => {
                write!(f, "heartbeat interval must be between 10 ms and 10 s")
            }
            ConfigError::OutOfServiceTooShort => {
                write!(
                    f,
                    "out-of-service threshold must exceed 2 x heartbeat interval"
                )
            }
            ConfigError::WarningOutOfRange => write!(
                f,
                "warning threshold must be at least the heartbeat interval and below the out-of-service threshold"
            ),
            ConfigError::InitTimeoutTooShort => {
                write!(
                    f,
                    "init timeout must be at least the out-of-service threshold"
                )
            }
            ConfigError::PingIntervalZero => write!(f, "ping interval must not be zero"),
            ConfigError::TimeTooLong => write!(
                f,
                "out-of-service, ping interval and dampening are limited to 1 h, init timeout to 24 h"
            ),
            ConfigError::BadDuration(s) => write!(f, "cannot read {s:?} as seconds"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads seconds with an optional fraction, e.g. `"3"`, `"0.25"`, `"1.5"`
/// (at most microsecond precision).
pub fn parse_seconds(text: &str) -> Result<Duration, ConfigError> {
    let bad = || ConfigError::BadDuration(text.to_owned());
    let (whole, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    if frac.len() > 6
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let micros: u64 = if frac.is_empty() {
        0
    } else {
        let scale = 10u64.pow(6 - frac.len() as u32);
        frac.parse::<u64>().map_err(|_| bad())? * scale
    };
    if secs > 86_400 {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs) + Duration::from_micros(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Config {
        let mut c = Config::new(
            Role::Coordinator,
            PathConfig {
                interface: "eth0".into(),
                local_ip: Ipv4Addr::new(10, 0, 0, 1),
                remote_ip: Ipv4Addr::new(10, 0, 0, 2),
                prefix: 24,
            },
            PathConfig {
                interface: "eth1".into(),
                local_ip: Ipv4Addr::new(192, 0, 2, 1),
                remote_ip: Ipv4Addr::new(192, 0, 2, 2),
                prefix: 30,
            },
            vec![ResourceIp {
                addr: Ipv4Addr::new(10, 0, 0, 10),
                prefix: 24,
                interface: "eth0".into(),
            }],
            DefaultActive::Local,
        );
        c.remote_serial = "KP-0002".into();
        c
    }

    #[test]
    fn sample_is_valid() {
        assert_eq!(sample().validate(), Ok(()));
    }

    #[test]
    fn refusals_name_the_reason() {
        let mut c = sample();
        c.resources[0].addr = Ipv4Addr::new(10, 0, 1, 10);
        assert_eq!(
            c.validate(),
            Err(ConfigError::ResourceNotInSubnet(Ipv4Addr::new(
                10, 0, 1, 10
            )))
        );
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "resource IP 10.0.1.10 is not in the interface's subnet"
        );

        let mut c = sample();
        c.sync.interface = "eth0".into();
        assert_eq!(c.validate(), Err(ConfigError::SyncEqualsLan));

        let mut c = sample();
        c.keepalive_out_of_service = Duration::from_millis(400);
        c.keepalive_warning = Duration::from_millis(300);
        assert_eq!(c.validate(), Err(ConfigError::OutOfServiceTooShort));

        let mut c = sample();
        c.remote_serial.clear();
        assert_eq!(c.validate(), Err(ConfigError::MissingRemoteSerial));

        let mut c = sample();
        c.ping_interval = Duration::MAX;
        assert_eq!(c.validate(), Err(ConfigError::TimeTooLong));

        let mut c = sample();
        c.keepalive_warning = c.keepalive_out_of_service;
        assert_eq!(c.validate(), Err(ConfigError::WarningOutOfRange));
    }

    #[test]
    fn seconds_accept_fractions() {
        assert_eq!(parse_seconds("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_seconds(".5"), Ok(Duration::from_millis(500)));
        assert_eq!(
            parse_seconds("1.000001"),
            Ok(Duration::from_micros(1_000_001))
        );
        for bad in [
            "",
            ".",
            "-1",
            "1.2.3",
            "1e3",
            "0.0000001",
            "99999999999999999999",
        ] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}
