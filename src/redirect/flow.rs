//! The requests of each operation, in order, per API, over a
//! [`Transport`]. Generic, so that the daemon passes its HTTPS client and
//! tests pass theirs; the time and nonces are given, never read here.
//!
//! Each redirection server names its API; an operation talks to that API
//! only, with that API's credentials (never the other kind's, never a
//! second API after a refusal). What an API remembers between operations
//! (SRAPS's `setting_server` uuid and clock offset, a YMCS token) lives in
//! the caller's [`Session`].

use std::future::Future;

use crate::http::client::{ClientRequest, ClientResponse};
use crate::model::prov::RedirectApi;
use crate::model::{Mac, RedirectServer};

use super::snom::{self, Assignment, SnomText, Stale};
use super::vendor::{self, verbatim};
use super::yealink::{self, RpsText};
use super::{Endpoints, Failure, Op, mac_text};

/// Sends one request and returns the answer, or a one-line transport error.
pub trait Transport {
    fn send(&self, req: ClientRequest) -> impl Future<Output = Result<ClientResponse, String>>;
}

impl Transport for crate::http::client::HttpsClient {
    async fn send(&self, req: ClientRequest) -> Result<ClientResponse, String> {
        crate::http::client::HttpsClient::send(self, &req)
            .await
            .map_err(|e| e.0)
    }
}

/// What one API account remembers between operations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Memo {
    /// SRAPS: the uuid of the `setting_server` setting (looked up once).
    pub sraps_setting: Option<String>,
    /// SRAPS: the service's clock minus the box's, learnt from a Hawk
    /// stale-timestamp answer, in seconds.
    pub hawk_skew_s: i64,
    /// YMCS: the bearer token and until when it is used (Unix ms).
    pub ymcs_token: Option<(String, u64)>,
}

/// Memos of the accounts in use, by API, service and credentials (a
/// changed secret starts afresh). Bounded: the oldest is forgotten.
#[derive(Clone, Debug, Default)]
pub struct Session {
    memos: Vec<(String, Memo)>,
}

const MAX_MEMOS: usize = 16;

impl Session {
    fn memo(&mut self, key: &str) -> &mut Memo {
        let i = match self.memos.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                if self.memos.len() >= MAX_MEMOS {
                    self.memos.remove(0);
                }
                self.memos.push((key.to_string(), Memo::default()));
                self.memos.len() - 1
            }
        };
        &mut self.memos[i].1
    }
}

/// A memo's key: a digest, so that the session holds no secret.
fn memo_key(api: RedirectApi, base: &str, id: &str, secret: &str) -> String {
    let mut h = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [api.as_str(), base, id, secret] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    super::base64(h.finish().as_ref())
}

/// What an operation needs besides the transport.
pub struct Context<'a> {
    pub endpoints: &'a Endpoints,
    /// The server's current configuration (API, credentials).
    pub server: &'a RedirectServer,
    /// Unix milliseconds (Hawk takes seconds of it).
    pub now_ms: u64,
    /// A fresh nonce per call: 32 hex digits (YMCS's form; fine for all).
    pub nonce: &'a mut dyn FnMut() -> String,
    pub session: &'a mut Session,
    /// What the administrator should know although the operation went on
    /// (the box's clock is off, ...): the caller logs it.
    pub warnings: Vec<String>,
}

async fn send<T: Transport>(t: &T, req: ClientRequest) -> Result<ClientResponse, Failure> {
    t.send(req).await.map_err(Failure::Unreachable)
}

/// Carries out `op` for `mac` through the server's API.
pub async fn perform<T: Transport>(
    t: &T,
    cx: &mut Context<'_>,
    op: &Op,
    mac: &Mac,
) -> Result<(), Failure> {
    let mac = mac_text(mac);
    let s = cx.server;
    let api = s.api.as_str();
    if s.api.uses_keys() && (s.access_key_id.is_empty() || s.access_key_secret.is_empty()) {
        return Err(Failure::Config(format!(
            "api={api} needs access_key_id and access_key_secret"
        )));
    }
    if matches!(s.api, RedirectApi::SnomXmlrpc | RedirectApi::RpsXmlrpc)
        && (s.user.is_empty() || s.password.is_empty())
    {
        return Err(Failure::Config(format!(
            "api={api} needs user and password"
        )));
    }
    match s.api {
        RedirectApi::Sraps => sraps(t, cx, op, &mac).await,
        RedirectApi::SnomXmlrpc => snom_xmlrpc(t, cx, op, &mac).await,
        RedirectApi::Ymcs => ymcs(t, cx, op, &mac).await,
        RedirectApi::RpsJson => rps_json(t, cx, op, &mac).await,
        RedirectApi::RpsXmlrpc => rps_xmlrpc(t, cx, op, &mac).await,
        RedirectApi::None => Err(Failure::Unsupported(
            "Escene publishes no redirection API; register the MAC in Escene's web interface"
                .into(),
        )),
    }
}

