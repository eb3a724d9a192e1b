//! rustls server configuration (ring provider) from PEM, or a self-signed pair generated
//! once and reused until it nears expiry or the box's names and addresses change.

use rustls::ServerConfig;
use rustls::SignatureScheme;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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

/// The ring provider with the cipher suites in [`suites`]' order.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::CryptoProvider {
        cipher_suites: suites(),
        ..rustls::crypto::ring::default_provider()
    })
}

/// Builds a TLS 1.2/1.3 server config with the ring provider and session
/// resumption on: stateless tickets (ChaCha20-Poly1305 keys rotated every
/// 6 h, a ticket accepted for up to 12 h, keys never leave the process) and
/// a [`SESSION_CACHE`]-entry session-ID cache for TLS 1.2 clients without
/// ticket support. A resumed handshake skips the certificate signature.
/// Cipher suites in the server's order of cost ([`suites`]); one TLS 1.3 ticket per full
/// handshake (rustls sends two by default: a phone resumes with one, and every resumption
/// brings a fresh one; each ticket is an encryption and a record for both ends).
fn build(
    pick_cert: impl FnOnce(
        rustls::ConfigBuilder<ServerConfig, rustls::server::WantsServerCert>,
    ) -> Result<ServerConfig, rustls::Error>,
) -> io::Result<Arc<ServerConfig>> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls versions", e))?
        .with_no_client_auth();
    let mut cfg = pick_cert(builder).map_err(|e| invalid("certificate/key", e))?;
    cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
    cfg.ticketer = rustls::crypto::ring::Ticketer::new().map_err(|e| invalid("ticketer", e))?;
    cfg.ignore_client_order = true;
    cfg.send_tls13_tickets = 1;
    Ok(Arc::new(cfg))
}

/// A server config ([`build`]) serving one certificate chain to every client.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> io::Result<Arc<ServerConfig>> {
    build(|b| b.with_single_cert(certs, key))
}

/// A server config ([`build`]) holding an ECDSA P-256 certificate and, optionally, an RSA
/// one, each client getting the one [`pick`] chooses from its ClientHello.
pub fn per_client_config(
    ecdsa: Arc<CertifiedKey>,
    rsa: Option<Arc<CertifiedKey>>,
) -> io::Result<Arc<ServerConfig>> {
    build(|b| Ok(b.with_cert_resolver(Arc::new(PerClient { ecdsa, rsa }))))
}

/// Which of the server's certificates a client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    EcdsaP256,
    Rsa,
}

/// The RSA signature schemes ring signs with.
const RSA_SCHEMES: [SignatureScheme; 6] = [
    SignatureScheme::RSA_PSS_SHA256,
    SignatureScheme::RSA_PSS_SHA384,
    SignatureScheme::RSA_PSS_SHA512,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA384,
    SignatureScheme::RSA_PKCS1_SHA512,
];

/// The certificate for a client that `offered` these signature schemes (rustls has already
/// dropped, on TLS 1.2, those that none of the client's cipher suites can use): ECDSA
/// P-256 if it can verify ecdsa_secp256r1_sha256 (every TLS 1.3 client must, RFC 8446
/// 9.1), else RSA if the server has an RSA certificate and the client an RSA scheme, else
/// none (the handshake fails and [`log_refused`] says why).
pub fn pick(offered: &[SignatureScheme], have_rsa: bool) -> Option<KeyType> {
    if offered.contains(&SignatureScheme::ECDSA_NISTP256_SHA256) {
        Some(KeyType::EcdsaP256)
    } else if have_rsa && offered.iter().any(|s| RSA_SCHEMES.contains(s)) {
        Some(KeyType::Rsa)
    } else {
        None
    }
}

/// The certificates of [`per_client_config`].
#[derive(Debug)]
struct PerClient {
    ecdsa: Arc<CertifiedKey>,
    rsa: Option<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for PerClient {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match pick(hello.signature_schemes(), self.rsa.is_some())? {
            KeyType::EcdsaP256 => Some(self.ecdsa.clone()),
            KeyType::Rsa => self.rsa.clone(),
        }
    }
}

/// rustls's error when the resolver returned no certificate ([`PerClient`] is the only
/// resolver that can).
const NO_CERTIFICATE: &str = "no server certificate chain resolved";

/// Whether a failed handshake failed because [`pick`] found no certificate for the client.
pub fn no_certificate_for(e: &io::Error) -> bool {
    matches!(
        e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        Some(rustls::Error::General(m)) if m == NO_CERTIFICATE
    )
}

/// At most one refusal line per this many seconds.
const REFUSAL_LOG_EVERY_S: u64 = 60;

/// Whether a refusal at `now` (Unix seconds) is logged after the last logged one at `last`
/// (0: none yet; a clock set back logs at once).
fn refusal_due(last: u64, now: u64) -> bool {
    last == 0 || now < last || now - last >= REFUSAL_LOG_EVERY_S
}

static REFUSAL_LOGGED_AT: AtomicU64 = AtomicU64::new(0);
static REFUSALS_QUIET: AtomicU64 = AtomicU64::new(0);

/// Logs a handshake refused by [`pick`], at most once a minute (with the count of those
/// not logged since): the client address and what the operator can do.
pub fn log_refused(peer: std::net::SocketAddr, now_unix: u64) {
    if !refusal_due(REFUSAL_LOGGED_AT.load(Relaxed), now_unix) {
        REFUSALS_QUIET.fetch_add(1, Relaxed);
        return;
    }
    REFUSAL_LOGGED_AT.store(now_unix, Relaxed);
    let quiet = REFUSALS_QUIET.swap(0, Relaxed);
    log::warn!(
        "https: TLS handshake from {peer} refused: the client accepts no ECDSA P-256 \
         certificate and no RSA certificate it can use is installed; install one as \
         {RSA_CERT} and {RSA_KEY} in data_dir/tls and restart (README, \"HTTPS key type\"); \
         {quiet} more refused since the last such line"
    );
}

