//! Adapter: generated provisioning files on disk and in memory.
//!
//! After every commit that touches provisioning or system settings, and
//! whenever an interface address changes, the loop calls
//! [`Provisioning::regenerate`]: it builds a [`Snapshot`] from the store and
//! the system, lets the pure `provision` core render every file, swaps the
//! in-memory set, and writes only the files whose content changed under
//! `data_dir/provisioning/` (`<tenant_uuid>/` in multitenant mode), each by
//! write-to-temp and rename so that a reader never sees half a file. Files
//! no longer generated are removed. The files are derived state: they are
//! rebuilt from the store at start, so they need no fsync.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::clock::WallTime;
use crate::config::Config;
use crate::model::{Kind, Mac, Object, SettingKey};
use crate::provision::{self, File, PbxValues, Snapshot};
use crate::sip::responder::Lookup;
use crate::store::{Store, StoreError};

/// One generated file as the file servers see it.
#[derive(Clone, Debug)]
pub struct ServedFile {
    pub content: Arc<[u8]>,
    /// The device it belongs to (none: model-wide).
    pub device: Option<Mac>,
    /// HTTP entity-tag, computed once when the index is built.
    pub etag: crate::http::response::ETag,
}

/// The generated files as the file servers see them: shared with the TFTP
/// and HTTP adapters, replaced whole on regeneration.
#[derive(Clone, Debug, Default)]
pub struct Served {
    /// Path -> file.
    files: BTreeMap<String, ServedFile>,
    /// Lower-cased path -> path: the MAC part of a name matches in any case.
    lower: BTreeMap<String, String>,
    /// The provisioned devices outside any tenant (SIP PnP answers these), with what
    /// their NOTIFY names below the base URL ([`provision::pnp_paths`]).
    pnp: BTreeMap<Mac, String>,
    /// Every device outside any tenant: one of these that PnP does not answer is
    /// no unassigned device.
    devices: BTreeSet<Mac>,
    /// Every configured device, in any tenant: a 404 for another file named
    /// after one of these (a phone asking for `<mac>-local.cfg`, a Grandstream
    /// for the binary `cfg<mac>`) is part of its boot, not scanning.
    known: BTreeSet<Mac>,
    /// HTTP digest user and password of the devices that have them.
    credentials: BTreeMap<Mac, (String, String)>,
    /// With HA on: the provisioning URL on the resource IP. SIP PnP then
    /// answers only while this node is active, with that URL.
    ha_prov_base: Option<String>,
    /// This node holds the HA resource (kept across regenerations).
    ha_active: bool,
}

impl Served {
    /// A generated file by path (`name` or `tenant/name`), in any case; lower-cases on
    /// the stack, and only a name that has upper-case letters (file servers call this
    /// for every request).
    fn entry(&self, path: &str) -> Option<&ServedFile> {
        if let Some(f) = self.files.get(path) {
            return Some(f);
        }
        let by_lower = |lower: &str| self.lower.get(lower).and_then(|p| self.files.get(p));
        if !path.bytes().any(|b| b.is_ascii_uppercase()) {
            return by_lower(path);
        }
        if path.len() <= 128 {
            let mut stack = [0u8; 128];
            let buf = stack.get_mut(..path.len())?;
            buf.copy_from_slice(path.as_bytes());
            buf.make_ascii_lowercase();
            return by_lower(std::str::from_utf8(buf).ok()?);
        }
        by_lower(&path.to_ascii_lowercase())
    }

    /// What SIP PnP tells `mac`, asked on local address `local`: the
    /// resource IP's URL on the active HA node, the local address's URL
    /// without HA, followed by the device's file for brands that want one;
    /// silence on a passive HA node (the active one answers) and for a
    /// device without files (disabled, no account, a failed template).
    pub fn pnp_lookup(&self, mac: Mac, local: &str, config: &Config) -> Lookup {
        let Some(file) = self.pnp.get(&mac) else {
            return if self.devices.contains(&mac) {
                Lookup::Silent("not provisioned: disabled, no account or no files")
            } else {
                Lookup::Unknown
            };
        };
        match &self.ha_prov_base {
            Some(_) if !self.ha_active => Lookup::Silent("HA passive node"),
            Some(url) => Lookup::Answer(url.clone() + file),
            None => Lookup::Answer(prov_base(local, config) + file),
        }
    }
}

