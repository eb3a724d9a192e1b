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
        RedirectBrand::Yealink => yealink(t, cx, op, &mac).await,
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

/// Yealink RPS: by the server's name, as defined in the RPS account.
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
