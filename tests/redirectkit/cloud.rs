//! The vendors' redirection services in memory, on one port, answering
//! with the payloads the public sources show (the project's notes on the
//! vendors' APIs, §1–§5). Every payload names its source; where no source
//! shows one, the answer says `UNDOCUMENTED` and the client must treat it
//! as unknown. Paths:
//!
//! - `/api/v1/…`: Snom SRAPS (Hawk),
//! - `/xmlrpc/`: Snom's XML-RPC service,
//! - `/yealink/xmlrpc`: Yealink RPS XML-RPC,
//! - `/api/open/v1/…`: Yealink's signed RPS JSON API (api-dm),
//! - `/v2/…`: Yealink YMCS Open API v2.
//!
//! The three Yealink APIs reach one RPS account (servers by name, MACs on
//! servers). Every change of state is appended to `writes`, so that a test
//! can count how many times an operation really happened.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{
    Req, Resp, basic, check_hawk, hmac_b64, json as json_resp, lock, resp,
    verify_yealink_signature, xml_answer, xml_untyped, xmlrpc_call,
};

pub const SRAPS_ID: &str = "sraps-key-id";
pub const SRAPS_KEY: &str = "sraps-secret-Q1x";
pub const SNOM_USER: &str = "snom-user";
pub const SNOM_PASSWORD: &str = "snom-pass Wd4";
pub const RPS_USER: &str = "rps-user";
pub const RPS_PASSWORD: &str = "rps-pass Kw2";
pub const RPS_AK: &str = "rps-json-access-key";
pub const RPS_SK: &str = "rps-json-secret-Z8";
pub const YMCS_ID: &str = "ymcs-access-key-id";
pub const YMCS_SECRET: &str = "ymcs-secret-P7";

/// Every secret above, for "never logged, never shown" checks.
pub const SECRETS: [&str; 5] = [SRAPS_KEY, SNOM_PASSWORD, RPS_PASSWORD, RPS_SK, YMCS_SECRET];

/// The `setting_server` uuid the settings catalogue holds (on page 2).
pub const SETTING_SERVER_UUID: &str = "5a1e7c2e-0000-4000-8000-00000000005e";

#[derive(Debug, Default)]
pub struct State {
    /// SRAPS endpoints of the key's company: MAC → the body last PUT.
    pub sraps: BTreeMap<String, Value>,
    /// SRAPS provisioning profiles: (uuid, name).
    pub sraps_profiles: Vec<(String, String)>,
    /// The profile listing answers 404 (its path is [C] only).
    pub sraps_no_profile_listing: bool,
    /// SRAPS's clock minus the real one, seconds; Hawk refuses timestamps
    /// more than 60 s from it.
    pub sraps_skew_s: i64,
    /// Snom XML-RPC: MAC → provisioning URL.
    pub snom: BTreeMap<String, String>,
    /// Yealink RPS servers by name (id = `id-<name>`).
    pub rps_servers: Vec<String>,
    /// Yealink RPS: MAC → server name.
    pub rps: BTreeMap<String, String>,
    /// MACs another account holds, on every service.
    pub others: BTreeSet<String>,
    /// api-dm's `device/add` answers without an error but adds nothing
    /// (what section 4.2 of the Yealink doc may describe; not public).
    pub rps_json_silent_add: bool,
    /// YMCS: a regular account, refused `addDevicesByMac`.
    pub ymcs_regular: bool,
    /// YMCS: the `expires_in` of tokens handed out.
    pub ymcs_expires_in: u64,
    /// YMCS: tokens handed out, the live ones.
    pub ymcs_tokens: Vec<String>,
    pub ymcs_token_requests: u32,
    /// Answers given instead of the service's own, by `api:method` or
    /// `api:method:mac` (api among sraps, snom, rps, rps_json, ymcs).
    pub forced: BTreeMap<String, Resp>,
    /// State changes, as `api:action:mac[:target]`.
    pub writes: Vec<String>,
    /// Requests with this key are held until [`Cloud::release`].
    pub stall: Option<String>,
    pub stalled: bool,
}

#[derive(Clone)]
pub struct Cloud {
    pub state: Arc<Mutex<State>>,
    wake: Arc<Condvar>,
}

impl Default for Cloud {
    fn default() -> Cloud {
        Cloud::new()
    }
}

