#![no_main]

use kpbxd::clock::Instant;
use kpbxd::sip::responder::{Lookup, Responder};
use kpbxd::sip::{device_mac, header_param, header_uri, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Must never panic; what the responder sends must parse back.
    if let Ok(m) = parse(data) {
        let _ = device_mac(&m);
        for (_, v) in &m.headers {
            let _ = header_uri(v);
            let _ = header_param(v, "tag");
        }
    }
    let mut r = Responder::new(1);
    let (out, _) = r.handle(
        Instant::from_millis(1),
        "10.0.0.7:5059".parse().unwrap(),
        "10.0.0.1:5060".parse().unwrap(),
        data,
        |_| Lookup::Answer("http://10.0.0.1/provisioning/".to_string()),
    );
    for (_, bytes) in out {
        assert!(parse(&bytes).is_ok());
    }
});