/// The HTTP server may run connections on other threads, hence a lock; a
/// poisoned lock still holds a complete index (it is only ever replaced).
#[derive(Clone, Debug, Default)]
pub struct SharedServed(Arc<RwLock<Served>>);

impl SharedServed {
    /// A poisoned lock still holds a complete index (it is only ever replaced).
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Served> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// A generated file by path (`name` or `tenant/name`), in any case: its content,
    /// device and entity-tag.
    pub fn file(&self, path: &str) -> Option<ServedFile> {
        self.read().entry(path).cloned()
    }

    /// The device of a generated file: `None` if there is no such file,
    /// `Some(None)` for a model-wide one.
    pub fn device(&self, path: &str) -> Option<Option<Mac>> {
        self.read().entry(path).map(|f| f.device)
    }

    /// Whether a request for `path` that found nothing is a miss that counts
    /// towards the scan guard: it names a MAC that is no configured device.
    pub fn is_miss(&self, path: &str) -> bool {
        crate::provision::guard::find_mac(path).is_some_and(|m| !self.read().known.contains(&m))
    }

    /// The configured device (active or not) a path names by its MAC: a
    /// disabled device or one without an account gets no file, but its
    /// fetches are its own, never an unassigned device's.
    pub fn known_device(&self, path: &str) -> Option<Mac> {
        crate::provision::guard::find_mac(path).filter(|m| self.read().known.contains(m))
    }

    /// Whether `mac` is a configured device (active or not).
    pub fn is_known(&self, mac: Mac) -> bool {
        self.read().known.contains(&mac)
    }

    /// The HTTP digest credentials of `mac`'s files, if it has some.
    pub fn credentials(&self, mac: Mac) -> Option<(String, String)> {
        self.read().credentials.get(&mac).cloned()
    }

    fn replace(&self, mut served: Served) {
        let mut guard = self.0.write().unwrap_or_else(|e| e.into_inner());
        served.ha_active = guard.ha_active;
        *guard = served;
    }

    /// Whether this node holds the HA resource (SIP PnP answers only then).
    pub fn set_ha_active(&self, active: bool) {
        let mut guard = self.0.write().unwrap_or_else(|e| e.into_inner());
        if guard.ha_active != active {
            guard.ha_active = active;
            log::info!(
                "sip_pnp: {}",
                if active {
                    "this node is active: answering with the resource address"
                } else {
                    "this node is not active: not answering while HA is on"
                }
            );
        }
    }

    pub fn pnp_lookup(&self, mac: Mac, local: &str, config: &Config) -> Lookup {
        self.read().pnp_lookup(mac, local, config)
    }
}

pub struct Provisioning {
    root: PathBuf,
    files: BTreeMap<String, File>,
    served: SharedServed,
    problems: Vec<String>,
    warnings: Vec<String>,
    idle: Vec<String>,
    interfaces: BTreeMap<String, Ipv4Addr>,
}

/// What a regeneration did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Regenerated {
    pub files: usize,
    pub written: usize,
    pub removed: usize,
}

impl Provisioning {
    pub fn new(data_dir: &Path) -> Provisioning {
        Provisioning {
            root: data_dir.join("provisioning"),
            files: BTreeMap::new(),
            served: SharedServed::default(),
            problems: Vec::new(),
            warnings: Vec::new(),
            idle: Vec::new(),
            interfaces: interfaces(),
        }
    }

    /// The index the file servers read.
    pub fn served(&self) -> SharedServed {
        self.served.clone()
    }

    pub fn files(&self) -> impl Iterator<Item = &File> {
        self.files.values()
    }

    pub fn file(&self, path: &str) -> Option<&File> {
        self.files.get(path)
    }

    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    /// Devices that get no file by their configuration (disabled, no
    /// account), and why.
    pub fn idle(&self) -> &[String] {
        &self.idle
    }

    /// Devices that got their files with something left out, and what.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Re-reads interface addresses; true if they changed.
    pub fn interfaces_changed(&mut self) -> bool {
        let now = interfaces();
        if now == self.interfaces {
            return false;
        }
        self.interfaces = now;
        true
    }