impl Cloud {
    pub fn new() -> Cloud {
        let state = State {
            ymcs_expires_in: 7200,
            ..State::default()
        };
        Cloud {
            state: Arc::new(Mutex::new(state)),
            wake: Arc::new(Condvar::new()),
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut lock(&self.state))
    }

    pub fn writes(&self) -> Vec<String> {
        self.with(|s| s.writes.clone())
    }

    /// How many writes start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.with(|s| s.writes.iter().filter(|w| w.starts_with(prefix)).count())
    }

    /// Lets held requests go on.
    pub fn release(&self) {
        self.with(|s| s.stall = None);
        self.wake.notify_all();
    }

    pub fn handler(&self) -> impl Fn(&Req) -> Resp + Send + Sync + 'static {
        let cloud = self.clone();
        move |req: &Req| cloud.answer(req)
    }

    fn answer(&self, req: &Req) -> Resp {
        let (api, method, mac) = key(req);
        let mut st = lock(&self.state);
        let full = format!("{api}:{method}:{mac}");
        let short = format!("{api}:{method}");
        if st.stall.as_deref().is_some_and(|k| k == full || k == short) {
            st.stalled = true;
            let (guard, _) = self
                .wake
                .wait_timeout_while(st, Duration::from_secs(30), |s| s.stall.is_some())
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            st = guard;
        }
        if let Some(r) = st.forced.get(&full).or_else(|| st.forced.get(&short)) {
            return r.clone();
        }
        match api {
            "sraps" => sraps(&mut st, req),
            "snom" => snom(&mut st, req),
            "rps" => rps_xmlrpc(&mut st, req),
            "rps_json" => rps_json(&mut st, req),
            "ymcs" => ymcs(&mut st, req),
            _ => resp(404, ""),
        }
    }
}

