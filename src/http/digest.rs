//! HTTP Digest access authentication (RFC 7616) for per-device credentials.
//!
//! Pure: the server secret, the time and the client address are inputs.
//!
//! * Algorithms MD5 (what phones implement) and SHA-256, `qop=auth`, and the
//!   RFC 2069 form without `qop` that some old firmware still sends.
//! * Nonces are stateless: `<time hex>.<MAC>`, where MAC is an HMAC-SHA256
//!   of the time and the client's address under the server's secret. A
//!   nonce is valid for [`NONCE_LIFETIME`]; an older one with the right
//!   password gets a fresh challenge with `stale=true`, so the phone retries
//!   without asking anyone. The nonce count is not tracked (a captured
//!   request can be replayed within the nonce's lifetime and only from the
//!   same address; it only ever yields the same file).
//! * The `uri` parameter must be the request's path, so a response computed
//!   for one file does not open another.
//! * Comparisons of secrets take constant time.

/// How long a nonce is accepted, in seconds.
pub const NONCE_LIFETIME: u64 = 300;

/// Longest `Authorization` value considered.
pub const MAX_AUTHORIZATION: usize = 2048;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hash(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex(&<md5::Md5 as md5::Digest>::digest(data)),
            Algorithm::Sha256 => hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The parameters of an `Authorization: Digest ...` header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
}

/// Parses an `Authorization` header value; `None` unless it is a
/// well-formed Digest header with every required parameter.
pub fn parse(value: &str) -> Option<Credentials> {
    if value.len() > MAX_AUTHORIZATION {
        return None;
    }
    let (scheme, mut rest) = value.trim_start().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut c = Credentials::default();
    let mut seen = 0u32;
    loop {
        rest = rest.trim_start_matches(|ch: char| ch == ',' || ch.is_ascii_whitespace());
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest.split_once('=')?;
        let name = name.trim();
        let after = after.trim_start();
        let (val, next) = if let Some(q) = after.strip_prefix('"') {
            // Quoted string with backslash escapes.
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, ch)) = chars.next() {
                match ch {
                    '\\' => out.push(chars.next()?.1),
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    _ => out.push(ch),
                }
            }
            (out, &q[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        rest = next;
        let slot = match name.to_ascii_lowercase().as_str() {
            "username" => (0, Some(&mut c.username)),
            "realm" => (1, Some(&mut c.realm)),
            "nonce" => (2, Some(&mut c.nonce)),
            "uri" => (3, Some(&mut c.uri)),
            "response" => (4, Some(&mut c.response)),
            "algorithm" => {
                c.algorithm = Some(val);
                continue;
            }
            "qop" => {
                c.qop = Some(val);
                continue;
            }
            "nc" => {
                c.nc = Some(val);
                continue;
            }
            "cnonce" => {
                c.cnonce = Some(val);
                continue;
            }
            "opaque" => {
                c.opaque = Some(val);
                continue;
            }
            _ => continue,
        };
        if let (bit, Some(field)) = slot {
            if seen & (1 << bit) != 0 {
                return None;
            }
            seen |= 1 << bit;
            *field = val;
        }
    }
    (seen == 0b11111).then_some(c)
}

/// The server side: realm and nonce secret.
#[derive(Clone)]
pub struct Verifier {
    pub realm: String,
    secret: [u8; 32],
}

/// The outcome of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// No usable credentials, or wrong ones: challenge again.
    Challenge,
    /// Right password, expired nonce: challenge with `stale=true`.
    Stale,
}

impl Verifier {
    pub fn new(realm: &str, secret: [u8; 32]) -> Verifier {
        Verifier {
            realm: realm.to_string(),
            secret,
        }
    }