    pub fn snapshot(
        &self,
        store: &Store,
        config: &Config,
        now: WallTime,
    ) -> Result<Snapshot, StoreError> {
        let mut snapshot = Snapshot {
            pbx: pbx_values(store, config, &self.interfaces, now)?,
            interfaces: self.interfaces.clone(),
            ..Snapshot::default()
        };
        for kind in [
            Kind::Account,
            Kind::Model,
            Kind::Template,
            Kind::Device,
            Kind::Placeholder,
        ] {
            for object in store.list(kind)? {
                match object {
                    Object::Account(a) => snapshot.accounts.push(a),
                    Object::Model(m) => snapshot.models.push(m),
                    Object::Template(t) => snapshot.templates.push(t),
                    Object::Device(d) => snapshot.devices.push(d),
                    Object::Placeholder(p) => snapshot.placeholders.push(p),
                    _ => {}
                }
            }
        }
        Ok(snapshot)
    }

    pub fn regenerate(
        &mut self,
        store: &Store,
        config: &Config,
        now: WallTime,
    ) -> Result<Regenerated, StoreError> {
        let snapshot = self.snapshot(store, config, now)?;
        let output = provision::generate(&snapshot);
        let pnp = provision::pnp_paths(&snapshot, &output.files);
        let devices = snapshot
            .devices
            .iter()
            .filter(|d| d.tenant.is_none())
            .map(|d| d.mac)
            .collect();
        let credentials = snapshot
            .devices
            .iter()
            .filter(|d| !d.http_user.is_empty())
            .map(|d| (d.mac, (d.http_user.clone(), d.http_password.clone())))
            .collect();
        let mut stats = Regenerated {
            files: output.files.len(),
            ..Regenerated::default()
        };
        let fresh: BTreeMap<String, File> =
            output.files.into_iter().map(|f| (f.path(), f)).collect();
        let io = |what: &str, path: &Path, e: std::io::Error| {
            StoreError::Io(format!("provisioning: cannot {what} {}", path.display()), e)
        };
        for (path, file) in &fresh {
            let target = self.root.join(path);
            let unchanged = self
                .files
                .get(path)
                .is_some_and(|old| old.content == file.content)
                && target.exists();
            if unchanged {
                continue;
            }
            if let Some(dir) = target.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
            }
            let tmp = target.with_file_name(format!(".{}.tmp", file.name));
            std::fs::write(&tmp, &file.content).map_err(|e| io("write", &tmp, e))?;
            std::fs::rename(&tmp, &target).map_err(|e| io("rename", &target, e))?;
            stats.written += 1;
        }
        // Whatever is on disk and no longer generated goes (also what a
        // previous run left).
        for stale in files_below(&self.root) {
            let rel = stale
                .strip_prefix(&self.root)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !fresh.contains_key(&rel) {
                let _ = std::fs::remove_file(&stale);
                stats.removed += 1;
            }
        }
        let text = |p: provision::Problem| match p.device {
            Some(mac) => format!("device {mac}: {}", p.message),
            None => p.message,
        };
        self.problems = output.problems.into_iter().map(text).collect();
        self.warnings = output.warnings.into_iter().map(text).collect();
        self.idle = output.idle.into_iter().map(text).collect();
        let known = snapshot.devices.iter().map(|d| d.mac).collect();
        let mut served = Served {
            pnp,
            devices,
            known,
            credentials,
            ha_prov_base: ha_resource(store)?.map(|ip| prov_base(&ip.to_string(), config)),
            ..Served::default()
        };
        for (path, file) in &fresh {
            let content: Arc<[u8]> = file.content.clone();
            let etag = crate::http::response::etag_for_bytes(&content);
            served.files.insert(
                path.clone(),
                ServedFile {
                    content,
                    device: file.device,
                    etag,
                },
            );
            served.lower.insert(path.to_ascii_lowercase(), path.clone());
        }
        self.served.replace(served);
        self.files = fresh;
        Ok(stats)
    }
}

/// Files directly in `root` and in its tenant directories.
fn files_below(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => {
                if let Ok(inner) = std::fs::read_dir(&path) {
                    out.extend(inner.flatten().map(|e| e.path()).filter(|p| p.is_file()));
                }
            }
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
    out
}

/// IPv4 addresses of the system's interfaces (the first of each).
pub fn interfaces() -> BTreeMap<String, Ipv4Addr> {
    let mut out = BTreeMap::new();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return out;
    };
    for ifa in addrs {
        let Some(v4) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) else {
            continue;
        };
        out.entry(ifa.interface_name).or_insert(v4.ip());
    }
    out
}

