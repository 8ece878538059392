//! One Crypto.com answer: the first byte picks the HTTP status, the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Statuses the venue treats differently: success, client errors, rate limit, server errors.
const STATUSES: [u16; 12] = [200, 201, 299, 400, 401, 404, 408, 429, 500, 502, 503, 504];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let status = STATUSES[usize::from(selector) % STATUSES.len()];
    if let Ok(body) = std::str::from_utf8(body) {
        fillguard::fuzzing::cryptocom_response(status, body);
    }
});
