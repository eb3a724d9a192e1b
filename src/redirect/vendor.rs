//! Request builders and answer parsers of each redirection service. Pure:
//! time and nonces are arguments; answers are bytes in, outcome out.
//!
//! Sources: Snom SRAPS API documentation (sraps.snom.com/documentation:
//! Hawk-authenticated REST, `tokens/<key id>` → company → endpoints, one
//! endpoint per MAC), Snom's XML-RPC redirection API
//! (`redirect.registerPhone(mac, url)`, `redirect.deregisterPhone(mac)`,
//! HTTP Basic; answers `[boolean, text]` with texts such as
//! `Error:owned_by_other_user` or `Error:malformed_mac`), and Yealink's "XML
//! API for RPS" (`redirect.registerDevice(mac, serverName)`,
//! `redirect.deRegisterDevice(mac)`, HTTP Basic; the server is created
//! beforehand in the RPS web interface), and Yealink's "JSON API for RPS
//! Management Platform" (`/api/open/v1/...` on api-dm.yealink.com:8443,
//! access key id and secret; every request signed with HMAC-SHA256 over the
//! method, `Content-MD5`, the `X-Ca-Key`/`X-Ca-Nonce`/`X-Ca-Timestamp`
//! headers, the path and the query; answers `{"ret", "data", "error"}`).
//! Escene publishes no redirection API.

use crate::http::client::{ClientRequest, ClientResponse, Url};

use super::xmlrpc::{self, Answer, Value};
use super::{Failure, base64, hawk};

/// Longest piece of a service's own words kept in an error.
const MAX_WORDS: usize = 160;

/// A service's words, made safe to store and show: one line, clipped.
pub fn words(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_WORDS)
        .collect();
    if text.chars().count() > MAX_WORDS {
        out.push('…');
    }
    out.trim().to_string()
}

/// The `Retry-After` of an answer in seconds (delta form; a date counts as
/// unknown).
fn retry_after(resp: &ClientResponse) -> Option<u64> {
    resp.header("retry-after")?.trim().parse().ok()
}

/// What every service's HTTP status means before its body is read.
fn common_status(resp: &ClientResponse) -> Result<(), Failure> {
    match resp.status {
        200..=299 => Ok(()),
        401 => Err(Failure::Auth),
        429 => Err(Failure::RateLimited {
            retry_after_s: retry_after(resp),
        }),
        500..=599 => Err(Failure::Service(format!("HTTP {}", resp.status))),
        s => Err(Failure::Rejected(format!("HTTP {s}"))),
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// --------------------------------------------------------------- Snom SRAPS

/// A Hawk-signed SRAPS request. `body`: JSON.
pub fn sraps_request(
    method: &str,
    url: &str,
    key_id: &str,
    key: &str,
    body: Option<&serde_json::Value>,
    ts: u64,
    nonce: &str,
) -> Result<ClientRequest, Failure> {
    let parsed = Url::parse(url).map_err(Failure::Service)?;
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let content_type = "application/json";
    let payload = (!body.is_empty()).then_some((content_type, body.as_slice()));
    let auth = hawk::header(
        key_id,
        key,
        &hawk::Request {
            method,
            resource: &parsed.path,
            host: &parsed.host,
            port: parsed.port,
        },
        ts,
        nonce,
        payload,
        "",
    );
    let mut headers = vec![
        ("Authorization".to_string(), auth),
        ("Accept".to_string(), "application/json".to_string()),
    ];
    if !body.is_empty() {
        headers.push(("Content-Type".to_string(), content_type.to_string()));
    }
    Ok(ClientRequest {
        method: method.to_string(),
        url: url.to_string(),
        headers,
        body,
    })
}

/// `GET <base>tokens/<key id>`: the token's resource, linking to its company.
pub fn sraps_token_url(base: &str, key_id: &str) -> String {
    format!("{base}tokens/{}", percent_encode(key_id))
}

/// The endpoint (phone) resource of a MAC under the company's endpoints URL.
pub fn sraps_endpoint_url(endpoints: &str, mac: &str) -> String {
    if endpoints.ends_with('/') {
        format!("{endpoints}{mac}")
    } else {
        format!("{endpoints}/{mac}")
    }
}

/// The body of `PUT <endpoint>`.
pub fn sraps_endpoint_body(mac: &str, url: &str) -> serde_json::Value {
    serde_json::json!({
        "mac": mac,
        "autoprovisioning_enabled": true,
        "provisioning_url": url,
    })
}

/// The message of an SRAPS error body (`message`, `error` or `detail`).
fn sraps_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let msg = parsed.as_ref().and_then(|v| {
        ["message", "error", "detail"]
            .iter()
            .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_string))
    });
    words(&msg.unwrap_or_else(|| text.into_owned()))
}

