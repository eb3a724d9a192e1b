//! Redirection services: telling a vendor's cloud where a phone fresh out of
//! the box should fetch its configuration.
//!
//! Every request and every reading of an answer follows a public source,
//! named next to it; the sources and what they leave open are collected in
//! the README's redirection section. What no source shows is never taken
//! for success: it becomes [`Failure::Unknown`], kept verbatim and retried.
//!
//! * [`hawk`]: Hawk request authentication (Snom SRAPS), pure, with the
//!   specification's example vectors as tests.
//! * [`xmlrpc`]: the XML-RPC subset the legacy redirection APIs use (string
//!   and boolean parameters; an array or a fault as the answer).
//! * [`vendor`]: what every service shares (HTTP statuses, service words,
//!   XML-RPC `[flag, text]` results).
//! * [`snom`]: Snom SRAPS (REST + Hawk) and Snom's XML-RPC service: request
//!   builders and answer readers.
//! * [`yealink`]: Yealink YMCS Open API v2 (OAuth token), the signed RPS
//!   JSON API on api-dm and the RPS XML-RPC service.
//! * [`plan`]: the job planner. Per MAC it keeps what the service holds (per
//!   our last success) and the operations still to do; `reconcile` compares
//!   that with the configuration, `finish` records an attempt's outcome and
//!   the next attempt time (backoff), all with an injected `now`.
//! * [`flow`]: the sequences of requests of each operation per API, generic
//!   over a [`flow::Transport`]; the daemon passes the HTTPS client.
//!
//! Invariant: nothing here does I/O or reads a clock except through the
//! transport it is given; credentials never appear in errors.

pub mod flow;
pub mod hawk;
pub mod plan;
pub mod snom;
pub mod vendor;
pub mod xmlrpc;
pub mod yealink;

use std::fmt;

use crate::model::prov::{RedirectBrand, YmcsRegion};

/// Base addresses of the vendors' services. The defaults are the public
/// services; `redirect_endpoints` in the bootstrap file overrides them for
/// tests and development only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// Snom SRAPS REST API base, ending in `/`.
    pub sraps: String,
    /// Snom legacy XML-RPC endpoint.
    pub snom_xmlrpc: String,
    /// Yealink RPS XML-RPC endpoint.
    pub yealink_xmlrpc: String,
    /// Yealink RPS JSON (signed) API base, without a trailing `/`.
    pub yealink_rps: String,
    /// Yealink YMCS base, without a trailing `/`; `{region}` stands for
    /// the account's region (`eu`, `us`, `au`).
    pub ymcs: String,
}

impl Default for Endpoints {
    fn default() -> Endpoints {
        Endpoints {
            // falconieri README (SRAPS base URL).
            sraps: "https://api.sraps.snom.com/api/v1/".to_string(),
            // service.snom.com XML-RPC API page: "the trailing slash is mandatory".
            snom_xmlrpc: "https://secure-provisioning.snom.com:8083/xmlrpc/".to_string(),
            // falconieri README (peoplefone posts to the same host, /xmlrpc/).
            yealink_xmlrpc: "https://api-dm.yealink.com:8443/xmlrpc".to_string(),
            // The "JSON API for RPS Management Platform" (Yealink doc copy).
            yealink_rps: "https://api-dm.yealink.com:8443".to_string(),
            // falconieri README and fspbx: {eu,us,au}-api.ymcs.yealink.com.
            ymcs: "https://{region}-api.ymcs.yealink.com".to_string(),
        }
    }
}

impl Endpoints {
    /// `vendor` (the defaults), or `name=https://...` pairs separated by
    /// commas, names among `sraps`, `snom_xmlrpc`, `yealink_xmlrpc`,
    /// `yealink_rps`, `ymcs`.
    pub fn parse(text: &str) -> Result<Endpoints, String> {
        let mut e = Endpoints::default();
        if text == "vendor" {
            return Ok(e);
        }
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, url) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not name=url"))?;
            crate::http::client::Url::parse(&url.replace("{region}", "eu"))?;
            let slot = match name.trim() {
                "sraps" => &mut e.sraps,
                "snom_xmlrpc" => &mut e.snom_xmlrpc,
                "yealink_xmlrpc" => &mut e.yealink_xmlrpc,
                "yealink_rps" => &mut e.yealink_rps,
                "ymcs" => &mut e.ymcs,
                other => {
                    return Err(format!(
                        "{other:?} is not sraps, snom_xmlrpc, yealink_xmlrpc, yealink_rps or ymcs"
                    ));
                }
            };
            *slot = url.to_string();
        }
        if !e.sraps.ends_with('/') {
            e.sraps.push('/');
        }
        for base in [&mut e.yealink_rps, &mut e.ymcs] {
            while base.ends_with('/') {
                base.pop();
            }
        }
        Ok(e)
    }

    /// The value as written in the bootstrap file.
    pub fn render(&self) -> String {
        if *self == Endpoints::default() {
            return "vendor".to_string();
        }
        format!(
            "sraps={},snom_xmlrpc={},yealink_xmlrpc={},yealink_rps={},ymcs={}",
            self.sraps, self.snom_xmlrpc, self.yealink_xmlrpc, self.yealink_rps, self.ymcs
        )
    }

    /// The YMCS base of an account's region.
    pub fn ymcs_base(&self, region: YmcsRegion) -> String {
        self.ymcs.replace("{region}", region.as_str())
    }
}

