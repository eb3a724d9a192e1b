#![no_main]

use kpbxd::tftp::packet::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Must never panic; whatever parses must re-encode to something that parses.
    if let Ok(p) = parse(data) {
        let wire = p.to_vec();
        assert!(parse(&wire).is_ok());
    }
});
