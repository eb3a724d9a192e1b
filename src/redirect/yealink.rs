//! Yealink's redirection service (RPS) through its three APIs: the YMCS
//! Open API v2 (OAuth token), the signed "JSON API for RPS Management
//! Platform" on api-dm, and the RPS XML-RPC service. Request builders and
//! answer readers; pure.
//!
//! Sources (labels as in the project's notes on the vendors' APIs):
//! - YMCS v2 [W]: nethesis/falconieri `libs/ymcs` and
//!   nemerald-voip/fspbx `app/Services/YealinkRpsCloudProvider.php`:
//!   `POST /v2/token` with Basic `id:secret`, headers `timestamp` (ms) and
//!   `nonce` (32 hex), body `{"grant_type":"client_credentials"}`, answer
//!   `{access_token, token_type, expires_in}`; then `Authorization: Bearer`
//!   plus `timestamp` and `nonce`; `listServers` and `listDevices`
//!   (`{skip, limit, autoCount, filter}` → `{total, data: […]}`),
//!   `addDevicesByMac` (`[{mac, serverId}]` → `{total, successCount,
//!   failureCount, errors: [{mac, sn, errorInfo}]}`), `delDevices`
//!   (`{deviceIdType: "mac", deviceIds}`); errors `{code, error, requestId,
//!   message, details: [{field, message}]}` with the codes of falconieri's
//!   `errors.go` (800001 invalid MAC, 800003 already exists, 800004 managed
//!   by another organization, 900401, 900403, 900429, 900500). Yealink
//!   support, quoted in fspbx issue 600 [A]: addDevicesByMac "is not
//!   available to regular accounts" (HTTP 403, "This request is forbidden").
//! - RPS JSON API [C] (three independent clients: a Python `RPS` class, a
//!   PHP `YealinkRps`, automationadmin.com): the `X-Ca-*` signature,
//!   `server/list`, `device/list`, `device/add`, `device/checkMac`
//!   (`data.existed`), `device/migrate`, `device/delete`; answers `{ret,
//!   data, error}` where `error == null` means success and `ret` does not
//!   (the Python client takes `ret == 0` for a successful delete); errors
//!   carry `error.fieldErrors[].msg`, whose texts are not public.
//! - RPS XML-RPC [A, Yealink-derived]: Htek's copy of "Yealink XML API for
//!   RPS" (`registerDevice(mac, serverName)`; "OK", "Invalid MAC(s)",
//!   "Existing MAC(s): … registered by yourself", "Error: Invalid server",
//!   "Are you sure you want to override MAC addresses"; `editDevice`,
//!   `checkDevice`, `deRegisterDevice`); peoplefone/provisioning-rpc [W]
//!   (`checkDevice` answers `registered`, `unregistered`, `unknown`,
//!   `error:invalid mac`, `registered elsewhere`; the server-name error
//!   text); `editDevice(mac, serverName)` as a Fanvil clone's test script
//!   calls it [C].

use crate::http::client::{ClientRequest, ClientResponse};

use super::vendor::{self, json_bytes, percent_encode, unknown_answer, verbatim, words};
use super::{Failure, base64, hawk};

/// What the YMCS credentials are, for a refusal's message.
pub const YMCS_AUTH: &str = "YMCS refused the access key (access_key_id and access_key_secret from the RPS portal's System > Integration > API > Authentication Info, and the region of its Domain)";
/// What the api-dm credentials are.
pub const RPS_JSON_AUTH: &str =
    "the RPS JSON API refused the access key (access_key_id and access_key_secret)";
/// What the RPS XML-RPC credentials are.
pub const XMLRPC_AUTH: &str = "Yealink RPS XML-RPC refused user and password";

/// The error shown when YMCS refuses `addDevicesByMac` (fspbx issue 600).
pub const ADD_BY_MAC_FORBIDDEN: &str = "YMCS answered 403 to /v2/rps/addDevicesByMac: Yealink keeps adding devices by MAC alone off for regular accounts; ask Yealink support to enable /v2/rps/addDevicesByMac for this account (or add the phone with its serial number in the RPS portal)";

