//! Fuzzes Signature-Input / Signature parsing, round trips and the signature base.
//! The properties checked live in `gnapd::fuzzing::signature_fields`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gnapd::fuzzing::signature_fields(data));
