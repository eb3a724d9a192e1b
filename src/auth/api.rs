//! The management API's request decoding: an HTTP/1.1 head (httparse) and a
//! JSON body in, an [`ApiCall`] or a 4xx with a clear message out.
//!
//! Invariant: pure and total; any input gives a call or an [`ApiError`],
//! never a panic (seeded random test here, `fuzz/fuzz_targets/mgmt_request.rs`).
//!
//! Endpoints (docs/openapi.yaml):
//! - `POST /api/v1/login` `{"user": "...", "password": "..."}` → a token.
//! - `POST /api/v1/logout` (bearer token).
//! - `GET /api/v1/session`: the token's user, role and permissions.
//! - `POST /api/v1/command` with a [`Command`] as JSON, as `kpbx` sends it.
//! - REST aliases: `GET /api/v1/status`, `GET /api/v1/settings`,
//!   `GET /api/v1/audit` (query: month, day, user, type, action, page,
//!   page_size, columns), `GET /api/v1/audit/{txid}`,
//!   `POST /api/v1/audit/{txid}/restore[?force=true]`, `GET /api/v1/audit/verify`,
//!   `GET /api/v1/audit/export?format=xlsx|csv|json|xml` (+ the filters; chunked),
//!   `GET /api/v1/users`, `GET /api/v1/roles`.

use serde::Deserialize;

use crate::control::{AuditQuery, Command};
use crate::http::request::{self, Limits, Method, Request, Status};

/// The head and body limits the API reads with (the parser is
/// `http::request`'s, shared with every HTTP service).
pub const LIMITS: Limits = Limits {
    max_head_bytes: 16 * 1024,
    max_headers: 32,
    max_body_discard: 1024 * 1024,
};

/// Longest user name a login may carry (as `user add` accepts).
pub const MAX_USER: usize = 64;
/// Longest password a login may carry.
pub const MAX_PASSWORD: usize = 1024;

/// A refused request: the HTTP status, the error code of the JSON body
/// (docs/openapi.yaml) and a one-line message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// The methods the path takes (the `Allow` header of a 405).
    pub allow: Option<&'static str>,
}

/// The error code that goes with a status this module answers.
fn code_of(status: u16) -> &'static str {
    match status {
        401 => "unauthorized",
        404 => "not_found",
        405 => "method_not_allowed",
        411 => "length_required",
        413 => "too_large",
        431 => "header_too_large",
        _ => "bad_request",
    }
}

fn err(status: u16, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        code: code_of(status),
        message: message.into(),
        allow: None,
    }
}

/// Commands the API refuses: they stream a file between the daemon and the
/// console (`cdr export`, `audit export`) or name a file on the box
/// (`cdr import`); the console socket carries them.
pub fn console_only(command: &Command) -> bool {
    matches!(
        command,
        Command::CdrImport { .. } | Command::CdrExport(_) | Command::AuditExport { .. }
    )
}

/// A head the parser refused, as the API answers it.
pub fn refused(e: request::Error) -> ApiError {
    match e {
        request::Error::Chunked => err(411, "chunked bodies are not accepted; send Content-Length"),
        request::Error::BodyTooLarge => err(
            413,
            format!("request body larger than {} bytes", LIMITS.max_body_discard),
        ),
        request::Error::HeadTooLarge => err(431, "request head too large"),
        request::Error::TooManyHeaders => err(431, "too many headers"),
        other => err(other.status(), format!("malformed request: {other}")),
    }
}

/// The bearer token of `Authorization: Bearer ...` (`None`: no such header).
pub fn bearer(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers.authorization() else {
        return Ok(None);
    };
    // The auth-scheme is case-insensitive (RFC 9110 11.1). A value the
    // parser would not keep (not UTF-8, too long, repeated) is empty here.
    v.split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .filter(|t| !t.is_empty())
        .map(|t| Some(t.to_string()))
        .ok_or_else(|| err(401, "Authorization must be `Bearer TOKEN`"))
}

