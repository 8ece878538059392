//! Bytes arriving on a connection to the exchange simulator, read as one HTTP request.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fillguard::fuzzing::sim_http_request(data);
});
