//! Password hashes: PBKDF2-HMAC-SHA256 (ring, already linked for TLS) with
//! a 16-byte random salt, stored as
//! `pbkdf2-sha256$ITERATIONS$SALT_HEX$HASH_HEX`. The iteration count is
//! stored with the hash, so it can be raised without invalidating old ones.

use std::num::NonZeroU32;

use ring::pbkdf2;

/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256.
pub const ITERATIONS: u32 = 600_000;
const SCHEME: &str = "pbkdf2-sha256";
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;
/// Longest password accepted (bytes).
pub const MAX_LEN: usize = 256;
/// Shortest password accepted (characters).
pub const MIN_LEN: usize = 8;

/// Checks a new password's length.
pub fn check_new(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_LEN {
        return Err(format!("password must be at least {MIN_LEN} characters"));
    }
    if password.len() > MAX_LEN {
        return Err(format!("password must be at most {MAX_LEN} bytes"));
    }
    Ok(())
}

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str, iterations: u32) -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut salt = [0u8; SALT_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| "no randomness available".to_string())?;
    Ok(hash_with_salt(password, iterations, &salt))
}

fn hash_with_salt(password: &str, iterations: u32, salt: &[u8]) -> String {
    let n = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
    let mut out = [0u8; HASH_LEN];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        n,
        salt,
        password.as_bytes(),
        &mut out,
    );
    format!("{SCHEME}${}${}${}", n, hex(salt), hex(&out))
}

/// Whether `password` matches `stored`; a malformed or empty `stored`
/// matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    let mut parts = stored.split('$');
    let (Some(SCHEME), Some(n), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Some(n), Some(salt), Some(hash)) = (
        n.parse::<u32>().ok().and_then(NonZeroU32::new),
        unhex(salt),
        unhex(hash),
    ) else {
        return false;
    };
    if password.len() > MAX_LEN {
        return false;
    }
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        n,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash("correct horse", 1000).unwrap();
        let b = hash("correct horse", 1000).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("pbkdf2-sha256$1000$"));
        assert!(verify("correct horse", &a));
        assert!(!verify("correct horsf", &a));
        for bad in [
            "",
            "x",
            "pbkdf2-sha256$0$00$00",
            "pbkdf2-sha256$10$zz$00",
            "md5$1$a$b",
        ] {
            assert!(!verify("correct horse", bad), "{bad}");
        }
        assert!(check_new("short").is_err());
        assert!(check_new("long enough").is_ok());
    }

    #[test]
    fn rfc_7914_vector() {
        // RFC 7914 section 11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1.
        let h = hash_with_salt("passwd", 1, b"salt");
        assert!(h.ends_with("$55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"));
    }
}
