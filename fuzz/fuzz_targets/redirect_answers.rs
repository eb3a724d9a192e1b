#![no_main]
//! `cargo +nightly fuzz run redirect_answers`: the redirection services'
//! answers (HTTP response framing, XML-RPC, SRAPS and Yealink RPS JSON) must never panic the
//! parsers, whatever the bytes.
use kpbxd::http::client::{ClientResponse, parse_response};
use kpbxd::redirect::vendor::{self, Dialect};
use kpbxd::redirect::xmlrpc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_response(data, false);
    let _ = parse_response(data, true);
    let _ = xmlrpc::parse_answer(data);
    let status = data.first().map_or(200, |b| 200 + u16::from(*b) % 300);
    let resp = ClientResponse {
        status,
        headers: vec![("Retry-After".into(), String::from_utf8_lossy(data).into_owned())],
        body: data.to_vec(),
    };
    let _ = vendor::xmlrpc_outcome(&resp, Dialect::Snom);
    let _ = vendor::xmlrpc_outcome(&resp, Dialect::Yealink);
    let _ = vendor::sraps_outcome(&resp, false);
    let _ = vendor::sraps_link(&resp, "company", "https://api.sraps.snom.com/api/v1/");
    if let Ok(data) = vendor::yealink_answer(&resp) {
        let _ = vendor::yealink_server_id(&data, "kpbx");
        let _ = vendor::yealink_device_id(&data, "001565aabb01");
    }
});
