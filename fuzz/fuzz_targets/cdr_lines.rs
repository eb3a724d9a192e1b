//! Asterisk Master.csv and queue_log lines, as written by the PBX.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = kpbxd::cdr::master_csv::parse_master_line(data);
    let _ = kpbxd::cdr::queue_log::parse_queue_log_line(data);
});
