//! Each redirection client against a local HTTPS stand-in of the vendor's
//! service, which checks method, path, headers, Hawk MAC or Basic
//! credentials and body, and answers with the documented payloads.
#![allow(clippy::unwrap_used)]

mod redirectkit;

use std::time::Duration;

use kpbxd::http::client::HttpsClient;
use kpbxd::model::prov::RedirectBrand;
use kpbxd::model::{Mac, RedirectServer};
use kpbxd::redirect::flow::{self, Context};
use kpbxd::redirect::{Endpoints, Failure, Op, Target};
use redirectkit::{Req, Resp, Service, json, resp, verify_hawk, xml_answer};

const KEY_ID: &str = "kpbx-key";
const KEY: &str = "s3cret-hawk-key";
const MAC: &str = "00:04:13:A1:B2:C3";
const PROV: &str = "https://pbx.example.com/provisioning/";

fn server(brand: RedirectBrand, user: &str, password: &str) -> RedirectServer {
    RedirectServer {
        name: "kpbx-office".into(),
        brand,
        user: user.into(),
        password: password.into(),
        enabled: true,
        url: PROV.into(),
    }
}

fn endpoints(svc: &Service) -> Endpoints {
    Endpoints {
        sraps: svc.url("/api/v1/"),
        snom_xmlrpc: svc.url("/xmlrpc/"),
        yealink_xmlrpc: svc.url("/yealink/xmlrpc"),
        yealink_rps: svc.url(""),
    }
}

fn register(brand: RedirectBrand) -> Op {
    Op::Register(Target {
        server: "kpbx-office".into(),
        brand,
        url: PROV.into(),
    })
}

fn run(svc: &Service, srv: &RedirectServer, op: &Op) -> Result<(), Failure> {
    run_with(
        &HttpsClient::from_ca_file(&svc.ca_file, Duration::from_secs(5)).unwrap(),
        &endpoints(svc),
        srv,
        op,
    )
}

fn run_with(
    client: &HttpsClient,
    endpoints: &Endpoints,
    srv: &RedirectServer,
    op: &Op,
) -> Result<(), Failure> {
    let mut n = 0;
    let mut nonce = || {
        n += 1;
        format!("nonce{n}")
    };
    let mut cx = Context {
        endpoints,
        server: srv,
        now_unix_s: 1_764_000_000,
        nonce: &mut nonce,
    };
    smol::block_on(flow::perform(
        client,
        &mut cx,
        op,
        &Mac::parse(MAC).unwrap(),
    ))
}

fn host(req: &Req) -> (String, u16) {
    let h = req.header("host").unwrap();
    let (host, port) = h.split_once(':').unwrap();
    (host.to_string(), port.parse().unwrap())
}

/// SRAPS as documented: token → company → endpoints; `put` answers the
/// endpoint PUT/DELETE. Every request must carry a valid Hawk MAC.
fn sraps(
    put: impl Fn(&Req) -> Resp + Send + Sync + 'static,
) -> impl Fn(&Req) -> Resp + Send + Sync {
    move |req: &Req| {
        if !req.path.starts_with("/api/v1/") {
            return resp(404, "");
        }
        let (h, p) = host(req);
        let base = format!("https://{h}:{p}/api/v1/");
        let id = verify_hawk(req, KEY, &h, p);
        assert_eq!(id, KEY_ID);
        assert_eq!(req.header("accept"), Some("application/json"));
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/api/v1/tokens/kpbx-key") => json(
                200,
                serde_json::json!({"uuid": "t-1", "links": {"company": format!("{base}companies/42")}}),
            ),
            ("GET", "/api/v1/companies/42") => json(
                200,
                serde_json::json!({"name": "ACME", "links": {"endpoints": format!("{base}companies/42/endpoints/")}}),
            ),
            (_, "/api/v1/companies/42/endpoints/000413a1b2c3") => put(req),
            _ => resp(404, "{\"message\":\"not found\"}"),
        }
    }
}

