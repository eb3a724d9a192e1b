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
//! beforehand in the RPS web interface). Escene publishes no redirection API.

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