fn is_mac(m: &str) -> bool {
    m.len() == 12 && m.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `api`, method and MAC (for SRAPS, else the resource) of a request, for
/// forced answers and stalls.
fn key(req: &Req) -> (&'static str, String, String) {
    let path = req.path.split('?').next().unwrap_or_default();
    let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default().to_string();
    if let Some(rest) = path.strip_prefix("/api/v1/") {
        // The endpoint's MAC, or the resource (query left out).
        let mac = if rest.contains("/endpoints/") {
            last
        } else {
            rest.to_string()
        };
        ("sraps", req.method.clone(), mac)
    } else if path == "/xmlrpc/" || path == "/yealink/xmlrpc" {
        let (m, params) = xmlrpc_call(&req.text());
        let api = if path == "/xmlrpc/" { "snom" } else { "rps" };
        (
            api,
            m.trim_start_matches("redirect.").to_string(),
            params.first().cloned().unwrap_or_default(),
        )
    } else if let Some(rest) = path.strip_prefix("/api/open/v1/") {
        let mac = body["macs"][0]
            .as_str()
            .or(body["key"].as_str())
            .map(str::to_string)
            .or_else(|| {
                body["ids"][0]
                    .as_str()
                    .and_then(|i| i.strip_prefix("dev-"))
                    .map(str::to_string)
            })
            .or_else(|| req.path.split_once("mac=").map(|(_, m)| m.to_string()))
            .unwrap_or_default();
        ("rps_json", rest.to_string(), mac)
    } else if let Some(rest) = path.strip_prefix("/v2/") {
        let mac = body[0]["mac"]
            .as_str()
            .or(body["filter"]["mac"].as_str())
            .or(body["deviceIds"][0].as_str())
            .unwrap_or_default()
            .to_string();
        ("ymcs", rest.trim_start_matches("rps/").to_string(), mac)
    } else {
        ("", String::new(), String::new())
    }
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ------------------------------------------------------------------ SRAPS

fn host(req: &Req) -> (String, u16) {
    let h = req.header("host").unwrap();
    let (host, port) = h.split_once(':').unwrap();
    (host.to_string(), port.parse().unwrap())
}

/// SRAPS's refusal of a MAC another account holds. The texts are the ones
/// falconieri saw on the live service (commit b7bee26); the HTTP status and
/// the JSON field are not recorded (falconieri reads `message`, `error` or
/// `detail`), so PUT and DELETE use different ones.
pub fn sraps_taken() -> Resp {
    json_resp(400, json!({"message": "taken_mac_or_forbidden"}))
}

pub fn sraps_no_permission() -> Resp {
    json_resp(403, json!({"detail": "User lacks permission to endpoint"}))
}

fn sraps(st: &mut State, req: &Req) -> Resp {
    let (h, p) = host(req);
    let base = format!("https://{h}:{p}/api/v1/");
    assert_eq!(req.header("accept"), Some("application/json"), "Accept");
    let seen = match check_hawk(req, SRAPS_KEY, &h, p) {
        Ok(seen) if seen.id == SRAPS_ID => seen,
        // Hawk's refusal of a wrong MAC (hueniverse/hawk: 401, `Hawk
        // error="Bad mac"`); SRAPS's body for it is not public.
        _ => {
            return Resp {
                status: 401,
                headers: vec![("WWW-Authenticate".into(), "Hawk error=\"Bad mac\"".into())],
                body: b"UNDOCUMENTED".to_vec(),
            };
        }
    };
    // Hawk's stale-timestamp refusal (hueniverse/hawk README: 401 with the
    // server's `ts` and its `tsm`); that SRAPS sends it is inferred.
    let service_now = now_s() + st.sraps_skew_s;
    if (seen.ts as i64 - service_now).abs() > 60 {
        let tsm = hmac_b64(SRAPS_KEY, &format!("hawk.1.ts\n{service_now}\n"));
        return Resp {
            status: 401,
            headers: vec![(
                "WWW-Authenticate".into(),
                format!("Hawk ts=\"{service_now}\", tsm=\"{tsm}\", error=\"Stale timestamp\""),
            )],
            body: Vec::new(),
        };
    }
    let rest = req.path.strip_prefix("/api/v1/").unwrap();
    match (req.method.as_str(), rest) {
        // falconieri `libs/grape/types.go`: `links.company`, `links.endpoints`.
        ("GET", "tokens/sraps-key-id") => json_resp(
            200,
            json!({"uuid": "t-1", "links": {"company": format!("{base}companies/42")}}),
        ),
        ("GET", "companies/42") => json_resp(
            200,
            json!({"name": "ACME", "links": {"endpoints": format!("{base}companies/42/endpoints/")}}),
        ),
        // falconieri `devices.go`: an array of `{uuid, param_name}`, more
        // pages behind `Link: <…>; rel="next"` (commit b77d513).
        ("GET", "settings/?page_size=1000") => Resp {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                (
                    "Link".into(),
                    format!("<{base}settings/?page=2&page_size=1000>; rel=\"next\""),
                ),
            ],
            body: json!([
                {"uuid": "5a1e7c2e-0000-4000-8000-000000000001", "param_name": "setting_phone_name"},
                {"uuid": "5a1e7c2e-0000-4000-8000-000000000002", "param_name": "setting_language"}
            ])
            .to_string()
            .into_bytes(),
        },
        ("GET", "settings/?page=2&page_size=1000") => json_resp(
            200,
            json!([{"uuid": SETTING_SERVER_UUID, "param_name": "setting_server"}]),
        ),
        // The SRAPS tool [C]: `results` + `next`, items `uuid` and `name`.
        ("GET", "companies/42/provisioning-profiles/?page_size=1000") => {
            if st.sraps_no_profile_listing {
                return resp(404, "");
            }
            let results: Vec<Value> = st
                .sraps_profiles
                .iter()
                .map(|(uuid, name)| json!({"uuid": uuid, "name": name}))
                .collect();
            json_resp(
                200,
                json!({"count": results.len(), "next": null, "previous": null, "results": results}),
            )
        }
        ("PUT", path) if path.starts_with("companies/42/endpoints/") => {
            let mac = path.strip_prefix("companies/42/endpoints/").unwrap();
            assert_eq!(req.header("content-type"), Some("application/json"));
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            assert_eq!(body["mac"], mac, "body MAC");
            assert_eq!(body["autoprovisioning_enabled"], true);
            assert!(
                body.get("provisioning_url").is_none(),
                "provisioning_url is in no working client"
            );
            assert!(
                body.get("warranty_exp_warning_period").is_none(),
                "falconieri 21de451 omits it"
            );
            let target = match (body.get("settings_manager"), body.get("provisioning_profile")) {
                (Some(sm), None) => {
                    let entry = &sm[SETTING_SERVER_UUID];
                    assert_eq!(entry["attrs"], json!({"perm": "RW"}));
                    assert_eq!(sm.as_object().unwrap().len(), 1);
                    entry["value"].as_str().unwrap().to_string()
                }
                (None, Some(p)) => {
                    let uuid = p.as_str().unwrap();
                    assert!(st.sraps_profiles.iter().any(|(u, _)| u == uuid), "profile");
                    format!("profile {uuid}")
                }
                other => panic!("neither settings_manager nor provisioning_profile: {other:?}"),
            };
            if st.others.contains(mac) {
                return sraps_taken();
            }
            st.sraps.insert(mac.to_string(), body.clone());
            st.writes.push(format!("sraps:put:{mac}:{target}"));
            json_resp(200, body)
        }
        ("DELETE", path) if path.starts_with("companies/42/endpoints/") => {
            let mac = path.strip_prefix("companies/42/endpoints/").unwrap();
            if st.others.contains(mac) {
                return sraps_no_permission();
            }
            if st.sraps.remove(mac).is_none() {
                return resp(404, "");
            }
            st.writes.push(format!("sraps:delete:{mac}"));
            resp(204, "")
        }
        _ => panic!("no such SRAPS call: {} {}", req.method, req.path),
    }
}

// ---------------------------------------------------------- Snom XML-RPC

/// An XML-RPC call as both legacy services take it: POST, `text/xml`,
/// HTTP Basic (a 401 otherwise: the convention; neither page shows the
/// refusal).
fn xmlrpc_in(req: &Req, user: &str, password: &str) -> Result<(String, Vec<String>), Resp> {
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some("text/xml"));
    if basic(req) != format!("{user}:{password}") {
        return Err(resp(401, "Unauthorized"));
    }
    Ok(xmlrpc_call(&req.text()))
}

