//! A request's params object as JSON text, flattened and signed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(json) = std::str::from_utf8(data) {
        fillguard::fuzzing::sign_params(json);
    }
});