    fn nonce_mac(&self, time: u64, client: &str) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.secret);
        let mut m = ring::hmac::Context::with_key(&key);
        m.update(&time.to_be_bytes());
        m.update(client.as_bytes());
        hex(&m.sign().as_ref()[..16])
    }

    /// A nonce for `client` (its address) at `now` (Unix seconds).
    pub fn nonce(&self, now: u64, client: &str) -> String {
        format!("{now:x}.{}", self.nonce_mac(now, client))
    }

    /// The `WWW-Authenticate` values to send (MD5 first: what phones use).
    pub fn challenges(&self, now: u64, client: &str, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now, client);
        [Algorithm::Md5, Algorithm::Sha256]
            .iter()
            .map(|a| {
                format!(
                    "Digest realm=\"{}\", qop=\"auth\", algorithm={}, nonce=\"{nonce}\"{}",
                    self.realm,
                    a.name(),
                    if stale { ", stale=true" } else { "" }
                )
            })
            .collect()
    }

    /// Checks `authorization` for a request of `method` from `client`,
    /// against `user`/`password`; `uri_is_target` says whether the `uri`
    /// parameter names the request's target.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &self,
        authorization: Option<&str>,
        method: &str,
        uri_is_target: &dyn Fn(&str) -> bool,
        client: &str,
        now: u64,
        user: &str,
        password: &str,
    ) -> Verdict {
        let Some(c) = authorization.and_then(parse) else {
            return Verdict::Challenge;
        };
        let algorithm = match c
            .algorithm
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("MD5") => Algorithm::Md5,
            Some("SHA-256") => Algorithm::Sha256,
            _ => return Verdict::Challenge,
        };
        if c.realm != self.realm
            || !uri_is_target(&c.uri)
            || !constant_time_eq(c.username.as_bytes(), user.as_bytes())
        {
            return Verdict::Challenge;
        }
        let Some((time, mac)) = c.nonce.split_once('.') else {
            return Verdict::Challenge;
        };
        let Ok(time) = u64::from_str_radix(time, 16) else {
            return Verdict::Challenge;
        };
        if !constant_time_eq(mac.as_bytes(), self.nonce_mac(time, client).as_bytes()) {
            return Verdict::Challenge;
        }
        let ha1 = algorithm.hash(format!("{}:{}:{password}", c.username, self.realm).as_bytes());
        let ha2 = algorithm.hash(format!("{method}:{}", c.uri).as_bytes());
        let expected = match c.qop.as_deref() {
            Some("auth") => {
                let (Some(nc), Some(cnonce)) = (&c.nc, &c.cnonce) else {
                    return Verdict::Challenge;
                };
                algorithm.hash(format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", c.nonce).as_bytes())
            }
            None => algorithm.hash(format!("{ha1}:{}:{ha2}", c.nonce).as_bytes()),
            Some(_) => return Verdict::Challenge,
        };
        if !constant_time_eq(
            expected.as_bytes(),
            c.response.to_ascii_lowercase().as_bytes(),
        ) {
            return Verdict::Challenge;
        }
        if time > now || now - time > NONCE_LIFETIME {
            return Verdict::Stale;
        }
        Verdict::Ok
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 7616 section 3.9.1: the SHA-256 and MD5 examples.
    #[test]
    fn rfc7616_examples() {
        let ha1 = Algorithm::Md5.hash(b"Mufasa:http-auth@example.org:Circle of Life");
        let ha2 = Algorithm::Md5.hash(b"GET:/dir/index.html");
        let r = Algorithm::Md5.hash(
            format!(
                "{ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ:auth:{ha2}"
            )
            .as_bytes(),
        );
        assert_eq!(r, "8ca523f5e9506fed4657c9700eebdbec");
        let ha1 = Algorithm::Sha256.hash(b"Mufasa:http-auth@example.org:Circle of Life");
        let ha2 = Algorithm::Sha256.hash(b"GET:/dir/index.html");
        let r = Algorithm::Sha256.hash(
            format!(
                "{ha1}:7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v:00000001:f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ:auth:{ha2}"
            )
            .as_bytes(),
        );
        assert_eq!(
            r,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    fn answer(
        v: &Verifier,
        nonce: &str,
        user: &str,
        pass: &str,
        uri: &str,
        alg: Algorithm,
    ) -> String {
        let ha1 = alg.hash(format!("{user}:{}:{pass}", v.realm).as_bytes());
        let ha2 = alg.hash(format!("GET:{uri}").as_bytes());
        let resp = alg.hash(format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}").as_bytes());
        format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm={}, qop=auth, nc=00000001, cnonce=\"abc\", response=\"{resp}\"",
            v.realm,
            alg.name()
        )
    }

    #[test]
    fn round_trip_and_every_refusal() {
        let v = Verifier::new("kpbx provisioning", [7; 32]);
        let ip = "198.51.100.7";
        let nonce = v.nonce(1000, ip);
        let uri = "/provisioning/000413aabbcc.xml";
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let good = answer(&v, &nonce, "phone", "pw", uri, alg);
            assert_eq!(
                v.check(
                    Some(&good),
                    "GET",
                    &|u: &str| u == uri,
                    ip,
                    1010,
                    "phone",
                    "pw"
                ),
                Verdict::Ok
            );
            // Wrong password, user, uri, address, method, or a forged nonce.
            assert_eq!(
                v.check(
                    Some(&good),
                    "GET",
                    &|u: &str| u == uri,
                    ip,
                    1010,
                    "phone",
                    "px"
                ),
                Verdict::Challenge
            );
            assert_eq!(
                v.check(
                    Some(&good),
                    "GET",
                    &|u: &str| u == uri,
                    ip,
                    1010,
                    "other",
                    "pw"
                ),
                Verdict::Challenge
            );
            assert_eq!(
                v.check(
                    Some(&good),
                    "GET",
                    &|u: &str| u == "/provisioning/x.xml",
                    ip,
                    1010,
                    "phone",
                    "pw"
                ),
                Verdict::Challenge
            );
            assert_eq!(
                v.check(
                    Some(&good),
                    "GET",
                    &|u: &str| u == uri,
                    "198.51.100.8",
                    1010,
                    "phone",
                    "pw"
                ),
                Verdict::Challenge
            );
            assert_eq!(
                v.check(
                    Some(&good),
                    "HEAD",
                    &|u: &str| u == uri,
                    ip,
                    1010,
                    "phone",
                    "pw"
                ),
                Verdict::Challenge
            );
            let forged = answer(
                &v,
                "3e8.00000000000000000000000000000000",
                "phone",
                "pw",
                uri,
                alg,
            );
            assert_eq!(
                v.check(
                    Some(&forged),
                    "GET",
                    &|u: &str| u == uri,
                    ip,
                    1010,
                    "phone",
                    "pw"
                ),
                Verdict::Challenge
            );
            // Expired nonce with the right password: stale.
            assert_eq!(
                v.check(
                    Some(&good),
                    "GET",
                    &|u: &str| u == uri,
                    ip,
                    1000 + NONCE_LIFETIME + 1,
                    "phone",
                    "pw"
                ),
                Verdict::Stale
            );
        }
        assert_eq!(
            v.check(None, "GET", &|u: &str| u == uri, ip, 1010, "phone", "pw"),
            Verdict::Challenge
        );
        assert_eq!(
            v.check(
                Some("Basic cGhvbmU6cHc="),
                "GET",
                &|u: &str| u == uri,
                ip,
                1010,
                "phone",
                "pw"
            ),
            Verdict::Challenge
        );
        let ch = v.challenges(1000, ip, true);
        assert!(
            ch[0].starts_with("Digest realm=\"kpbx provisioning\", qop=\"auth\", algorithm=MD5")
        );
        assert!(ch[1].contains("SHA-256") && ch[1].ends_with("stale=true"));
    }

    #[test]
    fn rfc2069_form_without_qop() {
        let v = Verifier::new("r", [1; 32]);
        let nonce = v.nonce(50, "a");
        let ha1 = Algorithm::Md5.hash(b"u:r:p");
        let ha2 = Algorithm::Md5.hash(b"GET:/f");
        let resp = Algorithm::Md5.hash(format!("{ha1}:{nonce}:{ha2}").as_bytes());
        let h = format!(
            "Digest username=\"u\", realm=\"r\", nonce=\"{nonce}\", uri=\"/f\", response=\"{resp}\""
        );
        assert_eq!(
            v.check(Some(&h), "GET", &|u: &str| u == "/f", "a", 60, "u", "p"),
            Verdict::Ok
        );
    }

    #[test]
    fn parser_is_strict_and_total() {
        assert!(
            parse("Digest username=\"a\", realm=\"b\", nonce=\"c\", uri=\"/d\", response=\"e\"")
                .is_some()
        );
        assert_eq!(
            parse("digest username=\"a\\\"q\", realm=b, nonce=c, uri=/d, response=e")
                .unwrap()
                .username,
            "a\"q"
        );
        for bad in [
            "",
            "Digest",
            "Digest username=\"a\"",
            "Digest username=\"a, realm=\"b\"",
            "Digest username=\"a\", username=\"b\", realm=\"b\", nonce=\"c\", uri=\"/d\", response=\"e\"",
            "Basic abc",
            "Digest =,=,=",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
        assert!(parse(&"x".repeat(MAX_AUTHORIZATION + 1)).is_none());
        for s in [
            "Digest a=\"\\",
            "Digest a=\"é\\",
            "Digest \u{0}=\"",
            "Digest a",
        ] {
            let _ = parse(s);
        }
    }
}
