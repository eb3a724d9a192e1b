//! HA frames as they arrive from the network: heartbeats and pairing, and
//! the data-sync channel's sealed frames.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = kpbxd::ha::wire::parse(data) {
        // A frame that parses re-encodes to something that parses.
        let bytes = frame.to_vec();
        assert!(kpbxd::ha::wire::parse(&bytes).is_ok());
    }
    use kpbxd::ha::sync::{Direction, Sealer, session_key};
    let _ = Sealer::frame_len(data);
    let key = session_key(&kpbxd::ha::auth::Key([3; 32]), &[1; 16], &[2; 16]);
    if let Ok(mut rx) = Sealer::new(&key, Direction::ToPrimary) {
        // Without the key nothing opens; it must fail cleanly.
        assert!(rx.open(data).is_err());
    }
});
