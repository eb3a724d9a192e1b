//! The bootstrap configuration: `/etc/kpbxd.conf`.
//!
//! This is the small file an installer edits before the daemon has a store:
//! where data lives, where the control socket is, how to log, and which
//! addresses the network services listen on. Everything else (HA, provisioning,
//! tasks) is configuration *in the store*, changed through `kpbx` and audited.
//!
//! The format is one `key = value` per line; `#` starts a comment line; blank
//! lines are ignored; values may be wrapped in double quotes. Every key has a
//! documented default (see [`KEYS`]), so an absent file means "all defaults".
//! An unknown key, a repeated key or a bad value is an error naming the line.
//!
//! Invariant: parsing is pure (text in, [`Config`] or [`ConfigError`] out).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the daemon logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogTarget {
    Stderr,
    File(PathBuf),
}

/// The validated bootstrap configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub control_socket: PathBuf,
    pub log_target: LogTarget,
    pub log_level: log::LevelFilter,
    /// A log file is rotated when it reaches this many KiB; with the
    /// [`crate::daemon::logging::KEEP`] older files the log takes at most
    /// four times this on disk.
    pub log_max_kb: u32,
    /// Upper bound of the store's size in MiB (the LMDB map size).
    pub store_max_mb: u32,
    /// Firmware and other static files served beside the generated ones.
    pub static_dir: PathBuf,
    pub http_listen: Option<SocketAddr>,
    pub https_listen: Option<SocketAddr>,
    /// PEM certificate and key for HTTPS; `None`: a self-signed pair kept in
    /// `data_dir/tls`.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tftp_listen: Option<SocketAddr>,
    pub mgmt_listen: Option<SocketAddr>,
    /// Answer multicast SIP PnP SUBSCRIBEs (224.0.1.75:5060).
    pub sip_pnp: bool,
    /// PEM bundle of the CAs trusted for the redirection services.
    /// Base addresses of the redirection services (tests and development).
    pub redirect_endpoints: crate::redirect::Endpoints,
    /// PEM bundle of the CAs trusted for outgoing TLS (SMTP).
    pub ca_bundle: PathBuf,
    /// Seconds added to the wall clock. Test-only: lets tests reach a
    /// scheduled time; never set it on a box.
    pub clock_offset: i64,
    /// Where Asterisk writes its logs: `auto` CDR paths are under it.
    pub asterisk_log_dir: PathBuf,
}

