//! Garbage on the control socket: whole frames and bare payloads.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kpbxd::control::wire::decode_request_frame(data);
    let _ = kpbxd::control::wire::decode_reply(data);
});
