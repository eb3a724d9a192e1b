use super::*;
use crate::model::Setting;

fn origin() -> Origin {
    Origin {
        user: "alice".to_string(),
        source: Source::Console,
    }
}

fn t(s: i64) -> WallTime {
    WallTime::from_unix_micros(1_780_000_000_000_000 + s * 1_000_000)
}

fn put(name: &str, value: &str) -> Change {
    Change::put(Object::Setting(Setting::parse(name, value).unwrap()))
}

fn del(name: &str) -> Change {
    Change::Delete(ObjectRef {
        kind: Kind::Setting,
        id: name.to_string(),
    })
}

fn open(dir: &Path) -> Store {
    Store::open(dir, 64, t(0)).unwrap()
}

#[test]
fn create_update_delete_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let r1 = store
        .commit(&origin(), t(1), &[put("hostname", "a")])
        .unwrap();
    let r2 = store
        .commit(&origin(), t(2), &[put("hostname", "b")])
        .unwrap();
    let r3 = store.commit(&origin(), t(3), &[del("hostname")]).unwrap();
    assert_eq!((r1.txid, r2.txid, r3.txid), (Some(1), Some(2), Some(3)));
    assert_eq!(store.setting(SettingKey::Hostname).unwrap(), "kpbx");

    let log = store.audit_latest(10).unwrap();
    let actions: Vec<_> = log.iter().map(|e| (e.txid, e.action)).collect();
    assert_eq!(
        actions,
        [
            (3, Action::Delete),
            (2, Action::Update),
            (1, Action::Create)
        ]
    );
    let update = &log[1];
    assert_eq!(update.user, "alice");
    assert_eq!(update.source, Source::Console);
    assert_eq!(update.time, t(2));
    assert_eq!(update.kind, "setting");
    assert_eq!(update.id, "hostname");
    assert_eq!(update.description, "set hostname to \"b\"");
    assert_eq!(update.before, Some(vec![("value".into(), "a".into())]));
    assert_eq!(update.after, Some(vec![("value".into(), "b".into())]));
    assert_eq!(log[0].after, None);
    assert_eq!(store.verify_audit().unwrap().first_bad, None);
}

#[test]
fn several_objects_share_one_txid() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let r = store
        .commit(
            &origin(),
            t(1),
            &[put("hostname", "a"), put("sip_port", "5070")],
        )
        .unwrap();
    assert_eq!(r.txid, Some(1));
    let entries = store.audit_transaction(1).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!((entries[0].index, entries[1].index), (0, 1));
    assert_eq!(store.verify_audit().unwrap().entries, 2);
}

#[test]
fn no_op_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .commit(&origin(), t(1), &[put("hostname", "a")])
        .unwrap();
    let r = store
        .commit(&origin(), t(2), &[put("hostname", "a")])
        .unwrap();
    assert_eq!(r.txid, None);
    let r = store
        .commit(&origin(), t(3), &[put("hostname", "b")])
        .unwrap();
    assert_eq!(r.txid, Some(2), "txids stay dense after a no-op");
}

#[test]
fn refused_commits_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .commit(&origin(), t(1), &[put("hostname", "a")])
        .unwrap();
    let e = store
        .commit(&origin(), t(2), &[put("location", "x"), del("sip_port")])
        .unwrap_err();
    assert_eq!(e.to_string(), "setting \"sip_port\" does not exist");
    let e = store
        .commit(
            &origin(),
            t(2),
            &[put("location", "x"), put("location", "y")],
        )
        .unwrap_err();
    assert!(e.to_string().contains("changed twice"), "{e}");
    assert_eq!(store.setting(SettingKey::Location).unwrap(), "");
    assert_eq!(store.stats().unwrap().audit_entries, 1);
    let r = store
        .commit(&origin(), t(3), &[put("location", "x")])
        .unwrap();
    assert_eq!(r.txid, Some(2));
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .commit(&origin(), t(1), &[put("timezone", "Europe/Rome")])
            .unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.setting(SettingKey::Timezone).unwrap(), "Europe/Rome");
    let r = store
        .commit(&origin(), t(2), &[put("hostname", "b")])
        .unwrap();
    assert_eq!(r.txid, Some(2));
    assert_eq!(store.verify_audit().unwrap().entries, 2);
}

