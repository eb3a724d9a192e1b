//! The store: configuration objects and the audit log in LMDB (heed).
//!
//! Architecture invariants:
//! - Only this module touches LMDB. Everything else sees domain types.
//! - There is one write path, [`Store::commit`]: it checks the changes, writes
//!   the objects and appends one audit entry per changed object, all in the
//!   same LMDB write transaction. A change without its audit entry cannot be
//!   committed, and an audit entry without its change cannot exist.
//! - The audit log is a hash chain: each entry holds the SHA-256 of the one
//!   before it and its own; the chain head is kept in `meta` and moved in the
//!   same transaction, so [`Store::verify_audit`] detects any edit, removal or
//!   truncation.
//! - One process owns a data dir: `kpbxd.lock` is held with `flock` for the
//!   life of the [`Store`].
//! - Opening never panics on a bad data dir: a truncated, corrupt, foreign or
//!   newer-schema store is a [`StoreError`] naming what is wrong.
//!
//! Layout of `data_dir`:
//! ```text
//! kpbxd.lock      flock'd by the running daemon
//! store/data.mdb  LMDB: databases meta, objects, audit, data (see [`data`])
//! ```

mod audit;
pub mod data;
mod mapped;
pub mod records;
pub mod repl;
mod rules;
mod task_records;

use std::fmt;
use std::fs::File;
use std::ops::Bound::{Included, Unbounded};
use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, RoTxn, RwTxn, WithoutTls};

use crate::clock::WallTime;
use crate::model::{Action, Change, Kind, Object, ObjectRef, Origin, Setting, SettingKey, Source};
pub use audit::{AuditPage, retention_cutoff};
use records::{AuditBodyV1, AuditRecord, ChainRecord, ChainV1, DecodeError, StoreIdRecord};
use repl::Db;

/// The schema version this build writes. Older stores are migrated on open;
/// newer ones are refused.
pub const SCHEMA_VERSION: u32 = 1;

/// Migrations from version `n` to `n + 1`, indexed by `n - 1`. Each runs in
/// the open transaction; the schema version is bumped after each.
const MIGRATIONS: &[Migration] = &[];

type Migration = fn(&Store, &mut RwTxn) -> Result<(), StoreError>;

const CHAIN_BROKEN: &str =
    "chain broken: does not follow the previous entry (this or an earlier entry was altered)";

const META_STORE_ID: &[u8] = b"store_id";
const META_SCHEMA: &[u8] = b"schema";
const META_CHAIN: &[u8] = b"chain";

/// Why the store could not be opened or used.
#[derive(Debug)]
pub enum StoreError {
    /// Another process holds the data dir.
    Locked(PathBuf),
    /// A file system operation failed.
    Io(String, std::io::Error),
    /// The data dir holds an LMDB store that is not ours.
    Foreign(PathBuf),
    /// The data is damaged.
    Corrupt(String),
    /// The store was written by a newer kpbxd.
    FutureSchema { found: u32, supported: u32 },
    /// The store reached `store_max_mb`.
    Full,
    /// Any other LMDB error.
    Lmdb(heed::Error),
    /// This node is an HA replica: its data comes from the active node.
    Replica,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Locked(p) => write!(
                f,
                "data dir {} is in use by another kpbxd process",
                p.display()
            ),
            StoreError::Io(what, e) => write!(f, "{what}: {e}"),
            StoreError::Foreign(p) => write!(
                f,
                "{} holds an LMDB store that was not written by kpbxd; refusing to touch it",
                p.display()
            ),
            StoreError::Corrupt(what) => write!(f, "store is corrupt: {what}"),
            StoreError::FutureSchema { found, supported } => write!(
                f,
                "store has schema version {found}, newer than this kpbxd supports ({supported}); \
                 run a newer kpbxd or restore a backup"
            ),
            StoreError::Full => f.write_str("store is full (raise store_max_mb)"),
            StoreError::Lmdb(e) => write!(f, "LMDB: {e}"),
            StoreError::Replica => {
                f.write_str("this node is the HA passive node: changes are made on the active node")
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl From<heed::Error> for StoreError {
    fn from(e: heed::Error) -> StoreError {
        use heed::MdbError as M;
        match e {
            heed::Error::Mdb(M::MapFull) => StoreError::Full,
            heed::Error::Mdb(
                M::Corrupted | M::PageNotFound | M::Invalid | M::VersionMismatch | M::Panic,
            ) => StoreError::Corrupt(e.to_string()),
            e => StoreError::Lmdb(e),
        }
    }
}

impl From<DecodeError> for StoreError {
    fn from(e: DecodeError) -> StoreError {
        StoreError::Corrupt(e.0)
    }
}

/// Why a commit was refused. Nothing was written.
#[derive(Debug)]
pub enum CommitError {
    /// The changes break a rule; the message says which.
    Invalid(String),
    /// A delete named an object that does not exist.
    NotFound(ObjectRef),
    Store(StoreError),
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommitError::Invalid(m) => f.write_str(m),
            CommitError::NotFound(r) => write!(f, "{r} does not exist"),
            CommitError::Store(e) => write!(f, "{e}"),
        }
    }
}

