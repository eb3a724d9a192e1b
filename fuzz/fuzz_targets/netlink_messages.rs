//! `cargo +nightly fuzz run netlink_messages`: the route netlink decoder
//! never panics, and walks at most one message per 16 bytes of input.
#![no_main]

use kpbxd::net::netlink::messages;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert!(messages(data).count() <= data.len() / 16);
});