#[test]
fn second_opener_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _store = open(dir.path());
    let e = Store::open(dir.path(), 64, t(0)).unwrap_err();
    assert!(matches!(e, StoreError::Locked(_)), "{e}");
}

/// Rewrites the audit record at `(txid, index)` with `f`, keeping or
/// recomputing its hash as the tamperer chooses.
fn tamper(store: &Store, txid: u64, index: u32, rehash: bool, f: impl FnOnce(&mut AuditBodyV1)) {
    let mut wtxn = store.env.write_txn().unwrap();
    let key = records::audit_key(txid, index);
    let raw = store.audit.get(&wtxn, &key).unwrap().unwrap().to_vec();
    let AuditRecord::V1 {
        mut body,
        prev_hash,
        mut hash,
    } = records::decode_audit(&raw).unwrap();
    f(&mut body);
    if rehash {
        hash = records::chain_hash(&prev_hash, &body);
    }
    let record = AuditRecord::V1 {
        body,
        prev_hash,
        hash,
    };
    store
        .audit
        .put(&mut wtxn, &key, &records::encode_audit(&record))
        .unwrap();
    wtxn.commit().unwrap();
}

fn three_entries(dir: &Path) -> Store {
    let store = open(dir);
    for (i, v) in ["a", "b", "c"].iter().enumerate() {
        store
            .commit(&origin(), t(i as i64), &[put("hostname", v)])
            .unwrap();
    }
    store
}

#[test]
fn tampering_is_detected_and_located() {
    let dir = tempfile::tempdir().unwrap();
    let store = three_entries(dir.path());
    tamper(&store, 2, 0, false, |b| b.user = "mallory".into());
    let v = store.verify_audit().unwrap();
    let bad = v.first_bad.unwrap();
    assert_eq!((bad.txid, bad.index), (2, 0));
    assert!(bad.reason.contains("altered"), "{}", bad.reason);
}

#[test]
fn rehashed_tampering_breaks_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let store = three_entries(dir.path());
    tamper(&store, 2, 0, true, |b| b.description = "nothing".into());
    let bad = store.verify_audit().unwrap().first_bad.unwrap();
    assert_eq!((bad.txid, bad.index), (3, 0));
    assert!(bad.reason.contains("chain broken"), "{}", bad.reason);
}

#[test]
fn removed_and_truncated_entries_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let store = three_entries(dir.path());
    let mut wtxn = store.env.write_txn().unwrap();
    store
        .audit
        .delete(&mut wtxn, &records::audit_key(3, 0))
        .unwrap();
    wtxn.commit().unwrap();
    let bad = store.verify_audit().unwrap().first_bad.unwrap();
    assert!(bad.reason.contains("truncated"), "{}", bad.reason);

    let dir = tempfile::tempdir().unwrap();
    let store = three_entries(dir.path());
    let mut wtxn = store.env.write_txn().unwrap();
    store
        .audit
        .delete(&mut wtxn, &records::audit_key(2, 0))
        .unwrap();
    wtxn.commit().unwrap();
    let bad = store.verify_audit().unwrap().first_bad.unwrap();
    assert_eq!((bad.txid, bad.index), (3, 0));
}

#[test]
fn garbage_record_is_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let store = three_entries(dir.path());
    let mut wtxn = store.env.write_txn().unwrap();
    store
        .audit
        .put(&mut wtxn, &records::audit_key(1, 0), &[0xff, 0xff, 0xff])
        .unwrap();
    wtxn.commit().unwrap();
    let bad = store.verify_audit().unwrap().first_bad.unwrap();
    assert_eq!((bad.txid, bad.index), (1, 0));
    assert!(bad.reason.contains("cannot be decoded"), "{}", bad.reason);
    assert!(matches!(
        store.audit_latest(10),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn future_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        let mut wtxn = store.env.write_txn().unwrap();
        store
            .meta
            .put(&mut wtxn, META_SCHEMA, &(SCHEMA_VERSION + 1).to_be_bytes())
            .unwrap();
        wtxn.commit().unwrap();
    }
    let e = Store::open(dir.path(), 64, t(0)).unwrap_err();
    assert!(matches!(e, StoreError::FutureSchema { .. }), "{e}");
    assert!(
        e.to_string().contains("newer than this kpbxd supports"),
        "{e}"
    );
}

