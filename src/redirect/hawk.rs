//! Hawk HTTP authentication, client side (header scheme version 1, SHA-256),
//! as specified in the hueniverse/hawk README: a MAC over a normalized
//! string of the request, keyed by the credentials' key, and an optional
//! hash of the payload that the MAC covers.
//!
//! Pure: the timestamp and nonce are arguments.

use super::base64;

/// The request parts the MAC covers.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query, as sent in the request line.
    pub resource: &'a str,
    pub host: &'a str,
    pub port: u16,
}

/// `hash`: base64 SHA-256 of `hawk.1.payload\n<content type>\n<payload>\n`.
/// The content type is its media type only (no parameters), lower case.
pub fn payload_hash(content_type: &str, payload: &[u8]) -> String {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    h.update(b"hawk.1.payload\n");
    h.update(media.as_bytes());
    h.update(b"\n");
    h.update(payload);
    h.update(b"\n");
    base64(h.finish().as_ref())
}

/// The normalized string of a request (`hawk.1.header`).
pub fn normalized(req: &Request<'_>, ts: u64, nonce: &str, hash: &str, ext: &str) -> String {
    let ext = ext.replace('\\', "\\\\").replace('\n', "\\n");
    format!(
        "hawk.1.header\n{ts}\n{nonce}\n{}\n{}\n{}\n{}\n{hash}\n{ext}\n",
        req.method.to_ascii_uppercase(),
        req.resource,
        req.host.to_ascii_lowercase(),
        req.port
    )
}

/// base64 HMAC-SHA256 of `text` under `key`.
pub fn mac(key: &str, text: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.as_bytes());
    base64(ring::hmac::sign(&key, text.as_bytes()).as_ref())
}

/// The `Authorization` header value. `payload`: content type and body, for
/// requests with a body.
pub fn header(
    id: &str,
    key: &str,
    req: &Request<'_>,
    ts: u64,
    nonce: &str,
    payload: Option<(&str, &[u8])>,
    ext: &str,
) -> String {
    let hash = payload
        .map(|(ct, body)| payload_hash(ct, body))
        .unwrap_or_default();
    let m = mac(key, &normalized(req, ts, nonce, &hash, ext));
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = format!(
        "Hawk id=\"{}\", ts=\"{ts}\", nonce=\"{}\"",
        quote(id),
        quote(nonce)
    );
    if !hash.is_empty() {
        out.push_str(&format!(", hash=\"{hash}\""));
    }
    if !ext.is_empty() {
        out.push_str(&format!(", ext=\"{}\"", quote(ext)));
    }
    out.push_str(&format!(", mac=\"{m}\""));
    out
}

/// The `tsm` a Hawk server sends with its own time: base64 HMAC-SHA256
/// of `hawk.1.ts\n<ts>\n` under the credentials' key (hueniverse/hawk,
/// `calculateTsMac`), so that a client can trust the time it is told.
pub fn ts_mac(key: &str, ts: u64) -> String {
    mac(key, &format!("hawk.1.ts\n{ts}\n"))
}

/// What a Hawk server's `WWW-Authenticate: Hawk ...` challenge says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Challenge {
    pub ts: Option<u64>,
    pub tsm: Option<String>,
    pub error: Option<String>,
}

