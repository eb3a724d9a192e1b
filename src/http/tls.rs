//! rustls server configuration (ring provider) from PEM, or a self-signed pair generated
//! once and reused until it nears expiry or the box's names and addresses change.

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn invalid(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"))
}

/// Entries of the server-side session cache (TLS 1.2 session IDs, and TLS
/// 1.3 resumption for clients that ignore tickets): a site's boot storm of a
/// few thousand phones, each entry a few hundred bytes.
pub const SESSION_CACHE: usize = 4096;

/// The ring provider's cipher suites, cheapest first: AES-128-GCM with SHA-256, then
/// ChaCha20-Poly1305, then AES-256-GCM with SHA-384 (each version's list keeps them all).
/// The server picks in this order ([`ServerConfig::ignore_client_order`]): rustls and
/// OpenSSL clients list AES-256-GCM-SHA384 first, and its SHA-384 handshake hashing ran on
/// ring's portable SHA-512 code on the bench's AMD CPU (ring has a vector SHA-512 for Intel
/// only), 7 % of the server's CPU in a boot storm, where SHA-256 has SHA-NI; AES-128 is also
/// 10 rounds to AES-256's 14 for the firmware. TLS 1.3 clients must offer AES-128-GCM-SHA256
/// (RFC 8446, 9.1), and SHA-256 is cheaper than SHA-384 for a phone's CPU as well.
fn suites() -> Vec<rustls::SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite as cs;
    let mut all = vec![
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ];
    // Whatever the provider has that the list above does not name stays, last.
    for s in rustls::crypto::ring::DEFAULT_CIPHER_SUITES {
        if !all.iter().any(|a| a.suite() == s.suite()) {
            all.push(*s);
        }
    }
    all
}

/// Builds a TLS 1.2/1.3 server config with the ring provider and session
/// resumption on: stateless tickets (ChaCha20-Poly1305 keys rotated every
/// 6 h, a ticket accepted for up to 12 h, keys never leave the process) and
/// a [`SESSION_CACHE`]-entry session-ID cache for TLS 1.2 clients without
/// ticket support. A resumed handshake skips the certificate signature.
/// Cipher suites in the server's order of cost ([`suites`]); one TLS 1.3 ticket per full
/// handshake (rustls sends two by default: a phone resumes with one, and every resumption
/// brings a fresh one; each ticket is an encryption and a record for both ends).
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> io::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: suites(),
        ..rustls::crypto::ring::default_provider()
    });
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid("certificate/key", e))?;
    cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
    cfg.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| invalid("ticketer", e))?;
    cfg.ignore_client_order = true;
    cfg.send_tls13_tickets = 1;
    Ok(Arc::new(cfg))
}

