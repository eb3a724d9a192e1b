//! Golden files: every built-in template rendered for a fixed device, one
//! with DHCP and one with a static address. `UPDATE_GOLDEN=1 cargo test
//! --test prov_golden` rewrites them after a deliberate change; review the
//! diff before committing.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

use std::collections::BTreeMap;
use std::path::Path;

use kpbxd::model::prov::PlaceholderValue;
use kpbxd::model::{Account, Device, Mac, Placeholder};
use kpbxd::provision::{self, PbxValues, Snapshot, catalogue};

fn pbx() -> PbxValues {
    let tz = jiff::tz::db().get("Europe/Rome").unwrap();
    PbxValues {
        hostname: "kpbx".into(),
        pbx_address: "192.0.2.1".into(),
        sip_port: "5060".into(),
        sip_tls_port: "5061".into(),
        ntp_server: "ntp.example.net".into(),
        timezone: "Europe/Rome".into(),
        tz: provision::tz::Values::new("Europe/Rome", &tz, 2026, 3600),
        prov_base: "http://192.0.2.1/provisioning/".into(),
    }
}

fn device(mac: &str, model: &str, template: &str, dhcp: bool) -> Device {
    let ip = |s: &str| Some(s.parse().unwrap());
    Device {
        mac: Mac::parse(mac).unwrap(),
        tenant: None,
        enabled: true,
        model: model.into(),
        template: template.into(),
        account: Some("201".into()),
        redirect_server: None,
        notes: String::new(),
        dhcp,
        ip: if dhcp { None } else { ip("192.0.2.50") },
        netmask: if dhcp { None } else { ip("255.255.255.0") },
        gateway: if dhcp { None } else { ip("192.0.2.254") },
        dns1: if dhcp { None } else { ip("192.0.2.53") },
        dns2: None,
        phone_user: "admin".into(),
        phone_password: if dhcp {
            String::new()
        } else {
            "Adm1n&<pw>".into()
        },
        remote_addr: String::new(),
        remote_port: None,
        http_user: String::new(),
        http_password: String::new(),
    }
}

