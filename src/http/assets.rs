//! The web console's files, built into the binary (pure: request in,
//! response bytes out).
//!
//! `build.rs` gzips every file of `web/` at build time; each is kept only
//! in that form and served with `Content-Encoding: gzip` (every browser
//! accepts it; no `Accept-Encoding` means any coding will do). A client
//! that refuses gzip outright gets 406: no inflater and no second copy in
//! the binary. A strong entity-tag per file makes `304` and `Range` work
//! as for provisioning files (the same [`response::plan`]).
//! Every answer carries the console's security headers
//! ([`SECURITY_HEADERS`]): a strict Content-Security-Policy (only this
//! origin's own files; no inline script or style; no framing), `nosniff`,
//! no referrer.

use super::request::{Headers, Method};
use super::response::{self, Conn, Entity};
use super::{Body, Response};

/// One built-in file.
#[derive(Debug)]
pub struct Asset {
    /// Where it is served: `/` for `index.html`, `/name` for the rest.
    pub path: &'static str,
    pub content_type: &'static str,
    /// The file, gzipped (level 9, no name, no time).
    pub gzip: &'static [u8],
    /// Length of the file before compression.
    pub plain_len: usize,
    /// Hash of the file's bytes (16 hex digits), for the entity-tags.
    pub tag: &'static str,
}

/// Every file of `web/`, sorted by name.
pub static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The policy: this origin's own scripts, styles, images and API only;
/// nothing inline, no plugins, no `<base>`, forms post only here, and no
/// page may frame the console.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Headers on every console answer (API answers carry the last three).
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("Content-Security-Policy", CSP),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
];

/// The asset served at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Sum of the gzipped sizes (what the binary holds).
pub fn gzip_total() -> usize {
    ASSETS.iter().map(|a| a.gzip.len()).sum()
}

/// The answer to `method` on `path` (already without its query). `date`
/// is the `Date` value ([`response::http_date_bytes`]); `conn` what the
/// server does with the connection after it.
pub fn respond(method: Method, path: &str, h: &Headers, date: &str, conn: Conn) -> Response {
    let Some(asset) = find(path) else {
        return error(404, method, date, conn, &[]);
    };
    if !matches!(method, Method::Get | Method::Head) {
        return error(405, method, date, conn, &[]);
    }
    if !h.accepts_gzip() {
        // Only a client that refuses gzip outright gets here (no
        // Accept-Encoding means any coding will do, RFC 9110 12.5.3);
        // every browser accepts gzip, and keeping an inflater or a second
        // copy of each file in the binary for none is not worth its size.
        return error(406, method, date, conn, &[("Vary", "Accept-Encoding")]);
    }
    let etag = format!("\"{}-gz\"", asset.tag);
    let entity = Entity {
        len: asset.gzip.len() as u64,
        etag: Some(&etag),
        mtime: None,
        content_type: asset.content_type,
    };
    let plan = response::plan(method, h, &entity);
    let mut extra: Vec<(&str, &str)> = Vec::with_capacity(8);
    extra.push(("Content-Encoding", "gzip"));
    // Revalidate every time (the names carry no version); a 304 costs one
    // round trip and no body.
    extra.push(("Cache-Control", "no-cache"));
    extra.push(("Vary", "Accept-Encoding"));
    extra.extend_from_slice(SECURITY_HEADERS);
    let mut head = Vec::with_capacity(768);
    response::write_entity_head_with(&mut head, &plan, &entity, date, conn, &extra);
    let body = if plan.send_body {
        asset
            .gzip
            .get(plan.start as usize..plan.end as usize)
            .unwrap_or_default()
    } else {
        &[]
    };
    Response {
        status: plan.status,
        head,
        body: Body::Static(body),
    }
}

fn error(status: u16, method: Method, date: &str, conn: Conn, extra: &[(&str, &str)]) -> Response {
    let mut all: Vec<(&str, &str)> = extra.to_vec();
    all.extend_from_slice(SECURITY_HEADERS);
    let mut head = Vec::with_capacity(512);
    let head_only = method == Method::Head;
    response::write_error_with(&mut head, status, date, conn, true, &all);
    Response {
        status,
        head,
        body: Body::Static(if head_only {
            &[]
        } else {
            response::error_body(status)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::request::{Status, parse_head};
    use std::io::Read as _;

    fn get(text: &str) -> (String, Vec<u8>) {
        let Ok(Status::Complete(req)) = parse_head(text.as_bytes()) else {
            panic!("{text:?}");
        };
        let path = text.split(' ').nth(1).unwrap();
        let r = respond(
            req.method,
            path,
            &req.headers,
            "Thu, 01 Jan 1970 00:00:00 GMT",
            Conn::Close,
        );
        let Body::Static(body) = r.body else {
            panic!("assets are static");
        };
        (String::from_utf8(r.head).unwrap(), body.to_vec())
    }

    fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
        head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    #[test]
    fn index_is_served_gzipped_with_the_policy() {
        let (head, body) = get("GET / HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(header(&head, "content-encoding"), Some("gzip"));
        assert_eq!(header(&head, "content-security-policy"), Some(CSP));
        assert_eq!(header(&head, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&head, "vary"), Some("Accept-Encoding"));
        assert!(
            header(&head, "content-type")
                .unwrap()
                .starts_with("text/html")
        );
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut plain)
            .unwrap();
        assert!(plain.contains("<!doctype html>"), "{plain}");
        // No inline script or style: the policy would refuse them.
        assert!(
            !plain.contains("<script>") && !plain.contains("<style") && !plain.contains(" style=")
        );
        let tag = header(&head, "etag").unwrap().to_string();
        let (head, body) = get(&format!(
            "GET / HTTP/1.1\r\nAccept-Encoding: gzip\r\nIf-None-Match: {tag}\r\n\r\n"
        ));
        assert!(head.starts_with("HTTP/1.1 304"), "{head}");
        assert!(body.is_empty());
    }

    #[test]
    fn no_accept_encoding_gets_gzip_a_refusal_gets_406() {
        let (head, body) = get("GET / HTTP/1.1\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(header(&head, "content-encoding"), Some("gzip"));
        assert_eq!(body, find("/").unwrap().gzip);
        for refusal in ["identity", "", "gzip;q=0, br"] {
            let (head, body) = get(&format!(
                "GET / HTTP/1.1\r\nAccept-Encoding: {refusal}\r\n\r\n"
            ));
            assert!(head.starts_with("HTTP/1.1 406"), "{refusal}: {head}");
            assert_eq!(header(&head, "content-security-policy"), Some(CSP));
            assert!(!body.is_empty());
        }
        let (head, body) = get("HEAD /app.js HTTP/1.1\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(body.is_empty());
        let (head, body) = get("GET /app.js HTTP/1.1\r\nRange: bytes=0-9\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 206"), "{head}");
        assert_eq!(body, &find("/app.js").unwrap().gzip[..10]);
    }

    #[test]
    fn unknown_paths_and_methods() {
        let (head, body) = get("GET /etc/passwd HTTP/1.1\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        assert_eq!(body, b"Not Found\n");
        assert_eq!(header(&head, "content-security-policy"), Some(CSP));
        let (head, _) = get("DELETE / HTTP/1.1\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 405"), "{head}");
        assert_eq!(header(&head, "allow"), Some("GET, HEAD"));
    }

    #[test]
    fn every_asset_inflates_to_its_length() {
        assert!(ASSETS.len() >= 3, "index, script, style");
        for a in ASSETS {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(a.gzip)
                .read_to_end(&mut plain)
                .unwrap();
            assert_eq!(plain.len(), a.plain_len, "{}", a.path);
        }
    }
}
