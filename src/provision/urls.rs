//! Where phones look for their server: for each vendor in use (per tenant),
//! the DHCP options to set, the URL to type into a phone by hand, and the
//! TFTP path (`kpbx prov urls`).
//!
//! Sources: the DHCP classes of wazo-provd-plugins (`dhcp/dhcp/dhcpd_update/
//! *.conf`: option 66 for Snom, Yealink, Grandstream, Poly; 66 and 43 for
//! Fanvil with `$mac.cfg`; option 114 "default-url" for Gigaset; option 150
//! for Cisco), Snom's DHCP options page (43 may carry 66/67), Yealink's Auto
//! Provisioning Guide (66, 43, custom option), Poly's provisioning guide
//! (160 before 66), Cisco's multiplatform guide (default profile rule
//! `/$PSN.xml`; option 160 with `/$PSN.xml` appended).
//!
//! Invariant: pure.

use std::collections::BTreeSet;

use super::Snapshot;
use super::catalogue;

/// One thing to configure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub tenant: Option<String>,
    pub brand: String,
    /// Where: `DHCP option 66`, `by hand: ...`, `TFTP`.
    pub setting: String,
    pub value: String,
}

/// The vendors a brand name stands for, by the catalogue's brands.
fn vendor(brand: &str) -> &'static str {
    let b = brand.to_ascii_lowercase();
    for v in [
        "snom",
        "yealink",
        "grandstream",
        "fanvil",
        "gigaset",
        "poly",
        "cisco",
    ] {
        if b.contains(v) {
            return v;
        }
    }
    ""
}

