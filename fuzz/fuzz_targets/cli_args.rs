//! The console CLI grammar: NUL-separated arguments.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let args: Vec<&str> = text.split('\0').collect();
        let _ = kpbxd::cli::parse(&args);
    }
});
