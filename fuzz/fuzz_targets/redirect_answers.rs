#![no_main]
//! `cargo +nightly fuzz run redirect_answers`: the redirection services'
//! answers (HTTP response framing, XML-RPC, SRAPS, YMCS and Yealink RPS
//! JSON, Hawk challenges) must never panic the readers, whatever the bytes.
use kpbxd::http::client::{ClientResponse, parse_response};
use kpbxd::redirect::{hawk, snom, vendor, xmlrpc, yealink};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_response(data, false);
    let _ = parse_response(data, true);
    let _ = xmlrpc::parse_answer(data);
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = hawk::parse_challenge(&text);
    let _ = snom::link_next(&text);
    let status = data.first().map_or(200, |b| 200 + u16::from(*b) % 300);
    let resp = ClientResponse {
        status,
        headers: vec![
            ("Retry-After".into(), text.clone()),
            ("WWW-Authenticate".into(), text.clone()),
            ("Link".into(), text),
        ],
        body: data.to_vec(),
    };
    let _ = vendor::xmlrpc_result(&resp, "a");
    let _ = snom::snom_result(&resp);
    let _ = yealink::rps_result(&resp);
    let _ = snom::sraps_outcome(&resp);
    let _ = snom::sraps_stale(&resp, "k");
    let _ = snom::sraps_link(&resp, "company", "https://api.sraps.snom.com/api/v1/");
    if let Ok((items, _)) = snom::sraps_page(&resp, "https://api.sraps.snom.com/api/v1/") {
        let _ = snom::sraps_setting_uuid(&items, "setting_server");
        let _ = snom::sraps_profile_uuid(&items, "kpbx");
    }
    if let Ok(data) = yealink::rps_answer(&resp) {
        let (items, _) = yealink::rps_page(&data);
        let _ = yealink::server_id(&items, "kpbx");
        let _ = yealink::device(&items, "001565aabb01");
        let _ = yealink::rps_existed(&data);
    }
    let _ = yealink::ymcs_failure(&resp);
    let _ = yealink::ymcs_token_answer(&resp);
    if let Ok(v) = yealink::ymcs_json(&resp) {
        let _ = yealink::ymcs_batch(&v);
        if let Some((items, _)) = yealink::ymcs_page(&v) {
            let _ = yealink::server_id(&items, "kpbx");
        }
    }
});
