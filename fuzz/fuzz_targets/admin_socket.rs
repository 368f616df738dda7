//! Fuzzes the admin socket: command lines over a socket pair, and the commands carried out.
//! The properties checked live in `gnapd::fuzzing::admin_socket`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gnapd::fuzzing::admin_socket(data));
