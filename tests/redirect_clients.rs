//! Each redirection API's client against the in-memory vendor services of
//! `redirectkit::cloud` over real HTTPS on 127.0.0.1. The stand-ins check
//! method, path, headers, Hawk MACs, Yealink signatures, Basic credentials
//! and bodies with their own code, answer with the payloads the public
//! sources show, and keep the state a real service would: a test reads the
//! result there, not in kpbxd's answer alone.
#![allow(clippy::unwrap_used)]

mod redirectkit;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kpbxd::http::client::HttpsClient;
use kpbxd::model::prov::{RedirectApi, YmcsRegion};
use kpbxd::model::{Mac, RedirectServer};
use kpbxd::redirect::flow::{self, Context, Session};
use kpbxd::redirect::{Endpoints, Failure, Op, Target, snom, yealink};
use redirectkit::cloud::{self, Cloud};
use redirectkit::{Req, Resp, Service, hmac_b64, json, resp, xml_answer, xml_untyped};
use serde_json::json as j;

const MAC: &str = "00:04:13:A1:B2:C3";
const M: &str = "000413a1b2c3";
const PROV_A: &str = "https://pbx-a.example.com/provisioning/";
const PROV_B: &str = "https://pbx-b.example.com/provisioning/";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A redirection server of `api` with the stand-in's credentials for it.
fn server(api: RedirectApi, name: &str, url: &str) -> RedirectServer {
    let (user, password, id, secret) = match api {
        RedirectApi::Sraps => ("", "", cloud::SRAPS_ID, cloud::SRAPS_KEY),
        RedirectApi::SnomXmlrpc => (cloud::SNOM_USER, cloud::SNOM_PASSWORD, "", ""),
        RedirectApi::RpsXmlrpc => (cloud::RPS_USER, cloud::RPS_PASSWORD, "", ""),
        RedirectApi::RpsJson => ("", "", cloud::RPS_AK, cloud::RPS_SK),
        RedirectApi::Ymcs => ("", "", cloud::YMCS_ID, cloud::YMCS_SECRET),
        RedirectApi::None => ("", "", "", ""),
    };
    RedirectServer {
        name: name.into(),
        brand: api.brand(),
        api,
        user: user.into(),
        password: password.into(),
        access_key_id: id.into(),
        access_key_secret: secret.into(),
        region: YmcsRegion::Eu,
        enabled: true,
        url: url.into(),
    }
}

fn target(s: &RedirectServer) -> Target {
    Target {
        server: s.name.clone(),
        brand: s.brand,
        url: s.url.clone(),
    }
}

fn reg(s: &RedirectServer) -> Op {
    Op::Register(target(s))
}

fn dereg(s: &RedirectServer) -> Op {
    Op::Deregister(target(s))
}

/// The stand-in, a client trusting it and the session the daemon would
/// keep between operations.
struct Rig {
    cloud: Cloud,
    svc: Service,
    client: HttpsClient,
    session: Session,
    warnings: Vec<String>,
}

impl Rig {
    fn new() -> Rig {
        let cloud = Cloud::new();
        cloud.with(|s| s.rps_servers = vec!["kpbx-a".into(), "kpbx-b".into()]);
        let svc = Service::start(cloud.handler());
        let client = HttpsClient::from_ca_file(&svc.ca_file, Duration::from_secs(5)).unwrap();
        Rig {
            cloud,
            svc,
            client,
            session: Session::default(),
            warnings: Vec::new(),
        }
    }

    fn endpoints(&self) -> Endpoints {
        endpoints(&self.svc)
    }

    fn run(&mut self, srv: &RedirectServer, op: &Op) -> Result<(), Failure> {
        self.run_at(srv, op, now_ms(), MAC)
    }

    fn run_at(
        &mut self,
        srv: &RedirectServer,
        op: &Op,
        now: u64,
        mac: &str,
    ) -> Result<(), Failure> {
        let endpoints = self.endpoints();
        let mut n = 0u64;
        let mut nonce = || {
            n += 1;
            format!("{:016x}{n:016x}", now)
        };
        let mut cx = Context {
            endpoints: &endpoints,
            server: srv,
            now_ms: now,
            nonce: &mut nonce,
            session: &mut self.session,
            warnings: Vec::new(),
        };
        let r = smol::block_on(flow::perform(
            &self.client,
            &mut cx,
            op,
            &Mac::parse(mac).unwrap(),
        ));
        self.warnings.extend(cx.warnings);
        r
    }

