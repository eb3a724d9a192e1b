//! API sessions: their records in the operational data table
//! `Table::Session`. (Login failures are counted in memory only,
//! `auth::lockout`; the old `Table::LoginFailure` is emptied at start.)
//!
//! A session is stored under the SHA-256 of its token, never the token; a
//! stolen store does not give live tokens.

use serde::{Deserialize, Serialize};

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
    /// Since issue 17: with the [`fingerprint`] of the user at login; a
    /// session whose user no longer matches it is over. (`V1` sessions are
    /// refused: log in again.)
    V2 {
        user: String,
        address: std::net::IpAddr,
        created_us: i64,
        expires_us: i64,
        fingerprint: Vec<u8>,
    },
}

impl SessionRecord {
    pub fn expires_us(&self) -> i64 {
        match self {
            SessionRecord::V1 { expires_us, .. } | SessionRecord::V2 { expires_us, .. } => {
                *expires_us
            }
        }
    }
}

/// What a session depends on: the user's password hash (salted, so a
/// deleted and re-created user differs too), role and tenant. Any change
/// ends its sessions.
pub fn fingerprint(user: &crate::model::User) -> Vec<u8> {
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [
        user.name.as_str(),
        user.password_hash.as_str(),
        user.role.as_str(),
        user.tenant.as_deref().unwrap_or(""),
    ] {
        h.update(&(part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finish().as_ref().to_vec()
}

pub fn session_key(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

pub fn encode<T: Serialize>(r: &T) -> Vec<u8> {
    postcard::to_stdvec(r).unwrap_or_default()
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Option<T> {
    postcard::from_bytes(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layouts_are_pinned() {
        let s = SessionRecord::V1 {
            user: "a".into(),
            address: "127.0.0.1".parse().unwrap(),
            created_us: 1,
            expires_us: 2,
        };
        assert_eq!(encode(&s), [0, 1, b'a', 0, 127, 0, 0, 1, 2, 4]);
    }
}
