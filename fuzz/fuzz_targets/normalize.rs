//! Decimals drawn from raw bytes, through the tick, quantity, price and minimum rules.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fillguard::fuzzing::normalize(data);
});
