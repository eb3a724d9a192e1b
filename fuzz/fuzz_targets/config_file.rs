//! The bootstrap configuration file parser.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = kpbxd::config::Config::parse(text) {
            // What is accepted renders back to the same configuration.
            assert_eq!(kpbxd::config::Config::parse(&config.render()).ok(), Some(config));
        }
    }
});