#[test]
fn snom_sraps_registers_with_hawk() {
    let svc = Service::start(sraps(|req| {
        assert_eq!(req.method, "PUT");
        assert_eq!(req.header("content-type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"mac": "000413a1b2c3", "autoprovisioning_enabled": true, "provisioning_url": PROV})
        );
        json(200, body)
    }));
    let srv = server(RedirectBrand::Snom, KEY_ID, KEY);
    assert_eq!(run(&svc, &srv, &register(RedirectBrand::Snom)), Ok(()));
    let reqs = svc.requests();
    let seen: Vec<_> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("GET", "/api/v1/tokens/kpbx-key"),
            ("GET", "/api/v1/companies/42"),
            ("PUT", "/api/v1/companies/42/endpoints/000413a1b2c3")
        ]
    );
    // Each request has its own nonce.
    let nonces: std::collections::HashSet<String> = reqs
        .iter()
        .map(|r| {
            redirectkit::hawk_attributes(r.header("authorization").unwrap())
                .into_iter()
                .find(|(k, _)| k == "nonce")
                .unwrap()
                .1
        })
        .collect();
    assert_eq!(nonces.len(), 3);
    // The key never travels.
    assert!(reqs.iter().all(|r| !format!("{r:?}").contains(KEY)));
}

#[test]
fn snom_sraps_deregisters_and_treats_404_as_done() {
    let svc = Service::start(sraps(|req| {
        assert_eq!(req.method, "DELETE");
        assert!(req.body.is_empty());
        resp(404, "{\"message\":\"endpoint not found\"}")
    }));
    let srv = server(RedirectBrand::Snom, KEY_ID, KEY);
    let op = Op::Deregister(register(RedirectBrand::Snom).target().clone());
    assert_eq!(run(&svc, &srv, &op), Ok(()));
    assert_eq!(svc.requests().len(), 3);
}

#[test]
fn snom_sraps_errors() {
    let owned = Service::start(sraps(|_| {
        json(
            409,
            serde_json::json!({"message": "endpoint is owned by another company"}),
        )
    }));
    let srv = server(RedirectBrand::Snom, KEY_ID, KEY);
    let op = register(RedirectBrand::Snom);
    assert_eq!(run(&owned, &srv, &op), Err(Failure::OwnedByOther));

    let malformed = Service::start(sraps(|_| {
        json(
            400,
            serde_json::json!({"message": "mac: invalid MAC address"}),
        )
    }));
    assert_eq!(run(&malformed, &srv, &op), Err(Failure::MalformedMac));

    let limited = Service::start(sraps(|_| Resp {
        status: 429,
        headers: vec![("Retry-After".into(), "120".into())],
        body: b"{\"message\":\"too many requests\"}".to_vec(),
    }));
    assert_eq!(
        run(&limited, &srv, &op),
        Err(Failure::RateLimited {
            retry_after_s: Some(120)
        })
    );

    let failing = Service::start(sraps(|_| resp(503, "down for maintenance")));
    assert!(matches!(run(&failing, &srv, &op), Err(Failure::Service(_))));
}

/// Snom's XML-RPC service as documented: POST /xmlrpc/, text/xml, Basic.
fn snom_xmlrpc(
    answer: impl Fn(&str, &[String]) -> Resp + Send + Sync + 'static,
) -> impl Fn(&Req) -> Resp + Send + Sync {
    move |req: &Req| {
        if req.path.starts_with("/api/v1/") {
            // This account has no SRAPS access.
            return resp(401, "{\"message\":\"invalid credentials\"}");
        }
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/xmlrpc/")
        );
        assert_eq!(req.header("content-type"), Some("text/xml"));
        if redirectkit::basic(req) != "legacy:pass word" {
            return resp(401, "Unauthorized");
        }
        let (method, params) = redirectkit::xmlrpc_call(&req.text());
        answer(&method, &params)
    }
}

#[test]
fn snom_falls_back_to_xmlrpc() {
    let svc = Service::start(snom_xmlrpc(|method, params| {
        assert_eq!(method, "redirect.registerPhone");
        assert_eq!(params, ["000413a1b2c3", PROV]);
        xml_answer(true, "OK")
    }));
    let srv = server(RedirectBrand::Snom, "legacy", "pass word");
    assert_eq!(run(&svc, &srv, &register(RedirectBrand::Snom)), Ok(()));
    let paths: Vec<String> = svc.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/api/v1/tokens/legacy", "/xmlrpc/"]);
    assert!(
        svc.requests()
            .iter()
            .all(|r| !r.text().contains("pass word"))
    );

    let dereg = Service::start(snom_xmlrpc(|method, params| {
        assert_eq!(method, "redirect.deregisterPhone");
        assert_eq!(params, ["000413a1b2c3"]);
        xml_answer(true, "OK")
    }));
    let op = Op::Deregister(register(RedirectBrand::Snom).target().clone());
    assert_eq!(run(&dereg, &srv, &op), Ok(()));
}

