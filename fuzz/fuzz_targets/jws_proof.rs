//! Fuzzes the JWS key proofs (`jwsd`, `jws` and their rotations).
//! The properties checked live in `gnapd::fuzzing::jws_proof`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gnapd::fuzzing::jws_proof(data));
