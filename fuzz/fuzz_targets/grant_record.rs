//! Fuzzes reading sled's grant records (compact and JSON) from hostile bytes.
//! The properties checked live in `gnapd::fuzzing::grant_record`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gnapd::fuzzing::grant_record(data));