/// The outcome of an SRAPS answer. `deregister`: a 404 means done.
pub fn sraps_outcome(resp: &ClientResponse, deregister: bool) -> Result<(), Failure> {
    if deregister && resp.status == 404 {
        return Ok(());
    }
    match common_status(resp) {
        Ok(()) => Ok(()),
        Err(Failure::Rejected(status)) => {
            let msg = sraps_message(&resp.body);
            let lower = msg.to_ascii_lowercase();
            if resp.status == 409 || lower.contains("owned") || lower.contains("another") {
                Err(Failure::OwnedByOther)
            } else if lower.contains("mac") && (resp.status == 400 || resp.status == 422) {
                Err(Failure::MalformedMac)
            } else if msg.is_empty() {
                Err(Failure::Rejected(status))
            } else {
                Err(Failure::Rejected(format!("{status}: {msg}")))
            }
        }
        Err(e) => Err(e),
    }
}

/// `links.<name>` of an SRAPS resource, which must stay on the service's
/// host: credentials are never sent elsewhere.
pub fn sraps_link(resp: &ClientResponse, name: &str, base: &str) -> Result<String, Failure> {
    sraps_outcome(resp, false)?;
    let v: serde_json::Value = serde_json::from_slice(&resp.body)
        .map_err(|_| Failure::Service("SRAPS answer is not JSON".into()))?;
    let link = v
        .get("links")
        .and_then(|l| l.get(name))
        .and_then(|l| l.as_str())
        .ok_or_else(|| Failure::Service(format!("SRAPS answer has no links.{name}")))?;
    let (Ok(a), Ok(b)) = (Url::parse(link), Url::parse(base)) else {
        return Err(Failure::Service(format!("SRAPS links.{name} is not https")));
    };
    if !a.same_origin(&b) {
        return Err(Failure::Service(format!(
            "SRAPS links.{name} points to another host"
        )));
    }
    Ok(link.to_string())
}

// ---------------------------------------------------- Yealink RPS open API

/// The string a Yealink RPS request's signature covers.
pub fn yealink_string_to_sign(
    method: &str,
    content_md5: Option<&str>,
    key_id: &str,
    nonce: &str,
    ts_ms: u64,
    path: &str,
    query: &[(&str, &str)],
) -> String {
    let mut s = format!("{}\n", method.to_ascii_uppercase());
    if let Some(md5) = content_md5 {
        s.push_str(&format!("Content-MD5:{md5}\n"));
    }
    s.push_str(&format!(
        "X-Ca-Key:{key_id}\nX-Ca-Nonce:{nonce}\nX-Ca-Timestamp:{ts_ms}\n{}",
        path.trim_start_matches('/')
    ));
    if !query.is_empty() {
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.to_string()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        s.push('\n');
        s.push_str(&q.join("&"));
    }
    s
}

/// base64 MD5 of a body (`Content-MD5`, RFC 1864).
pub fn content_md5(body: &[u8]) -> String {
    use md5::Digest as _;
    base64(&md5::Md5::digest(body))
}

/// A signed Yealink RPS request. `path` starts with `/api/open/v1/`.
#[allow(clippy::too_many_arguments)]
pub fn yealink_request(
    method: &str,
    base: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Option<&serde_json::Value>,
    key_id: &str,
    secret: &str,
    ts_ms: u64,
    nonce: &str,
) -> ClientRequest {
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let md5 = (!body.is_empty()).then(|| content_md5(&body));
    let to_sign = yealink_string_to_sign(method, md5.as_deref(), key_id, nonce, ts_ms, path, query);
    let signature = hawk::mac(secret, &to_sign);
    let mut url = format!("{base}{path}");
    if !query.is_empty() {
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        url.push('?');
        url.push_str(&q.join("&"));
    }
    let mut headers = vec![
        (
            "Content-Type".to_string(),
            "application/json;charset=UTF-8".to_string(),
        ),
        ("Accept".to_string(), "application/json".to_string()),
        ("X-Ca-Key".to_string(), key_id.to_string()),
        ("X-Ca-Nonce".to_string(), nonce.to_string()),
        ("X-Ca-Timestamp".to_string(), ts_ms.to_string()),
        ("X-Ca-Signature".to_string(), signature),
    ];
    if let Some(md5) = md5 {
        headers.push(("Content-MD5".to_string(), md5));
    }
    ClientRequest {
        method: method.to_ascii_uppercase(),
        url,
        headers,
        body,
    }
}