impl From<StoreError> for CommitError {
    fn from(e: StoreError) -> CommitError {
        CommitError::Store(e)
    }
}

impl From<heed::Error> for CommitError {
    fn from(e: heed::Error) -> CommitError {
        CommitError::Store(e.into())
    }
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction id, or `None` if every change was a no-op and nothing
    /// was written.
    pub txid: Option<u64>,
    pub changes: Vec<(Action, ObjectRef, String)>,
}

/// An audit entry as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub txid: u64,
    pub index: u32,
    pub time: WallTime,
    pub user: String,
    pub source: Source,
    pub action: Action,
    pub kind: String,
    pub id: String,
    pub description: String,
    /// Display fields of the object before and after (secrets masked).
    pub before: Option<Vec<(String, String)>>,
    pub after: Option<Vec<(String, String)>>,
}

/// The result of checking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub entries: u64,
    /// The first entry at which the chain does not hold, with the reason.
    pub first_bad: Option<BadEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEntry {
    pub txid: u64,
    pub index: u32,
    pub reason: String,
}

/// Sizes for `kpbx status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub schema: u32,
    pub objects: u64,
    pub audit_entries: u64,
    pub last_txid: Option<u64>,
    pub disk_bytes: u64,
}

pub struct Store {
    env: Env<WithoutTls>,
    meta: Database<Bytes, Bytes>,
    objects: Database<Bytes, Bytes>,
    audit: Database<Bytes, Bytes>,
    /// Operational data tables, see [`data`].
    data: Database<Bytes, Bytes>,
    /// The replication log, see [`repl`].
    replog: Database<Bytes, Bytes>,
    data_dir: PathBuf,
    /// Set while this node follows a primary: local writes are refused.
    replica: std::sync::atomic::AtomicBool,
    _lock: nix::fcntl::Flock<File>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path, max_mb: u32, now: WallTime) -> Result<Store, StoreError> {
        let io = |what: String| move |e| StoreError::Io(what, e);
        create_private_dir(data_dir)
            .map_err(io(format!("cannot create data dir {}", data_dir.display())))?;
        let lock = lock_data_dir(data_dir)?;

        let env_dir = data_dir.join("store");
        create_private_dir(&env_dir).map_err(io(format!("cannot create {}", env_dir.display())))?;
        let data_file = env_dir.join("data.mdb");
        let page = page_size();
        let existing = match std::fs::metadata(&data_file) {
            Ok(m) => Some(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(StoreError::Io(
                    format!("cannot stat {}", data_file.display()),
                    e,
                ));
            }
        };
        if let Some(len) = existing.filter(|&len| len < 2 * page) {
            return Err(StoreError::Corrupt(format!(
                "{} is truncated ({len} bytes)",
                data_file.display()
            )));
        }

        let map_size = usize::try_from(u64::from(max_mb) << 20).unwrap_or(usize::MAX);
        let mut options = EnvOpenOptions::new().read_txn_without_tls();
        options.map_size(map_size).max_dbs(16).max_readers(64);
        // SAFETY: heed requires that the same environment is not opened twice
        // in one process and that the files are not modified underneath it.
        // The flock taken above keeps other kpbxd processes out, and this
        // process opens the store exactly once.
        let env = unsafe { options.open(&env_dir) }.map_err(|e| match StoreError::from(e) {
            StoreError::Corrupt(m) => StoreError::Corrupt(format!(
                "{} is not a valid LMDB file ({m})",
                data_file.display()
            )),
            other => other,
        })?;

        // LMDB maps the file; reading a page beyond its end would be a
        // SIGBUS, not an error. Check that every page in use is present.
        let info = env.info();
        let needed = (info.last_page_number as u64 + 1) * u64::from(env.stat().page_size);
        let len = std::fs::metadata(&data_file)
            .map_err(io(format!("cannot stat {}", data_file.display())))?
            .len();
        if len < needed {
            return Err(StoreError::Corrupt(format!(
                "{} is truncated ({len} bytes, {needed} in use)",
                data_file.display()
            )));
        }

        let mut wtxn = env.write_txn()?;
        let meta: Option<Database<Bytes, Bytes>> = env.open_database(&wtxn, Some("meta"))?;
        let fresh = match meta {
            Some(_) => false,
            None => {
                let main: Option<Database<Bytes, Bytes>> = env.open_database(&wtxn, None)?;
                let used = match main {
                    Some(db) => !db.is_empty(&wtxn)?,
                    None => false,
                };
                if used {
                    return Err(StoreError::Foreign(env_dir));
                }
                true
            }
        };
        let meta = env.create_database(&mut wtxn, Some("meta"))?;
        let objects = env.create_database(&mut wtxn, Some("objects"))?;
        let audit = env.create_database(&mut wtxn, Some("audit"))?;
        let data = env.create_database(&mut wtxn, Some("data"))?;
        let replog = env.create_database(&mut wtxn, Some("replog"))?;
        let store = Store {
            env: env.clone(),
            meta,
            objects,
            audit,
            data,
            replog,
            data_dir: data_dir.to_path_buf(),
            replica: std::sync::atomic::AtomicBool::new(false),
            _lock: lock,
        };
        if fresh {
            let id = StoreIdRecord::V1 {
                magic: records::MAGIC,
                created_us: now.as_unix_micros(),
            };
            meta.put(&mut wtxn, META_STORE_ID, &records::to_bytes(&id))?;
            meta.put(&mut wtxn, META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
            let chain = ChainV1 {
                next_txid: 1,
                ..ChainV1::default()
            };
            store.put_chain(&mut wtxn, &chain)?;
        } else {
            store.check_identity(&wtxn, &env_dir)?;
            store.migrate(&mut wtxn)?;
        }
        wtxn.commit()?;
        Ok(store)
    }

    fn check_identity(&self, txn: &RoTxn<WithoutTls>, env_dir: &Path) -> Result<(), StoreError> {
        let foreign = || StoreError::Foreign(env_dir.to_path_buf());
        let id = self.meta.get(txn, META_STORE_ID)?.ok_or_else(foreign)?;
        match records::from_bytes::<StoreIdRecord>(id) {
            Ok(StoreIdRecord::V1 { magic, .. }) if magic == records::MAGIC => Ok(()),
            _ => Err(foreign()),
        }
    }

    fn schema(&self, txn: &RoTxn<WithoutTls>) -> Result<u32, StoreError> {
        let raw = self
            .meta
            .get(txn, META_SCHEMA)?
            .ok_or_else(|| StoreError::Corrupt("schema version missing".to_string()))?;
        let raw: [u8; 4] = raw
            .try_into()
            .map_err(|_| StoreError::Corrupt("schema version malformed".to_string()))?;
        Ok(u32::from_be_bytes(raw))
    }

    fn migrate(&self, wtxn: &mut RwTxn) -> Result<(), StoreError> {
        let mut found = self.schema(wtxn)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::FutureSchema {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found == 0 {
            return Err(StoreError::Corrupt("schema version 0".to_string()));
        }
        while found < SCHEMA_VERSION {
            let step = MIGRATIONS
                .get(found as usize - 1)
                .ok_or_else(|| StoreError::Corrupt(format!("no migration from {found}")))?;
            step(self, wtxn)?;
            found += 1;
            self.meta.put(wtxn, META_SCHEMA, &found.to_be_bytes())?;
        }
        Ok(())
    }

    fn chain(&self, txn: &RoTxn<WithoutTls>) -> Result<ChainV1, StoreError> {
        let raw = self
            .meta
            .get(txn, META_CHAIN)?
            .ok_or_else(|| StoreError::Corrupt("audit chain head missing".to_string()))?;
        let ChainRecord::V1(chain) = records::from_bytes(raw)?;
        Ok(chain)
    }

    fn put_chain(&self, wtxn: &mut RwTxn, chain: &ChainV1) -> Result<(), StoreError> {
        let bytes = records::to_bytes(&ChainRecord::V1(chain.clone()));
        self.meta.put(wtxn, META_CHAIN, &bytes)?;
        Ok(())
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The one write path. Applies `changes` as one transaction with one
    /// transaction id, appending an audit entry per object that changed.
    /// Changes that would leave an object as it is are dropped; if nothing
    /// is left, nothing is written and the receipt has no txid.
    pub fn commit(
        &self,
        origin: &Origin,
        now: WallTime,
        changes: &[Change],
    ) -> Result<Receipt, CommitError> {
        let mut targets: Vec<ObjectRef> = changes.iter().map(Change::target).collect();
        targets.sort();
        if let Some(pair) = targets.windows(2).find(|w| w[0] == w[1]) {
            return Err(CommitError::Invalid(format!(
                "{} is changed twice in one request",
                pair[0]
            )));
        }

        // A node's own HA configuration may change on a replica too.
        let mut tx = if targets.iter().all(|t| t.kind == Kind::Ha) {
            self.begin_local()?
        } else {
            self.begin()?
        };
        let chain = self.chain(&tx.txn)?;
        let txid = chain.next_txid;
        let mut bodies = Vec::new();
        let mut checked = Vec::new();
        for change in changes {
            let target = change.target();
            let key = records::object_key(target.kind, &target.id);
            let before = tx.get(Db::Objects, &key)?;
            let (action, after, description) = match change {
                Change::Put(object) => {
                    let after = records::encode_object(object);
                    if before.as_deref() == Some(after.as_slice()) {
                        continue;
                    }
                    let action = if before.is_some() {
                        Action::Update
                    } else {
                        Action::Create
                    };
                    tx.put(Db::Objects, &key, &after)?;
                    checked.push((target.clone(), Some(object.as_ref().clone()), None));
                    (action, Some(after), object.describe_change(action))
                }
                Change::Delete(r) => {
                    let Some(old) = &before else {
                        return Err(CommitError::NotFound(r.clone()));
                    };
                    let old =
                        records::decode_object(r.kind, &r.id, old).map_err(StoreError::from)?;
                    tx.delete(Db::Objects, &key)?;
                    let description = old.describe_change(Action::Delete);
                    checked.push((target.clone(), None, Some(old)));
                    (Action::Delete, None, description)
                }
            };
            bodies.push(AuditBodyV1 {
                txid,
                index: u32::try_from(bodies.len()).unwrap_or(u32::MAX),
                time_us: now.as_unix_micros(),
                user: origin.user.clone(),
                source: (&origin.source).into(),
                action: action.into(),
                kind: target.kind.as_str().to_string(),
                id: target.id.clone(),
                description,
                before,
                after,
            });
        }
        rules::check(self, &tx.txn, &checked)?;
        if bodies.is_empty() {
            return Ok(Receipt {
                txid: None,
                changes: Vec::new(),
            });
        }
        self.append_audit(tx, chain, bodies, now)
    }

    /// Records an event that changes no object (what HA data sync archived)
    /// as an audit entry on `kind`/`id`, with the object as it is before
    /// and after. Refused on a replica like any change.
    pub fn note(
        &self,
        origin: &Origin,
        now: WallTime,
        kind: Kind,
        id: &str,
        description: &str,
    ) -> Result<Receipt, CommitError> {
        let tx = self.begin()?;
        let chain = self.chain(&tx.txn)?;
        let current = tx.get(Db::Objects, &records::object_key(kind, id))?;
        let body = AuditBodyV1 {
            txid: chain.next_txid,
            index: 0,
            time_us: now.as_unix_micros(),
            user: origin.user.clone(),
            source: (&origin.source).into(),
            action: Action::Update.into(),
            kind: kind.as_str().to_string(),
            id: id.to_string(),
            description: description.to_string(),
            before: current.clone(),
            after: current,
        };
        self.append_audit(tx, chain, vec![body], now)
    }

    /// Appends `bodies` (one transaction id) to the audit chain and commits.
    fn append_audit(
        &self,
        mut tx: repl::Tx<'_>,
        mut chain: ChainV1,
        bodies: Vec<AuditBodyV1>,
        now: WallTime,
    ) -> Result<Receipt, CommitError> {
        let Some(txid) = bodies.first().map(|b| b.txid) else {
            return Ok(Receipt {
                txid: None,
                changes: Vec::new(),
            });
        };
        let mut receipt = Receipt {
            txid: Some(txid),
            changes: Vec::with_capacity(bodies.len()),
        };
        let mut prev = chain.head_hash;
        for body in bodies {
            let hash = records::chain_hash(&prev, &body);
            let key = records::audit_key(body.txid, body.index);
            chain.head_key = Some((body.txid, body.index));
            let kind = Kind::from_name(&body.kind).unwrap_or(Kind::Setting);
            receipt.changes.push((
                body.action.into(),
                ObjectRef {
                    kind,
                    id: body.id.clone(),
                },
                body.description.clone(),
            ));
            let record = AuditRecord::V1 {
                body,
                prev_hash: prev,
                hash,
            };
            tx.put(Db::Audit, &key, &records::encode_audit(&record))?;
            prev = hash;
        }
        chain.head_hash = prev;
        chain.next_txid = txid + 1;
        if chain.anchor_key.is_none() {
            chain.anchor_key = Some((txid, 0));
        }
        tx.put(
            Db::Meta,
            META_CHAIN,
            &records::to_bytes(&ChainRecord::V1(chain)),
        )?;
        self.finish(tx, now.as_unix_micros())?;
        Ok(receipt)
    }

    /// Every object of `kind`, in id order.
    pub fn list(&self, kind: Kind) -> Result<Vec<Object>, StoreError> {
        let rtxn = self.env.read_txn()?;
        let prefix = records::kind_prefix(kind);
        let mut out = Vec::new();
        for item in self.objects.prefix_iter(&rtxn, &prefix)? {
            let (key, value) = item?;
            let (kind, id) = records::split_object_key(key)?;
            out.push(records::decode_object(kind, &id, value)?);
        }
        Ok(out)
    }

    pub fn get(&self, kind: Kind, id: &str) -> Result<Option<Object>, StoreError> {
        let rtxn = self.env.read_txn()?;
        let key = records::object_key(kind, id);
        match self.objects.get(&rtxn, &key)? {
            Some(bytes) => Ok(Some(records::decode_object(kind, id, bytes)?)),
            None => Ok(None),
        }
    }

    /// The value of a system setting, its default if it was never set.
    pub fn setting(&self, key: SettingKey) -> Result<String, StoreError> {
        Ok(match self.get(Kind::Setting, key.name())? {
            Some(Object::Setting(s)) => s.value().to_string(),
            _ => key.default_value().to_string(),
        })
    }

    /// The set system settings.
    pub fn settings(&self) -> Result<Vec<Setting>, StoreError> {
        Ok(self
            .list(Kind::Setting)?
            .into_iter()
            .filter_map(|o| match o {
                Object::Setting(s) => Some(s),
                _ => None,
            })
            .collect())
    }

    /// The newest `limit` audit entries, newest first.
    pub fn audit_latest(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        let rtxn = self.env.read_txn()?;
        let mut out = Vec::new();
        for item in self.audit.rev_iter(&rtxn)?.take(limit) {
            let (_, value) = item?;
            let AuditRecord::V1 { body, .. } = records::decode_audit(value)?;
            out.push(audit_entry(body));
        }
        Ok(out)
    }

    /// The audit entries of one transaction, in order.
    pub fn audit_transaction(&self, txid: u64) -> Result<Vec<AuditEntry>, StoreError> {
        let rtxn = self.env.read_txn()?;
        let start = records::audit_key(txid, 0);
        let end = records::audit_key(txid, u32::MAX);
        let mut out = Vec::new();
        for item in self
            .audit
            .range(&rtxn, &(Included(&start[..]), Included(&end[..])))?
        {
            let (_, value) = item?;
            let AuditRecord::V1 { body, .. } = records::decode_audit(value)?;
            out.push(audit_entry(body));
        }
        Ok(out)
    }

    /// Walks the whole chain from its anchor and reports the first entry at
    /// which it does not hold.
    pub fn verify_audit(&self) -> Result<Verification, StoreError> {
        let rtxn = self.env.read_txn()?;
        let chain = self.chain(&rtxn)?;
        let mut prev = chain.anchor_prev_hash;
        let mut last: Option<(u64, u32)> = None;
        let mut entries = 0u64;
        let bad = |entries, txid, index, reason: String| {
            Ok(Verification {
                entries,
                first_bad: Some(BadEntry {
                    txid,
                    index,
                    reason,
                }),
            })
        };
        let start = chain
            .anchor_key
            .map_or([0u8; 12], |(t, i)| records::audit_key(t, i));
        for item in self
            .audit
            .range(&rtxn, &(Included(&start[..]), Unbounded))?
        {
            let (key, value) = item?;
            let Some((txid, index)) = records::split_audit_key(key) else {
                let (t, i) = last.map_or((0, 0), |(t, i)| (t, i + 1));
                return bad(entries, t, i, "entry with a malformed key".to_string());
            };
            let expected_next = match last {
                None => chain.anchor_key == Some((txid, index)) && index == 0,
                Some((t, i)) => (txid == t && index == i + 1) || (txid > t && index == 0),
            };
            if !expected_next {
                return bad(
                    entries,
                    txid,
                    index,
                    "entry out of sequence (entries removed or inserted)".into(),
                );
            }
            let AuditRecord::V1 {
                body,
                prev_hash,
                hash,
            } = match records::decode_audit(value) {
                Ok(r) => r,
                Err(e) => {
                    return bad(
                        entries,
                        txid,
                        index,
                        format!("record cannot be decoded ({e})"),
                    );
                }
            };
            if (body.txid, body.index) != (txid, index) {
                return bad(
                    entries,
                    txid,
                    index,
                    "record contents do not match its key".into(),
                );
            }
            if records::chain_hash(&prev_hash, &body) != hash {
                return bad(
                    entries,
                    txid,
                    index,
                    "record altered (hash mismatch)".into(),
                );
            }
            if prev_hash != prev {
                return bad(entries, txid, index, CHAIN_BROKEN.into());
            }
            prev = hash;
            last = Some((txid, index));
            entries += 1;
        }
        if last != chain.head_key || prev != chain.head_hash {
            let (t, i) = chain.head_key.unwrap_or((0, 0));
            return bad(
                entries,
                t,
                i,
                "log truncated or head altered: last entry is not the recorded head".into(),
            );
        }
        Ok(Verification {
            entries,
            first_bad: None,
        })
    }

    pub fn stats(&self) -> Result<Stats, StoreError> {
        let rtxn = self.env.read_txn()?;
        let chain = self.chain(&rtxn)?;
        Ok(Stats {
            schema: self.schema(&rtxn)?,
            objects: self.objects.len(&rtxn)?,
            audit_entries: self.audit.len(&rtxn)?,
            last_txid: chain.next_txid.checked_sub(1).filter(|&t| t > 0),
            disk_bytes: self.env.real_disk_size().unwrap_or(0),
        })
    }
}

fn audit_entry(body: AuditBodyV1) -> AuditEntry {
    let kind = Kind::from_name(&body.kind);
    let fields = |bytes: &Option<Vec<u8>>| {
        bytes.as_ref().map(
            |b| match kind.map(|k| records::decode_object(k, &body.id, b)) {
                Some(Ok(o)) => o
                    .fields()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                _ => vec![("record".to_string(), "<undecodable>".to_string())],
            },
        )
    };
    AuditEntry {
        txid: body.txid,
        index: body.index,
        time: WallTime::from_unix_micros(body.time_us),
        user: body.user.clone(),
        source: (&body.source).into(),
        action: body.action.into(),
        kind: body.kind.clone(),
        id: body.id.clone(),
        description: body.description.clone(),
        before: fields(&body.before),
        after: fields(&body.after),
    }
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

fn lock_data_dir(data_dir: &Path) -> Result<nix::fcntl::Flock<File>, StoreError> {
    let path = data_dir.join("kpbxd.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Io(format!("cannot open {}", path.display()), e))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| StoreError::Locked(data_dir.to_path_buf()))
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests;
