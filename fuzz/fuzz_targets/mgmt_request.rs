#![no_main]
//! The management API's decoding on top of the shared HTTP head parser
//! (`http::request`, with the API's limits).

use kpbxd::auth::api::{LIMITS, decode_bytes};
use kpbxd::http::request::{Status, parse_head_with};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Must never panic; a refusal is always a 4xx with a message.
    match decode_bytes(data) {
        Ok(_) => {}
        Err(e) => assert!((400..500).contains(&e.status) && !e.message.is_empty()),
    }
    if let Ok(Status::Complete(h)) = parse_head_with(data, &LIMITS) {
        assert!(h.head_len <= data.len() && h.head_len <= LIMITS.max_head_bytes);
    }
});
