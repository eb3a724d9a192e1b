//! What the redirection services share: their HTTP statuses, their words
//! made safe to store and show, and the XML-RPC `[flag, text]` result of
//! the legacy `redirect.*` APIs. Pure: answers are bytes in, outcome out.

use crate::http::client::{ClientRequest, ClientResponse};

use super::xmlrpc::{self, Answer, Value};
use super::{Failure, base64};

/// Longest piece of a service's own words kept in a short summary.
const MAX_WORDS: usize = 160;
/// Longest answer kept verbatim in a device's last error.
pub const MAX_VERBATIM: usize = 400;

fn clip(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out.trim().to_string()
}

/// A service's words, made safe to store and show: one line, clipped.
pub fn words(text: &str) -> String {
    clip(text, MAX_WORDS)
}

/// An answer no source describes, kept as the service wrote it: control
/// characters become spaces and it is clipped at [`MAX_VERBATIM`]
/// characters (the job table stays bounded); nothing else changes.
pub fn verbatim(text: &str) -> String {
    clip(text, MAX_VERBATIM)
}

/// [`Failure::Unknown`] for a whole answer: status and body.
pub fn unknown_answer(resp: &ClientResponse) -> Failure {
    Failure::Unknown(verbatim(&format!(
        "HTTP {}: {}",
        resp.status,
        String::from_utf8_lossy(&resp.body)
    )))
}

/// The `Retry-After` of an answer in seconds (delta form; a date counts as
/// unknown).
pub fn retry_after(resp: &ClientResponse) -> Option<u64> {
    resp.header("retry-after")?.trim().parse().ok()
}

/// What an HTTP status says by itself, before a service's body is read:
/// `None` for 2xx. 401 means the credentials (`auth` says which), 429 a
/// rate limit, 5xx a failing service (RFC 9110); any other status is an
/// answer the caller did not expect.
pub fn status_failure(resp: &ClientResponse, auth: &str) -> Option<Failure> {
    match resp.status {
        200..=299 => None,
        401 => Some(Failure::Auth(auth.to_string())),
        429 => Some(Failure::RateLimited {
            retry_after_s: retry_after(resp),
        }),
        500..=599 => Some(Failure::Service(format!(
            "HTTP {}: {}",
            resp.status,
            words(&String::from_utf8_lossy(&resp.body))
        ))),
        _ => Some(unknown_answer(resp)),
    }
}

/// Percent-encoding of a query or path component (RFC 3986 unreserved
/// characters kept).
pub fn percent_encode(s: &str) -> String {
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

/// A JSON body as sent.
pub fn json_bytes(v: &serde_json::Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// A `redirect.*` call with string parameters, HTTP Basic authentication
/// and `Content-Type: text/xml` (both mandatory on Snom's service and
/// Yealink's RPS).
pub fn xmlrpc_request(
    url: &str,
    user: &str,
    password: &str,
    method: &str,
    params: &[&str],
) -> ClientRequest {
    let params: Vec<Value> = params
        .iter()
        .map(|p| Value::Str((*p).to_string()))
        .collect();
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
        body: xmlrpc::call(method, &params).into_bytes(),
    }
}

/// The `[flag, text]` result both legacy services answer every
/// `redirect.*` call with ("Result code: True, False" and a result text:
/// Snom's XML-RPC API page, Htek's copy of Yealink's XML API for RPS,
/// whose samples write the text as an untyped `<value>`). Anything else
/// (a fault, another shape, no XML) is an answer no source describes.
pub fn xmlrpc_result(resp: &ClientResponse, auth: &str) -> Result<(bool, String), Failure> {
    if let Some(f) = status_failure(resp, auth) {
        return Err(f);
    }
    let answer = xmlrpc::parse_answer(&resp.body).map_err(|_| unknown_answer(resp))?;
    match answer {
        Answer::Value(Value::Array(items)) => {
            let ok = match items.first() {
                Some(Value::Bool(b)) => *b,
                Some(Value::Int(i)) => *i != 0,
                _ => return Err(unknown_answer(resp)),
            };
            let text = match items.get(1) {
                Some(Value::Str(s)) => s.trim().to_string(),
                None => String::new(),
                Some(_) => return Err(unknown_answer(resp)),
            };
            Ok((ok, text))
        }
        Answer::Fault { code, message } => Err(Failure::Unknown(verbatim(&format!(
            "XML-RPC fault {code}: {message}"
        )))),
        Answer::Value(_) => Err(unknown_answer(resp)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    pub fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> ClientResponse {
        ClientResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// `[flag, text]` with the text untyped, as in Htek's samples.
    pub fn xml_answer(ok: bool, text: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><methodResponse><params><param><value><array><data><value><boolean>{}</boolean></value><value>{text}</value></data></array></value></param></params></methodResponse>",
            u8::from(ok)
        )
    }

    #[test]
    fn statuses() {
        assert_eq!(status_failure(&resp(204, &[], ""), "x"), None);
        assert_eq!(
            status_failure(&resp(401, &[], ""), "the key"),
            Some(Failure::Auth("the key".into()))
        );
        assert_eq!(
            status_failure(&resp(429, &[("Retry-After", "30")], ""), "x"),
            Some(Failure::RateLimited {
                retry_after_s: Some(30)
            })
        );
        assert!(matches!(
            status_failure(&resp(503, &[], "down"), "x"),
            Some(Failure::Service(m)) if m.contains("503") && m.contains("down")
        ));
        // Unexpected: kept verbatim, transient, never success.
        let f = status_failure(&resp(418, &[], "teapot\nsays no"), "x").unwrap();
        assert_eq!(f, Failure::Unknown("HTTP 418: teapot says no".into()));
        assert!(f.is_transient());
    }

    #[test]
    fn verbatim_is_bounded_and_one_line() {
        let long = "é".repeat(1000);
        let v = verbatim(&long);
        assert_eq!(v.chars().count(), MAX_VERBATIM + 1);
        assert!(v.ends_with('…'));
        assert_eq!(verbatim("a\r\nb"), "a  b");
    }

    #[test]
    fn xmlrpc_results() {
        let r = |ok, t: &str| xmlrpc_result(&resp(200, &[], &xml_answer(ok, t)), "u/p");
        assert_eq!(r(true, "OK"), Ok((true, "OK".into())));
        assert_eq!(
            r(false, "Error:Invalid MAC(s):00s1122334400"),
            Ok((false, "Error:Invalid MAC(s):00s1122334400".into()))
        );
        assert_eq!(
            xmlrpc_result(&resp(401, &[], "denied"), "u/p"),
            Err(Failure::Auth("u/p".into()))
        );
        let fault = "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>4</int></value></member><member><name>faultString</name><value><string>Too many parameters.</string></value></member></struct></value></fault></methodResponse>";
        assert_eq!(
            xmlrpc_result(&resp(200, &[], fault), "u/p"),
            Err(Failure::Unknown(
                "XML-RPC fault 4: Too many parameters.".into()
            ))
        );
        for other in [
            "<html/>",
            "<methodResponse><params><param><value>OK</value></param></params></methodResponse>",
        ] {
            assert!(
                matches!(xmlrpc_result(&resp(200, &[], other), "u/p"), Err(Failure::Unknown(m)) if m.starts_with("HTTP 200")),
                "{other}"
            );
        }
    }
}
