//! rustls server configuration (ring provider) from PEM, or a self-signed pair generated
//! once and reused.

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn invalid(what: &str, e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {e}"))
}

/// Builds a TLS 1.2/1.3 server config with the ring provider.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> io::Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid("certificate/key", e))?;
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

/// Loads `dir/selfsigned-{cert,key}.pem`, generating them first (ECDSA P-256, SANs `names`,
/// both mode 0600, written to a temporary name and renamed) if neither exists. Returns the
/// config and the certificate's path (for clients to pin).
pub fn self_signed(dir: &Path, names: &[String]) -> io::Result<(Arc<ServerConfig>, PathBuf)> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let cert = dir.join(SELF_CERT);
    let key = dir.join(SELF_KEY);
    if !cert.exists() && !key.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let ck = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| invalid("generate certificate", e))?;
        let write = |path: &Path, data: &str| -> io::Result<()> {
            let tmp = path.with_extension("pem.tmp");
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
        // Key first: a crash in between leaves no certificate, which regenerates.
        write(&key, &ck.signing_key.serialize_pem())?;
        write(&cert, &ck.cert.pem())?;
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
        let (_, cert) = super::self_signed(&sub, &names).expect("generate");
        let first = std::fs::read(&cert).expect("read cert");
        for f in [super::SELF_CERT, super::SELF_KEY] {
            let mode = std::fs::metadata(sub.join(f))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        let (_, again) = super::self_signed(&sub, &names).expect("reuse");
        assert_eq!(
            std::fs::read(again).expect("read"),
            first,
            "reused, not regenerated"
        );
        // A key without its certificate is an error, not a silent overwrite.
        std::fs::remove_file(sub.join(super::SELF_CERT)).expect("rm");
        assert!(super::self_signed(&sub, &names).is_err());
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