/// What a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiCall {
    Login {
        user: String,
        password: String,
    },
    Logout,
    /// Who the bearer token is: user, role, permissions, tenant.
    Session,
    /// `AuditExport`, streamed back as a file (chunked).
    Export {
        command: Command,
        /// `Content-Type` of the file.
        content_type: &'static str,
        /// `Content-Disposition` file name (built here, never client text
        /// beyond a checked month).
        file_name: String,
    },
    Run(Command),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    user: String,
    password: String,
}

fn json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| err(400, format!("invalid JSON body: {e}")))
}

fn no_body(body: &[u8]) -> Result<(), ApiError> {
    if body.is_empty() {
        Ok(())
    } else {
        Err(err(400, "this endpoint takes no body"))
    }
}

/// Decodes a request whose head and whole body have been read.
pub fn decode(head: &Request, body: &[u8]) -> Result<ApiCall, ApiError> {
    let segments: Vec<&str> = head
        .path
        .as_str()
        .strip_prefix("/api/v1/")
        .ok_or_else(|| err(404, "unknown endpoint (the API lives under /api/v1/)"))?
        .split('/')
        .collect();
    let method = match head.method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Other => "OTHER",
    };
    let run = |c: Command| Ok(ApiCall::Run(c));
    match (method, segments.as_slice()) {
        ("POST", ["login"]) => {
            let b: LoginBody = json(body)?;
            if b.user.is_empty() || b.user.len() > MAX_USER {
                return Err(err(400, format!("user names are 1 to {MAX_USER} bytes")));
            }
            if b.password.len() > MAX_PASSWORD {
                return Err(err(
                    400,
                    format!("passwords are at most {MAX_PASSWORD} bytes"),
                ));
            }
            Ok(ApiCall::Login {
                user: b.user,
                password: b.password,
            })
        }
        ("POST", ["logout"]) => no_body(body).map(|()| ApiCall::Logout),
        ("GET", ["session"]) => no_body(body).map(|()| ApiCall::Session),
        ("POST", ["command"]) => {
            let command = json::<Command>(body)?;
            if console_only(&command) {
                return Err(ApiError {
                    code: "console_only",
                    ..err(
                        400,
                        "this command moves a file between the box and the console; \
                         use `kpbx` on the box (see docs/openapi.yaml)",
                    )
                });
            }
            Ok(ApiCall::Run(command))
        }
        ("GET", ["status"]) => no_body(body).and_then(|()| run(Command::Status)),
        ("GET", ["settings"]) => no_body(body).and_then(|()| run(Command::SystemShow)),
        ("GET", ["users"]) => no_body(body).and_then(|()| run(Command::UserList)),
        ("GET", ["roles"]) => no_body(body).and_then(|()| run(Command::RoleList)),
        ("GET", ["audit", "verify"]) => no_body(body).and_then(|()| run(Command::AuditVerify)),
        ("GET", ["audit", "export"]) => {
            no_body(body)?;
            audit_export(&head.query)
        }
        ("GET", ["audit"]) => {
            no_body(body)?;
            run(Command::AuditQuery(audit_query(&head.query)?))
        }
        ("GET", ["audit", txid]) => {
            no_body(body)?;
            run(Command::AuditShow {
                txid: txid_of(txid)?,
            })
        }
        ("POST", ["audit", txid, "restore"]) => {
            no_body(body)?;
            let force = match query_pairs(&head.query)?.as_slice() {
                [] => false,
                [(k, v)] if k == "force" && (v == "true" || v == "1") => true,
                [(k, v)] if k == "force" && (v == "false" || v == "0") => false,
                _ => return Err(err(400, "restore takes only ?force=true")),
            };
            run(Command::AuditRestore {
                txid: txid_of(txid)?,
                force,
            })
        }
        (_, ["login" | "logout" | "command"]) | (_, ["audit", _, "restore"]) => {
            Err(not_allowed(method, "POST"))
        }
        (_, ["status" | "settings" | "users" | "roles" | "audit" | "session"])
        | (_, ["audit", "verify" | _]) => Err(not_allowed(method, "GET")),
        _ => Err(err(404, "unknown endpoint")),
    }
}