// --------------------------------------------------------------- SRAPS

/// SRAPS requests of one operation: Hawk-signed on the service's time as
/// far as it is known; one stale-timestamp refusal per operation is
/// retried on the time the service gives.
struct Hawk<'k> {
    key_id: &'k str,
    key: &'k str,
    memo: String,
    retried: bool,
}

impl Hawk<'_> {
    async fn send<T: Transport>(
        &mut self,
        t: &T,
        cx: &mut Context<'_>,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<ClientResponse, Failure> {
        let box_s = i64::try_from(cx.now_ms / 1000).unwrap_or(i64::MAX);
        loop {
            let skew = cx.session.memo(&self.memo).hawk_skew_s;
            let ts = u64::try_from(box_s.saturating_add(skew)).unwrap_or(0);
            let req =
                snom::sraps_request(method, url, self.key_id, self.key, body, ts, &(cx.nonce)())?;
            let resp = send(t, req).await?;
            match snom::sraps_stale(&resp, self.key) {
                None => return Ok(resp),
                Some(Stale::Unusable(header)) => {
                    return Err(Failure::Unknown(verbatim(&format!(
                        "HTTP 401, stale timestamp without a usable time: {header}"
                    ))));
                }
                Some(Stale::At(service_s)) => {
                    let service_s = i64::try_from(service_s).unwrap_or(i64::MAX);
                    let offset_s = box_s.saturating_sub(service_s);
                    if self.retried {
                        return Err(Failure::Clock { offset_s });
                    }
                    self.retried = true;
                    cx.session.memo(&self.memo).hawk_skew_s = service_s.saturating_sub(box_s);
                    cx.warnings.push(format!(
                        "the box's clock is off by {offset_s:+} s from SRAPS's (Hawk: stale timestamp); requests now use SRAPS's time: set the time or NTP"
                    ));
                }
            }
        }
    }

    async fn json<T: Transport>(
        &mut self,
        t: &T,
        cx: &mut Context<'_>,
        url: &str,
    ) -> Result<(serde_json::Value, ClientResponse), Failure> {
        let resp = self.send(t, cx, "GET", url, None).await?;
        Ok((snom::sraps_json(&resp)?, resp))
    }
}

/// SRAPS: token → company → endpoints; then the endpoint's `PUT` (assigned
/// to the profile named like the redirection server if there is one, else
/// with its own `setting_server`), or its `DELETE`.
pub async fn sraps<T: Transport>(
    t: &T,
    cx: &mut Context<'_>,
    op: &Op,
    mac: &str,
) -> Result<(), Failure> {
    let base = cx.endpoints.sraps.clone();
    let server = cx.server;
    let mut h = Hawk {
        key_id: &server.access_key_id,
        key: &server.access_key_secret,
        memo: memo_key(
            RedirectApi::Sraps,
            &base,
            &server.access_key_id,
            &server.access_key_secret,
        ),
        retried: false,
    };
    let token = h
        .send(t, cx, "GET", &snom::sraps_token_url(&base, h.key_id), None)
        .await?;
    let company = snom::sraps_link(&token, "company", &base)?;
    let company_resp = h.send(t, cx, "GET", &company, None).await?;
    let endpoints = snom::sraps_link(&company_resp, "endpoints", &base)?;
    let endpoint = snom::sraps_endpoint_url(&endpoints, mac);
    match op {
        Op::Register(target) => {
            let how = match sraps_profile(t, cx, &mut h, &base, &company, &target.server).await? {
                Some(uuid) => Assignment::Profile(uuid),
                None => Assignment::Setting {
                    uuid: sraps_setting(t, cx, &mut h, &base).await?,
                    url: target.url.clone(),
                },
            };
            let body = snom::sraps_endpoint_body(mac, &how);
            let resp = h.send(t, cx, "PUT", &endpoint, Some(&body)).await?;
            snom::sraps_outcome(&resp)
        }
        Op::Deregister(_) => {
            let resp = h.send(t, cx, "DELETE", &endpoint, None).await?;
            // Not there, or another account's: nothing of ours to remove.
            match snom::sraps_outcome(&resp) {
                Err(_) if resp.status == 404 => Ok(()),
                Err(Failure::OwnedByOther) => Ok(()),
                other => other,
            }
        }
    }
}

