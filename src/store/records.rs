//! On-disk records: the store's ABI.
//!
//! Every value written to LMDB is a postcard-encoded enum whose variant is the
//! record's version (`V1`, later `V2`...). A new version is a new variant;
//! old variants stay decodable forever and are converted to the current
//! domain type here. Domain types (`model`) never derive `Serialize`: this
//! module is the only place that knows the layout, and the golden-byte tests
//! at the bottom fail if a layout changes by accident.

use serde::{Deserialize, Serialize};

use crate::model::{Action, Kind, Object, Setting, SettingKey, Source};

/// Why a record could not be turned back into a domain value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------- objects

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
enum SettingRecord {
    V1 { value: String },
}

/// Encodes an object's value (its key holds kind and id).
pub fn encode_object(object: &Object) -> Vec<u8> {
    let record = match object {
        Object::Setting(s) => SettingRecord::V1 {
            value: s.value().to_string(),
        },
    };
    to_bytes(&record)
}

/// Decodes an object stored under `kind`/`id`.
pub fn decode_object(kind: Kind, id: &str, bytes: &[u8]) -> Result<Object, DecodeError> {
    match kind {
        Kind::Setting => {
            let SettingRecord::V1 { value } = from_bytes(bytes)?;
            let key = SettingKey::from_name(id)
                .ok_or_else(|| DecodeError(format!("unknown setting {id:?}")))?;
            Setting::new(key, &value)
                .map(Object::Setting)
                .map_err(DecodeError)
        }
    }
}

/// The LMDB key of an object: kind name, NUL, id.
pub fn object_key(kind: Kind, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(kind.as_str().len() + 1 + id.len());
    key.extend_from_slice(kind.as_str().as_bytes());
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key
}

/// The key prefix of every object of `kind`.
pub fn kind_prefix(kind: Kind) -> Vec<u8> {
    object_key(kind, "")
}

/// Splits an object key back into kind and id.
pub fn split_object_key(key: &[u8]) -> Result<(Kind, String), DecodeError> {
    let bad = || DecodeError("malformed object key".to_string());
    let nul = key.iter().position(|&b| b == 0).ok_or_else(bad)?;
    let kind = std::str::from_utf8(&key[..nul]).map_err(|_| bad())?;
    let kind =
        Kind::from_name(kind).ok_or_else(|| DecodeError(format!("unknown kind {kind:?}")))?;
    let id = std::str::from_utf8(&key[nul + 1..]).map_err(|_| bad())?;
    Ok((kind, id.to_string()))
}

// ---------------------------------------------------------------- audit