#[test]
fn snom_xmlrpc_errors() {
    let op = register(RedirectBrand::Snom);
    let owned = Service::start(snom_xmlrpc(|_, _| {
        xml_answer(false, "Error:owned_by_other_user")
    }));
    let srv = server(RedirectBrand::Snom, "legacy", "pass word");
    assert_eq!(run(&owned, &srv, &op), Err(Failure::OwnedByOther));
    let malformed = Service::start(snom_xmlrpc(|_, _| xml_answer(false, "Error:malformed_mac")));
    assert_eq!(run(&malformed, &srv, &op), Err(Failure::MalformedMac));
    // Wrong password: both APIs refuse.
    let bad = server(RedirectBrand::Snom, "legacy", "wrong");
    assert_eq!(run(&owned, &bad, &op), Err(Failure::Auth));
}

/// Yealink RPS XML-RPC as documented: registerDevice(mac, serverName).
fn yealink(
    answer: impl Fn(&str, &[String]) -> Resp + Send + Sync + 'static,
) -> impl Fn(&Req) -> Resp + Send + Sync {
    move |req: &Req| {
        if req.path.starts_with("/api/open/") {
            // No access key for the open API: the gateway's answer.
            return json(
                401,
                serde_json::json!({"ret": -1, "data": null, "error": {"errorCode": "401", "msg": "Unauthorized"}}),
            );
        }
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("POST", "/yealink/xmlrpc")
        );
        assert_eq!(req.header("content-type"), Some("text/xml"));
        if redirectkit::basic(req) != "rps-user:rps-pass" {
            return resp(401, "Unauthorized");
        }
        let (method, params) = redirectkit::xmlrpc_call(&req.text());
        answer(&method, &params)
    }
}

#[test]
fn yealink_registers_by_server_name() {
    let svc = Service::start(yealink(|method, params| match method {
        "redirect.registerDevice" => {
            assert_eq!(params, ["000413a1b2c3", "kpbx-office"]);
            xml_answer(true, "OK")
        }
        "redirect.deRegisterDevice" => {
            assert_eq!(params, ["000413a1b2c3"]);
            xml_answer(true, "OK")
        }
        other => panic!("unexpected {other}"),
    }));
    let srv = server(RedirectBrand::Yealink, "rps-user", "rps-pass");
    assert_eq!(run(&svc, &srv, &register(RedirectBrand::Yealink)), Ok(()));
    let op = Op::Deregister(register(RedirectBrand::Yealink).target().clone());
    assert_eq!(run(&svc, &srv, &op), Ok(()));
    let paths: Vec<String> = svc.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/api/open/v1/server/list",
            "/yealink/xmlrpc",
            "/api/open/v1/device/list",
            "/yealink/xmlrpc"
        ]
    );
}

#[test]
fn yealink_errors() {
    let op = register(RedirectBrand::Yealink);
    let srv = server(RedirectBrand::Yealink, "rps-user", "rps-pass");
    let owned = Service::start(yealink(|_, _| {
        xml_answer(false, "Are you sure you want to override MAC addresses")
    }));
    assert_eq!(run(&owned, &srv, &op), Err(Failure::OwnedByOther));
    let mine = Service::start(yealink(|_, _| {
        xml_answer(false, "Existing MAC(s): 000413a1b2c3")
    }));
    assert_eq!(run(&mine, &srv, &op), Ok(()));
    let invalid = Service::start(yealink(|_, _| {
        xml_answer(false, "Invalid MAC(s): 000413a1b2c3")
    }));
    assert_eq!(run(&invalid, &srv, &op), Err(Failure::MalformedMac));
    let unknown = Service::start(yealink(|_, _| xml_answer(false, "Error: Invalid server")));
    assert!(matches!(
        run(&unknown, &srv, &op),
        Err(Failure::Rejected(_))
    ));
    let bad = server(RedirectBrand::Yealink, "rps-user", "nope");
    assert_eq!(run(&owned, &bad, &op), Err(Failure::Auth));
    let limited = Service::start(|_: &Req| Resp {
        status: 429,
        headers: vec![("Retry-After".into(), "7".into())],
        body: Vec::new(),
    });
    assert_eq!(
        run(&limited, &srv, &op),
        Err(Failure::RateLimited {
            retry_after_s: Some(7)
        })
    );
}

