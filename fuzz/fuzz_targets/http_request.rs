#![no_main]
//! `cargo +nightly fuzz run http_request`: the head parser and the path check must never
//! panic, and whatever they accept must be a plain, non-escaping path.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kpbxd::http::request::check_invariants(data);
});