fn snom(st: &mut State, req: &Req) -> Resp {
    // service.snom.com XML-RPC API: POST to /xmlrpc/ (trailing slash
    // mandatory), `Content-type: text/xml`, HTTP Basic.
    let (method, params) = match xmlrpc_in(req, SNOM_USER, SNOM_PASSWORD) {
        Ok(call) => call,
        Err(refused) => return refused,
    };
    let mac = params[0].clone();
    // Texts: the wiki's `registerPhone` list, Snom's console `error_map`,
    // peoplefone `ProvisioningRPCDeviceSnom.php`; success text "Ok".
    let no = |t: &str| xml_answer(false, t);
    if !is_mac(&mac) {
        return no("Error:malformed_mac");
    }
    let others = st.others.contains(&mac);
    match method.as_str() {
        "redirect.checkPhone" => {
            assert_eq!(params.len(), 1);
            if others {
                no("Error:owned_by_other_user")
            } else if st.snom.contains_key(&mac) {
                xml_answer(true, "Ok")
            } else {
                no("Error:no_such_mac")
            }
        }
        "redirect.registerPhone" => {
            assert_eq!(params.len(), 2);
            let url = &params[1];
            if !["http://", "https://", "tftp://"]
                .iter()
                .any(|s| url.starts_with(s))
            {
                return no("Error:malformed_url");
            }
            if others {
                return no("Error:owned_by_other_user");
            }
            // Whether registerPhone overwrites one's own entry is not
            // documented; Snom's console never does it (its `add` refuses a
            // registered MAC, `update` deregisters first), nor may kpbxd.
            assert!(
                !st.snom.contains_key(&mac),
                "registerPhone on a registered MAC"
            );
            st.snom.insert(mac.clone(), url.clone());
            st.writes.push(format!("snom:register:{mac}:{url}"));
            xml_answer(true, "Ok")
        }
        "redirect.deregisterPhone" => {
            assert_eq!(params.len(), 1);
            if others {
                no("Error:owned_by_other_user")
            } else if st.snom.remove(&mac).is_some() {
                st.writes.push(format!("snom:deregister:{mac}"));
                xml_answer(true, "Ok")
            } else {
                no("Error:no_such_mac")
            }
        }
        other => panic!("no such Snom method {other}"),
    }
}

// ------------------------------------------------------ Yealink XML-RPC

