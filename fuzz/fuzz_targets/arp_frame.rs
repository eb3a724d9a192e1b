//! `cargo +nightly fuzz run arp_frame`: the ARP parser never panics, and
//! an accepted frame re-emits to its own first 42 bytes.
#![no_main]

use kpbxd::net::arp::{FRAME_LEN, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(repr) = parse(data) {
        assert_eq!(&repr.emit()[..], &data[..FRAME_LEN]);
    }
});
