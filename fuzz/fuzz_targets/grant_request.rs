//! Fuzzes the GNAP grant, continuation and rotation request readers.
//! The properties checked live in `gnapd::fuzzing::grant_request`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gnapd::fuzzing::grant_request(data));
