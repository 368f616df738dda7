//! Fuzzes RFC 9530 Content-Digest verification and generation.
//! The properties checked live in `gnapd::fuzzing::content_digest`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gnapd::fuzzing::content_digest(data));
