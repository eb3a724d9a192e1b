#![no_main]

use kpbxd::ha::auth::Key;
use kpbxd::ha::sync::{Direction, Msg, Sealer, session_key};
use kpbxd::store::repl::ReplRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // What a peer sends on the sync channel: frames opened in order, then
    // log entries decoded. Must never panic.
    let k = session_key(&Key([3; 32]), &[1; 16], &[2; 16]);
    let Ok(mut open) = Sealer::new(&k, Direction::ToSecondary) else {
        return;
    };
    let mut rest = data;
    for _ in 0..64 {
        let Ok(Some(n)) = Sealer::frame_len(rest) else {
            break;
        };
        if rest.len() < n {
            break;
        }
        if let Ok(Msg::Entries(v)) = open.open(&rest[..n]) {
            for e in v {
                let _ = ReplRecord::decode(&e).map(|r| r.is_intact());
            }
        }
        rest = &rest[n..];
    }
    // And the entry decoder on its own, as if past the seal.
    let _ = ReplRecord::decode(data).map(|r| r.is_intact());
});
