//! The requests of each operation, in order, over a [`Transport`]. Generic,
//! so that the daemon passes its HTTPS client and tests pass theirs; the
//! timestamp and nonces are given, never read here.

use std::future::Future;

use crate::http::client::{ClientRequest, ClientResponse};
use crate::model::prov::RedirectBrand;
use crate::model::{Mac, RedirectServer};

use super::vendor::{self, Dialect};
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

/// What an operation needs besides the transport.
pub struct Context<'a> {
    pub endpoints: &'a Endpoints,
    /// The server's current configuration (credentials).
    pub server: &'a RedirectServer,
    /// Unix seconds, for Hawk.
    pub now_unix_s: u64,
    /// A fresh nonce per call.
    pub nonce: &'a mut dyn FnMut() -> String,
}

async fn send<T: Transport>(t: &T, req: ClientRequest) -> Result<ClientResponse, Failure> {
    t.send(req).await.map_err(Failure::Unreachable)
}

/// Carries out `op` for `mac`.
pub async fn perform<T: Transport>(
    t: &T,
    cx: &mut Context<'_>,
    op: &Op,
    mac: &Mac,
) -> Result<(), Failure> {
    let mac = mac_text(mac);
    match cx.server.brand {
        RedirectBrand::Snom => match sraps(t, cx, op, &mac).await {
            // Accounts of the older service only know XML-RPC.
            Err(Failure::Auth) => snom_xmlrpc(t, cx, op, &mac).await,
            other => other,
        },
        RedirectBrand::Yealink => match yealink_rps(t, cx, op, &mac).await {
            // Accounts without an access key use the XML-RPC service.
            Err(Failure::Auth) => yealink(t, cx, op, &mac).await,
            other => other,
        },
        RedirectBrand::Escene => Err(Failure::Unsupported(
            "Escene publishes no redirection API; register the MAC in Escene's web interface"
                .into(),
        )),
    }
}

/// SRAPS: token → company → endpoints, then PUT or DELETE the endpoint.
pub async fn sraps<T: Transport>(
    t: &T,
    cx: &mut Context<'_>,
    op: &Op,
    mac: &str,
) -> Result<(), Failure> {
    let base = cx.endpoints.sraps.as_str();
    let (id, key) = (cx.server.user.as_str(), cx.server.password.as_str());
    let ts = cx.now_unix_s;
    let get =
        |url: &str, nonce: String| vendor::sraps_request("GET", url, id, key, None, ts, &nonce);
    let token = send(t, get(&vendor::sraps_token_url(base, id), (cx.nonce)())?).await?;
    let company = vendor::sraps_link(&token, "company", base)?;
    let company = send(t, get(&company, (cx.nonce)())?).await?;
    let endpoints = vendor::sraps_link(&company, "endpoints", base)?;
    let url = vendor::sraps_endpoint_url(&endpoints, mac);
    match op {
        Op::Register(target) => {
            let body = vendor::sraps_endpoint_body(mac, &target.url);
            let req = vendor::sraps_request("PUT", &url, id, key, Some(&body), ts, &(cx.nonce)())?;
            vendor::sraps_outcome(&send(t, req).await?, false)
        }
        Op::Deregister(_) => {
            let req = vendor::sraps_request("DELETE", &url, id, key, None, ts, &(cx.nonce)())?;
            vendor::sraps_outcome(&send(t, req).await?, true)
        }
    }
}

/// Snom's legacy XML-RPC service.
pub async fn snom_xmlrpc<T: Transport>(
    t: &T,
    cx: &mut Context<'_>,
    op: &Op,
    mac: &str,
) -> Result<(), Failure> {
    let (url, user, pw) = (
        cx.endpoints.snom_xmlrpc.as_str(),
        cx.server.user.as_str(),
        cx.server.password.as_str(),
    );
    let req = match op {
        Op::Register(target) => vendor::snom_register(url, user, pw, mac, &target.url),
        Op::Deregister(_) => vendor::snom_deregister(url, user, pw, mac),
    };
    vendor::xmlrpc_outcome(&send(t, req).await?, Dialect::Snom)
}

/// Yealink RPS open API: find the server by name, then add the device to
/// it (or move it there if the account has it already); deregistering
/// deletes the device from the account.
pub async fn yealink_rps<T: Transport>(
    t: &T,
    cx: &mut Context<'_>,
    op: &Op,
    mac: &str,
) -> Result<(), Failure> {
    let base = cx.endpoints.yealink_rps.clone();
    let (id, secret) = (cx.server.user.clone(), cx.server.password.clone());
    let ts_ms = cx.now_unix_s.saturating_mul(1000);
    let mut post = async |path: &str, body: serde_json::Value| {
        let req = vendor::yealink_request(
            "POST",
            &base,
            path,
            &[],
            Some(&body),
            &id,
            &secret,
            ts_ms,
            &(cx.nonce)(),
        );
        vendor::yealink_answer(&send(t, req).await?)
    };
    let find_device = serde_json::json!({"skip": 0, "limit": 10, "autoCount": true, "key": mac});
    match op {
        Op::Register(target) => {
            let servers = post(
                "/api/open/v1/server/list",
                serde_json::json!({"skip": 0, "limit": 100, "autoCount": true, "key": target.server}),
            )
            .await?;
            let server_id = vendor::yealink_server_id(&servers, &target.server)?;
            let added = post(
                "/api/open/v1/device/add",
                serde_json::json!({"macs": [mac], "serverId": server_id}),
            )
            .await;
            match added {
                Err(Failure::Rejected(m)) if m.starts_with("exists") => {
                    // Ours already, perhaps on another server: move it.
                    let devices = post("/api/open/v1/device/list", find_device).await?;
                    let device =
                        vendor::yealink_device_id(&devices, mac).ok_or(Failure::OwnedByOther)?;
                    post(
                        "/api/open/v1/device/migrate",
                        serde_json::json!({"ids": [device], "serverId": server_id}),
                    )
                    .await
                    .map(drop)
                }
                other => other.map(drop),
            }
        }
        Op::Deregister(_) => {
            let devices = post("/api/open/v1/device/list", find_device).await?;
            match vendor::yealink_device_id(&devices, mac) {
                None => Ok(()),
                Some(device) => post(
                    "/api/open/v1/device/delete",
                    serde_json::json!({"ids": [device]}),
                )
                .await
                .map(drop),
            }
        }
    }
}

/// Yealink RPS XML-RPC: by the server's name, as defined in the RPS account.
pub async fn yealink<T: Transport>(
    t: &T,
    cx: &mut Context<'_>,
    op: &Op,
    mac: &str,
) -> Result<(), Failure> {
    let (url, user, pw) = (
        cx.endpoints.yealink_xmlrpc.as_str(),
        cx.server.user.as_str(),
        cx.server.password.as_str(),
    );
    let req = match op {
        Op::Register(target) => vendor::yealink_register(url, user, pw, mac, &target.server),
        Op::Deregister(_) => vendor::yealink_deregister(url, user, pw, mac),
    };
    vendor::xmlrpc_outcome(&send(t, req).await?, Dialect::Yealink)
}
