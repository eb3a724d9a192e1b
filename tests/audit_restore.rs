//! `kpbx audit list` by period, `audit show` and `audit restore` against a
//! real daemon: create, update, delete, multi-object transactions,
//! conflicts, restoring a restore, and secrets that never appear in clear.

#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod common;

use common::Daemon;

fn txid(v: &serde_json::Value) -> u64 {
    v["txid"].as_u64().unwrap()
}

fn accounts(d: &Daemon) -> Vec<(String, String)> {
    d.json(&["prov", "account", "list"])
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_string(),
                a["display_name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn fails(d: &Daemon, args: &[&str]) -> String {
    let out = d.kpbx(args);
    assert_eq!(out.status.code(), Some(1), "{args:?} should be refused");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn restore_reverses_create_update_delete_and_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();

    // Create: restoring removes what it created.
    let created = txid(&d.json(&[
        "prov",
        "account",
        "add",
        "extension=201",
        "sip_password=first-secret",
        "display_name=Alice",
    ]));
    let r1 = d.json(&["audit", "restore", &created.to_string()]);
    assert_eq!(r1["changes"][0]["action"], "delete");
    assert!(accounts(&d).is_empty());

    // Restoring the restore puts it back, secret included.
    let r2 = d.json(&["audit", "restore", &txid(&r1).to_string()]);
    assert_eq!(r2["changes"][0]["action"], "create");
    assert_eq!(accounts(&d), [("201".to_string(), "Alice".to_string())]);
    // The original create is now followed by two transactions: refused.
    let e = fails(&d, &["audit", "restore", &created.to_string()]);
    assert!(
        e.contains(&format!(
            "changed later by transactions {}, {}",
            txid(&r1),
            txid(&r2)
        )),
        "{e}"
    );

    // Update: restoring reverts the fields, the secret too.
    let updated = txid(&d.json(&[
        "prov",
        "account",
        "set",
        "201",
        "display_name=Bob",
        "sip_password=second-secret",
    ]));
    let show = d.json(&["audit", "show", &updated.to_string()]);
    let fields = show["objects"][0]["fields"].as_array().unwrap();
    let field = |name: &str| fields.iter().find(|f| f["field"] == name).unwrap().clone();
    assert_eq!(field("display_name")["before"], "Alice");
    assert_eq!(field("display_name")["after"], "Bob");
    assert_eq!(field("display_name")["changed"], true);
    assert_eq!(field("sip_password")["secret"], true);
    assert_eq!(field("sip_password")["changed"], true);
    assert_eq!(field("extension")["changed"], false);
    let text = d.ok(&["audit", "show", &updated.to_string()]);
    assert!(text.contains("(secret changed)"), "{text}");
    for secret in ["first-secret", "second-secret"] {
        assert!(!text.contains(secret), "{text}");
        assert!(!show.to_string().contains(secret));
    }
    let restored = d.json(&["audit", "restore", &updated.to_string()]);
    assert_eq!(restored["changes"][0]["action"], "update");
    assert_eq!(accounts(&d), [("201".to_string(), "Alice".to_string())]);
    let diff = d.json(&["audit", "show", &txid(&restored).to_string()]);
    let fields = diff["objects"][0]["fields"].as_array().unwrap();
    let pw = fields
        .iter()
        .find(|f| f["field"] == "sip_password")
        .unwrap();
    assert_eq!(pw["changed"], true, "the secret went back too");

    // Delete: restoring re-creates it.
    let deleted = txid(&d.json(&["prov", "account", "del", "201"]));
    assert!(accounts(&d).is_empty());
    let back = d.json(&["audit", "restore", &deleted.to_string()]);
    assert_eq!(back["changes"][0]["action"], "create");
    assert_eq!(accounts(&d), [("201".to_string(), "Alice".to_string())]);

    // Every restore is audited under the caller's name, and the chain holds.
    let page = d.json(&["audit", "list", "--action", "create", "--type", "account"]);
    assert_eq!(page["entries"].as_array().unwrap().len(), 3);
    assert_eq!(
        d.ok(&["audit", "verify"]),
        format!(
            "audit log intact: {} entries verified\n",
            txid(&back) // one object per transaction here
        )
    );
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn multi_object_transactions_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    d.ok(&["system", "set", "hostname=before", "location=Rack 1"]);
    let both = txid(&d.json(&["system", "set", "hostname=after", "location=Rack 2"]));
    let show = d.json(&["audit", "show", &both.to_string()]);
    assert_eq!(show["objects"].as_array().unwrap().len(), 2);

    // A later change to one of the two objects blocks the restore.
    let later = txid(&d.json(&["system", "set", "location=Rack 3"]));
    let e = fails(&d, &["audit", "restore", &both.to_string()]);
    assert!(
        e.contains(&format!("changed later by transaction {later};")),
        "{e}"
    );
    assert!(e.contains("--force"), "{e}");
    assert_eq!(d.setting("hostname")["value"], "after", "nothing changed");

    // --force restores both objects in one new transaction.
    let forced = d.json(&["audit", "restore", &both.to_string(), "--force"]);
    assert_eq!(forced["changes"].as_array().unwrap().len(), 2);
    assert_eq!(d.setting("hostname")["value"], "before");
    assert_eq!(d.setting("location")["value"], "Rack 1");
    // Restoring the forced restore gives back what it replaced.
    d.ok(&["audit", "restore", &txid(&forced).to_string()]);
    assert_eq!(d.setting("hostname")["value"], "after");
    assert_eq!(d.setting("location")["value"], "Rack 3");

    // Unknown transactions and bad ids are clear errors.
    let e = fails(&d, &["audit", "show", "999"]);
    assert!(e.contains("transaction 999 is not in the audit log"), "{e}");
    let e = fails(&d, &["audit", "restore", "999"]);
    assert!(e.contains("not in the audit log"), "{e}");
    let out = d.kpbx(&["audit", "restore", "abc"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(d.stop(), Some(0));
}

#[test]
fn list_by_period_filters_pages_and_columns() {
    let dir = tempfile::tempdir().unwrap();
    let mut d = Daemon::new(dir.path());
    d.start();
    for i in 0..7 {
        d.ok(&["system", "set", &format!("location=Room {i}")]);
    }
    d.ok(&[
        "prov",
        "account",
        "add",
        "extension=300",
        "sip_password=pw-300",
    ]);
    let month = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m")
        .to_string();

    // Newest first, paged.
    let p1 = d.json(&["audit", "list", "--page-size", "3"]);
    assert_eq!(p1["month"], month.as_str(), "default: the current month");
    let ids: Vec<u64> = p1["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["txid"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [8, 7, 6]);
    assert_eq!(p1["more"], true);
    let p3 = d.json(&["audit", "list", "--page-size", "3", "--page", "3"]);
    let ids: Vec<u64> = p3["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["txid"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [2, 1]);
    assert_eq!(p3["more"], false);

    // Filters.
    let me = nix::unistd::User::from_uid(nix::unistd::getuid())
        .unwrap()
        .unwrap()
        .name;
    let mine = d.json(&["audit", "list", "--user", &me, "--month", &month]);
    assert_eq!(mine["entries"].as_array().unwrap().len(), 8);
    let nobody = d.json(&["audit", "list", "--user", "nobody-here"]);
    assert!(nobody["entries"].as_array().unwrap().is_empty());
    let acc = d.json(&["audit", "list", "--type", "account"]);
    assert_eq!(acc["entries"].as_array().unwrap().len(), 1);
    let updates = d.json(&["audit", "list", "--action", "update"]);
    assert_eq!(updates["entries"].as_array().unwrap().len(), 6);
    let old = d.json(&["audit", "list", "--month", "2001-01"]);
    assert!(old["entries"].as_array().unwrap().is_empty());
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .day()
        .to_string();
    let day = d.json(&["audit", "list", "--day", &today]);
    assert_eq!(day["entries"].as_array().unwrap().len(), 8);

    // Columns select what is shown, in both modes.
    let cols = d.json(&["audit", "list", "--columns", "user,action"]);
    let first = cols["entries"][0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["action", "user"]);
    let table = d.ok(&["audit", "list", "--columns", "txid,ip,description"]);
    assert!(table.starts_with("TXID  IP"), "{table}");
    assert!(table.contains("console"), "{table}");
    assert!(!table.contains(&me), "user column not asked for: {table}");

    // Bad options are usage errors, bad values from scripts are refused.
    for bad in [
        &["audit", "list", "--month", "2026-13"][..],
        &["audit", "list", "--columns", "password"],
        &["audit", "list", "--action", "frob"],
    ] {
        assert_eq!(d.kpbx(bad).status.code(), Some(2), "{bad:?}");
    }
    let e = fails(&d, &["audit", "list", "--type", "spaceship"]);
    assert!(e.contains("unknown object type"), "{e}");
    assert_eq!(d.stop(), Some(0));
}
