//! Snom's redirection services: SRAPS (REST, Hawk) and the legacy XML-RPC
//! API. Request builders and answer readers; pure.
//!
//! Sources (labels as in the project's notes on the vendors' APIs):
//! - SRAPS: service.snom.com "REST API" (Hawk, access keys) [A]; the
//!   working client nethesis/falconieri master, `libs/grape` and
//!   `providers/sraps.go` [W]: `tokens/<key id>` → `links.company` →
//!   `links.endpoints`; `GET settings/?page_size=1000` (a JSON array of
//!   `{uuid, param_name}`, more pages behind `Link: <…>; rel="next"`) for
//!   the uuid of `setting_server`; `PUT <endpoints><mac>` with
//!   `{"mac", "autoprovisioning_enabled", "settings_manager": {<uuid>:
//!   {"value": <url>, "attrs": {"perm": "RW"}}}}`; every request Hawk-signed
//!   with a payload hash (an empty payload for GET and DELETE); error text
//!   from `message`, `error` or `detail`; `taken_mac_or_forbidden` and
//!   "User lacks permission to endpoint" mean the MAC is another account's
//!   (commit b7bee26). An independent SRAPS tool [C]: profiles listed at
//!   `<company>/provisioning-profiles/?page_size=1000` (`results` + `next`,
//!   or a bare array; items `uuid` or `id`, `name`), an endpoint assigned to
//!   one with `provisioning_profile: <uuid>`, released with `DELETE`.
//!   Not public: creating profiles, SRAPS's error statuses, its answer to
//!   a malformed MAC. Stale Hawk timestamps: the Hawk specification's
//!   `WWW-Authenticate` challenge; that SRAPS sends it is inferred [I].
//! - XML-RPC: service.snom.com "XML-RPC API" [A] (`redirect.registerPhone`,
//!   `deregisterPhone`; `Error:owned_by_other_user`, `Error:malformed_url`,
//!   `Error:malformed_mac`), Snom's Redirection Server Console [A]
//!   (`checkPhone`; `Error:no_such_mac`; its `update` deregisters then
//!   registers), peoplefone/provisioning-rpc [W] (`checkPhone` before
//!   registering; texts compared without case).

use crate::http::client::{ClientRequest, ClientResponse, Url};

use super::vendor::{self, json_bytes, percent_encode, unknown_answer, verbatim, words};
use super::{Failure, hawk};

/// What the SRAPS credentials are, for a refusal's message.
pub const SRAPS_AUTH: &str = "SRAPS refused the access key (access_key_id and access_key_secret from SRAPS Dashboard > API Keys; the key needs a Role)";
/// What Snom's XML-RPC credentials are.
pub const XMLRPC_AUTH: &str =
    "Snom's XML-RPC service refused user and password (the SRAPS account's login)";

/// The setting that holds a phone's provisioning URL on SRAPS
/// (falconieri `providers/sraps.go`: `ProvisioningSettingName = "setting_server"`).
pub const SETTING_SERVER: &str = "setting_server";

/// Pages read of a listing at most (1000 items each).
pub const MAX_PAGES: usize = 20;

// --------------------------------------------------------------- SRAPS

/// A Hawk-signed SRAPS request, in falconieri's form: `hash` always sent
/// (of an empty payload and content type for GET and DELETE), `Accept:
/// application/json`, `Content-Type: application/json` with a body.
pub fn sraps_request(
    method: &str,
    url: &str,
    key_id: &str,
    key: &str,
    body: Option<&serde_json::Value>,
    ts: u64,
    nonce: &str,
) -> Result<ClientRequest, Failure> {
    let parsed = Url::parse(url).map_err(|e| Failure::Unknown(verbatim(&e)))?;
    let body = body.map(json_bytes).unwrap_or_default();
    let content_type = if body.is_empty() {
        ""
    } else {
        "application/json"
    };
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
        Some((content_type, body.as_slice())),
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

/// The first page of the settings catalogue.
pub fn sraps_settings_url(base: &str) -> String {
    format!("{base}settings/?page_size=1000")
}

/// The first page of a company's provisioning profiles.
pub fn sraps_profiles_url(company: &str) -> String {
    format!(
        "{}/provisioning-profiles/?page_size=1000",
        company.trim_end_matches('/')
    )
}

/// The endpoint (phone) resource of a MAC under the company's endpoints URL.
pub fn sraps_endpoint_url(endpoints: &str, mac: &str) -> String {
    if endpoints.ends_with('/') {
        format!("{endpoints}{mac}")
    } else {
        format!("{endpoints}/{mac}")
    }
}

/// Where the endpoint's provisioning comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assignment {
    /// A provisioning profile (named like the redirection server).
    Profile(String),
    /// The endpoint's own `setting_server` setting (its uuid), with the URL.
    Setting { uuid: String, url: String },
}

