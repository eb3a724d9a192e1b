//! Every built-in model's boot sequence, fetched by a real client (curl)
//! from a running daemon over HTTP, HTTPS and TFTP: each file name a phone
//! of that model asks for, in order, is served (no 404) and is the file the
//! daemon generated for it. Also `kpbx prov urls`, and the warnings of
//! `kpbx prov files` for a zone some vendors cannot express.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use std::process::Command;

use common::Daemon;
use kpbxd::provision::catalogue;

fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "this test needs `{tool}`: apt-get install {package} (make test does it as root)"
    );
}

#[test]
fn every_models_boot_sequence_is_served_over_http_https_and_tftp() {
    require("curl", "curl");
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::with(
        dir.path(),
        &[
            ("http_listen", "127.0.0.1:0"),
            ("https_listen", "127.0.0.1:0"),
            ("tftp_listen", "127.0.0.1:0"),
        ],
    );
    d.start();
    d.ok(&[
        "prov",
        "account",
        "add",
        "extension=301",
        "sip_password=boot-pw",
    ]);
    let cat = catalogue::catalogue();
    let mut sequences = Vec::new();
    for (i, m) in cat.models.iter().enumerate() {
        let info = catalogue::info(&m.name).unwrap();
        let mac = kpbxd::model::Mac::parse(&format!("0c383e1000{i:02x}")).unwrap();
        d.ok(&[
            "prov",
            "device",
            "add",
            &format!("mac={mac}"),
            &format!("model={}", m.name),
            &format!("template={}", info.template),
            "account=301",
        ]);
        sequences.push((m.name.clone(), info.boot_files(m, mac)));
    }
    let http = d.listen("http");
    let https = d.listen("https");
    let tftp = d.listen("tftp");
    let generated = dir.path().join("data/provisioning");
    let out = dir.path().join("fetched");
    std::fs::create_dir_all(&out).unwrap();
    let mut fetched = 0;
    for (model, files) in &sequences {
        assert!(!files.is_empty(), "{model}");
        for (scheme, base, extra) in [
            ("http", format!("http://{http}/provisioning/"), vec![]),
            (
                "https",
                format!("https://{https}/provisioning/"),
                vec!["-k"],
            ),
            ("tftp", format!("tftp://{tftp}/"), vec![]),
        ] {
            // One curl per model and protocol, the files in boot order.
            let mut cmd = Command::new("curl");
            cmd.args(["-sS", "--fail", "--max-time", "20"]).args(&extra);
            for (n, f) in files.iter().enumerate() {
                cmd.arg("-o")
                    .arg(out.join(format!("{scheme}-{n}")))
                    .arg(format!("{base}{f}"));
            }
            let r = cmd.output().unwrap();
            assert!(
                r.status.success(),
                "{model} over {scheme}: {}",
                String::from_utf8_lossy(&r.stderr)
            );
            for (n, f) in files.iter().enumerate() {
                let want = std::fs::read(generated.join(f))
                    .unwrap_or_else(|_| panic!("{model}: {f} was not generated"));
                let got = std::fs::read(out.join(format!("{scheme}-{n}")))
                    .unwrap_or_else(|_| panic!("{model}: {f} not fetched over {scheme}"));
                assert_eq!(got, want, "{model}: {f} over {scheme}");
                fetched += 1;
            }
        }
    }
    // Yealink: boot file, the common file, every hardware file, the MAC file.
    let (_, t4x) = sequences.iter().find(|(m, _)| m == "Yealink-T4x").unwrap();
    assert!(t4x[0].ends_with(".boot"));
    assert_eq!(t4x[1], "y000000000000.cfg");
    assert!(t4x.contains(&"y000000000108.cfg".to_string()));
    assert!(t4x.contains(&"y000000000066.cfg".to_string()));
    assert!(t4x.last().unwrap().ends_with(".cfg"));
    let (_, snom) = sequences.iter().find(|(m, _)| m == "Snom-D785").unwrap();
    assert_eq!(snom[0], "snomD785.htm");
    let (_, poly) = sequences.iter().find(|(m, _)| m == "Poly-VVX").unwrap();
    assert!(poly.contains(&"000000000000.cfg".to_string()));
    assert!(fetched > 3 * cat.models.len());
    // Nothing of this counted as scanning.
    let unknown = d.ok(&["prov", "unknown"]);
    assert!(!unknown.contains("127.0.0.1"), "{unknown}");
}

/// `kpbx prov urls` names what to configure per vendor in use; `kpbx prov
/// files` warns on the devices whose vendor cannot express the zone.
#[test]
fn urls_and_time_zone_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::with(
        dir.path(),
        &[
            ("http_listen", "127.0.0.1:0"),
            ("tftp_listen", "127.0.0.1:0"),
        ],
    );
    d.start();
    d.ok(&[
        "system",
        "set",
        "timezone=Australia/Lord_Howe",
        "pbx_address=127.0.0.1",
    ]);
    d.ok(&["prov", "account", "add", "extension=301", "sip_password=x"]);
    for (mac, model, template) in [
        ("7c2f80000001", "Gigaset-IP-PRO", "gigaset-ip-pro"),
        ("0004f2000001", "Poly-VVX", "poly-vvx"),
        ("001565000001", "Yealink-T4x", "yealink-t4x"),
    ] {
        d.ok(&[
            "prov",
            "device",
            "add",
            &format!("mac={mac}"),
            &format!("model={model}"),
            &format!("template={template}"),
            "account=301",
        ]);
    }
    let files = d.json(&["prov", "files"]);
    let warnings: Vec<String> = files["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("device 7C2F80000001: time zone Australia/Lord_Howe"))
    );
    assert!(warnings.iter().any(|w| {
        w.starts_with("device 0004F2000001: time zone Australia/Lord_Howe")
            && w.contains("30 minutes")
    }));
    let table = d.ok(&["prov", "files"]);
    assert!(table.contains("warnings:"), "{table}");
    // The Yealink file has the 30-minute rule; the Poly file no time zone.
    let yealink = d.ok(&["prov", "show", "001565000001.cfg"]);
    assert!(yealink.contains("local_time.offset_time = 30"), "{yealink}");
    assert!(
        yealink.contains("local_time.time_zone = +10:30"),
        "{yealink}"
    );
    let poly = d.ok(&["prov", "show", "0004f2000001-kpbx.cfg"]);
    assert!(!poly.contains("gmtOffset"), "{poly}");

    let http = d.listen("http");
    let urls = d.json(&["prov", "urls"]);
    let rows = urls.as_array().unwrap();
    let value = |brand: &str, setting: &str| {
        rows.iter()
            .find(|r| r["brand"] == brand && r["setting"] == setting)
            .map(|r| r["value"].as_str().unwrap().to_string())
    };
    let base = format!("http://127.0.0.1:{}/provisioning/", http.port());
    assert_eq!(value("Yealink", "DHCP option 66"), Some(base.clone()));
    assert_eq!(value("Gigaset", "DHCP option 114"), Some(base.clone()));
    assert_eq!(value("Poly", "DHCP option 160"), Some(base.clone()));
    assert!(value("Poly", "TFTP").unwrap().starts_with("tftp://"));
    assert_eq!(value("Snom", "DHCP option 66"), None, "no Snom device");
    let text = d.ok(&["prov", "urls"]);
    assert!(text.contains("DHCP option 114"), "{text}");
}
