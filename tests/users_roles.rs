//! Users, roles and permissions through the real console: `kpbx` run as
//! other Unix users (with `setpriv`, util-linux) against a real daemon whose
//! socket the test opens to them. Needs root.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use common::{Daemon, kpbx_as, open_socket};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "tests/users_roles.rs runs kpbx as other Unix users: run it as root"
    );
    assert!(
        std::path::Path::new("/usr/bin/setpriv").exists(),
        "setpriv is missing: apt-get install util-linux"
    );
}

fn ok_as(d: &Daemon, user: &str, args: &[&str]) -> String {
    let out = kpbx_as(d, user, args, "");
    assert!(
        out.status.success(),
        "{user}: kpbx {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn denied_as(d: &Daemon, user: &str, args: &[&str]) -> String {
    let out = kpbx_as(d, user, args, "");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{user}: kpbx {args:?} should be denied"
    );
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn each_role_is_enforced_on_the_console() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    open_socket(&d);

    // A Unix user who is not a kpbx user gets nothing.
    let e = denied_as(&d, "nobody", &["status"]);
    assert!(e.contains("Unix user \"nobody\" is not a kpbx user"), "{e}");

    // Root is admin by default; it creates users and roles.
    d.ok(&[
        "user",
        "add",
        "nobody",
        "role=supervisor",
        "email=n@example.org",
    ]);
    let users = d.json(&["user", "list"]);
    assert_eq!(users[0]["id"], "nobody");
    assert_eq!(users[0]["role"], "supervisor");

    // supervisor: status and CDR, nothing else.
    ok_as(&d, "nobody", &["status"]);
    let e = denied_as(&d, "nobody", &["audit", "list"]);
    assert!(e.contains("lacks audit:read"), "{e}");
    let e = denied_as(&d, "nobody", &["system", "set", "hostname=x"]);
    assert!(e.contains("lacks system:write"), "{e}");
    let e = denied_as(&d, "nobody", &["prov", "device", "list"]);
    assert!(e.contains("lacks provisioning:read"), "{e}");
    let e = denied_as(&d, "nobody", &["ha", "status"]);
    assert!(e.contains("lacks ha:read"), "{e}");
    let e = denied_as(&d, "nobody", &["user", "add", "eve", "role=admin"]);
    assert!(e.contains("lacks users:write"), "{e}");
    let e = denied_as(&d, "nobody", &["user", "set", "nobody", "role=admin"]);
    assert!(e.contains("lacks users:write"), "no self-promotion: {e}");

    // A custom role: read the audit log, write provisioning.
    d.ok(&[
        "role",
        "add",
        "auditor",
        "permissions=audit:read,provisioning:write",
    ]);
    let roles = d.json(&["role", "list"]);
    let names: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "pbx_admin", "supervisor", "auditor"]);
    d.ok(&["user", "set", "nobody", "role=auditor"]);
    ok_as(&d, "nobody", &["audit", "list"]);
    ok_as(&d, "nobody", &["audit", "verify"]);
    let e = denied_as(&d, "nobody", &["audit", "restore", "1"]);
    assert!(e.contains("lacks audit:write"), "{e}");
    let e = denied_as(&d, "nobody", &["status"]);
    assert!(e.contains("lacks system:read"), "{e}");
    ok_as(
        &d,
        "nobody",
        &[
            "prov",
            "account",
            "add",
            "extension=100",
            "sip_password=pw-100",
        ],
    );
    // The change is audited under the console user's name.
    let log = d.json(&["audit", "list", "--limit", "1"]);
    assert_eq!(log[0]["user"], "nobody");
    assert_eq!(log[0]["object_type"], "account");

    // pbx_admin and admin may do everything.
    d.ok(&["user", "set", "nobody", "role=pbx_admin"]);
    ok_as(&d, "nobody", &["ha", "status"]);
    ok_as(&d, "nobody", &["system", "set", "location=Lab"]);
    d.ok(&["user", "set", "nobody", "role=admin"]);
    ok_as(&d, "nobody", &["user", "add", "daemon", "role=supervisor"]);
    ok_as(&d, "daemon", &["status"]);

    // A role in use cannot be deleted; built-in roles never.
    d.ok(&["user", "set", "nobody", "role=auditor"]);
    let out = d.kpbx(&["role", "del", "auditor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("used by user nobody"));
    let out = d.kpbx(&["role", "del", "admin"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("built in"));
    let out = d.kpbx(&["user", "add", "x", "role=nosuchrole"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("role \"nosuchrole\" does not exist"));

    // A deleted user's name stays in the audit log.
    d.ok(&["user", "del", "nobody"]);
    denied_as(&d, "nobody", &["status"]);
    let mine = d.json(&["audit", "list", "--user", "nobody"]);
    let kinds: Vec<&str> = mine["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["object_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["user", "setting", "account"]);
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn passwords_are_hashed_and_set_from_stdin() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    open_socket(&d);
    d.ok(&["user", "add", "nobody", "role=supervisor"]);
    d.ok(&["user", "add", "daemon", "role=supervisor"]);

    // Anyone may set their own password, read from standard input.
    let out = kpbx_as(
        &d,
        "nobody",
        &["user", "passwd", "nobody"],
        "s3cret-horse\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nobody else's without users:write.
    let out = kpbx_as(
        &d,
        "nobody",
        &["user", "passwd", "daemon"],
        "other-secret\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lacks users:write"));
    // Too short is refused.
    let out = kpbx_as(&d, "nobody", &["user", "passwd", "nobody"], "short\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8"));

    // The password is never shown, and the store holds only a PBKDF2 hash.
    let users = d.ok(&["user", "list", "--json"]);
    assert!(!users.contains("s3cret-horse"));
    let show = d.json(&["audit", "list", "--type", "user", "--action", "update"]);
    let txid = show["entries"][0]["txid"].as_u64().unwrap().to_string();
    let diff = d.json(&["audit", "show", &txid]);
    let pw = diff["objects"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "password")
        .unwrap()
        .clone();
    assert_eq!(pw["secret"], true);
    assert_eq!(pw["changed"], true);
    assert_eq!(pw["after"], "********");
    d.stop();
    let data = std::fs::read(d.data_dir().join("store/data.mdb")).unwrap();
    let text = String::from_utf8_lossy(&data);
    assert!(!text.contains("s3cret-horse"), "password stored in clear");
    assert!(text.contains("pbkdf2-sha256$600000$"));
}

#[test]
fn a_pbx_admin_works_inside_its_tenant_only() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    open_socket(&d);
    let (a, b) = (
        "0f8fad5b-d9cb-469f-a165-70867728950e",
        "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    );
    d.ok(&["system", "set", "multitenant=on"]);
    for (t, mac) in [(a, "0c383e00000a"), (b, "0c383e00000b")] {
        d.ok(&["prov", "tenant", "add", &format!("uuid={t}"), "name=T"]);
        d.ok(&[
            "prov",
            "account",
            "add",
            &format!("tenant={t}"),
            "extension=201",
            "sip_password=pw",
        ]);
        d.ok(&[
            "prov",
            "device",
            "add",
            &format!("tenant={t}"),
            &format!("mac={mac}"),
            "model=Fanvil-X",
            "template=fanvil-x",
            "account=201",
        ]);
    }
    d.ok(&[
        "user",
        "add",
        "nobody",
        "role=pbx_admin",
        &format!("tenant={a}"),
    ]);

    // Inside its tenant: read and change.
    ok_as(&d, "nobody", &["prov", "device", "show", "0c383e00000a"]);
    ok_as(
        &d,
        "nobody",
        &["prov", "device", "set", "0c383e00000a", "notes=desk 4"],
    );
    ok_as(
        &d,
        "nobody",
        &[
            "prov",
            "account",
            "add",
            &format!("tenant={a}"),
            "extension=202",
            "sip_password=pw",
        ],
    );
    ok_as(
        &d,
        "nobody",
        &["prov", "show", &format!("{a}/0c383e00000a.cfg")],
    );
    ok_as(&d, "nobody", &["ha", "status"]);
    let devices = ok_as(&d, "nobody", &["prov", "device", "list", "--json"]).to_uppercase();
    assert!(devices.contains("0C383E00000A"), "{devices}");
    assert!(!devices.contains("0C383E00000B"), "{devices}");
    let tenants = ok_as(&d, "nobody", &["prov", "tenant", "list", "--json"]);
    assert!(tenants.contains(a) && !tenants.contains(b), "{tenants}");

    // Outside it: refused, naming the tenant; nothing changes.
    let before = d.ok(&["audit", "verify"]);
    for args in [
        vec!["prov", "device", "show", "0c383e00000b"],
        vec!["prov", "device", "set", "0c383e00000b", "notes=x"],
        vec!["prov", "device", "del", "0c383e00000b"],
        vec![
            "prov",
            "account",
            "add",
            &format!("tenant={b}"),
            "extension=203",
        ][..]
            .to_vec(),
        vec!["prov", "show", &format!("{b}/0c383e00000b.cfg")][..].to_vec(),
        vec!["prov", "brand", "add", "name=Acme"],
        vec!["system", "set", "hostname=x"],
        vec!["audit", "list"],
        vec!["user", "list"],
    ] {
        let e = denied_as(&d, "nobody", &args);
        assert!(e.contains(&format!("outside tenant {a}")), "{args:?}: {e}");
    }
    assert_eq!(d.ok(&["audit", "verify"]), before);
    let shown = d.ok(&["prov", "device", "show", "0c383e00000b", "--json"]);
    assert!(!shown.contains("\"notes\":\"x\""), "{shown}");
    // Without multitenant mode the same role is a box-wide admin.
    d.stop();
}
