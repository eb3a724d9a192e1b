#![no_main]

use kpbxd::auth::api::{decode_bytes, parse_head};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Must never panic; a refusal is always a 4xx with a message.
    match decode_bytes(data) {
        Ok(_) => {}
        Err(e) => assert!((400..500).contains(&e.status) && !e.message.is_empty()),
    }
    if let Ok(Some(h)) = parse_head(data) {
        assert!(h.len <= data.len());
    }
});