fn server_name_ok(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' '))
}

fn rps_xmlrpc(st: &mut State, req: &Req) -> Resp {
    let (method, params) = match xmlrpc_in(req, RPS_USER, RPS_PASSWORD) {
        Ok(call) => call,
        Err(refused) => return refused,
    };
    let mac = params[0].clone();
    // Htek's copy of Yealink's XML API for RPS: `[boolean, untyped text]`;
    // texts from its result lists and its sample answer
    // ("Error:Invalid MAC(s):00s1122334400"); checkDevice's states from
    // peoplefone `ProvisioningRPCDeviceYealink.php`.
    let ok = |t: &str| xml_untyped(true, t);
    let no = |t: &str| xml_untyped(false, t);
    let invalid = no(&format!("Error:Invalid MAC(s):{mac}"));
    match method.as_str() {
        "redirect.registerDevice" => {
            assert_eq!(params.len(), 2, "kpbxd never sends isOverride");
            let server = &params[1];
            if !is_mac(&mac) {
                return invalid;
            }
            if !server_name_ok(server) {
                // peoplefone: the service's words for such names.
                return no(
                    "Error:The server name can only contain 'A-z 0-9 - _ . '(include space)",
                );
            }
            if !st.rps_servers.contains(server) {
                return no("Error: Invalid server");
            }
            if st.others.contains(&mac) {
                return no("Are you sure you want to override MAC addresses");
            }
            if st.rps.contains_key(&mac) {
                return no(&format!("Existing MAC(s): {mac}"));
            }
            st.rps.insert(mac.clone(), server.clone());
            st.writes.push(format!("rps:register:{mac}:{server}"));
            ok("OK")
        }
        // `editDevice(mac, serverName)`: the name and parameters from a
        // Fanvil clone's test script [C]; its answer is not public, so this
        // one follows registerDevice's (`[True, OK]`) by analogy.
        "redirect.editDevice" => {
            assert_eq!(params.len(), 2);
            let server = &params[1];
            assert!(
                st.rps.contains_key(&mac),
                "editDevice of a MAC the account lacks"
            );
            if !st.rps_servers.contains(server) {
                return no("Error: Invalid server");
            }
            st.rps.insert(mac.clone(), server.clone());
            st.writes.push(format!("rps:edit:{mac}:{server}"));
            ok("OK")
        }
        "redirect.checkDevice" => {
            assert_eq!(params.len(), 1);
            if !is_mac(&mac) {
                no("error:invalid mac")
            } else if st.others.contains(&mac) {
                ok("registered elsewhere")
            } else if st.rps.contains_key(&mac) {
                ok("registered")
            } else {
                ok("unregistered")
            }
        }
        "redirect.deRegisterDevice" => {
            assert_eq!(params.len(), 1);
            if !is_mac(&mac) {
                return invalid;
            }
            assert!(
                st.rps.remove(&mac).is_some(),
                "deRegisterDevice without checkDevice"
            );
            st.writes.push(format!("rps:deregister:{mac}"));
            ok("OK")
        }
        other => panic!("no such RPS method {other}"),
    }
}

// ------------------------------------------------------- RPS JSON API

/// A page of `items` as both Yealink JSON APIs list them: the request's
/// `{skip, limit, autoCount}` → `{skip, limit, total, data}` (the Python
/// `RPS` class and fspbx read `data` and `total`).
fn page(body: &Value, items: Vec<Value>) -> Value {
    let skip = body["skip"].as_u64().unwrap() as usize;
    let limit = body["limit"].as_u64().unwrap() as usize;
    assert_eq!(body["autoCount"], true);
    let total = items.len();
    let data: Vec<Value> = items.into_iter().skip(skip).take(limit).collect();
    json!({"skip": skip, "limit": limit, "total": total, "data": data})
}

/// A refusal whose text no source gives (`error.fieldErrors[].msg` is the
/// documented place; its words are not public).
pub fn rps_json_refusal() -> Value {
    json!({"ret": -1, "data": null, "error": {"fieldErrors": [
        {"field": "macs", "msg": "UNDOCUMENTED: api-dm refusal text is not public"}
    ]}})
}