/// The body of `PUT <endpoint>`.
pub fn sraps_endpoint_body(mac: &str, how: &Assignment) -> serde_json::Value {
    match how {
        Assignment::Profile(uuid) => serde_json::json!({
            "mac": mac,
            "autoprovisioning_enabled": true,
            "provisioning_profile": uuid,
        }),
        Assignment::Setting { uuid, url } => serde_json::json!({
            "mac": mac,
            "autoprovisioning_enabled": true,
            "settings_manager": { uuid.as_str(): { "value": url, "attrs": { "perm": "RW" } } },
        }),
    }
}

/// The message of an SRAPS error body (`message`, `error` or `detail`, as
/// falconieri's `parseErrorResponse` reads it), else the body.
pub fn sraps_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let msg = parsed.as_ref().and_then(|v| {
        ["message", "error", "detail"]
            .iter()
            .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_string))
    });
    msg.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}

/// Whether SRAPS's words say the MAC belongs to another account
/// (falconieri `utils.go`, commit b7bee26).
pub fn sraps_owned_by_other(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("taken_mac_or_forbidden")
        || (lower.contains("permission") && lower.contains("endpoint"))
}

/// A Hawk "Stale timestamp" refusal: the service's time, if its `tsm`
/// proves it comes from a holder of the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stale {
    /// The service's own time, authenticated.
    At(u64),
    /// A stale refusal without a usable time.
    Unusable(String),
}

/// Whether a 401 is Hawk's stale-timestamp refusal.
pub fn sraps_stale(resp: &ClientResponse, key: &str) -> Option<Stale> {
    if resp.status != 401 {
        return None;
    }
    let header = resp.header("www-authenticate")?;
    let c = hawk::parse_challenge(header)?;
    if !c
        .error
        .as_deref()
        .is_some_and(|e| e.to_ascii_lowercase().contains("stale"))
    {
        return None;
    }
    Some(match (c.ts, c.tsm) {
        (Some(ts), Some(tsm)) if tsm == hawk::ts_mac(key, ts) => Stale::At(ts),
        _ => Stale::Unusable(verbatim(header)),
    })
}

/// The outcome of an SRAPS answer (other than a stale timestamp, which
/// the flow handles first).
pub fn sraps_outcome(resp: &ClientResponse) -> Result<(), Failure> {
    if (200..=299).contains(&resp.status) {
        return Ok(());
    }
    let msg = sraps_message(&resp.body);
    if resp.status != 401 && sraps_owned_by_other(&msg) {
        return Err(Failure::OwnedByOther);
    }
    match vendor::status_failure(resp, SRAPS_AUTH) {
        Some(Failure::Unknown(_)) | None => Err(Failure::Unknown(verbatim(&format!(
            "HTTP {}: {msg}",
            resp.status
        )))),
        Some(f) => Err(f),
    }
}

/// The JSON of a 2xx SRAPS answer.
pub fn sraps_json(resp: &ClientResponse) -> Result<serde_json::Value, Failure> {
    sraps_outcome(resp)?;
    serde_json::from_slice(&resp.body).map_err(|_| unknown_answer(resp))
}

/// Whether `link` stays on the service's host: credentials and MACs are
/// never sent elsewhere.
fn on_service(link: &str, base: &str) -> bool {
    matches!((Url::parse(link), Url::parse(base)), (Ok(a), Ok(b)) if a.same_origin(&b))
}

/// `links.<name>` of an SRAPS resource, which must stay on the service's host.
pub fn sraps_link(resp: &ClientResponse, name: &str, base: &str) -> Result<String, Failure> {
    let v = sraps_json(resp)?;
    let link = v
        .get("links")
        .and_then(|l| l.get(name))
        .and_then(|l| l.as_str())
        .ok_or_else(|| unknown_answer(resp))?;
    if !on_service(link, base) {
        return Err(Failure::Unknown(verbatim(&format!(
            "SRAPS links.{name} leaves the service: {link}"
        ))));
    }
    Ok(link.to_string())
}

