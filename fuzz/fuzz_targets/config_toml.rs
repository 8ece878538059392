//! A configuration file's text, loaded with an empty environment.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        fillguard::fuzzing::config_toml(text);
    }
});