fn not_allowed(method: &str, allow: &'static str) -> ApiError {
    let method = if method == "OTHER" {
        "this method"
    } else {
        method
    };
    ApiError {
        allow: Some(allow),
        ..err(405, format!("{method} is not allowed here (only {allow})"))
    }
}

fn txid_of(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|t| *t > 0)
        .ok_or_else(|| err(400, format!("{text:?} is not a transaction id")))
}

fn unpercent(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| err(400, "malformed percent-encoding in the query"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| err(400, "query is not UTF-8"))
}

fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((unpercent(k)?, unpercent(v)?))
        })
        .collect()
}

/// `GET /api/v1/audit/export?format=F` plus `audit`'s filters.
fn audit_export(query: &str) -> Result<ApiCall, ApiError> {
    let mut format = None;
    let mut rest = Vec::new();
    for p in query.split('&').filter(|p| !p.is_empty()) {
        match p.strip_prefix("format=") {
            Some(f) => format = Some(unpercent(f)?),
            None => rest.push(p),
        }
    }
    let format = format.ok_or_else(|| err(400, "format is required: xlsx, csv, json or xml"))?;
    let (content_type, ext) = match format.as_str() {
        "xlsx" => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx",
        ),
        "csv" => ("text/csv; charset=utf-8", "csv"),
        "json" => ("application/json", "json"),
        "xml" => ("application/xml", "xml"),
        other => {
            return Err(err(
                400,
                format!("unknown format {other:?}; formats are xlsx, csv, json, xml"),
            ));
        }
    };
    let query = audit_query(&rest.join("&"))?;
    let month = query
        .month
        .as_deref()
        .filter(|m| m.len() == 7 && m.bytes().all(|b| b.is_ascii_digit() || b == b'-'));
    let file_name = match (month, query.day) {
        (Some(m), Some(d)) => format!("audit-{m}-{d:02}.{ext}"),
        (Some(m), None) => format!("audit-{m}.{ext}"),
        _ => format!("audit.{ext}"),
    };
    Ok(ApiCall::Export {
        command: Command::AuditExport { query, format },
        content_type,
        file_name,
    })
}

fn audit_query(query: &str) -> Result<AuditQuery, ApiError> {
    let mut q = AuditQuery::default();
    // The CLI's rule: out of range is refused, not clamped.
    let bounded = |k: &str, v: &str, max: u32| {
        crate::audit::parse_bounded(k, v, max).map_err(|m| err(400, m))
    };
    for (k, v) in query_pairs(query)? {
        match k.as_str() {
            "month" => q.month = Some(v),
            "day" => {
                q.day = Some(
                    v.parse::<u8>()
                        .map_err(|_| err(400, format!("day: {v:?} is not a day")))?,
                )
            }
            "user" => q.user = Some(v),
            "type" => q.object_type = Some(v),
            "action" => q.action = Some(v),
            "page" => q.page = bounded(&k, &v, u32::MAX)?,
            "page_size" => q.page_size = bounded(&k, &v, crate::audit::MAX_PAGE_SIZE)?,
            "columns" => {
                q.columns = crate::audit::parse_columns(&v).map_err(|m| err(400, m))?;
            }
            other => return Err(err(400, format!("unknown query parameter {other:?}"))),
        }
    }
    Ok(q)
}

/// The HTTP status for a daemon error code.
pub fn status_of(code: crate::control::ErrorCode) -> u16 {
    use crate::control::ErrorCode as E;
    match code {
        E::BadRequest => 400,
        E::Invalid => 422,
        E::NotFound => 404,
        E::Denied => 403,
        E::Conflict => 409,
        E::Store => 500,
        E::Unavailable => 503,
    }
}