/// The hashed part of an audit entry.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct AuditBodyV1 {
    pub txid: u64,
    pub index: u32,
    /// UTC, microseconds since the Unix epoch.
    pub time_us: i64,
    pub user: String,
    pub source: SourceV1,
    pub action: ActionV1,
    pub kind: String,
    pub id: String,
    pub description: String,
    /// The object's record before and after the change (`encode_object`).
    pub before: Option<Vec<u8>>,
    pub after: Option<Vec<u8>>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionV1 {
    Create,
    Update,
    Delete,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum SourceV1 {
    Console,
    Address(std::net::IpAddr),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum AuditRecord {
    V1 {
        body: AuditBodyV1,
        prev_hash: [u8; 32],
        hash: [u8; 32],
    },
}

impl From<Action> for ActionV1 {
    fn from(a: Action) -> ActionV1 {
        match a {
            Action::Create => ActionV1::Create,
            Action::Update => ActionV1::Update,
            Action::Delete => ActionV1::Delete,
        }
    }
}

impl From<ActionV1> for Action {
    fn from(a: ActionV1) -> Action {
        match a {
            ActionV1::Create => Action::Create,
            ActionV1::Update => Action::Update,
            ActionV1::Delete => Action::Delete,
        }
    }
}

impl From<&Source> for SourceV1 {
    fn from(s: &Source) -> SourceV1 {
        match s {
            Source::Console => SourceV1::Console,
            Source::Address(ip) => SourceV1::Address(*ip),
        }
    }
}

impl From<&SourceV1> for Source {
    fn from(s: &SourceV1) -> Source {
        match s {
            SourceV1::Console => Source::Console,
            SourceV1::Address(ip) => Source::Address(*ip),
        }
    }
}

/// The audit key: transaction id then index within it, big-endian so that
/// LMDB's byte order is the log's order.
pub fn audit_key(txid: u64, index: u32) -> [u8; 12] {
    let mut key = [0u8; 12];
    key[..8].copy_from_slice(&txid.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

pub fn split_audit_key(key: &[u8]) -> Option<(u64, u32)> {
    let key: &[u8; 12] = key.try_into().ok()?;
    let (tx, ix) = key.split_at(8);
    Some((
        u64::from_be_bytes(tx.try_into().ok()?),
        u32::from_be_bytes(ix.try_into().ok()?),
    ))
}

/// The chain hash of an entry: SHA-256 over a domain tag, the previous
/// entry's hash and the body's encoding.
pub fn chain_hash(prev: &[u8; 32], body: &AuditBodyV1) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"kpbxd-audit-v1\0");
    h.update(prev);
    h.update(to_bytes(body));
    h.finalize().into()
}

pub fn encode_audit(record: &AuditRecord) -> Vec<u8> {
    to_bytes(record)
}

pub fn decode_audit(bytes: &[u8]) -> Result<AuditRecord, DecodeError> {
    from_bytes(bytes)
}

// ---------------------------------------------------------------- meta

/// The identity of a data dir, written once when it is created.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum StoreIdRecord {
    V1 { magic: [u8; 8], created_us: i64 },
}

pub const MAGIC: [u8; 8] = *b"KPBXDSTO";

/// The head of the audit chain: the last entry's key and hash, and where a
/// verifier starts (an anchor, moved forward when old entries are pruned).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainV1 {
    pub next_txid: u64,
    pub head_key: Option<(u64, u32)>,
    pub head_hash: [u8; 32],
    pub anchor_key: Option<(u64, u32)>,
    pub anchor_prev_hash: [u8; 32],
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum ChainRecord {
    V1(ChainV1),
}

pub fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing plain data into a Vec cannot fail.
    postcard::to_stdvec(value).unwrap_or_default()
}

pub fn from_bytes<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, DecodeError> {
    postcard::from_bytes(bytes).map_err(|e| DecodeError(format!("undecodable record: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_record_layout_is_pinned() {
        let s = Object::Setting(Setting::new(SettingKey::Hostname, "pbx").unwrap());
        // Variant 0 (V1), string length 3, "pbx".
        assert_eq!(encode_object(&s), [0, 3, b'p', b'b', b'x']);
        assert_eq!(
            decode_object(Kind::Setting, "hostname", &[0, 3, b'p', b'b', b'x']).unwrap(),
            s
        );
    }

    #[test]
    fn audit_record_layout_is_pinned() {
        let body = AuditBodyV1 {
            txid: 1,
            index: 0,
            time_us: 2,
            user: "u".into(),
            source: SourceV1::Console,
            action: ActionV1::Create,
            kind: "k".into(),
            id: "i".into(),
            description: "d".into(),
            before: None,
            after: Some(vec![9]),
        };
        let bytes = to_bytes(&body);
        assert_eq!(
            bytes,
            [
                1, 0, 4, 1, b'u', 0, 0, 1, b'k', 1, b'i', 1, b'd', 0, 1, 1, 9
            ]
        );
        let h = chain_hash(&[0; 32], &body);
        assert_ne!(h, chain_hash(&[1; 32], &body));
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x9e3779b97f4a7c15u64;
        for len in 0..2000usize {
            let bytes: Vec<u8> = (0..len % 97)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = decode_audit(&bytes);
            let _ = decode_object(Kind::Setting, "hostname", &bytes);
            let _ = split_object_key(&bytes);
            let _ = split_audit_key(&bytes);
        }
    }

    #[test]
    fn keys_round_trip() {
        let k = object_key(Kind::Setting, "sip_port");
        assert_eq!(
            split_object_key(&k).unwrap(),
            (Kind::Setting, "sip_port".to_string())
        );
        assert_eq!(split_audit_key(&audit_key(7, 3)), Some((7, 3)));
        assert!(audit_key(1, u32::MAX) < audit_key(2, 0));
    }
}