/// One documented key: its name, its default as written in the file, and
/// what it means. `kpbxd --print-config` prints this table as a commented
/// configuration file, and the README copies it.
pub struct KeyDoc {
    pub key: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

/// Every key the file accepts, with its default.
pub const KEYS: &[KeyDoc] = &[
    KeyDoc {
        key: "data_dir",
        default: "/var/lib/kpbxd",
        doc: "Directory of the store (LMDB) and generated files; created if missing.",
    },
    KeyDoc {
        key: "control_socket",
        default: "/run/kpbxd.sock",
        doc: "Unix socket the kpbx console CLI talks to; created with mode 0600.",
    },
    KeyDoc {
        key: "log_target",
        default: "stderr",
        doc: "`stderr`, or the path of a file to append to.",
    },
    KeyDoc {
        key: "log_level",
        default: "info",
        doc: "off, error, warn, info, debug or trace.",
    },
    KeyDoc {
        key: "log_max_kb",
        default: "1024",
        doc: "A log file is rotated at this size in KiB (16 to 1048576), keeping 3 older files (kpbxd.log.1 to .3).",
    },
    KeyDoc {
        key: "store_max_mb",
        default: "1024",
        doc: "Largest size the store may grow to, in MiB (16 to 65536).",
    },
    KeyDoc {
        key: "static_dir",
        default: "/var/lib/kpbxd/firmware",
        doc: "Firmware and other static files served over HTTP and TFTP beside the generated files.",
    },
    KeyDoc {
        key: "http_listen",
        default: "0.0.0.0:80",
        doc: "Provisioning over HTTP (`off` to disable).",
    },
    KeyDoc {
        key: "https_listen",
        default: "0.0.0.0:443",
        doc: "Provisioning over HTTPS (`off` to disable).",
    },
    KeyDoc {
        key: "tls_cert",
        default: "auto",
        doc: "PEM certificate for HTTPS, or `auto`: a self-signed one generated on first start in data_dir/tls.",
    },
    KeyDoc {
        key: "tls_key",
        default: "auto",
        doc: "PEM private key for HTTPS, or `auto` (with tls_cert = auto).",
    },
    KeyDoc {
        key: "tftp_listen",
        default: "0.0.0.0:69",
        doc: "Provisioning over TFTP (`off` to disable); port 69 needs root or CAP_NET_BIND_SERVICE.",
    },
    KeyDoc {
        key: "mgmt_listen",
        default: "127.0.0.1:8443",
        doc: "Management API (`off` to disable).",
    },
    KeyDoc {
        key: "sip_pnp",
        default: "on",
        doc: "`on` or `off`: answer SIP plug-and-play SUBSCRIBEs multicast to 224.0.1.75:5060 with the provisioning URL (off in multitenant mode).",
    },
    KeyDoc {
        key: "redirect_endpoints",
        default: "vendor",
        doc: "For tests and development only: `vendor` (the public services), or `sraps=https://...,snom_xmlrpc=https://...,yealink_xmlrpc=https://...,yealink_rps=https://...,ymcs=https://...` to aim the redirection clients elsewhere (`{region}` in `ymcs` stands for the server's region).",
    },
    KeyDoc {
        key: "ca_bundle",
        default: "/etc/ssl/certs/ca-certificates.crt",
        doc: "PEM bundle of the certificate authorities trusted for outgoing TLS (the SMTP server, the phone vendors' redirection services).",
    },
    KeyDoc {
        key: "clock_offset",
        default: "0",
        doc: "TEST ONLY: seconds added to the wall clock (scheduled tasks, time stamps). Leave at 0 on a box.",
    },
    KeyDoc {
        key: "asterisk_log_dir",
        default: "/var/log/asterisk",
        doc: "Asterisk's log directory: the `auto` CDR files are cdr-csv/Master.csv and queue_log in it.",
    },
];

/// A problem with the configuration file, with the 1-based line it is on
/// (0 when it is about the file as a whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl Default for Config {
    fn default() -> Config {
        let mut config = Config {
            data_dir: PathBuf::new(),
            control_socket: PathBuf::new(),
            log_target: LogTarget::Stderr,
            log_level: log::LevelFilter::Info,
            log_max_kb: 0,
            store_max_mb: 0,
            static_dir: PathBuf::new(),
            http_listen: None,
            https_listen: None,
            tls_cert: None,
            tls_key: None,
            tftp_listen: None,
            mgmt_listen: None,
            sip_pnp: false,
            redirect_endpoints: crate::redirect::Endpoints::default(),
            ca_bundle: PathBuf::new(),
            clock_offset: 0,
            asterisk_log_dir: PathBuf::new(),
        };
        for key in KEYS {
            // The defaults are constants checked by a unit test.
            let _ = config.set(key.key, key.default);
        }
        config
    }
}

impl Config {
    /// The embedded development profile used by `make run` (`kpbxd --dev`):
    /// everything under `./var`, loopback listeners on unprivileged ports,
    /// nothing that needs root.
    pub fn dev() -> Config {
        let loopback = |port: u16| Some(SocketAddr::from(([127, 0, 0, 1], port)));
        Config {
            data_dir: PathBuf::from("var"),
            control_socket: PathBuf::from("var/kpbxd.sock"),
            log_target: LogTarget::Stderr,
            log_level: log::LevelFilter::Info,
            log_max_kb: 1024,
            store_max_mb: 1024,
            static_dir: PathBuf::from("var/firmware"),
            http_listen: loopback(8080),
            https_listen: loopback(8443),
            tls_cert: None,
            tls_key: None,
            tftp_listen: loopback(6969),
            mgmt_listen: loopback(9443),
            // Port 5060 and multicast on loopback need root and a route.
            sip_pnp: false,
            redirect_endpoints: crate::redirect::Endpoints::default(),
            ca_bundle: PathBuf::from("/etc/ssl/certs/ca-certificates.crt"),
            clock_offset: 0,
            asterisk_log_dir: PathBuf::from("var/asterisk"),
        }
    }