/// The `data` of a Yealink RPS answer, or its error.
pub fn yealink_answer(resp: &ClientResponse) -> Result<serde_json::Value, Failure> {
    common_status(resp).map_err(|e| match e {
        // The gateway answers a bad key or signature with 400 or 403 too.
        Failure::Rejected(_) if resp.status == 403 => Failure::Auth,
        e => e,
    })?;
    let v: serde_json::Value = serde_json::from_slice(&resp.body)
        .map_err(|_| Failure::Service("Yealink RPS answer is not JSON".into()))?;
    let error = v.get("error").filter(|e| !e.is_null());
    let Some(error) = error else {
        return Ok(v.get("data").cloned().unwrap_or(serde_json::Value::Null));
    };
    let text = |k: &str| error.get(k).and_then(|m| m.as_str()).map(str::to_string);
    let msg = error
        .as_str()
        .map(str::to_string)
        .or_else(|| text("msg"))
        .or_else(|| text("message"))
        .or_else(|| text("errorMsg"))
        .unwrap_or_else(|| error.to_string());
    let code = text("errorCode")
        .or_else(|| error.get("errorCode").map(|c| c.to_string()))
        .unwrap_or_default();
    let lower = format!("{code} {msg}").to_ascii_lowercase();
    Err(
        if lower.contains("signature") || lower.contains("accesskey") || lower.contains("unauthori")
        {
            Failure::Auth
        } else if lower.contains("other enterprise")
            || lower.contains("another")
            || lower.contains("owned")
        {
            Failure::OwnedByOther
        } else if lower.contains("mac")
            && (lower.contains("invalid") || lower.contains("format") || lower.contains("illegal"))
        {
            Failure::MalformedMac
        } else if lower.contains("exist") {
            Failure::Rejected(format!("exists: {}", words(&msg)))
        } else {
            Failure::Rejected(words(&msg))
        },
    )
}

/// The items of a Yealink RPS list answer (`data.data[]` or `data[]`).
fn yealink_items(data: &serde_json::Value) -> Vec<serde_json::Value> {
    data.get("data")
        .and_then(|d| d.as_array())
        .or_else(|| data.as_array())
        .cloned()
        .unwrap_or_default()
}

/// The id of the server named `name` in a `server/list` answer.
pub fn yealink_server_id(data: &serde_json::Value, name: &str) -> Result<String, Failure> {
    yealink_items(data)
        .iter()
        .find(|s| s.get("serverName").and_then(|n| n.as_str()) == Some(name))
        .and_then(|s| s.get("id"))
        .map(|id| id.as_str().map_or_else(|| id.to_string(), str::to_string))
        .ok_or_else(|| {
            Failure::Rejected(format!(
                "no server named {name:?} in the Yealink RPS account"
            ))
        })
}