/// Reads a `Hawk ts="...", tsm="...", error="..."` challenge; `None` if
/// the header is not of the Hawk scheme. Unknown attributes are skipped.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let rest = header.trim().strip_prefix("Hawk")?;
    let mut c = Challenge::default();
    let mut rest = rest.trim_start();
    // attr="value" pairs separated by commas; values may hold \" escapes.
    for _ in 0..16 {
        rest = rest.trim_start_matches([',', ' ']);
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let after = after.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, ch)) = chars.next() {
            match ch {
                '\\' => value.extend(chars.next().map(|(_, c)| c)),
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        rest = &after[end?..];
        match name.trim() {
            "ts" => c.ts = value.parse().ok(),
            "tsm" => c.tsm = Some(value),
            "error" => c.error = Some(value),
            _ => {}
        }
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // The credentials and request of the Hawk README's protocol example.
    const ID: &str = "dh37fgj492je";
    const KEY: &str = "werxhqb98rpaxn39848xrunpaw3489ruxnpa98w4rxn";

    fn example(method: &'static str) -> Request<'static> {
        Request {
            method,
            resource: "/resource/1?b=1&a=2",
            host: "example.com",
            port: 8000,
        }
    }

    #[test]
    fn readme_example_without_payload() {
        let n = normalized(
            &example("GET"),
            1353832234,
            "j4h3g2",
            "",
            "some-app-ext-data",
        );
        assert_eq!(
            n,
            "hawk.1.header\n1353832234\nj4h3g2\nGET\n/resource/1?b=1&a=2\nexample.com\n8000\n\nsome-app-ext-data\n"
        );
        assert_eq!(mac(KEY, &n), "6R4rV5iE+NPoym+WwjeHzjAGXUtLNIxmo1vpMofpLAE=");
        assert_eq!(
            header(
                ID,
                KEY,
                &example("GET"),
                1353832234,
                "j4h3g2",
                None,
                "some-app-ext-data"
            ),
            "Hawk id=\"dh37fgj492je\", ts=\"1353832234\", nonce=\"j4h3g2\", ext=\"some-app-ext-data\", mac=\"6R4rV5iE+NPoym+WwjeHzjAGXUtLNIxmo1vpMofpLAE=\""
        );
    }

    #[test]
    fn readme_example_with_payload() {
        let payload = b"Thank you for flying Hawk";
        assert_eq!(
            payload_hash("text/plain", payload),
            "Yi9LfIIFRtBEPt74PVmbTF/xVAwPn7ub15ePICfgnuY="
        );
        // Parameters of the content type are not hashed.
        assert_eq!(
            payload_hash("Text/Plain; charset=utf-8", payload),
            payload_hash("text/plain", payload)
        );
        let h = header(
            ID,
            KEY,
            &example("POST"),
            1353832234,
            "j4h3g2",
            Some(("text/plain", payload)),
            "some-app-ext-data",
        );
        assert_eq!(
            h,
            "Hawk id=\"dh37fgj492je\", ts=\"1353832234\", nonce=\"j4h3g2\", hash=\"Yi9LfIIFRtBEPt74PVmbTF/xVAwPn7ub15ePICfgnuY=\", ext=\"some-app-ext-data\", mac=\"aSe1DERmZuRl3pI36/9BdZmnErTw3sNzOOAUlfeKjVw=\""
        );
    }

    #[test]
    fn stale_timestamp_challenges() {
        let tsm = ts_mac(KEY, 1365741469);
        let h = format!("Hawk ts=\"1365741469\", tsm=\"{tsm}\", error=\"Stale timestamp\"");
        assert_eq!(
            parse_challenge(&h),
            Some(Challenge {
                ts: Some(1365741469),
                tsm: Some(tsm.clone()),
                error: Some("Stale timestamp".into())
            })
        );
        // The tsm is the HMAC of the timestamp line under the key.
        assert_eq!(tsm, mac(KEY, "hawk.1.ts\n1365741469\n"));
        assert_ne!(tsm, ts_mac("other", 1365741469));
        assert_eq!(
            parse_challenge("Hawk error=\"Bad \\\"mac\\\"\""),
            Some(Challenge {
                error: Some("Bad \"mac\"".into()),
                ..Challenge::default()
            })
        );
        assert_eq!(parse_challenge("Basic realm=\"x\""), None);
        for bad in ["Hawk", "Hawk ts=", "Hawk ts=\"1", "Hawk ,,,,", "Hawk a=b"] {
            let _ = parse_challenge(bad);
        }
    }
}