fn pbx_values(
    store: &Store,
    config: &Config,
    interfaces: &BTreeMap<String, Ipv4Addr>,
    now: WallTime,
) -> Result<PbxValues, StoreError> {
    let setting = |k| store.setting(k);
    let configured = setting(SettingKey::PbxAddress)?;
    let pbx_address = if configured != "auto" {
        configured
    } else if let Some(resource) = ha_resource(store)? {
        // With HA on, phones must follow the pair: the resource IP.
        resource.to_string()
    } else {
        interfaces
            .values()
            .find(|a| !a.is_loopback())
            .or_else(|| interfaces.values().next())
            .map_or("127.0.0.1".to_string(), |a| a.to_string())
    };
    let timezone = setting(SettingKey::Timezone)?;
    let tz = jiff::tz::db()
        .get(&timezone)
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let year = now.to_timestamp().to_zoned(tz.clone()).year();
    Ok(PbxValues {
        hostname: setting(SettingKey::Hostname)?,
        prov_base: prov_base(&pbx_address, config),
        pbx_address,
        sip_port: setting(SettingKey::SipPort)?,
        sip_tls_port: setting(SettingKey::SipTlsPort)?,
        ntp_server: setting(SettingKey::NtpServer)?,
        tz: provision::tz::Values::new(&timezone, &tz, year, provision::standard_offset(&tz, year)),
        timezone,
    })
}

/// The first resource IP when HA is configured and not disabled.
fn ha_resource(store: &Store) -> Result<Option<Ipv4Addr>, StoreError> {
    Ok(match store.get(Kind::Ha, crate::model::ha::HA_ID)? {
        Some(Object::Ha(h)) if h.config.role != crate::ha::Role::Disabled => {
            h.config.resources.first().map(|r| r.addr)
        }
        _ => None,
    })
}

/// `http://ADDRESS[:port]/provisioning/` from the HTTP listener (HTTPS if
/// HTTP is off).
pub(super) fn prov_base(address: &str, config: &Config) -> String {
    let (scheme, listen, default) = match (config.http_listen, config.https_listen) {
        (Some(a), _) => ("http", Some(a), 80),
        (None, Some(a)) => ("https", Some(a), 443),
        (None, None) => ("http", None, 80),
    };
    let host = match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => address.to_string(),
    };
    match listen.map(|a: SocketAddr| a.port()) {
        Some(port) if port != default => format!("{scheme}://{host}:{port}/provisioning/"),
        _ => format!("{scheme}://{host}/provisioning/"),
    }
}

#[cfg(test)]
mod pnp_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pnp_answers_follow_the_ha_role() {
        let config = Config::dev();
        let mac = Mac::parse("000413aabbcc").unwrap();
        let other = Mac::parse("000413aabbcd").unwrap();
        let shared = SharedServed::default();
        let mut served = Served::default();
        served.pnp.insert(mac, String::new());
        shared.replace(served.clone());
        // Without HA: the address the request came in on.
        let answer = |url: &str| Lookup::Answer(url.into());
        assert_eq!(
            shared.pnp_lookup(mac, "192.0.2.5", &config),
            answer("http://192.0.2.5:8080/provisioning/")
        );
        assert_eq!(
            shared.pnp_lookup(other, "192.0.2.5", &config),
            Lookup::Unknown
        );
        // A device without files is known, and silent.
        served.devices.insert(other);
        shared.replace(served.clone());
        assert!(matches!(
            shared.pnp_lookup(other, "192.0.2.5", &config),
            Lookup::Silent(_)
        ));
        // With HA: silent while passive, the resource address while active,
        // and a regeneration keeps the role.
        served.ha_prov_base = Some(prov_base("198.51.100.10", &config));
        shared.replace(served.clone());
        assert_eq!(
            shared.pnp_lookup(mac, "192.0.2.5", &config),
            Lookup::Silent("HA passive node")
        );
        shared.set_ha_active(true);
        shared.replace(served.clone());
        assert_eq!(
            shared.pnp_lookup(mac, "192.0.2.5", &config),
            answer("http://198.51.100.10:8080/provisioning/")
        );
        shared.set_ha_active(false);
        assert_eq!(
            shared.pnp_lookup(mac, "192.0.2.5", &config),
            Lookup::Silent("HA passive node")
        );
        // A Snom device is told its file.
        served.ha_prov_base = None;
        served.pnp.insert(mac, "000413AABBCC.xml".into());
        shared.replace(served);
        assert_eq!(
            shared.pnp_lookup(mac, "192.0.2.5", &config),
            answer("http://192.0.2.5:8080/provisioning/000413AABBCC.xml")
        );
    }
}
