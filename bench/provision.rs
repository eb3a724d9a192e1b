//! `make bench`, provisioning part: the time to regenerate every file for
//! 10,000 devices, and to re-render after changing one template used by
//! 5,000 of them, both measured end to end through the daemon (commit,
//! render, write the changed files) and for the pure renderer alone.

#[path = "support.rs"]
mod support;

use std::time::Instant;

use kpbxd::control::Command;
use kpbxd::model::{Account, Device, Mac, Template};
use kpbxd::provision::{self, PbxValues, Snapshot};
use support::{Daemon, bench_dir, median};

const DEVICES: usize = 10_000;

fn template(name: &str, marker: &str) -> String {
    format!(
        "#!version:1.0.0.1\n# {marker}\naccount.1.user_name = %%SIPUSER%%\naccount.1.password = %%SIPPASSWORD%%\n\
         account.1.display_name = %%DISPLAYNAME%%\naccount.1.sip_server.1.address = %%PBXADDRESS%%\n\
         local_time.ntp_server1 = %%NTPSERVER%%\n{{% if IPADDRMODE == \"off\" %}}ip = %%IPADDR%%\n{{% endif %}}# {name}\n"
    )
}

fn mac(i: usize) -> String {
    format!("001565{:06x}", i)
}

fn pure_snapshot() -> Snapshot {
    let mut s = Snapshot {
        pbx: PbxValues {
            pbx_address: "192.0.2.1".into(),
            sip_port: "5060".into(),
            ntp_server: "192.0.2.2".into(),
            prov_base: "http://192.0.2.1/provisioning/".into(),
            ..PbxValues::default()
        },
        ..Snapshot::default()
    };
    for name in ["a", "b"] {
        s.templates.push(Template {
            tenant: None,
            name: name.into(),
            model: "Yealink-T4x".into(),
            content: template(name, "v1"),
        });
    }
    for i in 0..DEVICES {
        s.accounts.push(Account {
            tenant: None,
            extension: (10_000 + i).to_string(),
            sip_user: (10_000 + i).to_string(),
            sip_password: format!("pw{i}"),
            display_name: format!("User {i}"),
            first_name: String::new(),
            last_name: String::new(),
            email: String::new(),
        });
        s.devices.push(Device {
            mac: Mac::parse(&mac(i)).expect("mac"),
            tenant: None,
            enabled: true,
            model: "Yealink-T4x".into(),
            template: if i % 2 == 0 { "a" } else { "b" }.into(),
            account: Some((10_000 + i).to_string()),
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
        });
    }
    s
}

fn main() {
    println!("== provisioning: {DEVICES} devices (two templates, 5,000 devices each)");
    let snapshot = pure_snapshot();
    let pure = median(
        (0..3)
            .map(|_| {
                let t = Instant::now();
                let out = provision::generate(&snapshot);
                assert_eq!(out.files.len(), DEVICES + 5, "{:?}", out.problems.first());
                t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    println!(
        "{:<58} {:>8.0} ms",
        "render every file, pure core (median of 3)",
        pure * 1000.0
    );

    let dir = tempfile::tempdir_in(bench_dir()).expect("temp dir");
    let mut d = Daemon::start(dir.path());
    let mut accounts = String::from("extension,sip_password,display_name\n");
    let mut devices = String::from("mac,model,template,account\n");
    for i in 0..DEVICES {
        accounts.push_str(&format!("{},pw{i},User {i}\n", 10_000 + i));
        devices.push_str(&format!(
            "{},Yealink-T4x,{},{}\n",
            mac(i),
            if i % 2 == 0 { "a" } else { "b" },
            10_000 + i
        ));
    }
    d.commit(Command::ProvImport {
        kind: "account".into(),
        csv: accounts,
    });
    for name in ["a", "b"] {
        d.commit(Command::ProvAdd {
            kind: "template".into(),
            fields: vec![
                ("name".into(), name.into()),
                ("model".into(), "Yealink-T4x".into()),
                ("content".into(), template(name, "v1")),
            ],
        });
    }
    let import = d.commit(Command::ProvImport {
        kind: "device".into(),
        csv: devices,
    });
    println!(
        "{:<58} {:>8.0} ms",
        "import 10,000 devices: commit + generate + write all files",
        import.as_secs_f64() * 1000.0
    );
    let written = std::fs::read_dir(d.data_dir.join("provisioning"))
        .expect("files")
        .count();
    assert_eq!(written, DEVICES + 5);
    let change = median(
        (0..3)
            .map(|round| {
                d.commit(Command::ProvSet {
                    kind: "template".into(),
                    id: "a".into(),
                    fields: vec![("content".into(), template("a", &format!("v{}", round + 2)))],
                })
                .as_secs_f64()
            })
            .collect(),
    );
    println!(
        "{:<58} {:>8.0} ms",
        "change a template used by 5,000: commit + re-render + write",
        change * 1000.0
    );
    println!(
        "{:<58} {:>8} KiB",
        "daemon RSS with 10,000 devices' files in memory",
        d.rss_kib()
    );
}