#[test]
fn foreign_lmdb_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let env_dir = dir.path().join("store");
    std::fs::create_dir_all(&env_dir).unwrap();
    {
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.max_dbs(2);
        // SAFETY: test-only environment, opened once and closed before reuse.
        let env = unsafe { options.open(&env_dir) }.unwrap();
        let mut wtxn = env.write_txn().unwrap();
        let db: Database<Bytes, Bytes> = env.create_database(&mut wtxn, Some("other")).unwrap();
        db.put(&mut wtxn, b"k", b"v").unwrap();
        wtxn.commit().unwrap();
        env.prepare_for_closing().wait();
    }
    let e = Store::open(dir.path(), 64, t(0)).unwrap_err();
    assert!(matches!(e, StoreError::Foreign(_)), "{e}");
}

#[test]
fn truncated_and_garbage_files_are_refused() {
    for len in [0u64, 100, 4096, 3 * 4096 + 5] {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(dir.path());
            for i in 0..200 {
                let v = format!("host{i}");
                store
                    .commit(&origin(), t(i), &[put("hostname", &v)])
                    .unwrap();
            }
        }
        let file = dir.path().join("store/data.mdb");
        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.set_len(len).unwrap();
        drop(f);
        let e = Store::open(dir.path(), 64, t(0)).unwrap_err();
        assert!(matches!(e, StoreError::Corrupt(_)), "len {len}: {e}");
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("store")).unwrap();
    std::fs::write(dir.path().join("store/data.mdb"), vec![0x5a; 64 * 1024]).unwrap();
    let e = Store::open(dir.path(), 64, t(0)).unwrap_err();
    assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
}

#[test]
fn pruning_moves_the_anchor_and_keeps_the_chain_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..10 {
        let v = format!("h{i}");
        store
            .commit(
                &origin(),
                t(i * 100),
                &[put("hostname", &v), put("location", &v)],
            )
            .unwrap();
    }
    assert_eq!(store.verify_audit().unwrap().entries, 20);
    // Transactions at t(0)..t(400) are older than t(450): 5 of them.
    assert_eq!(
        store.audit_prune(t(450).as_unix_micros(), 1000).unwrap(),
        10
    );
    let v = store.verify_audit().unwrap();
    assert_eq!((v.entries, v.first_bad), (10, None));
    assert!(store.audit_transaction(5).unwrap().is_empty());
    assert_eq!(store.audit_transaction(6).unwrap().len(), 2);
    // Bounded per call, whole transactions only.
    assert_eq!(store.audit_prune(t(10_000).as_unix_micros(), 3).unwrap(), 4);
    assert_eq!(store.verify_audit().unwrap().first_bad, None);
    // Never the newest transaction; later commits chain on.
    store.audit_prune(t(10_000).as_unix_micros(), 1000).unwrap();
    assert_eq!(store.audit_transaction(10).unwrap().len(), 2);
    store
        .commit(&origin(), t(2000), &[put("hostname", "last")])
        .unwrap();
    let v = store.verify_audit().unwrap();
    assert_eq!((v.entries, v.first_bad), (3, None));
    // Survives a reopen.
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.verify_audit().unwrap().first_bad, None);
    assert_eq!(store.audit_prune(0, 1000).unwrap(), 0);
}

#[test]
fn retention_cutoff_is_a_month_start() {
    let tz = jiff::tz::TimeZone::get("Europe/Rome").unwrap();
    // 2026-11-26 12:00 UTC, keep 2 months: from 2026-09-01 00:00 Rome.
    let now = WallTime::from_unix_micros(1_795_694_400_000_000);
    let cut = retention_cutoff(now, 2, &tz).unwrap();
    assert_eq!(cut, 1_788_213_600_000_000);
    assert_eq!(retention_cutoff(now, 0, &tz), None);
}

