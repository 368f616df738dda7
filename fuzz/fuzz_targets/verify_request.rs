//! Fuzzes the GNAP profile verifier on arbitrary and on mutated signed requests.
//! The properties checked live in `gnapd::fuzzing::verify_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gnapd::fuzzing::verify_request(data));
