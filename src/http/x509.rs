//! The self-signed certificate, written in DER (pure; ring makes the key and signs).
//!
//! What it writes is what kpbxd needs and no more (RFC 5280): version 3, a serial number,
//! ecdsa-with-SHA256, issuer = subject = one commonName, the validity, the P-256 public key,
//! and one extension, subjectAltName (DNS names and IP addresses, not critical since the
//! subject is not empty). It replaced rcgen, which wrote the same fields for kpbxd's
//! parameters, for the binary's size budget (docs/size.md).

use ring::rand::SecureRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use std::net::IpAddr;

// Object identifiers, DER content bytes.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]; // 1.2.840.10045.2.1
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]; // 1.2.840.10045.3.1.7
const OID_ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]; // 1.2.840.10045.4.3.2
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03]; // 2.5.4.3
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11]; // 2.5.29.17

/// One DER element: tag, definite length, content.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// A DER time: UTCTime for the years 1950-2049, GeneralizedTime otherwise (RFC 5280
/// 4.1.2.5), from Unix seconds.
fn time(unix: u64) -> Vec<u8> {
    let (year, month, day) = super::response::civil_from_days(unix / 86_400);
    let secs = unix % 86_400;
    let hms = format!(
        "{:02}{:02}{:02}{:02}{:02}Z",
        month,
        day,
        secs / 3_600,
        secs / 60 % 60,
        secs % 60
    );
    if (1950..2050).contains(&year) {
        tlv(0x17, format!("{:02}{hms}", year % 100).as_bytes())
    } else {
        tlv(0x18, format!("{year:04}{hms}").as_bytes())
    }
}

/// subjectAltName entries: an IP address as iPAddress, anything else as dNSName (which
/// must be ASCII without controls or spaces).
fn general_names(names: &[String]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for n in names {
        match n.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => out.extend(tlv(0x87, &a.octets())),
            Ok(IpAddr::V6(a)) => out.extend(tlv(0x87, &a.octets())),
            Err(_) => {
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(format!("not a DNS name: {n:?}"));
                }
                out.extend(tlv(0x82, n.as_bytes()));
            }
        }
    }
    Ok(tlv(0x30, &out))
}

/// A self-signed certificate (DER) for `names` with commonName `cn`, valid from
/// `not_before` to `not_after` (Unix seconds), and its new key (PKCS#8 DER).
pub fn self_signed(
    names: &[String],
    cn: &str,
    not_before: u64,
    not_after: u64,
    rng: &dyn SecureRandom,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, rng)
        .map_err(|_| "key generation failed".to_string())?;
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), rng)
        .map_err(|_| "generated key rejected".to_string())?;
    // A random positive serial of 16 bytes whose first byte is not zero (minimal INTEGER).
    let mut serial = [0u8; 16];
    rng.fill(&mut serial)
        .map_err(|_| "no random serial".to_string())?;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    let alg = seq(&[&tlv(0x06, OID_ECDSA_SHA256)]);
    let name = seq(&[&tlv(
        0x31,
        &seq(&[&tlv(0x06, OID_COMMON_NAME), &tlv(0x0c, cn.as_bytes())]),
    )]);
    let mut bits = vec![0u8];
    bits.extend_from_slice(key.public_key().as_ref());
    let spki = seq(&[
        &seq(&[&tlv(0x06, OID_EC_PUBLIC_KEY), &tlv(0x06, OID_PRIME256V1)]),
        &tlv(0x03, &bits),
    ]);
    let san = seq(&[
        &tlv(0x06, OID_SUBJECT_ALT_NAME),
        &tlv(0x04, &general_names(names)?),
    ]);
    let tbs = seq(&[
        &tlv(0xa0, &tlv(0x02, &[2])),
        &tlv(0x02, &serial),
        &alg,
        &name,
        &seq(&[&time(not_before), &time(not_after)]),
        &name,
        &spki,
        &tlv(0xa3, &seq(&[&san])),
    ]);
    let sig = key
        .sign(rng, &tbs)
        .map_err(|_| "signing failed".to_string())?;
    let mut sig_bits = vec![0u8];
    sig_bits.extend_from_slice(sig.as_ref());
    let cert = seq(&[&tbs, &alg, &tlv(0x03, &sig_bits)]);
    Ok((cert, pkcs8.as_ref().to_vec()))
}