    /// Paths asked since the last call, as `METHOD path`.
    fn asked(&self, from: usize) -> Vec<String> {
        self.svc.requests()[from..]
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    fn seen(&self) -> usize {
        self.svc.requests().len()
    }

    fn force(&self, key: &str, r: Resp) {
        self.cloud.with(|s| s.forced.insert(key.to_string(), r));
    }

    fn unforce(&self) {
        self.cloud.with(|s| s.forced.clear());
    }
}

fn endpoints(svc: &Service) -> Endpoints {
    Endpoints {
        sraps: svc.url("/api/v1/"),
        snom_xmlrpc: svc.url("/xmlrpc/"),
        yealink_xmlrpc: svc.url("/yealink/xmlrpc"),
        yealink_rps: svc.url(""),
        ymcs: svc.url(""),
    }
}

fn unknown(r: Result<(), Failure>, words: &str) {
    match r {
        Err(f @ Failure::Unknown(_)) => {
            assert!(f.is_transient());
            assert!(f.to_string().contains(words), "{f} lacks {words:?}");
        }
        other => panic!("not unknown: {other:?}"),
    }
}

// ---------------------------------------------------------------- SRAPS

#[test]
fn sraps_registers_moves_and_deregisters_as_falconieri_does() {
    let mut rig = Rig::new();
    let a = server(RedirectApi::Sraps, "kpbx-a", PROV_A);
    let b = server(RedirectApi::Sraps, "kpbx-b", PROV_B);
    assert_eq!(rig.run(&a, &reg(&a)), Ok(()));
    assert_eq!(
        rig.asked(0),
        [
            "GET /api/v1/tokens/sraps-key-id",
            "GET /api/v1/companies/42",
            "GET /api/v1/companies/42/provisioning-profiles/?page_size=1000",
            "GET /api/v1/settings/?page_size=1000",
            "GET /api/v1/settings/?page=2&page_size=1000",
            &format!("PUT /api/v1/companies/42/endpoints/{M}"),
        ]
    );
    let body = rig.cloud.with(|s| s.sraps[M].clone());
    assert_eq!(
        body,
        j!({"mac": M, "autoprovisioning_enabled": true,
            "settings_manager": {cloud::SETTING_SERVER_UUID: {"value": PROV_A, "attrs": {"perm": "RW"}}}})
    );
    // Every request has its own nonce; the key never travels.
    let reqs = rig.svc.requests();
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
    assert_eq!(nonces.len(), reqs.len());
    assert!(
        reqs.iter()
            .all(|r| !format!("{r:?}").contains(cloud::SRAPS_KEY))
    );

    // A new URL: PUT again; the setting's uuid is remembered.
    let a2 = server(RedirectApi::Sraps, "kpbx-a", PROV_B);
    let from = rig.seen();
    assert_eq!(rig.run(&a2, &reg(&a2)), Ok(()));
    assert!(rig.asked(from).iter().all(|p| !p.contains("settings/")));
    assert_eq!(
        rig.cloud
            .with(|s| s.sraps[M]["settings_manager"][cloud::SETTING_SERVER_UUID]["value"].clone()),
        PROV_B
    );

    // Moving to a server with a provisioning profile of its name: the
    // planner deregisters, then registers; the endpoint gets the profile.
    rig.cloud
        .with(|s| s.sraps_profiles = vec![("prof-b".into(), "kpbx-b".into())]);
    assert_eq!(rig.run(&a2, &dereg(&a2)), Ok(()));
    assert_eq!(rig.run(&b, &reg(&b)), Ok(()));
    assert_eq!(
        rig.cloud.with(|s| s.sraps[M].clone()),
        j!({"mac": M, "autoprovisioning_enabled": true, "provisioning_profile": "prof-b"})
    );
    assert_eq!(
        rig.cloud.writes(),
        [
            format!("sraps:put:{M}:{PROV_A}"),
            format!("sraps:put:{M}:{PROV_B}"),
            format!("sraps:delete:{M}"),
            format!("sraps:put:{M}:profile prof-b"),
        ]
    );
    // Deregistering twice: the second DELETE's 404 is done.
    assert_eq!(rig.run(&b, &dereg(&b)), Ok(()));
    assert_eq!(rig.run(&b, &dereg(&b)), Ok(()));
    assert_eq!(rig.cloud.count("sraps:delete"), 2);
    assert!(rig.cloud.with(|s| s.sraps.is_empty()));

    // A company without a profile listing gets the setting.
    rig.cloud.with(|s| s.sraps_no_profile_listing = true);
    assert_eq!(rig.run(&b, &reg(&b)), Ok(()));
    assert!(
        rig.cloud
            .with(|s| s.sraps[M].get("settings_manager").is_some())
    );
    assert!(rig.warnings.is_empty(), "{:?}", rig.warnings);
    // Nor does a listing SRAPS refuses block the setting (with a warning).
    rig.cloud.with(|s| s.sraps_no_profile_listing = false);
    rig.force(
        "sraps:GET:companies/42/provisioning-profiles/",
        json(403, j!({"detail": "UNDOCUMENTED: a refused listing"})),
    );
    assert_eq!(rig.run(&a, &reg(&a)), Ok(()));
    assert_eq!(rig.warnings.len(), 1);
    assert!(
        rig.warnings[0].contains("a refused listing"),
        "{:?}",
        rig.warnings
    );
}

#[test]
fn sraps_errors_from_evidence() {
    let mut rig = Rig::new();
    let a = server(RedirectApi::Sraps, "kpbx-a", PROV_A);
    // Another account's MAC (falconieri b7bee26's texts).
    rig.cloud.with(|s| s.others.insert(M.into()));
    assert_eq!(rig.run(&a, &reg(&a)), Err(Failure::OwnedByOther));
    // Deregistering it: nothing of ours is there.
    assert_eq!(rig.run(&a, &dereg(&a)), Ok(()));
    rig.cloud.with(|s| s.others.clear());
    // The field and status of those texts are not recorded: all read alike.
    for (status, body) in [
        (400, j!({"message": "taken_mac_or_forbidden"})),
        (403, j!({"error": "taken_mac_or_forbidden"})),
        (403, j!({"detail": "User lacks permission to endpoint"})),
        (400, j!({"message": "User lacks permission to endpoint"})),
    ] {
        rig.force("sraps:PUT", json(status, body.clone()));
        assert_eq!(rig.run(&a, &reg(&a)), Err(Failure::OwnedByOther), "{body}");
    }
    // No source shows SRAPS refusing a malformed MAC, nor any other
    // refusal: kept verbatim, retried, never success.
    rig.force(
        "sraps:PUT",
        json(
            400,
            j!({"mac": ["UNDOCUMENTED: no source shows this answer"]}),
        ),
    );
    unknown(rig.run(&a, &reg(&a)), "HTTP 400: {\"mac\":[\"UNDOCUMENTED");
    rig.force("sraps:PUT", json(409, j!({"message": "conflict"})));
    unknown(rig.run(&a, &reg(&a)), "HTTP 409: conflict");
    rig.force(
        "sraps:PUT",
        Resp {
            status: 429,
            headers: vec![("Retry-After".into(), "120".into())],
            body: Vec::new(),
        },
    );
    assert_eq!(
        rig.run(&a, &reg(&a)),
        Err(Failure::RateLimited {
            retry_after_s: Some(120)
        })
    );
    rig.force("sraps:GET", resp(503, "down for maintenance"));
    assert!(matches!(rig.run(&a, &reg(&a)), Err(Failure::Service(m)) if m.contains("maintenance")));
    rig.unforce();
    assert!(rig.cloud.writes().is_empty());

    // A wrong secret: Hawk's "Bad mac" 401, reported as the credentials.
    let mut wrong = a.clone();
    wrong.access_key_secret = "not-the-key".into();
    assert_eq!(
        rig.run(&wrong, &reg(&wrong)),
        Err(Failure::Auth(snom::SRAPS_AUTH.into()))
    );
    // No key at all: nothing is sent.
    let mut none = a.clone();
    none.access_key_id.clear();
    let from = rig.seen();
    assert!(
        matches!(rig.run(&none, &reg(&none)), Err(Failure::Config(m)) if m.contains("access_key_id"))
    );
    assert_eq!(rig.seen(), from);
    // The XML-RPC credentials are never tried on SRAPS, nor SRAPS's
    // refusal answered with a try of the XML-RPC service.
    let mut xml = a.clone();
    xml.user = cloud::SNOM_USER.into();
    xml.password = cloud::SNOM_PASSWORD.into();
    xml.access_key_secret = "wrong".into();
    let from = rig.seen();
    assert!(matches!(rig.run(&xml, &reg(&xml)), Err(Failure::Auth(_))));
    assert!(rig.asked(from).iter().all(|p| p.contains("/api/v1/")));
}

#[test]
fn sraps_stale_timestamps_are_the_clock_and_retried_once() {
    let mut rig = Rig::new();
    let a = server(RedirectApi::Sraps, "kpbx-a", PROV_A);
    // The box is an hour behind SRAPS.
    rig.cloud.with(|s| s.sraps_skew_s = 3600);
    assert_eq!(rig.run(&a, &reg(&a)), Ok(()));
    assert_eq!(rig.warnings.len(), 1, "{:?}", rig.warnings);
    let w = &rig.warnings[0];
    assert!(
        (3600..3610).any(|n| w.contains(&format!("clock is off by -{n} s"))),
        "{w}"
    );
    // One refused request, retried on SRAPS's time; the next operation
    // starts on it.
    assert_eq!(
        rig.seen(),
        7,
        "one stale GET, retried, then the five others"
    );
    let from = rig.seen();
    assert_eq!(rig.run(&a, &dereg(&a)), Ok(()));
    assert_eq!(
        rig.seen() - from,
        3,
        "no stale refusal: the offset is remembered"
    );
    assert_eq!(rig.warnings.len(), 1);

    // SRAPS keeps refusing the timestamp: the clock is reported, retried later.
    let stale = |ts: u64, key: &str| Resp {
        status: 401,
        headers: vec![(
            "WWW-Authenticate".into(),
            format!(
                "Hawk ts=\"{ts}\", tsm=\"{}\", error=\"Stale timestamp\"",
                hmac_b64(key, &format!("hawk.1.ts\n{ts}\n"))
            ),
        )],
        body: Vec::new(),
    };
    let mut fresh = Rig::new();
    let now = now_ms();
    fresh.force("sraps:GET", stale(now / 1000 + 500, cloud::SRAPS_KEY));
    let r = fresh.run_at(&a, &reg(&a), now, MAC);
    assert_eq!(r, Err(Failure::Clock { offset_s: -500 }));
    assert!(r.as_ref().unwrap_err().is_transient());
    assert!(
        r.unwrap_err()
            .to_string()
            .starts_with("the box's clock is off by -500 s")
    );
    assert_eq!(fresh.seen(), 2, "retried once");
    // A time SRAPS cannot vouch for (a wrong tsm) is not used.
    let mut fresh = Rig::new();
    fresh.force("sraps:GET", stale(now / 1000 + 500, "another key"));
    unknown(fresh.run_at(&a, &reg(&a), now, MAC), "stale timestamp");
    assert_eq!(fresh.seen(), 1);
    // Other 401s are the credentials.
    let mut fresh = Rig::new();
    fresh.force("sraps:GET", resp(401, ""));
    assert_eq!(
        fresh.run(&a, &reg(&a)),
        Err(Failure::Auth(snom::SRAPS_AUTH.into()))
    );
}

// ---------------------------------------------------------- Snom XML-RPC

#[test]
fn snom_xmlrpc_checks_registers_and_moves_as_snoms_console_does() {
    let mut rig = Rig::new();
    let a = server(RedirectApi::SnomXmlrpc, "kpbx-a", PROV_A);
    let b = server(RedirectApi::SnomXmlrpc, "kpbx-b", PROV_B);
    assert_eq!(rig.run(&a, &reg(&a)), Ok(()));
    let calls = |rig: &Rig, from: usize| -> Vec<(String, Vec<String>)> {
        rig.svc.requests()[from..]
            .iter()
            .map(|r| redirectkit::xmlrpc_call(&r.text()))
            .collect()
    };
    assert_eq!(
        calls(&rig, 0),
        [
            ("redirect.checkPhone".to_string(), vec![M.to_string()]),
            (
                "redirect.registerPhone".to_string(),
                vec![M.to_string(), PROV_A.to_string()]
            )
        ]
    );
    // A new URL (or a move): checked, deregistered, registered again.
    let from = rig.seen();
    assert_eq!(rig.run(&b, &reg(&b)), Ok(()));
    let methods: Vec<String> = calls(&rig, from).into_iter().map(|c| c.0).collect();
    assert_eq!(
        methods,
        [
            "redirect.checkPhone",
            "redirect.deregisterPhone",
            "redirect.registerPhone"
        ]
    );
    assert_eq!(rig.cloud.with(|s| s.snom[M].clone()), PROV_B);
    // Deregistering; again: `Error:no_such_mac` is done.
    assert_eq!(rig.run(&b, &dereg(&b)), Ok(()));
    assert_eq!(rig.run(&b, &dereg(&b)), Ok(()));
    assert_eq!(
        rig.cloud.writes(),
        [
            format!("snom:register:{M}:{PROV_A}"),
            format!("snom:deregister:{M}"),
            format!("snom:register:{M}:{PROV_B}"),
            format!("snom:deregister:{M}"),
        ]
    );
    // Basic credentials, text/xml, the mandatory trailing slash.
    assert!(rig.svc.requests().iter().all(|r| r.path == "/xmlrpc/"
        && redirectkit::basic(r) == format!("{}:{}", cloud::SNOM_USER, cloud::SNOM_PASSWORD)));
}

#[test]
fn snom_xmlrpc_errors_from_evidence() {
    let mut rig = Rig::new();
    let a = server(RedirectApi::SnomXmlrpc, "kpbx-a", PROV_A);
    rig.cloud.with(|s| s.others.insert(M.into()));
    assert_eq!(rig.run(&a, &reg(&a)), Err(Failure::OwnedByOther));
    // Refused at the check: registerPhone is not sent.
    assert_eq!(rig.seen(), 1);
    assert_eq!(
        rig.run(&a, &dereg(&a)),
        Ok(()),
        "another user's: nothing of ours"
    );
    rig.cloud.with(|s| s.others.clear());
    rig.force("snom:checkPhone", xml_answer(false, "Error:malformed_mac"));
    assert_eq!(rig.run(&a, &reg(&a)), Err(Failure::MalformedMac));
    rig.force(
        "snom:deregisterPhone",
        xml_answer(false, "Error:malformed_mac"),
    );
    assert_eq!(rig.run(&a, &dereg(&a)), Err(Failure::MalformedMac));
    rig.unforce();
    rig.force(
        "snom:registerPhone",
        xml_answer(false, "Error:malformed_url"),
    );
    assert!(matches!(rig.run(&a, &reg(&a)), Err(Failure::Rejected(m)) if m.contains(PROV_A)));
    // Texts no source lists, a flag that contradicts its text, a fault.
    rig.force(
        "snom:registerPhone",
        xml_answer(false, "Error:quota_exceeded"),
    );
    unknown(rig.run(&a, &reg(&a)), "Error:quota_exceeded");
    rig.force("snom:registerPhone", xml_answer(false, "Ok"));
    unknown(rig.run(&a, &reg(&a)), "Ok");
    rig.force(
        "snom:checkPhone",
        resp(
            200,
            "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member><member><name>faultString</name><value><string>UNDOCUMENTED</string></value></member></struct></value></fault></methodResponse>",
        ),
    );
    unknown(rig.run(&a, &reg(&a)), "XML-RPC fault 1: UNDOCUMENTED");
    rig.force("snom:checkPhone", resp(200, "<html>maintenance</html>"));
    unknown(rig.run(&a, &reg(&a)), "maintenance");
    rig.unforce();
    assert!(rig.cloud.writes().is_empty());
    let mut wrong = a.clone();
    wrong.password = "nope".into();
    assert_eq!(
        rig.run(&wrong, &reg(&wrong)),
        Err(Failure::Auth(snom::XMLRPC_AUTH.into()))
    );
    let mut keys_only = a.clone();
    keys_only.user.clear();
    keys_only.access_key_id = cloud::SRAPS_ID.into();
    keys_only.access_key_secret = cloud::SRAPS_KEY.into();
    let from = rig.seen();
    assert!(
        matches!(rig.run(&keys_only, &reg(&keys_only)), Err(Failure::Config(m)) if m.contains("user and password"))
    );
    assert_eq!(rig.seen(), from);
}

// ------------------------------------------------------ Yealink XML-RPC

#[test]
fn rps_xmlrpc_registers_by_name_and_moves_existing_macs_with_edit_device() {
    let mut rig = Rig::new();
    let a = server(RedirectApi::RpsXmlrpc, "kpbx-a", PROV_A);
    let b = server(RedirectApi::RpsXmlrpc, "kpbx-b", PROV_B);
    assert_eq!(rig.run(&a, &reg(&a)), Ok(()));
    // "Existing MAC(s)" says the account holds the MAC, not where:
    // editDevice puts it on the named server.
    assert_eq!(rig.run(&b, &reg(&b)), Ok(()));
    assert_eq!(rig.cloud.with(|s| s.rps[M].clone()), "kpbx-b");
    let methods: Vec<String> = rig
        .svc
        .requests()
        .iter()
        .map(|r| redirectkit::xmlrpc_call(&r.text()).0)
        .collect();
    assert_eq!(
        methods,
        [
            "redirect.registerDevice",
            "redirect.registerDevice",
            "redirect.editDevice"
        ]
    );
    assert_eq!(rig.run(&b, &dereg(&b)), Ok(()));
    // Not registered any more: checkDevice says so, nothing else is sent.
    let from = rig.seen();
    assert_eq!(rig.run(&b, &dereg(&b)), Ok(()));
    assert_eq!(rig.seen() - from, 1);
    assert_eq!(
        rig.cloud.writes(),
        [
            format!("rps:register:{M}:kpbx-a"),
            format!("rps:edit:{M}:kpbx-b"),
            format!("rps:deregister:{M}"),
        ]
    );
}

#[test]
fn rps_xmlrpc_errors_from_evidence() {
    let mut rig = Rig::new();
    let a = server(RedirectApi::RpsXmlrpc, "kpbx-a", PROV_A);
    rig.cloud.with(|s| s.others.insert(M.into()));
    // The override question: another account's MAC, never overridden.
    assert_eq!(rig.run(&a, &reg(&a)), Err(Failure::OwnedByOther));
    assert_eq!(rig.run(&a, &dereg(&a)), Ok(()), "registered elsewhere");
    rig.cloud.with(|s| s.others.clear());
    let nowhere = server(RedirectApi::RpsXmlrpc, "nowhere", PROV_A);
    assert!(
        matches!(rig.run(&nowhere, &reg(&nowhere)), Err(Failure::Rejected(m)) if m.contains("\"nowhere\""))
    );
    rig.force(
        "rps:registerDevice",
        xml_untyped(false, "Error:Invalid MAC(s):00s1122334400"),
    );
    assert_eq!(rig.run(&a, &reg(&a)), Err(Failure::MalformedMac));
    rig.force(
        "rps:registerDevice",
        xml_untyped(
            false,
            "Error:The server name can only contain 'A-z 0-9 - _ . '(include space)",
        ),
    );
    assert!(matches!(rig.run(&a, &reg(&a)), Err(Failure::Rejected(m)) if m.contains("A-z 0-9")));
    rig.force(
        "rps:registerDevice",
        xml_untyped(false, "Error:UNDOCUMENTED"),
    );
    unknown(rig.run(&a, &reg(&a)), "Error:UNDOCUMENTED");
    rig.force("rps:checkDevice", xml_untyped(false, "error:invalid mac"));
    assert_eq!(rig.run(&a, &dereg(&a)), Err(Failure::MalformedMac));
    rig.force("rps:checkDevice", xml_untyped(true, "maybe"));
    unknown(rig.run(&a, &dereg(&a)), "maybe");
    rig.unforce();
    // editDevice's answer is not public: anything but [True, OK] is unknown.
    rig.cloud.with(|s| s.rps.insert(M.into(), "kpbx-b".into()));
    rig.force("rps:editDevice", xml_untyped(false, "UNDOCUMENTED"));
    unknown(rig.run(&a, &reg(&a)), "UNDOCUMENTED");
    assert_eq!(rig.cloud.with(|s| s.rps[M].clone()), "kpbx-b");
    rig.unforce();
    let mut wrong = a.clone();
    wrong.password = "nope".into();
    assert_eq!(
        rig.run(&wrong, &reg(&wrong)),
        Err(Failure::Auth(yealink::XMLRPC_AUTH.into()))
    );
    assert!(rig.cloud.writes().is_empty());
}

// ------------------------------------------------------- RPS JSON API

#[test]
fn rps_json_adds_migrates_and_reads_back() {
    let mut rig = Rig::new();
    let a = server(RedirectApi::RpsJson, "kpbx-a", PROV_A);
    let b = server(RedirectApi::RpsJson, "kpbx-b", PROV_B);
    assert_eq!(rig.run(&a, &reg(&a)), Ok(()));
    assert_eq!(
        rig.asked(0),
        [
            "POST /api/open/v1/server/list",
            "POST /api/open/v1/device/list",
            "POST /api/open/v1/device/add",
            &format!("GET /api/open/v1/device/checkMac?mac={M}"),
            "POST /api/open/v1/device/list",
        ]
    );
    let add: serde_json::Value = serde_json::from_slice(&rig.svc.requests()[2].body).unwrap();
    assert_eq!(add, j!({"macs": [M], "serverId": "id-kpbx-a"}));
    // Already there: nothing to write.
    let from = rig.seen();
    assert_eq!(rig.run(&a, &reg(&a)), Ok(()));
    assert_eq!(rig.seen() - from, 2);
    // Held on another server: migrated, then read back.
    assert_eq!(rig.run(&b, &reg(&b)), Ok(()));
    // Deleted (the service answers `ret: 0`, `error: null`); then absent.
    assert_eq!(rig.run(&b, &dereg(&b)), Ok(()));
    assert_eq!(rig.run(&b, &dereg(&b)), Ok(()));
    assert_eq!(
        rig.cloud.writes(),
        [
            format!("rps_json:add:{M}:kpbx-a"),
            format!("rps_json:migrate:{M}:kpbx-b"),
            format!("rps_json:delete:{M}"),
        ]
    );
    assert!(
        rig.svc
            .requests()
            .iter()
            .all(|r| !format!("{r:?}").contains(cloud::RPS_SK))
    );
}

#[test]
fn rps_json_errors_are_unknown_but_never_success() {
    let mut rig = Rig::new();
    let a = server(RedirectApi::RpsJson, "kpbx-a", PROV_A);
    // Another enterprise's MAC: the refusal's text is not public.
    rig.cloud.with(|s| s.others.insert(M.into()));
    unknown(
        rig.run(&a, &reg(&a)),
        "RPS error: UNDOCUMENTED: api-dm refusal text",
    );
    rig.cloud.with(|s| s.others.clear());
    // device/add without an error that added nothing: the read-back sees it.
    rig.cloud.with(|s| s.rps_json_silent_add = true);
    unknown(rig.run(&a, &reg(&a)), "does not list it on server kpbx-a");
    rig.cloud.with(|s| s.rps_json_silent_add = false);
    let nowhere = server(RedirectApi::RpsJson, "nowhere", PROV_A);
    assert!(
        matches!(rig.run(&nowhere, &reg(&nowhere)), Err(Failure::Rejected(m)) if m.contains("\"nowhere\""))
    );
    // Unknown key: api-dm's answer is not public either.
    let mut wrong = a.clone();
    wrong.access_key_id = "someone-else".into();
    unknown(rig.run(&wrong, &reg(&wrong)), "unknown key is not public");
    rig.force("rps_json:server/list", resp(401, ""));
    assert_eq!(
        rig.run(&a, &reg(&a)),
        Err(Failure::Auth(yealink::RPS_JSON_AUTH.into()))
    );
    rig.force(
        "rps_json:server/list",
        Resp {
            status: 429,
            headers: vec![("Retry-After".into(), "7".into())],
            body: Vec::new(),
        },
    );
    assert_eq!(
        rig.run(&a, &reg(&a)),
        Err(Failure::RateLimited {
            retry_after_s: Some(7)
        })
    );
    rig.unforce();
    assert!(rig.cloud.writes().is_empty());
}

// ------------------------------------------------------------- YMCS v2

#[test]
fn ymcs_token_flow_lookup_add_move_delete() {
    let mut rig = Rig::new();
    // 150 servers: the one wanted is on the second page.
    rig.cloud.with(|s| {
        s.rps_servers = (0..150).map(|i| format!("srv-{i:03}")).collect();
        s.rps_servers.push("kpbx-a".into());
        s.rps_servers.push("kpbx-b".into());
    });
    let a = server(RedirectApi::Ymcs, "kpbx-a", PROV_A);
    let b = server(RedirectApi::Ymcs, "kpbx-b", PROV_B);
    let t0 = now_ms();
    assert_eq!(rig.run_at(&a, &reg(&a), t0, MAC), Ok(()));
    assert_eq!(
        rig.asked(0),
        [
            "POST /v2/token",
            "POST /v2/rps/listServers",
            "POST /v2/rps/listServers",
            "POST /v2/rps/listDevices",
            "POST /v2/rps/addDevicesByMac",
        ]
    );
    let add: serde_json::Value = serde_json::from_slice(&rig.svc.requests()[4].body).unwrap();
    assert_eq!(add, j!([{"mac": M, "serverId": "id-kpbx-a"}]));
    // The token is reused by the next operations until it expires.
    assert_eq!(rig.run_at(&a, &reg(&a), t0 + 1000, MAC), Ok(()));
    assert_eq!(rig.run_at(&b, &reg(&b), t0 + 2000, MAC), Ok(()));
    assert_eq!(rig.cloud.with(|s| s.ymcs_token_requests), 1);
    assert_eq!(rig.cloud.with(|s| s.rps[M].clone()), "kpbx-b");
    // 7200 s minus falconieri's minute of margin: a new token after that.
    assert_eq!(rig.run_at(&b, &dereg(&b), t0 + 7_141_000, MAC), Ok(()));
    assert_eq!(rig.cloud.with(|s| s.ymcs_token_requests), 2);
    assert_eq!(rig.run_at(&b, &dereg(&b), t0 + 7_142_000, MAC), Ok(()));
    assert_eq!(
        rig.cloud.writes(),
        [
            format!("ymcs:add:{M}:kpbx-a"),
            format!("ymcs:delete:{M}"),
            format!("ymcs:add:{M}:kpbx-b"),
            format!("ymcs:delete:{M}"),
        ]
    );
    // A token the service dropped is replaced once.
    rig.cloud.with(|s| s.ymcs_tokens.clear());
    assert_eq!(rig.run_at(&a, &reg(&a), t0 + 7_143_000, MAC), Ok(()));
    assert_eq!(rig.cloud.with(|s| s.ymcs_token_requests), 3);
    // The secret is only in the token request's Basic header.
    for r in rig.svc.requests() {
        let text = format!("{r:?}");
        assert!(!text.contains(cloud::YMCS_SECRET));
        if r.path != "/v2/token" {
            assert!(
                r.header("authorization")
                    .unwrap()
                    .starts_with("Bearer tok-")
            );
        }
    }
}

#[test]
fn ymcs_errors_from_evidence() {
    let mut rig = Rig::new();
    let a = server(RedirectApi::Ymcs, "kpbx-a", PROV_A);
    // A regular account (Yealink support in fspbx issue 600).
    rig.cloud.with(|s| s.ymcs_regular = true);
    let r = rig.run(&a, &reg(&a));
    assert_eq!(
        r,
        Err(Failure::Rejected(yealink::ADD_BY_MAC_FORBIDDEN.into()))
    );
    let shown = r.unwrap_err().to_string();
    assert!(
        shown.contains("ask Yealink support to enable /v2/rps/addDevicesByMac"),
        "{shown}"
    );
    rig.cloud.with(|s| s.ymcs_regular = false);
    rig.cloud.with(|s| s.others.insert(M.into()));
    assert_eq!(rig.run(&a, &reg(&a)), Err(Failure::OwnedByOther));
    rig.cloud.with(|s| s.others.clear());
    let failed = |info: &str| {
        json(
            200,
            j!({"total": 1, "successCount": 0, "failureCount": 1, "errors": [{"mac": M, "sn": "", "errorInfo": info}]}),
        )
    };
    rig.force("ymcs:addDevicesByMac", failed("device.mac.invalid"));
    assert_eq!(rig.run(&a, &reg(&a)), Err(Failure::MalformedMac));
    rig.force("ymcs:addDevicesByMac", failed("UNDOCUMENTED"));
    unknown(rig.run(&a, &reg(&a)), "UNDOCUMENTED");
    for (status, code, expect) in [
        (400, "800001", Some(Failure::MalformedMac)),
        (409, "800003", Some(Failure::OwnedByOther)),
        (409, "800004", Some(Failure::OwnedByOther)),
        (
            429,
            "900429",
            Some(Failure::RateLimited {
                retry_after_s: None,
            }),
        ),
    ] {
        rig.force("ymcs:listDevices", cloud::ymcs_error(status, code, "x"));
        assert_eq!(rig.run(&a, &reg(&a)).err(), expect, "{code}");
    }
    rig.force(
        "ymcs:listDevices",
        cloud::ymcs_error(500, "900500", "Server busy"),
    );
    assert!(matches!(rig.run(&a, &reg(&a)), Err(f @ Failure::Service(_)) if f.is_transient()));
    rig.force(
        "ymcs:listDevices",
        cloud::ymcs_error(403, "900403", "Request forbidden"),
    );
    assert!(
        matches!(rig.run(&a, &reg(&a)), Err(Failure::Rejected(m)) if m.contains("Request forbidden"))
    );
    // 900401 even with a fresh token: the credentials.
    rig.force(
        "ymcs:listDevices",
        cloud::ymcs_error(401, "900401", "Not logged in"),
    );
    assert_eq!(
        rig.run(&a, &reg(&a)),
        Err(Failure::Auth(yealink::YMCS_AUTH.into()))
    );
    rig.force(
        "ymcs:listDevices",
        cloud::ymcs_error(400, "800007", "Invalid parameters"),
    );
    unknown(rig.run(&a, &reg(&a)), "800007");
    rig.unforce();
    let nowhere = server(RedirectApi::Ymcs, "nowhere", PROV_A);
    assert!(
        matches!(rig.run(&nowhere, &reg(&nowhere)), Err(Failure::Rejected(m)) if m.contains("\"nowhere\""))
    );
    assert!(rig.cloud.writes().is_empty());
    // A refused key: the token request's 401.
    let mut fresh = Rig::new();
    let mut wrong = a.clone();
    wrong.access_key_secret = "nope".into();
    assert_eq!(
        fresh.run(&wrong, &reg(&wrong)),
        Err(Failure::Auth(yealink::YMCS_AUTH.into()))
    );
    assert_eq!(fresh.seen(), 1);
}

// ---------------------------------------------------------------- all

#[test]
fn escene_is_unsupported_and_sends_nothing() {
    let mut rig = Rig::new();
    let e = server(RedirectApi::None, "e", PROV_A);
    assert!(matches!(
        rig.run(&e, &reg(&e)),
        Err(Failure::Unsupported(_))
    ));
    assert_eq!(rig.seen(), 0);
}

#[test]
fn unreachable_and_untrusted_services() {
    let port = redirectkit::free_port();
    let svc = Service::start(|_: &Req| resp(200, ""));
    let client = HttpsClient::from_ca_file(&svc.ca_file, Duration::from_secs(5)).unwrap();
    let run = |eps: &Endpoints| {
        let srv = server(RedirectApi::Ymcs, "kpbx-a", PROV_A);
        let mut session = Session::default();
        let mut nonce = || "0123456789abcdef0123456789abcdef".to_string();
        let mut cx = Context {
            endpoints: eps,
            server: &srv,
            now_ms: now_ms(),
            nonce: &mut nonce,
            session: &mut session,
            warnings: Vec::new(),
        };
        smol::block_on(flow::perform(
            &client,
            &mut cx,
            &reg(&srv),
            &Mac::parse(MAC).unwrap(),
        ))
    };
    let mut down = endpoints(&svc);
    down.ymcs = format!("https://127.0.0.1:{port}");
    let r = run(&down);
    assert!(
        matches!(&r, Err(Failure::Unreachable(m)) if m.contains("connect")),
        "{r:?}"
    );
    // A service whose certificate the CA bundle does not vouch for.
    let other = Service::start(|_: &Req| resp(200, ""));
    let r = run(&endpoints(&other));
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
    eps.sraps = format!("https://127.0.0.1:{port}/api/v1/");
    let srv = server(RedirectApi::Sraps, "kpbx-a", PROV_A);
    let mut session = Session::default();
    let mut nonce = || "n".to_string();
    let mut cx = Context {
        endpoints: &eps,
        server: &srv,
        now_ms: now_ms(),
        nonce: &mut nonce,
        session: &mut session,
        warnings: Vec::new(),
    };
    let start = std::time::Instant::now();
    let r = smol::block_on(flow::perform(
        &client,
        &mut cx,
        &reg(&srv),
        &Mac::parse(MAC).unwrap(),
    ));
    assert!(
        matches!(&r, Err(Failure::Unreachable(m)) if m.contains("no answer")),
        "{r:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(listener);
}