#[test]
fn escene_is_unsupported_and_sends_nothing() {
    let svc = Service::start(|_: &Req| resp(500, ""));
    let srv = server(RedirectBrand::Escene, "u", "p");
    assert!(matches!(
        run(&svc, &srv, &register(RedirectBrand::Escene)),
        Err(Failure::Unsupported(_))
    ));
    assert!(svc.requests().is_empty());
}

#[test]
fn unreachable_and_untrusted_services() {
    let port = redirectkit::free_port();
    let svc = Service::start(|_: &Req| resp(200, ""));
    let client = HttpsClient::from_ca_file(&svc.ca_file, Duration::from_secs(5)).unwrap();
    let mut down = endpoints(&svc);
    down.yealink_rps = format!("https://127.0.0.1:{port}");
    let srv = server(RedirectBrand::Yealink, "rps-user", "rps-pass");
    let r = run_with(&client, &down, &srv, &register(RedirectBrand::Yealink));
    assert!(
        matches!(&r, Err(Failure::Unreachable(m)) if m.contains("connect")),
        "{r:?}"
    );

    // A service whose certificate the CA bundle does not vouch for.
    let other = Service::start(|_: &Req| resp(200, ""));
    let r = run_with(
        &client,
        &endpoints(&other),
        &srv,
        &register(RedirectBrand::Yealink),
    );
    assert!(
        matches!(&r, Err(Failure::Unreachable(m)) if m.contains("tls")),
        "{r:?}"
    );
    assert!(other.requests().is_empty());

    // A bundle without certificates is refused up front.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    assert!(HttpsClient::from_ca_file(&empty, Duration::from_secs(1)).is_err());
}

#[test]
fn a_silent_service_times_out() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let svc = Service::start(|_: &Req| resp(200, ""));
    let client = HttpsClient::from_ca_file(&svc.ca_file, Duration::from_millis(500)).unwrap();
    let mut eps = endpoints(&svc);
    eps.yealink_rps = format!("https://127.0.0.1:{port}");
    let start = std::time::Instant::now();
    let r = run_with(
        &client,
        &eps,
        &server(RedirectBrand::Yealink, "u", "p"),
        &register(RedirectBrand::Yealink),
    );
    assert!(
        matches!(&r, Err(Failure::Unreachable(m)) if m.contains("no answer")),
        "{r:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(listener);
}

const AK: &str = "yealink-access-key";
const AK_SECRET: &str = "yealink-secret-9f";