/// The uuid of the company's provisioning profile named `name`, if any.
/// The listing's path comes from one independent tool [C]; a refusal of it
/// (a 4xx other than 401 and 429) must not block the endpoint's own
/// setting, which the working client uses: it counts as no profile, and
/// anything but a 404 is worth a warning.
async fn sraps_profile<T: Transport>(
    t: &T,
    cx: &mut Context<'_>,
    h: &mut Hawk<'_>,
    base: &str,
    company: &str,
    name: &str,
) -> Result<Option<String>, Failure> {
    let mut url = snom::sraps_profiles_url(company);
    for _ in 0..snom::MAX_PAGES {
        let resp = h.send(t, cx, "GET", &url, None).await?;
        if (400..=499).contains(&resp.status) && !matches!(resp.status, 401 | 429) {
            if resp.status != 404 {
                cx.warnings.push(format!(
                    "SRAPS refused the provisioning-profile listing ({}); the endpoint gets its own setting_server",
                    snom::sraps_outcome(&resp).err().map_or_else(String::new, |f| f.to_string())
                ));
            }
            return Ok(None);
        }
        let (items, next) = snom::sraps_page(&resp, base)?;
        if let Some(uuid) = snom::sraps_profile_uuid(&items, name) {
            return Ok(Some(uuid));
        }
        match next {
            Some(n) => url = n,
            None => return Ok(None),
        }
    }
    Ok(None)
}

/// The uuid of the `setting_server` setting: remembered, else looked up in
/// `settings/` (all pages, bounded).
async fn sraps_setting<T: Transport>(
    t: &T,
    cx: &mut Context<'_>,
    h: &mut Hawk<'_>,
    base: &str,
) -> Result<String, Failure> {
    if let Some(uuid) = &cx.session.memo(&h.memo).sraps_setting {
        return Ok(uuid.clone());
    }
    let mut url = snom::sraps_settings_url(base);
    for _ in 0..snom::MAX_PAGES {
        let (_, resp) = h.json(t, cx, &url).await?;
        let (items, next) = snom::sraps_page(&resp, base)?;
        if let Some(uuid) = snom::sraps_setting_uuid(&items, snom::SETTING_SERVER) {
            cx.session.memo(&h.memo).sraps_setting = Some(uuid.clone());
            return Ok(uuid);
        }
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    Err(Failure::Unknown(format!(
        "SRAPS lists no {} setting in settings/",
        snom::SETTING_SERVER
    )))
}

// ------------------------------------------------------- Snom XML-RPC

async fn snom_call<T: Transport>(
    t: &T,
    cx: &Context<'_>,
    method: &str,
    params: &[&str],
) -> Result<SnomText, Failure> {
    let s = cx.server;
    let req = vendor::xmlrpc_request(
        &cx.endpoints.snom_xmlrpc,
        &s.user,
        &s.password,
        method,
        params,
    );
    snom::snom_result(&send(t, req).await?)
}

/// Snom's XML-RPC service, as Snom's own console works: a MAC is checked
/// first (`checkPhone`); one already ours is deregistered, then registered
/// with the new URL; deregistering a MAC that is not there, or is another
/// account's, is done.
pub async fn snom_xmlrpc<T: Transport>(
    t: &T,
    cx: &mut Context<'_>,
    op: &Op,
    mac: &str,
) -> Result<(), Failure> {
    let url = &op.target().url;
    let deregister = async |cx: &Context<'_>| match snom_call(
        t,
        cx,
        "redirect.deregisterPhone",
        &[mac],
    )
    .await?
    {
        SnomText::Ok | SnomText::NoSuchMac | SnomText::OwnedByOther => Ok(()),
        other => Err(snom::snom_failure(&other, url)),
    };
    match op {
        Op::Register(_) => {
            match snom_call(t, cx, "redirect.checkPhone", &[mac]).await? {
                SnomText::Ok => deregister(cx).await?,
                SnomText::NoSuchMac => {}
                other => return Err(snom::snom_failure(&other, url)),
            }
            match snom_call(t, cx, "redirect.registerPhone", &[mac, url]).await? {
                SnomText::Ok => Ok(()),
                other => Err(snom::snom_failure(&other, url)),
            }
        }
        Op::Deregister(_) => deregister(cx).await,
    }
}