    /// Parses the text of a configuration file over the defaults.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config = Config::parse_keys(text)?;
        if config.tls_cert.is_some() != config.tls_key.is_some() {
            return Err(ConfigError {
                line: 0,
                message: "tls_cert and tls_key are both `auto` or both paths".to_string(),
            });
        }
        Ok(config)
    }

    fn parse_keys(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let mut seen: Vec<&str> = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let err = |message: String| ConfigError { line, message };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let Some((key, value)) = trimmed.split_once('=') else {
                return Err(err(format!(
                    "expected `key = value`, found {:?}",
                    clip(trimmed)
                )));
            };
            let key = key.trim();
            let value = unquote(value.trim()).map_err(err)?;
            let Some(doc) = KEYS.iter().find(|k| k.key == key) else {
                return Err(err(format!("unknown key {:?}", clip(key))));
            };
            if seen.contains(&doc.key) {
                return Err(err(format!("key {key:?} is set twice")));
            }
            seen.push(doc.key);
            config
                .set(doc.key, value)
                .map_err(|m| err(format!("{key}: {m}")))?;
        }
        Ok(config)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "data_dir" => self.data_dir = path(value)?,
            "control_socket" => self.control_socket = path(value)?,
            "log_target" => {
                self.log_target = match value {
                    "stderr" => LogTarget::Stderr,
                    _ => LogTarget::File(path(value)?),
                }
            }
            "log_level" => {
                self.log_level = value.parse().map_err(|_| {
                    format!("{value:?} is not one of off, error, warn, info, debug, trace")
                })?
            }
            "log_max_kb" => {
                let kb: u32 = value
                    .parse()
                    .map_err(|_| format!("{value:?} is not a whole number"))?;
                if !(16..=1_048_576).contains(&kb) {
                    return Err(format!("{kb} is outside 16..=1048576"));
                }
                self.log_max_kb = kb;
            }
            "store_max_mb" => {
                let mb: u32 = value
                    .parse()
                    .map_err(|_| format!("{value:?} is not a whole number"))?;
                if !(16..=65536).contains(&mb) {
                    return Err(format!("{mb} is outside 16..=65536"));
                }
                self.store_max_mb = mb;
            }
            "static_dir" => self.static_dir = path(value)?,
            "http_listen" => self.http_listen = listen(value)?,
            "https_listen" => self.https_listen = listen(value)?,
            "tls_cert" => self.tls_cert = auto_path(value)?,
            "tls_key" => self.tls_key = auto_path(value)?,
            "tftp_listen" => self.tftp_listen = listen(value)?,
            "mgmt_listen" => self.mgmt_listen = listen(value)?,
            "asterisk_log_dir" => self.asterisk_log_dir = path(value)?,
            "sip_pnp" => {
                self.sip_pnp = match value {
                    "on" => true,
                    "off" => false,
                    _ => return Err(format!("{value:?} is not `on` or `off`")),
                }
            }
            "redirect_endpoints" => {
                self.redirect_endpoints = crate::redirect::Endpoints::parse(value)?
            }
            "ca_bundle" => self.ca_bundle = path(value)?,
            "clock_offset" => {
                self.clock_offset = value
                    .parse::<i64>()
                    .ok()
                    .filter(|s| s.unsigned_abs() <= 100 * 365 * 86_400)
                    .ok_or_else(|| {
                        format!("{value:?} is not a number of seconds (up to 100 years)")
                    })?
            }
            _ => return Err(format!("unknown key {key:?}")),
        }
        Ok(())
    }

    /// The configuration written back as a file, every key present.
    pub fn render(&self) -> String {
        let addr = |a: &Option<SocketAddr>| a.map_or("off".to_string(), |a| a.to_string());
        // Paths are quoted so that surrounding white space survives.
        let quoted = |p: &PathBuf| format!("\"{}\"", p.display());
        let values = [
            quoted(&self.data_dir),
            quoted(&self.control_socket),
            match &self.log_target {
                LogTarget::Stderr => "stderr".to_string(),
                LogTarget::File(p) => quoted(p),
            },
            self.log_level.to_string().to_lowercase(),
            self.log_max_kb.to_string(),
            self.store_max_mb.to_string(),
            quoted(&self.static_dir),
            addr(&self.http_listen),
            addr(&self.https_listen),
            self.tls_cert.as_ref().map_or("auto".to_string(), quoted),
            self.tls_key.as_ref().map_or("auto".to_string(), quoted),
            addr(&self.tftp_listen),
            addr(&self.mgmt_listen),
            if self.sip_pnp { "on" } else { "off" }.to_string(),
            format!("\"{}\"", self.redirect_endpoints.render()),
            quoted(&self.ca_bundle),
            self.clock_offset.to_string(),
            quoted(&self.asterisk_log_dir),
        ];
        let mut out = String::from("# kpbxd bootstrap configuration\n");
        for (key, value) in KEYS.iter().zip(values) {
            out.push_str(&format!(
                "\n# {} (default: {})\n{} = {}\n",
                key.doc, key.default, key.key, value
            ));
        }
        out
    }
}

fn unquote(value: &str) -> Result<&str, String> {
    match value.strip_prefix('"') {
        None => Ok(value),
        Some(rest) => rest
            .strip_suffix('"')
            .filter(|inner| !inner.contains('"'))
            .ok_or_else(|| format!("unbalanced quotes in {:?}", clip(value))),
    }
}