fn rps_json(st: &mut State, req: &Req) -> Resp {
    if req.header("X-Ca-Key") != Some(RPS_AK) {
        return json_resp(
            200,
            json!({"ret": -1, "data": null, "error": {"msg": "UNDOCUMENTED: api-dm's answer to an unknown key is not public"}}),
        );
    }
    verify_yealink_signature(req, RPS_AK, RPS_SK);
    // automationadmin.com: `{"ret": 1, "data": …, "error": null}`.
    let ok = |data: Value| json_resp(200, json!({"ret": 1, "data": data, "error": null}));
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let list = |items: Vec<Value>| page(&body, items);
    match (req.method.as_str(), path) {
        // The Python `RPS` class: `server/list {skip, limit, autoCount, key}`.
        ("POST", "/api/open/v1/server/list") => {
            let key = body["key"].as_str().unwrap();
            let items = st
                .rps_servers
                .iter()
                .filter(|n| n.contains(key))
                .map(|n| json!({"id": format!("id-{n}"), "serverName": n, "url": "https://pbx/"}))
                .collect();
            ok(list(items))
        }
        ("POST", "/api/open/v1/device/list") => {
            let key = body["key"].as_str().unwrap();
            let items = st
                .rps
                .iter()
                .filter(|(m, _)| m.contains(key))
                .map(|(m, s)| json!({"id": format!("dev-{m}"), "mac": m, "serverId": format!("id-{s}")}))
                .collect();
            ok(list(items))
        }
        ("POST", "/api/open/v1/device/add") => {
            let mac = body["macs"][0].as_str().unwrap().to_string();
            assert_eq!(body["macs"].as_array().unwrap().len(), 1);
            let server = body["serverId"]
                .as_str()
                .unwrap()
                .strip_prefix("id-")
                .unwrap()
                .to_string();
            assert!(st.rps_servers.contains(&server));
            if st.others.contains(&mac) || !is_mac(&mac) {
                return json_resp(200, rps_json_refusal());
            }
            assert!(
                !st.rps.contains_key(&mac),
                "device/add of a MAC the account holds"
            );
            if st.rps_json_silent_add {
                return ok(Value::Null);
            }
            st.rps.insert(mac.clone(), server.clone());
            st.writes.push(format!("rps_json:add:{mac}:{server}"));
            ok(Value::Null)
        }
        // PHP and JS clients: `data.existed`. Whether it covers other
        // enterprises' MACs is not public; here it does.
        ("GET", "/api/open/v1/device/checkMac") => {
            let mac = query.strip_prefix("mac=").unwrap();
            ok(json!({"existed": st.rps.contains_key(mac) || st.others.contains(mac)}))
        }
        ("POST", "/api/open/v1/device/migrate") => {
            let id = body["ids"][0].as_str().unwrap();
            let mac = id.strip_prefix("dev-").unwrap().to_string();
            let server = body["serverId"]
                .as_str()
                .unwrap()
                .strip_prefix("id-")
                .unwrap()
                .to_string();
            assert!(st.rps.contains_key(&mac));
            st.rps.insert(mac.clone(), server.clone());
            st.writes.push(format!("rps_json:migrate:{mac}:{server}"));
            ok(Value::Null)
        }
        // The Python client takes `ret == 0 and error is None` for a
        // successful delete: `ret` is no success flag.
        ("POST", "/api/open/v1/device/delete") => {
            let id = body["ids"][0].as_str().unwrap();
            let mac = id.strip_prefix("dev-").unwrap().to_string();
            assert!(st.rps.remove(&mac).is_some());
            st.writes.push(format!("rps_json:delete:{mac}"));
            json_resp(200, json!({"ret": 0, "data": null, "error": null}))
        }
        _ => panic!("no such RPS JSON call: {} {}", req.method, req.path),
    }
}

// ------------------------------------------------------------- YMCS v2

/// A YMCS error (falconieri `libs/ymcs/errors.go`: `{code, error,
/// requestId, message, details}`; codes and meanings from its table).
pub fn ymcs_error(status: u16, code: &str, message: &str) -> Resp {
    json_resp(
        status,
        json!({"code": code, "error": null, "requestId": "req-1", "message": message, "details": []}),
    )
}