/// Why an operation did not succeed. The text is what `kpbx prov redirect
/// status` shows as the device's last error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No answer (connection refused, timeout, TLS): retried with backoff.
    Unreachable(String),
    /// The service says it is failing or busy (5xx, YMCS 900500): retried.
    Service(String),
    /// Too many requests; retried no sooner than `retry_after_s`.
    RateLimited { retry_after_s: Option<u64> },
    /// Hawk refused the box's timestamp even after one retry on the
    /// service's time: `offset_s` is the box's clock minus the service's.
    /// Retried (the clock may be fixed by NTP meanwhile).
    Clock { offset_s: i64 },
    /// An answer no public source describes, in the service's own words
    /// (bounded): never taken for success, retried with backoff.
    Unknown(String),
    /// The credentials were refused; the text says which ones and where
    /// they come from. Waits for a configuration change or a sync.
    Auth(String),
    /// The server lacks what its API needs; nothing was sent.
    Config(String),
    /// The MAC is registered by another account of the vendor's service.
    OwnedByOther,
    /// The service refused the MAC as malformed.
    MalformedMac,
    /// A documented refusal that needs a change, explained.
    Rejected(String),
    /// The brand has no usable API.
    Unsupported(String),
}

impl Failure {
    /// Whether a later attempt may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Failure::Unreachable(_)
                | Failure::Service(_)
                | Failure::RateLimited { .. }
                | Failure::Clock { .. }
                | Failure::Unknown(_)
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Unreachable(m) => write!(f, "service unreachable: {m}"),
            Failure::Service(m) => write!(f, "service error: {m}"),
            Failure::RateLimited {
                retry_after_s: Some(s),
            } => write!(f, "rate limited by the service (retry after {s} s)"),
            Failure::RateLimited {
                retry_after_s: None,
            } => write!(f, "rate limited by the service"),
            Failure::Clock { offset_s } => write!(
                f,
                "the box's clock is off by {offset_s:+} s from the service's (Hawk: stale timestamp): set the time or NTP"
            ),
            Failure::Unknown(m) => write!(f, "unrecognised answer, will retry: {m}"),
            Failure::Auth(m) => write!(f, "credentials refused: {m}"),
            Failure::Config(m) => write!(f, "not configured: {m}"),
            Failure::OwnedByOther => write!(f, "MAC owned by another account"),
            Failure::MalformedMac => write!(f, "MAC refused as malformed"),
            Failure::Rejected(m) => write!(f, "refused: {m}"),
            Failure::Unsupported(m) => write!(f, "unsupported: {m}"),
        }
    }
}

/// Where a MAC is to be redirected: a redirection server of the
/// configuration and the provisioning URL it stood for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub server: String,
    pub brand: RedirectBrand,
    pub url: String,
}

/// One operation on a vendor's service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Register(Target),
    Deregister(Target),
}

impl Op {
    pub fn target(&self) -> &Target {
        match self {
            Op::Register(t) | Op::Deregister(t) => t,
        }
    }

    pub fn verb(&self) -> &'static str {
        match self {
            Op::Register(_) => "register",
            Op::Deregister(_) => "deregister",
        }
    }
}

/// Standard base64 with padding (RFC 4648 section 4).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The MAC as the services write it: 12 lower-case hex digits.
pub fn mac_text(mac: &crate::model::Mac) -> String {
    mac.to_string().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base64_rfc4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(Endpoints::parse("vendor").unwrap(), Endpoints::default());
        let e = Endpoints::parse(
            "sraps=https://127.0.0.1:9/api/v1,yealink_xmlrpc=https://127.0.0.1:9/x,ymcs=https://127.0.0.1:9/",
        )
        .unwrap();
        assert_eq!(e.sraps, "https://127.0.0.1:9/api/v1/");
        assert_eq!(e.ymcs_base(YmcsRegion::Us), "https://127.0.0.1:9");
        assert_eq!(
            Endpoints::default().ymcs_base(YmcsRegion::Au),
            "https://au-api.ymcs.yealink.com"
        );
        assert_eq!(e.yealink_xmlrpc, "https://127.0.0.1:9/x");
        assert_eq!(e.snom_xmlrpc, Endpoints::default().snom_xmlrpc);
        assert_eq!(Endpoints::parse(&e.render()).unwrap(), e);
        assert!(Endpoints::parse("sraps=http://x/").is_err());
        assert!(Endpoints::parse("gigaset=https://x/").is_err());
        assert!(Endpoints::parse("sraps").is_err());
    }
}
