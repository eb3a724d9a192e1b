//! A dynamic placeholder follows its interface's address: the daemon runs in
//! a network namespace made by the test, and the test changes the address
//! of a veth interface there (198.51.100.0/24 only). Needs root.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, Netns, require_root_and_ip};

#[test]
fn interface_placeholder_follows_address_changes() {
    require_root_and_ip();
    let ns = Netns::new("prov");
    ns.ip(&[
        "link", "add", "lan0", "type", "veth", "peer", "name", "lan1",
    ]);
    ns.ip(&["addr", "add", "198.51.100.7/24", "dev", "lan0"]);
    ns.ip(&["link", "set", "lan0", "up"]);

    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.netns = Some(ns.name.clone());
    d.start();
    d.ok(&["prov", "placeholder", "add", "name=LAN", "interface=lan0"]);
    d.ok(&[
        "prov",
        "placeholder",
        "add",
        "name=NONE",
        "interface=nosuch0",
    ]);
    d.ok(&["prov", "account", "add", "extension=201", "sip_password=x"]);
    d.ok(&[
        "prov",
        "template",
        "add",
        "name=t",
        "model=Fanvil-X",
        "content=server=%%_LAN%%\n",
    ]);
    d.ok(&[
        "prov",
        "template",
        "add",
        "name=t2",
        "model=Fanvil-X",
        "content=%%_NONE%%\n",
    ]);
    d.ok(&[
        "prov",
        "device",
        "add",
        "mac=0c383e000001",
        "model=Fanvil-X",
        "template=t",
        "account=201",
    ]);
    d.ok(&[
        "prov",
        "device",
        "add",
        "mac=0c383e000002",
        "model=Fanvil-X",
        "template=t2",
        "account=201",
    ]);
    assert_eq!(
        d.ok(&["prov", "show", "0c383e000001.cfg"]),
        "server=198.51.100.7\n"
    );
    let files = d.json(&["prov", "files"]);
    let problems = files["problems"].to_string();
    assert!(
        problems.contains("interface nosuch0 has no IPv4 address"),
        "{problems}"
    );

    ns.ip(&["addr", "del", "198.51.100.7/24", "dev", "lan0"]);
    ns.ip(&["addr", "add", "198.51.100.9/24", "dev", "lan0"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let content = d.ok(&["prov", "show", "0c383e000001.cfg"]);
        if content == "server=198.51.100.9\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "file not regenerated after the address change: {content:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let on_disk =
        std::fs::read_to_string(d.data_dir().join("provisioning/0c383e000001.cfg")).unwrap();
    assert_eq!(on_disk, "server=198.51.100.9\n");
    assert_eq!(d.stop(), Some(0));
}