/// The id of the device with `mac` (12 lower-case hex digits) in a
/// `device/list` answer, if any.
pub fn yealink_device_id(data: &serde_json::Value, mac: &str) -> Option<String> {
    let plain = |m: &str| {
        m.chars()
            .filter(char::is_ascii_hexdigit)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    yealink_items(data)
        .iter()
        .find(|d| d.get("mac").and_then(|m| m.as_str()).map(plain).as_deref() == Some(mac))
        .and_then(|d| d.get("id"))
        .map(|id| id.as_str().map_or_else(|| id.to_string(), str::to_string))
}

// -------------------------------------------------------- legacy XML-RPC

/// An XML-RPC call with HTTP Basic authentication.
pub fn xmlrpc_request(
    url: &str,
    user: &str,
    password: &str,
    method: &str,
    params: &[Value],
) -> ClientRequest {
    ClientRequest {
        method: "POST".to_string(),
        url: url.to_string(),
        headers: vec![
            (
                "Authorization".to_string(),
                format!("Basic {}", base64(format!("{user}:{password}").as_bytes())),
            ),
            ("Content-Type".to_string(), "text/xml".to_string()),
        ],
        body: xmlrpc::call(method, params).into_bytes(),
    }
}

/// Snom's `redirect.registerPhone(mac, url)`.
pub fn snom_register(
    url: &str,
    user: &str,
    password: &str,
    mac: &str,
    prov_url: &str,
) -> ClientRequest {
    xmlrpc_request(
        url,
        user,
        password,
        "redirect.registerPhone",
        &[
            Value::Str(mac.to_string()),
            Value::Str(prov_url.to_string()),
        ],
    )
}

/// Snom's `redirect.deregisterPhone(mac)`.
pub fn snom_deregister(url: &str, user: &str, password: &str, mac: &str) -> ClientRequest {
    xmlrpc_request(
        url,
        user,
        password,
        "redirect.deregisterPhone",
        &[Value::Str(mac.to_string())],
    )
}

/// Yealink's `redirect.registerDevice(mac, serverName)`.
pub fn yealink_register(
    url: &str,
    user: &str,
    password: &str,
    mac: &str,
    server: &str,
) -> ClientRequest {
    xmlrpc_request(
        url,
        user,
        password,
        "redirect.registerDevice",
        &[Value::Str(mac.to_string()), Value::Str(server.to_string())],
    )
}

/// Yealink's `redirect.deRegisterDevice(mac)`.
pub fn yealink_deregister(url: &str, user: &str, password: &str, mac: &str) -> ClientRequest {
    xmlrpc_request(
        url,
        user,
        password,
        "redirect.deRegisterDevice",
        &[Value::Str(mac.to_string())],
    )
}

/// Which vendor's result texts to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Snom,
    Yealink,
}