// ------------------------------------------------------- Yealink XML-RPC

async fn rps_call<T: Transport>(
    t: &T,
    cx: &Context<'_>,
    method: &str,
    params: &[&str],
) -> Result<(bool, RpsText), Failure> {
    let s = cx.server;
    let req = vendor::xmlrpc_request(
        &cx.endpoints.yealink_xmlrpc,
        &s.user,
        &s.password,
        method,
        params,
    );
    yealink::rps_result(&send(t, req).await?)
}

/// The failure of an RPS result that is not the hoped-for one.
fn rps_other(ok: bool, text: &RpsText, server: &str) -> Failure {
    yealink::rps_failure(text, server)
        .unwrap_or_else(|| Failure::Unknown(verbatim(&format!("[{ok}, {text:?}]"))))
}

/// Yealink RPS XML-RPC, by server name. "Existing MAC(s)" only says the
/// account holds the MAC, not on which server: `editDevice` puts it on the
/// named one. Another account's MAC is never overridden. Deregistering
/// asks `checkDevice` first; a MAC that is not the account's is done.
pub async fn rps_xmlrpc<T: Transport>(
    t: &T,
    cx: &mut Context<'_>,
    op: &Op,
    mac: &str,
) -> Result<(), Failure> {
    let server = &op.target().server;
    match op {
        Op::Register(_) => {
            match rps_call(t, cx, "redirect.registerDevice", &[mac, server]).await? {
                (true, RpsText::Ok) => Ok(()),
                (false, RpsText::Existing) => {
                    match rps_call(t, cx, "redirect.editDevice", &[mac, server]).await? {
                        (true, RpsText::Ok) => Ok(()),
                        (ok, other) => Err(rps_other(ok, &other, server)),
                    }
                }
                (ok, other) => Err(rps_other(ok, &other, server)),
            }
        }
        Op::Deregister(_) => match rps_call(t, cx, "redirect.checkDevice", &[mac]).await? {
            (_, RpsText::Unregistered | RpsText::Unknown | RpsText::RegisteredElsewhere) => Ok(()),
            (_, RpsText::Registered) => {
                match rps_call(t, cx, "redirect.deRegisterDevice", &[mac]).await? {
                    (true, RpsText::Ok) => Ok(()),
                    (ok, other) => Err(rps_other(ok, &other, server)),
                }
            }
            (ok, other) => Err(rps_other(ok, &other, server)),
        },
    }
}

// ------------------------------------------------------- RPS JSON API

/// The pages of a Yealink listing (`skip` → items and total), until
/// `found` finds or the listing ends; at most `MAX_PAGES` pages.
async fn find_paged<R>(
    mut page: impl AsyncFnMut(u64) -> Result<(Vec<serde_json::Value>, u64), Failure>,
    found: impl Fn(&[serde_json::Value]) -> Option<R>,
) -> Result<Option<R>, Failure> {
    let mut skip = 0;
    for _ in 0..yealink::MAX_PAGES {
        let (items, total) = page(skip).await?;
        if let Some(r) = found(&items) {
            return Ok(Some(r));
        }
        skip += items.len() as u64;
        if items.is_empty() || skip >= total {
            break;
        }
    }
    Ok(None)
}

struct Rps<'a> {
    base: String,
    id: &'a str,
    secret: &'a str,
}