fn ymcs(st: &mut State, req: &Req) -> Resp {
    // falconieri `libs/ymcs` and fspbx: `timestamp` in ms, `nonce` 32 hex.
    let ts = req.header("timestamp").expect("timestamp header");
    assert!(
        ts.len() == 13 && ts.bytes().all(|b| b.is_ascii_digit()),
        "ms timestamp {ts}"
    );
    let nonce = req.header("nonce").expect("nonce header");
    assert!(
        nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit()),
        "nonce {nonce}"
    );
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    if req.path == "/v2/token" {
        st.ymcs_token_requests += 1;
        assert_eq!(body, json!({"grant_type": "client_credentials"}));
        if basic(req) != format!("{YMCS_ID}:{YMCS_SECRET}") {
            // RFC 6749 §5.2's error for a refused client; that YMCS words
            // it so is not shown anywhere.
            return json_resp(401, json!({"error": "invalid_client"}));
        }
        let token = format!("tok-{}", st.ymcs_token_requests);
        st.ymcs_tokens.push(token.clone());
        return json_resp(
            200,
            json!({"access_token": token, "token_type": "bearer", "expires_in": st.ymcs_expires_in}),
        );
    }
    let bearer = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "));
    if !bearer.is_some_and(|b| st.ymcs_tokens.iter().any(|t| t == b)) {
        return ymcs_error(401, "900401", "Not logged in or session expired");
    }
    // fspbx: pages `{skip, limit, autoCount, filter}` → `{skip, limit, total, data}`.
    let list = |items: Vec<Value>| {
        assert!(body["filter"].is_object());
        json_resp(200, page(&body, items))
    };
    match req.path.as_str() {
        "/v2/rps/listServers" => list(
            st.rps_servers
                .iter()
                .map(|n| json!({"id": format!("id-{n}"), "serverName": n, "url": "https://pbx/", "authName": null}))
                .collect(),
        ),
        // falconieri `types.go` `Device`: id, mac, serverId, serverName, ….
        "/v2/rps/listDevices" => {
            let mac = body["filter"]["mac"].as_str().unwrap_or_default();
            list(
                st.rps
                    .iter()
                    .filter(|(m, _)| m.contains(mac))
                    .map(|(m, s)| json!({"id": format!("dev-{m}"), "mac": m, "sn": null, "serverId": format!("id-{s}"), "serverName": s}))
                    .collect(),
            )
        }
        "/v2/rps/addDevicesByMac" => {
            if st.ymcs_regular {
                // Yealink support, quoted in fspbx issue 600: HTTP 403,
                // "This request is forbidden" (its code is not quoted).
                return json_resp(403, json!({"message": "This request is forbidden"}));
            }
            let items = body.as_array().unwrap();
            assert_eq!(items.len(), 1);
            let mac = items[0]["mac"].as_str().unwrap().to_string();
            let server = items[0]["serverId"].as_str().unwrap().strip_prefix("id-").unwrap().to_string();
            assert!(st.rps_servers.contains(&server));
            // falconieri: `{total, successCount, failureCount, errors:
            // [{mac, sn, errorInfo}]}`; errorInfo `device.mac.invalid` (its
            // example) and `800004` (what its ParseProviderError expects).
            let failed = |info: &str| {
                json_resp(
                    200,
                    json!({"total": 1, "successCount": 0, "failureCount": 1, "errors": [{"mac": mac, "sn": "", "errorInfo": info}]}),
                )
            };
            if !is_mac(&mac) {
                return failed("device.mac.invalid");
            }
            if st.others.contains(&mac) {
                return failed("800004");
            }
            assert!(!st.rps.contains_key(&mac), "addDevicesByMac of a MAC the account holds");
            st.rps.insert(mac.clone(), server.clone());
            st.writes.push(format!("ymcs:add:{mac}:{server}"));
            json_resp(200, json!({"total": 1, "successCount": 1, "failureCount": 0, "errors": []}))
        }
        "/v2/rps/delDevices" => {
            assert_eq!(body["deviceIdType"], "mac");
            let mac = body["deviceIds"][0].as_str().unwrap().to_string();
            assert!(st.rps.remove(&mac).is_some(), "delDevices of a MAC the account lacks");
            st.writes.push(format!("ymcs:delete:{mac}"));
            json_resp(200, json!({"total": 1, "successCount": 1, "failureCount": 0, "errors": []}))
        }
        other => panic!("no such YMCS call {other}"),
    }
}