#[test]
fn builtin_templates_match_their_golden_files() {
    let account = Account {
        tenant: None,
        extension: "201".into(),
        sip_user: "201".into(),
        sip_password: "s3cr\"t<&>".into(),
        display_name: "Łukasz O'Brien".into(),
        first_name: "Łukasz".into(),
        last_name: "O'Brien".into(),
        email: "lukasz@example.net".into(),
    };
    let cat = catalogue::catalogue();
    let mut devices = Vec::new();
    for (i, m) in cat.models.iter().enumerate() {
        let template = catalogue::info(&m.name).unwrap().template;
        devices.push(device(
            &format!("0004130000{:02x}", 2 * i),
            &m.name,
            template,
            true,
        ));
        devices.push(device(
            &format!("0004130000{:02x}", 2 * i + 1),
            &m.name,
            template,
            false,
        ));
    }
    let snapshot = Snapshot {
        pbx: pbx(),
        accounts: vec![account],
        devices,
        placeholders: vec![Placeholder {
            tenant: None,
            name: "UNUSED".into(),
            value: PlaceholderValue::Static("x".into()),
        }],
        interfaces: BTreeMap::new(),
        ..Snapshot::default()
    };
    let out = provision::generate(&snapshot);
    assert!(out.problems.is_empty(), "{:?}", out.problems);
    // Only the Gigaset device with a static address is warned about (the
    // static network it cannot write); Europe/Rome is expressible for all.
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(out.warnings[0].message.contains("static network"));
    // Every model's rules produced files for both of its devices; model-wide
    // files shared by models (Poly's master) are made once.
    let mut names: Vec<String> = cat
        .models
        .iter()
        .flat_map(|m| m.model_files.iter().map(|(f, _)| f.clone()))
        .collect();
    names.sort();
    names.dedup();
    let expected: usize = cat.models.iter().map(|m| 2 * m.rules.len()).sum::<usize>() + names.len();
    assert_eq!(out.files.len(), expected);

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for f in &out.files {
        let path = dir.join(&f.name);
        if update {
            std::fs::write(&path, &f.content).unwrap();
            continue;
        }
        match std::fs::read(&path) {
            Ok(want) if want == f.content.as_ref() => {}
            Ok(_) => mismatches.push(format!("{} differs", f.name)),
            Err(_) => mismatches.push(format!("{} has no golden file", f.name)),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{mismatches:?} (UPDATE_GOLDEN=1 to rewrite)"
    );
    let golden = std::fs::read_dir(&dir).unwrap().count();
    assert_eq!(
        golden,
        out.files.len(),
        "stale golden files in tests/golden"
    );
}

#[test]
fn xml_files_are_well_formed_and_secrets_escaped() {
    let mut xml = Vec::new();
    for entry in
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")).unwrap()
    {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        if text.starts_with("<?xml") {
            assert!(
                !text.contains("s3cr\"t<&>"),
                "{}: raw secret in XML",
                path.display()
            );
            xml.push(path);
        } else if text.contains("account.1.password") || text.contains("Register Pswd") {
            assert!(
                text.contains("s3cr\"t<&>"),
                "{}: plain files are not escaped",
                path.display()
            );
        }
    }
    assert!(xml.len() > 50, "{}", xml.len());
    // A strict reader, Python's expat, over every XML file at once.
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, xml.dom.minidom\n\
             for p in sys.argv[1:]:\n\
             \x20   try:\n\
             \x20       xml.dom.minidom.parse(p)\n\
             \x20   except Exception as e:\n\
             \x20       print(p, e)",
        ])
        .args(&xml)
        .output()
        .expect("python3 (make test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "not well-formed XML: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// SIP PnP: a Snom device is told its settings file (the first of its model's names, in
/// the model's MAC case); Yealink and the others the directory; devices of a tenant,
/// disabled ones, one without an account and one whose files cannot be made get no answer
/// (they would be sent to fetch what is not there). A user's own model counts by its brand.
#[test]
fn pnp_paths_follow_the_brand() {
    let cat = catalogue::catalogue();
    let mut own = cat.models[0].clone();
    own.name = "My-Snom".into();
    own.brand = "snom".into();
    own.rules = vec![kpbxd::model::prov::FileRule::parse("s-{aabbccddeeff}.xml").unwrap()];
    let mut own_template = cat
        .templates
        .iter()
        .find(|t| t.name == "snom-d785")
        .unwrap()
        .clone();
    own_template.name = "my-snom".into();
    own_template.model = "My-Snom".into();
    let mut tenant = device("000413000003", "Snom-D785", "snom-d785", true);
    tenant.tenant = Some("0b3c6a2e-0000-4000-8000-000000000001".into());
    let mut disabled = device("000413000004", "Snom-D785", "snom-d785", true);
    disabled.enabled = false;
    let mut no_account = device("000413000005", "Snom-D785", "snom-d785", true);
    no_account.account = None;
    let broken = device("000413000006", "Snom-D785", "no-such-template", true);
    let account = |tenant: Option<String>| Account {
        tenant,
        extension: "201".into(),
        sip_user: "201".into(),
        sip_password: "pw".into(),
        display_name: "Ann".into(),
        first_name: "Ann".into(),
        last_name: String::new(),
        email: String::new(),
    };
    let snapshot = Snapshot {
        pbx: pbx(),
        // The tenant's device gets files too: only the tenant rule keeps it out.
        accounts: vec![account(None), account(tenant.tenant.clone())],
        models: vec![own],
        templates: vec![own_template],
        devices: vec![
            device("000413aabbcc", "Snom-D785", "snom-d785", true),
            device("001565aabbcc", "Yealink-T4x", "yealink-t4x", true),
            device("000413000002", "My-Snom", "my-snom", true),
            tenant,
            disabled,
            no_account,
            broken,
        ],
        ..Snapshot::default()
    };
    let output = provision::generate(&snapshot);
    let mac = |m: &str| Mac::parse(m).unwrap();
    assert_eq!(
        output.problems.iter().map(|p| p.device).collect::<Vec<_>>(),
        [Some(mac("000413000006"))],
        "{:?}",
        output.problems
    );
    assert!(
        output
            .files
            .iter()
            .any(|f| f.device == Some(mac("000413000003")))
    );
    let paths = provision::pnp_paths(&snapshot, &output.files);
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert_eq!(paths[&mac("000413aabbcc")], "000413AABBCC.xml");
    assert_eq!(paths[&mac("001565aabbcc")], "");
    assert_eq!(paths[&mac("000413000002")], "s-000413000002.xml");
    // Each Snom answer names a file that was made.
    for (m, name) in paths.iter().filter(|(_, n)| !n.is_empty()) {
        assert!(
            output
                .files
                .iter()
                .any(|f| f.device == Some(*m) && &f.name == name),
            "{m}: {name}"
        );
    }
}