impl Rps<'_> {
    async fn call<T: Transport>(
        &self,
        t: &T,
        cx: &mut Context<'_>,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, Failure> {
        let req = yealink::rps_request(
            method,
            &self.base,
            path,
            query,
            body,
            self.id,
            self.secret,
            cx.now_ms,
            &(cx.nonce)(),
        );
        yealink::rps_answer(&send(t, req).await?)
    }

    /// Every page of a listing searched by `key`, until `found` finds.
    async fn find<T: Transport, R>(
        &self,
        t: &T,
        cx: &mut Context<'_>,
        path: &str,
        key: &str,
        found: impl Fn(&[serde_json::Value]) -> Option<R>,
    ) -> Result<Option<R>, Failure> {
        let page = async |skip| {
            let body = serde_json::json!({"skip": skip, "limit": yealink::PAGE, "autoCount": true, "key": key});
            let data = self.call(t, cx, "POST", path, &[], Some(&body)).await?;
            Ok(yealink::rps_page(&data))
        };
        find_paged(page, found).await
    }

    async fn device<T: Transport>(
        &self,
        t: &T,
        cx: &mut Context<'_>,
        mac: &str,
    ) -> Result<Option<yealink::Listed>, Failure> {
        self.find(t, cx, "/api/open/v1/device/list", mac, |items| {
            yealink::device(items, mac)
        })
        .await
    }
}

/// The signed RPS JSON API: the server is found by name; a device the
/// account holds elsewhere is migrated, a new one added; either way the
/// result is read back (`checkMac`, then the listing) before it counts,
/// since no source shows how `device/add` reports a refusal.
pub async fn rps_json<T: Transport>(
    t: &T,
    cx: &mut Context<'_>,
    op: &Op,
    mac: &str,
) -> Result<(), Failure> {
    let rps = Rps {
        base: cx.endpoints.yealink_rps.clone(),
        id: &cx.server.access_key_id,
        secret: &cx.server.access_key_secret,
    };
    match op {
        Op::Register(target) => {
            let name = target.server.as_str();
            let server_id = rps
                .find(t, cx, "/api/open/v1/server/list", name, |items| {
                    yealink::server_id(items, name)
                })
                .await?
                .ok_or_else(|| no_server("RPS", name))?;
            let wrote = match rps.device(t, cx, mac).await? {
                Some(d) if d.server_id.as_deref() == Some(server_id.as_str()) => return Ok(()),
                Some(d) => {
                    let body = serde_json::json!({"ids": [d.id], "serverId": server_id});
                    rps.call(
                        t,
                        cx,
                        "POST",
                        "/api/open/v1/device/migrate",
                        &[],
                        Some(&body),
                    )
                    .await?
                }
                None => {
                    let body = serde_json::json!({"macs": [mac], "serverId": server_id});
                    rps.call(t, cx, "POST", "/api/open/v1/device/add", &[], Some(&body))
                        .await?
                }
            };
            let checked = rps
                .call(
                    t,
                    cx,
                    "GET",
                    "/api/open/v1/device/checkMac",
                    &[("mac", mac)],
                    None,
                )
                .await?;
            let listed = match yealink::rps_existed(&checked) {
                Some(true) => rps.device(t, cx, mac).await?,
                _ => None,
            };
            match listed {
                Some(d) if d.server_id.as_deref().is_none_or(|s| s == server_id) => Ok(()),
                _ => Err(Failure::Unknown(verbatim(&format!(
                    "the RPS JSON API took the device without an error ({wrote}) but does not list it on server {name}: checkMac {checked}"
                )))),
            }
        }
        Op::Deregister(_) => match rps.device(t, cx, mac).await? {
            None => Ok(()),
            Some(d) => {
                let body = serde_json::json!({"ids": [d.id]});
                rps.call(
                    t,
                    cx,
                    "POST",
                    "/api/open/v1/device/delete",
                    &[],
                    Some(&body),
                )
                .await
                .map(drop)
            }
        },
    }
}

fn no_server(api: &str, name: &str) -> Failure {
    Failure::Rejected(format!(
        "Yealink {api} has no server named {name:?}: add it in the RPS portal with this box's provisioning URL"
    ))
}

// ------------------------------------------------------------- YMCS v2

struct Ymcs {
    base: String,
    memo: String,
}

impl Ymcs {
    /// The token in use, or a new one.
    async fn token<T: Transport>(&self, t: &T, cx: &mut Context<'_>) -> Result<String, Failure> {
        if let Some((token, until)) = &cx.session.memo(&self.memo).ymcs_token
            && cx.now_ms < *until
        {
            return Ok(token.clone());
        }
        let s = cx.server;
        let req = yealink::ymcs_token_request(
            &self.base,
            &s.access_key_id,
            &s.access_key_secret,
            cx.now_ms,
            &(cx.nonce)(),
        );
        let (token, expires_in) = yealink::ymcs_token_answer(&send(t, req).await?)?;
        // Used until a minute before it expires (falconieri's margin).
        let until = cx
            .now_ms
            .saturating_add(expires_in.saturating_sub(60).saturating_mul(1000));
        cx.session.memo(&self.memo).ymcs_token = Some((token.clone(), until));
        Ok(token)
    }

