//! Fuzzes the OAuth face's parameter reading and its value checks.
//! The properties checked live in `gnapd::fuzzing::oauth_params`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gnapd::fuzzing::oauth_params(data));
