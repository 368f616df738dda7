//! Fuzzes the grant state machine (the in-process AS, memory store, manual clock) with operation sequences.
//! The properties checked live in `gnapd::fuzzing::grant_machine`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gnapd::fuzzing::grant_machine(data));
