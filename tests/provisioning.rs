//! Provisioning objects and generated files through the real daemon and
//! `kpbx`: every rule, regeneration on each kind of change, tenant
//! separation, bulk import, and refusals that leave nothing half-written.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use common::Daemon;

fn refused(d: &Daemon, args: &[&str], needle: &str) {
    let out = d.kpbx(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should be refused; stderr {err}"
    );
    assert!(err.contains(needle), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

fn file(d: &Daemon, path: &str) -> String {
    d.ok(&["prov", "show", path])
}

fn on_disk(d: &Daemon, path: &str) -> Option<String> {
    std::fs::read_to_string(d.data_dir().join("provisioning").join(path)).ok()
}

fn entries(d: &Daemon) -> u64 {
    d.json(&["status"])["audit_entries"].as_u64().unwrap()
}

/// A daemon with one account and one Yealink device.
fn started(dir: &std::path::Path) -> Daemon {
    let mut d = Daemon::new(dir);
    d.start();
    d.ok(&["system", "set", "pbx_address=192.0.2.1"]);
    d.ok(&[
        "prov",
        "account",
        "add",
        "extension=201",
        "sip_password=pw201",
        "display_name=Anna",
    ]);
    d.ok(&[
        "prov",
        "device",
        "add",
        "mac=00:15:65:aa:bb:01",
        "model=Yealink-T4x",
        "template=yealink-t4x",
        "account=201",
    ]);
    d
}

#[test]
fn macs_are_normalised_unique_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = started(dir.path());
    let dev = d.json(&["prov", "device", "show", "00-15-65-AA-BB-01"]);
    assert_eq!(dev[0]["id"], "001565AABB01");
    for form in ["001565aabb01", "00:15:65:AA:BB:01", "00-15-65-aa-bb-01"] {
        refused(
            &d,
            &[
                "prov",
                "device",
                "add",
                &format!("mac={form}"),
                "model=Yealink-T4x",
                "template=yealink-t4x",
            ],
            "device 001565AABB01 already exists",
        );
    }
    for (bad, why) in [
        ("mac=0015.65aa.bb01", "is not a MAC address"),
        ("mac=00156", "expected 12 hex digits"),
        ("mac=00:15:65:aa:bb:zz", "not hex"),
        ("mac=ff:ff:ff:ff:ff:ff", "broadcast"),
    ] {
        refused(
            &d,
            &[
                "prov",
                "device",
                "add",
                bad,
                "model=Yealink-T4x",
                "template=yealink-t4x",
            ],
            why,
        );
    }
    assert_eq!(entries(&d), 3, "refusals wrote nothing");
}

#[test]
fn files_follow_the_model_rules_and_macs_match_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let d = started(dir.path());
    assert!(file(&d, "001565aabb01.cfg").contains("account.1.password = pw201"));
    assert!(
        file(&d, "001565AABB01.cfg").contains("pw201"),
        "MAC part matches in any case"
    );
    assert!(on_disk(&d, "001565aabb01.cfg").unwrap().contains("pw201"));
    assert!(
        on_disk(&d, "y000000000066.cfg").is_some(),
        "model-wide file"
    );

    // A custom brand and model with two rules.
    d.ok(&["prov", "brand", "add", "name=Acme"]);
    d.ok(&[
        "prov",
        "model",
        "add",
        "name=Acme-1",
        "brand=Acme",
        "format=xml",
        "files=acme-{AA-BB-CC-DD-EE-FF}.xml cfg{aa:bb:cc:dd:ee:ff}",
    ]);
    d.ok(&[
        "prov",
        "template",
        "add",
        "name=acme",
        "model=Acme-1",
        "content=<u>%%SIPUSER%%</u>",
    ]);
    d.ok(&[
        "prov",
        "device",
        "add",
        "mac=0004a3000001",
        "model=Acme-1",
        "template=acme",
        "account=201",
    ]);
    assert_eq!(file(&d, "acme-00-04-A3-00-00-01.xml"), "<u>201</u>");
    assert_eq!(file(&d, "cfg00:04:a3:00:00:01"), "<u>201</u>");
    // Changing the rules renames the files.
    d.ok(&[
        "prov",
        "model",
        "set",
        "Acme-1",
        "files={aabbccddeeff}.acme",
    ]);
    assert_eq!(file(&d, "0004a3000001.acme"), "<u>201</u>");
    assert!(
        on_disk(&d, "acme-00-04-A3-00-00-01.xml").is_none(),
        "old file removed"
    );
    refused(
        &d,
        &["prov", "model", "set", "Acme-1", "files={AABB}.x"],
        "is not one of",
    );
    refused(
        &d,
        &["prov", "model", "set", "Yealink-T4x", "format=xml"],
        "built in and read-only",
    );
    refused(
        &d,
        &["prov", "brand", "del", "Acme"],
        "is used by model Acme-1",
    );
}

