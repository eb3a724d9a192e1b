//! HA frames as they arrive from the network.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = kpbxd::ha::wire::parse(data) {
        // A frame that parses re-encodes to something that parses.
        let bytes = frame.to_vec();
        assert!(kpbxd::ha::wire::parse(&bytes).is_ok());
    }
});