/// The outcome of an XML-RPC redirection answer.
pub fn xmlrpc_outcome(resp: &ClientResponse, dialect: Dialect) -> Result<(), Failure> {
    common_status(resp)?;
    let answer = xmlrpc::parse_answer(&resp.body)
        .map_err(|e| Failure::Service(format!("bad XML-RPC answer: {e}")))?;
    let (ok, text) = match answer {
        Answer::Fault { code, message } => {
            let lower = message.to_ascii_lowercase();
            if lower.contains("auth") || lower.contains("login") || lower.contains("password") {
                return Err(Failure::Auth);
            }
            return Err(Failure::Rejected(format!(
                "fault {code}: {}",
                words(&message)
            )));
        }
        Answer::Value(Value::Bool(b)) => (b, String::new()),
        Answer::Value(Value::Array(items)) => {
            let ok = match items.first() {
                Some(Value::Bool(b)) => *b,
                Some(Value::Int(i)) => *i != 0,
                _ => {
                    return Err(Failure::Service(
                        "XML-RPC answer without a result flag".into(),
                    ));
                }
            };
            let text = match items.get(1) {
                Some(Value::Str(s)) => s.clone(),
                _ => String::new(),
            };
            (ok, text)
        }
        Answer::Value(_) => return Err(Failure::Service("unexpected XML-RPC answer".into())),
    };
    if ok {
        return Ok(());
    }
    let lower = text.to_ascii_lowercase();
    match dialect {
        Dialect::Snom => {
            if lower.contains("owned_by_other_user") {
                Err(Failure::OwnedByOther)
            } else if lower.contains("malformed_mac") {
                Err(Failure::MalformedMac)
            } else if lower.contains("malformed_url") {
                Err(Failure::Rejected(
                    "provisioning URL refused as malformed".into(),
                ))
            } else {
                Err(Failure::Rejected(words(&text)))
            }
        }
        Dialect::Yealink => {
            if lower.contains("existing mac") {
                // Already registered by this account: done.
                Ok(())
            } else if lower.contains("override") || lower.contains("another") {
                Err(Failure::OwnedByOther)
            } else if lower.contains("invalid mac") {
                Err(Failure::MalformedMac)
            } else if lower.contains("invalid server") {
                Err(Failure::Rejected(
                    "no server of that name in the Yealink RPS account".into(),
                ))
            } else {
                Err(Failure::Rejected(words(&text)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> ClientResponse {
        ClientResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn xml_answer(ok: bool, text: &str) -> String {
        format!(
            "<?xml version=\"1.0\"?><methodResponse><params><param><value><array><data><value><boolean>{}</boolean></value><value><string>{text}</string></value></data></array></value></param></params></methodResponse>",
            u8::from(ok)
        )
    }

    #[test]
    fn sraps_request_is_hawk_signed() {
        let body = sraps_endpoint_body("000413a1b2c3", "https://pbx.example/prov/{mac}");
        let r = sraps_request(
            "PUT",
            "https://api.sraps.snom.com/api/v1/companies/7/endpoints/000413a1b2c3",
            "key-id",
            "secret",
            Some(&body),
            1_700_000_000,
            "abc123",
        )
        .unwrap();
        let auth = &r.headers[0].1;
        let hash = hawk::payload_hash("application/json", &r.body);
        let normalized = format!(
            "hawk.1.header\n1700000000\nabc123\nPUT\n/api/v1/companies/7/endpoints/000413a1b2c3\napi.sraps.snom.com\n443\n{hash}\n\n"
        );
        assert_eq!(
            auth,
            &format!(
                "Hawk id=\"key-id\", ts=\"1700000000\", nonce=\"abc123\", hash=\"{hash}\", mac=\"{}\"",
                hawk::mac("secret", &normalized)
            )
        );
        assert!(!auth.contains("secret"));
        let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(json["autoprovisioning_enabled"], true);
    }

    #[test]
    fn sraps_outcomes() {
        assert_eq!(sraps_outcome(&resp(200, &[], "{}"), false), Ok(()));
        assert_eq!(sraps_outcome(&resp(404, &[], ""), true), Ok(()));
        assert_eq!(
            sraps_outcome(&resp(401, &[], ""), false),
            Err(Failure::Auth)
        );
        assert_eq!(
            sraps_outcome(&resp(429, &[("Retry-After", "30")], ""), false),
            Err(Failure::RateLimited {
                retry_after_s: Some(30)
            })
        );
        assert_eq!(
            sraps_outcome(&resp(409, &[], "{\"message\":\"x\"}"), false),
            Err(Failure::OwnedByOther)
        );
        assert_eq!(
            sraps_outcome(&resp(400, &[], "{\"message\":\"invalid mac\"}"), false),
            Err(Failure::MalformedMac)
        );
        assert!(matches!(
            sraps_outcome(&resp(503, &[], ""), false),
            Err(Failure::Service(_))
        ));
    }

    #[test]
    fn sraps_links_stay_on_the_service() {
        let base = "https://api.sraps.snom.com/api/v1/";
        let ok = resp(
            200,
            &[],
            "{\"links\":{\"company\":\"https://api.sraps.snom.com/api/v1/companies/7\"}}",
        );
        assert_eq!(
            sraps_link(&ok, "company", base).unwrap(),
            "https://api.sraps.snom.com/api/v1/companies/7"
        );
        let away = resp(
            200,
            &[],
            "{\"links\":{\"company\":\"https://evil.example/c\"}}",
        );
        assert!(sraps_link(&away, "company", base).is_err());
        assert!(sraps_link(&resp(200, &[], "nope"), "company", base).is_err());
    }

    #[test]
    fn yealink_requests_are_signed() {
        let body = serde_json::json!({"macs": ["001565aabb01"], "serverId": "s1"});
        let r = yealink_request(
            "POST",
            "https://api-dm.yealink.com:8443",
            "/api/open/v1/device/add",
            &[],
            Some(&body),
            "AK",
            "secret",
            1_700_000_000_000,
            "n1",
        );
        assert_eq!(
            r.url,
            "https://api-dm.yealink.com:8443/api/open/v1/device/add"
        );
        let md5 = content_md5(&r.body);
        let to_sign = format!(
            "POST\nContent-MD5:{md5}\nX-Ca-Key:AK\nX-Ca-Nonce:n1\nX-Ca-Timestamp:1700000000000\napi/open/v1/device/add"
        );
        let get = |k: &str| {
            r.headers
                .iter()
                .find(|(h, _)| h == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("X-Ca-Signature"), Some(hawk::mac("secret", &to_sign)));
        assert_eq!(get("Content-MD5"), Some(md5));
        // RFC 1321 test vector, in base64.
        assert_eq!(
            content_md5(b"abc"),
            base64(&[
                0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1,
                0x7f, 0x72
            ])
        );
        let q = yealink_request(
            "GET",
            "https://h",
            "/api/open/v1/device/checkMac",
            &[("mac", "001565aabb01")],
            None,
            "AK",
            "s",
            1,
            "n",
        );
        assert_eq!(
            q.url,
            "https://h/api/open/v1/device/checkMac?mac=001565aabb01"
        );
        assert!(q.headers.iter().all(|(h, _)| h != "Content-MD5"));
        assert_eq!(
            yealink_string_to_sign(
                "GET",
                None,
                "AK",
                "n",
                1,
                "/api/open/v1/device/checkMac",
                &[("mac", "001565aabb01")]
            ),
            "GET\nX-Ca-Key:AK\nX-Ca-Nonce:n\nX-Ca-Timestamp:1\napi/open/v1/device/checkMac\nmac=001565aabb01"
        );
    }

    #[test]
    fn yealink_answers() {
        let ok = resp(
            200,
            &[],
            "{\"ret\":1,\"data\":{\"total\":1,\"data\":[{\"id\":\"s1\",\"serverName\":\"kpbx\"}]},\"error\":null}",
        );
        let data = yealink_answer(&ok).unwrap();
        assert_eq!(yealink_server_id(&data, "kpbx").unwrap(), "s1");
        assert!(yealink_server_id(&data, "other").is_err());
        let err = |m: &str| {
            yealink_answer(&resp(
                200,
                &[],
                &format!(
                    "{{\"ret\":-1,\"data\":null,\"error\":{{\"errorCode\":\"x\",\"msg\":\"{m}\"}}}}"
                ),
            ))
        };
        assert_eq!(
            err("The device is added by other enterprise"),
            Err(Failure::OwnedByOther)
        );
        assert_eq!(err("Invalid MAC format"), Err(Failure::MalformedMac));
        assert_eq!(err("Invalid signature"), Err(Failure::Auth));
        assert!(
            matches!(err("device already exists"), Err(Failure::Rejected(m)) if m.starts_with("exists"))
        );
        assert_eq!(yealink_answer(&resp(403, &[], "")), Err(Failure::Auth));
        let devices = serde_json::json!({"data": [{"id": 7, "mac": "00:15:65:AA:BB:01"}]});
        assert_eq!(
            yealink_device_id(&devices, "001565aabb01").as_deref(),
            Some("7")
        );
        assert_eq!(yealink_device_id(&devices, "001565aabb02"), None);
    }

    #[test]
    fn xmlrpc_requests_use_basic_auth() {
        let r = snom_register(
            "https://s/xmlrpc/",
            "user",
            "pa:ss",
            "000413a1b2c3",
            "https://p/",
        );
        assert_eq!(r.method, "POST");
        assert_eq!(r.headers[0].1, format!("Basic {}", base64(b"user:pa:ss")));
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains("<methodName>redirect.registerPhone</methodName>"));
        let r = yealink_register("https://y/xmlrpc", "u", "p", "001fc1000001", "kpbx");
        assert!(
            String::from_utf8(r.body)
                .unwrap()
                .contains("<string>kpbx</string>")
        );
    }

    #[test]
    fn xmlrpc_outcomes() {
        let snom = |ok, t: &str| xmlrpc_outcome(&resp(200, &[], &xml_answer(ok, t)), Dialect::Snom);
        assert_eq!(snom(true, "OK"), Ok(()));
        assert_eq!(
            snom(false, "Error:owned_by_other_user"),
            Err(Failure::OwnedByOther)
        );
        assert_eq!(
            snom(false, "Error:malformed_mac"),
            Err(Failure::MalformedMac)
        );
        let yea =
            |ok, t: &str| xmlrpc_outcome(&resp(200, &[], &xml_answer(ok, t)), Dialect::Yealink);
        assert_eq!(yea(true, "OK"), Ok(()));
        assert_eq!(yea(false, "Existing MAC(s): 001fc1000001"), Ok(()));
        assert_eq!(
            yea(false, "Invalid MAC(s): 001fc10000"),
            Err(Failure::MalformedMac)
        );
        assert_eq!(
            yea(false, "Are you sure you want to override MAC addresses"),
            Err(Failure::OwnedByOther)
        );
        assert!(matches!(
            yea(false, "Error: Invalid server"),
            Err(Failure::Rejected(_))
        ));
        assert_eq!(
            xmlrpc_outcome(&resp(401, &[], "denied"), Dialect::Snom),
            Err(Failure::Auth)
        );
        assert!(matches!(
            xmlrpc_outcome(&resp(200, &[], "<html/>"), Dialect::Snom),
            Err(Failure::Service(_))
        ));
    }
}