#[test]
fn values_are_escaped_by_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = started(dir.path());
    d.ok(&[
        "prov",
        "account",
        "set",
        "201",
        "display_name=A&B <\"x\">",
        "sip_password=%%SIPUSER%%",
    ]);
    let plain = file(&d, "001565aabb01.cfg");
    assert!(
        plain.contains("account.1.display_name = A&B <\"x\">"),
        "{plain}"
    );
    assert!(
        plain.contains("account.1.password = %%SIPUSER%%"),
        "never expanded again: {plain}"
    );
    d.ok(&[
        "prov",
        "device",
        "add",
        "mac=000413000001",
        "model=Snom-D785",
        "template=snom-d785",
        "account=201",
    ]);
    let xml = file(&d, "000413000001.xml");
    assert!(
        xml.contains(
            "<user_realname idx=\"1\" perm=\"R\">A&amp;B &lt;&quot;x&quot;&gt;</user_realname>"
        ),
        "{xml}"
    );
}

#[test]
fn templates_are_checked_when_saved() {
    let dir = tempfile::tempdir().unwrap();
    let d = started(dir.path());
    let before = entries(&d);
    refused(
        &d,
        &[
            "prov",
            "template",
            "add",
            "name=t1",
            "model=Yealink-T4x",
            "content=a=%%SIPUSER%%\nb=%%NOSUCH%%\n",
        ],
        "unknown placeholder %%NOSUCH%% at line 2, column 3",
    );
    refused(
        &d,
        &[
            "prov",
            "template",
            "add",
            "name=t1",
            "model=Yealink-T4x",
            "content=x\n{% if SIPUSER %}\n",
        ],
        "template syntax error at line",
    );
    refused(
        &d,
        &[
            "prov",
            "template",
            "add",
            "name=t1",
            "model=NoModel",
            "content=x",
        ],
        "model NoModel does not exist",
    );
    refused(
        &d,
        &["prov", "template", "set", "yealink-t4x", "content=x"],
        "built in and read-only; copy it",
    );
    refused(
        &d,
        &[
            "prov",
            "device",
            "set",
            "001565aabb01",
            "template=snom-d785",
        ],
        "is for model Snom-D785",
    );
    assert_eq!(entries(&d), before, "nothing written");

    d.ok(&["prov", "template", "copy", "yealink-t4x", "mine"]);
    let copy = d.json(&["prov", "template", "show", "mine"]);
    assert_eq!(copy[0]["builtin"], false);
    assert_eq!(copy[0]["model"], "Yealink-T4x");
}

#[test]
fn custom_placeholders_static_in_use_and_no_loops() {
    let dir = tempfile::tempdir().unwrap();
    let d = started(dir.path());
    d.ok(&["prov", "placeholder", "add", "name=SITE", "value=HQ"]);
    d.ok(&[
        "prov",
        "template",
        "add",
        "name=site",
        "model=Yealink-T4x",
        "content=site=%%_SITE%%\n",
    ]);
    d.ok(&["prov", "device", "set", "001565aabb01", "template=site"]);
    assert_eq!(file(&d, "001565aabb01.cfg"), "site=HQ\n");
    refused(
        &d,
        &["prov", "placeholder", "del", "SITE"],
        "placeholder %%_SITE%% is used by template site",
    );
    refused(
        &d,
        &["prov", "placeholder", "add", "name=LOOP", "value=%%_SITE%%"],
        "never expanded",
    );
    refused(
        &d,
        &["prov", "placeholder", "add", "name=bad-name", "value=x"],
        "upper-case letters",
    );
    d.ok(&["prov", "placeholder", "set", "SITE", "value=Branch"]);
    assert_eq!(
        file(&d, "001565aabb01.cfg"),
        "site=Branch\n",
        "regenerated on placeholder change"
    );
}

