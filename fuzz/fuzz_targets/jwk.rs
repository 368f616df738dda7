//! Fuzzes JWK parsing, thumbprints and key round trips.
//! The properties checked live in `gnapd::fuzzing::jwk`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gnapd::fuzzing::jwk(data));