/// Items read of a listing per page, and pages read at most.
pub const PAGE: u64 = 100;
pub const MAX_PAGES: u64 = 20;

/// The MAC as the Yealink APIs write it: 12 lower-case hex digits (the
/// JSON APIs' `cleanMAC`/`normalizeMac`; RPS XML-RPC takes it too, per
/// Htek's "four types of valid MAC address format").
fn plain_mac(m: &str) -> String {
    m.chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// An id as a string, whether the JSON holds a string or a number.
fn id_text(v: &serde_json::Value) -> Option<String> {
    v.as_str()
        .map(str::to_string)
        .or_else(|| v.as_u64().map(|n| n.to_string()))
}

// ------------------------------------------------------------- YMCS v2

/// `POST <base>/v2/token`.
pub fn ymcs_token_request(
    base: &str,
    key_id: &str,
    secret: &str,
    ts_ms: u64,
    nonce: &str,
) -> ClientRequest {
    ClientRequest {
        method: "POST".to_string(),
        url: format!("{base}/v2/token"),
        headers: vec![
            (
                "Authorization".to_string(),
                format!("Basic {}", base64(format!("{key_id}:{secret}").as_bytes())),
            ),
            ("Content-Type".to_string(), "application/json".to_string()),
            ("Accept".to_string(), "application/json".to_string()),
            ("timestamp".to_string(), ts_ms.to_string()),
            ("nonce".to_string(), nonce.to_string()),
        ],
        body: json_bytes(&serde_json::json!({"grant_type": "client_credentials"})),
    }
}

/// A YMCS call with a bearer token.
pub fn ymcs_request(
    base: &str,
    path: &str,
    token: &str,
    body: &serde_json::Value,
    ts_ms: u64,
    nonce: &str,
) -> ClientRequest {
    ClientRequest {
        method: "POST".to_string(),
        url: format!("{base}{path}"),
        headers: vec![
            ("Authorization".to_string(), format!("Bearer {token}")),
            ("Content-Type".to_string(), "application/json".to_string()),
            ("Accept".to_string(), "application/json".to_string()),
            ("timestamp".to_string(), ts_ms.to_string()),
            ("nonce".to_string(), nonce.to_string()),
        ],
        body: json_bytes(body),
    }
}

/// The failure a YMCS error answer stands for. Body codes first (a string
/// in falconieri's `APIError`; a number is read too), then the status.
pub fn ymcs_failure(resp: &ClientResponse) -> Failure {
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
    let code = v.get("code").and_then(id_text).unwrap_or_default();
    let message = ymcs_message(&v);
    match code.as_str() {
        "800001" => Failure::MalformedMac,
        "800003" | "800004" => Failure::OwnedByOther,
        "900401" => Failure::Auth(YMCS_AUTH.to_string()),
        "900403" => Failure::Rejected(format!("YMCS forbids this request ({})", words(&message))),
        "900429" => Failure::RateLimited {
            retry_after_s: vendor::retry_after(resp),
        },
        "900500" => Failure::Service(format!("YMCS {code}: {}", words(&message))),
        _ if resp.status == 403 => {
            let why = if message.is_empty() {
                String::from_utf8_lossy(&resp.body).into_owned()
            } else {
                message
            };
            Failure::Rejected(format!("YMCS forbids this request ({})", words(&why)))
        }
        _ => vendor::status_failure(resp, YMCS_AUTH).unwrap_or_else(|| unknown_answer(resp)),
    }
}

/// The words of a YMCS error: `details[].message`, `message`, `error`.
fn ymcs_message(v: &serde_json::Value) -> String {
    let details: Vec<String> = v
        .get("details")
        .and_then(|d| d.as_array())
        .map(|d| {
            d.iter()
                .filter_map(|x| {
                    let m = x.get("message").or_else(|| x.get("msg"))?.as_str()?;
                    Some(match x.get("field").and_then(|f| f.as_str()) {
                        Some(f) => format!("{f}: {m}"),
                        None => m.to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if !details.is_empty() {
        return details.join(", ");
    }
    ["message", "error"]
        .iter()
        .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_default()
}

/// The token and its lifetime in seconds, from a `/v2/token` answer.
pub fn ymcs_token_answer(resp: &ClientResponse) -> Result<(String, u64), Failure> {
    if resp.status != 200 {
        return Err(ymcs_failure(resp));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&resp.body).map_err(|_| unknown_answer(resp))?;
    let token = v
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| unknown_answer(resp))?;
    let expires_in = v.get("expires_in").and_then(|e| e.as_u64()).unwrap_or(0);
    Ok((token.to_string(), expires_in))
}

/// The JSON of a successful YMCS answer (200 or 201).
pub fn ymcs_json(resp: &ClientResponse) -> Result<serde_json::Value, Failure> {
    if !matches!(resp.status, 200 | 201) {
        return Err(ymcs_failure(resp));
    }
    serde_json::from_slice(&resp.body).map_err(|_| unknown_answer(resp))
}

/// `{skip, limit, autoCount, filter}`.
pub fn ymcs_list_body(skip: u64, filter: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"skip": skip, "limit": PAGE, "autoCount": true, "filter": filter})
}

/// A listing page: its items and the total.
pub fn ymcs_page(v: &serde_json::Value) -> Option<(Vec<serde_json::Value>, u64)> {
    let items = v.get("data")?.as_array()?.clone();
    let total = v
        .get("total")
        .and_then(|t| t.as_u64())
        .unwrap_or(items.len() as u64);
    Some((items, total))
}

/// The id of the server named `name` among listing items.
pub fn server_id(items: &[serde_json::Value], name: &str) -> Option<String> {
    items
        .iter()
        .find(|s| s.get("serverName").and_then(|n| n.as_str()) == Some(name))
        .and_then(|s| s.get("id").or_else(|| s.get("_id")))
        .and_then(id_text)
}

/// A device of the account: its id and, when the listing says, its server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub id: String,
    pub server_id: Option<String>,
}

/// The device with `mac` among listing items.
pub fn device(items: &[serde_json::Value], mac: &str) -> Option<Listed> {
    let d = items.iter().find(|d| {
        d.get("mac")
            .and_then(|m| m.as_str())
            .map(plain_mac)
            .as_deref()
            == Some(mac)
    })?;
    Some(Listed {
        id: d.get("id").and_then(id_text)?,
        server_id: d.get("serverId").and_then(id_text),
    })
}

/// The outcome of a batch answer (`addDevicesByMac`, `delDevices`): the
/// first error's `errorInfo` (or `msg`) read as falconieri's
/// `ParseProviderError` reads it; no success and no error is an answer no
/// source describes.
pub fn ymcs_batch(v: &serde_json::Value) -> Result<(), Failure> {
    let count = |k: &str| v.get(k).and_then(|c| c.as_u64());
    let (Some(ok), Some(failed)) = (count("successCount"), count("failureCount")) else {
        return Err(Failure::Unknown(verbatim(&v.to_string())));
    };
    if failed == 0 && ok > 0 {
        return Ok(());
    }
    let info = v
        .get("errors")
        .and_then(|e| e.as_array())
        .and_then(|e| e.first())
        .and_then(|e| {
            e.get("errorInfo")
                .or_else(|| e.get("msg"))
                .and_then(id_text)
        })
        .unwrap_or_default();
    let lower = info.to_ascii_lowercase();
    Err(
        if info == "800001" || lower.contains("device.mac.invalid") {
            Failure::MalformedMac
        } else if matches!(info.as_str(), "800003" | "800004")
            || lower.contains("device already managed")
            || lower.contains("resource already exists")
        {
            Failure::OwnedByOther
        } else {
            Failure::Unknown(verbatim(&v.to_string()))
        },
    )
}

// ------------------------------------------------------- RPS JSON API

/// The string a Yealink RPS request's signature covers.
pub fn rps_string_to_sign(
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

/// A signed RPS JSON request. `path` starts with `/api/open/v1/`.
#[allow(clippy::too_many_arguments)]
pub fn rps_request(
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
    let body = body.map(json_bytes).unwrap_or_default();
    let md5 = (!body.is_empty()).then(|| content_md5(&body));
    let to_sign = rps_string_to_sign(method, md5.as_deref(), key_id, nonce, ts_ms, path, query);
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

/// The `data` of an RPS JSON answer. `error == null` is success whatever
/// `ret` says; an error's words are its `fieldErrors[].msg` (else its
/// `msg`/`message`, else the whole error), kept verbatim: no source gives
/// their texts or codes, so none is read as a known refusal.
pub fn rps_answer(resp: &ClientResponse) -> Result<serde_json::Value, Failure> {
    if let Some(f) = vendor::status_failure(resp, RPS_JSON_AUTH) {
        return Err(f);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&resp.body).map_err(|_| unknown_answer(resp))?;
    let Some(obj) = v.as_object() else {
        return Err(unknown_answer(resp));
    };
    match obj.get("error") {
        Some(serde_json::Value::Null) => {
            Ok(obj.get("data").cloned().unwrap_or(serde_json::Value::Null))
        }
        None => Err(unknown_answer(resp)),
        Some(error) => {
            let fields: Vec<String> = error
                .get("fieldErrors")
                .and_then(|f| f.as_array())
                .map(|f| {
                    f.iter()
                        .filter_map(|e| e.get("msg").and_then(|m| m.as_str()).map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let msg = if fields.is_empty() {
                error
                    .as_str()
                    .or_else(|| error.get("msg").and_then(|m| m.as_str()))
                    .or_else(|| error.get("message").and_then(|m| m.as_str()))
                    .map_or_else(|| error.to_string(), str::to_string)
            } else {
                fields.join("; ")
            };
            Err(Failure::Unknown(verbatim(&format!("RPS error: {msg}"))))
        }
    }
}

/// Items of an RPS JSON listing (`data.data[]`, or `data[]`) and the total.
pub fn rps_page(data: &serde_json::Value) -> (Vec<serde_json::Value>, u64) {
    let items = data
        .get("data")
        .and_then(|d| d.as_array())
        .or_else(|| data.as_array())
        .cloned()
        .unwrap_or_default();
    let total = data
        .get("total")
        .and_then(|t| t.as_u64())
        .unwrap_or(items.len() as u64);
    (items, total)
}

/// `data.existed` of a `device/checkMac` answer.
pub fn rps_existed(data: &serde_json::Value) -> Option<bool> {
    data.get("existed").and_then(|e| e.as_bool())
}

// ----------------------------------------------------------- XML-RPC

/// What an RPS XML-RPC result text says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RpsText {
    Ok,
    /// "Existing MAC(s)": registered by this account, on some server.
    Existing,
    InvalidMac,
    InvalidServer,
    /// "The server name can only contain 'A-z 0-9 - _ . '(include space)".
    ServerName,
    /// "Are you sure you want to override MAC addresses": another account's.
    Override,
    /// `checkDevice` states.
    Registered,
    Unregistered,
    Unknown,
    RegisteredElsewhere,
    /// Anything else, as written.
    Other(String),
}

pub fn rps_text(text: &str) -> RpsText {
    let lower = text.trim().to_ascii_lowercase();
    match lower.as_str() {
        "ok" => return RpsText::Ok,
        "registered" => return RpsText::Registered,
        "unregistered" => return RpsText::Unregistered,
        "unknown" => return RpsText::Unknown,
        "registered elsewhere" => return RpsText::RegisteredElsewhere,
        _ => {}
    }
    if lower.contains("existing mac") {
        RpsText::Existing
    } else if lower.contains("invalid mac") {
        RpsText::InvalidMac
    } else if lower.contains("invalid server") {
        RpsText::InvalidServer
    } else if lower.contains("server name can only contain") {
        RpsText::ServerName
    } else if lower.contains("want to override") {
        RpsText::Override
    } else {
        RpsText::Other(text.to_string())
    }
}

/// An RPS XML-RPC result: the flag and what the text says.
pub fn rps_result(resp: &ClientResponse) -> Result<(bool, RpsText), Failure> {
    let (ok, text) = vendor::xmlrpc_result(resp, XMLRPC_AUTH)?;
    Ok((ok, rps_text(&text)))
}

/// The failure a documented RPS refusal stands for; `None` for texts that
/// are not refusals.
pub fn rps_failure(t: &RpsText, server: &str) -> Option<Failure> {
    Some(match t {
        RpsText::InvalidMac => Failure::MalformedMac,
        RpsText::Override | RpsText::RegisteredElsewhere => Failure::OwnedByOther,
        RpsText::InvalidServer => Failure::Rejected(format!(
            "Yealink RPS has no server named {:?}: add it in the RPS portal with this box's provisioning URL",
            words(server)
        )),
        RpsText::ServerName => Failure::Rejected(
            "Yealink RPS server names may only contain A-z 0-9 - _ . and space".to_string(),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::vendor::tests::{resp, xml_answer};
    use super::*;

    #[test]
    fn rps_signatures() {
        let body = serde_json::json!({"macs": ["001565aabb01"], "serverId": "s1"});
        let r = rps_request(
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
        let q = rps_request(
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
            rps_string_to_sign("GET", None, "AK", "n", 1, "/x", &[("a", ""), ("b", "2")]),
            "GET\nX-Ca-Key:AK\nX-Ca-Nonce:n\nX-Ca-Timestamp:1\nx\na&b=2"
        );
    }

    /// The example values two public clients' tests say come from Yealink's
    /// doc (a PHP signer and a Go client; repositories not known) [C].
    #[test]
    fn rps_signature_matches_the_published_example() {
        let (ak, sk) = (
            "2df23f2d9c255e7138dc603b3847b58a",
            "d4a4be460a8d43609d8e8a5e7d0d4ad1",
        );
        let body = br#"{"key":"TestServer","skip":0}"#;
        let md5 = content_md5(body);
        assert_eq!(md5, "SsPhq3/DEuS3yHj3kYOV9w==");
        let s = rps_string_to_sign(
            "POST",
            Some(&md5),
            ak,
            "b681e77450a04d22aaffc914a3379561",
            1_544_008_291_631,
            "/api/open/v1/server/list",
            &[],
        );
        assert_eq!(
            hawk::mac(sk, &s),
            "JVPj8C4CVKbFJW6A33yZcdSsde7Hfxy9EoJiE0epeKM="
        );
        let s = rps_string_to_sign(
            "GET",
            None,
            ak,
            "9e730a223b48433785494801fb016d39",
            1_544_094_691_000,
            "/api/open/v1/device/checkMac",
            &[("mac", "001565123123")],
        );
        assert_eq!(
            hawk::mac(sk, &s),
            "+speRmYv89rutzPc9u5Ij1JrtnrUw7nhJnqQfD1h5AU="
        );
    }

    #[test]
    fn rps_answers() {
        let ok = resp(
            200,
            &[],
            r#"{"ret":1,"data":{"total":1,"data":[{"id":"s1","serverName":"kpbx"}]},"error":null}"#,
        );
        let data = rps_answer(&ok).unwrap();
        let (items, total) = rps_page(&data);
        assert_eq!(
            (server_id(&items, "kpbx").as_deref(), total),
            (Some("s1"), 1)
        );
        assert_eq!(server_id(&items, "other"), None);
        // `ret` is not a success flag: error null is.
        assert_eq!(
            rps_answer(&resp(200, &[], r#"{"ret":0,"data":null,"error":null}"#)),
            Ok(serde_json::Value::Null)
        );
        // fieldErrors' texts are not public: kept verbatim, never a success.
        let e = rps_answer(&resp(
            200,
            &[],
            r#"{"ret":1,"data":null,"error":{"fieldErrors":[{"field":"macs","msg":"first"},{"msg":"second"}]}}"#,
        ));
        assert_eq!(e, Err(Failure::Unknown("RPS error: first; second".into())));
        assert!(matches!(
            rps_answer(&resp(200, &[], r#"{"ret":-1,"error":{"code":7}}"#)),
            Err(Failure::Unknown(m)) if m.contains("\"code\":7")
        ));
        assert_eq!(
            rps_answer(&resp(401, &[], "")),
            Err(Failure::Auth(RPS_JSON_AUTH.into()))
        );
        assert!(matches!(
            rps_answer(&resp(403, &[], "x")),
            Err(Failure::Unknown(_))
        ));
        assert!(matches!(
            rps_answer(&resp(200, &[], "[]")),
            Err(Failure::Unknown(_))
        ));
        let devices =
            serde_json::json!({"data": [{"id": 7, "mac": "00:15:65:AA:BB:01", "serverId": "s0"}]});
        let (items, _) = rps_page(&devices);
        assert_eq!(
            device(&items, "001565aabb01"),
            Some(Listed {
                id: "7".into(),
                server_id: Some("s0".into())
            })
        );
        assert_eq!(device(&items, "001565aabb02"), None);
        assert_eq!(
            rps_existed(&serde_json::json!({"existed": true})),
            Some(true)
        );
        assert_eq!(rps_existed(&serde_json::json!({})), None);
    }

    #[test]
    fn ymcs_requests_and_answers() {
        let t = ymcs_token_request(
            "https://eu-api.ymcs.yealink.com",
            "id",
            "sec",
            1_700_000_000_123,
            "ab",
        );
        assert_eq!(t.url, "https://eu-api.ymcs.yealink.com/v2/token");
        let h = |r: &ClientRequest, k: &str| {
            r.headers
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            h(&t, "Authorization"),
            Some(format!("Basic {}", base64(b"id:sec")))
        );
        assert_eq!(h(&t, "timestamp").as_deref(), Some("1700000000123"));
        assert_eq!(h(&t, "nonce").as_deref(), Some("ab"));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&t.body).unwrap(),
            serde_json::json!({"grant_type": "client_credentials"})
        );
        let tok = resp(
            200,
            &[],
            r#"{"access_token":"tk","token_type":"bearer","expires_in":7200}"#,
        );
        assert_eq!(ymcs_token_answer(&tok), Ok(("tk".into(), 7200)));
        assert!(matches!(
            ymcs_token_answer(&resp(200, &[], r#"{"access_token":"a b"}"#)),
            Err(Failure::Unknown(_))
        ));
        let c = ymcs_request(
            "https://b",
            "/v2/rps/listDevices",
            "tk",
            &serde_json::json!({}),
            5,
            "n",
        );
        assert_eq!(h(&c, "Authorization").as_deref(), Some("Bearer tk"));

        let err = |status: u16, code: &str| {
            ymcs_failure(&resp(
                status,
                &[],
                &format!(r#"{{"code":"{code}","requestId":"r","message":"m","details":[]}}"#),
            ))
        };
        assert_eq!(err(400, "800001"), Failure::MalformedMac);
        assert_eq!(err(400, "800003"), Failure::OwnedByOther);
        assert_eq!(err(400, "800004"), Failure::OwnedByOther);
        assert_eq!(err(401, "900401"), Failure::Auth(YMCS_AUTH.into()));
        assert!(matches!(err(403, "900403"), Failure::Rejected(m) if m.contains("forbids")));
        assert_eq!(
            err(429, "900429"),
            Failure::RateLimited {
                retry_after_s: None
            }
        );
        assert!(matches!(err(500, "900500"), Failure::Service(_)));
        assert!(matches!(err(400, "800007"), Failure::Unknown(m) if m.contains("800007")));
        // fspbx issue 600: a regular account's 403, message only.
        assert!(matches!(
            ymcs_failure(&resp(403, &[], r#"{"message":"This request is forbidden"}"#)),
            Failure::Rejected(m) if m.contains("This request is forbidden")
        ));
        assert_eq!(
            ymcs_failure(&resp(401, &[], r#"{"error":"invalid_client"}"#)),
            Failure::Auth(YMCS_AUTH.into())
        );
        assert_eq!(
            ymcs_failure(&resp(
                400,
                &[],
                r#"{"code":"900400","details":[{"field":"mac","message":"bad"}]}"#
            )),
            Failure::Unknown(
                r#"HTTP 400: {"code":"900400","details":[{"field":"mac","message":"bad"}]}"#.into()
            )
        );

        let batch = |v: serde_json::Value| ymcs_batch(&v);
        assert_eq!(
            batch(serde_json::json!({"total":1,"successCount":1,"failureCount":0,"errors":[]})),
            Ok(())
        );
        assert_eq!(
            batch(
                serde_json::json!({"total":1,"successCount":0,"failureCount":1,"errors":[{"mac":"x","sn":"","errorInfo":"device.mac.invalid"}]})
            ),
            Err(Failure::MalformedMac)
        );
        assert_eq!(
            batch(
                serde_json::json!({"total":1,"successCount":0,"failureCount":1,"errors":[{"mac":"x","errorInfo":"800004"}]})
            ),
            Err(Failure::OwnedByOther)
        );
        assert!(matches!(
            batch(serde_json::json!({"total":1,"successCount":0,"failureCount":1,"errors":[{"mac":"x","errorInfo":"device.sn.required"}]})),
            Err(Failure::Unknown(m)) if m.contains("device.sn.required")
        ));
        assert!(matches!(
            batch(serde_json::json!({"total":1,"successCount":0,"failureCount":0})),
            Err(Failure::Unknown(_))
        ));
        assert!(matches!(
            batch(serde_json::json!([])),
            Err(Failure::Unknown(_))
        ));
        let page = serde_json::json!({"skip":0,"limit":100,"total":3,"data":[{"id":"d1","mac":"001565aabb01","serverId":"s2"}]});
        let (items, total) = ymcs_page(&page).unwrap();
        assert_eq!(total, 3);
        assert_eq!(
            device(&items, "001565aabb01").unwrap().server_id.as_deref(),
            Some("s2")
        );
    }

    #[test]
    fn rps_texts() {
        let r = |ok, t: &str| rps_result(&resp(200, &[], &xml_answer(ok, t))).unwrap().1;
        assert_eq!(r(true, "OK"), RpsText::Ok);
        assert_eq!(r(false, "Existing MAC(s): 001fc1000001"), RpsText::Existing);
        assert_eq!(
            r(false, "Error:Invalid MAC(s):00s1122334400"),
            RpsText::InvalidMac
        );
        assert_eq!(r(false, "error:invalid mac"), RpsText::InvalidMac);
        assert_eq!(r(false, "Error: Invalid server"), RpsText::InvalidServer);
        assert_eq!(
            r(
                false,
                "Error:The server name can only contain 'A-z 0-9 - _ . '(include space)"
            ),
            RpsText::ServerName
        );
        assert_eq!(
            r(false, "Are you sure you want to override MAC addresses"),
            RpsText::Override
        );
        assert_eq!(r(true, "registered"), RpsText::Registered);
        assert_eq!(
            r(true, "Registered elsewhere"),
            RpsText::RegisteredElsewhere
        );
        assert_eq!(r(true, "unregistered"), RpsText::Unregistered);
        assert_eq!(r(true, "unknown"), RpsText::Unknown);
        assert_eq!(r(false, "quota"), RpsText::Other("quota".into()));
        assert_eq!(
            rps_failure(&RpsText::Override, "s"),
            Some(Failure::OwnedByOther)
        );
        assert_eq!(
            rps_failure(&RpsText::InvalidMac, "s"),
            Some(Failure::MalformedMac)
        );
        assert!(
            matches!(rps_failure(&RpsText::InvalidServer, "kpbx"), Some(Failure::Rejected(m)) if m.contains("kpbx"))
        );
        assert_eq!(rps_failure(&RpsText::Existing, "s"), None);
    }
}