/// One page of an SRAPS listing: its items and the next page, if any. A
/// page is a bare array with `Link: <…>; rel="next"` (falconieri) or
/// `{"results": […], "next": …}` (the SRAPS tool); a next page off the
/// service's host is not followed.
pub fn sraps_page(
    resp: &ClientResponse,
    base: &str,
) -> Result<(Vec<serde_json::Value>, Option<String>), Failure> {
    let v = sraps_json(resp)?;
    let (items, next) = match v {
        serde_json::Value::Array(items) => (items, resp.header("link").and_then(link_next)),
        serde_json::Value::Object(mut o) => match o.remove("results") {
            Some(serde_json::Value::Array(items)) => (
                items,
                o.get("next").and_then(|n| n.as_str()).map(str::to_string),
            ),
            _ => return Err(unknown_answer(resp)),
        },
        _ => return Err(unknown_answer(resp)),
    };
    Ok((items, next.filter(|n| on_service(n, base))))
}

/// The `rel="next"` target of an RFC 8288 `Link` header.
pub fn link_next(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let mut segs = part.split(';');
        let target = segs.next()?.trim();
        segs.any(|s| {
            let s = s.trim();
            s == "rel=\"next\"" || s == "rel=next"
        })
        .then(|| {
            target
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// The uuid of the setting named `param_name` in a settings page.
pub fn sraps_setting_uuid(items: &[serde_json::Value], param_name: &str) -> Option<String> {
    items
        .iter()
        .find(|s| s.get("param_name").and_then(|n| n.as_str()) == Some(param_name))
        .and_then(|s| s.get("uuid"))
        .and_then(|u| u.as_str())
        .map(str::to_string)
}

/// The uuid of the profile named `name` in a profiles page (`uuid`, or `id`).
pub fn sraps_profile_uuid(items: &[serde_json::Value], name: &str) -> Option<String> {
    items
        .iter()
        .find(|p| p.get("name").and_then(|n| n.as_str()) == Some(name))
        .and_then(|p| p.get("uuid").or_else(|| p.get("id")))
        .and_then(|u| {
            u.as_str()
                .map(str::to_string)
                .or_else(|| u.as_u64().map(|n| n.to_string()))
        })
}

// ------------------------------------------------------- legacy XML-RPC

/// What a Snom result text says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnomText {
    /// "Ok" (the wiki writes `Ok`; compared without case).
    Ok,
    NoSuchMac,
    OwnedByOther,
    MalformedMac,
    MalformedUrl,
    /// Anything else, as written.
    Other(String),
}

pub fn snom_text(text: &str) -> SnomText {
    match text.trim().to_ascii_lowercase().as_str() {
        "ok" => SnomText::Ok,
        "error:no_such_mac" => SnomText::NoSuchMac,
        "error:owned_by_other_user" => SnomText::OwnedByOther,
        "error:malformed_mac" => SnomText::MalformedMac,
        "error:malformed_url" => SnomText::MalformedUrl,
        _ => SnomText::Other(text.to_string()),
    }
}

/// A Snom `[flag, text]` result as one of the documented texts. The flag
/// must agree with the text (True with "Ok", False with an error);
/// otherwise the answer is not one the sources describe.
pub fn snom_result(resp: &ClientResponse) -> Result<SnomText, Failure> {
    let (ok, text) = vendor::xmlrpc_result(resp, XMLRPC_AUTH)?;
    let t = snom_text(&text);
    match (&t, ok) {
        (SnomText::Ok, true) => Ok(t),
        (SnomText::Other(_), _) | (SnomText::Ok, false) => {
            Err(Failure::Unknown(verbatim(&format!("[{ok}, {text:?}]"))))
        }
        (_, false) => Ok(t),
        (_, true) => Err(Failure::Unknown(verbatim(&format!("[{ok}, {text:?}]")))),
    }
}

/// The failure a documented Snom error text stands for.
pub fn snom_failure(t: &SnomText, prov_url: &str) -> Failure {
    match t {
        SnomText::OwnedByOther => Failure::OwnedByOther,
        SnomText::MalformedMac => Failure::MalformedMac,
        SnomText::MalformedUrl => Failure::Rejected(format!(
            "Snom refused the provisioning URL {} as malformed",
            words(prov_url)
        )),
        SnomText::Ok | SnomText::NoSuchMac | SnomText::Other(_) => {
            Failure::Unknown(verbatim(&format!("{t:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::vendor::tests::{resp, xml_answer};
    use super::*;

    #[test]
    fn sraps_requests_are_hawk_signed_as_falconieri_does() {
        let how = Assignment::Setting {
            uuid: "50a4".into(),
            url: "https://pbx.example/prov/".into(),
        };
        let body = sraps_endpoint_body("000413a1b2c3", &how);
        assert_eq!(
            body,
            serde_json::json!({"mac": "000413a1b2c3", "autoprovisioning_enabled": true,
                "settings_manager": {"50a4": {"value": "https://pbx.example/prov/", "attrs": {"perm": "RW"}}}})
        );
        assert!(body.get("provisioning_url").is_none());
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
        let hash = hawk::payload_hash("application/json", &r.body);
        let normalized = format!(
            "hawk.1.header\n1700000000\nabc123\nPUT\n/api/v1/companies/7/endpoints/000413a1b2c3\napi.sraps.snom.com\n443\n{hash}\n\n"
        );
        assert_eq!(
            r.headers[0].1,
            format!(
                "Hawk id=\"key-id\", ts=\"1700000000\", nonce=\"abc123\", hash=\"{hash}\", mac=\"{}\"",
                hawk::mac("secret", &normalized)
            )
        );
        // GET: the hash of an empty payload with an empty content type
        // (falconieri `calculatePayloadHash(nil, "")`), and no Content-Type.
        let g = sraps_request(
            "GET",
            "https://api.sraps.snom.com/api/v1/settings/?page_size=1000",
            "key-id",
            "secret",
            None,
            1,
            "n",
        )
        .unwrap();
        let empty = hawk::payload_hash("", b"");
        assert!(g.headers[0].1.contains(&format!("hash=\"{empty}\"")));
        let n = format!(
            "hawk.1.header\n1\nn\nGET\n/api/v1/settings/?page_size=1000\napi.sraps.snom.com\n443\n{empty}\n\n"
        );
        assert!(
            g.headers[0]
                .1
                .ends_with(&format!("mac=\"{}\"", hawk::mac("secret", &n)))
        );
        assert!(g.headers.iter().all(|(k, _)| k != "Content-Type"));
        assert_eq!(
            sraps_endpoint_body("000413a1b2c3", &Assignment::Profile("p-1".into())),
            serde_json::json!({"mac": "000413a1b2c3", "autoprovisioning_enabled": true, "provisioning_profile": "p-1"})
        );
    }

    #[test]
    fn sraps_outcomes() {
        assert_eq!(sraps_outcome(&resp(200, &[], "{}")), Ok(()));
        assert_eq!(
            sraps_outcome(&resp(401, &[], "")),
            Err(Failure::Auth(SRAPS_AUTH.into()))
        );
        for (status, body) in [
            (400, r#"{"message":"taken_mac_or_forbidden"}"#),
            (403, r#"{"detail":"User lacks permission to endpoint"}"#),
            (403, r#"{"error":"taken_mac_or_forbidden"}"#),
            (400, "taken_mac_or_forbidden"),
        ] {
            assert_eq!(
                sraps_outcome(&resp(status, &[], body)),
                Err(Failure::OwnedByOther),
                "{body}"
            );
        }
        // No source shows SRAPS's answer to a malformed MAC, nor a 409.
        assert_eq!(
            sraps_outcome(&resp(409, &[], r#"{"message":"x"}"#)),
            Err(Failure::Unknown("HTTP 409: x".into()))
        );
        assert_eq!(
            sraps_outcome(&resp(429, &[("Retry-After", "30")], "")),
            Err(Failure::RateLimited {
                retry_after_s: Some(30)
            })
        );
        assert!(matches!(
            sraps_outcome(&resp(503, &[], "")),
            Err(Failure::Service(_))
        ));
    }

    #[test]
    fn stale_timestamps_are_trusted_only_with_their_tsm() {
        let ok = format!(
            "Hawk ts=\"1700000100\", tsm=\"{}\", error=\"Stale timestamp\"",
            hawk::ts_mac("k", 1_700_000_100)
        );
        assert_eq!(
            sraps_stale(&resp(401, &[("WWW-Authenticate", &ok)], ""), "k"),
            Some(Stale::At(1_700_000_100))
        );
        assert!(matches!(
            sraps_stale(&resp(401, &[("WWW-Authenticate", &ok)], ""), "other key"),
            Some(Stale::Unusable(_))
        ));
        let bad_mac = "Hawk error=\"Bad mac\"";
        assert_eq!(
            sraps_stale(&resp(401, &[("WWW-Authenticate", bad_mac)], ""), "k"),
            None
        );
        assert_eq!(sraps_stale(&resp(401, &[], ""), "k"), None);
        assert_eq!(
            sraps_stale(&resp(403, &[("WWW-Authenticate", &ok)], ""), "k"),
            None
        );
    }

    #[test]
    fn sraps_links_and_pages_stay_on_the_service() {
        let base = "https://api.sraps.snom.com/api/v1/";
        let ok = resp(
            200,
            &[],
            r#"{"links":{"company":"https://api.sraps.snom.com/api/v1/companies/7"}}"#,
        );
        assert_eq!(
            sraps_link(&ok, "company", base).unwrap(),
            "https://api.sraps.snom.com/api/v1/companies/7"
        );
        let away = resp(
            200,
            &[],
            r#"{"links":{"company":"https://evil.example/c"}}"#,
        );
        assert!(matches!(
            sraps_link(&away, "company", base),
            Err(Failure::Unknown(_))
        ));
        assert!(sraps_link(&resp(200, &[], "nope"), "company", base).is_err());

        let page = resp(
            200,
            &[(
                "Link",
                "<https://api.sraps.snom.com/api/v1/settings/?page=2&page_size=1000>; rel=\"next\", <https://api.sraps.snom.com/api/v1/settings/?page=1>; rel=\"prev\"",
            )],
            r#"[{"uuid":"u1","param_name":"setting_x"},{"uuid":"u2","param_name":"setting_server"}]"#,
        );
        let (items, next) = sraps_page(&page, base).unwrap();
        assert_eq!(
            sraps_setting_uuid(&items, SETTING_SERVER).as_deref(),
            Some("u2")
        );
        assert_eq!(
            next.as_deref(),
            Some("https://api.sraps.snom.com/api/v1/settings/?page=2&page_size=1000")
        );
        let drf = resp(
            200,
            &[],
            r#"{"count":1,"next":"https://evil.example/p2","results":[{"id":5,"name":"kpbx"}]}"#,
        );
        let (items, next) = sraps_page(&drf, base).unwrap();
        assert_eq!(sraps_profile_uuid(&items, "kpbx").as_deref(), Some("5"));
        assert_eq!(next, None, "a next page off the service is not followed");
        assert!(sraps_page(&resp(200, &[], r#"{"x":1}"#), base).is_err());
        assert_eq!(link_next("<a>; rel=\"prev\""), None);
    }

    #[test]
    fn snom_texts() {
        let r = |ok, t: &str| snom_result(&resp(200, &[], &xml_answer(ok, t)));
        assert_eq!(r(true, "Ok"), Ok(SnomText::Ok));
        assert_eq!(r(true, "OK"), Ok(SnomText::Ok));
        assert_eq!(r(false, "Error:no_such_mac"), Ok(SnomText::NoSuchMac));
        assert_eq!(
            r(false, "error:owned_by_other_user"),
            Ok(SnomText::OwnedByOther)
        );
        assert_eq!(r(false, "Error:malformed_mac"), Ok(SnomText::MalformedMac));
        assert_eq!(r(false, "Error:malformed_url"), Ok(SnomText::MalformedUrl));
        // Flag and text disagree, or the text is none of the documented ones.
        for (ok, t) in [
            (false, "Ok"),
            (true, "Error:no_such_mac"),
            (false, "Error:quota"),
        ] {
            assert!(matches!(r(ok, t), Err(Failure::Unknown(_))), "{ok} {t}");
        }
        assert_eq!(
            snom_failure(&SnomText::MalformedUrl, "https://p/"),
            Failure::Rejected("Snom refused the provisioning URL https://p/ as malformed".into())
        );
    }
}