/// The Yealink RPS open API as documented: every request signed; answers
/// `{"ret", "data", "error"}`. `devices`: MAC → (device id, server id) the
/// account holds; `owned`: MACs another enterprise holds.
fn rps(
    devices: &'static [(&'static str, &'static str, &'static str)],
    owned: &'static [&'static str],
) -> impl Fn(&Req) -> Resp + Send + Sync {
    move |req: &Req| {
        assert_eq!(req.method, "POST");
        redirectkit::verify_yealink_signature(req, AK, AK_SECRET);
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        let ok = |data: serde_json::Value| {
            json(
                200,
                serde_json::json!({"ret": 1, "data": data, "error": null}),
            )
        };
        let fail = |code: &str, msg: &str| {
            json(
                200,
                serde_json::json!({"ret": -1, "data": null, "error": {"errorCode": code, "msg": msg}}),
            )
        };
        match req.path.as_str() {
            "/api/open/v1/server/list" => {
                assert_eq!(body["key"], "kpbx-office");
                ok(
                    serde_json::json!({"skip": 0, "limit": 100, "total": 2, "data": [
                        {"id": "srv-0", "serverName": "kpbx-office-old", "url": "https://old/"},
                        {"id": "srv-1", "serverName": "kpbx-office", "url": PROV},
                    ]}),
                )
            }
            "/api/open/v1/device/add" => {
                assert_eq!(body["serverId"], "srv-1");
                let mac = body["macs"][0].as_str().unwrap();
                if owned.contains(&mac) {
                    fail("800007", "The device has been added by other enterprise")
                } else if mac.len() != 12 {
                    fail("800003", "Invalid MAC format")
                } else if devices.iter().any(|(m, _, _)| *m == mac) {
                    fail("800004", "The device already exists")
                } else {
                    ok(serde_json::Value::Null)
                }
            }
            "/api/open/v1/device/list" => {
                let key = body["key"].as_str().unwrap();
                let found: Vec<serde_json::Value> = devices
                    .iter()
                    .filter(|(m, _, _)| *m == key)
                    .map(|(m, id, srv)| serde_json::json!({"id": id, "mac": m, "serverId": srv}))
                    .collect();
                ok(serde_json::json!({"skip": 0, "limit": 10, "total": found.len(), "data": found}))
            }
            "/api/open/v1/device/migrate" => {
                assert_eq!(
                    body,
                    serde_json::json!({"ids": ["dev-7"], "serverId": "srv-1"})
                );
                ok(serde_json::Value::Null)
            }
            "/api/open/v1/device/delete" => {
                assert_eq!(body, serde_json::json!({"ids": ["dev-7"]}));
                ok(serde_json::Value::Null)
            }
            other => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn yealink_open_api_registers_by_server_name_with_signed_requests() {
    let svc = Service::start(rps(&[], &[]));
    let srv = server(RedirectBrand::Yealink, AK, AK_SECRET);
    assert_eq!(run(&svc, &srv, &register(RedirectBrand::Yealink)), Ok(()));
    let reqs = svc.requests();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/api/open/v1/server/list", "/api/open/v1/device/add"]
    );
    let add: serde_json::Value = serde_json::from_slice(&reqs[1].body).unwrap();
    assert_eq!(
        add,
        serde_json::json!({"macs": ["000413a1b2c3"], "serverId": "srv-1"})
    );
    assert!(reqs.iter().all(|r| !format!("{r:?}").contains(AK_SECRET)));
}

#[test]
fn yealink_open_api_moves_and_deletes_its_own_devices() {
    let svc = Service::start(rps(&[("000413a1b2c3", "dev-7", "srv-0")], &[]));
    let srv = server(RedirectBrand::Yealink, AK, AK_SECRET);
    assert_eq!(run(&svc, &srv, &register(RedirectBrand::Yealink)), Ok(()));
    let op = Op::Deregister(register(RedirectBrand::Yealink).target().clone());
    assert_eq!(run(&svc, &srv, &op), Ok(()));
    let paths: Vec<String> = svc.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/api/open/v1/server/list",
            "/api/open/v1/device/add",
            "/api/open/v1/device/list",
            "/api/open/v1/device/migrate",
            "/api/open/v1/device/list",
            "/api/open/v1/device/delete"
        ]
    );
    // Deregistering a MAC the account does not hold is done at once.
    let empty = Service::start(rps(&[], &[]));
    assert_eq!(run(&empty, &srv, &op), Ok(()));
    assert_eq!(empty.requests().len(), 1);
}

#[test]
fn yealink_open_api_errors() {
    let srv = server(RedirectBrand::Yealink, AK, AK_SECRET);
    let owned = Service::start(rps(&[], &["000413a1b2c3"]));
    assert_eq!(
        run(&owned, &srv, &register(RedirectBrand::Yealink)),
        Err(Failure::OwnedByOther)
    );
    let mut unknown = register(RedirectBrand::Yealink);
    if let Op::Register(t) = &mut unknown {
        t.server = "nowhere".into();
    }
    let svc = Service::start(|req: &Req| {
        redirectkit::verify_yealink_signature(req, AK, AK_SECRET);
        json(
            200,
            serde_json::json!({"ret": 1, "data": {"total": 0, "data": []}, "error": null}),
        )
    });
    assert!(matches!(
        run(&svc, &srv, &unknown),
        Err(Failure::Rejected(m)) if m.contains("nowhere")
    ));
}
