//! API sessions and login lockout: their records in the operational data
//! tables (`Table::Session`, `Table::LoginFailure`) and the decisions over
//! them, with time as an argument.
//!
//! A session is stored under the SHA-256 of its token, never the token; a
//! stolen store does not give live tokens.

use serde::{Deserialize, Serialize};
use sha2::Digest;

/// `Table::Session`, key = SHA-256(token).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum SessionRecord {
    V1 {
        user: String,
        /// The client address at login.
        address: std::net::IpAddr,
        created_us: i64,
        expires_us: i64,
    },
}

/// `Table::LoginFailure`, key = `user NUL address`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum FailureRecord {
    V1 {
        /// Failures since the last success or lockout.
        count: u32,
        /// Locked until then (UTC µs); 0 when not locked.
        locked_until_us: i64,
    },
}

pub fn session_key(token: &str) -> Vec<u8> {
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

pub fn failure_key(user: &str, address: std::net::IpAddr) -> Vec<u8> {
    let mut k = user.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(address.to_string().as_bytes());
    k
}

pub fn encode<T: Serialize>(r: &T) -> Vec<u8> {
    postcard::to_stdvec(r).unwrap_or_default()
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    postcard::from_bytes(bytes).ok()
}

/// Seconds of lockout left at `now_us`, if locked.
pub fn locked_for(failure: Option<&FailureRecord>, now_us: i64) -> Option<u64> {
    let FailureRecord::V1 {
        locked_until_us, ..
    } = failure?;
    (*locked_until_us > now_us).then(|| ((*locked_until_us - now_us) as u64).div_ceil(1_000_000))
}

/// The record after one more failure: locked for `lock_us` once `limit`
/// failures are reached (the count then starts again).
pub fn after_failure(
    failure: Option<&FailureRecord>,
    now_us: i64,
    limit: u32,
    lock_us: i64,
) -> FailureRecord {
    let count = match failure {
        Some(FailureRecord::V1 {
            count,
            locked_until_us,
        }) if *locked_until_us <= now_us => count + 1,
        Some(FailureRecord::V1 { count, .. }) => *count,
        None => 1,
    };
    if count >= limit {
        FailureRecord::V1 {
            count: 0,
            locked_until_us: now_us.saturating_add(lock_us),
        }
    } else {
        FailureRecord::V1 {
            count,
            locked_until_us: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_after_the_limit_and_for_its_time() {
        let mut f: Option<FailureRecord> = None;
        for _ in 0..2 {
            f = Some(after_failure(f.as_ref(), 0, 3, 10_000_000));
            assert_eq!(locked_for(f.as_ref(), 0), None);
        }
        f = Some(after_failure(f.as_ref(), 5, 3, 10_000_000));
        assert_eq!(locked_for(f.as_ref(), 5), Some(10));
        assert_eq!(locked_for(f.as_ref(), 10_000_005), None);
    }

    #[test]
    fn record_layouts_are_pinned() {
        let s = SessionRecord::V1 {
            user: "a".into(),
            address: "127.0.0.1".parse().unwrap(),
            created_us: 1,
            expires_us: 2,
        };
        assert_eq!(encode(&s), [0, 1, b'a', 0, 127, 0, 0, 1, 2, 4]);
        let f = FailureRecord::V1 {
            count: 2,
            locked_until_us: 0,
        };
        assert_eq!(encode(&f), [0, 2, 0]);
        assert_eq!(decode::<FailureRecord>(&[0, 2, 0]), Some(f));
    }
}