#[test]
fn every_kind_of_change_regenerates() {
    let dir = tempfile::tempdir().unwrap();
    let d = started(dir.path());
    d.ok(&[
        "prov",
        "template",
        "add",
        "name=t",
        "model=Yealink-T4x",
        "content=%%DISPLAYNAME%% %%IPADDR%% %%NTPSERVER%% %%PBXADDRESS%%\n",
    ]);
    d.ok(&["prov", "device", "set", "001565aabb01", "template=t"]);
    let f = || file(&d, "001565aabb01.cfg");
    assert_eq!(f(), "Anna  pool.ntp.org 192.0.2.1\n");
    d.ok(&["prov", "account", "set", "201", "display_name=Bea"]);
    assert_eq!(f(), "Bea  pool.ntp.org 192.0.2.1\n", "account change");
    d.ok(&[
        "prov",
        "device",
        "set",
        "001565aabb01",
        "dhcp=no",
        "ip=192.0.2.77",
        "netmask=255.255.255.0",
    ]);
    assert_eq!(
        f(),
        "Bea 192.0.2.77 pool.ntp.org 192.0.2.1\n",
        "device change"
    );
    d.ok(&[
        "system",
        "set",
        "ntp_server=192.0.2.123",
        "pbx_address=192.0.2.2",
    ]);
    assert_eq!(
        f(),
        "Bea 192.0.2.77 192.0.2.123 192.0.2.2\n",
        "setting change"
    );
    d.ok(&[
        "prov",
        "template",
        "set",
        "t",
        "content=v2 %%DISPLAYNAME%%\n",
    ]);
    assert_eq!(f(), "v2 Bea\n", "template change");
    assert_eq!(on_disk(&d, "001565aabb01.cfg").unwrap(), "v2 Bea\n");
    d.ok(&["prov", "device", "set", "001565aabb01", "enabled=no"]);
    assert!(
        d.kpbx(&["prov", "show", "001565aabb01.cfg"]).status.code() == Some(1),
        "disabled: no file"
    );
    assert!(on_disk(&d, "001565aabb01.cfg").is_none());
    d.ok(&[
        "prov",
        "device",
        "set",
        "001565aabb01",
        "enabled=yes",
        "account=",
    ]);
    let files = d.json(&["prov", "files"]);
    assert!(
        files["files"].as_array().unwrap().is_empty(),
        "no account: no file"
    );
    let dev = d.json(&["prov", "device", "show", "001565aabb01"]);
    assert_eq!(dev[0]["active"], "no", "shown as disabled");
}

#[test]
fn render_previews_without_saving() {
    let dir = tempfile::tempdir().unwrap();
    let d = started(dir.path());
    let before = (entries(&d), on_disk(&d, "001565aabb01.cfg"));
    let preview = d.ok(&["prov", "render", "00:15:65:aa:bb:01"]);
    assert!(preview.contains("account.1.user_name = 201"), "{preview}");
    assert_eq!((entries(&d), on_disk(&d, "001565aabb01.cfg")), before);
    refused(&d, &["prov", "render", "001565aabb99"], "does not exist");
}

