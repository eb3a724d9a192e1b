//! On-disk records read back from a possibly damaged store.
#![no_main]
use kpbxd::model::Kind;
use kpbxd::store::records;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = records::decode_audit(data);
    let _ = records::split_object_key(data);
    let _ = records::split_audit_key(data);
    if let Ok(r) = kpbxd::store::repl::ReplRecord::decode(data) {
        let _ = r.is_intact();
    }
    for kind in Kind::ALL {
        for id in ["hostname", "sip_port", "", "x"] {
            let _ = records::decode_object(*kind, id, data);
        }
    }
});