#[test]
fn a_period_page_seeks_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..40 {
        store
            .commit(&origin(), t(i * 10), &[put("hostname", &format!("h{i}"))])
            .unwrap();
    }
    let txids = |start: i64, end: i64, skip, limit| -> Vec<u64> {
        let f = crate::audit::Filter {
            start_us: t(start).as_unix_micros(),
            end_us: t(end).as_unix_micros(),
            user: None,
            kind: None,
            action: None,
        };
        store
            .audit_page(&f, skip, limit)
            .unwrap()
            .entries
            .iter()
            .map(|e| e.txid)
            .collect()
    };
    // Transaction n was committed at t((n - 1) * 10).
    assert_eq!(txids(100, 150, 0, 10), [15, 14, 13, 12, 11]);
    assert_eq!(txids(100, 151, 1, 2), [15, 14]);
    assert_eq!(txids(0, 5, 0, 10), [1]);
    assert_eq!(txids(390, 10_000, 0, 10), [40]);
    assert!(txids(10_000, 20_000, 0, 10).is_empty());
    assert!(txids(-100, 0, 0, 10).is_empty());
    let mut n = 0;
    let f = crate::audit::Filter {
        start_us: t(0).as_unix_micros(),
        end_us: t(200).as_unix_micros(),
        user: None,
        kind: None,
        action: None,
    };
    store
        .audit_scan(&f, |_| {
            n += 1;
            true
        })
        .unwrap();
    assert_eq!(n, 20);
}

#[test]
fn redirection_servers_are_checked_in_the_commit() {
    use crate::model::prov::{RedirectApi, RedirectBrand, YmcsRegion};
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Built directly, not through the field parser: the commit checks it.
    let server = |name: &str, brand, api| {
        Change::put(Object::RedirectServer(crate::model::RedirectServer {
            name: name.to_string(),
            brand,
            api,
            user: String::new(),
            password: String::new(),
            access_key_id: String::new(),
            access_key_secret: String::new(),
            region: YmcsRegion::Eu,
            enabled: true,
            url: "https://pbx/".to_string(),
        }))
    };
    let refused = |c: Change| match store.commit(&origin(), t(1), &[c]) {
        Err(CommitError::Invalid(m)) => m,
        other => panic!("accepted: {other:?}"),
    };
    let m = refused(server(
        "office/1",
        RedirectBrand::Yealink,
        RedirectApi::Ymcs,
    ));
    assert!(m.contains("A-z 0-9 - _ . and space"), "{m}");
    let m = refused(server("office", RedirectBrand::Snom, RedirectApi::Ymcs));
    assert!(m.contains("not a snom API"), "{m}");
    store
        .commit(
            &origin(),
            t(2),
            &[server(
                "Office_1.b-2 x",
                RedirectBrand::Yealink,
                RedirectApi::RpsXmlrpc,
            )],
        )
        .unwrap();
}

/// A commit made on another thread (a sync session applying the peer's
/// entries, say) is not this thread's write.
#[test]
fn a_write_mark_counts_only_this_threads_commits() {
    use super::repl::WriteMark;
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open(dir.path()));
    let mark = WriteMark::now();
    let other = std::sync::Arc::clone(&store);
    std::thread::spawn(move || {
        other
            .commit(&origin(), t(1), &[put("hostname", "a")])
            .unwrap();
    })
    .join()
    .unwrap();
    assert!(store.repl_seq().unwrap() > 0);
    assert!(!mark.wrote(), "another thread's commit counted as ours");
    store
        .commit(&origin(), t(2), &[put("hostname", "b")])
        .unwrap();
    assert!(mark.wrote());
    // A commit that changes nothing writes no entry.
    let mark = WriteMark::now();
    store
        .commit(&origin(), t(3), &[put("hostname", "b")])
        .unwrap();
    assert_eq!(mark.wrote(), store.repl_seq().unwrap() > 2);
}