    /// A call; a token the service no longer takes (401, 900401) is
    /// replaced once.
    async fn raw<T: Transport>(
        &self,
        t: &T,
        cx: &mut Context<'_>,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<ClientResponse, Failure> {
        let mut renewed = false;
        loop {
            let token = self.token(t, cx).await?;
            let req =
                yealink::ymcs_request(&self.base, path, &token, body, cx.now_ms, &(cx.nonce)());
            let resp = send(t, req).await?;
            let expired = resp.status == 401
                || (!matches!(resp.status, 200 | 201)
                    && matches!(yealink::ymcs_failure(&resp), Failure::Auth(_)));
            if !expired || renewed {
                return Ok(resp);
            }
            renewed = true;
            cx.session.memo(&self.memo).ymcs_token = None;
        }
    }

    async fn call<T: Transport>(
        &self,
        t: &T,
        cx: &mut Context<'_>,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, Failure> {
        yealink::ymcs_json(&self.raw(t, cx, path, body).await?)
    }

    async fn find<T: Transport, R>(
        &self,
        t: &T,
        cx: &mut Context<'_>,
        path: &str,
        filter: serde_json::Value,
        found: impl Fn(&[serde_json::Value]) -> Option<R>,
    ) -> Result<Option<R>, Failure> {
        let page = async |skip| {
            let body = yealink::ymcs_list_body(skip, filter.clone());
            let v = self.call(t, cx, path, &body).await?;
            yealink::ymcs_page(&v).ok_or_else(|| Failure::Unknown(verbatim(&v.to_string())))
        };
        find_paged(page, found).await
    }

    async fn device<T: Transport>(
        &self,
        t: &T,
        cx: &mut Context<'_>,
        mac: &str,
    ) -> Result<Option<yealink::Listed>, Failure> {
        self.find(
            t,
            cx,
            "/v2/rps/listDevices",
            serde_json::json!({"mac": mac}),
            |items| yealink::device(items, mac),
        )
        .await
    }

    async fn delete<T: Transport>(
        &self,
        t: &T,
        cx: &mut Context<'_>,
        mac: &str,
    ) -> Result<(), Failure> {
        let body = serde_json::json!({"deviceIdType": "mac", "deviceIds": [mac]});
        yealink::ymcs_batch(&self.call(t, cx, "/v2/rps/delDevices", &body).await?)
    }
}

/// YMCS v2: the server is found by name among the account's servers; a
/// device already on it is left alone, one the account holds elsewhere is
/// deleted and added again (as falconieri does), a new one is added by
/// MAC. Deregistering deletes a device the account holds.
pub async fn ymcs<T: Transport>(
    t: &T,
    cx: &mut Context<'_>,
    op: &Op,
    mac: &str,
) -> Result<(), Failure> {
    let s = cx.server;
    let base = cx.endpoints.ymcs_base(s.region);
    let y = Ymcs {
        memo: memo_key(
            RedirectApi::Ymcs,
            &base,
            &s.access_key_id,
            &s.access_key_secret,
        ),
        base,
    };
    match op {
        Op::Register(target) => {
            let name = target.server.as_str();
            let server_id = y
                .find(
                    t,
                    cx,
                    "/v2/rps/listServers",
                    serde_json::json!({}),
                    |items| yealink::server_id(items, name),
                )
                .await?
                .ok_or_else(|| no_server("YMCS", name))?;
            match y.device(t, cx, mac).await? {
                Some(d) if d.server_id.as_deref() == Some(server_id.as_str()) => return Ok(()),
                Some(_) => y.delete(t, cx, mac).await?,
                None => {}
            }
            let body = serde_json::json!([{"mac": mac, "serverId": server_id}]);
            let resp = y.raw(t, cx, "/v2/rps/addDevicesByMac", &body).await?;
            if resp.status == 403 {
                return Err(Failure::Rejected(yealink::ADD_BY_MAC_FORBIDDEN.to_string()));
            }
            yealink::ymcs_batch(&yealink::ymcs_json(&resp)?)
        }
        Op::Deregister(_) => match y.device(t, cx, mac).await? {
            None => Ok(()),
            Some(_) => y.delete(t, cx, mac).await,
        },
    }
}