fn path(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("a path is required".to_string());
    }
    if value.chars().any(|c| c.is_control() || c == '"') {
        return Err("a path may not contain control characters or quotes".to_string());
    }
    Ok(PathBuf::from(value))
}

fn auto_path(value: &str) -> Result<Option<PathBuf>, String> {
    if value == "auto" {
        Ok(None)
    } else {
        path(value).map(Some)
    }
}

fn listen(value: &str) -> Result<Option<SocketAddr>, String> {
    if value == "off" {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| {
        format!(
            "{:?} is not `off` or an address:port such as 0.0.0.0:80",
            clip(value)
        )
    })
}

/// Shortens untrusted text quoted back in a message.
fn clip(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses() {
        let mut c = Config::default();
        for key in KEYS {
            c.set(key.key, key.default)
                .unwrap_or_else(|e| panic!("default of {}: {e}", key.key));
        }
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/kpbxd"));
        assert_eq!(c.control_socket, PathBuf::from("/run/kpbxd.sock"));
        assert_eq!(c.store_max_mb, 1024);
        assert_eq!(c.tftp_listen, Some("0.0.0.0:69".parse().unwrap()));
        assert!(c.sip_pnp);
        assert!(!Config::dev().sip_pnp);
    }

    #[test]
    fn redirect_keys() {
        let c = Config::parse(
            "ca_bundle = /tmp/ca.pem\nredirect_endpoints = \"sraps=https://127.0.0.1:9/api/v1/\"\n",
        )
        .unwrap();
        assert_eq!(c.ca_bundle, PathBuf::from("/tmp/ca.pem"));
        assert_eq!(c.redirect_endpoints.sraps, "https://127.0.0.1:9/api/v1/");
        assert_eq!(Config::parse(&c.render()).unwrap(), c);
        let e = Config::parse("\nredirect_endpoints = sraps=http://x/\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn sip_pnp_is_on_or_off() {
        assert!(!Config::parse("sip_pnp = off\n").unwrap().sip_pnp);
        assert!(Config::parse("sip_pnp = on\n").unwrap().sip_pnp);
        let e = Config::parse("sip_pnp = yes\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("sip_pnp"), "{e}");
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
        assert_eq!(
            Config::parse("# only a comment\n\n").unwrap(),
            Config::default()
        );
    }

    #[test]
    fn values_override_defaults() {
        let c = Config::parse(
            "data_dir = /data\nlog_target = \"/var/log/kpbxd.log\"\nlog_level=debug\nhttp_listen = off\n",
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/data"));
        assert_eq!(c.log_target, LogTarget::File("/var/log/kpbxd.log".into()));
        assert_eq!(c.log_level, log::LevelFilter::Debug);
        assert_eq!(c.http_listen, None);
    }

    #[test]
    fn unknown_key_names_its_line() {
        let e = Config::parse("data_dir = /x\n\n# c\ndata_dri = /y\n").unwrap_err();
        assert_eq!(e.line, 4);
        assert_eq!(e.to_string(), "line 4: unknown key \"data_dri\"");
    }

    #[test]
    fn malformed_lines_are_errors() {
        let cases = [
            ("just words\n", 1, "expected `key = value`"),
            ("log_level = loud\n", 1, "log_level: \"loud\" is not one of"),
            (
                "\nhttp_listen = 80\n",
                2,
                "http_listen: \"80\" is not `off`",
            ),
            ("store_max_mb = 8\n", 1, "store_max_mb: 8 is outside"),
            ("data_dir = \"/x\n", 1, "unbalanced quotes"),
            ("data_dir =\n", 1, "data_dir: a path is required"),
            (
                "control_socket = a\u{b}b\n",
                1,
                "may not contain control characters",
            ),
            (
                "data_dir = a\"b\n",
                1,
                "may not contain control characters or quotes",
            ),
            ("log_level = info\nlog_level = warn\n", 2, "set twice"),
        ];
        for (text, line, needle) in cases {
            let e = Config::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}");
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn render_round_trips() {
        let odd = Config::parse("data_dir = \" /srv/with space \"\n").unwrap();
        assert_eq!(odd.data_dir, PathBuf::from(" /srv/with space "));
        assert_eq!(Config::parse(&odd.render()).unwrap(), odd);
        let c = Config::dev();
        assert_eq!(Config::parse(&c.render()).unwrap(), c);
        assert_eq!(
            Config::parse(&Config::default().render()).unwrap(),
            Config::default()
        );
    }
}