/// PEM (RFC 7468) of DER bytes under `label`, 64 columns.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = crate::redirect::base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_or_generalized() {
        assert_eq!(time(0), tlv(0x17, b"700101000000Z"));
        // 2026-12-06 03:04:05
        assert_eq!(time(1_796_526_245), tlv(0x17, b"261206030405Z"));
        // 2000-02-29 23:59:59
        assert_eq!(time(951_868_799), tlv(0x17, b"000229235959Z"));
        // 2050-01-01: GeneralizedTime
        assert_eq!(time(2_524_608_000), tlv(0x18, b"20500101000000Z"));
    }

    #[test]
    fn long_lengths_and_pem() {
        let t = tlv(0x04, &[7u8; 300]);
        assert_eq!(&t[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(
            pem("X", b"foob"),
            "-----BEGIN X-----\nZm9vYg==\n-----END X-----\n"
        );
        assert_eq!(
            pem("X", b"fooba"),
            "-----BEGIN X-----\nZm9vYmE=\n-----END X-----\n"
        );
        assert_eq!(
            pem("X", b"foobar"),
            "-----BEGIN X-----\nZm9vYmFy\n-----END X-----\n"
        );
    }

    /// OpenSSL (a real peer) parses the certificate, finds its names and verifies its
    /// signature with it as its own trust anchor.
    #[test]
    fn openssl_verifies_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names = [
            "pbx.example".to_owned(),
            "192.0.2.7".to_owned(),
            "::1".to_owned(),
        ];
        let rng = ring::rand::SystemRandom::new();
        let now = 1_796_526_245;
        let (cert, key) = self_signed(
            &names,
            "kpbx self-signed",
            now - 86_400,
            now + 825 * 86_400,
            &rng,
        )
        .expect("certificate");
        let c = dir.path().join("c.pem");
        std::fs::write(&c, pem("CERTIFICATE", &cert)).expect("write");
        let k = dir.path().join("k.pem");
        std::fs::write(&k, pem("PRIVATE KEY", &key)).expect("write");
        let openssl = |args: &[&str]| {
            let o = std::process::Command::new("openssl")
                .args(args)
                .output()
                .expect("openssl is missing: apt-get install openssl");
            let text = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "openssl {args:?}: {text}");
            text
        };
        let c = c.to_str().expect("utf-8");
        let text = openssl(&["x509", "-in", c, "-noout", "-text"]);
        for want in [
            "Version: 3 (0x2)",
            "Signature Algorithm: ecdsa-with-SHA256",
            "Issuer: CN = kpbx self-signed",
            "Subject: CN = kpbx self-signed",
            "Not Before: Dec  5 03:04:05 2026 GMT",
            "Not After : Mar 10 03:04:05 2029 GMT",
            "ASN1 OID: prime256v1",
            "DNS:pbx.example, IP Address:192.0.2.7, IP Address:0:0:0:0:0:0:0:1",
        ] {
            assert!(text.contains(want), "{want:?} not in:\n{text}");
        }
        for check in [
            ["-verify_ip", "192.0.2.7"],
            ["-verify_hostname", "pbx.example"],
        ] {
            let mut args = vec!["verify", "-attime", "1796526245", "-CAfile", c];
            args.extend(check);
            args.push(c);
            assert!(openssl(&args).contains(": OK"));
        }
        // The key is the certificate's.
        let k = k.to_str().expect("utf-8");
        let from_key = openssl(&["pkey", "-in", k, "-pubout"]);
        let from_cert = openssl(&["x509", "-in", c, "-noout", "-pubkey"]);
        assert_eq!(from_key, from_cert);
    }

    #[test]
    fn bad_dns_name_is_an_error() {
        assert!(general_names(&["a b".to_owned()]).is_err());
        assert!(general_names(&[String::new()]).is_err());
        assert!(general_names(&["::1".to_owned(), "pbx.example".to_owned()]).is_ok());
    }
}