/// Reads a certificate chain and a private key (PKCS#8, PKCS#1 or SEC1) from PEM files.
fn read_pem(
    cert: &Path,
    key: &Path,
) -> io::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| invalid("certificate file", e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("certificate file", e))?;
    if certs.is_empty() {
        return Err(invalid("certificate file", "no CERTIFICATE block"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| invalid("key file", e))?;
    Ok((certs, key))
}

/// A certificate chain and its key from PEM files, checked to match.
fn certified_key(cert: &Path, key: &Path) -> io::Result<Arc<CertifiedKey>> {
    let (certs, key) = read_pem(cert, key)?;
    CertifiedKey::from_der(certs, key, &provider())
        .map(Arc::new)
        .map_err(|e| invalid("certificate/key", e))
}

/// Loads a certificate chain and a private key (PKCS#8, PKCS#1 or SEC1) from PEM files.
pub fn from_pem_files(cert: &Path, key: &Path) -> io::Result<Arc<ServerConfig>> {
    let (certs, key) = read_pem(cert, key)?;
    server_config(certs, key)
}

/// The operator's RSA pair beside the self-signed one (certificate chain in PEM; key in
/// PEM, PKCS#8 or PKCS#1), served to clients that cannot verify ECDSA ([`pick`]).
pub const RSA_CERT: &str = "rsa-cert.pem";
pub const RSA_KEY: &str = "rsa-key.pem";

/// `dir/rsa-{cert,key}.pem` if both exist (an error if only one does, or if the key is
/// not RSA or does not match the certificate).
pub fn rsa_pair(dir: &Path) -> io::Result<Option<Arc<CertifiedKey>>> {
    let (cert, key) = (dir.join(RSA_CERT), dir.join(RSA_KEY));
    match (cert.exists(), key.exists()) {
        (false, false) => Ok(None),
        (true, true) => {
            let pair = certified_key(&cert, &key)
                .map_err(|e| invalid(&format!("{RSA_CERT}/{RSA_KEY}"), e))?;
            if pair.key.algorithm() != rustls::SignatureAlgorithm::RSA {
                return Err(invalid(RSA_KEY, "not an RSA key"));
            }
            Ok(Some(pair))
        }
        _ => Err(invalid(
            "RSA pair",
            format!("{RSA_CERT} and {RSA_KEY} go together; one is missing"),
        )),
    }
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
/// cipher suite get the operator's RSA pair `dir/rsa-{cert,key}.pem` if there is one
/// ([`rsa_pair`], [`pick`]; README, "HTTPS key type").
/// Loads `dir/selfsigned-{cert,key}.pem` (and the RSA pair, if any), generating them (ECDSA P-256, written by [`super::x509`],
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
    let tls = per_client_config(certified_key(&cert, &key)?, rsa_pair(dir)?)?;
    Ok((tls, cert))
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
    fn pick_ecdsa_when_offered_else_rsa_if_installed() {
        use super::{KeyType, pick};
        use rustls::SignatureScheme as S;
        // OpenSSL's default list (TLS 1.2 and 1.3) has both.
        let both = [
            S::ECDSA_NISTP256_SHA256,
            S::RSA_PSS_SHA256,
            S::RSA_PKCS1_SHA256,
        ];
        assert_eq!(pick(&both, false), Some(KeyType::EcdsaP256));
        assert_eq!(pick(&both, true), Some(KeyType::EcdsaP256));
        // RSA only (`-sigalgs RSA-PSS+SHA256:RSA+SHA256`, or only ECDHE-RSA suites on 1.2).
        let rsa = [S::RSA_PSS_SHA256, S::RSA_PKCS1_SHA256];
        assert_eq!(pick(&rsa, true), Some(KeyType::Rsa));
        assert_eq!(pick(&rsa, false), None);
        assert_eq!(
            pick(&[S::RSA_PKCS1_SHA1], true),
            None,
            "SHA-1 is not signed with"
        );
        // ECDSA on other curves only: not the P-256 key.
        let other = [S::ECDSA_NISTP384_SHA384, S::ED25519];
        assert_eq!(pick(&other, true), None);
        assert_eq!(pick(&[], true), None);
    }

    #[test]
    fn refusals_logged_at_most_once_a_minute() {
        use super::refusal_due;
        assert!(refusal_due(0, 1_000));
        assert!(!refusal_due(1_000, 1_000));
        assert!(!refusal_due(1_000, 1_059));
        assert!(refusal_due(1_000, 1_060));
        assert!(refusal_due(1_000, 999), "clock set back");
    }

    #[test]
    fn rsa_pair_is_optional_but_whole_and_rsa() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(super::rsa_pair(dir.path()).expect("none").is_none());
        // Half a pair is an error, not silently ignored.
        std::fs::write(dir.path().join(super::RSA_CERT), "x").expect("write");
        assert!(super::rsa_pair(dir.path()).is_err());
        // An ECDSA pair under the RSA names is refused.
        let names = vec!["localhost".to_owned()];
        let ec = dir.path().join("ec");
        super::self_signed(&ec, &names, 1_800_000_000).expect("generate");
        for (from, to) in [
            (super::SELF_CERT, super::RSA_CERT),
            (super::SELF_KEY, super::RSA_KEY),
        ] {
            std::fs::copy(ec.join(from), dir.path().join(to)).expect("copy");
        }
        let e = super::rsa_pair(dir.path()).expect_err("not RSA");
        assert!(e.to_string().contains("not an RSA key"), "{e}");
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