/// Loads a certificate chain and a private key (PKCS#8, PKCS#1 or SEC1) from PEM files.
pub fn from_pem_files(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| invalid("certificate file", e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("certificate file", e))?;
    if certs.is_empty() {
        return Err(invalid("certificate file", "no CERTIFICATE block"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| invalid("key file", e))?;
    server_config(certs, key)
}

/// File names used in the self-signed directory.
pub const SELF_CERT: &str = "selfsigned-cert.pem";
pub const SELF_KEY: &str = "selfsigned-key.pem";

/// What the self-signed pair was made for: `not_after` (Unix seconds) on
/// the first line, then one subjectAltName per line.
pub const SELF_META: &str = "selfsigned-names.txt";

/// Validity of a self-signed certificate (the CA/Browser Forum's old
/// ceiling; clients that pin it are not surprised by a short expiry).
pub const SELF_VALID_DAYS: u64 = 825;

/// commonName of the self-signed certificate (issuer and subject).
pub const SELF_CN: &str = "kpbx self-signed";

/// Reissued this long before it expires.
const RENEW_BEFORE_S: u64 = 30 * 86_400;

/// The self-signed certificate's key is ECDSA P-256 (signed with SHA-256), made and used by
/// ring, which the TLS stack links anyway; [`super::x509`] writes the certificate. It was
/// RSA 2048 until 2026-12-06: generating an RSA key needed the `rsa` crate and its big-number
/// code (90,080 bytes of the 5 MB budget, docs/size.md), and a P-256 signature costs the
/// server a fraction of an RSA one in a boot storm. Phones whose firmware offers no ECDSA
/// cipher suite need an operator certificate with an RSA key (`tls_cert`/`tls_key`; README,
/// "HTTPS key type").
/// Loads `dir/selfsigned-{cert,key}.pem`, generating them (ECDSA P-256, written by [`super::x509`],
/// subjectAltNames `names` — IP addresses become IP SANs —, valid from a
/// day before `now_unix` for [`SELF_VALID_DAYS`], both mode 0600, written
/// to a temporary name and renamed) when neither exists, when the pair is
/// within 30 days of expiry, or when `names` changed. Returns the config
/// and the certificate's path (for clients to pin).
pub fn self_signed(
    dir: &Path,
    names: &[String],
    now_unix: u64,
) -> io::Result<(Arc<ServerConfig>, PathBuf)> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let cert = dir.join(SELF_CERT);
    let key = dir.join(SELF_KEY);
    let meta = dir.join(SELF_META);
    let mut wanted: Vec<String> = names.to_vec();
    wanted.sort();
    wanted.dedup();
    let current = std::fs::read_to_string(&meta).ok().and_then(|text| {
        let mut lines = text.lines();
        let not_after = lines.next()?.parse::<u64>().ok()?;
        let mut had: Vec<String> = lines.map(str::to_string).collect();
        had.sort();
        Some((not_after, had))
    });
    let fresh = match (cert.exists(), key.exists(), current) {
        // Neither: first start.
        (false, false, _) => false,
        (true, true, Some((not_after, had))) => {
            had == wanted && now_unix.saturating_add(RENEW_BEFORE_S) < not_after
        }
        // A pair from before the metadata existed: reissue.
        (true, true, None) => false,
        // A key without its certificate (or the reverse): not ours to
        // overwrite silently.
        _ => {
            return Err(invalid(
                "self-signed pair",
                "one of certificate/key is missing",
            ));
        }
    };
    if !fresh {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let start = now_unix.saturating_sub(86_400);
        let not_after = now_unix.saturating_add(SELF_VALID_DAYS * 86_400);
        let rng = ring::rand::SystemRandom::new();
        let (cert_der, key_der) =
            super::x509::self_signed(&wanted, SELF_CN, start, not_after, &rng)
                .map_err(|e| invalid("generate certificate", e))?;
        let write = |path: &Path, data: &str| -> io::Result<()> {
            let tmp = path.with_extension("tmp");
            let _ = std::fs::remove_file(&tmp);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(data.as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        // The certificate goes first when replacing, the key first when
        // creating: a crash in between never leaves a key alone with a
        // certificate it does not match for long (the metadata, written
        // last, is then stale and the pair is reissued on the next start).
        let _ = std::fs::remove_file(&meta);
        write(&key, &super::x509::pem("PRIVATE KEY", &key_der))?;
        write(&cert, &super::x509::pem("CERTIFICATE", &cert_der))?;
        let mut text = format!("{not_after}\n");
        for n in &wanted {
            text.push_str(n);
            text.push('\n');
        }
        write(&meta, &text)?;
    }
    Ok((from_pem_files(&cert, &key)?, cert))
}

#[cfg(test)]
mod tests {
    #[test]
    fn self_signed_is_generated_once_with_0600() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let sub = dir.path().join("tls");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let now = 1_800_000_000;
        let (_, cert) = super::self_signed(&sub, &names, now).expect("generate");
        let first = std::fs::read(&cert).expect("read cert");
        for f in [super::SELF_CERT, super::SELF_KEY] {
            let mode = std::fs::metadata(sub.join(f))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        // ECDSA P-256: id-ecPublicKey (1.2.840.10045.2.1) with prime256v1
        // (1.2.840.10045.3.1.7) in the public key, signed ecdsa-with-SHA256
        // (1.2.840.10045.4.3.2).
        use rustls_pki_types::pem::PemObject as _;
        let der = rustls_pki_types::CertificateDer::from_pem_file(&cert).expect("cert pem");
        let has = |oid: &[u8]| der.windows(oid.len()).any(|w| w == oid);
        assert!(
            has(&[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]),
            "not an EC key"
        );
        assert!(
            has(&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]),
            "not P-256"
        );
        assert!(
            has(&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]),
            "not ecdsa-with-SHA256"
        );
        let (_, again) = super::self_signed(&sub, &names, now + 86_400).expect("reuse");
        assert_eq!(
            std::fs::read(&again).expect("read"),
            first,
            "reused, not regenerated"
        );
        // Close to expiry, or for other names: reissued.
        let late = now + (super::SELF_VALID_DAYS - 10) * 86_400;
        super::self_signed(&sub, &names, late).expect("renew");
        let renewed = std::fs::read(&again).expect("read");
        assert_ne!(renewed, first, "renewed before expiry");
        let more = vec!["localhost".to_owned(), "192.0.2.7".to_owned()];
        super::self_signed(&sub, &more, late).expect("new names");
        assert_ne!(
            std::fs::read(&again).expect("read"),
            renewed,
            "names changed"
        );
        // A key without its certificate is an error, not a silent overwrite.
        std::fs::remove_file(sub.join(super::SELF_CERT)).expect("rm");
        assert!(super::self_signed(&sub, &names, now).is_err());
    }

    #[test]
    fn bad_pem_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = dir.path().join("c.pem");
        let k = dir.path().join("k.pem");
        std::fs::write(&c, "nonsense").expect("write");
        std::fs::write(&k, "nonsense").expect("write");
        assert!(super::from_pem_files(&c, &k).is_err());
        assert!(super::from_pem_files(&dir.path().join("missing"), &k).is_err());
    }
}