/// The rows for every brand of the enabled devices, per tenant. `tftp` is
/// the address phones reach the TFTP server on, `None` when TFTP is off.
pub fn urls(snapshot: &Snapshot, tftp: Option<&str>) -> Vec<Row> {
    let builtin = &catalogue::catalogue().models;
    let mut in_use: BTreeSet<(Option<String>, String, String)> = BTreeSet::new();
    for d in snapshot.devices.iter().filter(|d| d.enabled) {
        let Some(m) = snapshot
            .models
            .iter()
            .chain(builtin)
            .find(|m| m.name == d.model)
        else {
            continue;
        };
        let first = m
            .model_files
            .first()
            .map(|(f, _)| f.clone())
            .unwrap_or_default();
        in_use.insert((d.tenant.clone(), m.brand.clone(), first));
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (tenant, brand, model_file) in in_use {
        if !seen.insert((tenant.clone(), brand.clone())) {
            continue;
        }
        let scope = tenant.as_ref().map_or(String::new(), |t| format!("{t}/"));
        let base = format!("{}{scope}", snapshot.pbx.prov_base);
        let tftp_dir = tftp.map(|a| format!("tftp://{a}/{scope}"));
        let mut row = |setting: &str, value: String| {
            out.push(Row {
                tenant: tenant.clone(),
                brand: brand.clone(),
                setting: setting.to_string(),
                value,
            })
        };
        let host_path = base
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        match vendor(&brand) {
            "snom" => {
                row("DHCP option 66", base.clone());
                row(
                    "DHCP option 43",
                    format!("sub-option 66 = {base} (takes precedence over option 66)"),
                );
                row(
                    "by hand: Setting URL (Advanced > Update)",
                    format!("{base}{{mac}}.xml"),
                );
            }
            "yealink" => {
                row("DHCP option 66", base.clone());
                row("DHCP option 43", base.clone());
                row("by hand: Auto Provision > Server URL", base.clone());
            }
            "grandstream" => {
                row("DHCP option 66", base.clone());
                row(
                    "by hand: Maintenance > Upgrade and Provisioning",
                    format!(
                        "Config Server Path = {host_path}, Config Upgrade via {}",
                        if base.starts_with("https") {
                            "HTTPS"
                        } else {
                            "HTTP"
                        }
                    ),
                );
            }
            "fanvil" => {
                row("DHCP option 66", format!("{base}$mac.cfg"));
                row("DHCP option 43", format!("{base}$mac.cfg"));
                row("by hand: Auto Provision > Server URL", base.clone());
            }
            "gigaset" => {
                row("DHCP option 114", base.clone());
                row(
                    "by hand: Settings > System > Provisioning and configuration",
                    base.clone(),
                );
            }
            "poly" => {
                row("DHCP option 160", base.clone());
                row("DHCP option 66", base.clone());
                row(
                    "by hand: Settings > Provisioning Server",
                    format!(
                        "Server Type {}, Server Address {host_path}",
                        if base.starts_with("https") {
                            "HTTPS"
                        } else {
                            "HTTP"
                        }
                    ),
                );
            }
            "cisco" => {
                row("DHCP option 160", format!("{base}$PSN.xml"));
                if let (Some(address), None) = (tftp, &tenant) {
                    row(
                        "DHCP option 66 or 150",
                        format!("{address} (the phone asks TFTP for /$PSN.xml, e.g. {model_file})"),
                    );
                }
                row(
                    "by hand: Voice > Provisioning > Profile Rule",
                    format!("{base}$PSN.xml"),
                );
            }
            _ => {
                row("DHCP option 66", base.clone());
            }
        }
        if let Some(dir) = &tftp_dir {
            row("TFTP", dir.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{Device, Mac};

    fn device(mac: &str, model: &str, tenant: Option<&str>) -> Device {
        Device {
            mac: Mac::parse(mac).unwrap(),
            tenant: tenant.map(str::to_string),
            enabled: true,
            model: model.into(),
            template: String::new(),
            account: None,
            redirect_server: None,
            notes: String::new(),
            dhcp: true,
            ip: None,
            netmask: None,
            gateway: None,
            dns1: None,
            dns2: None,
            phone_user: String::new(),
            phone_password: String::new(),
            remote_addr: String::new(),
            remote_port: None,
            http_user: String::new(),
            http_password: String::new(),
        }
    }

    #[test]
    fn per_vendor_and_tenant() {
        let mut s = Snapshot::default();
        s.pbx.prov_base = "http://192.0.2.1/provisioning/".into();
        s.devices = vec![
            device("001565000001", "Yealink-T4x", None),
            device("001565000002", "Yealink-T5x", None),
            device("000413000001", "Snom-D785", Some("t1")),
            device("0004f2000001", "Poly-VVX", None),
            device("7c2f80000001", "Gigaset-IP-PRO", None),
            device("00000c000001", "Cisco-MPP", None),
        ];
        let rows = urls(&s, Some("192.0.2.1"));
        let find = |brand: &str, setting: &str| {
            rows.iter()
                .find(|r| r.brand == brand && r.setting == setting)
                .map(|r| (r.tenant.clone(), r.value.clone()))
        };
        // One set per brand, though two Yealink models are in use.
        assert_eq!(
            rows.iter()
                .filter(|r| r.brand == "Yealink" && r.setting == "DHCP option 66")
                .count(),
            1
        );
        assert_eq!(
            find("Yealink", "DHCP option 66"),
            Some((None, "http://192.0.2.1/provisioning/".into()))
        );
        assert_eq!(
            find("Snom", "by hand: Setting URL (Advanced > Update)"),
            Some((
                Some("t1".into()),
                "http://192.0.2.1/provisioning/t1/{mac}.xml".into()
            ))
        );
        assert_eq!(
            find("Snom", "TFTP"),
            Some((Some("t1".into()), "tftp://192.0.2.1/t1/".into()))
        );
        assert_eq!(
            find("Gigaset", "DHCP option 114").map(|r| r.1),
            Some("http://192.0.2.1/provisioning/".into())
        );
        assert_eq!(
            find("Cisco", "DHCP option 160").map(|r| r.1),
            Some("http://192.0.2.1/provisioning/$PSN.xml".into())
        );
        assert!(find("Cisco", "DHCP option 66 or 150").is_some());
        assert_eq!(
            find("Poly", "by hand: Settings > Provisioning Server").map(|r| r.1),
            Some("Server Type HTTP, Server Address 192.0.2.1/provisioning".into())
        );
        // Without TFTP, no TFTP rows.
        assert!(urls(&s, None).iter().all(|r| r.setting != "TFTP"));
    }
}
