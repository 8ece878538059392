//! One trade driven through the core's `step` by arbitrary event sequences, with the safety
//! rules checked after every step.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    fillguard::fuzzing::trade_step(data);
});