/// Whole request bytes → the bearer token and the call; what the fuzz
/// target drives. `Ok(None)`: more bytes needed.
pub fn decode_bytes(data: &[u8]) -> Result<Option<(Option<String>, ApiCall)>, ApiError> {
    let head = match request::parse_head_with(data, &LIMITS) {
        Ok(Status::Complete(head)) => head,
        Ok(Status::Partial) => return Ok(None),
        Err(e) => return Err(refused(e)),
    };
    let token = bearer(&head)?;
    let body = data.get(head.head_len..).unwrap_or(&[]);
    let len = usize::try_from(head.headers.content_length).unwrap_or(usize::MAX);
    let body = body.get(..len).unwrap_or(body);
    let call = decode(&head, body)?;
    Ok(Some((token, call)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Result<ApiCall, ApiError> {
        decode_bytes(text.as_bytes()).map(|r| r.unwrap().1)
    }

    fn post(path: &str, body: &str) -> String {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn endpoints_decode() {
        assert_eq!(
            req(&post("/api/v1/login", r#"{"user":"a","password":"b"}"#)).unwrap(),
            ApiCall::Login {
                user: "a".into(),
                password: "b".into()
            }
        );
        assert_eq!(
            req(&post("/api/v1/command", r#"{"AuditShow":{"txid":3}}"#)).unwrap(),
            ApiCall::Run(Command::AuditShow { txid: 3 })
        );
        assert_eq!(
            req(&post("/api/v1/command", r#""Status""#)).unwrap(),
            ApiCall::Run(Command::Status)
        );
        assert_eq!(
            req("GET /api/v1/audit?month=2026-11&type=device&page=2&columns=txid%2Cuser HTTP/1.1\r\n\r\n")
                .unwrap(),
            ApiCall::Run(Command::AuditQuery(AuditQuery {
                month: Some("2026-11".into()),
                object_type: Some("device".into()),
                page: 2,
                columns: vec!["txid".into(), "user".into()],
                ..AuditQuery::default()
            }))
        );
        assert_eq!(
            req("GET /api/v1/session HTTP/1.1\r\n\r\n").unwrap(),
            ApiCall::Session
        );
        match req(
            "GET /api/v1/audit/export?month=2026-11&day=3&format=csv&user=ann HTTP/1.1\r\n\r\n",
        )
        .unwrap()
        {
            ApiCall::Export {
                command: Command::AuditExport { query, format },
                content_type,
                file_name,
            } => {
                assert_eq!(
                    (format.as_str(), content_type),
                    ("csv", "text/csv; charset=utf-8")
                );
                assert_eq!(file_name, "audit-2026-11-03.csv");
                assert_eq!(query.user.as_deref(), Some("ann"));
                assert_eq!(query.day, Some(3));
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            "",
            "?format=pdf",
            "?format=csv&bogus=1",
            "?month=x%22&format=csv",
        ] {
            let r = req(&format!("GET /api/v1/audit/export{bad} HTTP/1.1\r\n\r\n"));
            match r {
                Err(e) => assert_eq!(e.status, 400, "{bad}"),
                // A month that is not YYYY-MM never reaches the file name
                // (the daemon refuses it later, with its own message).
                Ok(ApiCall::Export { file_name, .. }) => {
                    assert_eq!(file_name, "audit.csv", "{bad}")
                }
                Ok(other) => panic!("{bad}: {other:?}"),
            }
        }
        assert_eq!(
            req(&post("/api/v1/audit/7/restore?force=true", "")).unwrap(),
            ApiCall::Run(Command::AuditRestore {
                txid: 7,
                force: true
            })
        );
        let h = decode_bytes(b"GET /api/v1/status HTTP/1.1\r\nAuthorization: Bearer abc\r\n\r\n")
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(h.as_deref(), Some("abc"));
        for scheme in ["bearer", "BEARER", "BeArEr"] {
            let h = decode_bytes(
                format!("GET /api/v1/status HTTP/1.1\r\nAuthorization: {scheme} abc\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap()
            .unwrap()
            .0;
            assert_eq!(h.as_deref(), Some("abc"), "{scheme}");
        }
    }

    #[test]
    fn bad_input_is_a_clear_4xx() {
        let status = |text: &str| req(text).unwrap_err().status;
        assert_eq!(status(&post("/api/v1/login", "{")), 400);
        assert_eq!(
            status(&post(
                "/api/v1/login",
                r#"{"user":"a","password":"b","x":1}"#
            )),
            400,
            "unknown fields"
        );
        assert_eq!(
            status(&post("/api/v1/login", r#"{"user":1,"password":"b"}"#)),
            400
        );
        assert_eq!(
            status(&post("/api/v1/command", r#"{"AuditShow":{"txid":"3"}}"#)),
            400
        );
        assert_eq!(
            status(&post(
                "/api/v1/command",
                r#"{"AuditShow":{"txid":3,"evil":1}}"#
            )),
            400
        );
        assert_eq!(
            status(&post("/api/v1/command", r#"{"Frobnicate":{}}"#)),
            400
        );
        assert_eq!(status("GET /api/v1/login HTTP/1.1\r\n\r\n"), 405);
        assert_eq!(status("GET /nowhere HTTP/1.1\r\n\r\n"), 404);
        assert_eq!(status("GET /api/v1/audit/x HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("GET /api/v1/audit?bogus=1 HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(
            status("POST /api/v1/command HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"),
            413
        );
        assert_eq!(
            status("POST /api/v1/command HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            411
        );
        assert_eq!(
            status("GET /api/v1/status HTTP/1.1\r\nAuthorization: Basic x\r\n\r\n"),
            401
        );
        assert_eq!(status("\x00\x01 garbage\r\n\r\n"), 400);
        for q in ["page_size=0", "page_size=1001", "page=0", "page=-1"] {
            assert_eq!(
                status(&format!("GET /api/v1/audit?{q} HTTP/1.1\r\n\r\n")),
                400,
                "{q}: refused like the CLI, not clamped"
            );
        }
        let e = req("GET /nowhere HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!((e.code, e.allow), ("not_found", None));
        let e = req("DELETE /api/v1/status HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!((e.code, e.allow), ("method_not_allowed", Some("GET")));
        let e = req("GET /api/v1/audit/3/restore HTTP/1.1\r\n\r\n").unwrap_err();
        assert_eq!((e.status, e.allow), (405, Some("POST")));
        let e = req(&post(
            "/api/v1/command",
            r#"{"AuditExport":{"query":{},"format":"csv"}}"#,
        ))
        .unwrap_err();
        assert_eq!((e.status, e.code), (400, "console_only"), "{e:?}");
        assert!(decode_bytes(b"GET /api/v1/sta").unwrap().is_none());
    }

    #[test]
    fn random_input_never_panics() {
        // Seeded xorshift: deterministic, no extra crates.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let seeds: [&[u8]; 4] = [
            b"POST /api/v1/command HTTP/1.1\r\nContent-Length: 24\r\n\r\n{\"AuditShow\":{\"txid\":3}}",
            b"GET /api/v1/audit?month=2026-11&columns=txid HTTP/1.1\r\n\r\n",
            b"POST /api/v1/login HTTP/1.1\r\nContent-Length: 27\r\n\r\n{\"user\":\"a\",\"password\":\"b\"}",
            b"GET /api/v1/audit/export?format=xlsx&month=2026-11&day=3&columns=txid HTTP/1.1\r\nAccept-Encoding: gzip;q=0\r\n\r\n",
        ];
        for i in 0..20_000u32 {
            let mut data = seeds[(i % 4) as usize].to_vec();
            for _ in 0..(next() % 4 + 1) {
                let len = data.len() as u64;
                let pos = (next() % len.max(1)) as usize;
                match next() % 3 {
                    0 => data[pos] = next() as u8,
                    1 => data.insert(pos, next() as u8),
                    _ => {
                        data.remove(pos);
                    }
                }
                if data.is_empty() {
                    data.push(b'G');
                }
            }
            let _ = decode_bytes(&data);
        }
    }
}