#[test]
fn bulk_import_is_all_or_nothing_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let d = started(dir.path());
    let before = entries(&d);
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "extension,sip_password,display_name\n301,a,\"Rossi, Mario\"\n302,,Nobody\n303,c,\"multi\nline\"\n304,d\n301,e,Dup\n",
    )
    .unwrap();
    let out = d.kpbx(&["prov", "account", "import", bad.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("import refused, nothing saved"), "{err}");
    assert!(err.contains("line 3: sip_password is required"), "{err}");
    assert!(
        err.contains("line 4: display_name must be one line"),
        "{err}"
    );
    assert!(err.contains("line 6: 2 fields, the header has 3"), "{err}");
    assert!(err.contains("line 7: 301 is also on line 2"), "{err}");
    assert_eq!(entries(&d), before, "nothing written");

    let good = dir.path().join("good.csv");
    let mut csv = String::from("extension,sip_password,display_name\n");
    for i in 0..50 {
        csv.push_str(&format!("{},pw{i},\"User {i}\"\n", 400 + i));
    }
    std::fs::write(&good, csv).unwrap();
    let r = d.json(&["prov", "account", "import", good.to_str().unwrap()]);
    assert_eq!(
        r["changes"].as_array().unwrap().len(),
        50,
        "one transaction"
    );

    let devs = dir.path().join("devices.csv");
    std::fs::write(
        &devs,
        "mac,model,template,account\n00:15:65:00:00:01,Yealink-T4x,yealink-t4x,400\n00-15-65-00-00-02,Yealink-T4x,yealink-t4x,999\n",
    )
    .unwrap();
    let out = d.kpbx(&["prov", "device", "import", devs.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("line 3: device 001565000002: account 999 does not exist"),
        "{err}"
    );
    assert!(
        d.kpbx(&["prov", "device", "show", "001565000001"])
            .status
            .code()
            == Some(1),
        "all or nothing"
    );
}

#[test]
fn tenants_are_separated() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    let (a, b) = (
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    );
    refused(
        &d,
        &["prov", "tenant", "add", &format!("uuid={a}"), "name=A"],
        "multitenant mode is off",
    );
    d.ok(&["system", "set", "multitenant=on"]);
    d.ok(&["prov", "tenant", "add", &format!("uuid={a}"), "name=Alpha"]);
    d.ok(&["prov", "tenant", "add", &format!("uuid={b}"), "name=Beta"]);
    refused(
        &d,
        &["prov", "account", "add", "extension=201", "sip_password=x"],
        "needs a tenant",
    );
    for (t, pw) in [(a, "pwA"), (b, "pwB")] {
        d.ok(&[
            "prov",
            "account",
            "add",
            &format!("tenant={t}"),
            "extension=201",
            &format!("sip_password={pw}"),
        ]);
    }
    d.ok(&[
        "prov",
        "template",
        "add",
        &format!("tenant={a}"),
        "name=own",
        "model=Fanvil-X",
        "content=A %%SIPPASSWORD%% %%PROVURL%%\n",
    ]);
    d.ok(&[
        "prov",
        "device",
        "add",
        &format!("tenant={a}"),
        "mac=0c383e000001",
        "model=Fanvil-X",
        "template=own",
        "account=201",
    ]);
    refused(
        &d,
        &[
            "prov",
            "device",
            "add",
            &format!("tenant={b}"),
            "mac=0c383e000002",
            "model=Fanvil-X",
            "template=own",
            "account=201",
        ],
        "template own does not exist",
    );
    d.ok(&[
        "prov",
        "device",
        "add",
        &format!("tenant={b}"),
        "mac=0c383e000002",
        "model=Fanvil-X",
        "template=fanvil-x",
        "account=201",
    ]);
    let fa = file(&d, &format!("{a}/0c383e000001.cfg"));
    assert!(
        fa.starts_with("A pwA http://") && fa.contains(&format!("/provisioning/{a}/")),
        "{fa}"
    );
    let fb = file(&d, &format!("{b}/0c383e000002.cfg"));
    assert!(fb.contains("pwB") && !fb.contains("pwA"), "{fb}");
    assert!(
        d.kpbx(&["prov", "show", "0c383e000001.cfg"]).status.code() == Some(1),
        "no file outside its tenant"
    );
    assert!(on_disk(&d, &format!("{b}/0c383e000002.cfg")).is_some());
    refused(&d, &["prov", "tenant", "del", a], "is used by");
    refused(
        &d,
        &["system", "set", "multitenant=off"],
        "cannot turn multitenant off",
    );
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn pbx_address_is_the_ha_resource_when_ha_is_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = started(dir.path());
    d.ok(&["system", "set", "pbx_address=auto"]);
    d.ok(&[
        "prov",
        "template",
        "add",
        "name=t",
        "model=Yealink-T4x",
        "content=%%PBXADDRESS%%\n",
    ]);
    d.ok(&["prov", "device", "set", "001565aabb01", "template=t"]);
    let before = file(&d, "001565aabb01.cfg");
    assert_ne!(before, "198.51.100.10\n");
    // The interfaces need not exist for the configuration to be stored.
    d.ok(&[
        "ha",
        "configure",
        "role=enabled",
        "interface=kpbxnope0",
        "local_ip=198.51.100.2",
        "remote_ip=198.51.100.1",
        "sync_interface=kpbxnope1",
        "sync_local_ip=192.0.2.2",
        "sync_remote_ip=192.0.2.1",
        "resources=198.51.100.10/24@kpbxnope0",
    ]);
    assert_eq!(file(&d, "001565aabb01.cfg"), "198.51.100.10\n");
    d.ok(&["ha", "configure", "role=disabled"]);
    assert_eq!(
        file(&d, "001565aabb01.cfg"),
        before,
        "back to the interface address"
    );
}
